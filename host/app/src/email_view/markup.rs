//! Reading back the HTML that ammonia wrote, as a flat list of tokens.
//!
//! This is not an HTML parser and must never see HTML from the internet: it reads
//! only the serializer's output of a sanitized document, where every attribute value
//! is double-quoted (with `"` escaped), every `<` in text is escaped, there are no
//! comments, no raw-text elements and no doctype. That regular shape is what lets the
//! image rewriting and the quote split work on tokens and hand back the very bytes
//! they were given.

/// One piece of sanitized HTML, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// `<name attr="value">`; `raw` is the whole tag as written.
    Start {
        name: &'a str,
        attrs: Vec<Attr<'a>>,
        raw: &'a str,
    },
    /// `</name>`.
    End { name: &'a str, raw: &'a str },
    /// Text, still escaped.
    Text(&'a str),
}

/// An attribute with its value as written (escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attr<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

impl<'a> Token<'a> {
    /// The bytes this token was read from.
    pub fn raw(&self) -> &'a str {
        match self {
            Token::Start { raw, .. } | Token::End { raw, .. } => raw,
            Token::Text(t) => t,
        }
    }

    /// The value of attribute `name` of a start tag, unescaped.
    pub fn attr(&self, name: &str) -> Option<String> {
        match self {
            Token::Start { attrs, .. } => attrs
                .iter()
                .find(|a| a.name == name)
                .map(|a| unescape(a.value)),
            _ => None,
        }
    }

    /// Whether this is a start tag of element `name`.
    pub fn starts(&self, name: &str) -> bool {
        matches!(self, Token::Start { name: n, .. } if *n == name)
    }

    /// Whether the element this token opens has a class `class`.
    pub fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_ascii_whitespace().any(|c| c == class))
    }
}

/// Elements that have no end tag.
pub(super) fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

/// Elements that start a new line when read as text.
pub(super) fn is_block(name: &str) -> bool {
    matches!(
        name,
        "div"
            | "p"
            | "blockquote"
            | "pre"
            | "table"
            | "tr"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "hr"
            | "center"
            | "article"
            | "aside"
            | "header"
            | "footer"
            | "nav"
            | "figure"
            | "details"
            | "summary"
    )
}

/// The tokens of sanitized HTML, in order. Anything unexpected (which ammonia does
/// not write) is kept as text, so nothing is ever lost or invented.
pub(super) fn tokens(html: &str) -> Vec<Token<'_>> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            let end = html[i..].find('<').map_or(html.len(), |n| i + n);
            out.push(Token::Text(&html[i..end]));
            i = end;
            continue;
        }
        match tag(html, i) {
            Some((token, next)) => {
                out.push(token);
                i = next;
            }
            None => {
                // A stray `<`: text up to the next one.
                let end = html[i + 1..].find('<').map_or(html.len(), |n| i + 1 + n);
                out.push(Token::Text(&html[i..end]));
                i = end;
            }
        }
    }
    out
}

/// The tag starting at `i` (a `<`), and where the next token starts.
fn tag(html: &str, i: usize) -> Option<(Token<'_>, usize)> {
    let bytes = html.as_bytes();
    let name_char = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b':';
    if bytes.get(i + 1) == Some(&b'/') {
        let start = i + 2;
        let mut j = start;
        while j < bytes.len() && name_char(bytes[j]) {
            j += 1;
        }
        if j == start || bytes.get(j) != Some(&b'>') {
            return None;
        }
        return Some((
            Token::End {
                name: &html[start..j],
                raw: &html[i..=j],
            },
            j + 1,
        ));
    }
    let start = i + 1;
    let mut j = start;
    while j < bytes.len() && name_char(bytes[j]) {
        j += 1;
    }
    if j == start {
        return None;
    }
    let name = &html[start..j];
    let mut attrs = Vec::new();
    loop {
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        match bytes.get(j)? {
            b'>' => {
                j += 1;
                break;
            }
            b'/' => {
                j += 1;
                continue;
            }
            _ => {}
        }
        let a = j;
        while j < bytes.len()
            && !matches!(bytes[j], b'=' | b'>' | b'/')
            && !bytes[j].is_ascii_whitespace()
        {
            j += 1;
        }
        let attr_name = &html[a..j];
        if attr_name.is_empty() {
            return None;
        }
        let value = if bytes.get(j) == Some(&b'=') && bytes.get(j + 1) == Some(&b'"') {
            let v = j + 2;
            let close = html[v..].find('"')? + v;
            j = close + 1;
            &html[v..close]
        } else if bytes.get(j) == Some(&b'=') {
            return None;
        } else {
            ""
        };
        attrs.push(Attr {
            name: attr_name,
            value,
        });
    }
    Some((
        Token::Start {
            name,
            attrs,
            raw: &html[i..j],
        },
        j,
    ))
}

/// Text or an attribute value as written, unescaped (the entities the serializer
/// writes, plus numeric ones).
pub(super) fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for a double-quoted attribute value or a text node.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_serializers_shapes() {
        let html = r#"<p class="a b" title="x &quot;&gt; y">Hi &lt;there&gt;<br>you</p><img alt="" src="cid:a">"#;
        let t = tokens(html);
        assert_eq!(t.len(), 6);
        assert!(t[0].starts("p") && t[0].has_class("b"));
        assert_eq!(t[0].attr("title").as_deref(), Some("x \"> y"));
        assert_eq!(t[1], Token::Text("Hi &lt;there&gt;"));
        assert!(t[2].starts("br"));
        assert_eq!(t[5].attr("src").as_deref(), Some("cid:a"));
        let again: String = t.iter().map(Token::raw).collect();
        assert_eq!(again, html, "the bytes come back unchanged");
        assert_eq!(
            unescape("a&amp;b&nbsp;&#65;&#x42;&bogus;&"),
            "a&b\u{a0}AB&bogus;&"
        );
        assert_eq!(escape("<\"&\u{a0}>"), "&lt;&quot;&amp;&nbsp;&gt;");
    }
}
