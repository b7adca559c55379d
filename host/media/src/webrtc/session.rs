//! One agent's session without the network: answering its offer, reading what was
//! negotiated, and mapping the relay's packets onto the session's one outgoing stream.
//!
//! Nothing here touches a socket or a task; the driver calls in with `now`.

use std::sync::Arc;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::config::CryptoProvider;
use str0m::format::{Codec as Str0mCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid};
use str0m::{Candidate, Output, Rtc, RtcConfig};

use super::model::{Negotiated, WebRtcError};
use crate::g711::Codec;
use crate::rtp::{RtpPacket, SequenceUnwrapper};

/// The telephone-event payload type the host offers; an answer takes the browser's.
const TELEPHONE_EVENT_PT: u8 = 101;
/// One 20 ms G.711 frame, in RTP clock units.
const FRAME_SAMPLES: u64 = 160;

/// The configuration of one session's `Rtc`: ICE-lite, RTP mode, G.711 and 8 kHz
/// telephone events only, the two codecs in the order the browser prefers them (the
/// answer lists them so, and the browser sends the first).
pub(super) fn rtc_config(crypto: &Arc<CryptoProvider>, preferred: Codec) -> RtcConfig {
    let mut config = RtcConfig::new()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .clear_codecs()
        .set_crypto_provider(Arc::clone(crypto));
    let codecs = config.codec_config();
    match preferred {
        Codec::Pcmu => {
            codecs.enable_pcmu(true, false);
            codecs.enable_pcma(true, false);
        }
        Codec::Pcma => {
            codecs.enable_pcma(true, false);
            codecs.enable_pcmu(true, false);
        }
    }
    codecs.add_config(
        TELEPHONE_EVENT_PT.into(),
        None,
        Str0mCodec::Tele,
        Frequency::EIGHT_KHZ,
        None,
        FormatParams::default(),
    );
    config
}

/// One `m=audio` section of an SDP that was not rejected (port 0).
struct AudioSection<'a> {
    formats: Vec<&'a str>,
    mid: Option<&'a str>,
}

/// The audio sections of an SDP, in order. A plain line scan: str0m has parsed (or
/// written) the same text, but keeps its m-lines to itself.
fn audio_sections(sdp: &str) -> Vec<AudioSection<'_>> {
    let mut sections = Vec::new();
    let mut current: Option<AudioSection<'_>> = None;
    for line in sdp.lines().map(|line| line.trim_end_matches('\r')) {
        if let Some(media) = line.strip_prefix("m=") {
            sections.extend(current.take());
            let mut fields = media.split_whitespace();
            let is_audio = fields.next() == Some("audio");
            let port = fields.next();
            if is_audio && port.is_some_and(|port| port != "0") {
                current = Some(AudioSection {
                    formats: fields.skip(1).collect(),
                    mid: None,
                });
            }
        } else if let (Some(section), Some(mid)) = (current.as_mut(), line.strip_prefix("a=mid:")) {
            section.mid = Some(mid.trim());
        }
    }
    sections.extend(current);
    sections
}

/// PCMA if the browser's first audio section lists it before PCMU, else PCMU.
fn preferred_codec(offer_sdp: &str) -> Codec {
    let sections = audio_sections(offer_sdp);
    let formats = sections
        .first()
        .map(|s| s.formats.as_slice())
        .unwrap_or_default();
    let position = |pt: &str| formats.iter().position(|f| *f == pt);
    match (position("8"), position("0")) {
        (Some(pcma), Some(pcmu)) if pcma < pcmu => Codec::Pcma,
        (Some(_), None) => Codec::Pcma,
        _ => Codec::Pcmu,
    }
}

/// Parses an offer as the browser sent it.
pub(super) fn parse_offer(offer_sdp: &str) -> Result<SdpOffer, WebRtcError> {
    SdpOffer::from_sdp_string(offer_sdp).map_err(|e| WebRtcError::MalformedOffer(e.to_string()))
}

/// A session whose offer was answered, ready to be handed to the driver.
pub(super) struct Accepted {
    pub session: AgentSession,
    pub answer: String,
    pub negotiated: Negotiated,
}

/// Builds a session's `Rtc` and answers the browser's offer with it.
pub(super) fn accept(
    crypto: &Arc<CryptoProvider>,
    candidate: &Candidate,
    offer_sdp: &str,
) -> Result<Accepted, WebRtcError> {
    let offer = parse_offer(offer_sdp)?;
    let now = Instant::now();
    let mut rtc = rtc_config(crypto, preferred_codec(offer_sdp)).build(now);
    rtc.add_local_candidate(candidate.clone());
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| WebRtcError::OfferRejected(e.to_string()))?
        .to_sdp_string();

    // Drain, as str0m requires after every change. Nothing goes out yet: ICE-lite
    // waits for the browser's first check.
    let timeout = loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(at)) => break at,
            Ok(_) => {}
            Err(e) => return Err(WebRtcError::OfferRejected(e.to_string())),
        }
    };
    let (mid, negotiated) = audio_sections(&answer)
        .into_iter()
        .filter_map(|section| section.mid)
        .map(|mid| {
            let mid = Mid::from(mid);
            (mid, negotiated(&rtc, mid))
        })
        .find(|(_, negotiated)| !negotiated.codecs.is_empty())
        .ok_or(WebRtcError::NoG711Audio)?;

    Ok(Accepted {
        session: AgentSession::new(rtc, mid, now, timeout),
        answer,
        negotiated,
    })
}

/// What the session's audio m-line settled on, in the answer's order.
pub(super) fn negotiated(rtc: &Rtc, mid: Mid) -> Negotiated {
    let mut negotiated = Negotiated {
        codecs: Vec::new(),
        telephone_event: None,
    };
    let Some(media) = rtc
        .media(mid)
        .filter(|media| media.kind() == MediaKind::Audio)
    else {
        return negotiated;
    };
    if media.disabled() {
        return negotiated;
    }
    let agreed = rtc
        .codec_config()
        .params()
        .iter()
        .filter(|params| media.remote_pts().contains(&params.pt()));
    for params in agreed {
        let pt = *params.pt();
        let spec = params.spec();
        match spec.codec {
            // The relay speaks G.711 on its static payload types only.
            Str0mCodec::PCMU if pt == Codec::Pcmu.payload_type() => {
                negotiated.codecs.push(Codec::Pcmu)
            }
            Str0mCodec::PCMA if pt == Codec::Pcma.payload_type() => {
                negotiated.codecs.push(Codec::Pcma)
            }
            Str0mCodec::Tele if spec.clock_rate == Frequency::EIGHT_KHZ => {
                negotiated.telephone_event.get_or_insert(pt);
            }
            _ => {}
        }
    }
    negotiated
}

/// One agent's live session, owned by the driver.
pub(super) struct AgentSession {
    pub rtc: Rtc,
    /// The audio m-line the agent's track is on.
    pub mid: Mid,
    /// When `rtc` next wants `Input::Timeout`.
    pub timeout: Instant,
    /// When the browser last sent anything the session accepted.
    pub last_heard: Instant,
    /// Whether `Connected` was reported.
    pub connected: bool,
    /// The browser went away; the driver ends the session after this drain.
    pub ending: bool,
    pub outgoing: OutgoingStream,
}

impl AgentSession {
    fn new(rtc: Rtc, mid: Mid, now: Instant, timeout: Instant) -> Self {
        AgentSession {
            rtc,
            mid,
            timeout,
            last_heard: now,
            connected: false,
            ending: false,
            outgoing: OutgoingStream::default(),
        }
    }
}

/// The numbers of one packet for the browser, after [`OutgoingStream::map`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamped {
    /// The extended sequence number (str0m derives the SRTP rollover counter from it).
    pub sequence: u64,
    pub timestamp: u32,
    pub marker: bool,
}

#[derive(Debug, Clone, Copy)]
struct LastSent {
    sequence: u16,
    timestamp: u32,
    at: Instant,
}

/// The session's one outgoing stream across every call the agent takes.
///
/// The first source's numbers pass through untouched. A packet with a new SSRC (the next
/// call's relay, with its own random start) continues the stream instead: the next
/// sequence number, a timestamp moved on by the time that passed, and the marker bit.
#[derive(Debug, Default)]
pub(super) struct OutgoingStream {
    source: Option<u32>,
    sequence_delta: u16,
    timestamp_delta: u32,
    last: Option<LastSent>,
    extended: SequenceUnwrapper,
}

impl OutgoingStream {
    pub(super) fn map(
        &mut self,
        now: Instant,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        marker: bool,
    ) -> Stamped {
        let mut switched = false;
        if self.source != Some(ssrc) {
            if let Some(last) = self.last {
                let elapsed = u64::try_from(now.duration_since(last.at).as_millis())
                    .unwrap_or(u64::MAX)
                    .saturating_mul(u64::from(Codec::CLOCK_RATE) / 1000);
                let advance = elapsed.clamp(FRAME_SAMPLES, u64::from(u32::MAX / 2)) as u32;
                self.sequence_delta = last.sequence.wrapping_add(1).wrapping_sub(sequence);
                self.timestamp_delta = last.timestamp.wrapping_add(advance).wrapping_sub(timestamp);
                switched = true;
            }
            self.source = Some(ssrc);
        }
        let sequence = sequence.wrapping_add(self.sequence_delta);
        let timestamp = timestamp.wrapping_add(self.timestamp_delta);
        let newer = self
            .last
            .is_none_or(|last| (sequence.wrapping_sub(last.sequence) as i16) > 0);
        if newer || switched {
            self.last = Some(LastSent {
                sequence,
                timestamp,
                at: now,
            });
        }
        Stamped {
            sequence: self.extended.unwrap(sequence),
            timestamp,
            marker: marker || switched,
        }
    }
}

/// The plain RTP datagram for a packet str0m received and decrypted.
pub(super) fn plain_rtp(packet: &str0m::rtp::RtpPacket) -> Option<Vec<u8>> {
    let header = &packet.header;
    let mut plain = RtpPacket::new(
        *header.payload_type,
        header.sequence_number,
        header.timestamp,
        *header.ssrc,
        &packet.payload,
    );
    plain.marker = header.marker;
    plain.to_bytes().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const FINGERPRINT: &str = "sha-256 \
        4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:A5:41:04:A3:F1:C7:60:8B:1F:8C:A0";

    /// An offer shaped like Chrome's for an audio-only peer connection: Opus first, then
    /// G.722, PCMU, PCMA, comfort noise and telephone events at 48 and 8 kHz.
    fn chrome_offer(payload_types: &str, rtpmaps: &str) -> String {
        let mut sdp = String::new();
        for line in [
            "v=0",
            "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "a=extmap-allow-mixed",
            "a=msid-semantic: WMS desk",
            &format!("m=audio 9 UDP/TLS/RTP/SAVPF {payload_types}"),
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Xk3q",
            "a=ice-pwd:V7mNf0cQ1sW4yZ8bD2gH6jK9",
            "a=ice-options:trickle",
            &format!("a=fingerprint:{FINGERPRINT}"),
            "a=setup:actpass",
            "a=mid:0",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=sendrecv",
            "a=msid:desk mic",
            "a=rtcp-mux",
            "a=rtcp-rsize",
        ] {
            sdp.push_str(line);
            sdp.push_str("\r\n");
        }
        for line in rtpmaps.lines().map(str::trim).filter(|l| !l.is_empty()) {
            sdp.push_str(line);
            sdp.push_str("\r\n");
        }
        sdp.push_str("a=ssrc:1001 cname:desk\r\na=ssrc:1001 msid:desk mic\r\n");
        sdp
    }

    const CHROME_RTPMAPS: &str = "
        a=rtpmap:111 opus/48000/2
        a=rtcp-fb:111 transport-cc
        a=fmtp:111 minptime=10;useinbandfec=1
        a=rtpmap:9 G722/8000
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:13 CN/8000
        a=rtpmap:110 telephone-event/48000
        a=rtpmap:126 telephone-event/8000
    ";

    fn candidate() -> Candidate {
        Candidate::host("127.0.0.1:3478".parse().unwrap(), "udp").unwrap()
    }

    fn answer(offer: &str) -> Result<Accepted, WebRtcError> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        accept(&crypto, &candidate(), offer)
    }

    #[test]
    fn the_answer_to_chrome_speaks_only_g711_and_telephone_events_as_ice_lite() {
        let offer = chrome_offer("111 9 0 8 13 110 126", CHROME_RTPMAPS);
        let accepted = answer(&offer).unwrap();
        let sdp = &accepted.answer;

        assert!(sdp.contains("a=ice-lite\r\n"), "{sdp}");
        let m_line = sdp.lines().find(|l| l.starts_with("m=audio")).unwrap();
        let payload_types: Vec<&str> = m_line.split(' ').skip(3).collect();
        assert_eq!(payload_types, ["0", "8", "126"], "{m_line}");
        let rtpmaps: Vec<&str> = sdp.lines().filter(|l| l.starts_with("a=rtpmap:")).collect();
        assert_eq!(
            rtpmaps,
            [
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:8 PCMA/8000",
                "a=rtpmap:126 telephone-event/8000"
            ]
        );
        for absent in ["opus", "G722", "CN/", "telephone-event/48000", "m=video"] {
            assert!(!sdp.contains(absent), "{absent} in {sdp}");
        }
        assert!(
            sdp.lines()
                .any(|l| l.starts_with("a=candidate:") && l.contains("127.0.0.1 3478 typ host")),
            "the host candidate is in the answer: {sdp}"
        );
        assert!(!sdp.contains("a=setup:actpass"), "{sdp}");
        assert_eq!(
            accepted.negotiated,
            Negotiated {
                codecs: vec![Codec::Pcmu, Codec::Pcma],
                telephone_event: Some(126),
            }
        );
    }

    #[test]
    fn the_browsers_codec_preference_is_kept() {
        let offer = chrome_offer(
            "8 0 101",
            "a=rtpmap:8 PCMA/8000\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000",
        );
        let accepted = answer(&offer).unwrap();
        assert_eq!(accepted.negotiated.codecs, [Codec::Pcma, Codec::Pcmu]);
        assert_eq!(accepted.negotiated.telephone_event, Some(101));
        let m_line = accepted
            .answer
            .lines()
            .find(|l| l.starts_with("m=audio"))
            .unwrap();
        assert!(m_line.ends_with(" 8 0 101"), "{m_line}");

        let alaw_only = chrome_offer("8", "a=rtpmap:8 PCMA/8000");
        assert_eq!(answer(&alaw_only).unwrap().negotiated.codecs, [Codec::Pcma]);
    }

    #[test]
    fn an_offer_without_telephone_events_negotiates_none() {
        let offer = chrome_offer("0", "a=rtpmap:0 PCMU/8000");
        let accepted = answer(&offer).unwrap();
        assert_eq!(accepted.negotiated.codecs, [Codec::Pcmu]);
        assert_eq!(accepted.negotiated.telephone_event, None);
        assert!(!accepted.answer.contains("telephone-event"));
    }

    #[test]
    fn offers_the_host_cannot_answer_are_errors_that_say_why() {
        let opus_only = chrome_offer("111", "a=rtpmap:111 opus/48000/2");
        assert_eq!(answer(&opus_only).err(), Some(WebRtcError::NoG711Audio));

        for junk in ["", "hello", "v=0\r\nm=audio banana\r\n"] {
            let error = answer(junk).err().expect(junk);
            assert!(
                matches!(error, WebRtcError::MalformedOffer(_)),
                "{junk:?}: {error}"
            );
        }

        let no_fingerprint = chrome_offer("0", "a=rtpmap:0 PCMU/8000")
            .lines()
            .filter(|l| !l.starts_with("a=fingerprint"))
            .map(|l| format!("{l}\r\n"))
            .collect::<String>();
        let error = answer(&no_fingerprint).err().unwrap();
        assert!(
            matches!(&error, WebRtcError::OfferRejected(m) if m.contains("fingerprint")),
            "{error}"
        );
    }

    #[test]
    fn the_first_source_passes_through_and_the_next_call_carries_the_stream_on() {
        let start = Instant::now();
        let mut stream = OutgoingStream::default();
        for i in 0..3u16 {
            let stamped = stream.map(start, 0xAAAA, 5000 + i, 50_000 + 160 * u32::from(i), i == 0);
            assert_eq!(
                stamped,
                Stamped {
                    sequence: 5000 + u64::from(i),
                    timestamp: 50_000 + 160 * u32::from(i),
                    marker: i == 0,
                }
            );
        }

        // The next call's relay starts its own stream two seconds later.
        let later = start + Duration::from_secs(2);
        let stamped = stream.map(later, 0xBBBB, 60_000, 7, false);
        assert_eq!(
            stamped,
            Stamped {
                sequence: 5003,
                timestamp: 50_320 + 16_000,
                marker: true,
            }
        );
        let stamped = stream.map(later, 0xBBBB, 60_001, 167, false);
        assert_eq!((stamped.sequence, stamped.timestamp), (5004, 66_480));
        assert!(!stamped.marker);
    }

    #[test]
    fn sequence_numbers_extend_across_rollover() {
        let now = Instant::now();
        let mut stream = OutgoingStream::default();
        assert_eq!(stream.map(now, 1, 65535, 0, false).sequence, 65535);
        assert_eq!(stream.map(now, 1, 0, 160, false).sequence, 65536);
    }
}
