//! Offer/answer (RFC 3264): what we offer, what we answer, and what a call's audio is
//! once both sides have spoken. Everything here works on parsed
//! [`SessionDescription`]s; nothing here reads or writes SDP text.

use std::net::{IpAddr, SocketAddr};

use super::{
    Attribute, AudioCodec, Connection, Direction, Line, MediaDescription, Origin, RtpMap, SdpError,
    SessionDescription, TELEPHONE_EVENT_PT, TELEPHONE_EVENTS,
};

/// Whether `sdp` puts its peer on hold: its audio stream is `sendonly` or `inactive`,
/// or its address is `0.0.0.0` (RFC 2543 style, still sent by older PBXs).
pub fn is_hold(sdp: &SessionDescription) -> bool {
    let Some(index) = sdp.audio() else {
        return false;
    };
    !sdp.direction_of(index).receives() || sdp.connection_of(index).is_some_and(|c| c.is_hold())
}

/// What we will put in our own SDP: the local RTP address, the session's `o=`
/// numbers, codecs in order of preference, DTMF, direction and packetization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAudio {
    /// Our RTP address (also written in `o=`).
    pub address: IpAddr,
    /// Our RTP port (RTCP is the next port up, RFC 3550).
    pub rtp_port: u16,
    /// `o=` session id, constant over the call.
    pub session_id: u64,
    /// `o=` session version: bump it for every new offer or answer in the dialog.
    pub session_version: u64,
    /// The codecs we offer, most preferred first.
    pub codecs: Vec<AudioCodec>,
    /// The telephone-event payload type we offer, or `None` for no RFC 4733 DTMF.
    pub telephone_event: Option<u8>,
    /// Our direction: `SendOnly` to put the other side on hold.
    pub direction: Direction,
    /// Packetization time in milliseconds.
    pub ptime: u32,
}

impl LocalAudio {
    /// PCMU then PCMA, telephone-event 101, `sendrecv`, 20 ms, and a random session id
    /// (version equal to it, as RFC 4566 suggests for a fresh session).
    pub fn new(address: IpAddr, rtp_port: u16) -> LocalAudio {
        let id = u64::from(rand::random::<u32>());
        LocalAudio {
            address,
            rtp_port,
            session_id: id,
            session_version: id,
            codecs: vec![AudioCodec::Pcmu, AudioCodec::Pcma],
            telephone_event: Some(TELEPHONE_EVENT_PT),
            direction: Direction::SendRecv,
            ptime: 20,
        }
    }

    /// Sets the `o=` session id and version.
    pub fn with_session(mut self, id: u64, version: u64) -> LocalAudio {
        self.session_id = id;
        self.session_version = version;
        self
    }

    /// Sets the codecs, most preferred first.
    pub fn with_codecs(mut self, codecs: &[AudioCodec]) -> LocalAudio {
        self.codecs = codecs.to_vec();
        self
    }

    /// Sets the telephone-event payload type (`None`: no RFC 4733 DTMF).
    pub fn with_telephone_event(mut self, payload_type: Option<u8>) -> LocalAudio {
        self.telephone_event = payload_type;
        self
    }

    /// Sets the direction.
    pub fn with_direction(mut self, direction: Direction) -> LocalAudio {
        self.direction = direction;
        self
    }

    /// Sets the packetization time in milliseconds.
    pub fn with_ptime(mut self, ptime: u32) -> LocalAudio {
        self.ptime = ptime;
        self
    }

    /// Our offer: one `RTP/AVP` audio stream with every codec and the telephone-event.
    pub fn offer(&self) -> SessionDescription {
        let formats = self
            .codecs
            .iter()
            .map(|c| (c.payload_type(), Some(*c)))
            .chain(self.telephone_event.map(|pt| (pt, None)))
            .collect::<Vec<_>>();
        self.description(vec![self.audio_section(&formats, self.direction)])
    }

    fn description(&self, media: Vec<MediaDescription>) -> SessionDescription {
        SessionDescription {
            origin: Origin {
                username: "-".to_string(),
                session_id: self.session_id,
                session_version: self.session_version,
                net_type: "IN".to_string(),
                addr_type: if self.address.is_ipv4() { "IP4" } else { "IP6" }.to_string(),
                address: self.address.to_string(),
            },
            session_name: "-".to_string(),
            connection: Some(Connection {
                address: self.address,
            }),
            attributes: Vec::new(),
            other: vec![Line {
                kind: 't',
                value: "0 0".to_string(),
            }],
            media,
        }
    }

    /// An audio section with `(payload type, codec)` formats; `None` marks the
    /// telephone-event.
    fn audio_section(
        &self,
        formats: &[(u8, Option<AudioCodec>)],
        direction: Direction,
    ) -> MediaDescription {
        let mut attributes = Vec::new();
        for (pt, codec) in formats {
            let map = match codec {
                Some(c) => RtpMap {
                    payload_type: *pt,
                    encoding: c.encoding_name().to_string(),
                    clock_rate: c.clock_rate(),
                    channels: None,
                },
                None => RtpMap {
                    payload_type: *pt,
                    encoding: "telephone-event".to_string(),
                    clock_rate: 8000,
                    channels: None,
                },
            };
            attributes.push(Attribute::new("rtpmap", map));
            if codec.is_none() {
                attributes.push(Attribute::new("fmtp", format!("{pt} {TELEPHONE_EVENTS}")));
            }
        }
        attributes.push(Attribute::new("ptime", self.ptime));
        attributes.push(Attribute::flag(direction.as_str()));
        MediaDescription {
            media: "audio".to_string(),
            port: self.rtp_port,
            port_count: None,
            protocol: "RTP/AVP".to_string(),
            formats: formats.iter().map(|(pt, _)| pt.to_string()).collect(),
            connection: None,
            attributes,
            other: Vec::new(),
        }
    }
}

/// The outline of an offered media section, kept to turn it down in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outline {
    media: String,
    protocol: String,
    formats: Vec<String>,
}

/// The audio a call agreed on: the result of [`negotiate`] or
/// [`Negotiated::from_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both sides use.
    pub codec: AudioCodec,
    /// Its payload type in this call (the static one, unless the offer mapped it).
    pub payload_type: u8,
    /// The remote telephone-event payload type (8000 Hz), if it offered one.
    pub telephone_event: Option<u8>,
    /// Where to send RTP: the remote `c=` address and `m=` port.
    pub remote_rtp: SocketAddr,
    /// The direction the remote side wrote (from its point of view).
    pub remote_direction: Direction,
    /// The remote `a=ptime`, if any: how we should packetize what we send.
    pub remote_ptime: Option<u32>,
    /// Which media section of the remote SDP the audio is.
    pub media_index: usize,
    outline: Vec<Outline>,
}

/// Picks the audio of a received offer (RFC 3264 §6): the first active `RTP/AVP` audio
/// stream with a codec we support, the first such codec in the *offer's* order, its
/// telephone-event payload type, its address and its direction.
///
/// [`SdpError::NoCommonCodec`] and [`SdpError::NoAudioStream`] mean answering the
/// INVITE 488 (see [`SdpError::status`]).
pub fn negotiate(
    offer: &SessionDescription,
    supported: &[AudioCodec],
) -> Result<Negotiated, SdpError> {
    let mut saw_audio = false;
    for (index, m) in offer.media.iter().enumerate() {
        if !m.is_active_rtp_audio() {
            continue;
        }
        saw_audio = true;
        let Some((payload_type, codec)) = m.payload_types().into_iter().find_map(|pt| {
            m.codec(pt)
                .filter(|c| supported.contains(c))
                .map(|c| (pt, c))
        }) else {
            continue;
        };
        return Negotiated::new(offer, index, codec, payload_type);
    }
    Err(if saw_audio {
        SdpError::NoCommonCodec
    } else {
        SdpError::NoAudioStream
    })
}

impl Negotiated {
    fn new(
        remote: &SessionDescription,
        index: usize,
        codec: AudioCodec,
        payload_type: u8,
    ) -> Result<Negotiated, SdpError> {
        let m = &remote.media[index];
        // Parsing guarantees a c= for active streams; a hand-built description may not.
        let address = remote
            .connection_of(index)
            .ok_or(SdpError::MissingConnection { media: index })?
            .address;
        Ok(Negotiated {
            codec,
            payload_type,
            telephone_event: m.telephone_event(),
            remote_rtp: SocketAddr::new(address, m.port),
            remote_direction: remote.direction_of(index),
            remote_ptime: m.ptime(),
            media_index: index,
            outline: remote
                .media
                .iter()
                .map(|m| Outline {
                    media: m.media.clone(),
                    protocol: m.protocol.clone(),
                    formats: m.formats.clone(),
                })
                .collect(),
        })
    }

    /// Reads the answer to an offer we sent (an outbound call, or our re-INVITE): the
    /// answer's section at the index of our audio stream, the codec it picked among
    /// ours, its telephone-event, address and direction.
    pub fn from_answer(
        offer: &SessionDescription,
        answer: &SessionDescription,
    ) -> Result<Negotiated, SdpError> {
        let index = offer.audio().ok_or(SdpError::NoAudioStream)?;
        if answer.media.len() != offer.media.len() {
            return Err(SdpError::AnswerMismatch(
                "a different number of media sections",
            ));
        }
        let ours = &offer.media[index];
        let theirs = &answer.media[index];
        if !theirs.media.eq_ignore_ascii_case(&ours.media)
            || !theirs.protocol.eq_ignore_ascii_case(&ours.protocol)
        {
            return Err(SdpError::AnswerMismatch(
                "the audio section changed media or protocol",
            ));
        }
        if theirs.port == 0 {
            return Err(SdpError::Rejected);
        }
        let offered: Vec<AudioCodec> = ours
            .payload_types()
            .into_iter()
            .filter_map(|pt| ours.codec(pt))
            .collect();
        let (payload_type, codec) = theirs
            .payload_types()
            .into_iter()
            .find_map(|pt| {
                theirs
                    .codec(pt)
                    .filter(|c| offered.contains(c))
                    .map(|c| (pt, c))
            })
            .ok_or(SdpError::NoCommonCodec)?;
        Negotiated::new(answer, index, codec, payload_type)
    }

    /// Whether the remote side will send us audio.
    pub fn remote_sends(&self) -> bool {
        self.remote_direction.sends()
    }

    /// Whether we may send audio: the remote side receives and did not give the hold
    /// address `0.0.0.0`.
    pub fn remote_receives(&self) -> bool {
        self.remote_direction.receives() && !self.remote_rtp.ip().is_unspecified()
    }

    /// Whether the remote side is holding us (`sendonly`, `inactive` or `0.0.0.0`).
    pub fn on_hold(&self) -> bool {
        !self.remote_receives()
    }

    /// The direction our answer carries when we would like `local`: the remote
    /// direction mirrored, limited by ours. An RFC 2543 hold (`c=0.0.0.0`) counts as
    /// the remote not receiving.
    pub fn answer_direction(&self, local: Direction) -> Direction {
        let effective =
            Direction::from_flags(self.remote_direction.sends(), self.remote_receives());
        effective.mirror().intersect(local)
    }

    /// Our answer (RFC 3264 §6): one section per offered section in the same order,
    /// the audio one with the agreed codec and telephone-event (the offer's payload
    /// types) and the mirrored direction, every other one turned down with port 0.
    pub fn answer(&self, local: &LocalAudio) -> SessionDescription {
        let media = self
            .outline
            .iter()
            .enumerate()
            .map(|(index, outline)| {
                if index == self.media_index {
                    let mut formats = vec![(self.payload_type, Some(self.codec))];
                    if let (Some(pt), Some(_)) = (self.telephone_event, local.telephone_event) {
                        formats.push((pt, None));
                    }
                    local.audio_section(&formats, self.answer_direction(local.direction))
                } else {
                    MediaDescription {
                        media: outline.media.clone(),
                        port: 0,
                        port_count: None,
                        protocol: outline.protocol.clone(),
                        formats: outline.formats.clone(),
                        connection: None,
                        attributes: Vec::new(),
                        other: Vec::new(),
                    }
                }
            })
            .collect();
        local.description(media)
    }
}
