//! Mailgun's own retries told apart from replayed signatures.
//!
//! Mailgun signs only `timestamp` and `token`, not the content, so whoever
//! saw one posting could post other content under its signature while it is
//! fresh. Refusing every token seen before would also refuse Mailgun's retry
//! of a posting the host could not store (the same token and the same
//! content, sent again after an error), and that mail would be lost. So each
//! verified token is recorded with the SHA-256 of its posting's content:
//!
//! - a token not seen: recorded, accepted;
//! - a token seen with the same content: a retry, accepted again (ingest is
//!   idempotent on the Message-ID, nothing is stored twice);
//! - a token seen with other content: a replayed signature, refused.
//!
//! A record lives as long as its posting could pass the staleness check:
//! until `timestamp` + [`super::MAX_AGE_SECS`]; after that the signature is
//! refused as stale anyway. The kv has no expiry and cannot list keys, so records
//! live in a fixed table of [`SLOTS`] keys, each holding up to [`WAYS`]
//! records of the tokens whose digest falls into it: expired records are
//! dropped whenever a slot is written, and the store never holds more than
//! the table (about 1.2 MB when every way is full: 16 384 postings within 15
//! minutes, some 18 a second). A slot overfilled with live records loses its
//! oldest, which then could be replayed: warned, and far beyond any
//! mailbox's rate.
//!
//! Two postings handled at once that fall into one slot may both write it
//! and one record is lost (the kv has no compare-and-set); that costs the
//! replay check of that one posting, never a mail.

use sha2::{Digest, Sha256};
use switchboard_sdk::PluginError;

use crate::formdata::Field;
use crate::store::Store;

/// Keys of the record table.
pub const SLOTS: u64 = 1024;
/// Records per key at most.
pub const WAYS: usize = 16;
/// Bytes of one record: token digest, content digest, expiry (big-endian).
const RECORD: usize = 32 + 32 + 8;

/// One recorded token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    token: [u8; 32],
    content: [u8; 32],
    expires_at_secs: u64,
}

/// The SHA-256 of a form posting's content: every field, in any order (a
/// retry may be encoded anew), with its name, file name and type.
pub fn form_digest(fields: &[Field]) -> [u8; 32] {
    let mut parts: Vec<&Field> = fields.iter().collect();
    parts.sort_by(|a, b| {
        (&a.name, &a.filename, &a.content_type, &a.data).cmp(&(
            &b.name,
            &b.filename,
            &b.content_type,
            &b.data,
        ))
    });
    let mut hash = Sha256::new();
    for field in parts {
        for piece in [
            field.name.as_bytes(),
            field.filename.as_deref().unwrap_or_default().as_bytes(),
            field.content_type.as_deref().unwrap_or_default().as_bytes(),
            &field.data,
        ] {
            // Length-prefixed, so no two postings hash alike by moving bytes
            // from one field into the next.
            hash.update((piece.len() as u64).to_be_bytes());
            hash.update(piece);
        }
        hash.update([u8::from(field.filename.is_some())]);
    }
    hash.finalize().into()
}

/// The SHA-256 of a JSON posting's content (an event): its value written
/// out again, so spacing does not matter.
pub fn json_digest(body: &serde_json::Value) -> [u8; 32] {
    Sha256::digest(body.to_string().as_bytes()).into()
}

fn slot_key(token: &[u8; 32]) -> String {
    let mut first = [0u8; 8];
    first.copy_from_slice(&token[..8]);
    format!("mailgun:replay:{}", u64::from_be_bytes(first) % SLOTS)
}

fn decode(bytes: &[u8]) -> Vec<Record> {
    bytes
        .chunks_exact(RECORD)
        .map(|chunk| {
            let mut token = [0u8; 32];
            let mut content = [0u8; 32];
            let mut expires = [0u8; 8];
            token.copy_from_slice(&chunk[..32]);
            content.copy_from_slice(&chunk[32..64]);
            expires.copy_from_slice(&chunk[64..]);
            Record {
                token,
                content,
                expires_at_secs: u64::from_be_bytes(expires),
            }
        })
        .collect()
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * RECORD);
    for record in records {
        out.extend_from_slice(&record.token);
        out.extend_from_slice(&record.content);
        out.extend_from_slice(&record.expires_at_secs.to_be_bytes());
    }
    out
}

/// What [`check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A token not seen before, now recorded; `evicted` live records of
    /// other tokens made room for it (the slot was full).
    New { evicted: usize },
    /// The token again with the same content: Mailgun retrying.
    Retry,
}

/// Records `token` (already verified) with the digest of its posting's
/// content until `valid_until_secs` (when its signature goes stale), or
/// refuses it when it was recorded with other content.
///
/// # Errors
///
/// [`PluginError::Unauthorized`] for a token seen with other content.
pub fn check(
    store: &mut dyn Store,
    token: &str,
    content: [u8; 32],
    valid_until_secs: u64,
    now_secs: u64,
) -> Result<Seen, PluginError> {
    let token: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let key = slot_key(&token);
    let mut records: Vec<Record> = decode(&store.get(&key).unwrap_or_default())
        .into_iter()
        .filter(|r| r.expires_at_secs >= now_secs)
        .collect();
    if let Some(seen) = records.iter().find(|r| r.token == token) {
        return if seen.content == content {
            Ok(Seen::Retry)
        } else {
            Err(PluginError::Unauthorized(
                "Mailgun token already used for a posting with other content: a replayed \
                 signature"
                    .into(),
            ))
        };
    }
    records.push(Record {
        token,
        content,
        expires_at_secs: valid_until_secs,
    });
    let mut evicted = 0;
    if records.len() > WAYS {
        records.sort_by_key(|r| r.expires_at_secs);
        evicted = records.len() - WAYS;
        records.drain(..evicted);
    }
    store.set(&key, &encode(&records));
    Ok(Seen::New { evicted })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailgun::MAX_AGE_SECS;
    use crate::testing::Memory;

    const NOW: u64 = 1_700_000_000;
    const UNTIL: u64 = NOW + MAX_AGE_SECS;

    fn field(name: &str, value: &str) -> Field {
        Field {
            name: name.into(),
            filename: None,
            content_type: None,
            data: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_retry_is_accepted_and_other_content_refused() {
        let mut store = Memory::default();
        let posting = [field("token", "t1"), field("body-plain", "hello")];
        let digest = form_digest(&posting);
        assert_eq!(
            check(&mut store, "t1", digest, UNTIL, NOW).unwrap(),
            Seen::New { evicted: 0 }
        );
        // Mailgun's retry, fields encoded in another order.
        let retry = [field("body-plain", "hello"), field("token", "t1")];
        assert_eq!(
            check(&mut store, "t1", form_digest(&retry), UNTIL, NOW + 60).unwrap(),
            Seen::Retry
        );
        // The same signature on other content.
        let forged = [field("token", "t1"), field("body-plain", "pay me")];
        assert!(matches!(
            check(&mut store, "t1", form_digest(&forged), UNTIL, NOW + 61),
            Err(PluginError::Unauthorized(m)) if m.contains("replayed")
        ));
        // Another token is another posting.
        assert_eq!(
            check(&mut store, "t2", form_digest(&forged), UNTIL, NOW + 62).unwrap(),
            Seen::New { evicted: 0 }
        );
        assert!(store.0.len() <= 2, "{:?}", store.0.keys());
    }

    #[test]
    fn digests_tell_fields_apart() {
        let a = form_digest(&[field("a", "bc")]);
        assert_ne!(a, form_digest(&[field("ab", "c")]));
        assert_ne!(
            form_digest(&[field("a", "b"), field("c", "")]),
            form_digest(&[field("a", "bc")])
        );
        let mut file = field("attachment-1", "%PDF");
        file.filename = Some("a.pdf".into());
        assert_ne!(
            form_digest(&[file]),
            form_digest(&[field("attachment-1", "%PDF")])
        );
        assert_eq!(
            json_digest(&serde_json::json!({"a": 1, "b": [2]})),
            json_digest(&serde_json::from_str(r#"{ "a" : 1 , "b" : [ 2 ] }"#).unwrap())
        );
    }

    #[test]
    fn records_expire_with_the_signature() {
        let mut store = Memory::default();
        check(&mut store, "t1", [1; 32], UNTIL, NOW).unwrap();
        // Still fresh at the last second the signature passes: refused.
        assert!(check(&mut store, "t1", [2; 32], UNTIL, UNTIL).is_err());
        // Past that, the record is gone (verify refuses such a posting
        // before it gets here) and the slot is cleaned when written.
        assert_eq!(
            check(&mut store, "t1", [2; 32], UNTIL, UNTIL + 1).unwrap(),
            Seen::New { evicted: 0 }
        );
        let key = slot_key(&Sha256::digest(b"t1").into());
        assert_eq!(decode(&store.get(&key).unwrap()).len(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut store = Memory::default();
        for i in 0..(SLOTS as usize * 3) {
            check(&mut store, &format!("token-{i}"), [0; 32], UNTIL, NOW).unwrap();
        }
        assert!(store.0.len() as u64 <= SLOTS);
        let max = store.0.values().map(Vec::len).max().unwrap();
        assert!(max <= WAYS * RECORD, "{max}");
        // An overfilled slot keeps the records that live longest.
        let mut store = Memory::default();
        let slot = |t: &str| slot_key(&Sha256::digest(t.as_bytes()).into());
        let in_one_slot: Vec<String> = (0..)
            .map(|i| format!("token-{i}"))
            .filter(|t| slot(t) == slot("token-0"))
            .take(WAYS + 1)
            .collect();
        for (i, token) in in_one_slot.iter().enumerate() {
            let seen = check(&mut store, token, [0; 32], UNTIL + i as u64, NOW).unwrap();
            let evicted = usize::from(i == WAYS);
            assert_eq!(seen, Seen::New { evicted });
        }
        assert!(check(&mut store, &in_one_slot[WAYS], [9; 32], UNTIL, NOW).is_err());
        // The first, which expired soonest, is forgotten.
        assert!(matches!(
            check(&mut store, &in_one_slot[0], [9; 32], UNTIL, NOW),
            Ok(Seen::New { .. })
        ));
    }
}
