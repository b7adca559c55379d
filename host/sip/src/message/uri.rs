//! `sip:`, `sips:` and `tel:` URIs (RFC 3261 §19.1, RFC 3966), and the parameter
//! lists they share with header fields.

use std::fmt;

use thiserror::Error;

/// Why a URI could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    /// The text has a scheme this core does not speak (`http:`, `mailto:`…); a request
    /// carrying it is answered 416.
    #[error("unsupported URI scheme `{0}`")]
    UnsupportedScheme(String),
    /// The text is not a URI at all.
    #[error("malformed URI: {0}")]
    Malformed(&'static str),
}

/// The URI schemes this core understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:` (TLS end to end)
    Sips,
    /// `tel:` (a telephone number, RFC 3966)
    Tel,
}

impl Scheme {
    /// The scheme as written before the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
        }
    }
}

/// An ordered list of `;name[=value]` parameters. Names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// Reads `;a=b;c` (leading `;` optional). Empty segments are skipped.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let mut params = Vec::new();
        for segment in text.split(';') {
            let segment = segment.trim();
            if segment.is_empty() {
                continue;
            }
            let (name, value) = match segment.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
                None => (segment, None),
            };
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(UriError::Malformed("bad parameter name"));
            }
            if let Some(v) = &value
                && v.bytes().any(|b| b.is_ascii_control() || b == b' ')
                && !v.starts_with('"')
            {
                return Err(UriError::Malformed("bad parameter value"));
            }
            params.push((name.to_string(), value));
        }
        Ok(Params(params))
    }

    /// The value of the first parameter called `name`: `None` when absent,
    /// `Some(None)` when present without a value (`;lr`).
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of `name` when it has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    /// Whether `name` is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing an existing one in place, else appending).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

/// A `sip:`, `sips:` or `tel:` URI.
///
/// For `tel:` URIs the number is in [`user`](SipUri::user) and `host` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// Which scheme.
    pub scheme: Scheme,
    /// The user part (`alice` in `sip:alice@example.com`), or the `tel:` number.
    pub user: Option<String>,
    /// A password in the user-info (deprecated by RFC 3261, kept for round-trips).
    pub password: Option<String>,
    /// Host name, IPv4 address or bracketed IPv6 reference (`[::1]`).
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// The raw `?headers` part, without the `?`.
    pub headers: Option<String>,
}

impl SipUri {
    /// A `sip:` URI for `user@host` (no user when `user` is `None`).
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Self {
        SipUri {
            scheme: Scheme::Sip,
            user: user.map(str::to_string),
            password: None,
            host: host.to_string(),
            port,
            params: Params::new(),
            headers: None,
        }
    }

    /// Reads a URI.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let text = text.trim();
        if text.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(UriError::Malformed("whitespace or control character"));
        }
        let (scheme, rest) = text
            .split_once(':')
            .ok_or(UriError::Malformed("no scheme"))?;
        let valid_scheme = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !valid_scheme {
            return Err(UriError::Malformed("bad scheme"));
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            _ => return Err(UriError::UnsupportedScheme(scheme.to_string())),
        };
        if scheme == Scheme::Tel {
            let (number, params) = match rest.split_once(';') {
                Some((n, p)) => (n, Params::parse(p)?),
                None => (rest, Params::new()),
            };
            let valid = !number.is_empty()
                && number
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b"+-.()*#".contains(&b));
            if !valid {
                return Err(UriError::Malformed("bad telephone number"));
            }
            return Ok(SipUri {
                scheme,
                user: Some(number.to_string()),
                password: None,
                host: String::new(),
                port: None,
                params,
                headers: None,
            });
        }
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_string())),
            None => (rest, None),
        };
        let (userinfo, hostpart) = match rest.split_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                if u.is_empty() || u.bytes().any(|b| b"<>\"".contains(&b)) {
                    return Err(UriError::Malformed("bad user part"));
                }
                match u.split_once(':') {
                    Some((user, pw)) => (Some(user.to_string()), Some(pw.to_string())),
                    None => (Some(u.to_string()), None),
                }
            }
        };
        let (hostport, params) = match hostpart.split_once(';') {
            Some((h, p)) => (h, Params::parse(p)?),
            None => (hostpart, Params::new()),
        };
        let (host, port) = parse_hostport(hostport)?;
        Ok(SipUri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// `host[:port]`, as it appears in a Via sent-by.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if self.scheme == Scheme::Tel {
            write!(f, "{}", self.user.as_deref().unwrap_or_default())?;
            return write!(f, "{}", self.params);
        }
        if let Some(user) = &self.user {
            write!(f, "{user}")?;
            if let Some(pw) = &self.password {
                write!(f, ":{pw}")?;
            }
            write!(f, "@")?;
        }
        write!(f, "{}{}", self.host_port(), self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for SipUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SipUri::parse(s)
    }
}

/// Reads `host[:port]`, with IPv6 references in brackets.
pub(crate) fn parse_hostport(text: &str) -> Result<(String, Option<u16>), UriError> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or(UriError::Malformed("unclosed IPv6 reference"))?;
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
        {
            return Err(UriError::Malformed("bad IPv6 reference"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(UriError::Malformed("junk after IPv6 reference"))?,
            ),
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !valid {
            return Err(UriError::Malformed("bad host"));
        }
        (host.to_string(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(
            p.parse::<u16>()
                .map_err(|_| UriError::Malformed("port out of range"))?,
        ),
        Some(_) => return Err(UriError::Malformed("bad port")),
    };
    Ok((host, port))
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_sip_uri_is_read_and_written_back() {
        let text = "sip:alice:secret@example.com:5070;transport=tcp;lr?subject=hi";
        let uri = SipUri::parse(text).unwrap();
        assert_eq!(uri.scheme, Scheme::Sip);
        assert_eq!(uri.user.as_deref(), Some("alice"));
        assert_eq!(uri.password.as_deref(), Some("secret"));
        assert_eq!(uri.host, "example.com");
        assert_eq!(uri.port, Some(5070));
        assert_eq!(uri.params.value("transport"), Some("tcp"));
        assert!(uri.params.contains("LR"));
        assert_eq!(uri.headers.as_deref(), Some("subject=hi"));
        assert_eq!(uri.to_string(), text);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let uri = SipUri::parse("sips:[2001:db8::1]:5061").unwrap();
        assert_eq!(uri.scheme, Scheme::Sips);
        assert_eq!(uri.host, "[2001:db8::1]");
        assert_eq!(uri.port, Some(5061));
    }

    #[test]
    fn tel_uris_carry_the_number_as_user() {
        let uri = SipUri::parse("tel:+1-555-123-4567;phone-context=example.com").unwrap();
        assert_eq!(uri.user.as_deref(), Some("+1-555-123-4567"));
        assert_eq!(
            uri.to_string(),
            "tel:+1-555-123-4567;phone-context=example.com"
        );
    }

    #[test]
    fn other_schemes_are_unsupported_and_junk_is_malformed() {
        assert_eq!(
            SipUri::parse("http://example.com"),
            Err(UriError::UnsupportedScheme("http".into()))
        );
        for junk in [
            "",
            "sip:",
            "sip:@host",
            "sip:a@",
            "sip:host:99999",
            "nocolon",
            "sip:a b",
        ] {
            assert!(
                matches!(SipUri::parse(junk), Err(UriError::Malformed(_))),
                "{junk:?}"
            );
        }
    }
}
