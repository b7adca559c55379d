//! Constructors for the shared WIT types, so plugins do not spell out every
//! optional field.

use crate::{
    Attachment, AttachmentLimits, Capabilities, ChannelInfo, DeliveryReceipt, DeliveryStatus,
    Identity, InboundMessage, MessageMetadata, OutboundMessage, OutboundMetadata, SendReceipt,
    WebhookOutcome, WindowUse,
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

impl Default for AttachmentLimits {
    /// No attachments.
    fn default() -> Self {
        Self {
            max_count: 0,
            max_bytes: 0,
            content_types: Vec::new(),
        }
    }
}

impl Default for Capabilities {
    /// A plain text channel: no window, no body limit, no attachments,
    /// templates, interactive messages or receipts, not polled.
    fn default() -> Self {
        Self {
            window_secs: None,
            human_window_secs: None,
            max_body_chars: None,
            attachments: AttachmentLimits::default(),
            templates: false,
            interactive: false,
            delivery_receipts: false,
            read_receipts: false,
            poll_interval_ms: None,
        }
    }
}

impl ChannelInfo {
    /// A plain text channel (see [`Capabilities::default`]); state what it
    /// supports with [`ChannelInfo::with`].
    pub fn new(
        channel: impl Into<String>,
        identity_kind: impl Into<String>,
        display_name: impl Into<String>,
    ) -> Self {
        Self {
            channel: channel.into(),
            identity_kind: identity_kind.into(),
            display_name: display_name.into(),
            capabilities: Capabilities::default(),
        }
    }

    /// The same channel with these capabilities.
    pub fn with(self, capabilities: Capabilities) -> Self {
        Self {
            capabilities,
            ..self
        }
    }
}

impl Default for MessageMetadata {
    /// Nothing besides the text.
    fn default() -> Self {
        Self {
            subject: None,
            thread_id: None,
            in_reply_to: None,
            references: Vec::new(),
            interactive_reply: None,
            reaction: None,
            location: None,
            contacts: Vec::new(),
            shared_identities: Vec::new(),
        }
    }
}

impl Default for OutboundMetadata {
    /// No subject and no thread references.
    fn default() -> Self {
        Self {
            subject: None,
            thread_id: None,
            in_reply_to: None,
            references: Vec::new(),
        }
    }
}

impl Attachment {
    /// A file at `url` (inbound: the provider's reference), with nothing else
    /// known; set the other fields directly.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            content_type: None,
            filename: None,
            size: None,
            content: None,
            content_id: None,
        }
    }
}

impl InboundMessage {
    /// A text message from `sender` with no recipient, name, attachments,
    /// provider timestamp or metadata; set those fields directly when the
    /// provider has them.
    pub fn new(provider_id: impl Into<String>, sender: Identity, body: impl Into<String>) -> Self {
        Self {
            provider_id: provider_id.into(),
            sender,
            recipient: None,
            sender_name: None,
            body: body.into(),
            html_body: None,
            attachments: Vec::new(),
            sent_at_ms: None,
            metadata: MessageMetadata::default(),
        }
    }
}

impl OutboundMessage {
    /// A text reply inside the window, written by no one in particular; the
    /// host builds these, tests use this.
    pub fn text(
        message_id: impl Into<String>,
        conversation_id: impl Into<String>,
        to: Identity,
        body: impl Into<String>,
    ) -> Self {
        Self {
            message_id: message_id.into(),
            conversation_id: conversation_id.into(),
            to,
            from: None,
            body: body.into(),
            attachments: Vec::new(),
            template: None,
            interactive: None,
            metadata: OutboundMetadata::default(),
            author: None,
            window: WindowUse::Open,
        }
    }
}

impl DeliveryReceipt {
    /// A status update without error details or time.
    pub fn new(provider_id: impl Into<String>, status: DeliveryStatus) -> Self {
        Self {
            provider_id: provider_id.into(),
            status,
            error_code: None,
            error_message: None,
            at_ms: None,
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
