//! `test-streams`: an e-mail-world connector that drives the host's
//! `switchboard:mail/streams` from inside the sandbox, for the host's tests.
//!
//! - `send-mail` connects to `to.value` (`host:port`, which need not be an
//!   approved server: the host decides) with the `security` config value
//!   (`tls`, `starttls` or `plain`). For `starttls` it reads the greeting
//!   line, writes `STARTTLS\r\n`, reads the answer line and upgrades. Then it
//!   writes `body` and reads until as many bytes came back (an echo server).
//!   The receipt's provider id is `{echo}|tls={is-tls}|cc={n}|bcc={n}`. A
//!   stream error is a `transient` error whose text starts with its kind
//!   (`not-allowed: …`, `tls: …`).
//! - `poll-mail` connects to `imap_host:imap_port` the same way and reads one
//!   line; the batch carries one envelope with that line as provider id and
//!   the cursor it was given.
//! - `handle-mail-webhook` answers 200 `ok` with one `bulk` envelope `hook`.
//! - `send` is `send-mail` without copies; `describe` names an `email`
//!   channel; the rest is `unsupported`.
//!
//! It uses `wit-bindgen` directly, not the SDK, so the host's tests do not
//! depend on how the SDK wraps the world.

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/switchboard-plugin@0.2.0", "../../wit/switchboard-mail@0.1.0"],
        world: "switchboard:mail/email@0.1.0",
        // Generates the other package's interfaces here too (a lone guest has
        // no module to share them with).
        generate_all,
    });

    use super::TestStreams;
    export!(TestStreams with_types_in self);
}

use bindings::exports::switchboard::mail::mailer::{self, Automatic, Copies, Envelope, MailBatch};
use bindings::exports::switchboard::plugin::connector::{
    self, AttachmentLimits, Capabilities, ChannelInfo, PollOutcome, TemplateInfo,
};
use bindings::switchboard::mail::streams::{self, Connection, Security, StreamError};
use bindings::switchboard::plugin::host;
use bindings::switchboard::plugin::types::{
    Attachment, AttachmentDownload, DeliveryStatus, HttpRequest, HttpResponse, OutboundMessage,
    PluginError, SendReceipt, WebhookOutcome,
};

struct TestStreams;

fn stream_error(e: StreamError) -> PluginError {
    PluginError::Transient(match e {
        StreamError::NotAllowed(m) => format!("not-allowed: {m}"),
        StreamError::Dns(m) => format!("dns: {m}"),
        StreamError::Io(m) => format!("io: {m}"),
        StreamError::Tls(m) => format!("tls: {m}"),
        StreamError::Timeout(m) => format!("timeout: {m}"),
        StreamError::Limit(m) => format!("limit: {m}"),
    })
}

fn security() -> Result<Security, PluginError> {
    match host::get_config("security").as_deref() {
        None | Some("tls") => Ok(Security::Tls),
        Some("starttls") => Ok(Security::Starttls),
        Some("plain") => Ok(Security::Plain),
        Some(other) => Err(PluginError::Config(format!("security `{other}`"))),
    }
}

/// Reads up to and including the next `\n`.
fn read_line(conn: &Connection) -> Result<Vec<u8>, PluginError> {
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        let chunk = conn.read(1).map_err(stream_error)?;
        if chunk.is_empty() {
            return Err(PluginError::Transient(
                "the server closed the connection".into(),
            ));
        }
        line.extend(chunk);
    }
    Ok(line)
}

/// Connects, and for `starttls` runs the SMTP-like upgrade.
fn open(host: &str, port: u16) -> Result<Connection, PluginError> {
    let security = security()?;
    let conn = streams::connect(host, port, security).map_err(stream_error)?;
    if security == Security::Starttls {
        read_line(&conn)?;
        conn.write(b"STARTTLS\r\n").map_err(stream_error)?;
        read_line(&conn)?;
        conn.start_tls().map_err(stream_error)?;
    }
    Ok(conn)
}

fn host_port(text: &str) -> Result<(String, u16), PluginError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| PluginError::InvalidRequest(format!("`{text}` is not host:port")))?;
    let port = port
        .parse()
        .map_err(|_| PluginError::InvalidRequest(format!("`{port}` is not a port")))?;
    Ok((host.to_string(), port))
}

impl connector::Guest for TestStreams {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            channel: "email".into(),
            identity_kind: "email".into(),
            display_name: "Test streams".into(),
            capabilities: Capabilities {
                window_secs: None,
                human_window_secs: None,
                max_body_chars: None,
                attachments: AttachmentLimits {
                    max_count: 0,
                    max_bytes: 0,
                    content_types: Vec::new(),
                },
                templates: false,
                interactive: false,
                delivery_receipts: false,
                read_receipts: false,
                poll_interval_ms: Some(60_000),
            },
        }
    }

    fn handle_webhook(_request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        Err(PluginError::Unsupported("no webhooks".into()))
    }

    fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError> {
        <TestStreams as mailer::Guest>::send_mail(
            message,
            Copies {
                cc: Vec::new(),
                bcc: Vec::new(),
            },
        )
    }

    fn fetch_attachment(_attachment: Attachment) -> Result<AttachmentDownload, PluginError> {
        Err(PluginError::Unsupported("no attachments".into()))
    }

    fn list_templates() -> Result<Vec<TemplateInfo>, PluginError> {
        Ok(Vec::new())
    }

    fn poll(_cursor: Option<String>) -> Result<PollOutcome, PluginError> {
        Err(PluginError::Unsupported("use poll-mail".into()))
    }
}

impl mailer::Guest for TestStreams {
    fn poll_mail(cursor: Option<String>) -> Result<MailBatch, PluginError> {
        let host = host::get_config("imap_host")
            .ok_or_else(|| PluginError::Config("imap_host is not set".into()))?;
        let port = match host::get_config("imap_port") {
            Some(p) => p
                .parse()
                .map_err(|_| PluginError::Config(format!("imap_port `{p}`")))?,
            None => 993,
        };
        let conn = open(&host, port)?;
        let line = read_line(&conn)?;
        Ok(MailBatch {
            events: Vec::new(),
            envelopes: vec![Envelope {
                provider_id: String::from_utf8_lossy(&line).trim_end().to_string(),
                to: Vec::new(),
                cc: Vec::new(),
                automatic: None,
                problem: None,
            }],
            cursor,
            more: false,
            response: None,
        })
    }

    fn handle_mail_webhook(_request: HttpRequest) -> Result<MailBatch, PluginError> {
        Ok(MailBatch {
            events: Vec::new(),
            envelopes: vec![Envelope {
                provider_id: "hook".into(),
                to: Vec::new(),
                cc: Vec::new(),
                automatic: Some(Automatic::Bulk),
                problem: None,
            }],
            cursor: None,
            more: false,
            response: Some(HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: b"ok".to_vec(),
            }),
        })
    }

    fn send_mail(message: OutboundMessage, copies: Copies) -> Result<SendReceipt, PluginError> {
        let (host, port) = host_port(&message.to.value)?;
        let conn = open(&host, port)?;
        conn.write(message.body.as_bytes()).map_err(stream_error)?;
        let mut echo = Vec::new();
        while echo.len() < message.body.len() {
            let chunk = conn.read(4096).map_err(stream_error)?;
            if chunk.is_empty() {
                break;
            }
            echo.extend(chunk);
        }
        Ok(SendReceipt {
            provider_id: format!(
                "{}|tls={}|cc={}|bcc={}",
                String::from_utf8_lossy(&echo),
                conn.is_tls(),
                copies.cc.len(),
                copies.bcc.len()
            ),
            status: DeliveryStatus::Sent,
        })
    }
}
