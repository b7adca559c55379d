//! The benchmark's mail: a deterministic generator of mixed customer messages.
//!
//! Message `i` of a corpus depends only on the seed and `i`, so any message can
//! be made again on demand (the corpus is never held whole: 10 000 messages are
//! about 800 MB) and every run reads the same mail. The mix:
//!
//! - 60 % short text (0.3–3 KB): US-ASCII 7bit, UTF-8 8bit, UTF-8
//!   quoted-printable, ISO-8859-1 quoted-printable, UTF-8 base64; some
//!   replies (`In-Reply-To`, `References`), some plus-addressed, some with
//!   `Reply-To`, encoded-word subjects and names;
//! - 25 % HTML around 30 KB: newsletters (`multipart/alternative`, QP, list
//!   headers, so the connector marks them bulk) and replies quoting a thread
//!   in nested blockquotes (HTML in base64 or QP, UTF-8 or ISO-8859-1);
//! - 15 % with files: `multipart/mixed` of a `multipart/related` (text, HTML
//!   showing an inline `cid:` PNG) and one attachment of 50 KB–1 MB
//!   (log-uniform; PDF, JPEG or ZIP, base64, some with RFC 2231 names).
//!
//! File contents are pseudo-random bytes behind the right magic numbers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The mailbox every corpus message is written to.
pub const MAILBOX: &str = "support@example.test";

/// What kind of message it is (the size classes of the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Text,
    Html,
    Files,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Text, Class::Html, Class::Files];

    pub fn label(self) -> &'static str {
        match self {
            Class::Text => "text (60 %)",
            Class::Html => "HTML ~30 KB (25 %)",
            Class::Files => "files 50 KB-1 MB (15 %)",
        }
    }
}

/// One generated message.
pub struct Mail {
    pub class: Class,
    /// The RFC 5322 message, CRLF line ends.
    pub raw: Vec<u8>,
}

/// A corpus: message `i` is `Corpus::message(i)`.
#[derive(Debug, Clone, Copy)]
pub struct Corpus {
    seed: u64,
}

impl Corpus {
    pub fn new(seed: u64) -> Corpus {
        Corpus { seed }
    }

    fn rng(&self, i: usize, stream: u64) -> Rng {
        Rng::new(
            self.seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add((i as u64) << 8)
                .wrapping_add(stream),
        )
    }

    /// The class of message `i`.
    pub fn class(&self, i: usize) -> Class {
        match self.rng(i, 1).below(100) {
            0..60 => Class::Text,
            60..85 => Class::Html,
            _ => Class::Files,
        }
    }

    /// The Message-ID of message `i` (without `<>`).
    fn message_id(&self, i: usize) -> String {
        let customer = customer(self.rng(i, 2).below(CUSTOMERS));
        format!("{i}.{:x}.bench@{}", self.seed, customer.domain)
    }

    /// Message `i`.
    pub fn message(&self, i: usize) -> Mail {
        let class = self.class(i);
        let mut rng = self.rng(i, 3);
        let who = customer(self.rng(i, 2).below(CUSTOMERS));
        let message_id = self.message_id(i);
        let mut h = Headers::new(&mut rng, &who, &message_id, i);
        let raw = match class {
            Class::Text => text_message(&mut rng, &mut h),
            Class::Html => html_message(&mut rng, &mut h, i),
            Class::Files => files_message(&mut rng, &mut h, i),
        };
        Mail { class, raw }
    }
}

/// A message carrying one attachment of `attachment_bytes` (ZIP), base64:
/// the large message of the memory measurement.
pub fn large_message(attachment_bytes: usize, message_id: &str, to: &str) -> Vec<u8> {
    let boundary = "=_sbbench_large";
    let mut out = format!(
        "From: Dana Fischer <dana.fischer@example.com>\r\n\
         To: {to}\r\n\
         Subject: The full export you asked for\r\n\
         Date: Tue, 14 Nov 2023 09:30:00 +0000\r\n\
         Message-ID: <{message_id}>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n\
         Hello,\r\n\r\nattached is the complete export of our account, as promised on the phone.\r\n\
         It is large; tell me if it does not come through.\r\n\r\nDana\r\n\
         --{boundary}\r\n\
         Content-Type: application/zip; name=\"export.zip\"\r\n\
         Content-Disposition: attachment; filename=\"export.zip\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n"
    )
    .into_bytes();
    let file = large_attachment(attachment_bytes);
    out.reserve(attachment_bytes / 57 * 78 + 256);
    push_base64(&mut out, &file);
    drop(file);
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// The file [`large_message`] attaches: a ZIP signature and noise.
pub fn large_attachment(attachment_bytes: usize) -> Vec<u8> {
    let mut rng = Rng::new(0x5EED_0B16 ^ attachment_bytes as u64);
    let mut file = b"PK\x03\x04".to_vec();
    file.resize(attachment_bytes.max(4), 0);
    rng.fill(&mut file[4..]);
    file
}

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same everywhere (the corpus must not
/// change with a dependency's version).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut rng = Rng(seed);
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// In `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo).max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// In `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

// ---------------------------------------------------------------------------
// People and words
// ---------------------------------------------------------------------------

const CUSTOMERS: u64 = 500;

const FIRST: &[&str] = &[
    "Anna", "Ben", "Chloé", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kenji",
    "Léa", "Marta", "Nils", "Olivia", "Pablo", "Quinn", "Rosa", "Sören", "Tara",
];
const LAST: &[&str] = &[
    "Andersen",
    "Becker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fernández",
    "García",
    "Huber",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lambert",
    "Müller",
    "Novak",
    "Okafor",
];
const DOMAINS: &[&str] = &["example.com", "example.org", "example.net", "mail.example"];

struct Customer {
    name: String,
    address: String,
    domain: &'static str,
}

fn customer(n: u64) -> Customer {
    let first = FIRST[(n % FIRST.len() as u64) as usize];
    let last = LAST[((n / FIRST.len() as u64) % LAST.len() as u64) as usize];
    let domain = DOMAINS[(n % DOMAINS.len() as u64) as usize];
    let ascii = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                'é' => 'e',
                'á' => 'a',
                'ö' => 'o',
                'ü' => 'u',
                c => c,
            })
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    Customer {
        name: format!("{first} {last}"),
        address: format!("{}.{}{n}@{domain}", ascii(first), ascii(last)),
        domain,
    }
}

const WORDS: &[&str] = &[
    "order",
    "delivery",
    "invoice",
    "account",
    "refund",
    "router",
    "package",
    "tracking",
    "number",
    "week",
    "please",
    "could",
    "you",
    "check",
    "again",
    "still",
    "not",
    "arrived",
    "the",
    "a",
    "my",
    "your",
    "we",
    "have",
    "been",
    "waiting",
    "since",
    "Monday",
    "support",
    "team",
    "thanks",
    "update",
    "payment",
    "card",
    "charged",
    "twice",
    "subscription",
    "plan",
    "upgrade",
    "cancel",
    "address",
    "changed",
    "moved",
    "warehouse",
    "courier",
    "signature",
    "replacement",
    "broken",
    "screen",
    "warranty",
    "receipt",
    "attached",
    "photo",
    "today",
    "tomorrow",
    "call",
    "back",
    "email",
    "reply",
    "soon",
    "help",
    "problem",
    "issue",
];
/// Words with Latin-1 letters (so ISO-8859-1 and UTF-8 texts differ on the wire).
const ACCENTED: &[&str] = &[
    "déjà",
    "Grüße",
    "café",
    "naïve",
    "Straße",
    "señor",
    "mañana",
    "Bestätigung",
    "reçu",
    "Rückerstattung",
    "über",
    "façade",
    "garçon",
    "Lösung",
    "été",
];
/// Words outside Latin-1 (UTF-8 only).
const WIDE: &[&str] = &["日本語", "Привет", "ευχαριστώ", "—", "€", "✓", "😀"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Ascii,
    Latin1,
    Utf8,
}

fn sentence(rng: &mut Rng, script: Script) -> String {
    let n = rng.range(6, 16);
    let mut words: Vec<&str> = Vec::with_capacity(n);
    for _ in 0..n {
        let word = match script {
            Script::Latin1 if rng.chance(15) => rng.pick(ACCENTED),
            Script::Utf8 if rng.chance(8) => rng.pick(WIDE),
            Script::Utf8 if rng.chance(10) => rng.pick(ACCENTED),
            _ => rng.pick(WORDS),
        };
        words.push(word);
    }
    let mut s = words.join(" ");
    if let Some(first) = s.get(..1) {
        let upper = first.to_ascii_uppercase();
        s.replace_range(..1, &upper);
    }
    s.push(if rng.chance(20) { '?' } else { '.' });
    s
}

/// Paragraphs of about `bytes` bytes, lines wrapped under 78 characters.
fn prose(rng: &mut Rng, bytes: usize, script: Script) -> String {
    let mut out = String::with_capacity(bytes + 128);
    while out.len() < bytes {
        let mut paragraph = String::new();
        for _ in 0..rng.range(2, 5) {
            if !paragraph.is_empty() {
                paragraph.push(' ');
            }
            paragraph.push_str(&sentence(rng, script));
        }
        out.push_str(&wrap(&paragraph, 72));
        out.push_str("\n\n");
    }
    out
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0usize;
    for word in text.split(' ') {
        let len = word.chars().count();
        if line > 0 && line + 1 + len > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += len;
    }
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// ---------------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------------

/// `text` (`\n` line ends) as ISO-8859-1 bytes; characters outside it become `?`.
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Quoted-printable (RFC 2045) of `bytes` whose lines end in `\n`; CRLF out.
fn quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 11 / 10 + 16);
    for line in bytes.split(|b| *b == b'\n') {
        let mut width = 0usize;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal = (b'!'..=b'~').contains(&b) && b != b'=' || (b == b' ' && !last);
            let piece_len = if literal { 1 } else { 3 };
            if width + piece_len > 75 {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            width += piece_len;
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Base64 in 76-character lines, CRLF.
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.chunks(57) {
        let start = out.len();
        out.resize(start + 76, 0);
        let n = STANDARD
            .encode_slice(chunk, &mut out[start..])
            .expect("76 bytes hold 57 encoded");
        out.truncate(start + n);
        out.extend_from_slice(b"\r\n");
    }
}

/// `\n` → CRLF.
fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 40);
    for &b in text {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// An RFC 2047 encoded word of `text` when it is not ASCII.
fn header_text(rng: &mut Rng, text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    if rng.chance(50) {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(text.as_bytes()))
    } else {
        let q: String = text
            .bytes()
            .map(|b| match b {
                b' ' => "_".to_owned(),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b',' => char::from(b).to_string(),
                other => format!("={other:02X}"),
            })
            .collect();
        format!("=?UTF-8?Q?{q}?=")
    }
}

/// One text part: its `Content-Type`/`Content-Transfer-Encoding` header lines and body.
struct Part {
    headers: String,
    body: Vec<u8>,
}

/// `text` (`\n` line ends) as a text part of `subtype`, in an encoding picked by `rng`.
fn text_part(rng: &mut Rng, subtype: &str, text: &str, script: Script) -> Part {
    let (charset, encoding, body) = match (script, rng.below(4)) {
        (Script::Ascii, 0 | 1) => ("us-ascii", "7bit", crlf(text.as_bytes())),
        (Script::Ascii, _) => (
            "utf-8",
            "quoted-printable",
            quoted_printable(text.as_bytes()),
        ),
        (Script::Latin1, 0 | 1) => (
            "iso-8859-1",
            "quoted-printable",
            quoted_printable(&latin1(text)),
        ),
        (Script::Latin1, 2) => ("iso-8859-1", "8bit", crlf(&latin1(text))),
        (_, 0) => ("utf-8", "8bit", crlf(text.as_bytes())),
        (_, 1 | 2) => (
            "utf-8",
            "quoted-printable",
            quoted_printable(text.as_bytes()),
        ),
        (_, _) => {
            let mut body = Vec::new();
            push_base64(&mut body, &crlf(text.as_bytes()));
            ("utf-8", "base64", body)
        }
    };
    Part {
        headers: format!(
            "Content-Type: text/{subtype}; charset=\"{charset}\"\r\nContent-Transfer-Encoding: {encoding}\r\n"
        ),
        body,
    }
}

fn binary_part(headers: String, bytes: &[u8]) -> Part {
    let mut body = Vec::with_capacity(bytes.len() / 57 * 78 + 80);
    push_base64(&mut body, bytes);
    Part {
        headers: format!("{headers}Content-Transfer-Encoding: base64\r\n"),
        body,
    }
}

/// A multipart body of `parts` under `boundary`.
fn multipart(subtype: &str, boundary: &str, parts: Vec<Part>) -> Part {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n{}\r\n", part.headers).as_bytes());
        body.extend_from_slice(&part.body);
        if !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Part {
        headers: format!("Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n"),
        body,
    }
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// The top-level header fields of a message (MIME fields are added by the body).
struct Headers {
    lines: String,
    sender: String,
    script: Script,
}

impl Headers {
    fn new(rng: &mut Rng, who: &Customer, message_id: &str, i: usize) -> Headers {
        let script = match rng.below(10) {
            0..4 => Script::Ascii,
            4..7 => Script::Latin1,
            _ => Script::Utf8,
        };
        let subject = match rng.below(6) {
            0 => format!("Order #{} has not arrived", 40000 + rng.below(9999)),
            1 => "Question about my invoice".to_owned(),
            2 => "Rückerstattung für Bestellung".to_owned(),
            3 => "Problème de livraison — urgent".to_owned(),
            4 => format!("Account {} locked", rng.below(99999)),
            _ => "Re: your support request".to_owned(),
        };
        let name = header_text(rng, &who.name);
        let mut lines = format!("From: \"{name}\" <{}>\r\n", who.address);
        let to = if rng.chance(15) {
            // A reply to the plus-addressed Reply-To of one of our replies.
            format!("support+t{:x}@example.test", rng.below(1 << 24))
        } else {
            MAILBOX.to_owned()
        };
        lines.push_str(&format!("To: Example Support <{to}>\r\n"));
        if rng.chance(10) {
            lines.push_str(&format!(
                "Cc: {}\r\n",
                customer(rng.below(CUSTOMERS)).address
            ));
        }
        if rng.chance(10) {
            lines.push_str(&format!("Reply-To: {}\r\n", who.address));
        }
        lines.push_str(&format!("Subject: {}\r\n", header_text(rng, &subject)));
        lines.push_str(&format!(
            "Date: {}\r\n",
            rfc2822(1_700_000_000 + i as i64 * 37)
        ));
        lines.push_str(&format!("Message-ID: <{message_id}>\r\n"));
        if rng.chance(30) {
            let earlier = format!("{}.reply@example.test", rng.below(1 << 30));
            let first = format!("{}.first@{}", rng.below(1 << 30), who.domain);
            lines.push_str(&format!(
                "In-Reply-To: <{earlier}>\r\nReferences: <{first}>\r\n <{earlier}>\r\n"
            ));
        }
        lines.push_str("MIME-Version: 1.0\r\n");
        Headers {
            lines,
            sender: who.name.clone(),
            script,
        }
    }

    fn push(&mut self, line: &str) {
        self.lines.push_str(line);
        self.lines.push_str("\r\n");
    }

    fn with_body(&self, body: Part) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.lines.len() + body.headers.len() + body.body.len() + 4);
        out.extend_from_slice(self.lines.as_bytes());
        out.extend_from_slice(body.headers.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body.body);
        out
    }
}

fn text_message(rng: &mut Rng, h: &mut Headers) -> Vec<u8> {
    let size = rng.range(300, 3000);
    let mut text = format!("Hello,\n\n{}", prose(rng, size, h.script));
    text.push_str(&format!("Best regards,\n{}\n", h.sender));
    let part = text_part(rng, "plain", &text, h.script);
    h.with_body(part)
}

fn html_message(rng: &mut Rng, h: &mut Headers, i: usize) -> Vec<u8> {
    let boundary = format!("=_sbbench_{i}_alt");
    if rng.chance(50) {
        // A newsletter: list headers, tables and inline styles.
        h.push("List-Id: <news.example.com>");
        h.push("List-Unsubscribe: <mailto:unsubscribe@example.com?subject=unsubscribe>");
        h.push("Precedence: bulk");
        let mut html = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>td{font-family:Arial,sans-serif}</style></head>\n<body style=\"margin:0;background:#f4f4f4\">\n<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\">\n",
        );
        let mut text = String::new();
        let target = rng.range(8_000, 18_000);
        let mut n = 0;
        while html.len() < target {
            n += 1;
            let title = sentence(rng, Script::Utf8);
            let size = rng.range(600, 1400);
            let body = prose(rng, size, Script::Utf8);
            html.push_str(&format!(
                "<tr><td style=\"padding:16px 24px;background:#ffffff;border-bottom:1px solid #dddddd\">\n<h2 style=\"color:#223344;font-size:20px\">{}</h2>\n<img src=\"https://news.example.com/img/{n}.jpg\" width=\"560\" alt=\"\">\n<p style=\"color:#333333;line-height:1.5\">{}</p>\n<a href=\"https://news.example.com/articles/{n}?utm_source=newsletter\" style=\"color:#0066cc\">Read more</a>\n</td></tr>\n",
                html_escape(&title),
                html_escape(&body).replace("\n\n", "</p>\n<p style=\"color:#333333;line-height:1.5\">")
            ));
            text.push_str(&format!(
                "{title}\n\n{body}Read more: https://news.example.com/articles/{n}\n\n"
            ));
        }
        html.push_str("</table>\n<p style=\"font-size:11px\"><a href=\"https://news.example.com/unsubscribe\">Unsubscribe</a></p>\n</body></html>\n");
        let parts = vec![
            text_part(rng, "plain", &text, Script::Utf8),
            text_part(rng, "html", &html, Script::Utf8),
        ];
        h.with_body(multipart("alternative", &boundary, parts))
    } else {
        // A reply quoting the thread so far, each earlier message one blockquote deeper.
        let script = if h.script == Script::Latin1 {
            Script::Latin1
        } else {
            Script::Utf8
        };
        let mut html = String::from("<html><body>\n");
        let mut text = String::new();
        let size = rng.range(300, 900);
        let first = prose(rng, size, script);
        html.push_str(&format!(
            "<div>{}</div>\n",
            html_escape(&first).replace("\n\n", "<br><br>\n")
        ));
        text.push_str(&first);
        let target = rng.range(8_000, 18_000);
        let mut depth = 0;
        while html.len() < target {
            depth += 1;
            let size = rng.range(800, 2500);
            let said = prose(rng, size, script);
            let who = if depth % 2 == 1 {
                "Example Support"
            } else {
                h.sender.as_str()
            };
            html.push_str(&format!(
                "<div class=\"gmail_quote\">On Mon, 13 Nov 2023 at 10:{depth:02}, {who} wrote:<br>\n<blockquote style=\"margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex\">\n<div>{}</div>\n",
                html_escape(&said).replace("\n\n", "<br><br>\n")
            ));
            let prefix = ">".repeat(depth);
            text.push_str(&format!(
                "\nOn Mon, 13 Nov 2023 at 10:{depth:02}, {who} wrote:\n"
            ));
            for line in said.lines() {
                text.push_str(&format!("{prefix} {line}\n"));
            }
        }
        for _ in 0..depth {
            html.push_str("</blockquote></div>\n");
        }
        html.push_str("</body></html>\n");
        let parts = vec![
            text_part(rng, "plain", &text, script),
            text_part(rng, "html", &html, script),
        ];
        h.with_body(multipart("alternative", &boundary, parts))
    }
}

fn files_message(rng: &mut Rng, h: &mut Headers, i: usize) -> Vec<u8> {
    let domain = "customers.example";
    let cid = format!("logo.{i}@{domain}");
    let size = rng.range(300, 1200);
    let text = format!(
        "Hello,\n\n{}Please see the attached file.\n\n{}\n",
        prose(rng, size, h.script),
        h.sender
    );
    let html = format!(
        "<html><body><p>{}</p><p>Please see the attached file.</p><p><img src=\"cid:{cid}\" alt=\"logo\" width=\"120\"></p><p>{}</p></body></html>\n",
        html_escape(&text).replace("\n\n", "</p><p>"),
        html_escape(&h.sender)
    );
    let alternative = multipart(
        "alternative",
        &format!("=_sbbench_{i}_alt"),
        vec![
            text_part(rng, "plain", &text, h.script),
            text_part(rng, "html", &html, h.script),
        ],
    );
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(rng.range(3_000, 20_000), 0);
    rng.fill(&mut png[8..]);
    let image = binary_part(
        format!(
            "Content-Type: image/png; name=\"logo.png\"\r\nContent-ID: <{cid}>\r\nContent-Disposition: inline; filename=\"logo.png\"\r\n"
        ),
        &png,
    );
    let related = multipart(
        "related",
        &format!("=_sbbench_{i}_rel"),
        vec![alternative, image],
    );

    // 50 KB to 1 MB, log-uniform.
    let size = (50_000.0 * 20f64.powf(rng.unit())) as usize;
    let (mime, magic, name): (&str, &[u8], &str) = match rng.below(3) {
        0 => (
            "application/pdf",
            b"%PDF-1.5\n%\xE2\xE3\xCF\xD3\n",
            "invoice",
        ),
        1 => ("image/jpeg", b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00", "photo"),
        _ => ("application/zip", b"PK\x03\x04", "logs"),
    };
    let mut file = magic.to_vec();
    file.resize(size.max(magic.len()), 0);
    rng.fill(&mut file[magic.len()..]);
    let extension = mime
        .rsplit('/')
        .next()
        .unwrap_or("bin")
        .replace("jpeg", "jpg");
    let disposition = if rng.chance(30) {
        // RFC 2231: a UTF-8 name.
        format!(
            "Content-Disposition: attachment; filename*=utf-8''{name}-M%C3%A4rz-{i}.{extension}\r\n"
        )
    } else {
        format!("Content-Disposition: attachment; filename=\"{name}-{i}.{extension}\"\r\n")
    };
    let attachment = binary_part(format!("Content-Type: {mime}\r\n{disposition}"), &file);
    drop(file);
    h.with_body(multipart(
        "mixed",
        &format!("=_sbbench_{i}_mix"),
        vec![related, attachment],
    ))
}

/// `Tue, 14 Nov 2023 22:13:20 +0000`.
fn rfc2822(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .expect("a representable instant")
        .strftime("%a, %-d %b %Y %H:%M:%S +0000")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_deterministic_and_mixed() {
        let corpus = Corpus::new(12);
        let again = Corpus::new(12);
        let mut counts = [0usize; 3];
        let mut bytes = [0usize; 3];
        for i in 0..400 {
            let a = corpus.message(i);
            assert_eq!(a.raw, again.message(i).raw, "message {i}");
            assert!(
                a.raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'),
                "CRLF only"
            );
            let at = Class::ALL.iter().position(|c| *c == a.class).unwrap();
            counts[at] += 1;
            let size = a.raw.len();
            bytes[at] += size;
            match a.class {
                Class::Text => assert!((300..8_000).contains(&size), "{size}"),
                Class::Html => assert!((10_000..70_000).contains(&size), "{size}"),
                Class::Files => assert!((60_000..1_500_000).contains(&size), "{size}"),
            }
        }
        assert!(
            counts[0] > 200 && counts[1] > 70 && counts[2] > 35,
            "{counts:?}"
        );
        assert_ne!(Corpus::new(13).message(0).raw, corpus.message(0).raw);
    }

    #[test]
    fn dates_and_quoted_printable() {
        assert_eq!(rfc2822(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert_eq!(rfc2822(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            quoted_printable("a=b é \n".as_bytes()),
            b"a=3Db =C3=A9=20\r\n\r\n"
        );
        let long = "x".repeat(200);
        assert!(
            quoted_printable(long.as_bytes())
                .split(|b| *b == b'\n')
                .all(|l| l.len() <= 78)
        );
    }
}
