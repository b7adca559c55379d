//! Typed views of the header fields the transaction and dialog layers rely on:
//! methods, Via, name-addr (From/To/Contact/Route), CSeq, and header-name rules.

use std::borrow::Cow;
use std::fmt;

use super::uri::{Params, SipUri, UriError, is_token_byte, parse_hostport};

/// A SIP request method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// Starts a session.
    Invite,
    /// Confirms a final response to INVITE.
    Ack,
    /// Ends a session.
    Bye,
    /// Cancels a pending INVITE.
    Cancel,
    /// Asks for capabilities (also used as a keep-alive ping).
    Options,
    /// Binds a contact address to an address of record.
    Register,
    /// RFC 3262 provisional acknowledgement.
    Prack,
    /// RFC 6665 subscription.
    Subscribe,
    /// RFC 6665 notification.
    Notify,
    /// RFC 3903 event state publication.
    Publish,
    /// RFC 6086 mid-session information (often DTMF).
    Info,
    /// RFC 3515 call transfer.
    Refer,
    /// RFC 3428 instant message.
    Message,
    /// RFC 3311 session update.
    Update,
    /// Any other extension method, as written.
    Other(String),
}

impl Method {
    /// Reads a method token; `None` when `text` is not a token.
    pub fn parse(text: &str) -> Option<Method> {
        if text.is_empty() || !text.bytes().all(is_token_byte) {
            return None;
        }
        Some(match text {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "UPDATE" => Method::Update,
            other => Method::Other(other.to_string()),
        })
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Other(m) => m,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transport a message travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams: unreliable, so the transaction layer retransmits.
    Udp,
    /// A TCP stream: reliable, framed by Content-Length.
    Tcp,
    /// TLS over TCP: reliable.
    Tls,
}

impl Transport {
    /// Whether the transport delivers reliably (RFC 3261 §17: no retransmission timers).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The name used in a Via header (`UDP`, `TCP`, `TLS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Reads a Via transport name, case-insensitively.
    pub fn parse(text: &str) -> Option<Transport> {
        match text.to_ascii_uppercase().as_str() {
            "UDP" => Some(Transport::Udp),
            "TCP" => Some(Transport::Tcp),
            "TLS" => Some(Transport::Tls),
            _ => None,
        }
    }
}

/// Why a header value could not be read as its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The URI inside the value is bad.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The value does not have the header's shape.
    #[error("malformed header value: {0}")]
    Malformed(&'static str),
}

/// One Via header value: `SIP/2.0/UDP host:port;branch=z9hG4bK…;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport name as written (`UDP`, `TCP`, `TLS`, `WS`…), upper-cased.
    pub transport: String,
    /// The sent-by host.
    pub host: String,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// Parameters: `branch`, `received`, `rport`, `maddr`, `ttl`…
    pub params: Params,
}

/// The RFC 3261 branch prefix that marks a branch as globally unique.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

impl Via {
    /// A Via for a request we send, with the given branch and `;rport` requested.
    pub fn new(transport: Transport, host: &str, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(branch));
        params.set("rport", None);
        Via {
            transport: transport.as_str().to_string(),
            host: host.to_string(),
            port,
            params,
        }
    }

    /// Reads one Via value (not a comma-separated list).
    pub fn parse(text: &str) -> Result<Via, HeaderError> {
        let (protocol_and_host, params) = match text.split_once(';') {
            Some((a, p)) => (a, Params::parse(p)?),
            None => (text, Params::new()),
        };
        let mut parts = protocol_and_host.splitn(3, '/');
        let name = parts.next().unwrap_or_default().trim();
        let version = parts.next().unwrap_or_default().trim();
        let rest = parts.next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(HeaderError::Malformed("Via protocol is not SIP/2.0"));
        }
        let (transport, sent_by) = rest
            .split_once([' ', '\t'])
            .ok_or(HeaderError::Malformed("Via has no sent-by"))?;
        if transport.is_empty() || !transport.bytes().all(is_token_byte) {
            return Err(HeaderError::Malformed("bad Via transport"));
        }
        let (host, port) = parse_hostport(sent_by)?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// The `received` parameter a server added (the address the request came from).
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// Whether `rport` is present (RFC 3581), with or without a value.
    pub fn has_rport(&self) -> bool {
        self.params.contains("rport")
    }

    /// The port a server filled into `rport`.
    pub fn rport(&self) -> Option<u16> {
        self.params.value("rport").and_then(|p| p.parse().ok())
    }

    /// The transport as a [`Transport`], when it is one this core drives.
    pub fn transport_kind(&self) -> Option<Transport> {
        Transport::parse(&self.transport)
    }

    /// `host[:port]` as written, lower-cased, for transaction matching.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host.to_ascii_lowercase()),
            None => self.host.to_ascii_lowercase(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// A name-addr or addr-spec, as in From, To, Contact, Route and Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display_name: Option<String>,
    /// The address.
    pub uri: SipUri,
    /// Header parameters after the address (`tag`, `expires`, `q`…).
    pub params: Params,
}

impl NameAddr {
    /// An address without display name or parameters.
    pub fn new(uri: SipUri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// Reads one value (not a comma-separated list).
    pub fn parse(text: &str) -> Result<NameAddr, HeaderError> {
        let text = text.trim();
        let (display_name, rest) = if let Some(quoted) = text.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            name.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => name.push(c),
                }
            }
            let end = end.ok_or(HeaderError::Malformed("unclosed display name"))?;
            (Some(name), quoted[end..].trim_start())
        } else if let Some(open) = text.find('<') {
            let name = text[..open].trim();
            ((!name.is_empty()).then(|| name.to_string()), &text[open..])
        } else {
            (None, text)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let (uri, after) = inner
                .split_once('>')
                .ok_or(HeaderError::Malformed("unclosed <"))?;
            let after = after.trim();
            if !after.is_empty() && !after.starts_with(';') {
                return Err(HeaderError::Malformed("junk after address"));
            }
            Ok(NameAddr {
                display_name,
                uri: SipUri::parse(uri)?,
                params: Params::parse(after)?,
            })
        } else if display_name.is_some() {
            Err(HeaderError::Malformed("display name without <address>"))
        } else {
            // A bare addr-spec: parameters after it belong to the header (§20.10).
            let (uri, params) = match rest.split_once(';') {
                Some((u, p)) => (u, Params::parse(p)?),
                None => (rest, Params::new()),
            };
            Ok(NameAddr {
                display_name: None,
                uri: SipUri::parse(uri)?,
                params,
            })
        }
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
            write!(f, "\"{escaped}\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// The CSeq header: a sequence number and the request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number, below 2^31 (RFC 3261 §8.1.1.5).
    pub number: u32,
    /// The method of the request this CSeq belongs to.
    pub method: Method,
}

impl CSeq {
    /// Reads `314159 INVITE`.
    pub fn parse(text: &str) -> Result<CSeq, HeaderError> {
        let mut parts = text.split_whitespace();
        let number = parts.next().unwrap_or_default();
        let method = parts.next().unwrap_or_default();
        if parts.next().is_some() {
            return Err(HeaderError::Malformed("CSeq has extra words"));
        }
        if number.is_empty() || number.len() > 10 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HeaderError::Malformed("CSeq number is not a number"));
        }
        let number: u32 = number
            .parse()
            .map_err(|_| HeaderError::Malformed("CSeq number too large"))?;
        if number >= 1 << 31 {
            return Err(HeaderError::Malformed("CSeq number too large"));
        }
        let method = Method::parse(method).ok_or(HeaderError::Malformed("CSeq method missing"))?;
        Ok(CSeq { number, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number, self.method)
    }
}

/// Headers whose values may be combined into one comma-separated line (RFC 3261 §7.3.1).
const LIST_HEADERS: &[&str] = &[
    "Via",
    "Contact",
    "Route",
    "Record-Route",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "Accept",
];

/// Whether `name` (canonical) is a comma-separated list header.
pub(crate) fn is_list_header(name: &str) -> bool {
    LIST_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The canonical spelling of a header name: compact forms expanded, well-known names
/// in their RFC capitalisation, anything else as written.
pub fn canonical_name(name: &str) -> Cow<'_, str> {
    const KNOWN: &[&str] = &[
        "Accept",
        "Allow",
        "Authorization",
        "Call-ID",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Event",
        "Expires",
        "From",
        "Max-Forwards",
        "Min-Expires",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Record-Route",
        "Refer-To",
        "Require",
        "Route",
        "Server",
        "Subject",
        "Supported",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    ];
    if name.len() == 1 {
        let full = match name.as_bytes()[0].to_ascii_lowercase() {
            b'i' => Some("Call-ID"),
            b'm' => Some("Contact"),
            b'e' => Some("Content-Encoding"),
            b'l' => Some("Content-Length"),
            b'c' => Some("Content-Type"),
            b'f' => Some("From"),
            b's' => Some("Subject"),
            b'k' => Some("Supported"),
            b't' => Some("To"),
            b'v' => Some("Via"),
            b'o' => Some("Event"),
            b'r' => Some("Refer-To"),
            _ => None,
        };
        if let Some(full) = full {
            return Cow::Borrowed(full);
        }
    }
    match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(name.to_string()),
    }
}

/// Splits a list header value at commas outside quotes and angle brackets.
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|v| !v.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_spaces_around_slashes_and_rport_is_read() {
        let via =
            Via::parse("SIP / 2.0 / udp pc33.example.com:5066;branch=z9hG4bK776;rport").unwrap();
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.transport_kind(), Some(Transport::Udp));
        assert_eq!(via.sent_by(), "pc33.example.com:5066");
        assert_eq!(via.branch(), Some("z9hG4bK776"));
        assert!(via.has_rport());
        assert_eq!(via.rport(), None);
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bK776;rport"
        );
    }

    #[test]
    fn name_addr_forms() {
        let quoted =
            NameAddr::parse(r#""Bob \"B\" Smith" <sip:bob@b.example>;tag=a6c85cf"#).unwrap();
        assert_eq!(quoted.display_name.as_deref(), Some(r#"Bob "B" Smith"#));
        assert_eq!(quoted.tag(), Some("a6c85cf"));
        let token = NameAddr::parse("Alice <sip:alice@a.example;transport=tcp>").unwrap();
        assert_eq!(token.display_name.as_deref(), Some("Alice"));
        assert_eq!(token.uri.params.value("transport"), Some("tcp"));
        let bare = NameAddr::parse("sip:carol@c.example;tag=88").unwrap();
        assert_eq!(bare.tag(), Some("88"));
        assert!(bare.uri.params.is_empty());
        assert!(NameAddr::parse("\"unclosed <sip:a@b>").is_err());
        assert!(NameAddr::parse("<sip:a@b").is_err());
    }

    #[test]
    fn cseq_rejects_negative_and_oversized_numbers() {
        assert_eq!(
            CSeq::parse("4711 INVITE").unwrap(),
            CSeq {
                number: 4711,
                method: Method::Invite
            }
        );
        for bad in [
            "-1 INVITE",
            "2147483648 INVITE",
            "1",
            "x INVITE",
            "1 INVITE extra",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list(r#""a, b" <sip:x@y;p=1,2>, sip:z@w ,"#),
            vec![r#""a, b" <sip:x@y;p=1,2>"#, "sip:z@w"]
        );
    }

    #[test]
    fn compact_and_odd_case_names_are_canonical() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("cseq"), "CSeq");
        assert_eq!(canonical_name("www-authenticate"), "WWW-Authenticate");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
    }
}
