//! Where the new part of an e-mail ends and the quoted history (or the signature)
//! begins, in plain text and in sanitized HTML. Nothing is dropped: the split hands
//! back the part above and the rest, each whole.
//!
//! Recognized, in text: `>`-quoted blocks at the end of the message (inline answers
//! between quotes keep the message whole), "On … wrote:" attributions (and the
//! German, French, Spanish, Italian, Dutch, Portuguese and Scandinavian forms),
//! Outlook's `-----Original Message-----` and its `From: / Sent: / To: / Subject:`
//! header block (also after a line of underscores), and the `-- ` signature
//! delimiter. In HTML: Gmail's `div.gmail_quote` and `gmail_signature`, Apple Mail's
//! and Thunderbird's `blockquote type="cite"` with the attribution before it,
//! Thunderbird's `moz-cite-prefix` and `moz-signature`, Outlook's `#divRplyFwdMsg`
//! and `#appendonsend` and its header block in any block element, Yahoo's and
//! Proton's quote containers, and a `-- ` line. A split that would leave nothing
//! above it is not made (a bare forward or a bottom-posted reply stays whole).

use super::markup::{Token, is_block, is_void, tokens, unescape};
use super::sanitize::ID_PREFIX;

/// Splits plain text into what the sender wrote now and the quoted history.
pub(super) fn split_text(text: &str) -> (String, Option<String>) {
    let starts = line_starts(text);
    let lines: Vec<&str> = starts.iter().map(|(_, l)| *l).collect();
    // quote_tail[i]: everything from line i on is quoted, blank, or a signature.
    let mut quote_tail = vec![true; lines.len() + 1];
    for i in (0..lines.len()).rev() {
        let t = lines[i].trim();
        quote_tail[i] = is_signature_delimiter(lines[i])
            || ((t.is_empty() || t.starts_with('>')) && quote_tail[i + 1]);
    }
    for i in 0..lines.len() {
        let rest = &lines[i..];
        let marker = if is_signature_delimiter(lines[i])
            || is_original_message(lines[i])
            || is_header_block(rest)
            || (is_underscore_rule(lines[i])
                && (i + 1..lines.len().min(i + 3)).any(|j| is_header_block(&lines[j..])))
        {
            Some(None)
        } else if let Some(span) = attribution(rest) {
            Some(Some(i + span))
        } else if lines[i].trim_start().starts_with('>') {
            Some(Some(i))
        } else {
            None
        };
        let Some(guard) = marker else { continue };
        if guard.is_some_and(|from| !quote_tail[from.min(lines.len())]) {
            continue;
        }
        let at = starts[i].0;
        if text[..at].trim().is_empty() {
            continue;
        }
        return (
            text[..at].trim_end().to_string(),
            Some(text[at..].to_string()),
        );
    }
    (text.to_string(), None)
}

/// Each line's byte offset and text (without its line end).
fn line_starts(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    for raw in text.split_inclusive('\n') {
        out.push((at, raw.trim_end_matches(['\n', '\r'])));
        at += raw.len();
    }
    out
}

fn is_signature_delimiter(line: &str) -> bool {
    line == "-- " || line == "--" || line == "-- \u{a0}" || line == "--\u{a0}"
}

fn is_original_message(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    l.starts_with("-----")
        && [
            "original message",
            "ursprüngliche nachricht",
            "message d'origine",
            "mensaje original",
            "messaggio originale",
            "oorspronkelijk bericht",
            "mensagem original",
        ]
        .iter()
        .any(|m| l.contains(m))
}

fn is_underscore_rule(line: &str) -> bool {
    let l = line.trim();
    l.len() >= 10 && l.chars().all(|c| c == '_')
}

/// The lower-cased first word of a `Name:` header line (`*From:*` and `From :`
/// too), if the line is one.
fn header_word(line: &str) -> Option<String> {
    let l = line.trim().trim_start_matches('*');
    let colon = l.find(':')?;
    let name = l[..colon].trim().trim_end_matches('*').trim();
    if name.is_empty() || name.chars().count() > 20 {
        return None;
    }
    name.split_whitespace().next().map(str::to_lowercase)
}

const FROM: &[&str] = &["from", "von", "de", "da", "van", "från", "fra", "od"];
const SENT: &[&str] = &[
    "sent",
    "date",
    "gesendet",
    "datum",
    "envoyé",
    "enviado",
    "enviada",
    "inviato",
    "data",
    "verzonden",
    "skickat",
    "sendt",
    "wysłano",
];
const SUBJECT: &[&str] = &[
    "subject",
    "betreff",
    "objet",
    "asunto",
    "oggetto",
    "onderwerp",
    "ämne",
    "emne",
    "assunto",
    "temat",
];

/// Outlook's header block: a `From:` line, then within the next lines a sent date
/// and a subject.
fn is_header_block(lines: &[&str]) -> bool {
    let Some(first) = lines.first() else {
        return false;
    };
    if !header_word(first).is_some_and(|w| FROM.contains(&w.as_str())) {
        return false;
    }
    let next: Vec<String> = lines
        .iter()
        .skip(1)
        .take(8)
        .filter_map(|l| header_word(l))
        .collect();
    next.iter().any(|w| SENT.contains(&w.as_str()))
        && next.iter().any(|w| SUBJECT.contains(&w.as_str()))
}

const WROTE: &[&str] = &[
    "wrote:",
    "schrieb:",
    "a écrit :",
    "a écrit:",
    "escribió:",
    "ha scritto:",
    "schreef:",
    "skrev:",
    "escreveu:",
    "napisał:",
];
const ON: &[&str] = &[
    "on ", "am ", "le ", "el ", "il ", "op ", "den ", "em ", "w dniu ",
];

/// An attribution ("On Monday, Ann <ann@example.com> wrote:") on the first line or
/// wrapped over the first two; how many lines it takes.
fn attribution(lines: &[&str]) -> Option<usize> {
    // "… wrote:", or "Am …, schrieb Ann <ann@example.com>:" with the name after
    // the verb.
    let ends = |s: &str| {
        let s = s.trim().to_lowercase();
        s.chars().count() <= 300
            && (WROTE.iter().any(|w| s.ends_with(w))
                || (s.ends_with(':')
                    && ON.iter().any(|o| s.starts_with(o))
                    && WROTE
                        .iter()
                        .any(|w| s.contains(&format!(" {}", w.trim_end_matches(':').trim_end())))))
    };
    let first = lines.first()?;
    if ends(first) {
        return Some(1);
    }
    let starts = {
        let l = first.trim_start().to_lowercase();
        ON.iter().any(|o| l.starts_with(o))
    };
    if starts
        && let Some(second) = lines.get(1)
        && ends(&format!("{first} {second}"))
    {
        return Some(2);
    }
    None
}

/// Splits sanitized HTML into what the sender wrote now and the quoted history;
/// each part is balanced HTML (the elements open at the split are closed in the
/// first part and opened again in the second).
pub(super) fn split_html(html: &str) -> (String, Option<String>) {
    let toks = tokens(html);
    // Where the first readable thing is, and whether anything readable is at or
    // after each token.
    let first_readable = toks.iter().position(readable).unwrap_or(toks.len());
    let mut readable_from = vec![false; toks.len() + 1];
    for k in (0..toks.len()).rev() {
        readable_from[k] = readable(&toks[k]) || readable_from[k + 1];
    }
    let mut stack: Vec<usize> = Vec::new();
    let mut budget = Budget {
        text_checks: 5000,
        guarded: 50,
    };
    for i in 0..toks.len() {
        if let Some((start, guarded)) = marker(&toks, i, stack.len(), &mut budget)
            && (!guarded || !readable_from[element_end(&toks, i)])
            && first_readable < start
        {
            let open: Vec<&Token<'_>> = stack.iter().map(|&s| &toks[s]).collect();
            let mut visible: String = toks[..start].iter().map(Token::raw).collect();
            for t in open.iter().rev() {
                if let Token::Start { name, .. } = t {
                    visible.push_str(&format!("</{name}>"));
                }
            }
            let mut quoted: String = open.iter().map(|t| t.raw()).collect();
            quoted.extend(toks[start..].iter().map(Token::raw));
            return (visible, Some(quoted));
        }
        match &toks[i] {
            Token::Start { name, .. } if !is_void(name) => stack.push(i),
            Token::End { name, .. } => {
                if let Some(at) = stack.iter().rposition(|&s| toks[s].starts(name)) {
                    stack.truncate(at);
                }
            }
            _ => {}
        }
    }
    (html.to_string(), None)
}

/// How much looking a hostile message can make the split do: text checks of
/// blocks, and cited quotes weighed as possible inline replies.
struct Budget {
    text_checks: usize,
    guarded: usize,
}

/// Whether token `i` begins the quoted part: where the split goes (at `i` or at an
/// attribution just before it) and whether it holds only if nothing follows the
/// element (a quote with answers after it is an inline reply).
fn marker(
    toks: &[Token<'_>],
    i: usize,
    depth: usize,
    budget: &mut Budget,
) -> Option<(usize, bool)> {
    const ALWAYS: &[&str] = &[
        "gmail_quote",
        "gmail_quote_container",
        "gmail_signature",
        "moz-cite-prefix",
        "moz-signature",
        "protonmail_quote",
        "yahoo_quoted",
    ];
    match &toks[i] {
        Token::Start { name, .. } => {
            if ALWAYS.iter().any(|c| toks[i].has_class(c)) {
                return Some((i, false));
            }
            let id = toks[i].attr("id").unwrap_or_default();
            if id == format!("{ID_PREFIX}divRplyFwdMsg") || id == format!("{ID_PREFIX}appendonsend")
            {
                return Some((rule_before(toks, i), false));
            }
            if *name == "blockquote"
                && budget.guarded > 0
                && toks[i]
                    .attr("type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("cite"))
            {
                budget.guarded -= 1;
                return Some((attribution_before(toks, i), true));
            }
            if matches!(*name, "div" | "p") && depth <= 12 && budget.text_checks > 0 {
                budget.text_checks -= 1;
                let text = text_of(toks, i, 600);
                let lines: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                if lines.first().is_some_and(|l| is_original_message(l)) || is_header_block(&lines)
                {
                    return Some((i, false));
                }
            }
            None
        }
        Token::Text(t) => {
            let t = unescape(t);
            let line_start = i == 0
                || matches!(&toks[i - 1], Token::Start { name, .. } | Token::End { name, .. } if *name == "br" || is_block(name));
            let line_end = toks.get(i + 1).is_none_or(|n| matches!(n, Token::Start { name, .. } | Token::End { name, .. } if *name == "br" || is_block(name)));
            (line_start && line_end && is_signature_delimiter(t.trim_matches(['\n', '\r'])))
                .then_some((i, false))
        }
        Token::End { .. } => None,
    }
}

/// An `<hr>` right before Outlook's reply header belongs with it.
fn rule_before(toks: &[Token<'_>], i: usize) -> usize {
    let mut j = i;
    while j > 0 && is_blank(&toks[j - 1]) {
        j -= 1;
    }
    if j > 0 && toks[j - 1].starts("hr") {
        j - 1
    } else {
        i
    }
}

fn is_blank(t: &Token<'_>) -> bool {
    match t {
        Token::Text(s) => unescape(s).trim().is_empty(),
        _ => false,
    }
}

/// Where a cited quote's attribution starts: the block just before it ("On …
/// wrote:" in a `div`), or the line of text and inline elements before it.
fn attribution_before(toks: &[Token<'_>], i: usize) -> usize {
    let mut j = i;
    while j > 0 && (is_blank(&toks[j - 1]) || toks[j - 1].starts("br")) {
        j -= 1;
    }
    if j == 0 {
        return i;
    }
    if let Token::End { name, .. } = &toks[j - 1]
        && is_block(name)
    {
        let Some(start) = matching_start(toks, j - 1) else {
            return i;
        };
        let text = text_of(toks, start, 400);
        return if attribution(&[text.trim()]).is_some() {
            start
        } else {
            i
        };
    }
    // Inline content back to the previous line break or block edge.
    const INLINE: &[&str] = &[
        "a", "span", "b", "i", "u", "em", "strong", "font", "small", "big",
    ];
    let mut k = j;
    let mut depth = 0usize;
    while k > 0 {
        match &toks[k - 1] {
            Token::Text(_) => {}
            Token::End { name, .. } if INLINE.contains(name) => depth += 1,
            Token::Start { name, .. } if INLINE.contains(name) && depth > 0 => depth -= 1,
            _ => break,
        }
        k -= 1;
    }
    if depth != 0 || k == j {
        return i;
    }
    let text: String = toks[k..j]
        .iter()
        .filter_map(|t| match t {
            Token::Text(s) => Some(unescape(s)),
            _ => None,
        })
        .collect();
    if attribution(&[text.trim()]).is_some() {
        k
    } else {
        i
    }
}

/// The start tag that `end` closes.
fn matching_start(toks: &[Token<'_>], end: usize) -> Option<usize> {
    let Token::End { name, .. } = &toks[end] else {
        return None;
    };
    let mut depth = 0usize;
    for k in (0..end).rev() {
        match &toks[k] {
            Token::End { name: n, .. } if n == name => depth += 1,
            Token::Start { name: n, .. } if n == name => {
                if depth == 0 {
                    return Some(k);
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    None
}

/// The index just past the element that starts at `i`.
fn element_end(toks: &[Token<'_>], i: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(i) {
        match t {
            Token::Start { name, .. } if !is_void(name) => depth += 1,
            Token::End { .. } => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// Text or a picture.
fn readable(t: &Token<'_>) -> bool {
    match t {
        Token::Text(s) => !unescape(s).trim().is_empty(),
        Token::Start { name, .. } => *name == "img",
        Token::End { .. } => false,
    }
}

/// The text of the element starting at `i`, lines broken at `<br>` and blocks, at
/// most about `limit` characters (and never more than a few thousand tokens read).
fn text_of(toks: &[Token<'_>], i: usize, limit: usize) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for t in toks.iter().skip(i).take(3000) {
        match t {
            Token::Start { name, .. } => {
                if *name == "br" || is_block(name) {
                    out.push('\n');
                }
                if !is_void(name) {
                    depth += 1;
                }
            }
            Token::End { name, .. } => {
                if is_block(name) {
                    out.push('\n');
                }
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            Token::Text(s) => out.push_str(&unescape(s).replace('\u{a0}', " ")),
        }
        if out.len() > limit {
            break;
        }
    }
    out
}
