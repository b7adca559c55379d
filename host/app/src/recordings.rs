//! Call recordings as files that every node can serve.
//!
//! The node whose media task recorded a call writes the WAV into
//! `{data_dir}/recordings/` (voice does) and records that path on the call. In
//! database mode ([`crate::blobs::FileStore::Database`]) it then keeps the finished
//! file in the database's file store too ([`Recordings::keep`]) and records its key
//! on the call, so another node serves it ([`Recordings::read`]) from its own cache,
//! filled from the database. In folder mode only the path exists, as before.
//!
//! Recordings are host-made and long calls are large: the attachments' size cap
//! does not apply to them.

use std::path::Path;

use switchboard_store::{CallRecord, Store};

use crate::blobs::BlobStore;
use crate::error::{AppError, AppResult, ErrorKind};

/// Where recordings are kept and read.
pub struct Recordings {
    store: Store,
    blobs: BlobStore,
}

impl Recordings {
    /// Recordings over `store`, kept in `blobs` when that store is in the database.
    pub fn new(store: Store, blobs: &BlobStore) -> Recordings {
        Recordings {
            store,
            blobs: blobs.with_max_bytes(u64::MAX),
        }
    }

    /// Keeps call `call_id`'s finished recording at `path` where every node reads
    /// it (database mode; in folder mode the path is all there is).
    pub async fn keep(&self, call_id: &str, path: &Path) -> AppResult<()> {
        if !self.blobs.is_shared() {
            return Ok(());
        }
        let stored = self.blobs.put_file(path).await.map_err(unavailable)?;
        self.store
            .set_call_recording_file(call_id, &stored.key)
            .await?;
        Ok(())
    }

    /// The WAV of `record`: the file this node wrote, else (database mode) the
    /// copy the recording node kept in the database.
    pub async fn read(&self, record: &CallRecord) -> AppResult<Vec<u8>> {
        let path = record
            .recording_path
            .as_deref()
            .ok_or_else(|| AppError::not_found("the call has no recording"))?;
        if let Ok(bytes) = tokio::fs::read(path).await {
            return Ok(bytes);
        }
        let gone = || AppError::not_found("the recording file is gone");
        if !self.blobs.is_shared() {
            return Err(gone());
        }
        let key = self
            .store
            .call_recording_file(&record.id)
            .await?
            .ok_or_else(gone)?;
        self.blobs.get(&key).await.map_err(unavailable)
    }
}

fn unavailable(e: crate::blobs::BlobError) -> AppError {
    tracing::error!("recordings: {e}");
    AppError::new(
        ErrorKind::Unavailable,
        "storage_unavailable",
        "the file store is unavailable",
    )
}
