//! The blob store: files kept by content, in a folder under the data directory.
//!
//! A file's key is the SHA-256 of its bytes (hex), stored at `ab/cdef…` so no
//! folder grows too large; the same file received twice is stored once. A write
//! goes to a temporary file that is renamed into place, so a reader never sees half
//! a file and a crash leaves at most a stray temporary. Files are never executed or
//! served with a type the browser would run: see [`safe_inline`].

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a file could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Over the size cap.
    #[error("the file is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// The disk failed.
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    /// Not a key this store makes.
    #[error("not a blob key")]
    BadKey,
}

/// Content-addressed files under one folder.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    max_bytes: u64,
}

impl BlobStore {
    /// A store in `dir` (created when needed) that keeps files up to `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> BlobStore {
        BlobStore {
            dir: dir.into(),
            max_bytes,
        }
    }

    /// The size cap in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BlobError::BadKey);
        }
        Ok(self.dir.join(&key[..2]).join(&key[2..]))
    }

    /// Keeps `bytes` and returns their key.
    pub async fn put(&self, bytes: &[u8]) -> Result<String, BlobError> {
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(BlobError::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        let key = hex::encode(Sha256::digest(bytes));
        let path = self.path(&key)?;
        if tokio::fs::try_exists(&path).await? {
            return Ok(key);
        }
        let folder = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(folder).await?;
        let temp = folder.join(format!(".{}.{}", &key[2..], uuid::Uuid::new_v4()));
        tokio::fs::write(&temp, bytes).await?;
        if let Err(e) = tokio::fs::rename(&temp, &path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e.into());
        }
        Ok(key)
    }

    /// The bytes under `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        Ok(tokio::fs::read(self.path(key)?).await?)
    }
}

/// What the bytes are: the type their magic numbers show, else the declared one
/// (for text formats, which have none), else `application/octet-stream`.
pub fn sniff(bytes: &[u8], declared: Option<&str>) -> String {
    if let Some(kind) = infer::get(bytes) {
        return kind.mime_type().to_string();
    }
    match declared.map(|d| {
        d.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }) {
        Some(d) if !d.is_empty() && d.contains('/') && !d.contains(char::is_whitespace) => d,
        _ => "application/octet-stream".to_string(),
    }
}

/// Types a browser may show inline: raster images, audio and video. Everything
/// else — HTML, SVG (which runs scripts), PDF, text — is served as a download.
pub fn safe_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp" | "image/avif"
    ) || (content_type.starts_with("audio/") || content_type.starts_with("video/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];

    #[tokio::test]
    async fn stores_by_content_once_and_caps_size() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::new(dir.path(), 32);
        let a = blobs.put(b"hello").await.unwrap();
        let b = blobs.put(b"hello").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a, hex::encode(Sha256::digest(b"hello")));
        assert_eq!(blobs.get(&a).await.unwrap(), b"hello");
        assert!(matches!(
            blobs.put(&[0u8; 33]).await,
            Err(BlobError::TooLarge { size: 33, max: 32 })
        ));
        assert!(matches!(
            blobs.get("../../etc/passwd").await,
            Err(BlobError::BadKey)
        ));
        // No temporary files are left behind.
        let folder = dir.path().join(&a[..2]);
        assert_eq!(std::fs::read_dir(folder).unwrap().count(), 1);
    }

    #[test]
    fn sniffing_trusts_the_bytes_over_the_label() {
        assert_eq!(sniff(PNG, Some("text/html")), "image/png");
        assert_eq!(
            sniff(b"plain words", Some("text/plain; charset=utf-8")),
            "text/plain"
        );
        assert_eq!(sniff(b"plain words", None), "application/octet-stream");
        assert_eq!(sniff(b"x", Some("not a type")), "application/octet-stream");
    }

    #[test]
    fn only_media_is_shown_inline() {
        assert!(safe_inline("image/png"));
        assert!(safe_inline("video/mp4"));
        assert!(!safe_inline("image/svg+xml"));
        assert!(!safe_inline("text/html"));
        assert!(!safe_inline("application/pdf"));
    }
}
