//! `email`: Switchboard's e-mail connector, a component of the
//! `switchboard:mail/email@0.2.0` world (a channel connector plus envelopes,
//! copies, streams to the operator's mail servers, and files written into
//! the host's blob store).
//!
//! One installation serves one mailbox (`address`); install it again under
//! other ids for more. `provider` picks how mail comes and goes:
//!
//! - `imap` (default): the folder `mailbox` is polled over IMAP every 20 s
//!   ([`imap`]) and replies are submitted over SMTP ([`smtp`]), both with
//!   `username` and `password`, or XOAUTH2 tokens refreshed from an OAuth
//!   refresh token ([`oauth`]).
//! - `mailgun`: inbound routes post to `/hooks/{id}/mailgun` ([`mailgun`]),
//!   replies go through Mailgun's API.
//! - `postmark`: inbound and bounce webhooks post to `/hooks/{id}/postmark`
//!   ([`postmark`]), replies go through Postmark's API.
//!
//! Whatever the provider, an inbound message is read the same way
//! ([`inbound`]): provider id = Message-ID, sender = Reply-To else From,
//! text and HTML bodies, attachments (small ones inline, large ones by
//! reference), threading headers and the tag of a plus-addressed reply
//! address, the envelope (To, Cc, whether a machine wrote it, what could not
//! be read) and, for a bounce, the `failed` receipt of our message it names.
//! A file referenced over IMAP is copied by `fetch-attachment-to`: fetched
//! a MiB at a time, decoded as it arrives ([`transfer`]) and written
//! straight into the host's blob writer, so no file is ever held whole.
//! Every outbound mail is built the same way ([`outbound`]): its Message-ID
//! comes from the host's message id and is the send receipt's provider id.
//!
//! The protocol and parsing code lives in plain modules that compile
//! natively for unit tests; this file only reads config and hands them the
//! host's streams, HTTP, key-value store and clock.

pub mod address;
pub mod formdata;
pub mod html;
pub mod imap;
pub mod inbound;
pub mod mailgun;
pub mod oauth;
pub mod outbound;
pub mod postmark;
pub mod settings;
pub mod smtp;
pub mod store;
#[cfg(test)]
mod testing;
pub mod transfer;

use switchboard_sdk::http::{self, HttpError, Request};
use switchboard_sdk::mail::{BlobWriter, Connection, Copies, MailBatch, Security};
use switchboard_sdk::{
    Attachment, AttachmentDownload, AttachmentLimits, Capabilities, Channel, ChannelInfo,
    DownloadedFile, HttpRequest, Mailer, OutboundMessage, PluginError, PollOutcome, SendReceipt,
    WebhookOutcome, clock, config, kv, log,
};

use crate::imap::client::{ImapError, Session};
use crate::imap::parts::{self, PartReference, PartSink};
use crate::imap::sync::{self, PollSettings};
use crate::outbound::{File, Mail, Mailbox};
use crate::settings::{ImapSmtp, Login, Provider, ProviderSettings, Settings};

/// Logs a warning through the host; in native unit tests, where there is no
/// host, to stderr.
pub(crate) fn warn(message: impl std::fmt::Display) {
    #[cfg(target_arch = "wasm32")]
    log::warn(message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("warning: {message}");
}

/// How often the host polls an IMAP mailbox unless `poll_seconds` says
/// otherwise: new mail is on the timeline well within a minute.
pub const POLL_INTERVAL_MS: u32 = 20_000;
/// The shortest `poll_seconds` accepted, so a mailbox is never hammered.
pub const MIN_POLL_SECONDS: u32 = 2;

/// The poll interval `poll_seconds` asks for (2 s to 1 hour), else the default.
pub fn poll_interval_ms(poll_seconds: Option<&str>) -> u32 {
    poll_seconds
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map(|s| s.clamp(MIN_POLL_SECONDS, 3600) * 1000)
        .unwrap_or(POLL_INTERVAL_MS)
}
/// Largest file, and files per message, the channel carries.
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;
pub const MAX_ATTACHMENTS: u32 = 10;

/// What e-mail carries: no window, no length limit, ten files of any type up
/// to 25 MB, no delivery receipts (bounces arrive as failures); polled only
/// when the mail comes over IMAP.
pub fn capabilities(provider: Provider, poll_every_ms: u32) -> Capabilities {
    Capabilities {
        attachments: AttachmentLimits {
            max_count: MAX_ATTACHMENTS,
            max_bytes: MAX_ATTACHMENT_BYTES,
            content_types: Vec::new(),
        },
        delivery_receipts: false,
        read_receipts: false,
        poll_interval_ms: (provider == Provider::Imap).then_some(poll_every_ms),
        ..Capabilities::default()
    }
}

/// The kind of webhook a path is for: `mailgun` for `/hooks/{id}/mailgun`
/// and `/hooks/{id}/mailgun/mime`, `postmark` for `/hooks/{id}/postmark`.
pub fn hook_kind(path: &str) -> Option<&str> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments.by_ref().find(|s| *s == "hooks")?;
    segments.next()?;
    let kind = segments.next()?;
    Some(kind.split('.').next().unwrap_or(kind))
}

struct Email;

fn settings() -> Result<Settings, PluginError> {
    Settings::load(config::get)
}

fn now_secs() -> u64 {
    clock::now_ms() / 1000
}

impl Channel for Email {
    fn describe() -> ChannelInfo {
        let provider =
            Provider::parse(config::get("provider").as_deref()).unwrap_or(Provider::Imap);
        let name = config::get("display_name")
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "E-mail".to_owned());
        let every = poll_interval_ms(config::get("poll_seconds").as_deref());
        ChannelInfo::new("email", inbound::EMAIL, name).with(capabilities(provider, every))
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        Self::handle_mail_webhook(request).map(MailBatch::into_webhook_outcome)
    }

    fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError> {
        Self::send_mail(message, Copies::default())
    }

    /// The file whole, for a host that does not take it through a blob
    /// writer (`fetch-attachment-to` is what this host calls).
    fn fetch_attachment(attachment: Attachment) -> Result<AttachmentDownload, PluginError> {
        let mut content = Vec::new();
        let content_type = copy_part(&attachment, &mut content)?;
        Ok(AttachmentDownload::Bytes(DownloadedFile {
            content,
            content_type,
        }))
    }

    fn poll(cursor: Option<String>) -> Result<PollOutcome, PluginError> {
        Self::poll_mail(cursor).map(MailBatch::into_poll_outcome)
    }
}

impl Mailer for Email {
    fn poll_mail(cursor: Option<String>) -> Result<MailBatch, PluginError> {
        let settings = settings()?;
        let ProviderSettings::Imap(imap) = &settings.provider else {
            return Err(PluginError::Unsupported(
                "this mailbox receives mail by webhook, not by polling".into(),
            ));
        };
        let mut session = imap_session(imap, settings.max_message_bytes)?;
        let batch = sync::poll(
            &mut session,
            cursor.as_deref(),
            &PollSettings {
                mailbox: &imap.mailbox,
                address: &settings.address,
                initial_sync: imap.initial_sync,
                max_message_bytes: settings.max_message_bytes,
            },
        )?;
        session.logout();
        log::debug(format_args!(
            "polled `{}`: {} events, cursor {:?}, more {}",
            imap.mailbox,
            batch.events.len(),
            batch.cursor,
            batch.more
        ));
        Ok(batch)
    }

    fn handle_mail_webhook(request: HttpRequest) -> Result<MailBatch, PluginError> {
        let settings = settings()?;
        match &settings.provider {
            ProviderSettings::Mailgun(mailgun) if mailgun::is_for(&request) => mailgun::handle(
                &request,
                mailgun,
                &settings.address,
                now_secs(),
                &mut HostKv,
            ),
            ProviderSettings::Postmark(postmark) if postmark::is_for(&request) => {
                postmark::handle(&request, postmark, &settings.address)
            }
            _ => Err(PluginError::InvalidRequest(
                "no webhook of this mailbox's provider at this path".into(),
            )),
        }
    }

    fn fetch_attachment_to(
        attachment: Attachment,
        into: &BlobWriter,
    ) -> Result<Option<String>, PluginError> {
        copy_part(&attachment, &mut HostBlob(into))
    }

    fn send_mail(message: OutboundMessage, copies: Copies) -> Result<SendReceipt, PluginError> {
        let settings = settings()?;
        let mailbox = Mailbox {
            address: &settings.address,
            display_name: settings.display_name.as_deref(),
        };
        let now = i64::try_from(now_secs()).unwrap_or(i64::MAX);
        let mut mail = Mail::compose(&message, &copies, mailbox, now)?;
        mail.files = download_files(&message.attachments)?;
        match &settings.provider {
            ProviderSettings::Imap(imap) => send_smtp(&settings, imap, &mail),
            ProviderSettings::Mailgun(mailgun) => {
                let response = http::send(mailgun::send_request(mailgun, &mail))?;
                mailgun::receipt(&response, &mail)
            }
            ProviderSettings::Postmark(postmark) => {
                let response = http::send(postmark::send_request(postmark, &mail))?;
                postmark::receipt(&response, &mail)
            }
        }
    }
}

switchboard_sdk::export_email!(Email);

/// The host's blob writer as the sink of a copied part.
struct HostBlob<'a>(&'a BlobWriter);

impl PartSink for HostBlob<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.0.write_all(bytes).map_err(Into::into)
    }
}

/// Copies the IMAP part `attachment` refers to into `sink` (see
/// [`parts::fetch_part_to`]); answers its content type.
fn copy_part(
    attachment: &Attachment,
    sink: &mut impl PartSink,
) -> Result<Option<String>, PluginError> {
    let Some(reference) = PartReference::parse(&attachment.url) else {
        return Err(PluginError::InvalidRequest(format!(
            "not an attachment this connector reported: {}",
            attachment.url.chars().take(80).collect::<String>()
        )));
    };
    let settings = settings()?;
    let ProviderSettings::Imap(imap) = &settings.provider else {
        return Err(PluginError::Unsupported(
            "IMAP attachments need provider `imap`".into(),
        ));
    };
    let mut session = imap_session(imap, settings.max_message_bytes)?;
    let content_type = parts::fetch_part_to(&mut session, &imap.mailbox, &reference, sink)?;
    session.logout();
    Ok(content_type)
}

/// The plugin's key-value store for [`oauth`] and [`mailgun`].
struct HostKv;

impl store::Store for HostKv {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        kv::get(key)
    }

    fn set(&mut self, key: &str, value: &[u8]) {
        if let Err(error) = kv::set(key, value) {
            warn(format_args!("cannot keep `{key}` in kv: {error:?}"));
        }
    }

    fn delete(&mut self, key: &str) {
        kv::delete(key);
    }
}

fn access_token(oauth: &settings::OAuth) -> Result<String, PluginError> {
    oauth::access_token(oauth, &mut HostKv, &mut http::send, clock::now_ms())
}

/// A logged-in IMAP session.
fn imap_session(
    imap: &ImapSmtp,
    max_message_bytes: u64,
) -> Result<Session<Connection>, PluginError> {
    let max_literal = usize::try_from(max_message_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024);
    let server = &imap.imap;
    let connection = Connection::connect(&server.host, server.port, server.security)?;
    let mut session = Session::start(
        connection,
        server.security == Security::Starttls,
        max_literal,
    )?;
    match &imap.login {
        Login::Password { username, password } => session.login(username, password)?,
        Login::XOauth2 { username, oauth } => {
            let token = access_token(oauth)?;
            match session.authenticate_xoauth2(username, &token) {
                Ok(()) => {}
                // A cached token the server no longer takes: once more
                // with a fresh one.
                Err(ImapError::LoginRefused(_)) => {
                    oauth::forget(oauth, &mut HostKv);
                    let token = access_token(oauth)?;
                    session.authenticate_xoauth2(username, &token)?;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
    Ok(session)
}

/// Submits `mail` over SMTP.
fn send_smtp(
    settings: &Settings,
    imap: &ImapSmtp,
    mail: &Mail,
) -> Result<SendReceipt, PluginError> {
    let data = mail.to_mime();
    let recipients = mail.recipients();
    let envelope = smtp::Envelope {
        helo: settings.domain(),
        from: &settings.address,
        recipients: &recipients,
        data: &data,
    };
    let server = &imap.smtp;
    let attempts = if matches!(imap.login, Login::XOauth2 { .. }) {
        2
    } else {
        1
    };
    let mut outcome = Err(PluginError::Internal("no attempt made".into()));
    for attempt in 0..attempts {
        let token = match &imap.login {
            Login::XOauth2 { oauth, .. } => Some(access_token(oauth)?),
            Login::Password { .. } => None,
        };
        let auth = match &imap.login {
            Login::Password { username, password } => smtp::Auth::Password { username, password },
            Login::XOauth2 { username, .. } => smtp::Auth::XOauth2 {
                username,
                token: token.as_deref().unwrap_or_default(),
            },
        };
        let mut connection = Connection::connect(&server.host, server.port, server.security)?;
        match smtp::submit(
            &mut connection,
            server.security == Security::Starttls,
            Some(auth),
            &envelope,
        ) {
            Ok(()) => return Ok(SendReceipt::sent(mail.message_id.clone())),
            Err(smtp::SmtpError::Rejected {
                stage: smtp::Stage::Auth,
                ..
            }) if attempt + 1 < attempts => {
                if let Login::XOauth2 { oauth, .. } = &imap.login {
                    oauth::forget(oauth, &mut HostKv);
                }
            }
            Err(error) => {
                outcome = Err(error.into());
                break;
            }
        }
    }
    outcome
}

/// The files of an outbound message: the bytes the host handed over (it does
/// for e-mail connectors), else downloaded from the host's signed URLs.
fn download_files(attachments: &[Attachment]) -> Result<Vec<File>, PluginError> {
    let mut files = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        if let Some(bytes) = &attachment.content {
            files.push(File {
                filename: attachment
                    .filename
                    .clone()
                    .filter(|f| !f.trim().is_empty())
                    .unwrap_or_else(|| "attachment".to_owned()),
                content_type: attachment
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                bytes: bytes.clone(),
            });
            continue;
        }
        let response =
            http::send(Request::get(attachment.url.as_str())).map_err(|error| match error {
                HttpError::Denied(detail) => PluginError::Config(format!(
                    "cannot download the attachment: the host's own public URL must be on this \
                 plugin's allowed hosts to send files ({detail})"
                )),
                other => other.into(),
            })?;
        if !response.is_success() {
            return Err(response.failure("downloading an attachment from the host"));
        }
        files.push(File {
            filename: attachment
                .filename
                .clone()
                .filter(|f| !f.trim().is_empty())
                .unwrap_or_else(|| "attachment".to_owned()),
            content_type: attachment
                .content_type
                .clone()
                .or_else(|| response.header("content-type").map(str::to_owned))
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            bytes: response.body,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_of_email() {
        let polled = capabilities(Provider::Imap, POLL_INTERVAL_MS);
        assert_eq!(polled.poll_interval_ms, Some(20_000));
        assert_eq!(poll_interval_ms(None), 20_000);
        assert_eq!(poll_interval_ms(Some("5")), 5_000);
        assert_eq!(poll_interval_ms(Some("0")), 2_000);
        assert_eq!(poll_interval_ms(Some("soon")), 20_000);
        assert_eq!(polled.window_secs, None);
        assert_eq!(polled.attachments.max_count, 10);
        assert_eq!(polled.attachments.max_bytes, 25 * 1024 * 1024);
        assert!(polled.attachments.content_types.is_empty());
        assert!(!polled.delivery_receipts && !polled.read_receipts);
        assert_eq!(
            capabilities(Provider::Mailgun, 5_000).poll_interval_ms,
            None
        );
        assert_eq!(
            capabilities(Provider::Postmark, 5_000).poll_interval_ms,
            None
        );
    }

    #[test]
    fn webhook_paths() {
        assert_eq!(hook_kind("/hooks/email/mailgun"), Some("mailgun"));
        assert_eq!(hook_kind("/hooks/sales-mail/mailgun/mime"), Some("mailgun"));
        assert_eq!(hook_kind("/hooks/email/mailgun.mime"), Some("mailgun"));
        assert_eq!(hook_kind("/base/hooks/email/postmark"), Some("postmark"));
        assert_eq!(hook_kind("/hooks/email"), None);
        assert_eq!(hook_kind("/other"), None);
    }
}
