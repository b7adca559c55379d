//! `test-blobs`: an e-mail connector of `switchboard:mail@0.2.0`, written
//! against the SDK like a third party's, whose `fetch-attachment-to` writes
//! what the attachment's URL says, for the host's tests of the blob writer.
//!
//! - `write:{total}:{piece}`: `total` bytes of a known pattern (byte `i` is
//!   `(i * 31 + 7) % 251`), in writes of `piece` bytes; a refused write is
//!   returned as the call's error. Answers the type `application/x-test`.
//! - `ignore:{total}:{piece}`: the same, but refused writes are ignored and
//!   the call answers `ok` anyway.
//! - `fail:{total}`: writes `total` bytes, then answers `transient`.
//! - `trap:{total}`: writes `total` bytes, then panics.
//! - `unsupported`: answers `unsupported` (the host then asks
//!   `fetch-attachment`, which answers the bytes `from fetch-attachment`);
//!   `unsupported:{total}` writes `total` bytes first.
//!
//! Everything else of the world answers `unsupported`.

use switchboard_sdk::mail::{BlobWriter, Copies, MailBatch};
use switchboard_sdk::{
    Attachment, AttachmentDownload, Channel, ChannelInfo, DownloadedFile, HttpRequest, Mailer,
    OutboundMessage, PluginError, SendReceipt, WebhookOutcome,
};

struct TestBlobs;

fn unsupported<T>() -> Result<T, PluginError> {
    Err(PluginError::Unsupported(
        "test-blobs only writes files".into(),
    ))
}

/// Byte `i` of every file this guest writes.
fn pattern(i: u64) -> u8 {
    ((i * 31 + 7) % 251) as u8
}

/// Writes `total` pattern bytes in `piece`-byte writes; stops at the first
/// refused write unless `ignore`.
fn write(into: &BlobWriter, total: u64, piece: u64, ignore: bool) -> Result<(), PluginError> {
    let piece = piece.max(1);
    let mut at = 0;
    while at < total {
        let end = (at + piece).min(total);
        let bytes: Vec<u8> = (at..end).map(pattern).collect();
        if let Err(error) = into.write(&bytes)
            && !ignore
        {
            return Err(error.into());
        }
        at = end;
    }
    Ok(())
}

fn number(text: Option<&str>) -> Result<u64, PluginError> {
    text.and_then(|t| t.parse().ok())
        .ok_or_else(|| PluginError::InvalidRequest("a number is missing".into()))
}

impl Channel for TestBlobs {
    fn describe() -> ChannelInfo {
        ChannelInfo::new("email", "email", "Test blobs")
    }

    fn handle_webhook(_request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        unsupported()
    }

    fn send(_message: OutboundMessage) -> Result<SendReceipt, PluginError> {
        unsupported()
    }

    fn fetch_attachment(_attachment: Attachment) -> Result<AttachmentDownload, PluginError> {
        Ok(AttachmentDownload::Bytes(DownloadedFile {
            content: b"from fetch-attachment".to_vec(),
            content_type: Some("text/plain".into()),
        }))
    }
}

impl Mailer for TestBlobs {
    fn poll_mail(_cursor: Option<String>) -> Result<MailBatch, PluginError> {
        unsupported()
    }

    fn handle_mail_webhook(_request: HttpRequest) -> Result<MailBatch, PluginError> {
        unsupported()
    }

    fn send_mail(_message: OutboundMessage, _copies: Copies) -> Result<SendReceipt, PluginError> {
        unsupported()
    }

    fn fetch_attachment_to(
        attachment: Attachment,
        into: &BlobWriter,
    ) -> Result<Option<String>, PluginError> {
        let mut words = attachment.url.split(':');
        let verb = words.next().unwrap_or_default();
        let total = words.next();
        let piece = words.next();
        match verb {
            "write" | "ignore" => {
                write(into, number(total)?, number(piece)?, verb == "ignore")?;
                Ok(Some("application/x-test".into()))
            }
            "fail" => {
                write(into, number(total)?, 1 << 20, false)?;
                Err(PluginError::Transient("gave up half way".into()))
            }
            "trap" => {
                write(into, number(total)?, 1 << 20, false)?;
                panic!("trapped half way");
            }
            "unsupported" => {
                if total.is_some() {
                    write(into, number(total)?, 1 << 20, false)?;
                }
                unsupported()
            }
            _ => Err(PluginError::InvalidRequest(format!(
                "no such script: {}",
                attachment.url
            ))),
        }
    }
}

switchboard_sdk::export_email!(TestBlobs);
