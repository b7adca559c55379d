//! `instagram`: Switchboard's channel connector for Instagram messaging
//! (Instagram professional accounts on the Messenger Platform).
//!
//! - Inbound: the webhook at `/hooks/instagram` — `GET` for Meta's
//!   subscription handshake, signed `POST`s (`X-Hub-Signature-256`, object
//!   `instagram`) with messages, quick replies, postbacks, reactions and
//!   `read` events naming the message read.
//! - Outbound: the Send API, `POST {api_base}/{graph_version}/{page_id}/messages`,
//!   `RESPONSE` inside the 24-hour window and `MESSAGE_TAG`/`HUMAN_AGENT` for a
//!   person's reply inside the 7-day window.
//!
//! All of it lives in [`meta_common::messenger_platform`], shared with the
//! `messenger` connector; this crate says what Instagram supports.

use meta_common::messenger_platform::{Platform, connector};
use switchboard_sdk::{
    AttachmentLimits, Capabilities, Channel, ChannelInfo, HttpRequest, OutboundMessage,
    PluginError, SendReceipt, WebhookOutcome,
};

const PLATFORM: Platform = Platform::Instagram;

/// What Instagram carries: a 24-hour window (7 days for a person's reply
/// with the `HUMAN_AGENT` tag), 1000 characters of text, images up to 8 MiB.
pub fn info() -> ChannelInfo {
    ChannelInfo::new(PLATFORM.kind(), PLATFORM.kind(), "Instagram").with(Capabilities {
        window_secs: Some(24 * 60 * 60),
        human_window_secs: Some(7 * 24 * 60 * 60),
        max_body_chars: Some(1000),
        attachments: AttachmentLimits {
            max_count: 10,
            max_bytes: 8 * 1024 * 1024,
            content_types: [
                "image/jpeg",
                "image/png",
                "image/gif",
                "video/mp4",
                "video/quicktime",
                "video/webm",
                "audio/aac",
                "audio/mp4",
                "audio/wav",
                "audio/ogg",
                "application/pdf",
            ]
            .map(str::to_owned)
            .to_vec(),
        },
        templates: false,
        interactive: true,
        delivery_receipts: true,
        read_receipts: true,
        poll_interval_ms: None,
    })
}

struct Instagram;

impl Channel for Instagram {
    fn describe() -> ChannelInfo {
        info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        connector::handle_webhook(PLATFORM, &request)
    }

    fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError> {
        connector::send(PLATFORM, &message)
    }
}

switchboard_sdk::export_channel!(Instagram);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_instagram() {
        let info = info();
        assert_eq!(
            (info.channel.as_str(), info.identity_kind.as_str()),
            ("instagram", "instagram")
        );
        let caps = info.capabilities;
        assert_eq!(caps.window_secs, Some(86_400));
        assert_eq!(caps.human_window_secs, Some(604_800));
        assert_eq!(caps.max_body_chars, Some(1000));
        assert_eq!(caps.attachments.max_bytes, 8 * 1024 * 1024);
        assert!(!caps.templates);
        assert!(caps.interactive && caps.delivery_receipts && caps.read_receipts);
    }
}
