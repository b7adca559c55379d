//! SMTP submission over any [`Transport`] (RFC 5321, 6409): EHLO, STARTTLS,
//! AUTH PLAIN / LOGIN / XOAUTH2, MAIL FROM, one RCPT TO per recipient, DATA
//! with dot-stuffing, QUIT.
//!
//! Every reply is classified where it comes: 4xx may pass (transient), a
//! refused login or sender is the operator's to fix (config), a refused
//! recipient or message is final (permanent).

use base64::Engine as _;
use switchboard_sdk::PluginError;
use switchboard_sdk::mail::{StreamError, Transport};

/// Longest reply line accepted (RFC 5321 allows 512; servers send more).
const MAX_LINE: usize = 8 * 1024;
/// Most lines in one multi-line reply.
const MAX_REPLY_LINES: usize = 200;

/// How the connector logs in.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// Whatever the server offers of PLAIN and LOGIN.
    Password {
        username: &'a str,
        password: &'a str,
    },
    /// SASL XOAUTH2 with an OAuth access token.
    XOauth2 { username: &'a str, token: &'a str },
}

/// One message to submit.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The EHLO name: our mail domain.
    pub helo: &'a str,
    pub from: &'a str,
    pub recipients: &'a [String],
    /// The message, CRLF line ends, not yet dot-stuffed.
    pub data: &'a [u8],
}

/// One server reply: its code and its lines' text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" ")
    }

    fn is(&self, class: u16) -> bool {
        self.code / 100 == class
    }

    fn describe(&self) -> String {
        format!("{} {}", self.code, self.text())
    }
}

/// Where in the exchange something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    Message,
}

/// Why a submission failed.
#[derive(Debug, Clone, PartialEq)]
pub enum SmtpError {
    Stream(StreamError),
    /// The server answered `reply` at `stage`; `subject` names the address
    /// concerned (MAIL FROM, RCPT TO).
    Rejected {
        stage: Stage,
        subject: Option<String>,
        reply: Reply,
    },
    /// A setting the operator must change.
    Config(String),
    /// The server cannot take this message at all.
    Permanent(String),
    /// The server broke the protocol.
    Protocol(String),
}

impl From<StreamError> for SmtpError {
    fn from(error: StreamError) -> Self {
        SmtpError::Stream(error)
    }
}

impl From<SmtpError> for PluginError {
    fn from(error: SmtpError) -> Self {
        match error {
            SmtpError::Stream(error) => error.into(),
            SmtpError::Config(text) => PluginError::Config(text),
            SmtpError::Permanent(text) => PluginError::Permanent(text),
            SmtpError::Protocol(text) => PluginError::Transient(format!("SMTP: {text}")),
            SmtpError::Rejected {
                stage,
                subject,
                reply,
            } => {
                let what = reply.describe();
                if reply.is(4) {
                    return PluginError::Transient(format!("SMTP server deferred: {what}"));
                }
                match stage {
                    Stage::Auth => PluginError::Config(format!("SMTP login refused: {what}")),
                    Stage::MailFrom if reply.code == 552 => {
                        PluginError::Permanent(format!("SMTP server refused the message: {what}"))
                    }
                    Stage::MailFrom => PluginError::Config(format!(
                        "SMTP server refused sender {}: {what}",
                        subject.unwrap_or_default()
                    )),
                    Stage::RcptTo if reply.code == 530 => {
                        PluginError::Config(format!("SMTP server wants a login: {what}"))
                    }
                    Stage::RcptTo => PluginError::Permanent(format!(
                        "SMTP server refused recipient {}: {what}",
                        subject.unwrap_or_default()
                    )),
                    Stage::Data | Stage::Message => {
                        PluginError::Permanent(format!("SMTP server refused the message: {what}"))
                    }
                    Stage::Greeting | Stage::Ehlo | Stage::StartTls => {
                        PluginError::Transient(format!("SMTP server refused the session: {what}"))
                    }
                }
            }
        }
    }
}

/// What EHLO announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub starttls: bool,
    /// SASL mechanisms, upper-case.
    pub auth: Vec<String>,
    /// The largest message the server takes, 0 for no limit.
    pub size: Option<u64>,
    pub smtputf8: bool,
}

impl Extensions {
    /// Reads the lines after the greeting line of an EHLO reply.
    pub fn parse(reply: &Reply) -> Extensions {
        let mut extensions = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let upper = line.to_ascii_uppercase();
            let mut words = upper.split_whitespace();
            match words.next() {
                Some("STARTTLS") => extensions.starttls = true,
                Some("SMTPUTF8") => extensions.smtputf8 = true,
                Some("SIZE") => extensions.size = words.next().and_then(|n| n.parse().ok()),
                Some(word) if word == "AUTH" || word.starts_with("AUTH=") => {
                    let first = word.strip_prefix("AUTH=").filter(|w| !w.is_empty());
                    extensions
                        .auth
                        .extend(first.into_iter().chain(words).map(str::to_owned));
                }
                _ => {}
            }
        }
        extensions
    }
}

/// Submits one message: the whole exchange from greeting to QUIT.
///
/// # Errors
///
/// [`SmtpError`] at the first step that fails; the message is then not sent
/// (the connection is dropped without DATA's final dot).
pub fn submit<T: Transport>(
    transport: &mut T,
    starttls: bool,
    auth: Option<Auth<'_>>,
    envelope: &Envelope<'_>,
) -> Result<(), SmtpError> {
    let greeting = read_reply(transport)?;
    expect(&greeting, 2, Stage::Greeting, None)?;
    let mut extensions = ehlo(transport, envelope.helo)?;

    if starttls {
        if !extensions.starttls {
            return Err(SmtpError::Config(
                "the SMTP server does not offer STARTTLS; use `security = tls` with port 465"
                    .into(),
            ));
        }
        let reply = command(transport, "STARTTLS")?;
        expect(&reply, 2, Stage::StartTls, None)?;
        transport.start_tls()?;
        // What the server said before TLS is not to be trusted.
        extensions = ehlo(transport, envelope.helo)?;
    }

    if let Some(auth) = auth {
        if extensions.auth.is_empty() {
            // Nothing offered: servers that take mail from this client
            // without a login (a relay on loopback) are used as they are.
        } else {
            authenticate(transport, &extensions, auth)?;
        }
    }

    if let Some(limit) = extensions.size.filter(|n| *n > 0)
        && envelope.data.len() as u64 > limit
    {
        return Err(SmtpError::Permanent(format!(
            "the message is {} bytes; the SMTP server takes at most {limit}",
            envelope.data.len()
        )));
    }
    let needs_utf8 = !envelope.from.is_ascii() || envelope.recipients.iter().any(|r| !r.is_ascii());
    if needs_utf8 && !extensions.smtputf8 {
        return Err(SmtpError::Permanent(
            "an address is not ASCII and the SMTP server does not take SMTPUTF8".into(),
        ));
    }
    let mut mail_from = format!("MAIL FROM:<{}>", envelope.from);
    if extensions.size.is_some() {
        mail_from.push_str(&format!(" SIZE={}", envelope.data.len()));
    }
    if needs_utf8 {
        mail_from.push_str(" SMTPUTF8");
    }
    let reply = command(transport, &mail_from)?;
    expect(&reply, 2, Stage::MailFrom, Some(envelope.from))?;

    for recipient in envelope.recipients {
        let reply = command(transport, &format!("RCPT TO:<{recipient}>"))?;
        expect(&reply, 2, Stage::RcptTo, Some(recipient))?;
    }

    let reply = command(transport, "DATA")?;
    expect(&reply, 3, Stage::Data, None)?;
    transport.write_all(&dot_stuff(envelope.data))?;
    let reply = read_reply(transport)?;
    expect(&reply, 2, Stage::Message, None)?;

    // Sent: a failing QUIT changes nothing.
    let _ = command(transport, "QUIT");
    Ok(())
}

fn ehlo<T: Transport>(transport: &mut T, helo: &str) -> Result<Extensions, SmtpError> {
    let reply = command(transport, &format!("EHLO {helo}"))?;
    expect(&reply, 2, Stage::Ehlo, None)?;
    Ok(Extensions::parse(&reply))
}

fn authenticate<T: Transport>(
    transport: &mut T,
    extensions: &Extensions,
    auth: Auth<'_>,
) -> Result<(), SmtpError> {
    let b64 = |text: &[u8]| base64::engine::general_purpose::STANDARD.encode(text);
    let offers = |mechanism: &str| extensions.auth.iter().any(|m| m == mechanism);
    let reply = match auth {
        Auth::XOauth2 { username, token } => {
            if !offers("XOAUTH2") && !offers("OAUTHBEARER") {
                return Err(SmtpError::Config(format!(
                    "the SMTP server does not offer XOAUTH2 (it offers {})",
                    extensions.auth.join(", ")
                )));
            }
            let initial = crate::imap::client::xoauth2_initial_response(username, token);
            let mut reply = command(transport, &format!("AUTH XOAUTH2 {initial}"))?;
            if reply.code == 334 {
                // The error details; an empty line asks for the final answer.
                reply = command(transport, "")?;
            }
            reply
        }
        Auth::Password { username, password } => {
            if offers("PLAIN") {
                let token = b64(format!("\0{username}\0{password}").as_bytes());
                command(transport, &format!("AUTH PLAIN {token}"))?
            } else if offers("LOGIN") {
                let reply = command(transport, "AUTH LOGIN")?;
                expect(&reply, 3, Stage::Auth, None)?;
                let reply = command(transport, &b64(username.as_bytes()))?;
                expect(&reply, 3, Stage::Auth, None)?;
                command(transport, &b64(password.as_bytes()))?
            } else {
                return Err(SmtpError::Config(format!(
                    "the SMTP server offers no password login (it offers {})",
                    extensions.auth.join(", ")
                )));
            }
        }
    };
    expect(&reply, 2, Stage::Auth, None)
}

fn expect(reply: &Reply, class: u16, stage: Stage, subject: Option<&str>) -> Result<(), SmtpError> {
    if reply.is(class) {
        Ok(())
    } else {
        Err(SmtpError::Rejected {
            stage,
            subject: subject.map(str::to_owned),
            reply: reply.clone(),
        })
    }
}

fn command<T: Transport>(transport: &mut T, line: &str) -> Result<Reply, SmtpError> {
    transport.write_all(format!("{line}\r\n").as_bytes())?;
    read_reply(transport)
}

/// One reply: `250-first`, `250-more`, `250 last`.
pub fn read_reply<T: Transport>(transport: &mut T) -> Result<Reply, SmtpError> {
    let mut lines = Vec::new();
    loop {
        let raw = transport.read_line(MAX_LINE)?;
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let code = line
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| SmtpError::Protocol(format!("not an SMTP reply: {line:.100}")))?;
        let separator = line.as_bytes().get(3).copied();
        lines.push(line.get(4..).unwrap_or_default().to_owned());
        match separator {
            Some(b'-') if lines.len() < MAX_REPLY_LINES => {}
            Some(b'-') => {
                return Err(SmtpError::Protocol("a reply of too many lines".into()));
            }
            _ => return Ok(Reply { code, lines }),
        }
    }
}

/// The DATA payload: CRLF line ends, a dot doubled at the start of a line,
/// and the terminating `.` line.
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 8);
    let mut line_start = true;
    let mut previous = 0u8;
    for &byte in data {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        match byte {
            b'\n' if previous != b'\r' => out.extend_from_slice(b"\r\n"),
            _ => out.push(byte),
        }
        line_start = byte == b'\n';
        previous = byte;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests;
