//! `whatsapp-cloud`: Switchboard's channel connector for the WhatsApp
//! Business Cloud API.
//!
//! - Inbound: Meta's webhook at `/hooks/whatsapp-cloud` — `GET` for the
//!   subscription handshake, signed `POST`s (`X-Hub-Signature-256`) carrying
//!   messages of every type and delivery statuses ([`inbound`]).
//! - Outbound: `POST {api_base}/{graph_version}/{phone_number_id}/messages`
//!   for text, media, templates and interactive messages ([`outbound`]).
//! - Media: inbound attachments are WhatsApp media ids, resolved to a
//!   bearer-authenticated download ([`media`]).
//! - Templates: approved templates of `business_account_id` ([`templates`]).
//!
//! Signatures, the handshake, Graph errors and multi-part sends come from
//! `meta-common`; [`connector`] holds the calls over any kv and HTTP, and
//! this file hands them the host's.

pub mod connector;
pub mod inbound;
pub mod media;
pub mod outbound;
pub mod templates;

use meta_common::store::{HostHttp, HostKv};
use switchboard_sdk::{
    Attachment, AttachmentDownload, AttachmentLimits, Capabilities, Channel, ChannelInfo,
    HttpRequest, OutboundMessage, PluginError, SendReceipt, TemplateInfo, WebhookOutcome,
};

use crate::connector::{Settings, WebhookSettings};

/// What WhatsApp carries: a 24-hour customer-service window (templates
/// outside it), 4096 characters of text, up to 16 MiB per file.
pub fn info() -> ChannelInfo {
    ChannelInfo::new(inbound::WHATSAPP, inbound::WHATSAPP, "WhatsApp").with(Capabilities {
        window_secs: Some(24 * 60 * 60),
        human_window_secs: None,
        max_body_chars: Some(4096),
        attachments: AttachmentLimits {
            max_count: 10,
            max_bytes: 16 * 1024 * 1024,
            content_types: [
                "image/jpeg",
                "image/png",
                "video/mp4",
                "video/3gpp",
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
        templates: true,
        interactive: true,
        delivery_receipts: true,
        read_receipts: true,
        poll_interval_ms: None,
    })
}

struct WhatsAppCloud;

impl Channel for WhatsAppCloud {
    fn describe() -> ChannelInfo {
        info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        connector::handle_webhook(&WebhookSettings::from_config()?, &request)
    }

    fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError> {
        connector::send(
            &Settings::from_config()?,
            &mut HostKv,
            &mut HostHttp,
            &message,
        )
    }

    fn fetch_attachment(attachment: Attachment) -> Result<AttachmentDownload, PluginError> {
        connector::fetch_attachment(&Settings::from_config()?, &mut HostHttp, &attachment)
    }

    fn list_templates() -> Result<Vec<TemplateInfo>, PluginError> {
        connector::list_templates(&Settings::from_config()?, &mut HostHttp)
    }
}

switchboard_sdk::export_channel!(WhatsAppCloud);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_whatsapp() {
        let info = info();
        assert_eq!(
            (
                info.channel.as_str(),
                info.identity_kind.as_str(),
                info.display_name.as_str()
            ),
            ("whatsapp", "whatsapp", "WhatsApp")
        );
        let caps = info.capabilities;
        assert_eq!(caps.window_secs, Some(86_400));
        assert_eq!(caps.human_window_secs, None);
        assert_eq!(caps.max_body_chars, Some(4096));
        assert_eq!(caps.attachments.max_count, 10);
        assert_eq!(caps.attachments.max_bytes, 16 * 1024 * 1024);
        for t in [
            "image/jpeg",
            "image/png",
            "video/mp4",
            "video/3gpp",
            "audio/*",
            "application/pdf",
        ] {
            assert!(
                caps.attachments.content_types.contains(&t.to_owned()),
                "{t}"
            );
        }
        assert!(caps.templates && caps.interactive && caps.delivery_receipts && caps.read_receipts);
        assert_eq!(caps.poll_interval_ms, None);
    }
}
