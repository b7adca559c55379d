//! Mail that arrives as fields rather than MIME (Mailgun's parsed post,
//! Postmark's JSON), rebuilt as one MIME message so it is read exactly like
//! polled mail: the same ids, sender rules, threading tags, classification
//! and bounce handling.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;

/// A file of a field-based message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldAttachment {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub content_id: Option<String>,
    pub data: Vec<u8>,
}

/// A message as a provider posts it in fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMail {
    /// Header fields, in order, values as the provider gives them (UTF-8 is
    /// fine: the parser reads RFC 6532 headers). `Content-*` and
    /// `MIME-Version` are ignored: the rebuilt body has its own.
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<FieldAttachment>,
}

impl FieldMail {
    /// Sets `name` unless a header of that name is already there.
    pub fn default_header(&mut self, name: &str, value: impl Into<String>) {
        if !self.has(name) {
            self.headers.push((name.to_owned(), value.into()));
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && !v.trim().is_empty())
    }

    /// The message as MIME bytes.
    pub fn to_mime(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            let valid_name = !name.is_empty()
                && name.len() <= 76
                && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !valid_name || lower.starts_with("content-") || lower == "mime-version" {
                continue;
            }
            let value: String = value
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.trim().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");

        let mut builder = MessageBuilder::new();
        if let Some(text) = self.text.as_deref().filter(|t| !t.is_empty()) {
            builder = builder.text_body(text);
        }
        if let Some(html) = self.html.as_deref().filter(|h| !h.is_empty()) {
            builder = builder.html_body(html);
        }
        for file in &self.attachments {
            let mut content_type = ContentType::new(
                file.content_type
                    .clone()
                    .filter(|ct| ct.contains('/') && !ct.contains(['\r', '\n']))
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
            );
            if let Some(name) = &file.filename {
                content_type = content_type.attribute("name", name.clone());
            }
            let mut part = MimePart::new(content_type, file.data.as_slice());
            part = match (&file.content_id, &file.filename) {
                (Some(cid), _) => part.inline().cid(cid.clone()),
                (None, Some(name)) => part.attachment(name.clone()),
                (None, None) => part.attachment("attachment"),
            };
            builder.attachments.get_or_insert_with(Vec::new).push(part);
        }
        let _ = builder.write_body(&mut out);
        out
    }
}
