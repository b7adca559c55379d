//! Constructors for the shared WIT types, so plugins do not spell out every
//! optional field.

use crate::{
    ChannelInfo, DeliveryReceipt, DeliveryStatus, Identity, InboundMessage, SendReceipt,
    WebhookOutcome,
};

impl Identity {
    /// An identity of `kind` (`phone`, `email`, `telegram`…) with the raw
    /// `value` the provider gave; the host normalizes it.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }
}

impl ChannelInfo {
    /// A channel that supports neither media nor receipts; set those fields with
    /// struct update syntax (`ChannelInfo { supports_media: true, ..ChannelInfo::new(…) }`).
    pub fn new(
        channel: impl Into<String>,
        identity_kind: impl Into<String>,
        display_name: impl Into<String>,
    ) -> Self {
        Self {
            channel: channel.into(),
            identity_kind: identity_kind.into(),
            display_name: display_name.into(),
            supports_media: false,
            supports_receipts: false,
        }
    }
}

impl InboundMessage {
    /// A text message from `sender` with no recipient, name, attachments or
    /// provider timestamp; set those fields directly when the provider has them.
    pub fn new(provider_id: impl Into<String>, sender: Identity, body: impl Into<String>) -> Self {
        Self {
            provider_id: provider_id.into(),
            sender,
            recipient: None,
            sender_name: None,
            body: body.into(),
            attachments: Vec::new(),
            sent_at_ms: None,
        }
    }
}

impl DeliveryReceipt {
    /// A status update without error details.
    pub fn new(provider_id: impl Into<String>, status: DeliveryStatus) -> Self {
        Self {
            provider_id: provider_id.into(),
            status,
            error_code: None,
            error_message: None,
        }
    }
}

impl SendReceipt {
    /// The provider accepted the message under `provider_id` and sent it on.
    pub fn sent(provider_id: impl Into<String>) -> Self {
        Self {
            provider_id: provider_id.into(),
            status: DeliveryStatus::Sent,
        }
    }

    /// The provider accepted the message under `provider_id` and queued it.
    pub fn queued(provider_id: impl Into<String>) -> Self {
        Self {
            provider_id: provider_id.into(),
            status: DeliveryStatus::Queued,
        }
    }
}

impl WebhookOutcome {
    /// An answer for the provider with no events to store (pings, events the
    /// connector ignores).
    pub fn respond(response: crate::HttpResponse) -> Self {
        Self {
            response,
            events: Vec::new(),
        }
    }
}
