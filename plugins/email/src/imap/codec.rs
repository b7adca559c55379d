//! IMAP on the wire, without I/O: how a command's arguments are written
//! (atoms, quoted strings, literals, modified UTF-7 mailbox names, UID sets)
//! and how a response is framed and classified (`{n}` literals, tagged
//! completions with their response codes, capabilities).
//!
//! Untagged data (FETCH, EXISTS, UIDVALIDITY…) is parsed by `imap-proto`
//! in `client`; this module only frames it.

use std::fmt::Write as _;

/// How one argument of a command is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    /// Written as it is: a command name, a UID set, a parenthesized list.
    Atom(&'a str),
    /// An `astring`: quoted when it can be, else a literal.
    Str(&'a [u8]),
}

/// Longest string sent quoted; longer ones go as literals.
const MAX_QUOTED: usize = 1000;

/// How an `astring` travels.
#[derive(Debug, PartialEq, Eq)]
pub enum Encoded<'a> {
    /// `"…"` with `\` and `"` escaped.
    Quoted(Vec<u8>),
    /// `{n}\r\n` followed by the bytes, once the server says go on.
    Literal(&'a [u8]),
}

/// Quoted when every byte is 7-bit text other than CR and LF (a quoted
/// string cannot carry those), else a literal, which carries anything.
pub fn encode_string(value: &[u8]) -> Encoded<'_> {
    let quotable = value.len() <= MAX_QUOTED
        && value
            .iter()
            .all(|b| (0x01..=0x7f).contains(b) && *b != b'\r' && *b != b'\n');
    if !quotable {
        return Encoded::Literal(value);
    }
    let mut quoted = Vec::with_capacity(value.len() + 2);
    quoted.push(b'"');
    for b in value {
        if matches!(b, b'"' | b'\\') {
            quoted.push(b'\\');
        }
        quoted.push(*b);
    }
    quoted.push(b'"');
    Encoded::Quoted(quoted)
}

/// A mailbox name in IMAP's modified UTF-7 (RFC 3501 §5.1.3): printable
/// ASCII stays, `&` is `&-`, anything else is `&` + modified base64 of its
/// UTF-16 + `-`.
pub fn mailbox_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|unit| unit.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&modified_base64(&bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Base64 with `,` for `/` and no padding.
fn modified_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
        }
    }
    out
}

/// `1:3,7,9:10` for `[1, 2, 3, 7, 9, 10]` (sorted or not).
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}:{end}");
        }
        i += 1;
    }
    out
}

/// The size of the literal announced at the end of `line` (`{42}\r\n`,
/// `{42+}\r\n`, or `~{42}\r\n` for binary), if any.
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let line = line.strip_suffix(b"+").unwrap_or(line);
    let open = line.iter().rposition(|b| *b == b'{')?;
    let digits = &line[open + 1..];
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What a response is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `* …`: data, or a status without a tag.
    Untagged,
    /// `+ …`: the server waits for more of the command.
    Continuation,
    /// `tag OK|NO|BAD …`: a command is done.
    Tagged,
}

pub fn kind(response: &[u8]) -> Kind {
    if response.starts_with(b"* ") || response == b"*\r\n" {
        Kind::Untagged
    } else if response.starts_with(b"+") {
        Kind::Continuation
    } else {
        Kind::Tagged
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// A tagged completion: `a1 NO [AUTHENTICATIONFAILED] Invalid credentials`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub status: Status,
    /// The response code without brackets (`AUTHENTICATIONFAILED`,
    /// `CAPABILITY IMAP4rev1 …`).
    pub code: Option<String>,
    pub text: String,
}

impl Completion {
    /// The code's first word, upper-case (`UNAVAILABLE`).
    pub fn code_name(&self) -> Option<String> {
        self.code
            .as_deref()
            .and_then(|code| code.split_whitespace().next())
            .map(str::to_ascii_uppercase)
    }

    /// The server's words, with the code, for errors shown to operators.
    pub fn describe(&self) -> String {
        match &self.code {
            Some(code) => format!("[{code}] {}", self.text),
            None => self.text.clone(),
        }
    }
}

/// The completion in `response` when it carries `tag`.
pub fn parse_tagged(response: &[u8], tag: &str) -> Option<Completion> {
    let text = String::from_utf8_lossy(response);
    let rest = text.strip_prefix(tag)?.strip_prefix(' ')?;
    let (status, rest) = split_word(rest);
    let status = match status.to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        _ => return None,
    };
    let (code, text) = response_code(rest);
    Some(Completion {
        status,
        code,
        text: text.trim_end().to_owned(),
    })
}

/// The status word and response code of an untagged status (`* OK [...] …`,
/// `* BYE …`), or `None` for untagged data.
pub fn parse_untagged_status(response: &[u8]) -> Option<(String, Option<String>, String)> {
    let text = String::from_utf8_lossy(response);
    let rest = text.strip_prefix("* ")?;
    let (word, rest) = split_word(rest);
    let word = word.to_ascii_uppercase();
    if !matches!(word.as_str(), "OK" | "NO" | "BAD" | "BYE" | "PREAUTH") {
        return None;
    }
    let (code, text) = response_code(rest);
    Some((word, code, text.trim_end().to_owned()))
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find([' ', '\r', '\n']) {
        Some(at) => (&text[..at], text[at..].trim_start_matches(' ')),
        None => (text, ""),
    }
}

/// `[CODE args] text` → (`CODE args`, `text`).
fn response_code(rest: &str) -> (Option<String>, &str) {
    if let Some(inner) = rest.strip_prefix('[')
        && let Some(close) = inner.find(']')
    {
        return (
            Some(inner[..close].to_owned()),
            inner[close + 1..].trim_start(),
        );
    }
    (None, rest)
}

/// The capabilities a response lists: `* CAPABILITY …` or a `[CAPABILITY …]`
/// code, upper-cased.
pub fn capabilities(response: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(response);
    let upper = text.to_ascii_uppercase();
    let list = if let Some(rest) = upper.strip_prefix("* CAPABILITY ") {
        rest.trim_end().to_owned()
    } else {
        let start = upper.find("[CAPABILITY ")? + "[CAPABILITY ".len();
        let end = upper[start..].find(']')? + start;
        upper[start..end].to_owned()
    };
    Some(list.split_whitespace().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_sent_as_literals() {
        assert_eq!(
            encode_string(b"user@example.com"),
            Encoded::Quoted(b"\"user@example.com\"".to_vec())
        );
        assert_eq!(
            encode_string(br#"pa"ss\word"#),
            Encoded::Quoted(br#""pa\"ss\\word""#.to_vec())
        );
        assert_eq!(encode_string(b""), Encoded::Quoted(b"\"\"".to_vec()));
        assert_eq!(
            encode_string("pässword".as_bytes()),
            Encoded::Literal("pässword".as_bytes())
        );
        assert_eq!(encode_string(b"a\r\nb"), Encoded::Literal(b"a\r\nb"));
        assert_eq!(encode_string(b"a\0b"), Encoded::Literal(b"a\0b"));
    }

    #[test]
    fn mailbox_names_in_modified_utf7() {
        assert_eq!(mailbox_name("INBOX"), "INBOX");
        assert_eq!(mailbox_name("Tom & Jerry"), "Tom &- Jerry");
        // RFC 3501's example.
        assert_eq!(
            mailbox_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(mailbox_name("Entwürfe"), "Entw&APw-rfe");
    }

    #[test]
    fn uid_sets_are_compressed() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[10, 9, 9, 1]), "1,9:10");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn literals_are_found_at_line_ends_only() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {1234}\r\n"), Some(1234));
        assert_eq!(literal_len(b"a1 LOGIN {5+}\r\n"), Some(5));
        assert_eq!(literal_len(b"* 1 FETCH (BINARY[1] ~{7}\r\n"), Some(7));
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {0}\n"), Some(0));
        assert_eq!(literal_len(b"* OK {12} later\r\n"), None);
        assert_eq!(literal_len(b"* OK {}\r\n"), None);
        assert_eq!(literal_len(b"* OK {1x}\r\n"), None);
        assert_eq!(literal_len(b"* OK {99999999999999}\r\n"), None);
        assert_eq!(literal_len(b"* OK done\r\n"), None);
    }

    #[test]
    fn responses_are_classified() {
        assert_eq!(kind(b"* 3 EXISTS\r\n"), Kind::Untagged);
        assert_eq!(kind(b"+ go ahead\r\n"), Kind::Continuation);
        assert_eq!(kind(b"+\r\n"), Kind::Continuation);
        assert_eq!(kind(b"sb1 OK done\r\n"), Kind::Tagged);
    }

    #[test]
    fn tagged_completions_with_codes() {
        let done = parse_tagged(
            b"sb2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
            "sb2",
        )
        .unwrap();
        assert_eq!(done.status, Status::No);
        assert_eq!(done.code_name().as_deref(), Some("AUTHENTICATIONFAILED"));
        assert_eq!(done.text, "Authentication failed.");
        assert_eq!(
            done.describe(),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        let ok = parse_tagged(b"sb3 ok EXAMINE completed\r\n", "sb3").unwrap();
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(ok.code, None);
        assert!(parse_tagged(b"sb3 OK x\r\n", "sb4").is_none());
        assert!(parse_tagged(b"sb31 OK x\r\n", "sb3").is_none());
        assert!(parse_tagged(b"sb3 MAYBE x\r\n", "sb3").is_none());
    }

    #[test]
    fn untagged_statuses() {
        assert_eq!(
            parse_untagged_status(b"* BYE Autologout; idle for too long\r\n"),
            Some((
                "BYE".to_owned(),
                None,
                "Autologout; idle for too long".to_owned()
            ))
        );
        assert_eq!(
            parse_untagged_status(b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n")
                .unwrap()
                .1
                .as_deref(),
            Some("UIDVALIDITY 3857529045")
        );
        assert_eq!(parse_untagged_status(b"* 3 EXISTS\r\n"), None);
    }

    #[test]
    fn capabilities_from_greetings_and_data() {
        assert_eq!(
            capabilities(
                b"* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"
            ),
            Some(vec![
                "IMAP4REV1".to_owned(),
                "SASL-IR".to_owned(),
                "STARTTLS".to_owned(),
                "AUTH=PLAIN".to_owned()
            ])
        );
        assert_eq!(
            capabilities(b"* CAPABILITY IMAP4rev1 LOGINDISABLED\r\n"),
            Some(vec!["IMAP4REV1".to_owned(), "LOGINDISABLED".to_owned()])
        );
        assert_eq!(capabilities(b"* OK ready\r\n"), None);
    }
}
