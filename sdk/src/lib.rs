//! The guest SDK for Switchboard plugins.
//!
//! A Switchboard plugin is a WebAssembly component (target `wasm32-wasip2`) plus a
//! `plugin.toml`. It implements one of three worlds of the WIT package
//! `switchboard:plugin@0.2.0`:
//!
//! | world     | trait              | export macro          | what the host asks     |
//! |-----------|--------------------|-----------------------|------------------------|
//! | `channel` | [`Channel`]        | [`export_channel!`]   | a provider connector: webhooks in, messages out |
//! | `routing` | [`RoutingPolicy`]  | [`export_routing!`]   | which queue a task joins, which agent is best   |
//! | `crm`     | [`Crm`]            | [`export_crm!`]       | who a contact is, and write the timeline back   |
//! | `email` (`switchboard:mail@0.2.0`) | [`Channel`] + [`Mailer`] | [`export_email!`] | a mailbox: envelopes, copies, streams to mail servers, files written into the host's blob store ([`mail`]) |
//!
//! An author writes one trait impl and one macro line. Everything the plugin
//! exchanges with the host uses one set of types, re-exported at the crate root
//! ([`Identity`], [`HttpRequest`], [`PluginError`]…), whatever the world.
//!
//! # A connector in a dozen lines
//!
//! ```
//! use switchboard_sdk::{
//!     Channel, ChannelEvent, ChannelInfo, HttpRequest, HttpResponse, Identity,
//!     InboundMessage, OutboundMessage, PluginError, SendReceipt, WebhookOutcome, webhook,
//! };
//!
//! struct Echo;
//!
//! impl Channel for Echo {
//!     fn describe() -> ChannelInfo {
//!         ChannelInfo::new("sms", "phone", "Echo SMS")
//!     }
//!
//!     fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
//!         // A real connector verifies the provider's signature first.
//!         let form = request.form();
//!         let field = |name: &str| {
//!             webhook::form_value(&form, name)
//!                 .ok_or_else(|| PluginError::InvalidRequest(format!("missing `{name}`")))
//!         };
//!         let sender = Identity::new("phone", field("from")?);
//!         let message = InboundMessage::new(field("id")?, sender, field("text")?);
//!         Ok(WebhookOutcome {
//!             response: HttpResponse::text(200, "ok"),
//!             events: vec![ChannelEvent::Message(message)],
//!         })
//!     }
//!
//!     fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError> {
//!         switchboard_sdk::log::info(format_args!("would send to {}", message.to.value));
//!         Ok(SendReceipt::sent(format!("echo-{}", message.message_id)))
//!     }
//! }
//!
//! switchboard_sdk::export_channel!(Echo);
//! # fn main() {}
//! ```
//!
//! The crate of a plugin is a `cdylib`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! switchboard-sdk = "0.2"
//! ```
//!
//! and is built with `cargo build --release --target wasm32-wasip2` (install the
//! target once with `rustup target add wasm32-wasip2`). The result,
//! `target/wasm32-wasip2/release/<crate_name>.wasm`, is already a component.
//!
//! # What the host gives a plugin
//!
//! Nothing but the WIT `host` interface and outbound HTTP: no files, no sockets,
//! no environment. This crate wraps them:
//!
//! - [`config`]: the values and secrets the operator set for the keys declared in
//!   `plugin.toml` ([`config::require`] turns a missing one into
//!   [`PluginError::Config`]).
//! - [`kv`]: the plugin's own key-value store, kept across calls and restarts.
//! - [`log`]: the host's log, tagged with the plugin id.
//! - [`clock`]: wall-clock time.
//! - [`http`]: blocking outbound HTTP, one host call per request
//!   (`switchboard:http@0.1.0`); the host lets through only the origins on
//!   the plugin's allow-list and answers [`http::HttpError::Denied`] for the
//!   rest.
//! - [`signing`]: a provider's webhook signature (HMAC-SHA1, HMAC-SHA256)
//!   checked by the host with a secret from the plugin's config, which the
//!   plugin then never reads (`switchboard:signing@0.1.0`).
//! - [`webhook`]: helpers for the provider side of a webhook: form bodies,
//!   case-insensitive headers, URL paths and query strings, responses.
//! - [`mail`]: for e-mail connectors only, byte streams to the mail servers
//!   the operator approved (TLS and STARTTLS done by the host), a buffered
//!   line reader over them, the envelope and copies of the `mailer`
//!   exports, and the [`mail::BlobWriter`] a large inbound file is written
//!   into.
//!
//! Every call into a plugin runs under a deadline and a memory cap. A plugin
//! returns [`PluginError`] for expected failures (bad signature, provider down,
//! throttled); a panic traps, which the host counts as a failure of the plugin
//! itself and, if it repeats, quarantines the plugin.
//!
//! # `plugin.toml`
//!
//! The manifest sits next to the component and declares what the plugin needs.
//! The host refuses unknown fields.
//!
//! ```toml
//! id = "echo-sms"                          # unique; webhooks arrive at /hooks/echo-sms/…
//! name = "Echo SMS"
//! version = "0.1.0"
//! kind = "channel"                         # channel | routing | crm
//! world = "switchboard:plugin/channel@0.2.0"
//! component = "echo_sms.wasm"              # relative to the plugin folder
//!
//! [capabilities]
//! allowed-hosts = ["https://api.example.com"]   # scheme://host[:port]
//! kv = true
//!
//! [[config]]
//! key = "api_token"
//! required = true
//! secret = true                            # never logged, never shown by the API
//! description = "Token for the provider's API"
//!
//! [[config]]
//! key = "api_base"
//! default = "https://api.example.com"
//! description = "Base URL of the provider's API (tests point it at a local double)"
//! ```
//!
//! Besides the declared keys, the host sets the read-only key
//! [`config::WEBHOOK_BASE`] to the public URL under which the plugin's webhooks
//! arrive (`{public_url}/hooks/{plugin_id}`), for connectors that register
//! callback URLs with their provider.
//!
//! # Testing a plugin
//!
//! Keep the provider logic (signatures, payload parsing, status mapping) in plain
//! functions: they compile natively and take ordinary `#[test]`s with `cargo
//! test`. The [`Channel`] impl is then a thin layer that reads config, calls
//! them and talks HTTP. The whole component is tested with the native harness
//! crate `switchboard-harness` (next to this crate, in `sdk/harness`): it loads
//! the built `.wasm` into the same runtime as the host, with fake host
//! capabilities (in-memory kv, recorded outbound HTTP, a fixed clock), so a test
//! can post a webhook and assert on the events, or call `send` and assert on the
//! request the provider would have received.
//!
//! # Versions
//!
//! This SDK implements `switchboard:plugin@0.2.0` and, for e-mail connectors,
//! `switchboard:mail@0.2.0` (see [`mail`] for moving a connector from
//! `switchboard:mail@0.1.0`). A released WIT package is never
//! edited; a new contract comes as a new package version and a new SDK release.
//! The host keeps running plugins built against every released version, so
//! upgrading is never forced.
//!
//! # Migrating from 0.1.0
//!
//! Most connectors compile again after these changes:
//!
//! 1. `plugin.toml`: `world = "switchboard:plugin/channel@0.2.0"` (or
//!    `routing@0.2.0`, `crm@0.2.0`), and `switchboard-sdk = "0.2"` in
//!    `Cargo.toml`.
//! 2. `ChannelInfo` no longer has `supports_media`/`supports_receipts`; it
//!    has [`Capabilities`]: the messaging window (`window_secs`, and
//!    `human_window_secs` for a longer window for replies written by a
//!    person), `max_body_chars`, [`AttachmentLimits`], templates, interactive
//!    messages, delivery and read receipts and `poll_interval_ms`.
//!    `ChannelInfo::new(…)` still gives a plain channel; set what you support
//!    with `ChannelInfo::new(…).with(Capabilities { … })`.
//! 3. [`InboundMessage`] gained `html_body` and [`MessageMetadata`]
//!    (`metadata`: subject, thread and reply references, interactive replies,
//!    reactions, locations, shared contacts and identities) — built with
//!    `InboundMessage::new` they are empty; [`Attachment`] gained `content` and
//!    `content_id` (`Attachment::new(url)`); [`DeliveryReceipt`] gained
//!    `at_ms`.
//! 4. [`OutboundMessage`] gained `from`, `template`, `interactive`,
//!    `metadata`, `author` and `window`; a connector that sends only text
//!    can ignore them, except `window` on channels with a human-agent tag.
//! 5. [`Channel`] gained `fetch_attachment`, `list_templates` and `poll`, all
//!    with defaults: attachments are fetched by URL, no templates, no polling.
//! 6. [`RoutingPolicy::rank`] receives `&routing::Candidates`, a host
//!    resource read by column (`idle_ms()`, `load()`, `skill(name)`…), instead
//!    of a list of records. Read the columns you rank on; build records
//!    yourself only if you must.
//! 7. [`PluginError`] gained `WindowClosed` (the provider refused a free-form
//!    message outside its window) and `Unsupported`; match them if you match
//!    exhaustively. `Eq` is no longer derived on the generated types (a
//!    location has `f64` coordinates); `PartialEq` still is.
//! 8. [`Crm`] gained `create_contact` (default: unsupported).

#![deny(missing_docs)]

mod bindings;
pub mod clock;
pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod mail;
pub mod signing;
mod types;
mod url;
pub mod webhook;

pub use bindings::channel::exports::switchboard::plugin::connector::{
    AttachmentLimits, Capabilities, ChannelInfo, PollOutcome, TemplateInfo,
};
pub use bindings::channel::switchboard::plugin::types::{
    Attachment, AttachmentDownload, ChannelEvent, Choice, ChoiceList, ConsentAction, ConsentEvent,
    ContactSummary, DeliveryReceipt, DeliveryStatus, DownloadRequest, DownloadedFile, HttpRequest,
    HttpResponse, Identity, InboundMessage, InteractiveMessage, InteractiveReply, Location,
    MessageMetadata, OutboundMessage, OutboundMetadata, PluginError, Reaction, SendReceipt,
    SharedContact, TemplateMessage, TemplateParameter, WebhookOutcome, WindowUse,
};

/// Types of the `routing` world: what a [`RoutingPolicy`] receives and returns.
pub mod routing {
    pub use crate::bindings::routing::exports::switchboard::plugin::policy::{
        Classification, GatherDigits, IvrStep, RoutingStep, SkillRequirement, TaskInfo,
    };
    pub use crate::bindings::routing::switchboard::plugin::agents::Candidates;
}

/// Types of the `crm` world: what a [`Crm`] integration receives and returns.
pub mod crm {
    pub use crate::bindings::crm::exports::switchboard::plugin::crm_sync::{
        CrmProfile, Direction, TimelineEntry,
    };
}

/// A channel connector: turns provider webhooks into normalized events and sends
/// messages through the provider (the `channel` world). Export it with
/// [`export_channel!`].
pub trait Channel {
    /// Static facts about the channel: its kind, the identity kind it addresses
    /// customers by, and what it supports.
    fn describe() -> ChannelInfo;

    /// Verifies and parses one provider webhook.
    ///
    /// `request.url` is the full public URL the provider called, as providers
    /// sign it. Return the response for the provider and the events the host
    /// must store first; return [`PluginError::Unauthorized`] for a missing or
    /// wrong signature and [`PluginError::InvalidRequest`] for a malformed
    /// payload.
    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError>;

    /// Delivers one outbound message through the provider.
    ///
    /// The host retries [`PluginError::Transient`] and
    /// [`PluginError::RateLimited`] with backoff, with the same
    /// `message.message_id`; it gives up on the other errors. It has already
    /// checked consent and the messaging window: `message.window` says
    /// whether the reply needs the channel's human-agent tag.
    fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError>;

    /// How the host downloads an inbound attachment this connector reported.
    ///
    /// The default asks the host to `GET` `attachment.url` as it is (still only
    /// from the plugin's allowed hosts). A provider that needs credentials
    /// (WhatsApp media ids, Twilio media with HTTP auth) resolves the reference
    /// and returns the authenticated request.
    fn fetch_attachment(attachment: Attachment) -> Result<AttachmentDownload, PluginError> {
        Ok(AttachmentDownload::Request(DownloadRequest {
            url: attachment.url,
            headers: Vec::new(),
        }))
    }

    /// The templates the provider approved. The default: none.
    fn list_templates() -> Result<Vec<TemplateInfo>, PluginError> {
        Ok(Vec::new())
    }

    /// Pulls new events, for channels that are not called by webhooks; the
    /// host calls it every [`Capabilities::poll_interval_ms`]. The default
    /// answers [`PluginError::Unsupported`].
    fn poll(cursor: Option<String>) -> Result<PollOutcome, PluginError> {
        let _ = cursor;
        Err(PluginError::Unsupported(
            "this connector does not poll".into(),
        ))
    }
}

/// An e-mail connector (the `switchboard:mail/email@0.2.0` world): a
/// [`Channel`] whose polls and webhooks also report each message's
/// [`mail::Envelope`], which sends with [`mail::Copies`], and which may copy
/// the files it reported straight into the host's blob store
/// ([`Mailer::fetch_attachment_to`]). Export it with [`export_email!`].
///
/// The host calls these instead of the [`Channel`] methods they extend
/// (`poll`, `handle_webhook`, `send`); implement those too, usually by calling
/// these and dropping what the channel world does not carry
/// ([`mail::MailBatch::into_poll_outcome`],
/// [`mail::MailBatch::into_webhook_outcome`], [`mail::Copies::default`]).
pub trait Mailer: Channel {
    /// [`Channel::poll`] with envelopes: one per message event, matched by
    /// provider id.
    fn poll_mail(cursor: Option<String>) -> Result<mail::MailBatch, PluginError>;

    /// [`Channel::handle_webhook`] with envelopes (inbound mail from an
    /// e-mail API such as Mailgun or Postmark); `response` is the answer for
    /// the provider (`200` with no body when none).
    fn handle_mail_webhook(request: HttpRequest) -> Result<mail::MailBatch, PluginError>;

    /// [`Channel::send`] with copies: `cc` are shown to every recipient, `bcc`
    /// only reach the mail server's envelope.
    fn send_mail(
        message: OutboundMessage,
        copies: mail::Copies,
    ) -> Result<SendReceipt, PluginError>;

    /// Writes the file of an inbound attachment this connector reported
    /// (`attachment.url` is its reference) into `into`, decoded, and answers
    /// the content type the provider declared. The host calls it to copy
    /// every file of this connector instead of [`Channel::fetch_attachment`]:
    /// read the file in pieces and write each with
    /// [`mail::BlobWriter::write_all`], so it never has to fit in memory.
    ///
    /// The host stores the file only when this returns `Ok` and every write
    /// was accepted; return the write's error ([`mail::BlobError`] converts
    /// into [`PluginError`]) when one fails. The default answers
    /// [`PluginError::Unsupported`], and the host then asks
    /// [`Channel::fetch_attachment`].
    fn fetch_attachment_to(
        attachment: Attachment,
        into: &mail::BlobWriter,
    ) -> Result<Option<String>, PluginError> {
        let _ = (attachment, into);
        Err(PluginError::Unsupported(
            "this connector does not write files itself".into(),
        ))
    }
}

/// A routing policy (the `routing` world): decides where a task goes and who is
/// best for it. The host owns the mechanics: capacity, reservations, timers.
/// Export it with [`export_routing!`].
pub trait RoutingPolicy {
    /// Chooses the queue, priority, required skills, widening steps and IVR for a
    /// task that arrives or is re-evaluated.
    fn classify(task: routing::TaskInfo) -> Result<routing::Classification, PluginError>;

    /// Orders the eligible agents best first, as indices into `candidates`;
    /// indices left out are not offered this round.
    ///
    /// `candidates` is the host's: read only the columns you rank on
    /// (`candidates.idle_ms()`, `candidates.skill("billing")`…), each a list
    /// indexed like `candidates.ids()`.
    fn rank(
        task: routing::TaskInfo,
        candidates: &routing::Candidates,
    ) -> Result<Vec<u32>, PluginError>;
}

/// A CRM integration (the `crm` world): enriches contacts and writes the
/// timeline back. Export it with [`export_crm!`].
pub trait Crm {
    /// Finds a person by one identity; `None` if the CRM does not know them.
    fn lookup_contact(identity: Identity) -> Result<Option<crm::CrmProfile>, PluginError>;

    /// Writes one timeline entry (message, call, disposition…) to the CRM.
    fn record_activity(entry: crm::TimelineEntry) -> Result<(), PluginError>;

    /// Creates the person in the CRM. The default answers
    /// [`PluginError::Unsupported`].
    fn create_contact(contact: ContactSummary) -> Result<crm::CrmProfile, PluginError> {
        let _ = contact;
        Err(PluginError::Unsupported(
            "this CRM plugin does not create contacts".into(),
        ))
    }
}

/// Exports a [`Channel`] implementation as the plugin's `channel` world.
///
/// Use it once, at the top level of the plugin crate:
///
/// ```text
/// switchboard_sdk::export_channel!(MyConnector);
/// ```
#[macro_export]
macro_rules! export_channel {
    ($connector:ty) => {
        const _: () = {
            type SwitchboardChannelExport = $crate::__private::ChannelExport<$connector>;
            $crate::__private::channel::export_channel_world!(
                SwitchboardChannelExport with_types_in $crate::__private::channel
            );
        };
    };
}

/// Exports a [`RoutingPolicy`] implementation as the plugin's `routing` world.
///
/// ```text
/// switchboard_sdk::export_routing!(MyPolicy);
/// ```
#[macro_export]
macro_rules! export_routing {
    ($policy:ty) => {
        const _: () = {
            type SwitchboardRoutingExport = $crate::__private::RoutingExport<$policy>;
            $crate::__private::routing::export_routing_world!(
                SwitchboardRoutingExport with_types_in $crate::__private::routing
            );
        };
    };
}

/// Exports a [`Crm`] implementation as the plugin's `crm` world.
///
/// ```text
/// switchboard_sdk::export_crm!(MyCrm);
/// ```
#[macro_export]
macro_rules! export_crm {
    ($crm:ty) => {
        const _: () = {
            type SwitchboardCrmExport = $crate::__private::CrmExport<$crm>;
            $crate::__private::crm::export_crm_world!(
                SwitchboardCrmExport with_types_in $crate::__private::crm
            );
        };
    };
}

/// Exports a [`Mailer`] (and so [`Channel`]) implementation as the plugin's
/// `switchboard:mail/email@0.2.0` world.
///
/// ```text
/// switchboard_sdk::export_email!(MyMailbox);
/// ```
#[macro_export]
macro_rules! export_email {
    ($mailer:ty) => {
        const _: () = {
            type SwitchboardEmailExport = $crate::__private::EmailExport<$mailer>;
            $crate::__private::email::export_email_world!(
                SwitchboardEmailExport with_types_in $crate::__private::email
            );
        };
    };
}

/// What the export macros expand to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    use core::marker::PhantomData;

    pub use crate::bindings::{channel, crm, email, routing};

    /// Adapts a [`crate::Channel`] to the generated `connector` exports.
    pub struct ChannelExport<T>(PhantomData<T>);

    impl<T: crate::Channel> channel::exports::switchboard::plugin::connector::Guest
        for ChannelExport<T>
    {
        fn describe() -> crate::ChannelInfo {
            T::describe()
        }

        fn handle_webhook(
            request: crate::HttpRequest,
        ) -> Result<crate::WebhookOutcome, crate::PluginError> {
            T::handle_webhook(request)
        }

        fn send(message: crate::OutboundMessage) -> Result<crate::SendReceipt, crate::PluginError> {
            T::send(message)
        }

        fn fetch_attachment(
            attachment: crate::Attachment,
        ) -> Result<crate::AttachmentDownload, crate::PluginError> {
            T::fetch_attachment(attachment)
        }

        fn list_templates() -> Result<Vec<crate::TemplateInfo>, crate::PluginError> {
            T::list_templates()
        }

        fn poll(cursor: Option<String>) -> Result<crate::PollOutcome, crate::PluginError> {
            T::poll(cursor)
        }
    }

    /// Adapts a [`crate::Mailer`] to the `email` world's exports: its
    /// `connector` (the [`crate::Channel`] methods, with the records that
    /// world generates anew converted) and its `mailer`.
    pub struct EmailExport<T>(PhantomData<T>);

    mod email_connector {
        pub use super::email::exports::switchboard::plugin::connector::{
            AttachmentLimits, Capabilities, ChannelInfo, Guest, PollOutcome, TemplateInfo,
        };
    }

    fn email_info(info: crate::ChannelInfo) -> email_connector::ChannelInfo {
        let crate::ChannelInfo {
            channel,
            identity_kind,
            display_name,
            capabilities: c,
        } = info;
        email_connector::ChannelInfo {
            channel,
            identity_kind,
            display_name,
            capabilities: email_connector::Capabilities {
                window_secs: c.window_secs,
                human_window_secs: c.human_window_secs,
                max_body_chars: c.max_body_chars,
                attachments: email_connector::AttachmentLimits {
                    max_count: c.attachments.max_count,
                    max_bytes: c.attachments.max_bytes,
                    content_types: c.attachments.content_types,
                },
                templates: c.templates,
                interactive: c.interactive,
                delivery_receipts: c.delivery_receipts,
                read_receipts: c.read_receipts,
                poll_interval_ms: c.poll_interval_ms,
            },
        }
    }

    fn email_template(t: crate::TemplateInfo) -> email_connector::TemplateInfo {
        email_connector::TemplateInfo {
            name: t.name,
            language: t.language,
            category: t.category,
            body: t.body,
            parameters: t.parameters,
        }
    }

    impl<T: crate::Mailer> email_connector::Guest for EmailExport<T> {
        fn describe() -> email_connector::ChannelInfo {
            email_info(T::describe())
        }

        fn handle_webhook(
            request: crate::HttpRequest,
        ) -> Result<crate::WebhookOutcome, crate::PluginError> {
            T::handle_webhook(request)
        }

        fn send(message: crate::OutboundMessage) -> Result<crate::SendReceipt, crate::PluginError> {
            T::send(message)
        }

        fn fetch_attachment(
            attachment: crate::Attachment,
        ) -> Result<crate::AttachmentDownload, crate::PluginError> {
            T::fetch_attachment(attachment)
        }

        fn list_templates() -> Result<Vec<email_connector::TemplateInfo>, crate::PluginError> {
            T::list_templates().map(|list| list.into_iter().map(email_template).collect())
        }

        fn poll(
            cursor: Option<String>,
        ) -> Result<email_connector::PollOutcome, crate::PluginError> {
            T::poll(cursor).map(|outcome| email_connector::PollOutcome {
                events: outcome.events,
                cursor: outcome.cursor,
                more: outcome.more,
            })
        }
    }

    impl<T: crate::Mailer> email::exports::switchboard::mail0_2_0::attachments::Guest
        for EmailExport<T>
    {
        fn fetch_attachment_to(
            attachment: crate::Attachment,
            into: &crate::mail::BlobWriter,
        ) -> Result<Option<String>, crate::PluginError> {
            T::fetch_attachment_to(attachment, into)
        }
    }

    impl<T: crate::Mailer> email::exports::switchboard::mail0_1_0::mailer::Guest for EmailExport<T> {
        fn poll_mail(cursor: Option<String>) -> Result<crate::mail::MailBatch, crate::PluginError> {
            T::poll_mail(cursor)
        }

        fn handle_mail_webhook(
            request: crate::HttpRequest,
        ) -> Result<crate::mail::MailBatch, crate::PluginError> {
            T::handle_mail_webhook(request)
        }

        fn send_mail(
            message: crate::OutboundMessage,
            copies: crate::mail::Copies,
        ) -> Result<crate::SendReceipt, crate::PluginError> {
            T::send_mail(message, copies)
        }
    }

    /// Adapts a [`crate::RoutingPolicy`] to the generated `policy` exports.
    pub struct RoutingExport<T>(PhantomData<T>);

    impl<T: crate::RoutingPolicy> routing::exports::switchboard::plugin::policy::Guest
        for RoutingExport<T>
    {
        fn classify(
            task: crate::routing::TaskInfo,
        ) -> Result<crate::routing::Classification, crate::PluginError> {
            T::classify(task)
        }

        fn rank(
            task: crate::routing::TaskInfo,
            candidates: &crate::routing::Candidates,
        ) -> Result<Vec<u32>, crate::PluginError> {
            T::rank(task, candidates)
        }
    }

    /// Adapts a [`crate::Crm`] to the generated `crm-sync` exports.
    pub struct CrmExport<T>(PhantomData<T>);

    impl<T: crate::Crm> crm::exports::switchboard::plugin::crm_sync::Guest for CrmExport<T> {
        fn lookup_contact(
            identity: crate::Identity,
        ) -> Result<Option<crate::crm::CrmProfile>, crate::PluginError> {
            T::lookup_contact(identity)
        }

        fn record_activity(entry: crate::crm::TimelineEntry) -> Result<(), crate::PluginError> {
            T::record_activity(entry)
        }

        fn create_contact(
            contact: crate::ContactSummary,
        ) -> Result<crate::crm::CrmProfile, crate::PluginError> {
            T::create_contact(contact)
        }
    }
}
