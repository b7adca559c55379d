//! The e-mail connector's `handle-mail-webhook` for a Mailgun `body-mime`
//! posting, natively: the baseline of its parse cost.
//!
//! The same steps and the same `mail-parser` calls as plugins/email
//! (`lib.rs` `handle_mail_webhook`, `settings.rs`, `mailgun.rs` `handle`,
//! `formdata.rs`, `inbound/mod.rs` `parse`, `inbound/classify.rs`,
//! `address.rs`): the config read, the `multipart/form-data` fields, the
//! signature (HMAC-SHA256 of timestamp and token, 15 minutes of age at
//! most), then the MIME read into the message event and its envelope — built
//! as the host's own types, so the benchmark checks that both sides return
//! the same batch for every message before it counts either.
//!
//! The connector's plugin crate builds only as a component (`cdylib`), so it
//! cannot be linked here; this is a transcription, kept honest by that check.
//! Bounces (`inbound/dsn.rs`) are not transcribed: the corpus has none, and
//! a bounce would show up as a disagreement.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use mail_parser::decoders::html::html_to_text;
use mail_parser::{
    HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use sha2::{Digest, Sha256};
use switchboard_plugin_host::bindings::{Identity, InboundMessage, MessageMetadata};
use switchboard_plugin_host::{
    Attachment, Automatic, ChannelEvent, Envelope, HttpRequest, HttpResponse, MailBatch,
};

const EMAIL: &str = "email";
const INLINE_PART_MAX: usize = 256 * 1024;
const MESSAGE_INLINE_MAX: usize = 384 * 1024;
const BODY_TEXT_MAX: usize = 128 * 1024;
const HTML_MAX: usize = 256 * 1024;
const UNREADABLE_TEXT_MAX: usize = 16 * 1024;
const UNKNOWN_SENDER: &str = "unknown-sender@invalid";
const MAX_AGE_SECS: u64 = 15 * 60;
const MAX_FIELDS: usize = 1000;
const MAX_FIELD_HEADER: usize = 16 * 1024;

/// One Mailgun posting, verified and read, as the connector's
/// `handle-mail-webhook` returns it.
pub fn handle_mail_webhook(
    config: &HashMap<String, String>,
    request: &HttpRequest,
    now_secs: u64,
) -> Result<MailBatch, String> {
    // settings.rs: what the connector reads on every call.
    let optional = |key: &str| {
        config
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let secret = |key: &str| config.get(key).filter(|v| !v.is_empty()).cloned();
    let address = optional("address").ok_or("`address` is required")?;
    if !is_valid(&address) {
        return Err(format!("`address` is `{address}`, not an e-mail address"));
    }
    let _display_name = optional("display_name");
    let _max_message_bytes: u64 = match optional("max_message_bytes") {
        None => 26_214_400,
        Some(v) => v
            .parse()
            .map_err(|_| "`max_message_bytes` is not a number")?,
    };
    if !optional("provider").is_some_and(|p| p.eq_ignore_ascii_case("mailgun")) {
        return Err("the native baseline reads Mailgun postings only".into());
    }
    let signing_key = secret("mailgun_signing_key").ok_or("`mailgun_signing_key` is required")?;
    let _api_key = secret("mailgun_api_key").ok_or("`mailgun_api_key` is required")?;
    let _domain =
        optional("mailgun_domain").or_else(|| address.rsplit_once('@').map(|(_, d)| d.to_owned()));
    let _api_base = optional("mailgun_api_base");

    if hook_kind(url_path(&request.url)) != Some("mailgun") {
        return Err("no webhook of this mailbox's provider at this path".into());
    }
    // mailgun.rs `handle`.
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err("Mailgun routes post; this was not a POST".into());
    }
    let content_type = request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let boundary = boundary(content_type).ok_or("only multipart postings are benchmarked")?;
    let fields =
        parse_fields(&request.body, &boundary).map_err(|e| format!("Mailgun posting: {e}"))?;
    let text = |name: &str| {
        fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| String::from_utf8_lossy(&f.data).into_owned())
            .filter(|t| !t.trim().is_empty())
    };
    verify(
        &signing_key,
        &text("timestamp").unwrap_or_default(),
        &text("token").unwrap_or_default(),
        &text("signature").unwrap_or_default(),
        now_secs,
    )?;
    let raw = fields
        .iter()
        .find(|f| f.name == "body-mime")
        .filter(|f| !f.data.is_empty())
        .map(|f| f.data.clone())
        .ok_or("only body-mime postings are benchmarked")?;
    let (message, envelope, bounce) = parse(&raw, &address);
    if bounce {
        return Err("bounces are not part of the benchmark corpus".into());
    }
    Ok(MailBatch {
        events: vec![ChannelEvent::Message(message)],
        envelopes: vec![envelope],
        cursor: None,
        more: false,
        response: Some(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: b"ok".to_vec(),
        }),
    })
}

// ---------------------------------------------------------------------------
// lib.rs, the SDK's webhook helpers, mailgun.rs, formdata.rs
// ---------------------------------------------------------------------------

fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_and_query = after_scheme.find('/').map_or("", |at| &after_scheme[at..]);
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    if path.is_empty() { "/" } else { path }
}

fn hook_kind(path: &str) -> Option<&str> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments.by_ref().find(|s| *s == "hooks")?;
    segments.next()?;
    let kind = segments.next()?;
    Some(kind.split('.').next().unwrap_or(kind))
}

fn verify(
    signing_key: &str,
    timestamp: &str,
    token: &str,
    signature: &str,
    now_secs: u64,
) -> Result<(), String> {
    let signed_at: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| "Mailgun timestamp missing or malformed")?;
    if now_secs.abs_diff(signed_at) > MAX_AGE_SECS {
        return Err("Mailgun posting too old".into());
    }
    let signature = decode_hex(signature.trim()).ok_or("Mailgun signature is not hex")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes())
        .map_err(|_| "`mailgun_signing_key` is unusable")?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| "Mailgun signature does not match".into())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

struct Field {
    name: String,
    #[allow(dead_code)]
    filename: Option<String>,
    #[allow(dead_code)]
    content_type: Option<String>,
    data: Vec<u8>,
}

fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    param(params, "boundary").filter(|b| !b.is_empty() && b.len() <= 200)
}

fn param(params: &str, name: &str) -> Option<String> {
    let mut rest = params;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let last = haystack.len() - needle.len();
    let mut at = from;
    while at <= last {
        let offset = haystack[at..=last].iter().position(|b| *b == needle[0])?;
        at += offset;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        at += 1;
    }
    None
}

fn parse_fields(body: &[u8], boundary: &str) -> Result<Vec<Field>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let next_delimiter = format!("\r\n--{boundary}");
    let next_delimiter = next_delimiter.as_bytes();
    let mut at = find(body, delimiter, 0).ok_or("no multipart delimiter")? + delimiter.len();
    let mut fields = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(fields);
        }
        let line_end = find(body, b"\n", at).ok_or("delimiter line never ends")?;
        at = line_end + 1;
        let header_end = find(body, b"\r\n\r\n", at)
            .map(|end| (end, end + 4))
            .or_else(|| find(body, b"\n\n", at).map(|end| (end, end + 2)))
            .ok_or("field headers never end")?;
        if header_end.0 - at > MAX_FIELD_HEADER {
            return Err("field headers too long".into());
        }
        let headers = String::from_utf8_lossy(&body[at..header_end.0]).into_owned();
        let data_start = header_end.1;
        let data_end = find(body, next_delimiter, data_start)
            .ok_or("a field without its closing delimiter")?;
        let mut field = Field {
            name: String::new(),
            filename: None,
            content_type: None,
            data: body[data_start..data_end].to_vec(),
        };
        for line in headers.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("Content-Disposition") {
                let params = value.split_once(';').map_or("", |(_, p)| p);
                field.name = param(params, "name").unwrap_or_default();
                field.filename = param(params, "filename").filter(|f| !f.is_empty());
            } else if name.trim().eq_ignore_ascii_case("Content-Type") {
                field.content_type = Some(value.trim().to_owned());
            }
        }
        fields.push(field);
        if fields.len() > MAX_FIELDS {
            return Err("too many fields".into());
        }
        at = data_end + next_delimiter.len();
        if at > body.len() {
            return Err("truncated body".into());
        }
    }
}

// ---------------------------------------------------------------------------
// address.rs
// ---------------------------------------------------------------------------

fn is_valid(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !address.chars().any(|c| {
            c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

fn plus_tag(candidate: &str, ours: &str) -> Option<String> {
    let candidate = bare(candidate);
    let (local, domain) = candidate.rsplit_once('@')?;
    let (our_local, our_domain) = ours.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(our_domain) {
        return None;
    }
    let (base, tag) = local.split_once('+')?;
    (base.eq_ignore_ascii_case(our_local) && is_valid_tag(tag)).then(|| tag.to_owned())
}

fn bare(value: &str) -> &str {
    let value = value.trim();
    match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => value[open + 1..close].trim(),
        _ => value,
    }
}

fn strip_id(id: &str) -> &str {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    id.strip_suffix('>').unwrap_or(id).trim()
}

fn is_mailer_daemon(address: &str) -> bool {
    let local = bare(address)
        .rsplit_once('@')
        .map_or(bare(address), |(local, _)| local);
    local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
}

// ---------------------------------------------------------------------------
// inbound/classify.rs
// ---------------------------------------------------------------------------

fn classify(headers: &[(String, String)], from: Option<&str>) -> Option<Automatic> {
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let has = |name: &'static str| values(name).next().is_some();
    let token = |value: &str| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"')
            .to_ascii_lowercase()
    };
    let is_report = values("Content-Type").any(|ct| {
        let ct = ct.to_ascii_lowercase();
        (ct.starts_with("multipart/report")
            && ct.replace('"', "").contains("report-type=delivery-status"))
            || ct.starts_with("message/delivery-status")
    });
    if is_report || has("X-Failed-Recipients") || from.is_some_and(is_mailer_daemon) {
        return Some(Automatic::Bounce);
    }
    let auto_submitted: Vec<String> = values("Auto-Submitted").map(token).collect();
    let precedence: Vec<String> = values("Precedence").map(token).collect();
    if auto_submitted.iter().any(|v| v == "auto-replied")
        || values("X-Autoreply").any(|v| !v.eq_ignore_ascii_case("no"))
        || has("X-Autorespond")
        || precedence
            .iter()
            .any(|v| v == "auto_reply" || v == "auto-reply")
    {
        return Some(Automatic::AutoReply);
    }
    if auto_submitted.iter().any(|v| !v.is_empty() && v != "no")
        || precedence
            .iter()
            .any(|v| matches!(v.as_str(), "bulk" | "list" | "junk"))
        || has("List-Id")
        || has("List-Unsubscribe")
    {
        return Some(Automatic::Bulk);
    }
    None
}

// ---------------------------------------------------------------------------
// inbound/mod.rs, with `LargeParts::Drop` (webhooks cannot fetch parts later)
// ---------------------------------------------------------------------------

fn parser() -> MessageParser {
    MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject)
        .default_header_raw()
}

fn identity(value: impl Into<String>) -> Identity {
    Identity {
        kind: EMAIL.into(),
        value: value.into(),
    }
}

/// The message event, its envelope, and whether it is a bounce.
fn parse(raw: &[u8], ours: &str) -> (InboundMessage, Envelope, bool) {
    let mut problems: Vec<String> = Vec::new();
    let Some(message) = parser().parse(raw) else {
        return unreadable(raw, ours, problems);
    };
    let provider_id = message
        .message_id()
        .map(str::trim)
        .filter(|id| valid_id(id))
        .map_or_else(|| hashed_id(raw), str::to_owned);

    let from = message.from().and_then(|a| a.first());
    let reply_to = message
        .reply_to()
        .and_then(|a| a.iter().find(|addr| addr.address().is_some_and(is_valid)));
    let from_address = from.and_then(|a| a.address()).filter(|a| is_valid(a));
    let (sender_address, sender_name) = match (reply_to, from_address) {
        (Some(reply_to), _) => {
            let reply_address = reply_to.address().unwrap_or_default();
            let name = reply_to.name().or_else(|| {
                from.filter(|f| {
                    f.address()
                        .is_some_and(|a| a.eq_ignore_ascii_case(reply_address))
                })
                .and_then(|f| f.name())
            });
            (reply_address.to_owned(), name)
        }
        (None, Some(from_address)) => (from_address.to_owned(), from.and_then(|f| f.name())),
        (None, None) => {
            problems.push("the message names no sender address".into());
            (UNKNOWN_SENDER.to_owned(), None)
        }
    };

    let headers: Vec<(String, String)> = message
        .headers_raw()
        .map(|(name, value)| (name.to_owned(), unfold(value)))
        .collect();
    let automatic = classify(&headers, from_address);
    let bounce = automatic == Some(Automatic::Bounce);

    let (body, html_body) = bodies(&message, &mut problems);
    let attachments = attachments(&message, &mut problems);
    if message.parts.iter().any(|part| part.is_encoding_problem) {
        problems.push("some text is in an unknown character set and may show wrongly".into());
    }
    let to = identities(message.to());
    let cc = identities(message.cc());
    let thread_id = thread_tag(&message, &headers, ours);
    let metadata = MessageMetadata {
        subject: message
            .subject()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        thread_id,
        in_reply_to: ids(message.in_reply_to()).into_iter().next(),
        references: ids(message.references()),
        interactive_reply: None,
        reaction: None,
        location: None,
        contacts: Vec::new(),
        shared_identities: Vec::new(),
    };
    let sent_at_ms = message
        .date()
        .map(|date| date.to_timestamp())
        .filter(|secs| *secs > 0)
        .and_then(|secs| u64::try_from(secs).ok())
        .map(|secs| secs.saturating_mul(1000));
    let inbound = InboundMessage {
        provider_id: provider_id.clone(),
        sender: identity(sender_address),
        recipient: Some(identity(ours)),
        sender_name: sender_name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
        body,
        html_body,
        attachments,
        sent_at_ms,
        metadata,
    };
    let envelope = Envelope {
        provider_id,
        to,
        cc,
        automatic,
        problem: join_problems(problems),
    };
    (inbound, envelope, bounce)
}

fn unreadable(
    raw: &[u8],
    ours: &str,
    mut problems: Vec<String>,
) -> (InboundMessage, Envelope, bool) {
    problems.push("the message has no readable headers".into());
    let provider_id = hashed_id(raw);
    let mut body = String::from_utf8_lossy(&raw[..raw.len().min(UNREADABLE_TEXT_MAX)]).into_owned();
    if raw.len() > UNREADABLE_TEXT_MAX {
        body.push('…');
    }
    let message = InboundMessage {
        provider_id: provider_id.clone(),
        sender: identity(UNKNOWN_SENDER),
        recipient: Some(identity(ours)),
        sender_name: None,
        body,
        html_body: None,
        attachments: Vec::new(),
        sent_at_ms: None,
        metadata: MessageMetadata {
            subject: None,
            thread_id: None,
            in_reply_to: None,
            references: Vec::new(),
            interactive_reply: None,
            reaction: None,
            location: None,
            contacts: Vec::new(),
            shared_identities: Vec::new(),
        },
    };
    let envelope = Envelope {
        provider_id,
        to: Vec::new(),
        cc: Vec::new(),
        automatic: None,
        problem: join_problems(problems),
    };
    (message, envelope, false)
}

fn join_problems(problems: Vec<String>) -> Option<String> {
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 998 && !id.chars().any(char::is_whitespace)
}

fn hashed_id(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}@switchboard")
}

fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(|piece| piece.trim_matches(|c| c == ' ' || c == '\t'))
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    };
    list.iter()
        .map(|id| strip_id(id).to_owned())
        .filter(|id| valid_id(id))
        .collect()
}

fn identities(value: Option<&mail_parser::Address<'_>>) -> Vec<Identity> {
    value
        .map(|addresses| {
            addresses
                .iter()
                .filter_map(|addr| addr.address())
                .filter(|a| is_valid(a))
                .map(identity)
                .collect()
        })
        .unwrap_or_default()
}

fn thread_tag(message: &Message<'_>, headers: &[(String, String)], ours: &str) -> Option<String> {
    let listed = [message.to(), message.cc()]
        .into_iter()
        .flatten()
        .flat_map(|addresses| addresses.iter())
        .filter_map(|addr| addr.address())
        .find_map(|a| plus_tag(a, ours));
    listed.or_else(|| {
        headers
            .iter()
            .filter(|(name, _)| {
                [
                    "Delivered-To",
                    "X-Original-To",
                    "Envelope-To",
                    "X-Envelope-To",
                ]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            })
            .flat_map(|(_, value)| value.split(','))
            .find_map(|a| plus_tag(a, ours))
    })
}

fn bodies(message: &Message<'_>, problems: &mut Vec<String>) -> (String, Option<String>) {
    let html: Option<String> = message
        .html_body
        .iter()
        .filter_map(|id| message.parts.get(*id as usize))
        .find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        });
    let mut texts: Vec<String> = Vec::new();
    for part in message
        .text_body
        .iter()
        .filter_map(|id| message.parts.get(*id as usize))
    {
        match &part.body {
            PartType::Text(text) => texts.push(text.to_string()),
            PartType::Html(html) => texts.push(html_to_text(html)),
            _ => {}
        }
    }
    let mut text = texts.join("\n");
    if text.trim().is_empty()
        && let Some(html) = &html
    {
        text = html_to_text(html);
    }
    let text_len = text.len();
    if text_len > BODY_TEXT_MAX {
        let mut cut = BODY_TEXT_MAX.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
        problems.push(format!(
            "the text is {}, cut to the first {}",
            human_size(text_len as u64),
            human_size(BODY_TEXT_MAX as u64)
        ));
    }
    let html = match html {
        Some(html) if html.len() > HTML_MAX => {
            problems.push(format!(
                "the HTML version ({}) is too large to keep; the text version is shown",
                human_size(html.len() as u64)
            ));
            None
        }
        other => other,
    };
    (text, html)
}

fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{} MB", (bytes + MIB / 2) / MIB)
    } else if bytes >= 1024 {
        format!("{} KB", (bytes + 512) / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

fn part_paths(message: &Message<'_>) -> Vec<Option<String>> {
    let mut paths = vec![None; message.parts.len()];
    match message.parts.first().map(|root| &root.body) {
        Some(PartType::Multipart(children)) => {
            let mut stack: Vec<(u32, String)> = children
                .iter()
                .enumerate()
                .rev()
                .map(|(i, id)| (*id, (i + 1).to_string()))
                .collect();
            let mut visited = 0usize;
            while let Some((id, path)) = stack.pop() {
                visited += 1;
                if visited > message.parts.len() {
                    break;
                }
                let Some(part) = message.parts.get(id as usize) else {
                    continue;
                };
                if let PartType::Multipart(children) = &part.body {
                    for (i, child) in children.iter().enumerate().rev() {
                        stack.push((*child, format!("{path}.{}", i + 1)));
                    }
                }
                if let Some(slot) = paths.get_mut(id as usize) {
                    *slot = Some(path);
                }
            }
        }
        Some(_) => paths[0] = Some("1".to_owned()),
        None => {}
    }
    paths
}

fn attachments(message: &Message<'_>, problems: &mut Vec<String>) -> Vec<Attachment> {
    let paths = part_paths(message);
    let mut inline_total = 0usize;
    let mut list = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    for id in &message.attachments {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let size = part.len();
        let mut attachment = Attachment {
            url: String::new(),
            content_type: content_type(part),
            filename: filename(part),
            size: Some(size as u64),
            content: None,
            content_id: part
                .content_id()
                .map(|cid| strip_id(cid).to_owned())
                .filter(|cid| !cid.is_empty()),
        };
        let path = paths.get(*id as usize).cloned().flatten();
        if size <= INLINE_PART_MAX && inline_total + size <= MESSAGE_INLINE_MAX {
            inline_total += size;
            attachment.url = format!("part:{}", path.as_deref().unwrap_or("0"));
            attachment.content = Some(part.contents().to_vec());
            list.push(attachment);
            continue;
        }
        dropped.push(format!(
            "{} ({})",
            attachment.filename.as_deref().unwrap_or("unnamed"),
            human_size(size as u64)
        ));
    }
    if !dropped.is_empty() {
        problems.push(format!(
            "attachments too large to copy here: {}",
            dropped.join(", ")
        ));
    }
    list
}

fn filename(part: &MessagePart<'_>) -> Option<String> {
    part.attachment_name()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| {
            part.message().map(|nested| {
                nested
                    .subject()
                    .map(|s| format!("{}.eml", s.trim()))
                    .unwrap_or_else(|| "message.eml".to_owned())
            })
        })
}

fn content_type(part: &MessagePart<'_>) -> Option<String> {
    let mime = part.content_type().map(|ct| match ct.subtype() {
        Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
        None => ct.ctype().to_owned(),
    });
    match &part.body {
        PartType::Text(_) | PartType::Html(_) => Some(format!(
            "{}; charset=utf-8",
            mime.unwrap_or_else(|| "text/plain".to_owned())
        )),
        PartType::Message(_) => Some(mime.unwrap_or_else(|| "message/rfc822".to_owned())),
        _ => mime.map(|m| m.to_ascii_lowercase()),
    }
}

/// Whether two batches are the same: every field, file contents compared as bytes.
pub fn same(a: &MailBatch, b: &MailBatch) -> Result<(), String> {
    fn split(batch: &MailBatch) -> (String, Vec<Option<Vec<u8>>>) {
        let mut batch = batch.clone();
        let mut contents = Vec::new();
        for event in &mut batch.events {
            if let ChannelEvent::Message(m) = event {
                for a in &mut m.attachments {
                    contents.push(a.content.take());
                }
            }
        }
        (format!("{batch:?}"), contents)
    }
    let (a_text, a_files) = split(a);
    let (b_text, b_files) = split(b);
    if a_text != b_text {
        let at = a_text
            .bytes()
            .zip(b_text.bytes())
            .position(|(x, y)| x != y)
            .unwrap_or(a_text.len().min(b_text.len()));
        let from = at.saturating_sub(120);
        let window = |s: &str| {
            s.get(from..(at + 120).min(s.len()))
                .unwrap_or_default()
                .to_owned()
        };
        return Err(format!(
            "first difference at byte {at}:\n  sandbox: …{}…\n  native:  …{}…",
            window(&a_text),
            window(&b_text)
        ));
    }
    if a_files != b_files {
        return Err("the attachments' bytes differ".into());
    }
    Ok(())
}
