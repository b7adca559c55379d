//! Text and HTML bodies: the simple HTML version of an agent's plain-text
//! reply (paragraphs, line breaks, links, quoted history as a blockquote),
//! and the text version of an HTML-only inbound message.

/// Text of an HTML body: tags dropped, entities decoded, blocks on lines.
pub fn to_text(html: &str) -> String {
    mail_parser::decoders::html::html_to_text(html)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML version of a plain-text reply: blank lines separate paragraphs,
/// single line ends become `<br>`, `http(s)://` links become links, and
/// lines quoted with `>` become a `<blockquote>`.
pub fn from_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><body><div style=\"font-family:sans-serif;font-size:14px\">",
    );
    render_block(&text, &mut out, 0);
    out.push_str("</div></body></html>\n");
    out
}

/// Quotes nested deeper than this stay text.
const MAX_QUOTE_DEPTH: usize = 8;

fn render_block(text: &str, out: &mut String, depth: usize) {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    let mut paragraph: Vec<&str> = Vec::new();
    while i < lines.len() {
        let line = lines[i];
        if depth < MAX_QUOTE_DEPTH && line.starts_with('>') {
            flush_paragraph(&mut paragraph, out);
            let mut quoted = Vec::new();
            while i < lines.len() && lines[i].starts_with('>') {
                let inner = &lines[i][1..];
                quoted.push(inner.strip_prefix(' ').unwrap_or(inner));
                i += 1;
            }
            out.push_str(
                "<blockquote style=\"margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex\">",
            );
            render_block(&quoted.join("\n"), out, depth + 1);
            out.push_str("</blockquote>");
            continue;
        }
        if line.trim().is_empty() {
            flush_paragraph(&mut paragraph, out);
        } else {
            paragraph.push(line);
        }
        i += 1;
    }
    flush_paragraph(&mut paragraph, out);
}

fn flush_paragraph(lines: &mut Vec<&str>, out: &mut String) {
    if lines.is_empty() {
        return;
    }
    out.push_str("<p>");
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            out.push_str("<br>\n");
        }
        linkify(line, out);
    }
    out.push_str("</p>\n");
    lines.clear();
}

/// Escapes `line`, making `http://` and `https://` URLs links.
fn linkify(line: &str, out: &mut String) {
    let mut rest = line;
    while let Some(start) = find_url(rest) {
        out.push_str(&escape(&rest[..start]));
        let url_and_more = &rest[start..];
        let end = url_and_more
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(url_and_more.len());
        // Trailing punctuation ends the sentence, not the URL.
        let url = url_and_more[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'']);
        let escaped = escape(url);
        out.push_str(&format!("<a href=\"{escaped}\">{escaped}</a>"));
        rest = &url_and_more[url.len()..];
    }
    out.push_str(&escape(rest));
}

fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_become_simple_html() {
        let html = from_text(
            "Hello Ann,\r\nthanks <3 & see https://example.com/a?b=1&c=2.\n\nBest\n> On Monday you wrote:\n> > nested\n> hi",
        );
        assert!(html.contains("<p>Hello Ann,<br>\nthanks &lt;3 &amp; see <a href=\"https://example.com/a?b=1&amp;c=2\">https://example.com/a?b=1&amp;c=2</a>.</p>"), "{html}");
        assert!(html.contains("<p>Best</p>"), "{html}");
        assert!(html.contains("<blockquote"), "{html}");
        assert!(
            html.contains("<p>On Monday you wrote:</p>\n<blockquote"),
            "{html}"
        );
        assert!(html.contains("<p>nested</p>"), "{html}");
        assert!(!html.contains("<script"));
    }

    #[test]
    fn nothing_escapes_into_markup() {
        let html = from_text(
            "<script>alert(1)</script> \"quoted\" 'single' javascript:x http://a.test/\"onmouseover=x",
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("<a href=\"http://a.test/\">"), "{html}");
    }

    #[test]
    fn deep_quotes_do_not_recurse_forever() {
        let text = ">".repeat(10_000) + " deep";
        let html = from_text(&text);
        assert!(html.contains("deep"));
    }

    #[test]
    fn html_only_mail_has_a_text_version() {
        let text = to_text(
            "<p>Hello <b>there</b>&nbsp;&amp; welcome</p><br><div>Line two</div><script>x()</script>",
        );
        assert!(text.contains("Hello there"), "{text}");
        assert!(text.contains("& welcome"), "{text}");
        assert!(text.contains("Line two"), "{text}");
    }
}
