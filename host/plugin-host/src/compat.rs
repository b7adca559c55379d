//! Conversions between `switchboard:plugin@0.1.0` and the host's 0.2.0 types,
//! so a plugin built against 0.1.0 runs unchanged.
//!
//! What 0.1.0 cannot say takes its neutral value going in (no metadata, no
//! receipt time, no inline content) and is dropped going out (templates,
//! interactive choices and outbound metadata: the host never asks a 0.1.0
//! connector for them, because its `describe` states no templates and no
//! interactive messages).

use crate::bindings as v2;
use crate::bindings::v0_1 as v1;
use crate::candidates::AgentCandidate;

pub(crate) fn identity_in(i: v1::Identity) -> v2::Identity {
    v2::Identity {
        kind: i.kind,
        value: i.value,
    }
}

pub(crate) fn identity_out(i: &v2::Identity) -> v1::Identity {
    v1::Identity {
        kind: i.kind.clone(),
        value: i.value.clone(),
    }
}

fn attachment_in(a: v1::Attachment) -> v2::Attachment {
    v2::Attachment {
        url: a.url,
        content_type: a.content_type,
        filename: a.filename,
        size: a.size,
        content: None,
        content_id: None,
    }
}

fn attachment_out(a: &v2::Attachment) -> v1::Attachment {
    v1::Attachment {
        url: a.url.clone(),
        content_type: a.content_type.clone(),
        filename: a.filename.clone(),
        size: a.size,
    }
}

fn status_in(s: v1::DeliveryStatus) -> v2::DeliveryStatus {
    match s {
        v1::DeliveryStatus::Queued => v2::DeliveryStatus::Queued,
        v1::DeliveryStatus::Sent => v2::DeliveryStatus::Sent,
        v1::DeliveryStatus::Delivered => v2::DeliveryStatus::Delivered,
        v1::DeliveryStatus::Read => v2::DeliveryStatus::Read,
        v1::DeliveryStatus::Failed => v2::DeliveryStatus::Failed,
        v1::DeliveryStatus::Undelivered => v2::DeliveryStatus::Undelivered,
    }
}

/// No metadata: what a 0.1.0 message carries besides its text.
pub(crate) fn empty_metadata() -> v2::MessageMetadata {
    v2::MessageMetadata {
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

fn event_in(e: v1::ChannelEvent) -> v2::ChannelEvent {
    match e {
        v1::ChannelEvent::Message(m) => v2::ChannelEvent::Message(v2::InboundMessage {
            provider_id: m.provider_id,
            sender: identity_in(m.sender),
            recipient: m.recipient.map(identity_in),
            sender_name: m.sender_name,
            body: m.body,
            html_body: None,
            attachments: m.attachments.into_iter().map(attachment_in).collect(),
            sent_at_ms: m.sent_at_ms,
            metadata: empty_metadata(),
        }),
        v1::ChannelEvent::Receipt(r) => v2::ChannelEvent::Receipt(v2::DeliveryReceipt {
            provider_id: r.provider_id,
            status: status_in(r.status),
            error_code: r.error_code,
            error_message: r.error_message,
            at_ms: None,
        }),
        v1::ChannelEvent::Consent(c) => v2::ChannelEvent::Consent(v2::ConsentEvent {
            provider_id: c.provider_id,
            identity: identity_in(c.identity),
            action: match c.action {
                v1::ConsentAction::OptOut => v2::ConsentAction::OptOut,
                v1::ConsentAction::OptIn => v2::ConsentAction::OptIn,
                v1::ConsentAction::Help => v2::ConsentAction::Help,
            },
            keyword: c.keyword,
        }),
    }
}

pub(crate) fn outcome_in(o: v1::WebhookOutcome) -> v2::WebhookOutcome {
    v2::WebhookOutcome {
        response: v2::HttpResponse {
            status: o.response.status,
            headers: o.response.headers,
            body: o.response.body,
        },
        events: o.events.into_iter().map(event_in).collect(),
    }
}

pub(crate) fn error_in(e: v1::PluginError) -> v2::PluginError {
    match e {
        v1::PluginError::InvalidRequest(m) => v2::PluginError::InvalidRequest(m),
        v1::PluginError::Unauthorized(m) => v2::PluginError::Unauthorized(m),
        v1::PluginError::Config(m) => v2::PluginError::Config(m),
        v1::PluginError::Transient(m) => v2::PluginError::Transient(m),
        v1::PluginError::Permanent(m) => v2::PluginError::Permanent(m),
        v1::PluginError::RateLimited(s) => v2::PluginError::RateLimited(s),
        v1::PluginError::Internal(m) => v2::PluginError::Internal(m),
    }
}

pub(crate) fn result_in<T, U>(
    r: Result<T, v1::PluginError>,
    f: impl FnOnce(T) -> U,
) -> Result<U, v2::PluginError> {
    r.map(f).map_err(error_in)
}

/// 0.1.0 channels state only whether they carry media and receipts; they have
/// no window, templates, interactive messages or polling.
pub(crate) fn channel_info_in(i: v1::ChannelInfo) -> v2::ChannelInfo {
    v2::ChannelInfo {
        channel: i.channel,
        identity_kind: i.identity_kind,
        display_name: i.display_name,
        capabilities: v2::ChannelCapabilities {
            window_secs: None,
            human_window_secs: None,
            max_body_chars: None,
            attachments: v2::AttachmentLimits {
                max_count: if i.supports_media { 10 } else { 0 },
                max_bytes: 5 * 1024 * 1024,
                content_types: Vec::new(),
            },
            templates: false,
            interactive: false,
            delivery_receipts: i.supports_receipts,
            read_receipts: false,
            poll_interval_ms: None,
        },
    }
}

pub(crate) fn send_receipt_in(r: v1::SendReceipt) -> v2::SendReceipt {
    v2::SendReceipt {
        provider_id: r.provider_id,
        status: status_in(r.status),
    }
}

pub(crate) fn request_out(r: &v2::HttpRequest) -> v1::HttpRequest {
    v1::HttpRequest {
        method: r.method.clone(),
        url: r.url.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
    }
}

pub(crate) fn message_out(m: &v2::OutboundMessage) -> v1::OutboundMessage {
    v1::OutboundMessage {
        message_id: m.message_id.clone(),
        conversation_id: m.conversation_id.clone(),
        to: identity_out(&m.to),
        body: m.body.clone(),
        attachments: m.attachments.iter().map(attachment_out).collect(),
    }
}

fn contact_out(c: &v2::ContactSummary) -> v1::ContactSummary {
    v1::ContactSummary {
        id: c.id.clone(),
        display_name: c.display_name.clone(),
        identities: c.identities.iter().map(identity_out).collect(),
        attributes: c.attributes.clone(),
    }
}

pub(crate) fn task_out(t: &v2::TaskInfo) -> v1::TaskInfo {
    v1::TaskInfo {
        id: t.id.clone(),
        channel: t.channel.clone(),
        conversation_id: t.conversation_id.clone(),
        contact: t.contact.as_ref().map(contact_out),
        attributes: t.attributes.clone(),
        waiting_ms: t.waiting_ms,
        last_agent: t.last_agent.clone(),
    }
}

pub(crate) fn candidate_out(c: AgentCandidate) -> v1::AgentCandidate {
    v1::AgentCandidate {
        id: c.id,
        skills: c.skills,
        idle_ms: c.idle_ms,
        load: c.load,
        capacity: c.capacity,
        served_contact_last: c.served_contact_last,
        attributes: c.attributes,
    }
}

pub(crate) fn classification_in(c: v1::Classification) -> v2::Classification {
    v2::Classification {
        queue: c.queue,
        priority: c.priority,
        required_skills: c
            .required_skills
            .into_iter()
            .map(|s| v2::SkillRequirement {
                skill: s.skill,
                min_proficiency: s.min_proficiency,
            })
            .collect(),
        steps: c
            .steps
            .into_iter()
            .map(|s| v2::RoutingStep {
                after_ms: s.after_ms,
                min_proficiency: s.min_proficiency,
                overflow_queue: s.overflow_queue,
            })
            .collect(),
        ivr: c
            .ivr
            .into_iter()
            .map(|step| match step {
                v1::IvrStep::Play(p) => v2::IvrStep::Play(p),
                v1::IvrStep::Gather(g) => v2::IvrStep::Gather(v2::GatherDigits {
                    prompt: g.prompt,
                    max_digits: g.max_digits,
                    timeout_ms: g.timeout_ms,
                    attribute: g.attribute,
                }),
            })
            .collect(),
    }
}

pub(crate) fn profile_in(p: v1::CrmProfile) -> v2::CrmProfile {
    v2::CrmProfile {
        external_id: p.external_id,
        display_name: p.display_name,
        identities: p.identities.into_iter().map(identity_in).collect(),
        attributes: p.attributes,
        url: p.url,
    }
}

pub(crate) fn entry_out(e: &v2::TimelineEntry) -> v1::TimelineEntry {
    v1::TimelineEntry {
        id: e.id.clone(),
        conversation_id: e.conversation_id.clone(),
        contact: contact_out(&e.contact),
        channel: e.channel.clone(),
        direction: match e.direction {
            v2::CrmDirection::Inbound => v1::CrmDirection::Inbound,
            v2::CrmDirection::Outbound => v1::CrmDirection::Outbound,
            v2::CrmDirection::Internal => v1::CrmDirection::Internal,
        },
        kind: e.kind.clone(),
        body: e.body.clone(),
        author: e.author.clone(),
        occurred_at_ms: e.occurred_at_ms,
        disposition: e.disposition.clone(),
        duration_ms: e.duration_ms,
    }
}

pub(crate) fn log_level_in(l: v1::LogLevel) -> v2::LogLevel {
    match l {
        v1::LogLevel::Trace => v2::LogLevel::Trace,
        v1::LogLevel::Debug => v2::LogLevel::Debug,
        v1::LogLevel::Info => v2::LogLevel::Info,
        v1::LogLevel::Warn => v2::LogLevel::Warn,
        v1::LogLevel::Error => v2::LogLevel::Error,
    }
}

pub(crate) fn kv_error_out(e: v2::KvError) -> v1::KvError {
    match e {
        v2::KvError::QuotaExceeded(m) => v1::KvError::QuotaExceeded(m),
        v2::KvError::Unavailable(m) => v1::KvError::Unavailable(m),
    }
}
