//! SDP (RFC 4566) and the offer/answer model (RFC 3264) for plain-RTP G.711 audio.
//!
//! This module owns the session descriptions in INVITE, 200 and ACK bodies: it reads
//! them ([`SessionDescription::parse`]), writes ours ([`LocalAudio::offer`],
//! [`Negotiated::answer`]) and decides what a call's audio is: which codec, which
//! telephone-event payload type, where to send RTP, and who may send
//! ([`negotiate`] for an offer we received, [`Negotiated::from_answer`] for the answer
//! to ours).
//!
//! It never opens a socket, never knows about dialogs (the caller bumps the session
//! version for a re-INVITE) and never offers anything but `RTP/AVP` audio with PCMU,
//! PCMA and RFC 4733 telephone-events: SRTP, ICE, video and T.38 streams in an offer are
//! parsed and then turned down with port 0, as RFC 3264 §6 says.
//!
//! Parsing is tolerant where real phones and trunks differ (LF line ends, blank lines,
//! lines out of order, attributes it does not know, a missing `s=` or `t=`) and strict
//! where a mistake would send audio to the wrong place or in the wrong format: `v=0`
//! first, a well-formed `o=`, a `c=` with an IP address for every active stream,
//! numeric RTP payload types, well-formed `a=rtpmap`, `a=fmtp` and `a=ptime`, and at
//! most one direction per level. Every error is an [`SdpError`]; no input panics.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use switchboard_sip::sdp::{AudioCodec, Direction, LocalAudio, SessionDescription, negotiate};
//!
//! // A trunk offers PCMA, PCMU and DTMF.
//! let offer = SessionDescription::parse(
//!     b"v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
//!       m=audio 17044 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
//!       a=fmtp:101 0-16\r\n",
//! )
//! .unwrap();
//! let call = negotiate(&offer, &[AudioCodec::Pcmu, AudioCodec::Pcma]).unwrap();
//! assert_eq!(call.codec, AudioCodec::Pcma, "the offer's order wins");
//! assert_eq!(call.telephone_event, Some(101));
//! assert_eq!(call.remote_rtp, "203.0.113.5:17044".parse().unwrap());
//!
//! let local = LocalAudio::new(Ipv4Addr::new(192, 0, 2, 1).into(), 40000).with_session(7, 7);
//! let answer = call.answer(&local).to_bytes();
//! let answer = SessionDescription::parse(&answer).unwrap();
//! assert_eq!(answer.media[0].formats, ["8", "101"]);
//! assert_eq!(answer.direction_of(0), Direction::SendRecv);
//! ```

mod negotiation;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

pub use negotiation::{LocalAudio, Negotiated, is_hold, negotiate};

/// Largest SDP body accepted: the largest SIP message.
pub const MAX_SDP_LEN: usize = crate::message::MAX_MESSAGE_LEN;
/// Most media sections accepted; the answer has one per offered section.
pub const MAX_MEDIA: usize = 32;
/// The telephone-event payload type we offer unless told otherwise.
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// The RFC 4733 events we send and receive: DTMF 0–9, *, #, A–D and flash.
pub const TELEPHONE_EVENTS: &str = "0-16";

/// The codecs Switchboard's media layer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl AudioCodec {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
        }
    }

    /// The encoding name in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
        }
    }

    /// The RTP clock rate, 8000 Hz.
    pub fn clock_rate(self) -> u32 {
        8000
    }

    /// The codec a static payload type stands for when no `a=rtpmap` says otherwise.
    pub fn from_static(payload_type: u8) -> Option<AudioCodec> {
        match payload_type {
            0 => Some(AudioCodec::Pcmu),
            8 => Some(AudioCodec::Pcma),
            _ => None,
        }
    }

    /// The codec an `a=rtpmap` describes, if it is one of ours (mono, 8000 Hz).
    pub fn from_rtpmap(rtpmap: &RtpMap) -> Option<AudioCodec> {
        if rtpmap.clock_rate != 8000 || rtpmap.channels.is_some_and(|c| c != 1) {
            return None;
        }
        [AudioCodec::Pcmu, AudioCodec::Pcma]
            .into_iter()
            .find(|c| rtpmap.encoding.eq_ignore_ascii_case(c.encoding_name()))
    }
}

/// Who sends media on a stream, from the point of view of whoever wrote the SDP
/// (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Both ways; what an SDP without a direction attribute means.
    #[default]
    SendRecv,
    /// The writer only sends: it is putting the other side on hold.
    SendOnly,
    /// The writer only receives.
    RecvOnly,
    /// Neither side sends.
    Inactive,
}

impl Direction {
    /// The attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Reads a direction attribute name, case-insensitively.
    pub fn parse(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_str()))
    }

    /// Whether the writer sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction the other side answers with (RFC 3264 §6.1): `sendonly` becomes
    /// `recvonly` and the reverse; `sendrecv` and `inactive` stay.
    pub fn mirror(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// What both allow: sending only if both send, receiving only if both receive.
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an SDP body was refused, or why no audio could be agreed on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// Bigger than [`MAX_SDP_LEN`].
    #[error("SDP of {len} bytes exceeds {MAX_SDP_LEN}")]
    TooLarge {
        /// The size offered.
        len: usize,
    },
    /// No lines at all.
    #[error("empty SDP")]
    Empty,
    /// A line that cannot be read; `line` counts from 1.
    #[error("SDP line {line}: {reason}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `v=` is not 0.
    #[error("SDP version is not 0")]
    UnsupportedVersion,
    /// There is no `o=` line.
    #[error("SDP has no o= line")]
    MissingOrigin,
    /// An active stream has no `c=` line, neither its own nor the session's.
    #[error("media section {media} has no c= line and the session has none")]
    MissingConnection {
        /// The media section's index, from 0.
        media: usize,
    },
    /// More than [`MAX_MEDIA`] media sections.
    #[error("more than {MAX_MEDIA} media sections")]
    TooManyMedia,
    /// No active `RTP/AVP` audio stream (only video, SRTP, ICE, or all ports 0).
    #[error("no active RTP/AVP audio stream")]
    NoAudioStream,
    /// Audio streams, but none with a codec we support.
    #[error("no codec in common")]
    NoCommonCodec,
    /// The answer turned our audio stream down with port 0.
    #[error("the answer rejected the audio stream")]
    Rejected,
    /// The answer does not match the offer's media sections (RFC 3264 §6).
    #[error("the answer does not match the offer: {0}")]
    AnswerMismatch(&'static str),
}

impl SdpError {
    /// The SIP status to answer an INVITE with when its SDP fails this way: 400 for a
    /// malformed body, 488 Not Acceptable Here when it is readable but unacceptable.
    pub fn status(&self) -> u16 {
        match self {
            SdpError::NoAudioStream
            | SdpError::NoCommonCodec
            | SdpError::Rejected
            | SdpError::AnswerMismatch(_) => 488,
            _ => 400,
        }
    }
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The user name, `-` when there is none.
    pub username: String,
    /// Identifies the session; constant over the call.
    pub session_id: u64,
    /// Bumped by the writer whenever its description changes (RFC 3264 §8).
    pub session_version: u64,
    /// The network type, `IN`.
    pub net_type: String,
    /// The address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// The address of the machine that wrote the SDP (not where media goes).
    pub address: String,
}

/// A `c=` line: where RTP goes. `0.0.0.0` means hold in RFC 2543 style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The unicast address (a multicast TTL suffix is not kept).
    pub address: IpAddr,
}

impl Connection {
    /// Whether this is the RFC 2543 hold address (`0.0.0.0`, or `::`).
    pub fn is_hold(&self) -> bool {
        self.address.is_unspecified()
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.address.is_ipv4() { "IP4" } else { "IP6" };
        write!(f, "IN {kind} {}", self.address)
    }
}

/// One `a=` line: `a=name` or `a=name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name (`rtpmap`, `sendonly`, `candidate`…).
    pub name: String,
    /// What follows the colon; `None` for a flag attribute.
    pub value: Option<String>,
}

impl Attribute {
    /// A flag attribute such as `sendrecv`.
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.to_string(),
            value: None,
        }
    }

    /// A `name:value` attribute.
    pub fn new(name: &str, value: impl fmt::Display) -> Attribute {
        Attribute {
            name: name.to_string(),
            value: Some(value.to_string()),
        }
    }
}

/// Any other line (`t=`, `b=`, `i=`, `k=`…), kept as written so it round-trips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type letter.
    pub kind: char,
    /// Everything after `=`, trimmed.
    pub value: String,
}

/// An `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type, 0–127.
    pub payload_type: u8,
    /// The encoding name as written (`PCMU`, `opus`, `telephone-event`…).
    pub encoding: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The channel count, when written.
    pub channels: Option<u16>,
}

impl RtpMap {
    /// Reads the value of an `a=rtpmap` attribute.
    pub fn parse(value: &str) -> Result<RtpMap, &'static str> {
        let (pt, rest) = value
            .split_once([' ', '\t'])
            .ok_or("a=rtpmap lacks an encoding")?;
        let payload_type = parse_payload_type(pt).ok_or("a=rtpmap payload type is not 0-127")?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().unwrap_or_default().trim();
        if encoding.is_empty() || encoding.contains([' ', '\t']) {
            return Err("a=rtpmap encoding name is malformed");
        }
        let clock_rate = parts
            .next()
            .and_then(|r| parse_digits::<u32>(r.trim()))
            .filter(|r| *r > 0)
            .ok_or("a=rtpmap clock rate is missing or not a number")?;
        let channels = match parts.next() {
            None => None,
            Some(c) => Some(
                parse_digits::<u16>(c.trim()).ok_or("a=rtpmap channel count is not a number")?,
            ),
        };
        if parts.next().is_some() {
            return Err("a=rtpmap has too many fields");
        }
        Ok(RtpMap {
            payload_type,
            encoding: encoding.to_string(),
            clock_rate,
            channels,
        })
    }

    fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event") && self.clock_rate == 8000
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

/// One `m=` section and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `image`, `application`…
    pub media: String,
    /// The transport port; 0 means the stream is turned down.
    pub port: u16,
    /// The `/<number of ports>` suffix, when written.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`…
    pub protocol: String,
    /// The formats: RTP payload types for RTP protocols.
    pub formats: Vec<String>,
    /// The section's own `c=`, overriding the session's.
    pub connection: Option<Connection>,
    /// The section's `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// The section's other lines (`i=`, `b=`, `k=`…), in order.
    pub other: Vec<Line>,
}

impl MediaDescription {
    /// The first value of attribute `name` (`Some("")` for a flag).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }

    /// Whether the protocol is an RTP profile.
    pub fn is_rtp(&self) -> bool {
        is_rtp_protocol(&self.protocol)
    }

    /// Whether this is plain-RTP audio we could take part in: `audio`, `RTP/AVP`,
    /// port not 0.
    pub fn is_active_rtp_audio(&self) -> bool {
        self.port != 0
            && self.media.eq_ignore_ascii_case("audio")
            && self.protocol.eq_ignore_ascii_case("RTP/AVP")
    }

    /// The formats as RTP payload types, in the offered order.
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats
            .iter()
            .filter_map(|f| parse_payload_type(f))
            .collect()
    }

    /// The `a=rtpmap` of a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        self.attributes("rtpmap")
            .filter_map(|v| RtpMap::parse(v).ok())
            .find(|m| m.payload_type == payload_type)
    }

    /// The parameters of the `a=fmtp` of a payload type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes("fmtp").find_map(|v| {
            let (format, params) = v.split_once([' ', '\t']).unwrap_or((v, ""));
            (parse_payload_type(format) == Some(payload_type)).then(|| params.trim())
        })
    }

    /// `a=ptime`, in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime").and_then(parse_digits)
    }

    /// The section's own direction attribute.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// The codec a payload type stands for: its `a=rtpmap`, else the static table.
    pub fn codec(&self, payload_type: u8) -> Option<AudioCodec> {
        match self.rtpmap(payload_type) {
            Some(map) => AudioCodec::from_rtpmap(&map),
            None => AudioCodec::from_static(payload_type),
        }
    }

    /// The first listed payload type that is `telephone-event/8000`.
    pub fn telephone_event(&self) -> Option<u8> {
        self.payload_types()
            .into_iter()
            .find(|pt| self.rtpmap(*pt).is_some_and(|m| m.is_telephone_event()))
    }

    fn attributes<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or_default())
    }
}

/// A parsed or built SDP body. `v=` is always 0 and not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line.
    pub origin: Origin,
    /// The `s=` line, `-` by convention.
    pub session_name: String,
    /// The session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`t=`, `b=`, `i=`…), in order.
    pub other: Vec<Line>,
    /// The `m=` sections, in order.
    pub media: Vec<MediaDescription>,
}

/// Per-level bookkeeping while parsing, so conflicts are found in linear time.
#[derive(Default)]
struct LevelCheck {
    direction: Option<Direction>,
    rtpmaps: HashMap<u8, RtpMap>,
    ptime: Option<u32>,
}

impl LevelCheck {
    fn check(&mut self, attribute: &Attribute, rtp: bool) -> Result<(), &'static str> {
        let value = attribute.value.as_deref().unwrap_or_default();
        let name = attribute.name.to_ascii_lowercase();
        if let Some(direction) = Direction::parse(&name) {
            if attribute.value.is_some() {
                return Err("a direction attribute takes no value");
            }
            if self.direction.is_some_and(|d| d != direction) {
                return Err("conflicting direction attributes");
            }
            self.direction = Some(direction);
            return Ok(());
        }
        match name.as_str() {
            "rtpmap" => {
                let map = RtpMap::parse(value)?;
                match self.rtpmaps.get(&map.payload_type) {
                    Some(existing) if *existing != map => {
                        return Err("conflicting a=rtpmap for one payload type");
                    }
                    Some(_) => {}
                    None => {
                        self.rtpmaps.insert(map.payload_type, map);
                    }
                }
            }
            "fmtp" => {
                let format = value.split([' ', '\t']).next().unwrap_or_default();
                if format.is_empty() {
                    return Err("a=fmtp lacks a format");
                }
                if rtp && parse_payload_type(format).is_none() {
                    return Err("a=fmtp payload type is not 0-127");
                }
            }
            "ptime" => {
                let ptime = parse_digits::<u32>(value)
                    .filter(|p| *p > 0)
                    .ok_or("a=ptime is not a positive number of milliseconds")?;
                if self.ptime.is_some_and(|p| p != ptime) {
                    return Err("conflicting a=ptime attributes");
                }
                self.ptime = Some(ptime);
            }
            _ => {}
        }
        Ok(())
    }
}

impl SessionDescription {
    /// Parses an SDP body (see the [module docs](self) for what is tolerated).
    pub fn parse(bytes: &[u8]) -> Result<SessionDescription, SdpError> {
        if bytes.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge { len: bytes.len() });
        }
        // Only s=, i= and attribute values may be in another charset; the lines that
        // matter are ASCII, so lossy decoding cannot make a bad one look good.
        let text = String::from_utf8_lossy(bytes);
        let mut saw_version = false;
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut attributes = Vec::new();
        let mut other = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();
        let mut session_check = LevelCheck::default();
        let mut media_check = LevelCheck::default();

        for (index, raw) in text.split('\n').enumerate() {
            let number = index + 1;
            let fail = |reason| SdpError::Line {
                line: number,
                reason,
            };
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if line.chars().any(|c| c.is_control() && c != '\t') {
                return Err(fail("control character"));
            }
            let bytes = line.as_bytes();
            if bytes.len() < 2 || !bytes[0].is_ascii_lowercase() || bytes[1] != b'=' {
                return Err(fail("expected <letter>=<value>"));
            }
            let kind = bytes[0] as char;
            let value = line[2..].trim();
            if !saw_version {
                if kind != 'v' {
                    return Err(fail("SDP must start with v="));
                }
                if value != "0" {
                    return Err(SdpError::UnsupportedVersion);
                }
                saw_version = true;
                continue;
            }
            match (kind, media.last_mut()) {
                ('v', _) => return Err(fail("second v= line")),
                ('o', Some(_)) => return Err(fail("o= inside a media section")),
                ('o', None) => {
                    if origin.is_some() {
                        return Err(fail("second o= line"));
                    }
                    origin = Some(parse_origin(value).map_err(fail)?);
                }
                ('s', None) if session_name.is_none() => session_name = Some(value.to_string()),
                ('c', level) => {
                    let parsed = parse_connection(value).map_err(fail)?;
                    let slot = match level {
                        Some(m) => &mut m.connection,
                        None => &mut connection,
                    };
                    if slot.is_some() {
                        return Err(fail("second c= line at one level"));
                    }
                    *slot = Some(parsed);
                }
                ('m', _) => {
                    if media.len() == MAX_MEDIA {
                        return Err(SdpError::TooManyMedia);
                    }
                    media.push(parse_media(value).map_err(fail)?);
                    media_check = LevelCheck::default();
                }
                ('a', level) => {
                    let attribute = parse_attribute(value).map_err(fail)?;
                    match level {
                        Some(m) => {
                            media_check.check(&attribute, m.is_rtp()).map_err(fail)?;
                            m.attributes.push(attribute);
                        }
                        None => {
                            session_check.check(&attribute, true).map_err(fail)?;
                            attributes.push(attribute);
                        }
                    }
                }
                (kind, level) => {
                    let line = Line {
                        kind,
                        value: value.to_string(),
                    };
                    match level {
                        Some(m) => m.other.push(line),
                        None => other.push(line),
                    }
                }
            }
        }
        if !saw_version {
            return Err(SdpError::Empty);
        }
        let origin = origin.ok_or(SdpError::MissingOrigin)?;
        if connection.is_none()
            && let Some(index) = media
                .iter()
                .position(|m| m.port != 0 && m.connection.is_none())
        {
            return Err(SdpError::MissingConnection { media: index });
        }
        Ok(SessionDescription {
            origin,
            session_name: session_name.unwrap_or_else(|| "-".to_string()),
            connection,
            attributes,
            other,
            media,
        })
    }

    /// Serializes the description with CRLF line ends, in RFC 4566 order.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The `c=` that applies to media section `index`: its own, else the session's.
    pub fn connection_of(&self, index: usize) -> Option<Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection)
            .or(self.connection)
    }

    /// The direction that applies to media section `index`: its own attribute, else
    /// the session's, else `sendrecv`.
    pub fn direction_of(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(MediaDescription::direction)
            .or_else(|| direction_of(&self.attributes))
            .unwrap_or_default()
    }

    /// The index of the first active `RTP/AVP` audio section.
    pub fn audio(&self) -> Option<usize> {
        self.media
            .iter()
            .position(MediaDescription::is_active_rtp_audio)
    }

    /// The first value of session-level attribute `name` (`Some("")` for a flag).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(
            f,
            "v=0\r\no={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?;
        let name = if self.session_name.is_empty() {
            "-"
        } else {
            &self.session_name
        };
        write!(f, "s={name}\r\n")?;
        let (early, late): (Vec<&Line>, Vec<&Line>) =
            self.other.iter().partition(|l| "iuep".contains(l.kind));
        write_lines(f, &early)?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        let has_timing = late.iter().any(|l| l.kind == 't');
        let bandwidth = late.iter().take_while(|l| l.kind == 'b').count();
        write_lines(f, &late[..bandwidth])?;
        if !has_timing {
            f.write_str("t=0 0\r\n")?;
        }
        write_lines(f, &late[bandwidth..])?;
        write_attributes(f, &self.attributes)?;
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(count) = m.port_count {
                write!(f, "/{count}")?;
            }
            write!(f, " {}", m.protocol)?;
            for format in &m.formats {
                write!(f, " {format}")?;
            }
            f.write_str("\r\n")?;
            let (info, rest): (Vec<&Line>, Vec<&Line>) =
                m.other.iter().partition(|l| l.kind == 'i');
            write_lines(f, &info)?;
            if let Some(c) = &m.connection {
                write!(f, "c={c}\r\n")?;
            }
            write_lines(f, &rest)?;
            write_attributes(f, &m.attributes)?;
        }
        Ok(())
    }
}

fn write_lines(f: &mut fmt::Formatter<'_>, lines: &[&Line]) -> fmt::Result {
    for line in lines {
        write!(f, "{}={}\r\n", line.kind, line.value)?;
    }
    Ok(())
}

fn write_attributes(f: &mut fmt::Formatter<'_>, attributes: &[Attribute]) -> fmt::Result {
    for a in attributes {
        match &a.value {
            Some(v) => write!(f, "a={}:{v}\r\n", a.name)?,
            None => write!(f, "a={}\r\n", a.name)?,
        }
    }
    Ok(())
}

fn find_attribute<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or_default())
}

fn direction_of(attributes: &[Attribute]) -> Option<Direction> {
    attributes
        .iter()
        .filter(|a| a.value.is_none())
        .find_map(|a| Direction::parse(&a.name))
}

fn is_rtp_protocol(protocol: &str) -> bool {
    protocol.to_ascii_uppercase().contains("RTP/")
}

/// Digits only: `parse` alone would accept a leading `+`.
fn parse_digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_payload_type(text: &str) -> Option<u8> {
    parse_digits::<u8>(text).filter(|pt| *pt <= 127)
}

fn parse_origin(value: &str) -> Result<Origin, &'static str> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [username, id, version, net_type, addr_type, address] = fields[..] else {
        return Err("o= needs six fields");
    };
    Ok(Origin {
        username: username.to_string(),
        session_id: parse_digits(id).ok_or("o= session id is not a number")?,
        session_version: parse_digits(version).ok_or("o= session version is not a number")?,
        net_type: net_type.to_string(),
        addr_type: addr_type.to_string(),
        address: address.to_string(),
    })
}

fn parse_connection(value: &str) -> Result<Connection, &'static str> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [net_type, addr_type, address] = fields[..] else {
        return Err("c= needs three fields");
    };
    if !net_type.eq_ignore_ascii_case("IN") {
        return Err("c= network type is not IN");
    }
    if !addr_type.eq_ignore_ascii_case("IP4") && !addr_type.eq_ignore_ascii_case("IP6") {
        return Err("c= address type is not IP4 or IP6");
    }
    // A multicast address carries /ttl[/count]; the address is what matters.
    let address = address.split('/').next().unwrap_or_default();
    let address = address
        .parse()
        .map_err(|_| "c= address is not an IP address")?;
    Ok(Connection { address })
}

fn parse_media(value: &str) -> Result<MediaDescription, &'static str> {
    let mut fields = value.split_whitespace();
    let media = fields.next().ok_or("m= is empty")?;
    let port = fields.next().ok_or("m= lacks a port")?;
    let protocol = fields.next().ok_or("m= lacks a protocol")?;
    let formats: Vec<String> = fields.map(str::to_string).collect();
    let (port, port_count) = match port.split_once('/') {
        Some((p, count)) => (
            p,
            Some(parse_digits::<u16>(count).ok_or("m= port count is not a number")?),
        ),
        None => (port, None),
    };
    let port = parse_digits::<u16>(port).ok_or("m= port is not a number 0-65535")?;
    if is_rtp_protocol(protocol) && formats.iter().any(|f| parse_payload_type(f).is_none()) {
        return Err("m= payload type is not 0-127");
    }
    if port != 0 && formats.is_empty() {
        return Err("m= lists no formats");
    }
    Ok(MediaDescription {
        media: media.to_string(),
        port,
        port_count,
        protocol: protocol.to_string(),
        formats,
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

fn parse_attribute(value: &str) -> Result<Attribute, &'static str> {
    let (name, value) = match value.split_once(':') {
        Some((name, value)) => (name.trim(), Some(value.trim().to_string())),
        None => (value, None),
    };
    if name.is_empty() {
        return Err("a= has no attribute name");
    }
    Ok(Attribute {
        name: name.to_string(),
        value,
    })
}
