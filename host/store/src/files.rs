//! Files kept in the database, for nodes that share it (`[cluster] file_store =
//! "database"`): attachments, call recordings and plugin components, by content key.
//!
//! A file is a `blob` row (key, size) and its bytes in `blob_chunk` rows of
//! [`FILE_CHUNK_BYTES`], written in one transaction ([`Store::begin_file`], then
//! [`FileUpload::write`] and [`FileUpload::commit`]), so a reader never sees half a
//! file: the `blob` row exists only once every chunk does. The same key stored twice
//! (the same bytes, from two nodes at once) is kept once: the second writer finds
//! the row, or waits on the first one's insert and then finds it. Reading is one
//! chunk per query ([`Store::file_chunk`]), so a large file never sits whole in
//! memory.
//!
//! The store does not hash or check what it is given: the key is the caller's (the
//! host's blob store hashes every file before it calls here and checks what it reads
//! back). Nothing here touches the disk.

use sqlx::Any;

use crate::Store;
use crate::db::{RowExt, wall_clock_ms};
use crate::error::{Result, StoreError};

/// The size of every chunk but a file's last.
pub const FILE_CHUNK_BYTES: usize = 1 << 20;

/// A file being stored: chunks go into an open transaction, and nothing is visible
/// until [`FileUpload::commit`]. Dropped uncommitted, it stores nothing.
pub struct FileUpload {
    tx: sqlx::Transaction<'static, Any>,
    key: String,
    size: u64,
    written: u64,
    next: i64,
    pending: Vec<u8>,
}

impl std::fmt::Debug for FileUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileUpload")
            .field("key", &self.key)
            .field("size", &self.size)
            .field("written", &self.written)
            .finish()
    }
}

impl Store {
    /// The size of the file stored under `key`, if it is stored.
    pub async fn file_size(&self, key: &str) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT size FROM blob WHERE key = $1")
            .bind(key.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let size = r.int("size")?;
            u64::try_from(size).map_err(|e| StoreError::corrupt("size", e))
        })
        .transpose()
    }

    /// Starts storing the `size` bytes of the file `key`; `None` when it is stored
    /// already (by this node or another), and then nothing is written.
    pub async fn begin_file(&self, key: &str, size: u64) -> Result<Option<FileUpload>> {
        let size_value =
            i64::try_from(size).map_err(|_| StoreError::Invalid("file too large".into()))?;
        let mut tx = self.begin_write().await?;
        // Two nodes storing the same file: the second insert waits for the first
        // transaction and then conflicts, so the file is written once.
        let inserted = sqlx::query(
            "INSERT INTO blob (key, size, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key.to_owned())
        .bind(size_value)
        .bind(wall_clock_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        Ok(Some(FileUpload {
            tx,
            key: key.to_owned(),
            size,
            written: 0,
            next: 0,
            pending: Vec::with_capacity(FILE_CHUNK_BYTES.min(size as usize)),
        }))
    }

    /// Chunk `n` (from 0) of the file `key`, `None` past its end or when the file is
    /// not stored. Chunk `n` starts at byte `n * FILE_CHUNK_BYTES`.
    pub async fn file_chunk(&self, key: &str, n: u64) -> Result<Option<Vec<u8>>> {
        let n = i64::try_from(n).map_err(|_| StoreError::Invalid("chunk number".into()))?;
        let row = sqlx::query("SELECT bytes FROM blob_chunk WHERE key = $1 AND n = $2")
            .bind(key.to_owned())
            .bind(n)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| r.blob("bytes")).transpose()
    }

    /// The stored file of installed plugin `id`'s component, if it was installed in
    /// database mode (`PluginInstall::component`, recorded with the manifest in one
    /// statement, so a node never pairs a new manifest with an old component).
    pub async fn plugin_component(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT component_blob FROM plugin WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("plugin", id))?;
        row.opt_text("component_blob")
    }

    /// Records that call `id`'s recording is the stored file `key`.
    pub async fn set_call_recording_file(&self, id: &str, key: &str) -> Result<()> {
        let done = sqlx::query("UPDATE call_record SET recording_blob = $2 WHERE id = $1")
            .bind(id.to_owned())
            .bind(key.to_owned())
            .execute(self.pool())
            .await?
            .rows_affected();
        if done == 0 {
            return Err(StoreError::not_found("call", id));
        }
        Ok(())
    }

    /// The stored file of call `id`'s recording, once the node that recorded it
    /// kept it in the database.
    pub async fn call_recording_file(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT recording_blob FROM call_record WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("call", id))?;
        row.opt_text("recording_blob")
    }
}

impl FileUpload {
    /// Appends `data`; whole chunks go to the database as they fill.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<()> {
        if self.written + self.pending.len() as u64 + data.len() as u64 > self.size {
            return Err(StoreError::Invalid(format!(
                "file {} is longer than the {} bytes announced",
                self.key, self.size
            )));
        }
        while !data.is_empty() {
            let room = FILE_CHUNK_BYTES - self.pending.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.pending.extend_from_slice(now);
            data = later;
            if self.pending.len() == FILE_CHUNK_BYTES {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.pending);
        self.written += bytes.len() as u64;
        sqlx::query("INSERT INTO blob_chunk (key, n, bytes) VALUES ($1, $2, $3)")
            .bind(self.key.clone())
            .bind(self.next)
            .bind(bytes)
            .execute(&mut *self.tx)
            .await?;
        self.next += 1;
        Ok(())
    }

    /// Writes the last chunk and commits: the file is visible to every node. Refused
    /// (and nothing stored) when fewer bytes came than announced.
    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        if self.written != self.size {
            return Err(StoreError::Invalid(format!(
                "file {} has {} of the {} bytes announced",
                self.key, self.written, self.size
            )));
        }
        self.tx.commit().await?;
        Ok(())
    }
}
