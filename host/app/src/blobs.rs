//! The blob store: files kept by content, in a folder under the data directory.
//!
//! A file's key is the SHA-256 of its bytes (hex), stored at `ab/cdef…` so no
//! folder grows too large; the same file received twice is stored once. A write
//! goes to a temporary file that is renamed into place, so a reader never sees half
//! a file and a crash leaves at most a stray temporary. Files are never executed or
//! served with a type the browser would run: see [`safe_inline`].
//!
//! Bytes in memory are kept with [`BlobStore::put`]. A file that arrives in
//! pieces (an attachment a connector streams) goes through a [`BlobWriter`]:
//! each piece is hashed and appended to a temporary file in `.incoming/`, and
//! [`BlobWriter::finish`] renames it to its key, so the file is never held
//! whole in memory. A writer dropped unfinished deletes its temporary file.
//!
//! # Where files live: [`FileStore`]
//!
//! By default (`folder`) the folder is the store. With `[cluster] file_store =
//! "database"`, for several nodes on one database, the database is the store and
//! the folder is this node's cache of it ([`BlobStore::in_database`]): a file is
//! hashed first (spooled to the temporary file when it arrives in pieces), then
//! copied into the database in 1 MiB chunks in one transaction
//! (`switchboard_store::FileUpload`), then renamed into the folder; a read takes
//! the folder's copy when there is one, else streams the chunks into the folder
//! (checking they hash to their key) and serves that. Keys, caps and the API are
//! the same in both modes, so callers never know which one runs. The cache is
//! never evicted by the host; deleting it is safe (it fills again on read).
//!
//! Host-made files that are not attachments — call recordings, installed plugin
//! components — use the same store through [`BlobStore::with_max_bytes`] and
//! [`BlobStore::put_file`], and are read back on another node with
//! [`BlobStore::local_path`].

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use switchboard_store::{FILE_CHUNK_BYTES, Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a [`BlobWriter`] keeps of a file's start, for [`sniff`]: enough for
/// every magic number, and for the ZIP entries that tell an Office document
/// from a plain archive.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// Where writers keep files until they are whole, under the store's folder.
const INCOMING: &str = ".incoming";

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
    /// The database behind the store failed (database mode).
    #[error("blob store: the database: {0}")]
    Database(#[from] StoreError),
}

/// Where a node's files live (`[cluster] file_store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStore {
    /// A folder under the data directory: one node (the default).
    #[default]
    Folder,
    /// The database, with the folder as this node's cache: several nodes on one
    /// database each read every file.
    Database,
}

impl FileStore {
    /// `"folder"` or `"database"`, as the settings spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStore::Folder => "folder",
            FileStore::Database => "database",
        }
    }

    /// The blob store of this choice: files up to `max_bytes` under `dir`, in
    /// `store`'s database too when the choice is [`FileStore::Database`].
    pub fn blobs(self, dir: impl Into<PathBuf>, max_bytes: u64, store: &Store) -> BlobStore {
        match self {
            FileStore::Folder => BlobStore::new(dir, max_bytes),
            FileStore::Database => BlobStore::in_database(dir, max_bytes, store.clone()),
        }
    }
}

impl std::str::FromStr for FileStore {
    type Err = String;

    fn from_str(text: &str) -> Result<FileStore, String> {
        match text {
            "folder" => Ok(FileStore::Folder),
            "database" => Ok(FileStore::Database),
            other => Err(format!(
                "file_store {other:?} is not \"folder\" or \"database\""
            )),
        }
    }
}

/// Content-addressed files under one folder, and in the database in database
/// mode (see the module doc).
#[derive(Clone)]
pub struct BlobStore {
    dir: PathBuf,
    max_bytes: u64,
    /// Database mode: the store of truth; `dir` is then this node's cache.
    database: Option<Store>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .field("in_database", &self.database.is_some())
            .finish()
    }
}

impl BlobStore {
    /// A store in `dir` (created when needed) that keeps files up to `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> BlobStore {
        BlobStore {
            dir: dir.into(),
            max_bytes,
            database: None,
        }
    }

    /// A store whose files live in `store`'s database, with `dir` as this node's
    /// cache of the files it wrote or read.
    pub fn in_database(dir: impl Into<PathBuf>, max_bytes: u64, store: Store) -> BlobStore {
        BlobStore {
            dir: dir.into(),
            max_bytes,
            database: Some(store),
        }
    }

    /// Whether files live in the database (every node reads them).
    pub fn is_shared(&self) -> bool {
        self.database.is_some()
    }

    /// The same store with another size cap: host-made files (recordings,
    /// plugin components) are not bound by the attachments' cap.
    pub fn with_max_bytes(&self, max_bytes: u64) -> BlobStore {
        BlobStore {
            max_bytes,
            ..self.clone()
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
        if let Some(store) = &self.database
            && let Some(mut upload) = store.begin_file(&key, size).await?
        {
            upload.write(bytes).await?;
            upload.commit().await?;
        }
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
        Ok(tokio::fs::read(self.local_path(key).await?).await?)
    }

    /// The file under `key` on this node's disk: the folder's copy, filled from
    /// the database first in database mode when this node has none.
    pub async fn local_path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let path = self.path(key)?;
        if self.database.is_some() && !tokio::fs::try_exists(&path).await? {
            self.fill(key).await?;
        }
        Ok(path)
    }

    /// Keeps the file at `path` (read in pieces, never whole) and returns what
    /// was stored; the file itself is left where it is.
    pub async fn put_file(&self, path: &Path) -> Result<StoredBlob, BlobError> {
        let mut file = tokio::fs::File::open(path).await?;
        let mut writer = self.writer().await?;
        let mut piece = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut piece).await?;
            if n == 0 {
                break;
            }
            writer.write(&piece[..n]).await?;
        }
        writer.finish().await
    }

    /// Copies the file `key` from the database into the folder, a chunk at a
    /// time, refusing bytes that do not hash to their key.
    async fn fill(&self, key: &str) -> Result<(), BlobError> {
        let Some(store) = &self.database else {
            return Ok(());
        };
        let missing = || {
            BlobError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file in the database",
            ))
        };
        let size = store.file_size(key).await?.ok_or_else(missing)?;
        // The folder alone, uncapped: the file was capped when it was stored.
        let cache = BlobStore::new(self.dir.clone(), u64::MAX);
        let mut writer = cache.writer().await?;
        let mut n = 0;
        while let Some(chunk) = store.file_chunk(key, n).await? {
            writer.write(&chunk).await?;
            n += 1;
        }
        if writer.size() != size {
            return Err(BlobError::Io(std::io::Error::other(format!(
                "the database holds {} of the {size} bytes of file {key}",
                writer.size()
            ))));
        }
        let stored = writer.finish().await?;
        if !stored.key.eq_ignore_ascii_case(key) {
            return Err(BlobError::Io(std::io::Error::other(format!(
                "the database's bytes of file {key} hash to {}",
                stored.key
            ))));
        }
        Ok(())
    }

    /// A writer for one file that arrives in pieces, up to the size cap.
    pub async fn writer(&self) -> Result<BlobWriter, BlobError> {
        let folder = self.dir.join(INCOMING);
        tokio::fs::create_dir_all(&folder).await?;
        let temp = folder.join(uuid::Uuid::new_v4().to_string());
        let file = tokio::fs::File::create_new(&temp).await?;
        Ok(BlobWriter {
            store: self.clone(),
            file: Some(file),
            temp: Some(temp),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
        })
    }
}

/// A file of the [`BlobStore`] being written piece by piece (see the module
/// doc). Dropped without [`BlobWriter::finish`], it leaves nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    file: Option<tokio::fs::File>,
    /// The temporary file; `None` once renamed into place or removed.
    temp: Option<PathBuf>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

/// A file a [`BlobWriter`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its first [`SNIFF_BYTES`], for [`sniff`].
    pub head: Vec<u8>,
}

impl BlobWriter {
    /// Appends `data`; refused whole, and the file with it, when the file
    /// would pass the store's size cap.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        let size = self.size + data.len() as u64;
        if size > self.store.max_bytes {
            self.discard();
            return Err(BlobError::TooLarge {
                size,
                max: self.store.max_bytes,
            });
        }
        let Some(file) = self.file.as_mut() else {
            return Err(BlobError::Io(std::io::Error::other(
                "the file was discarded after an earlier failure",
            )));
        };
        if let Err(e) = file.write_all(data).await {
            self.discard();
            return Err(e.into());
        }
        self.hasher.update(data);
        let room = SNIFF_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&data[..room.min(data.len())]);
        self.size = size;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Keeps the file under its key; the same file already stored is kept once.
    pub async fn finish(mut self) -> Result<StoredBlob, BlobError> {
        let (Some(mut file), Some(temp)) = (self.file.take(), self.temp.clone()) else {
            return Err(BlobError::Io(std::io::Error::other(
                "the file was discarded after an earlier failure",
            )));
        };
        // A tokio file may still hold a write in flight; it must be on disk
        // before the rename makes the file visible.
        file.flush().await?;
        drop(file);
        let key = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let path = self.store.path(&key)?;
        if let Some(store) = &self.store.database {
            // Failing here drops the writer, which deletes the temporary file.
            copy_into_database(store, &key, self.size, &temp).await?;
        }
        let folder = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(folder).await?;
        if tokio::fs::try_exists(&path).await? {
            tokio::fs::remove_file(&temp).await?;
        } else {
            tokio::fs::rename(&temp, &path).await?;
        }
        self.temp = None;
        Ok(StoredBlob {
            key,
            size: self.size,
            head: std::mem::take(&mut self.head),
        })
    }

    /// Closes and deletes the temporary file.
    fn discard(&mut self) {
        self.file = None;
        if let Some(temp) = self.temp.take() {
            // Dropping happens on a runtime thread; unlinking one file is
            // quick, and leaving it would leak disk.
            let _ = std::fs::remove_file(temp);
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

/// Stores the file at `path` under `key` in the database, read a chunk at a
/// time, unless the database has it already.
async fn copy_into_database(
    store: &Store,
    key: &str,
    size: u64,
    path: &Path,
) -> Result<(), BlobError> {
    let Some(mut upload) = store.begin_file(key, size).await? else {
        return Ok(());
    };
    let mut file = tokio::fs::File::open(path).await?;
    let mut chunk = vec![0u8; FILE_CHUNK_BYTES];
    loop {
        let n = file.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        upload.write(&chunk[..n]).await?;
    }
    upload.commit().await?;
    Ok(())
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

    /// Every file under the store's folder, temporary ones included.
    fn files_in(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut folders = vec![dir.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files
    }

    #[tokio::test]
    async fn a_writer_stores_pieces_under_the_same_key_as_put() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::new(dir.path(), 1 << 20);
        let file: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut writer = blobs.writer().await.unwrap();
        for piece in file.chunks(65_537) {
            writer.write(piece).await.unwrap();
        }
        assert_eq!(writer.size(), file.len() as u64);
        let stored = writer.finish().await.unwrap();
        assert_eq!(stored.key, hex::encode(Sha256::digest(&file)));
        assert_eq!(stored.size, file.len() as u64);
        assert_eq!(stored.head, file[..SNIFF_BYTES]);
        assert_eq!(blobs.get(&stored.key).await.unwrap(), file);
        assert_eq!(blobs.put(&file).await.unwrap(), stored.key);
        // The same file streamed again is kept once; no temporary is left.
        let mut again = blobs.writer().await.unwrap();
        again.write(&file).await.unwrap();
        assert_eq!(again.finish().await.unwrap().key, stored.key);
        assert_eq!(files_in(dir.path()), vec![blobs.path(&stored.key).unwrap()]);
    }

    #[tokio::test]
    async fn a_writer_over_the_cap_or_dropped_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::new(dir.path(), 10);
        let mut writer = blobs.writer().await.unwrap();
        writer.write(b"0123456").await.unwrap();
        assert_eq!(files_in(dir.path()).len(), 1, "the temporary file");
        assert!(matches!(
            writer.write(b"789A").await,
            Err(BlobError::TooLarge { size: 11, max: 10 })
        ));
        assert!(files_in(dir.path()).is_empty(), "discarded at once");
        assert!(writer.write(b"").await.is_err(), "the writer stays refused");
        assert!(writer.finish().await.is_err());
        assert!(files_in(dir.path()).is_empty());

        let mut unfinished = blobs.writer().await.unwrap();
        unfinished.write(b"half").await.unwrap();
        drop(unfinished);
        assert!(files_in(dir.path()).is_empty());
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
