//! Encryption of plugin secrets at rest.
//!
//! Secret config values (API tokens, auth tokens) are sealed with ChaCha20-Poly1305
//! under the 32-byte key the operator gives [`Store::connect`](crate::Store::connect),
//! with a fresh random 96-bit nonce per value. The plugin id and config key are bound
//! in as associated data, so a sealed value copied to another plugin's or key's row
//! fails to open instead of leaking. Stored form: `v1:` + base64(nonce ‖ ciphertext).
//!
//! This module never logs or formats plaintext, and the key never leaves it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};

use crate::error::{Result, StoreError};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

pub(crate) struct SecretBox {
    cipher: ChaCha20Poly1305,
    /// Keys derived for other purposes (signing URLs), never the key itself.
    derive_base: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key redacted>)")
    }
}

fn aad(plugin_id: &str, key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(plugin_id.len() + key.len() + 1);
    aad.extend_from_slice(plugin_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key.as_bytes());
    aad
}

impl SecretBox {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        SecretBox {
            cipher: ChaCha20Poly1305::new(&key.into()),
            derive_base: {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(b"switchboard derive v1\0");
                h.update(key);
                h.finalize().into()
            },
        }
    }

    /// A 32-byte key for `purpose`, derived from the store key: the same on every
    /// node and across restarts, and useless for opening secrets.
    pub(crate) fn derive(&self, purpose: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.derive_base);
        h.update(purpose.as_bytes());
        h.finalize().into()
    }

    pub(crate) fn seal(&self, plugin_id: &str, key: &str, plaintext: &str) -> Result<String> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = aad(plugin_id, key);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Crypto {
                plugin_id: plugin_id.to_owned(),
                key: key.to_owned(),
            })?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{PREFIX}{}", B64.encode(sealed)))
    }

    pub(crate) fn open(&self, plugin_id: &str, key: &str, stored: &str) -> Result<String> {
        let fail = || StoreError::Crypto {
            plugin_id: plugin_id.to_owned(),
            key: key.to_owned(),
        };
        let encoded = stored.strip_prefix(PREFIX).ok_or_else(fail)?;
        let sealed = B64.decode(encoded).map_err(|_| fail())?;
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = aad(plugin_id, key);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let b = SecretBox::new([7; 32]);
        let a1 = b.seal("sms", "auth_token", "hunter2").unwrap();
        let a2 = b.seal("sms", "auth_token", "hunter2").unwrap();
        assert_ne!(a1, a2, "nonce must differ per value");
        assert!(!a1.contains("hunter2"));
        assert_eq!(b.open("sms", "auth_token", &a1).unwrap(), "hunter2");
    }

    #[test]
    fn wrong_key_slot_or_tampering_fails() {
        let b = SecretBox::new([7; 32]);
        let sealed = b.seal("sms", "auth_token", "hunter2").unwrap();
        assert!(b.open("sms", "other_key", &sealed).is_err());
        assert!(b.open("other", "auth_token", &sealed).is_err());
        assert!(
            SecretBox::new([8; 32])
                .open("sms", "auth_token", &sealed)
                .is_err()
        );
        let mut bytes = B64.decode(&sealed[3..]).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        let tampered = format!("v1:{}", B64.encode(bytes));
        assert!(b.open("sms", "auth_token", &tampered).is_err());
        assert!(b.open("sms", "auth_token", "hunter2").is_err());
    }
}
