//! E-mail HTML made safe to show: ammonia with an e-mail allow-list, then images
//! rewritten so that nothing is fetched from the internet until the agent asks.
//!
//! What comes out has no scripts, event handlers, forms, frames, embedded objects,
//! SVG or MathML, `<style>`, `<link>`, `<meta>` or `<base>`; style attributes keep
//! only layout-neutral properties that take no URL (no `position`, no `background`
//! images, no transforms); links open a new tab with `rel="noopener noreferrer
//! nofollow"`; only `http`, `https`, `mailto` and `tel` links survive. Images:
//! `cid:` sources become `data-cid="<attachment id>"` (the desk swaps in the file it
//! fetched with the agent's token), `http(s)` sources become `data-remote-src` and
//! are counted, unless the agent asked to load them; raster `data:` images stay.

use std::collections::{HashMap, HashSet};

use super::markup::{Token, escape, tokens, unescape};

/// A file of the message that its HTML shows inline (`<img src="cid:…">`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    /// The MIME part's Content-ID, as the connector gave it (angle brackets or not).
    pub content_id: String,
    /// The host's attachment id.
    pub attachment_id: String,
}

/// Sanitized HTML and how many remote images it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cleaned {
    pub html: String,
    pub remote_images: u32,
    /// The attachment ids the HTML shows inline, in order, each once.
    pub inline: Vec<String>,
}

/// Style properties an e-mail may set: typography, colour, box sizes and tables.
/// None takes a URL or moves an element out of its box.
const STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "word-spacing",
    "white-space",
    "vertical-align",
    "direction",
    "display",
    "float",
    "clear",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
    "width",
    "min-width",
    "max-width",
    "height",
    "min-height",
    "max-height",
    "overflow",
    "list-style-type",
    "table-layout",
];

/// Elements dropped with everything inside them.
const DROPPED_WITH_CONTENT: &[&str] = &[
    "script", "style", "title", "noscript", "template", "svg", "math", "iframe", "frame",
    "frameset", "noframes", "object", "embed", "applet", "noembed",
];

/// Classes kept because quote and signature detection reads them.
const MARKER_CLASSES: &[(&str, &[&str])] = &[
    (
        "div",
        &[
            "gmail_quote",
            "gmail_quote_container",
            "gmail_attr",
            "gmail_extra",
            "gmail_signature",
            "moz-cite-prefix",
            "moz-signature",
            "protonmail_quote",
            "yahoo_quoted",
            "OutlookMessageHeader",
        ],
    ),
    ("blockquote", &["gmail_quote", "protonmail_quote"]),
    ("pre", &["moz-signature"]),
    ("span", &["gmail_signature"]),
];

/// The `id` prefix of every id the e-mail keeps, so none can collide with the
/// document the desk wraps it in.
pub(super) const ID_PREFIX: &str = "m-";

fn builder() -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::default();
    b.rm_tags(["area", "map"])
        .add_tags(["font", "big", "tfoot", "u"])
        .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
        .add_generic_attributes(["dir", "style", "id", "align"])
        .rm_tag_attributes("blockquote", ["cite"])
        .rm_tag_attributes("q", ["cite"])
        .rm_tag_attributes("del", ["cite"])
        .rm_tag_attributes("ins", ["cite"])
        .add_tag_attributes("a", ["name"])
        .add_tag_attributes("blockquote", ["type"])
        .add_tag_attributes("img", ["border", "hspace", "vspace", "title"])
        .add_tag_attributes(
            "table",
            [
                "bgcolor",
                "border",
                "cellpadding",
                "cellspacing",
                "width",
                "height",
            ],
        )
        .add_tag_attributes("td", ["valign", "bgcolor", "width", "height", "nowrap"])
        .add_tag_attributes("th", ["valign", "bgcolor", "width", "height", "nowrap"])
        .add_tag_attributes("tr", ["valign", "bgcolor"])
        .add_tag_attributes("tbody", ["valign"])
        .add_tag_attributes("thead", ["valign"])
        .add_tag_attributes("tfoot", ["valign"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes("ol", ["type"])
        .add_tag_attributes("ul", ["type"])
        .add_tag_attributes("li", ["value"])
        .add_tag_attributes("col", ["width"])
        .add_tag_attributes("colgroup", ["width"])
        .add_tag_attributes("hr", ["noshade"])
        .allowed_classes(
            MARKER_CLASSES
                .iter()
                .map(|(tag, classes)| (*tag, classes.iter().copied().collect::<HashSet<_>>()))
                .collect::<HashMap<_, _>>(),
        )
        .url_schemes(["http", "https", "mailto", "tel", "cid", "data"].into())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .id_prefix(Some(ID_PREFIX))
        .strip_comments(true)
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect());
    b
}

/// Sanitizes `raw` e-mail HTML. `inline` maps `cid:` references to the message's
/// files; with `load_remote`, remote images keep their `src` (they are still
/// counted).
pub(super) fn sanitize(raw: &str, inline: &[InlineImage], load_remote: bool) -> Cleaned {
    let clean = builder().clean(raw).to_string();
    let mut out = String::with_capacity(clean.len() + 64);
    let mut remote_images = 0;
    let mut shown = Vec::new();
    for token in tokens(&clean) {
        let Token::Start { name, attrs, .. } = &token else {
            out.push_str(token.raw());
            continue;
        };
        let mut tag = Tag {
            name,
            attrs: attrs
                .iter()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect(),
            changed: false,
        };
        if let Some(style) = token.attr("style") {
            let kept = safe_style(&style);
            if kept != style {
                tag.set("style", (!kept.is_empty()).then_some(kept.as_str()));
            }
        }
        match *name {
            "img" => {
                if let Some(id) = image(&token, &mut tag, inline, load_remote, &mut remote_images)
                    && !shown.contains(&id)
                {
                    shown.push(id);
                }
            }
            "a" if token.attr("href").is_some_and(|h| !link_ok(&h)) => tag.set("href", None),
            _ => {}
        }
        if tag.changed {
            out.push_str(&tag.write());
        } else {
            out.push_str(token.raw());
        }
    }
    Cleaned {
        html: out,
        remote_images,
        inline: shown,
    }
}

/// A start tag being rewritten; values are kept escaped.
struct Tag<'a> {
    name: &'a str,
    attrs: Vec<(String, String)>,
    changed: bool,
}

impl Tag<'_> {
    /// Sets (an unescaped value) or removes an attribute.
    fn set(&mut self, attr: &str, value: Option<&str>) {
        self.changed = true;
        self.attrs.retain(|(n, _)| n != attr);
        if let Some(v) = value {
            self.attrs.push((attr.to_string(), escape(v)));
        }
    }

    fn write(&self) -> String {
        let mut out = format!("<{}", self.name);
        for (n, v) in &self.attrs {
            out.push_str(&format!(" {n}=\"{v}\""));
        }
        out.push('>');
        out
    }
}

/// Style declarations whose value could fetch, run or bind something are dropped
/// (ammonia filters property names; old IE's `expression()` and `behavior`, URLs
/// and CSS escapes that could spell them are refused here).
fn safe_style(style: &str) -> String {
    style
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let l = d.to_ascii_lowercase();
            ![
                "expression",
                "url(",
                "javascript",
                "\\",
                "@",
                "behavior",
                "binding",
                "image(",
            ]
            .iter()
            .any(|bad| l.contains(bad))
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Links the desk lets an agent follow (ammonia also lets `cid:` and `data:`
/// through, for images).
fn link_ok(href: &str) -> bool {
    let h = href.trim_start().to_ascii_lowercase();
    ["http:", "https:", "mailto:", "tel:", "#"]
        .iter()
        .any(|s| h.starts_with(s))
}

fn image(
    token: &Token<'_>,
    tag: &mut Tag<'_>,
    inline: &[InlineImage],
    load_remote: bool,
    remote_images: &mut u32,
) -> Option<String> {
    let src = token.attr("src")?;
    let lower = src.trim().to_ascii_lowercase();
    if let Some(reference) = lower.strip_prefix("cid:") {
        let wanted = content_id(&percent_decode(reference));
        tag.set("src", None);
        let file = inline
            .iter()
            .find(|i| content_id(&i.content_id) == wanted)?;
        tag.set("data-cid", Some(&file.attachment_id));
        return Some(file.attachment_id.clone());
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        *remote_images += 1;
        if !load_remote {
            tag.set("src", None);
            tag.set("data-remote-src", Some(src.trim()));
        }
        return None;
    }
    let raster = ["png", "gif", "jpeg", "jpg", "webp", "bmp"]
        .iter()
        .any(|t| {
            lower.starts_with(&format!("data:image/{t};"))
                || lower.starts_with(&format!("data:image/{t},"))
        });
    if !raster {
        tag.set("src", None);
    }
    None
}

/// A Content-ID as compared: without angle brackets or surrounding space,
/// lower-cased.
pub(super) fn content_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_ascii_lowercase()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether sanitized HTML shows anything: text or a picture.
pub(super) fn shows_something(html: &str) -> bool {
    tokens(html).iter().any(|t| match t {
        Token::Text(text) => !unescape(text).trim().is_empty(),
        Token::Start { name, .. } => *name == "img" || *name == "hr",
        Token::End { .. } => false,
    })
}
