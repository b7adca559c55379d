//! [`PluginHost::copy_attachment`]: an inbound file into the caller's
//! [`BlobSink`], written by the connector through a lent `blob-writer`
//! (`switchboard:mail@0.2.0`) or downloaded the way every other connector's
//! files are.

use wasmtime::component::Resource;

use super::{BlobSink, BlobWriter, Copied, Refusal};
use crate::{Attachment, DownloadError, PluginError, PluginHost, PluginKind};

/// How `fetch-attachment-to` ended, when the call itself completed.
enum Streamed<S> {
    /// The file is whole in the sink.
    Copied(Copied<S>),
    /// The connector streams no such reference: the sink, untouched.
    Unsupported(S),
}

impl From<Refusal> for DownloadError {
    fn from(refusal: Refusal) -> DownloadError {
        match refusal {
            Refusal::TooLarge(max) => DownloadError::TooLarge {
                max_bytes: usize::try_from(max).unwrap_or(usize::MAX),
            },
            Refusal::Unavailable(message) => DownloadError::Storage(message),
        }
    }
}

impl PluginHost {
    /// Copies an inbound attachment into `sink`, at most `max_bytes`.
    ///
    /// An e-mail connector of `switchboard:mail@0.2.0` writes the file itself
    /// through a `blob-writer` (`attachments.fetch-attachment-to`), so the
    /// file passes the sandbox a piece at a time; every other connector, and
    /// one that answers `unsupported` before writing, goes through
    /// [`PluginHost::download_attachment`] and the bytes are written here.
    /// Inline bytes (`attachment.content`) are written as they are.
    ///
    /// On success the sink holds the whole file and the caller stores it; on
    /// any error the sink is dropped unfinished.
    pub async fn copy_attachment<S: BlobSink>(
        &self,
        id: &str,
        attachment: &Attachment,
        sink: S,
        max_bytes: u64,
    ) -> Result<Copied<S>, DownloadError> {
        let writes_blobs = self.get(id).is_some_and(|p| p.manifest.writes_blobs());
        let mut sink = sink;
        if writes_blobs && attachment.content.is_none() {
            match self
                .fetch_attachment_to(id, attachment, sink, max_bytes)
                .await?
            {
                Streamed::Copied(copied) => return Ok(copied),
                Streamed::Unsupported(returned) => sink = returned,
            }
        }
        let max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let file = self.download_attachment(id, attachment, max).await?;
        let bytes = file.content.len() as u64;
        if bytes > max_bytes {
            return Err(DownloadError::TooLarge { max_bytes: max });
        }
        sink.write(&file.content)
            .await
            .map_err(DownloadError::Storage)?;
        Ok(Copied {
            sink,
            bytes,
            content_type: file.content_type,
        })
    }

    /// `attachments.fetch-attachment-to` with a writer over `sink`. It talks
    /// to the mail server, so it gets the send deadline.
    async fn fetch_attachment_to<S: BlobSink>(
        &self,
        id: &str,
        attachment: &Attachment,
        sink: S,
        max_bytes: u64,
    ) -> Result<Streamed<S>, DownloadError> {
        let timeout = self.inner.limits.send_timeout;
        let (writer, answer) = self
            .call(
                id,
                PluginKind::Channel,
                "fetch-attachment-to",
                timeout,
                async |pre, store| {
                    let export = crate::mailer_of(pre)
                        .and_then(|(pre, mailer)| Some((pre, mailer.fetch_attachment_to?)));
                    let writer = BlobWriter::new(Box::new(sink), max_bytes);
                    let Some((pre, export)) = export else {
                        return Ok((
                            writer,
                            Err(PluginError::Unsupported(format!(
                                "plugin `{id}` exports no `attachments`"
                            ))),
                        ));
                    };
                    let handle = store.data_mut().table_mut().push(writer)?;
                    let lent = Resource::<BlobWriter>::new_borrow(handle.rep());
                    let result = crate::call_fresh::<
                        (&Attachment, Resource<BlobWriter>),
                        (Result<Option<String>, PluginError>,),
                    >(pre, &export, store, (attachment, lent))
                    .await;
                    let writer = store.data_mut().table_mut().delete(handle)?;
                    let (answer,) = result?;
                    Ok((writer, answer))
                },
            )
            .await
            .map_err(DownloadError::Plugin)?;
        match answer {
            Err(PluginError::Unsupported(_)) if writer.written == 0 && writer.refused.is_none() => {
                let (sink, _) = writer.finish::<S>()?;
                Ok(Streamed::Unsupported(sink))
            }
            Err(refused) => {
                // A refused write says more than what the connector made of it.
                writer.finish::<S>()?;
                Err(DownloadError::Refused(refused))
            }
            Ok(content_type) => {
                let (sink, bytes) = writer.finish::<S>()?;
                Ok(Streamed::Copied(Copied {
                    sink,
                    bytes,
                    content_type: content_type.or_else(|| attachment.content_type.clone()),
                }))
            }
        }
    }
}
