//! E-mail on the desk: what an agent sees of an e-mail message, worked out when the
//! timeline is read. Ingest keeps the message as it came (the text body, and the raw
//! HTML in `data.metadata.html_body`); nothing here writes.
//!
//! For every `email` message of a conversation's timeline the desk gets an `email`
//! object ([`EmailView`]): subject, from, to and cc, the sanitized HTML split into the
//! new part and the quoted history (`html`, `quoted_html`), the same split of the
//! text body (`text`, `quoted_text`), how many remote images are held back, whether
//! the mail was sent by a machine (`automatic`) and why it was only partly read
//! (`problem`). Sanitizing is in `sanitize` (ammonia plus the image rewrite), the
//! split in `quotes`.
//!
//! The desk shows the HTML in a frame: `frame_url` is a signed, expiring address of
//! this host (`/email/{event_id}?expires=…&sig=…`, HMAC-SHA256 under a key derived
//! from the store key) that serves [`frame_document`] under [`frame_policy`] — a
//! Content-Security-Policy of its own, with no script at all, inline styles allowed
//! (e-mail needs them; they are filtered), and images only from `data:` and the
//! desk's `blob:` URLs, plus `http(s)` once the agent asked for remote images
//! (`&images=1`). The address carries no token, so a link in the mail that leaks it
//! leaks one message for a few hours, nothing else.
//!
//! Never: trusts the HTML (everything shown passes ammonia, and the frame's policy
//! would stop a script that slipped through), fetches anything from the internet,
//! or changes what is stored.

mod markup;
mod quotes;
mod sanitize;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};
use switchboard_core::{Direction, EventKind};
use switchboard_store::{Store, TimelineEvent};

use crate::clock::now_ms;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::signing;

pub use sanitize::InlineImage;

/// What the desk shows of one e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailView {
    /// The Subject header.
    pub subject: Option<String>,
    /// Who sent it: `Name <address>` or the address.
    pub from: Option<String>,
    /// Its recipients, each `Name <address>` or the address.
    pub to: Vec<String>,
    /// Its copy recipients.
    pub cc: Vec<String>,
    /// The sanitized HTML of what the sender wrote now; `None` for a text-only mail
    /// (or HTML that shows nothing once sanitized).
    pub html: Option<String>,
    /// The sanitized quoted history (and signature), if the HTML has one.
    pub quoted_html: Option<String>,
    /// The text body's new part.
    pub text: String,
    /// The text body's quoted history (and signature), if any.
    pub quoted_text: Option<String>,
    /// Remote (`http(s)`) images in the HTML, held back as `data-remote-src`.
    pub remote_images: u32,
    /// The message's files that the HTML shows inline (`data-cid`), so the desk
    /// need not list them again among the files.
    pub inline_attachments: Vec<String>,
    /// `auto_reply`, `bulk` or `bounce` when a machine sent it.
    pub automatic: Option<String>,
    /// Why the connector could only partly read the message.
    pub problem: Option<String>,
    /// Where the desk loads the HTML from (see the module doc); set by
    /// [`EmailViews`] when there is HTML.
    pub frame_url: Option<String>,
}

/// An e-mail message as stored, borrowed from its timeline event.
#[derive(Debug, Clone, Copy)]
pub struct EmailSource<'a> {
    /// The event's `data.metadata` (subject, addresses, `html_body`, …).
    pub metadata: &'a Value,
    /// The text body.
    pub body: &'a str,
    /// The customer's address, for an inbound mail without a `from` in its metadata.
    pub sender: Option<&'a str>,
    /// The message's inline files.
    pub inline: &'a [InlineImage],
}

/// Works out the view of one e-mail. `load_remote` keeps remote images' sources
/// (the agent asked for them); they are counted either way.
pub fn render(source: &EmailSource<'_>, load_remote: bool) -> EmailView {
    let m = source.metadata;
    let short = |key: &str, max: usize| {
        m.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(max).collect::<String>())
    };
    let (text, quoted_text) = quotes::split_text(source.body);
    let (html, quoted_html, remote_images, inline_attachments) =
        match m.get("html_body").and_then(Value::as_str) {
            Some(raw) if !raw.trim().is_empty() => {
                let cleaned = sanitize::sanitize(raw, source.inline, load_remote);
                if sanitize::shows_something(&cleaned.html) {
                    let (visible, quoted) = quotes::split_html(&cleaned.html);
                    (Some(visible), quoted, cleaned.remote_images, cleaned.inline)
                } else {
                    (None, None, 0, Vec::new())
                }
            }
            _ => (None, None, 0, Vec::new()),
        };
    EmailView {
        subject: short("subject", 998),
        from: m
            .get("from")
            .and_then(address)
            .or_else(|| source.sender.map(str::to_string)),
        to: addresses(m.get("to")),
        cc: addresses(m.get("cc")),
        html,
        quoted_html,
        text,
        quoted_text,
        remote_images,
        inline_attachments,
        automatic: short("automatic", 40),
        problem: short("problem", 500),
        frame_url: None,
    }
}

/// One address as connectors write it: `"a@b"`, `"Name <a@b>"` or
/// `{name, address}` (or `email`).
fn address(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Object(o) => {
            let addr = o
                .get("address")
                .or_else(|| o.get("email"))
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or_default();
            match o.get("name").and_then(Value::as_str).map(str::trim) {
                Some(name) if !name.is_empty() && !addr.is_empty() => format!("{name} <{addr}>"),
                Some(name) if !name.is_empty() => name.to_string(),
                _ => addr.to_string(),
            }
        }
        _ => String::new(),
    };
    (!text.is_empty()).then(|| text.chars().take(320).collect())
}

fn addresses(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(list)) => list.iter().take(100).filter_map(address).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(other) => address(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Whether a timeline event is an e-mail message.
pub fn is_email(event: &TimelineEvent) -> bool {
    event.kind == EventKind::Message && event.channel.as_deref() == Some("email")
}

/// The Content-Security-Policy of the e-mail frame: nothing runs, nothing is sent,
/// styles are inline, pictures come from `data:` and the desk's object URLs — and
/// from the internet only when `remote_images` (the agent clicked "Load images").
/// Only the desk may frame it; links open outside the sandbox, in a new tab.
pub fn frame_policy(remote_images: bool) -> &'static str {
    if remote_images {
        "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; \
         img-src data: blob: https: http:; font-src 'none'; form-action 'none'; \
         base-uri 'none'; frame-ancestors 'self'; \
         sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"
    } else {
        "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; \
         img-src data: blob:; font-src 'none'; form-action 'none'; \
         base-uri 'none'; frame-ancestors 'self'; \
         sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"
    }
}

/// The frame's own look: the desk's type, pictures that fit, quotes with a rule,
/// and a visible placeholder where a remote image waits.
const FRAME_STYLE: &str = "html{color-scheme:light}\
body{margin:0;padding:2px 4px 4px;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
color:#1d2330;background:transparent;overflow-wrap:anywhere;overflow-x:auto;overflow-y:hidden}\
img{max-width:100%;height:auto}\
img[data-remote-src]:not([src]),img[data-cid]:not([src]){min-width:24px;min-height:18px;background:#eef1f6;outline:1px dashed #b8c2d6}\
blockquote{margin:.4em 0 .4em .3em;padding-left:.8em;border-left:3px solid #c9d1e0;color:#4a5468}\
pre{white-space:pre-wrap}table{border-collapse:collapse}a{color:#1f5fd6}\
#sb-quoted{margin-top:.6em;padding-top:.4em;border-top:1px dashed #c9d1e0;color:#4a5468}\
.sb-text{white-space:pre-wrap}";

/// The HTML document the frame shows: the new part, and the quoted history in
/// `#sb-quoted`, hidden until the desk shows it. A text-only mail is shown as text.
pub fn frame_document(view: &EmailView) -> String {
    let (visible, quoted) = match &view.html {
        Some(html) => (html.clone(), view.quoted_html.clone()),
        None => (
            format!(
                "<div class=\"sb-text\">{}</div>",
                markup::escape(&view.text)
            ),
            view.quoted_text
                .as_deref()
                .map(|q| format!("<div class=\"sb-text\">{}</div>", markup::escape(q))),
        ),
    };
    let mut doc =
        String::with_capacity(visible.len() + quoted.as_ref().map_or(0, String::len) + 1024);
    doc.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\">");
    doc.push_str("<meta name=\"referrer\" content=\"no-referrer\"><style>");
    doc.push_str(FRAME_STYLE);
    doc.push_str("</style></head><body><div id=\"sb-visible\">");
    doc.push_str(&visible);
    doc.push_str("</div>");
    if let Some(q) = quoted {
        doc.push_str("<div id=\"sb-quoted\" hidden>");
        doc.push_str(&q);
        doc.push_str("</div>");
    }
    doc.push_str("</body></html>");
    doc
}

/// How long a frame address stays valid.
const FRAME_TTL_SECS: i64 = 12 * 3600;
/// The views kept ready, in bytes of HTML and text (a timeline is read again after
/// every message and send).
const CACHE_BYTES: usize = 32 << 20;

#[derive(Default)]
struct Cache {
    views: HashMap<(String, bool), Arc<EmailView>>,
    bytes: usize,
}

/// The e-mail views of the timeline, and the frames the desk loads them in.
pub struct EmailViews {
    store: Store,
    key: [u8; 32],
    cache: Mutex<Cache>,
}

impl EmailViews {
    /// Views over the store; frame addresses are signed with a key derived from
    /// the store key.
    pub fn new(store: Store) -> EmailViews {
        let key = store.derived_key("email-frame");
        EmailViews {
            store,
            key,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The timeline as JSON, each e-mail message with its `email` object (and
    /// `email.frame_url` when it has HTML).
    pub async fn timeline_json(&self, events: Vec<TimelineEvent>) -> AppResult<Value> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let view = if is_email(&event) {
                Some(self.view(&event, false).await?)
            } else {
                None
            };
            let mut v = json!(event);
            if let Some(view) = view {
                let mut email = json!(*view);
                if view.html.is_some() {
                    email["frame_url"] = json!(self.frame_url(&event.id, now_ms() / 1000));
                }
                v["email"] = email;
            }
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    /// The view of one e-mail event, from the cache when it was worked out before
    /// (a stored message never changes what it shows).
    async fn view(&self, event: &TimelineEvent, load_remote: bool) -> AppResult<Arc<EmailView>> {
        let key = (event.id.clone(), load_remote);
        if let Some(v) = self.cache.lock().expect("cache lock").views.get(&key) {
            return Ok(v.clone());
        }
        let metadata = event.data.get("metadata").cloned().unwrap_or(Value::Null);
        let html = metadata
            .get("html_body")
            .and_then(Value::as_str)
            .unwrap_or("");
        let inline = if html.to_ascii_lowercase().contains("cid:") {
            self.store
                .event_attachments(&event.id)
                .await?
                .into_iter()
                .filter_map(|a| {
                    Some(InlineImage {
                        content_id: a.content_id?,
                        attachment_id: a.id,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let sender = (event.direction == Direction::In)
            .then_some(event.identity.as_ref())
            .flatten()
            .filter(|i| i.kind() == "email")
            .map(|i| i.value().to_string());
        let body = event.body.clone();
        // Sanitizing a large mail takes a while: off the async workers.
        let view = tokio::task::spawn_blocking(move || {
            render(
                &EmailSource {
                    metadata: &metadata,
                    body: &body,
                    sender: sender.as_deref(),
                    inline: &inline,
                },
                load_remote,
            )
        })
        .await
        .map_err(AppError::internal)?;
        let view = Arc::new(view);
        let size = view.text.len()
            + view.quoted_text.as_ref().map_or(0, String::len)
            + view.html.as_ref().map_or(0, String::len)
            + view.quoted_html.as_ref().map_or(0, String::len);
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.bytes + size > CACHE_BYTES {
            *cache = Cache::default();
        }
        if size <= CACHE_BYTES / 4 {
            cache.bytes += size;
            cache.views.insert(key, view.clone());
        }
        Ok(view)
    }

    fn signature(&self, event_id: &str, expires: i64) -> String {
        signing::hmac_hex(
            &self.key,
            &[
                b"email-frame",
                event_id.as_bytes(),
                expires.to_string().as_bytes(),
            ],
        )
    }

    /// The signed frame address of an e-mail event, valid for 12 hours from
    /// `now_secs`. The expiry is rounded to the hour so the address stays the
    /// same between reloads (the browser keeps the frame it loaded).
    pub fn frame_url(&self, event_id: &str, now_secs: i64) -> String {
        let expires = (now_secs + FRAME_TTL_SECS).div_euclid(3600) * 3600 + 3600;
        format!(
            "/email/{event_id}?expires={expires}&sig={}",
            self.signature(event_id, expires)
        )
    }

    /// The frame document of an e-mail event, for a signed address; with
    /// `remote_images`, remote pictures keep their sources. Refused when the
    /// signature is wrong or has expired, or the event is not an e-mail.
    pub async fn frame(
        &self,
        event_id: &str,
        expires: i64,
        sig: &str,
        remote_images: bool,
    ) -> AppResult<String> {
        if !signing::same(&self.signature(event_id, expires), sig) {
            return Err(AppError::forbidden("the e-mail link is not valid"));
        }
        if expires < now_ms() / 1000 {
            return Err(AppError::forbidden("the e-mail link has expired"));
        }
        let event = self.store.event(event_id).await?;
        if !is_email(&event) {
            return Err(AppError::new(
                ErrorKind::NotFound,
                "not_found",
                "no such e-mail",
            ));
        }
        Ok(frame_document(&*self.view(&event, remote_images).await?))
    }
}
