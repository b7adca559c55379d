//! HTTP Digest authentication for SIP (RFC 2617, RFC 3261 §22, RFC 8760 SHA-256): the
//! server side that challenges desk phones and verifies their credentials, and the
//! client side that answers a trunk provider's 401/407.
//!
//! Supported: algorithms MD5 and SHA-256, `qop=auth` with nonce counts, and the
//! RFC 2069 form without qop that old phones send. Not supported: `-sess` algorithms and
//! `qop=auth-int`. Nonces are random, remembered with the time they were issued (time
//! is passed in), expire after a configurable lifetime and are refused with
//! `stale=true` when a correct answer uses an expired or reused one.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::message::{Message, Via, new_branch};

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, what nearly every desk phone speaks.
    Md5,
    /// `SHA-256` (RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The name in `algorithm=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn parse(text: &str) -> Result<Algorithm, DigestError> {
        if text.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if text.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(DigestError::UnsupportedAlgorithm(text.to_string()))
        }
    }

    /// Hex digest of `data`.
    pub fn hash(self, data: &str) -> String {
        use md5::Digest as _;
        use sha2::Digest as _;
        match self {
            Algorithm::Md5 => hex(&md5::Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&sha2::Sha256::digest(data.as_bytes())),
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a digest header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    /// The header is not `Digest k=v, …`.
    #[error("malformed digest header: {0}")]
    Malformed(&'static str),
    /// A parameter the scheme requires is absent.
    #[error("digest header lacks {0}")]
    Missing(&'static str),
    /// An algorithm other than MD5 or SHA-256.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The response carries no challenge we can answer.
    #[error("no usable challenge in the response")]
    NoChallenge,
}

/// Reads `Digest a="b", c=d` into pairs, unquoting values.
fn parse_params(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    let value = value.trim();
    let (scheme, rest) = value
        .split_once([' ', '\t'])
        .ok_or(DigestError::Malformed("no parameters"))?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::Malformed("scheme is not Digest"));
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || name.is_empty() {
            return Err(DigestError::Malformed("parameter without ="));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => val.push(c),
                }
            }
            if !closed {
                return Err(DigestError::Malformed("unclosed quote"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((name.to_ascii_lowercase(), val));
    }
    Ok(out)
}

fn find<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space, e.g. the domain.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Opaque data to echo back.
    pub opaque: Option<String>,
    /// Which hash.
    pub algorithm: Algorithm,
    /// Whether `qop=auth` is offered.
    pub qop_auth: bool,
    /// Whether the previous answer was right but its nonce stale.
    pub stale: bool,
}

impl Challenge {
    /// Reads a challenge header value.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let params = parse_params(value)?;
        Ok(Challenge {
            realm: find(&params, "realm")
                .ok_or(DigestError::Missing("realm"))?
                .to_string(),
            nonce: find(&params, "nonce")
                .ok_or(DigestError::Missing("nonce"))?
                .to_string(),
            opaque: find(&params, "opaque").map(str::to_string),
            algorithm: find(&params, "algorithm")
                .map(Algorithm::parse)
                .transpose()?
                .unwrap_or(Algorithm::Md5),
            qop_auth: find(&params, "qop")
                .is_some_and(|q| q.split(',').any(|v| v.trim().eq_ignore_ascii_case("auth"))),
            stale: find(&params, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}, algorithm={}",
            quote(&self.realm),
            quote(&self.nonce),
            self.algorithm.as_str()
        )?;
        if self.qop_auth {
            write!(f, ", qop=\"auth\"")?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if self.stale {
            write!(f, ", stale=true")?;
        }
        Ok(())
    }
}

/// An `Authorization` / `Proxy-Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Who.
    pub username: String,
    /// The realm answered.
    pub realm: String,
    /// The nonce answered.
    pub nonce: String,
    /// The digest-uri (the Request-URI).
    pub uri: String,
    /// The hex response digest.
    pub response: String,
    /// Which hash.
    pub algorithm: Algorithm,
    /// Client nonce (with qop).
    pub cnonce: Option<String>,
    /// `auth`, or `None` for the RFC 2069 form.
    pub qop: Option<String>,
    /// Nonce count (with qop).
    pub nc: Option<u32>,
    /// Echoed opaque.
    pub opaque: Option<String>,
}

impl Credentials {
    /// Reads a credentials header value.
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        let params = parse_params(value)?;
        let get = |name: &'static str| {
            find(&params, name)
                .map(str::to_string)
                .ok_or(DigestError::Missing(name))
        };
        let qop = find(&params, "qop").map(str::to_string);
        let (cnonce, nc) = if qop.is_some() {
            let nc = find(&params, "nc").ok_or(DigestError::Missing("nc"))?;
            if nc.len() != 8 {
                return Err(DigestError::Malformed("nc is not 8 hex digits"));
            }
            let nc =
                u32::from_str_radix(nc, 16).map_err(|_| DigestError::Malformed("nc is not hex"))?;
            (Some(get("cnonce")?), Some(nc))
        } else {
            (None, None)
        };
        Ok(Credentials {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?,
            algorithm: find(&params, "algorithm")
                .map(Algorithm::parse)
                .transpose()?
                .unwrap_or(Algorithm::Md5),
            cnonce,
            qop,
            nc,
            opaque: find(&params, "opaque").map(str::to_string),
        })
    }

    /// The response digest these credentials should carry for `method`, given HA1.
    pub fn expected_response(&self, ha1: &str, method: &str) -> String {
        let alg = self.algorithm;
        let ha2 = alg.hash(&format!("{method}:{}", self.uri));
        match (&self.qop, &self.cnonce, self.nc) {
            (Some(qop), Some(cnonce), Some(nc)) => alg.hash(&format!(
                "{ha1}:{}:{nc:08x}:{cnonce}:{qop}:{ha2}",
                self.nonce
            )),
            _ => alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response),
            self.algorithm.as_str()
        )?;
        if let (Some(qop), Some(cnonce), Some(nc)) = (&self.qop, &self.cnonce, self.nc) {
            write!(f, ", qop={qop}, nc={nc:08x}, cnonce={}", quote(cnonce))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        Ok(())
    }
}

/// HA1 = H(username:realm:password).
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{username}:{realm}:{password}"))
}

/// What the server knows about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// The plain password.
    Password(String),
    /// A stored HA1 (hex); only usable with the algorithm it was made with.
    Ha1(String),
}

/// Why credentials were refused (answer with a fresh challenge, or 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The header could not be read.
    Malformed(DigestError),
    /// The digest-uri is not the Request-URI.
    UriMismatch,
    /// The lookup knows no such user.
    UnknownUser,
    /// The stored HA1 was made with another algorithm.
    AlgorithmMismatch,
    /// The response digest is wrong: wrong password.
    WrongResponse,
}

/// The outcome of [`DigestServer::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid credentials for `username`.
    Authorized {
        /// The authenticated user.
        username: String,
    },
    /// No credentials for our realm: challenge.
    Missing,
    /// The password was right but the nonce expired or was replayed: challenge with
    /// `stale=true` so the client retries without asking its user.
    Stale,
    /// Wrong credentials: challenge again (or 403 after repeated failures).
    Rejected(Rejection),
}

#[derive(Debug, Clone, Copy)]
struct NonceState {
    issued: Instant,
    last_nc: u32,
}

/// The challenging side: a registrar for desk phones, or a trunk's inbound guard.
#[derive(Debug)]
pub struct DigestServer {
    realm: String,
    nonce_lifetime: Duration,
    max_nonces: usize,
    proxy: bool,
    algorithms: Vec<Algorithm>,
    nonces: HashMap<String, NonceState>,
}

impl DigestServer {
    /// A registrar-style server (401, `WWW-Authenticate`) for `realm`, offering SHA-256
    /// then MD5, with nonces living five minutes.
    pub fn new(realm: &str) -> Self {
        DigestServer {
            realm: realm.to_string(),
            nonce_lifetime: Duration::from_secs(300),
            max_nonces: 10_000,
            proxy: false,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonces: HashMap::new(),
        }
    }

    /// Challenges as a proxy: 407 with `Proxy-Authenticate`, reading
    /// `Proxy-Authorization`.
    pub fn as_proxy(mut self) -> Self {
        self.proxy = true;
        self
    }

    /// How long a nonce stays fresh.
    pub fn with_nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// Which algorithms to offer, preferred first (each gets its own header).
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A fresh challenge for `algorithm`, remembering its nonce.
    pub fn challenge(&mut self, now: Instant, algorithm: Algorithm, stale: bool) -> Challenge {
        self.forget_expired(now);
        if self.nonces.len() >= self.max_nonces
            && let Some(oldest) = self
                .nonces
                .iter()
                .min_by_key(|(_, s)| s.issued)
                .map(|(n, _)| n.clone())
        {
            self.nonces.remove(&oldest);
        }
        let nonce = random_hex(16);
        self.nonces.insert(
            nonce.clone(),
            NonceState {
                issued: now,
                last_nc: 0,
            },
        );
        Challenge {
            realm: self.realm.clone(),
            nonce,
            opaque: None,
            algorithm,
            qop_auth: true,
            stale,
        }
    }

    /// The 401 (or 407) answering `request`, with one challenge per algorithm.
    pub fn challenge_response(&mut self, now: Instant, request: &Message, stale: bool) -> Message {
        let (status, header) = if self.proxy {
            (407, "Proxy-Authenticate")
        } else {
            (401, "WWW-Authenticate")
        };
        let mut response = Message::response_to(request, status);
        for algorithm in self.algorithms.clone() {
            let challenge = self.challenge(now, algorithm, stale);
            response.push_header(header, challenge);
        }
        response
    }

    /// Checks `request`'s credentials for our realm. `lookup` gives the secret of a
    /// username, or `None` for unknown users.
    pub fn verify(
        &mut self,
        now: Instant,
        request: &Message,
        lookup: impl FnOnce(&str) -> Option<Secret>,
    ) -> Verdict {
        let header = if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let mut first_error = None;
        let mut mine = None;
        for value in request.header_values(header) {
            match Credentials::parse(value) {
                Ok(c) if c.realm == self.realm => {
                    mine = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some(creds) = mine else {
            return match first_error {
                Some(e) => Verdict::Rejected(Rejection::Malformed(e)),
                None => Verdict::Missing,
            };
        };
        let uri_matches = match (request.uri(), crate::message::SipUri::parse(&creds.uri)) {
            (Some(req), Ok(theirs)) => *req == theirs,
            (Some(req), Err(_)) => req.to_string() == creds.uri,
            (None, _) => false,
        };
        if !uri_matches {
            return Verdict::Rejected(Rejection::UriMismatch);
        }
        let Some(secret) = lookup(&creds.username) else {
            return Verdict::Rejected(Rejection::UnknownUser);
        };
        let ha1 = match secret {
            Secret::Password(p) => ha1(creds.algorithm, &creds.username, &self.realm, &p),
            Secret::Ha1(h) if h.len() == creds.algorithm.hex_len() => h.to_ascii_lowercase(),
            Secret::Ha1(_) => return Verdict::Rejected(Rejection::AlgorithmMismatch),
        };
        let method = request.method().map(|m| m.as_str()).unwrap_or_default();
        let expected = creds.expected_response(&ha1, method);
        if !constant_time_eq(
            expected.as_bytes(),
            creds.response.to_ascii_lowercase().as_bytes(),
        ) {
            return Verdict::Rejected(Rejection::WrongResponse);
        }
        let lifetime = self.nonce_lifetime;
        let Some(state) = self.nonces.get_mut(&creds.nonce) else {
            return Verdict::Stale;
        };
        if now.saturating_duration_since(state.issued) > lifetime {
            self.nonces.remove(&creds.nonce);
            return Verdict::Stale;
        }
        match creds.nc {
            Some(nc) if nc > state.last_nc => state.last_nc = nc,
            Some(_) => return Verdict::Stale,
            // Without qop a nonce cannot be counted: allow it once.
            None => {
                self.nonces.remove(&creds.nonce);
            }
        }
        Verdict::Authorized {
            username: creds.username,
        }
    }

    fn forget_expired(&mut self, now: Instant) {
        let lifetime = self.nonce_lifetime;
        self.nonces
            .retain(|_, s| now.saturating_duration_since(s.issued) <= lifetime);
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex(bytes: usize) -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// The answering side: a trunk account or a registering client.
#[derive(Debug, Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    nonce_counts: HashMap<String, u32>,
}

impl DigestClient {
    /// Credentials for one account.
    pub fn new(username: &str, password: &str) -> Self {
        DigestClient {
            username: username.to_string(),
            password: password.to_string(),
            nonce_counts: HashMap::new(),
        }
    }

    /// Answers `challenge` for a request with `method` and Request-URI `uri`, counting
    /// uses of the nonce.
    pub fn credentials(&mut self, challenge: &Challenge, method: &str, uri: &str) -> Credentials {
        let ha1 = ha1(
            challenge.algorithm,
            &self.username,
            &challenge.realm,
            &self.password,
        );
        let (qop, cnonce, nc) = if challenge.qop_auth {
            let nc = self
                .nonce_counts
                .entry(challenge.nonce.clone())
                .or_insert(0);
            *nc += 1;
            (Some("auth".to_string()), Some(random_hex(8)), Some(*nc))
        } else {
            (None, None, None)
        };
        let mut creds = Credentials {
            username: self.username.clone(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.to_string(),
            response: String::new(),
            algorithm: challenge.algorithm,
            cnonce,
            qop,
            nc,
            opaque: challenge.opaque.clone(),
        };
        creds.response = creds.expected_response(&ha1, method);
        creds
    }

    /// The retry of `request` after `response` (401 or 407): the strongest offered
    /// challenge answered, CSeq incremented, a new Via branch (it is a new transaction).
    pub fn authorize(
        &mut self,
        request: &Message,
        response: &Message,
    ) -> Result<Message, DigestError> {
        let (challenge_header, credentials_header) = match response.status() {
            Some(407) => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => ("WWW-Authenticate", "Authorization"),
        };
        let challenge = response
            .header_values(challenge_header)
            .into_iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .max_by_key(|c| c.algorithm == Algorithm::Sha256)
            .ok_or(DigestError::NoChallenge)?;
        let method = request.method().ok_or(DigestError::NoChallenge)?.clone();
        let uri = request.uri().ok_or(DigestError::NoChallenge)?.to_string();
        let creds = self.credentials(&challenge, method.as_str(), &uri);
        let mut retry = request.clone();
        let kept: Vec<String> = retry
            .header_values(credentials_header)
            .into_iter()
            .filter(|v| Credentials::parse(v).is_ok_and(|c| c.realm != challenge.realm))
            .map(str::to_string)
            .collect();
        retry.remove_header(credentials_header);
        for value in kept {
            retry.push_header(credentials_header, value);
        }
        retry.push_header(credentials_header, creds);
        if let Some(mut cseq) = request.cseq() {
            cseq.number += 1;
            retry.set_header("CSeq", cseq);
        }
        if let Some(mut via) = request.via() {
            via.params.set("branch", Some(&new_branch()));
            via.params.remove("received");
            if via.has_rport() {
                via.params.set("rport", None);
            }
            retry.set_top_via(&Via { ..via });
        }
        Ok(retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example_digest() {
        // RFC 2617 §3.5, computed with the example's values.
        let creds = Credentials {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            response: String::new(),
            algorithm: Algorithm::Md5,
            cnonce: Some("0a4f113b".into()),
            qop: Some("auth".into()),
            nc: Some(1),
            opaque: None,
        };
        let ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(
            creds.expected_response(&ha1, "GET"),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn rfc_7616_sha256_example_digest() {
        let creds = Credentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            response: String::new(),
            algorithm: Algorithm::Sha256,
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
            qop: Some("auth".into()),
            nc: Some(1),
            opaque: None,
        };
        let ha1 = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            creds.expected_response(&ha1, "GET"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn challenges_and_credentials_survive_a_round_trip() {
        let c = Challenge {
            realm: "switchboard".into(),
            nonce: "abc".into(),
            opaque: Some("o\"q".into()),
            algorithm: Algorithm::Sha256,
            qop_auth: true,
            stale: true,
        };
        assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
        let creds = DigestClient::new("1001", "pw").credentials(&c, "REGISTER", "sip:switchboard");
        assert_eq!(Credentials::parse(&creds.to_string()).unwrap(), creds);
        assert!(Challenge::parse("Basic realm=\"x\"").is_err());
        assert!(Credentials::parse("Digest username=\"a").is_err());
    }
}
