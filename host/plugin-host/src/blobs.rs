//! `switchboard:mail/blobs` (`switchboard:mail@0.2.0`): the `blob-writer` an
//! e-mail connector writes an inbound file into, piece by piece, and
//! [`crate::PluginHost::copy_attachment`] (in [`copy`]), the way the server
//! copies any inbound file into its blob store.
//!
//! This module owns the writer's limits and how a copy ends. A writer is lent
//! to one call (`attachments.fetch-attachment-to`) as a borrow, so it cannot
//! outlive it; it refuses a write that would take the file past the caller's
//! size limit, and after any refused write it refuses the rest. The caller's
//! [`BlobSink`] comes back to it only when the call returned `ok` and every
//! write was accepted: a caller stores only complete files. When the call
//! fails, traps or times out, the sink is dropped unfinished (the server's
//! blob store then deletes its temporary file). [`host`] binds the writer to
//! the generated WIT traits.
//!
//! It never touches the disk itself: the sink does.

mod copy;
mod host;

use std::any::Any;

use crate::services::BoxFuture;

/// Where a copied file goes: the server's blob store writer (a temporary file
/// hashed as it grows), or a test's memory.
pub trait BlobSink: Any + Send {
    /// Appends `data`. An error stops the copy, which is tried again later.
    fn write<'a>(&'a mut self, data: &'a [u8]) -> BoxFuture<'a, Result<(), String>>;
}

/// A file copied into a sink, complete: the caller stores it.
pub struct Copied<S> {
    /// The caller's sink, holding every byte of the file.
    pub sink: S,
    /// The file's size.
    pub bytes: u64,
    /// The content type the connector or provider declared (the host sniffs
    /// the bytes as well).
    pub content_type: Option<String>,
}

/// Why a writer refuses bytes (`switchboard:mail/blobs.blob-error`); once
/// it refused, it refuses every write after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The file would pass the limit (in bytes).
    TooLarge(u64),
    /// The sink failed.
    Unavailable(String),
}

/// One `blob-writer` resource: the caller's sink, the bytes written and the
/// limit.
pub struct BlobWriter {
    sink: Box<dyn BlobSink>,
    written: u64,
    max_bytes: u64,
    refused: Option<Refusal>,
}

impl BlobWriter {
    fn new(sink: Box<dyn BlobSink>, max_bytes: u64) -> BlobWriter {
        BlobWriter {
            sink,
            written: 0,
            max_bytes,
            refused: None,
        }
    }

    /// Appends `data` unless it would pass the limit or the writer refused
    /// before.
    pub(crate) async fn write(&mut self, data: &[u8]) -> Result<(), Refusal> {
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        let after = self.written.saturating_add(data.len() as u64);
        let refusal = if after > self.max_bytes {
            Refusal::TooLarge(self.max_bytes)
        } else {
            match self.sink.write(data).await {
                Ok(()) => {
                    self.written = after;
                    return Ok(());
                }
                Err(message) => Refusal::Unavailable(message),
            }
        };
        self.refused = Some(refusal.clone());
        Err(refusal)
    }

    /// The sink back with the file's size, if every write was accepted.
    fn finish<S: BlobSink>(self) -> Result<(S, u64), Refusal> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        let sink: Box<dyn Any> = self.sink;
        let sink = sink
            .downcast::<S>()
            .expect("a writer holds the sink it was made with");
        Ok((*sink, self.written))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Keeps what it is given in shared memory; fails writes once `fail_at`
    /// bytes are in.
    struct Memory {
        bytes: Arc<Mutex<Vec<u8>>>,
        fail_at: Option<usize>,
    }

    impl BlobSink for Memory {
        fn write<'a>(&'a mut self, data: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                let mut bytes = self.bytes.lock().unwrap();
                if self.fail_at.is_some_and(|at| bytes.len() + data.len() > at) {
                    return Err("disk full".to_owned());
                }
                bytes.extend_from_slice(data);
                Ok(())
            })
        }
    }

    fn writer(max_bytes: u64, fail_at: Option<usize>) -> (BlobWriter, Arc<Mutex<Vec<u8>>>) {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = Memory {
            bytes: bytes.clone(),
            fail_at,
        };
        (BlobWriter::new(Box::new(sink), max_bytes), bytes)
    }

    #[tokio::test]
    async fn a_writer_takes_bytes_up_to_its_limit_and_hands_the_sink_back() {
        let (mut w, bytes) = writer(10, None);
        w.write(b"hello").await.unwrap();
        w.write(b"world").await.unwrap();
        let (sink, size) = w.finish::<Memory>().unwrap();
        assert_eq!(size, 10);
        assert_eq!(*sink.bytes.lock().unwrap(), b"helloworld");
        assert_eq!(*bytes.lock().unwrap(), b"helloworld");
    }

    #[tokio::test]
    async fn a_write_past_the_limit_is_refused_whole_and_stops_the_writer() {
        let (mut w, bytes) = writer(8, None);
        w.write(b"hello").await.unwrap();
        assert_eq!(w.write(b"world").await, Err(Refusal::TooLarge(8)));
        // Nothing of the refused write reached the sink, and even a write
        // that would fit is refused now.
        assert_eq!(*bytes.lock().unwrap(), b"hello");
        assert_eq!(w.write(b"!").await, Err(Refusal::TooLarge(8)));
        assert_eq!(w.finish::<Memory>().err(), Some(Refusal::TooLarge(8)));
    }

    #[tokio::test]
    async fn a_failing_sink_stops_the_writer() {
        let (mut w, _) = writer(100, Some(4));
        w.write(b"abc").await.unwrap();
        let full = Refusal::Unavailable("disk full".into());
        assert_eq!(w.write(b"def").await, Err(full.clone()));
        assert_eq!(w.write(b"").await, Err(full.clone()));
        assert_eq!(w.finish::<Memory>().err(), Some(full));
    }
}
