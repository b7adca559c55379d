//! `messenger`: Switchboard's channel connector for Facebook Messenger.
//!
//! - Inbound: the Messenger Platform webhook at `/hooks/messenger` — `GET`
//!   for Meta's subscription handshake, signed `POST`s
//!   (`X-Hub-Signature-256`) with messages, quick replies, postbacks,
//!   reactions, deliveries and read watermarks.
//! - Outbound: the Send API, `POST {api_base}/{graph_version}/{page_id}/messages`,
//!   `RESPONSE` inside the 24-hour window and `MESSAGE_TAG`/`HUMAN_AGENT` for a
//!   person's reply inside the 7-day window.
//!
//! All of it lives in [`meta_common::messenger_platform`], shared with the
//! `instagram` connector; this crate says what Messenger supports.

use meta_common::messenger_platform::{Platform, connector};
use switchboard_sdk::{
    AttachmentLimits, Capabilities, Channel, ChannelInfo, HttpRequest, OutboundMessage,
    PluginError, SendReceipt, WebhookOutcome,
};

const PLATFORM: Platform = Platform::Messenger;

/// What Messenger carries: a 24-hour window (7 days for a person's reply
/// with the `HUMAN_AGENT` tag), 2000 characters of text, files up to 25 MiB.
pub fn info() -> ChannelInfo {
    ChannelInfo::new(PLATFORM.kind(), PLATFORM.kind(), "Messenger").with(Capabilities {
        window_secs: Some(24 * 60 * 60),
        human_window_secs: Some(7 * 24 * 60 * 60),
        max_body_chars: Some(2000),
        attachments: AttachmentLimits {
            max_count: 10,
            max_bytes: 25 * 1024 * 1024,
            content_types: [
                "image/*",
                "video/*",
                "audio/*",
                "application/pdf",
                "text/plain",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
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

struct Messenger;

impl Channel for Messenger {
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

switchboard_sdk::export_channel!(Messenger);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_messenger_with_the_human_agent_window() {
        let info = info();
        assert_eq!(
            (info.channel.as_str(), info.identity_kind.as_str()),
            ("messenger", "messenger")
        );
        let caps = info.capabilities;
        assert_eq!(caps.window_secs, Some(86_400));
        assert_eq!(caps.human_window_secs, Some(604_800));
        assert_eq!(caps.max_body_chars, Some(2000));
        assert_eq!(caps.attachments.max_bytes, 25 * 1024 * 1024);
        assert!(
            caps.attachments
                .content_types
                .contains(&"image/*".to_owned())
        );
        assert!(!caps.templates);
        assert!(caps.interactive && caps.delivery_receipts && caps.read_receipts);
        assert_eq!(caps.poll_interval_ms, None);
    }
}
