//! Signed links and tags: HMAC-SHA256 under a key derived from the store's key
//! (`Store::derived_key`, one purpose per key), and comparing a presented
//! signature in constant time. Used by `/media` links, e-mail frames and
//! reply-address tags.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The hex HMAC-SHA256 of `parts` joined by NULs (none of them holds one), so
/// that no two different lists of parts sign the same bytes.
pub fn hmac_hex(key: &[u8; 32], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a presented signature equals the expected one, in time that does
/// not depend on where they differ.
pub fn same(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_separated_and_keys_matter() {
        let key = [1; 32];
        assert_ne!(
            hmac_hex(&key, &[b"ab", b"c"]),
            hmac_hex(&key, &[b"a", b"bc"])
        );
        assert_ne!(hmac_hex(&key, &[b"x"]), hmac_hex(&[2; 32], &[b"x"]));
        let sig = hmac_hex(&key, &[b"x"]);
        assert!(same(&sig, &sig.clone()));
        assert!(!same(&sig, &sig[1..]));
        assert!(!same(&sig, &sig.replace(&sig[..1], "z")));
    }
}
