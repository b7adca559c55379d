//! SIP messages: parsing from bytes, typed accessors, builders and serialization.
//!
//! This module owns the wire format and nothing else: it never decides what to do with
//! a message. [`Message::parse`] is strict about structure (a start line, `name: value`
//! headers, the five headers every request needs) and lenient where RFC 3261 is (header
//! names in any case or compact form, folded lines, LF instead of CRLF, comma-joined
//! list headers). It is bounded: [`MAX_MESSAGE_LEN`], [`MAX_HEADERS`] and
//! [`MAX_HEADER_LINE`] cap the work any packet can cause.
//!
//! A [`ParseError`] tells the transport whether to drop the bytes silently or to answer
//! them: [`ParseError::answer`] builds the 400 (or 416/505) response when the request
//! was readable enough to route one back.

mod header;
mod uri;

use std::fmt::Write as _;

use thiserror::Error;

pub use header::{
    CSeq, HeaderError, MAGIC_COOKIE, Method, NameAddr, Transport, Via, canonical_name,
};
pub use uri::{Params, Scheme, SipUri, UriError};

/// Largest message accepted, in bytes (64 KiB).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Most header fields accepted in one message.
pub const MAX_HEADERS: usize = 100;
/// Longest header field accepted, after unfolding, in bytes.
pub const MAX_HEADER_LINE: usize = 8 * 1024;

/// One header field, with its name in canonical form (see [`canonical_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name (`Via`, not `v`).
    pub name: String,
    /// The value, unfolded and trimmed.
    pub value: String,
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD request-uri SIP/2.0`
    Request {
        /// The method.
        method: Method,
        /// The Request-URI.
        uri: SipUri,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code, 100–699.
        status: u16,
        /// Reason phrase, possibly empty.
        reason: String,
    },
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request line or status line.
    pub start: StartLine,
    headers: Vec<Header>,
    body: Vec<u8>,
}

/// What exactly was wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// The bytes end before the blank line that closes the headers.
    #[error("headers not terminated by an empty line")]
    Truncated,
    /// A header line has no colon.
    #[error("header line without a colon")]
    HeaderWithoutColon,
    /// A header name is not a token.
    #[error("bad header name")]
    BadHeaderName,
    /// A header line holds NUL or other control characters.
    #[error("control character in header")]
    ControlCharacter,
    /// The header section is not UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// More than [`MAX_HEADERS`] header fields.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// A header field longer than [`MAX_HEADER_LINE`].
    #[error("header field longer than {MAX_HEADER_LINE} bytes")]
    HeaderTooLong,
    /// A header every message needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header is present but unreadable.
    #[error("malformed {0} header")]
    InvalidHeader(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// Content-Length promises more bytes than the message has.
    #[error("body shorter than Content-Length")]
    BodyTruncated,
    /// The Request-URI is malformed.
    #[error("malformed Request-URI")]
    InvalidRequestUri,
    /// The Request-URI has a scheme other than sip, sips or tel.
    #[error("unsupported Request-URI scheme")]
    UnsupportedUriScheme,
    /// The protocol version is not SIP/2.0.
    #[error("SIP version not supported")]
    UnsupportedVersion,
}

impl Problem {
    /// The status a request with this problem is answered with.
    fn status(&self) -> u16 {
        match self {
            Problem::UnsupportedUriScheme => 416,
            Problem::UnsupportedVersion => 505,
            _ => 400,
        }
    }
}

/// A request that failed to parse but can be answered: the status to answer with, and
/// the request's Via/From/To/Call-ID/CSeq, enough to build the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answerable {
    /// 400, 416 or 505.
    pub status: u16,
    /// The readable part of the request: start line plus the headers a response copies.
    pub request: Message,
}

/// Why bytes are not a valid message, and what the transport should do about it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Bigger than [`MAX_MESSAGE_LEN`]: drop without reading.
    #[error("message of {len} bytes exceeds {MAX_MESSAGE_LEN}")]
    TooLarge {
        /// The size offered.
        len: usize,
    },
    /// Not recognisably SIP (no request or status line): drop.
    #[error("not a SIP message: {0}")]
    NotSip(&'static str),
    /// A malformed response: drop (RFC 3261 §18.1.2).
    #[error("malformed response: {0}")]
    BadResponse(Problem),
    /// A malformed request; see [`ParseError::can_answer`].
    #[error("malformed request: {problem}")]
    BadRequest {
        /// What was wrong.
        problem: Problem,
        /// Present when a response can be routed back.
        answerable: Option<Box<Answerable>>,
    },
}

impl ParseError {
    /// When the bytes were a request readable enough to answer, the status and the
    /// salvaged request; `None` means drop silently.
    pub fn can_answer(&self) -> Option<&Answerable> {
        match self {
            ParseError::BadRequest {
                answerable: Some(a),
                ..
            } => Some(a),
            _ => None,
        }
    }

    /// The response to send back (400 Bad Request, 416 or 505), if any.
    pub fn answer(&self) -> Option<Message> {
        let a = self.can_answer()?;
        let mut response = Message::response_to(&a.request, a.status);
        if let ParseError::BadRequest { problem, .. } = self
            && a.status == 400
        {
            response.start = StartLine::Response {
                status: 400,
                reason: format!("Bad Request ({problem})"),
            };
        }
        Some(response)
    }
}

/// How much of a stream buffer is the next message (see [`frame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// More bytes are needed.
    Incomplete,
    /// The first `n` bytes are one message; hand them to [`Message::parse`].
    Complete(usize),
    /// The first `n` bytes are CRLF keep-alives (RFC 5626 §3.5.1); discard them.
    KeepAlive(usize),
    /// The stream cannot be framed (no or bad Content-Length, over the size limit):
    /// close the connection.
    Invalid,
}

/// Finds the next message in a stream-transport buffer (TCP/TLS), where Content-Length
/// is mandatory (RFC 3261 §18.3).
pub fn frame(buf: &[u8]) -> Framing {
    let crlfs = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if crlfs > 0 {
        return Framing::KeepAlive(crlfs);
    }
    let window = &buf[..buf.len().min(MAX_MESSAGE_LEN)];
    let Some((head_len, body_start)) = find_head_end(window) else {
        return if buf.len() >= MAX_MESSAGE_LEN {
            Framing::Invalid
        } else {
            Framing::Incomplete
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_len]) else {
        return Framing::Invalid;
    };
    let mut length = None;
    for line in head.split('\n').skip(1) {
        if let Some((name, value)) = line.split_once(':')
            && canonical_name(name.trim()) == "Content-Length"
        {
            let value = value.trim();
            match value.parse::<usize>() {
                // Two different lengths would let the peer smuggle a message.
                Ok(n)
                    if value.bytes().all(|b| b.is_ascii_digit())
                        && length.is_none_or(|l| l == n) =>
                {
                    length = Some(n)
                }
                _ => return Framing::Invalid,
            }
        }
    }
    let Some(length) = length else {
        return Framing::Invalid;
    };
    let total = body_start.saturating_add(length);
    if total > MAX_MESSAGE_LEN {
        Framing::Invalid
    } else if buf.len() >= total {
        Framing::Complete(total)
    } else {
        Framing::Incomplete
    }
}

/// Returns (length of the header section, offset of the body).
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// Splits the header section into canonical headers, collecting the first problem but
/// keeping every well-formed line so a bad request can still be answered.
fn lex_headers(lines: &[&str]) -> (Vec<Header>, Option<Problem>) {
    let mut headers: Vec<Header> = Vec::new();
    let mut problem = None;
    let note = |p: Problem, slot: &mut Option<Problem>| {
        if slot.is_none() {
            *slot = Some(p);
        }
    };
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // LWS folding: the line continues the previous header.
            if line.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                note(Problem::ControlCharacter, &mut problem);
                continue;
            }
            match headers.last_mut() {
                Some(last) => {
                    let more = line.trim();
                    // Limits apply to the line as it will be written back: `Name: value`.
                    if last.name.len() + 2 + last.value.len() + 1 + more.len() > MAX_HEADER_LINE {
                        note(Problem::HeaderTooLong, &mut problem);
                        continue;
                    }
                    if !more.is_empty() {
                        if !last.value.is_empty() {
                            last.value.push(' ');
                        }
                        last.value.push_str(more);
                    }
                }
                None => note(Problem::HeaderWithoutColon, &mut problem),
            }
            continue;
        }
        if line.len() > MAX_HEADER_LINE {
            note(Problem::HeaderTooLong, &mut problem);
            continue;
        }
        if line.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            note(Problem::ControlCharacter, &mut problem);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            note(Problem::HeaderWithoutColon, &mut problem);
            continue;
        };
        let name = name.trim_end();
        if name.is_empty() || !name.bytes().all(uri_token) {
            note(Problem::BadHeaderName, &mut problem);
            continue;
        }
        if headers.len() == MAX_HEADERS {
            note(Problem::TooManyHeaders, &mut problem);
            break;
        }
        let name = canonical_name(name).into_owned();
        let value = value.trim().to_string();
        if name.len() + 2 + value.len() > MAX_HEADER_LINE {
            note(Problem::HeaderTooLong, &mut problem);
            continue;
        }
        headers.push(Header { name, value });
    }
    (headers, problem)
}

fn uri_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// What the start line said, before headers are checked.
enum Start {
    Request {
        method: Method,
        uri: Result<SipUri, UriError>,
        version_ok: bool,
    },
    Response {
        status: u16,
        reason: String,
    },
}

fn parse_version(text: &str) -> Option<bool> {
    let (name, number) = text.split_once('/')?;
    if !name.eq_ignore_ascii_case("SIP") {
        return None;
    }
    let (major, minor) = number.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some(number == "2.0")
}

fn parse_start(line: &str) -> Result<Start, ParseError> {
    if line.bytes().any(|b| b.is_ascii_control()) {
        return Err(ParseError::NotSip("control character in start line"));
    }
    if line.len() > MAX_HEADER_LINE {
        return Err(ParseError::NotSip("start line too long"));
    }
    let mut parts = line.splitn(3, ' ');
    let first = parts.next().unwrap_or_default();
    let second = parts
        .next()
        .ok_or(ParseError::NotSip("start line too short"))?;
    let third = parts.next();
    if let Some(version_ok) = parse_version(first) {
        if !version_ok {
            return Err(ParseError::BadResponse(Problem::UnsupportedVersion));
        }
        let status: u16 = match second.parse() {
            Ok(s) if second.len() == 3 && (100..700).contains(&s) => s,
            _ => return Err(ParseError::NotSip("bad status code")),
        };
        return Ok(Start::Response {
            status,
            reason: third.unwrap_or_default().trim().to_string(),
        });
    }
    let method = Method::parse(first).ok_or(ParseError::NotSip("bad method"))?;
    let version = third.ok_or(ParseError::NotSip("request line too short"))?;
    let version_ok = parse_version(version).ok_or(ParseError::NotSip("no SIP version"))?;
    Ok(Start::Request {
        method,
        uri: SipUri::parse(second),
        version_ok,
    })
}

impl Message {
    /// Parses one message from a datagram or from a frame found by [`frame`].
    ///
    /// Leading CRLFs are skipped (RFC 3261 §7.5). Without Content-Length the body is
    /// the rest of the bytes; with it, extra bytes are ignored and missing bytes are an
    /// error (§18.3).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(ParseError::TooLarge { len: bytes.len() });
        }
        let skip = bytes
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        let bytes = &bytes[skip..];
        if bytes.is_empty() {
            return Err(ParseError::NotSip("empty"));
        }
        let (head, rest, complete) = match find_head_end(bytes) {
            Some((head_len, body_start)) => (&bytes[..head_len], &bytes[body_start..], true),
            None => (bytes, &[][..], false),
        };
        let start_len = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
        let start_line = std::str::from_utf8(&head[..start_len])
            .map_err(|_| ParseError::NotSip("start line is not text"))?
            .trim_end_matches('\r');
        let start = parse_start(start_line)?;
        let is_request = matches!(start, Start::Request { .. });
        let fail = |problem: Problem, headers: Vec<Header>, start: Start| -> ParseError {
            match start {
                Start::Response { .. } => ParseError::BadResponse(problem),
                Start::Request { method, uri, .. } => {
                    let answerable = salvage(method, uri.ok(), headers, problem.status());
                    ParseError::BadRequest {
                        problem,
                        answerable,
                    }
                }
            }
        };
        let head_text = match std::str::from_utf8(head) {
            Ok(t) => t,
            Err(_) => {
                let lossy = String::from_utf8_lossy(head);
                let lines: Vec<&str> = lossy.split('\n').skip(1).map(trim_cr).collect();
                let (headers, _) = lex_headers(&lines);
                return Err(fail(Problem::NotUtf8, headers, start));
            }
        };
        let lines: Vec<&str> = head_text.split('\n').skip(1).map(trim_cr).collect();
        let (headers, problem) = lex_headers(&lines);
        if let Some(problem) = problem {
            return Err(fail(problem, headers, start));
        }
        if !complete {
            return Err(fail(Problem::Truncated, headers, start));
        }
        if let Start::Request {
            uri, version_ok, ..
        } = &start
        {
            let problem = match uri {
                _ if !version_ok => Some(Problem::UnsupportedVersion),
                Err(UriError::UnsupportedScheme(_)) => Some(Problem::UnsupportedUriScheme),
                Err(UriError::Malformed(_)) => Some(Problem::InvalidRequestUri),
                Ok(_) => None,
            };
            if let Some(problem) = problem {
                return Err(fail(problem, headers, start));
            }
        }
        let mut lengths = headers.iter().filter(|h| h.name == "Content-Length");
        let first_length = lengths.next();
        if let Some(first) = first_length
            && lengths.any(|h| h.value != first.value)
        {
            return Err(fail(
                Problem::InvalidHeader("Content-Length"),
                headers,
                start,
            ));
        }
        let body_len = match first_length {
            None => rest.len(),
            Some(h) => match h.value.parse::<usize>() {
                Ok(n) if h.value.bytes().all(|b| b.is_ascii_digit()) => {
                    if n > rest.len() {
                        return Err(fail(Problem::BodyTruncated, headers, start));
                    }
                    n
                }
                _ => {
                    return Err(fail(
                        Problem::InvalidHeader("Content-Length"),
                        headers,
                        start,
                    ));
                }
            },
        };
        let start = match start {
            Start::Request { method, uri, .. } => StartLine::Request {
                method,
                uri: uri.expect("checked above"),
            },
            Start::Response { status, reason } => StartLine::Response { status, reason },
        };
        let message = Message {
            start,
            headers,
            body: rest[..body_len].to_vec(),
        };
        if let Err(problem) = message.check_required() {
            return Err(if is_request {
                let StartLine::Request { method, uri } = message.start else {
                    unreachable!("is_request")
                };
                let answerable = salvage(method, Some(uri), message.headers, problem.status());
                ParseError::BadRequest {
                    problem,
                    answerable,
                }
            } else {
                ParseError::BadResponse(problem)
            });
        }
        Ok(message)
    }

    /// Checks the headers every request and response must carry (RFC 3261 §8.1.1).
    fn check_required(&self) -> Result<(), Problem> {
        if self.header("Via").is_none() {
            return Err(Problem::MissingHeader("Via"));
        }
        let vias = self.header_values("Via");
        if vias.is_empty() || vias.iter().any(|v| Via::parse(v).is_err()) {
            return Err(Problem::InvalidHeader("Via"));
        }
        for (name, ok) in [
            (
                "From",
                self.header("From").map(|v| NameAddr::parse(v).is_ok()),
            ),
            ("To", self.header("To").map(|v| NameAddr::parse(v).is_ok())),
            (
                "Call-ID",
                self.header("Call-ID")
                    .map(|v| !v.is_empty() && !v.contains(' ')),
            ),
            ("CSeq", self.header("CSeq").map(|v| CSeq::parse(v).is_ok())),
        ] {
            match ok {
                None => return Err(Problem::MissingHeader(name)),
                Some(false) => return Err(Problem::InvalidHeader(name)),
                Some(true) => {}
            }
        }
        if let Some(mf) = self.header("Max-Forwards")
            && (mf.is_empty() || mf.len() > 3 || !mf.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Problem::InvalidHeader("Max-Forwards"));
        }
        if let StartLine::Request { method, .. } = &self.start
            && self.cseq().is_some_and(|c| &c.method != method)
        {
            return Err(Problem::CSeqMethodMismatch);
        }
        Ok(())
    }

    /// A request with only its start line; add headers with [`Message::with_header`].
    pub fn request(method: Method, uri: SipUri) -> Message {
        Message {
            start: StartLine::Request { method, uri },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response with only its status line, using the standard reason phrase.
    pub fn response(status: u16) -> Message {
        Message {
            start: StartLine::Response {
                status,
                reason: reason_phrase(status).to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` as RFC 3261 §8.2.6 says: Via (all, in order), From,
    /// Call-ID and CSeq copied, To copied with a fresh tag added when it has none and
    /// the status is above 100. Record-Route is copied for dialog-creating responses
    /// (§12.1.1). `Content-Length: 0`.
    pub fn response_to(request: &Message, status: u16) -> Message {
        let mut response = Message::response(status);
        for header in &request.headers {
            let copy = match header.name.as_str() {
                "Via" | "From" | "Call-ID" | "CSeq" | "To" => true,
                "Record-Route" => {
                    (101..300).contains(&status)
                        && request.method().is_some_and(|m| *m == Method::Invite)
                }
                _ => false,
            };
            if copy {
                response.headers.push(header.clone());
            }
        }
        if status > 100 && response.to().is_some_and(|to| to.tag().is_none()) {
            response.set_to_tag(&new_tag());
        }
        response.set_header("Content-Length", "0");
        response
    }

    /// Adds a header at the end (builder style).
    pub fn with_header(mut self, name: &str, value: impl std::fmt::Display) -> Message {
        self.push_header(name, value);
        self
    }

    /// Adds a header at the end.
    pub fn push_header(&mut self, name: &str, value: impl std::fmt::Display) {
        self.headers.push(Header {
            name: canonical_name(name).into_owned(),
            value: value.to_string().trim().to_string(),
        });
    }

    /// Adds a header before all others of any name (used for a new top Via).
    pub fn push_header_first(&mut self, name: &str, value: impl std::fmt::Display) {
        self.headers.insert(
            0,
            Header {
                name: canonical_name(name).into_owned(),
                value: value.to_string().trim().to_string(),
            },
        );
    }

    /// Replaces every header called `name` by one with `value`, keeping the position of
    /// the first one.
    pub fn set_header(&mut self, name: &str, value: impl std::fmt::Display) {
        let name = canonical_name(name).into_owned();
        let value = value.to_string().trim().to_string();
        match self
            .headers
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case(&name))
        {
            Some(i) => {
                self.headers[i].value = value;
                let mut seen = 0;
                self.headers.retain(|h| {
                    if h.name.eq_ignore_ascii_case(&name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.headers.push(Header { name, value }),
        }
    }

    /// Removes every header called `name`.
    pub fn remove_header(&mut self, name: &str) {
        let name = canonical_name(name);
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(&name));
    }

    /// Sets the body with its Content-Type, and Content-Length to match.
    pub fn set_body(&mut self, content_type: &str, body: impl Into<Vec<u8>>) {
        self.body = body.into();
        if self.body.is_empty() {
            self.remove_header("Content-Type");
        } else {
            self.set_header("Content-Type", content_type);
        }
        self.set_header("Content-Length", self.body.len());
    }

    /// Sets (or replaces) the tag on the To header.
    pub fn set_to_tag(&mut self, tag: &str) {
        if let Some(mut to) = self.to() {
            to.params.set("tag", Some(tag));
            self.set_header("To", to);
        }
    }

    /// Replaces the top Via value (used to add `received`/`rport`).
    pub fn set_top_via(&mut self, via: &Via) {
        let Some(index) = self.headers.iter().position(|h| h.name == "Via") else {
            self.push_header_first("Via", via);
            return;
        };
        let values = header::split_list(&self.headers[index].value);
        let mut joined = via.to_string();
        for rest in values.iter().skip(1) {
            joined.push_str(", ");
            joined.push_str(rest);
        }
        self.headers[index].value = joined;
    }

    /// Serializes the message: start line, headers as stored, blank line, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::with_capacity(512);
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(text, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { status, reason } => {
                let _ = write!(text, "SIP/2.0 {status} {reason}\r\n");
            }
        }
        for h in &self.headers {
            let _ = write!(text, "{}: {}\r\n", h.name, h.value);
        }
        text.push_str("\r\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, or for a response the CSeq method it answers.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn uri(&self) -> Option<&SipUri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// All header fields in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first value of header `name` (any case or compact form).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = canonical_name(name);
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(&name))
            .map(|h| h.value.as_str())
    }

    /// Every value of header `name`, in order; list headers (Via, Contact, Route…) are
    /// split at their commas.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let name = canonical_name(name);
        let list = header::is_list_header(&name);
        let mut out = Vec::new();
        for h in self
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(&name))
        {
            if list {
                out.extend(header::split_list(&h.value));
            } else {
                out.push(h.value.as_str());
            }
        }
        out
    }

    /// The top Via.
    pub fn via(&self) -> Option<Via> {
        self.header_values("Via")
            .first()
            .and_then(|v| Via::parse(v).ok())
    }

    /// Every Via, top first (unreadable ones skipped).
    pub fn vias(&self) -> Vec<Via> {
        self.header_values("Via")
            .into_iter()
            .filter_map(|v| Via::parse(v).ok())
            .collect()
    }

    /// The From header.
    pub fn from(&self) -> Option<NameAddr> {
        self.header("From").and_then(|v| NameAddr::parse(v).ok())
    }

    /// The To header.
    pub fn to(&self) -> Option<NameAddr> {
        self.header("To").and_then(|v| NameAddr::parse(v).ok())
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    /// The CSeq.
    pub fn cseq(&self) -> Option<CSeq> {
        self.header("CSeq").and_then(|v| CSeq::parse(v).ok())
    }

    /// The first Contact address (`None` for `Contact: *`).
    pub fn contact(&self) -> Option<NameAddr> {
        self.contacts().into_iter().next()
    }

    /// Every Contact address.
    pub fn contacts(&self) -> Vec<NameAddr> {
        self.header_values("Contact")
            .into_iter()
            .filter_map(|v| NameAddr::parse(v).ok())
            .collect()
    }

    /// Whether the request carries `Contact: *` (remove all bindings).
    pub fn has_wildcard_contact(&self) -> bool {
        self.header_values("Contact").contains(&"*")
    }

    /// Record-Route addresses, top first.
    pub fn record_routes(&self) -> Vec<NameAddr> {
        self.header_values("Record-Route")
            .into_iter()
            .filter_map(|v| NameAddr::parse(v).ok())
            .collect()
    }

    /// Route addresses, top first.
    pub fn routes(&self) -> Vec<NameAddr> {
        self.header_values("Route")
            .into_iter()
            .filter_map(|v| NameAddr::parse(v).ok())
            .collect()
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Option<u32> {
        self.header("Max-Forwards").and_then(|v| v.parse().ok())
    }

    /// Expires, in seconds.
    pub fn expires(&self) -> Option<u32> {
        self.header("Expires").and_then(|v| v.parse().ok())
    }

    /// Content-Type.
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// Content-Length as written.
    pub fn content_length(&self) -> Option<usize> {
        self.header("Content-Length").and_then(|v| v.parse().ok())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

fn trim_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// Builds the part of a bad request that a response needs, if all of it is readable.
fn salvage(
    method: Method,
    uri: Option<SipUri>,
    headers: Vec<Header>,
    status: u16,
) -> Option<Box<Answerable>> {
    let message = Message {
        start: StartLine::Request {
            method,
            uri: uri.unwrap_or_else(|| SipUri::sip(None, "invalid", None)),
        },
        headers: headers
            .into_iter()
            .filter(|h| matches!(h.name.as_str(), "Via" | "From" | "To" | "Call-ID" | "CSeq"))
            .collect(),
        body: Vec::new(),
    };
    // A response is routed by the top Via and must echo the dialog identifiers.
    message.via()?;
    message.to()?;
    for name in ["From", "Call-ID", "CSeq"] {
        message.header(name).filter(|v| !v.is_empty())?;
    }
    Some(Box::new(Answerable {
        status,
        request: message,
    }))
}

/// A fresh random branch with the RFC 3261 magic cookie.
pub fn new_branch() -> String {
    format!("{MAGIC_COOKIE}{}", random_token(16))
}

/// A fresh random From/To tag.
pub fn new_tag() -> String {
    random_token(10)
}

/// A fresh random Call-ID at `host`.
pub fn new_call_id(host: &str) -> String {
    format!("{}@{host}", random_token(20))
}

fn random_token(len: usize) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The standard reason phrase for a status code ("" when unknown).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n\
        v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877, SIP/2.0/UDP proxy.example.com\r\n\
        Max-Forwards: 70\r\n\
        t: <sip:carol@chicago.example.com>\r\n\
        f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        i: a84b4c76e66710\r\n\
        CSEQ: 63104 OPTIONS\r\n\
        Subject: folded\r\n  across lines\r\n\
        l: 0\r\n\r\n";

    #[test]
    fn compact_forms_folding_and_lists_are_understood() {
        let m = Message::parse(OPTIONS.as_bytes()).unwrap();
        assert_eq!(m.method(), Some(&Method::Options));
        assert_eq!(m.uri().unwrap().user.as_deref(), Some("carol"));
        assert_eq!(m.vias().len(), 2);
        assert_eq!(m.via().unwrap().branch(), Some("z9hG4bKhjhs8ass877"));
        assert_eq!(m.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(m.call_id(), Some("a84b4c76e66710"));
        assert_eq!(m.cseq().unwrap().number, 63104);
        assert_eq!(m.header("subject"), Some("folded across lines"));
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(m.content_length(), Some(0));
        assert_eq!(Message::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn a_response_copies_what_section_8_2_6_says_and_tags_the_to() {
        let request = Message::parse(OPTIONS.as_bytes()).unwrap();
        let response = Message::response_to(&request, 200);
        assert_eq!(response.status(), Some(200));
        assert_eq!(response.reason(), Some("OK"));
        assert_eq!(response.vias().len(), 2);
        assert_eq!(response.call_id(), request.call_id());
        assert_eq!(response.cseq(), request.cseq());
        assert_eq!(response.from(), request.from());
        assert!(response.to().unwrap().tag().is_some());
        assert_eq!(response.header("Max-Forwards"), None);
        let trying = Message::response_to(&request, 100);
        assert_eq!(trying.to().unwrap().tag(), None);
        assert_eq!(Message::parse(&response.to_bytes()).unwrap(), response);
    }

    #[test]
    fn udp_extra_bytes_after_content_length_are_ignored() {
        let text = OPTIONS.replace("l: 0", "l: 2");
        let m = Message::parse(format!("{text}hi and junk").as_bytes()).unwrap();
        assert_eq!(m.body(), b"hi");
    }

    #[test]
    fn framing_waits_for_the_whole_body() {
        let text = OPTIONS.replace("l: 0", "l: 4");
        let full = format!("{text}body");
        assert_eq!(frame(&full.as_bytes()[..10]), Framing::Incomplete);
        assert_eq!(
            frame(&full.as_bytes()[..full.len() - 1]),
            Framing::Incomplete
        );
        let mut two = full.clone().into_bytes();
        two.extend_from_slice(full.as_bytes());
        assert_eq!(frame(&two), Framing::Complete(full.len()));
        assert_eq!(frame(b"\r\n\r\nINVITE"), Framing::KeepAlive(4));
        let no_length = OPTIONS.replace("l: 0\r\n", "");
        assert_eq!(frame(no_length.as_bytes()), Framing::Invalid);
        let huge = OPTIONS.replace("l: 0", "l: 99999999");
        assert_eq!(frame(huge.as_bytes()), Framing::Invalid);
    }

    #[test]
    fn a_bad_request_with_readable_headers_is_answered_400() {
        let text = OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: lots");
        let err = Message::parse(text.as_bytes()).unwrap_err();
        let answer = err.answer().expect("answerable");
        assert_eq!(answer.status(), Some(400));
        assert_eq!(answer.call_id(), Some("a84b4c76e66710"));
        assert!(answer.reason().unwrap().contains("Max-Forwards"));
    }

    #[test]
    fn unsupported_scheme_and_version_get_their_own_status() {
        let text = OPTIONS.replace("sip:carol@chicago.example.com SIP", "http://x SIP");
        assert_eq!(
            Message::parse(text.as_bytes())
                .unwrap_err()
                .can_answer()
                .unwrap()
                .status,
            416
        );
        let text = OPTIONS.replace("example.com SIP/2.0\r\n", "example.com SIP/3.0\r\n");
        assert_eq!(
            Message::parse(text.as_bytes())
                .unwrap_err()
                .can_answer()
                .unwrap()
                .status,
            505
        );
    }
}
