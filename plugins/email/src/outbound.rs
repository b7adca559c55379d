//! An agent's reply as an e-mail: headers that make mail clients thread it,
//! a text and an HTML body, attachments, and the MIME text (built with
//! `mail-builder`) that SMTP and Mailgun send as it is.
//!
//! The Message-ID is derived from the host's message id, so a send retried
//! after a crash carries the same id and is recognizable as the same mail;
//! it is also the provider id of the send receipt, which is what replies
//! (`In-Reply-To`) and bounces name.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use switchboard_sdk::mail::Copies;
use switchboard_sdk::{OutboundMessage, PluginError};

use crate::{address, html};

/// Subject of a mail the host gives none.
pub const NO_SUBJECT: &str = "(no subject)";

/// One file to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Who the mailbox is.
#[derive(Debug, Clone, Copy)]
pub struct Mailbox<'a> {
    pub address: &'a str,
    pub display_name: Option<&'a str>,
}

/// One outbound e-mail, before it is written as MIME or as an API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Without angle brackets: `{host message id}@{our domain}`.
    pub message_id: String,
    pub from_name: Option<String>,
    pub from: String,
    pub to: String,
    pub cc: Vec<String>,
    /// Only in the SMTP envelope (or the API's bcc), never in a header.
    pub bcc: Vec<String>,
    pub reply_to: String,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub text: String,
    pub html: String,
    /// Sent by no person (a survey, a notification): marked
    /// `Auto-Submitted: auto-generated` so auto-responders stay quiet.
    pub automatic: bool,
    pub date_secs: i64,
    pub files: Vec<File>,
}

impl Mail {
    /// The e-mail for `message` with `copies`, sent at `now_secs`.
    ///
    /// # Errors
    ///
    /// [`PluginError::Permanent`] when a recipient is not an e-mail address.
    pub fn compose(
        message: &OutboundMessage,
        copies: &Copies,
        mailbox: Mailbox<'_>,
        now_secs: i64,
    ) -> Result<Mail, PluginError> {
        let to = recipient(&message.to.value);
        if !address::is_valid(&to) {
            return Err(PluginError::Permanent(format!(
                "`{}` is not an e-mail address",
                message.to.value
            )));
        }
        // The customer is `To`, and the mailbox never copies itself.
        let mut seen = vec![
            to.to_ascii_lowercase(),
            mailbox.address.to_ascii_lowercase(),
        ];
        let mut list =
            |identities: &[switchboard_sdk::Identity]| -> Result<Vec<String>, PluginError> {
                let mut out = Vec::new();
                for identity in identities {
                    let addr = recipient(&identity.value);
                    if !address::is_valid(&addr) {
                        return Err(PluginError::Permanent(format!(
                            "copy `{}` is not an e-mail address",
                            identity.value
                        )));
                    }
                    let key = addr.to_ascii_lowercase();
                    if !seen.contains(&key) {
                        seen.push(key);
                        out.push(addr);
                    }
                }
                Ok(out)
            };
        let cc = list(&copies.cc)?;
        let bcc = list(&copies.bcc)?;

        let domain = address::domain(mailbox.address).unwrap_or("localhost");
        let reply_to = match message.metadata.thread_id.as_deref() {
            Some(tag) if address::is_valid_tag(tag) => address::with_tag(mailbox.address, tag),
            _ => mailbox.address.to_owned(),
        };
        let subject = message
            .metadata
            .subject
            .as_deref()
            .map(single_line)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| NO_SUBJECT.to_owned());
        let in_reply_to = message
            .metadata
            .in_reply_to
            .as_deref()
            .map(address::strip_id)
            .filter(|id| valid_reference(id))
            .map(str::to_owned);
        let references = message
            .metadata
            .references
            .iter()
            .map(|id| address::strip_id(id))
            .filter(|id| valid_reference(id))
            .map(str::to_owned)
            .collect();
        let from_name = message
            .author
            .as_deref()
            .or(mailbox.display_name)
            .map(single_line)
            .filter(|n| !n.is_empty());
        let text = message.body.replace("\r\n", "\n");
        Ok(Mail {
            message_id: format!("{}@{domain}", id_local_part(&message.message_id)),
            from_name,
            from: mailbox.address.to_owned(),
            to,
            cc,
            bcc,
            reply_to,
            subject,
            in_reply_to,
            references,
            html: html::from_text(&text),
            text,
            automatic: message.author.is_none(),
            date_secs: now_secs,
            files: Vec::new(),
        })
    }

    /// Every envelope recipient: To, Cc and Bcc, each once.
    pub fn recipients(&self) -> Vec<String> {
        std::iter::once(&self.to)
            .chain(&self.cc)
            .chain(&self.bcc)
            .cloned()
            .collect()
    }

    /// `"Name" <address>` as an API takes it.
    pub fn from_header(&self) -> String {
        match &self.from_name {
            Some(name) => format!("\"{}\" <{}>", name.replace(['"', '\\'], ""), self.from),
            None => self.from.clone(),
        }
    }

    /// The message as MIME, CRLF line ends, ready for SMTP `DATA` (before
    /// dot-stuffing) or Mailgun's `messages.mime`.
    pub fn to_mime(&self) -> Vec<u8> {
        let mut builder = MessageBuilder::new()
            .from(Address::new_address(
                self.from_name.as_deref(),
                self.from.as_str(),
            ))
            .to(Address::new_address(None::<&str>, self.to.as_str()))
            .reply_to(Address::new_address(None::<&str>, self.reply_to.as_str()))
            .subject(self.subject.as_str())
            .message_id(self.message_id.as_str())
            .date(Date::new(self.date_secs));
        if !self.cc.is_empty() {
            builder = builder.cc(Address::new_list(
                self.cc
                    .iter()
                    .map(|a| Address::new_address(None::<&str>, a.as_str()))
                    .collect(),
            ));
        }
        if let Some(id) = &self.in_reply_to {
            builder = builder.in_reply_to(id.as_str());
        }
        if !self.references.is_empty() {
            builder = builder.references(MessageId::new_list(
                self.references.iter().map(String::as_str),
            ));
        }
        if self.automatic {
            builder = builder.header("Auto-Submitted", Raw::new("auto-generated"));
        }
        builder = builder
            .text_body(self.text.as_str())
            .html_body(self.html.as_str());
        for file in &self.files {
            builder = builder.attachment(
                file.content_type.as_str(),
                file.filename.as_str(),
                file.bytes.as_slice(),
            );
        }
        builder.write_to_vec().unwrap_or_default()
    }
}

/// The address of a recipient identity (`ann@example.org` or
/// `Ann <ann@example.org>`); a value with control characters stays as it is
/// and fails validation.
fn recipient(value: &str) -> String {
    if value.chars().any(char::is_control) {
        value.to_owned()
    } else {
        address::bare(value).to_owned()
    }
}

/// A header value on one line: controls (CR and LF above all) become spaces.
fn single_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn valid_reference(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 250
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','))
}

/// The host's message id as the left part of a Message-ID: letters, digits
/// and `-._` only, never empty.
fn id_local_part(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('-');
    if cleaned.is_empty() {
        "message".to_owned()
    } else {
        cleaned.chars().take(128).collect()
    }
}

#[cfg(test)]
mod tests {
    use switchboard_sdk::Identity;

    use super::*;
    use crate::inbound;

    fn reply() -> OutboundMessage {
        let mut message = OutboundMessage::text(
            "0b9c6a1e-8f3e-4e43-9d0b-4f7e6c1d2a33",
            "c1",
            Identity::new("email", "Ann@Example.org"),
            "Hello Ann,\n.leading dot line\nThanks!",
        );
        message.author = Some("Bob \"Agent\"\r\nBcc: evil@x.test".into());
        message.metadata.subject = Some("Re: Order 42".into());
        message.metadata.thread_id = Some("abc123def".into());
        message.metadata.in_reply_to = Some("<orig@example.org>".into());
        message.metadata.references = vec!["root@example.org".into(), "orig@example.org".into()];
        message
    }

    fn mailbox() -> Mailbox<'static> {
        Mailbox {
            address: "support@example.com",
            display_name: Some("Example Support"),
        }
    }

    #[test]
    fn a_reply_carries_threading_headers() {
        let copies = Copies {
            cc: vec![Identity::new("email", "boss@example.org")],
            bcc: vec![
                Identity::new("email", "audit@example.com"),
                Identity::new("email", "ann@example.org"),
            ],
        };
        let mail = Mail::compose(&reply(), &copies, mailbox(), 1_700_000_000).unwrap();
        assert_eq!(
            mail.message_id,
            "0b9c6a1e-8f3e-4e43-9d0b-4f7e6c1d2a33@example.com"
        );
        assert_eq!(mail.reply_to, "support+abc123def@example.com");
        assert_eq!(
            mail.recipients(),
            vec!["Ann@Example.org", "boss@example.org", "audit@example.com"]
        );
        assert!(!mail.automatic);

        let mime = mail.to_mime();
        let text = String::from_utf8_lossy(&mime);
        assert!(!text.contains("audit@example.com"), "bcc leaked: {text}");
        assert!(!text.contains("\nBcc:"), "header injected: {text}");
        assert!(!text.contains("Auto-Submitted"));

        let parsed = inbound::parser().parse(&mime).unwrap();
        assert_eq!(
            parsed.message_id(),
            Some("0b9c6a1e-8f3e-4e43-9d0b-4f7e6c1d2a33@example.com")
        );
        assert_eq!(parsed.subject(), Some("Re: Order 42"));
        assert_eq!(
            parsed.reply_to().unwrap().first().unwrap().address(),
            Some("support+abc123def@example.com")
        );
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("support@example.com"));
        assert!(from.name().unwrap().starts_with("Bob"));
        assert_eq!(
            parsed.cc().unwrap().first().unwrap().address(),
            Some("boss@example.org")
        );
        let in_reply_to = parsed.in_reply_to().as_text().map(str::to_owned);
        assert_eq!(in_reply_to.as_deref(), Some("orig@example.org"));
        assert_eq!(
            parsed
                .references()
                .as_text_list()
                .map(|l| l.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            Some(vec![
                "root@example.org".to_owned(),
                "orig@example.org".to_owned()
            ])
        );
        assert_eq!(parsed.date().unwrap().to_timestamp(), 1_700_000_000);
        assert!(parsed.body_text(0).unwrap().contains(".leading dot line"));
        assert!(parsed.body_html(0).unwrap().contains("<p>Hello Ann,"));
    }

    #[test]
    fn automatic_messages_and_defaults() {
        let mut message = OutboundMessage::text(
            "m/1",
            "c1",
            Identity::new("email", "ann@example.org"),
            "How did we do?",
        );
        message.metadata.thread_id = Some("bad tag!".into());
        message.metadata.in_reply_to = Some("not an id".into());
        let mail = Mail::compose(&message, &Copies::default(), mailbox(), 0).unwrap();
        assert!(mail.automatic);
        assert_eq!(mail.subject, NO_SUBJECT);
        assert_eq!(mail.reply_to, "support@example.com");
        assert_eq!(mail.in_reply_to, None);
        assert_eq!(mail.message_id, "m-1@example.com");
        assert_eq!(
            mail.from_header(),
            "\"Example Support\" <support@example.com>"
        );
        let mime = String::from_utf8(mail.to_mime()).unwrap();
        assert!(mime.contains("Auto-Submitted: auto-generated\r\n"));
    }

    #[test]
    fn attachments_are_attached() {
        let mut mail = Mail::compose(&reply(), &Copies::default(), mailbox(), 0).unwrap();
        mail.files.push(File {
            filename: "invoice.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: b"%PDF-1.4 fake".to_vec(),
        });
        let mime = mail.to_mime();
        let parsed = inbound::parser().parse(&mime).unwrap();
        let attachment = parsed.attachments().next().unwrap();
        use mail_parser::MimeHeaders;
        assert_eq!(attachment.attachment_name(), Some("invoice.pdf"));
        assert_eq!(attachment.contents(), b"%PDF-1.4 fake");
    }

    #[test]
    fn the_customer_and_the_mailbox_are_never_copied() {
        let copies = Copies {
            cc: vec![
                Identity::new("email", "ann@example.org"),
                Identity::new("email", "Support@Example.com"),
                Identity::new("email", "ben@example.org"),
            ],
            bcc: vec![Identity::new("email", "support@example.com")],
        };
        let mail = Mail::compose(&reply(), &copies, mailbox(), 0).unwrap();
        assert_eq!(mail.cc, vec!["ben@example.org".to_owned()]);
        assert!(mail.bcc.is_empty());
    }

    #[test]
    fn bad_recipients_are_permanent() {
        let mut message = reply();
        message.to.value = "not-an-address".into();
        assert!(matches!(
            Mail::compose(&message, &Copies::default(), mailbox(), 0),
            Err(PluginError::Permanent(_))
        ));
        let copies = Copies {
            cc: vec![Identity::new("email", "x@y.test\r\nRCPT TO:<z@evil.test>")],
            bcc: vec![],
        };
        assert!(matches!(
            Mail::compose(&reply(), &copies, mailbox(), 0),
            Err(PluginError::Permanent(_))
        ));
    }
}
