//! SDP offer/answer as phones, trunks and browsers write it: sipp, baresip, Asterisk
//! and Chrome bodies, hold and resume, refusals, malformed lines, and mutated bytes.

use std::net::{IpAddr, Ipv4Addr};

use switchboard_sip::sdp::{
    AudioCodec, Direction, LocalAudio, Negotiated, SdpError, SessionDescription, TELEPHONE_EVENTS,
    is_hold, negotiate,
};

/// `sipp -sn uac`: one PCMU stream, nothing else.
const SIPP_UAC: &str = "v=0\r\n\
    o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
    s=-\r\n\
    c=IN IP4 127.0.0.1\r\n\
    t=0 0\r\n\
    m=audio 6000 RTP/AVP 0\r\n\
    a=rtpmap:0 PCMU/8000\r\n";

/// baresip 3.x with its default module set: opus first, G.722, then G.711.
const BARESIP: &str = "v=0\r\n\
    o=- 1680527935 3011593433 IN IP4 192.168.1.50\r\n\
    s=-\r\n\
    c=IN IP4 192.168.1.50\r\n\
    t=0 0\r\n\
    m=audio 10452 RTP/AVP 96 9 0 8 101\r\n\
    b=AS:128\r\n\
    a=rtpmap:96 opus/48000/2\r\n\
    a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
    a=rtpmap:9 G722/8000\r\n\
    a=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\n\
    a=rtpmap:101 telephone-event/8000\r\n\
    a=fmtp:101 0-15\r\n\
    a=sendrecv\r\n\
    a=label:1\r\n\
    a=ssrc:1263617493 cname:f3b0a1c2-3d4e\r\n\
    a=rtcp-rsize\r\n\
    a=ptime:20\r\n";

/// Asterisk 20 answering with PCMA, LF line ends as some SBCs rewrite them.
const ASTERISK_ANSWER: &str = "v=0\n\
    o=- 1907235573 1907235575 IN IP4 203.0.113.5\n\
    s=Asterisk\n\
    c=IN IP4 203.0.113.5\n\
    t=0 0\n\
    m=audio 17044 RTP/AVP 8 101\n\
    a=rtpmap:8 PCMA/8000\n\
    a=rtpmap:101 telephone-event/8000\n\
    a=fmtp:101 0-16\n\
    a=ptime:20\n\
    a=maxptime:150\n\
    a=sendrecv\n\n";

/// A browser offer: DTLS-SRTP with ICE, which plain RTP cannot take part in.
const CHROME: &str = "v=0\r\n\
    o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
    s=-\r\n\
    t=0 0\r\n\
    a=group:BUNDLE 0\r\n\
    a=extmap-allow-mixed\r\n\
    a=msid-semantic: WMS\r\n\
    m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\n\
    c=IN IP4 0.0.0.0\r\n\
    a=rtcp:9 IN IP4 0.0.0.0\r\n\
    a=candidate:842163049 1 udp 1677729535 198.51.100.4 54321 typ srflx raddr 10.0.0.4 rport 54321 generation 0\r\n\
    a=ice-ufrag:EsAw\r\n\
    a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
    a=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:AF:E7:0F:73:79:36:4E:9C:1E:15:54:39:0C:06:8A:95:96:97:59:DB\r\n\
    a=setup:actpass\r\n\
    a=mid:0\r\n\
    a=sendrecv\r\n\
    a=rtcp-mux\r\n\
    a=rtpmap:111 opus/48000/2\r\n\
    a=rtcp-fb:111 transport-cc\r\n\
    a=fmtp:111 minptime=10;useinbandfec=1\r\n\
    a=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\n\
    a=rtpmap:126 telephone-event/8000\r\n";

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn local() -> LocalAudio {
    LocalAudio::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40000).with_session(42, 42)
}

const BOTH: &[AudioCodec] = &[AudioCodec::Pcmu, AudioCodec::Pcma];

#[test]
fn sipp_default_offer_negotiates_pcmu_without_dtmf() {
    let offer = parse(SIPP_UAC);
    let call = negotiate(&offer, BOTH).unwrap();
    assert_eq!(call.codec, AudioCodec::Pcmu);
    assert_eq!(call.payload_type, 0);
    assert_eq!(call.telephone_event, None);
    assert_eq!(call.remote_rtp, "127.0.0.1:6000".parse().unwrap());
    assert_eq!(call.remote_direction, Direction::SendRecv);
    assert!(!is_hold(&offer));

    let answer = call.answer(&local());
    let m = &answer.media[0];
    assert_eq!(
        m.formats,
        ["0"],
        "no telephone-event the offer did not have"
    );
    assert_eq!(m.port, 40000);
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(answer.direction_of(0), Direction::SendRecv);
    assert_eq!(
        answer.to_string(),
        "v=0\r\no=- 42 42 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    );
}

#[test]
fn baresip_offer_picks_the_first_g711_in_its_order_and_keeps_its_dtmf() {
    let offer = parse(BARESIP);
    let m = &offer.media[0];
    assert_eq!(m.rtpmap(96).unwrap().channels, Some(2));
    assert_eq!(m.fmtp(101), Some("0-15"));
    assert_eq!(m.attribute("label"), Some("1"));
    assert_eq!(m.other[0].value, "AS:128");

    let call = negotiate(&offer, BOTH).unwrap();
    assert_eq!(
        call.codec,
        AudioCodec::Pcmu,
        "0 comes before 8 in the offer"
    );
    assert_eq!(call.telephone_event, Some(101));
    assert_eq!(call.remote_ptime, Some(20));
    let call = negotiate(&offer, &[AudioCodec::Pcma]).unwrap();
    assert_eq!((call.codec, call.payload_type), (AudioCodec::Pcma, 8));

    let answer = SessionDescription::parse(&call.answer(&local()).to_bytes()).unwrap();
    assert_eq!(answer.media[0].formats, ["8", "101"]);
    assert_eq!(answer.media[0].fmtp(101), Some(TELEPHONE_EVENTS));
    assert_eq!(answer.connection_of(0).unwrap().address, local().address);
}

#[test]
fn a_dynamic_payload_type_mapped_to_pcma_is_answered_with_that_type() {
    let offer = parse(&SIPP_UAC.replace(
        "RTP/AVP 0\r\na=rtpmap:0 PCMU/8000",
        "RTP/AVP 98\r\na=rtpmap:98 pcma/8000/1",
    ));
    let call = negotiate(&offer, BOTH).unwrap();
    assert_eq!((call.codec, call.payload_type), (AudioCodec::Pcma, 98));
    assert_eq!(
        call.answer(&local()).media[0].rtpmap(98).unwrap().encoding,
        "PCMA"
    );
}

#[test]
fn our_offer_and_an_asterisk_answer_agree_on_pcma() {
    let offer = local().offer();
    assert_eq!(
        offer.to_string(),
        "v=0\r\no=- 42 42 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    let answer = parse(ASTERISK_ANSWER);
    assert_eq!(answer.session_name, "Asterisk");
    let call = Negotiated::from_answer(&offer, &answer).unwrap();
    assert_eq!(call.codec, AudioCodec::Pcma);
    assert_eq!(call.telephone_event, Some(101));
    assert_eq!(call.remote_rtp, "203.0.113.5:17044".parse().unwrap());
    assert!(call.remote_sends() && call.remote_receives());
}

#[test]
fn an_answer_that_turns_audio_down_or_changes_shape_is_refused() {
    let offer = local().offer();
    let rejected = parse(&ASTERISK_ANSWER.replace("m=audio 17044", "m=audio 0"));
    assert_eq!(
        Negotiated::from_answer(&offer, &rejected),
        Err(SdpError::Rejected)
    );
    let opus_only = parse(&ASTERISK_ANSWER.replace("RTP/AVP 8 101", "RTP/AVP 96"));
    assert_eq!(
        Negotiated::from_answer(&offer, &opus_only),
        Err(SdpError::NoCommonCodec)
    );
    let two = parse(&format!("{ASTERISK_ANSWER}m=video 0 RTP/AVP 31\n"));
    assert!(matches!(
        Negotiated::from_answer(&offer, &two),
        Err(SdpError::AnswerMismatch(_))
    ));
}

#[test]
fn a_hold_reinvite_is_answered_recvonly_and_resume_sendrecv() {
    let hold = parse(&ASTERISK_ANSWER.replace("a=sendrecv", "a=sendonly"));
    assert!(is_hold(&hold));
    let call = negotiate(&hold, BOTH).unwrap();
    assert!(call.on_hold() && call.remote_sends());
    assert_eq!(call.answer(&local()).direction_of(0), Direction::RecvOnly);

    let inactive = parse(&ASTERISK_ANSWER.replace("a=sendrecv", "a=inactive"));
    assert!(is_hold(&inactive));
    let call = negotiate(&inactive, BOTH).unwrap();
    assert_eq!(call.answer(&local()).direction_of(0), Direction::Inactive);

    let resume = parse(ASTERISK_ANSWER);
    assert!(!is_hold(&resume));
    assert_eq!(
        negotiate(&resume, BOTH)
            .unwrap()
            .answer(&local().with_direction(Direction::SendOnly))
            .direction_of(0),
        Direction::SendOnly,
        "we may hold them while they resume"
    );
}

#[test]
fn the_rfc_2543_hold_address_means_we_must_not_send() {
    let old = parse(&SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"));
    assert!(is_hold(&old));
    let call = negotiate(&old, BOTH).unwrap();
    assert!(!call.remote_receives() && call.remote_sends());
    assert_eq!(call.answer(&local()).direction_of(0), Direction::RecvOnly);

    // A media-level c= overrides the session's.
    let media_level = parse(&SIPP_UAC.replace(
        "m=audio 6000 RTP/AVP 0\r\n",
        "m=audio 6000 RTP/AVP 0\r\nc=IN IP4 198.51.100.7\r\n",
    ));
    assert_eq!(
        negotiate(&media_level, BOTH).unwrap().remote_rtp,
        "198.51.100.7:6000".parse().unwrap()
    );
}

#[test]
fn no_common_codec_and_no_plain_rtp_audio_map_to_488() {
    let g729 = parse(&SIPP_UAC.replace(
        "RTP/AVP 0\r\na=rtpmap:0 PCMU/8000",
        "RTP/AVP 18\r\na=rtpmap:18 G729/8000",
    ));
    let error = negotiate(&g729, BOTH).unwrap_err();
    assert_eq!(error, SdpError::NoCommonCodec);
    assert_eq!(error.status(), 488);

    let chrome = parse(CHROME);
    assert_eq!(chrome.attribute("group"), Some("BUNDLE 0"));
    assert_eq!(chrome.media[0].telephone_event(), Some(126));
    let error = negotiate(&chrome, BOTH).unwrap_err();
    assert_eq!(error, SdpError::NoAudioStream);
    assert_eq!(error.status(), 488);
}

#[test]
fn other_streams_are_turned_down_in_the_answer() {
    let offer = parse(&format!(
        "{SIPP_UAC}m=video 6002 RTP/AVP 34\r\na=rtpmap:34 H263/90000\r\nm=image 6004 udptl t38\r\n"
    ));
    let answer = negotiate(&offer, BOTH).unwrap().answer(&local());
    let shape: Vec<(&str, u16, &str, Vec<String>)> = answer
        .media
        .iter()
        .map(|m| {
            (
                m.media.as_str(),
                m.port,
                m.protocol.as_str(),
                m.formats.clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("audio", 40000, "RTP/AVP", vec!["0".to_string()]),
            ("video", 0, "RTP/AVP", vec!["34".to_string()]),
            ("image", 0, "udptl", vec!["t38".to_string()]),
        ]
    );
}

#[test]
fn malformed_lines_are_reported_with_their_line_number() {
    let cases: &[(&str, &str, SdpError)] = &[
        ("m=audio 6000 RTP/AVP 0", "m=audio six RTP/AVP 0", line(6)),
        (
            "m=audio 6000 RTP/AVP 0",
            "m=audio 6000 RTP/AVP PCMU",
            line(6),
        ),
        ("m=audio 6000 RTP/AVP 0", "m=audio 6000 RTP/AVP", line(6)),
        ("m=audio 6000 RTP/AVP 0", "m=audio 70000 RTP/AVP 0", line(6)),
        ("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMU", line(7)),
        ("a=rtpmap:0 PCMU/8000", "a=rtpmap:200 PCMU/8000", line(7)),
        ("a=rtpmap:0 PCMU/8000", "a=ptime:twenty", line(7)),
        ("a=rtpmap:0 PCMU/8000", "a=fmtp:x 0-16", line(7)),
        ("a=rtpmap:0 PCMU/8000", "a=sendonly\r\na=recvonly", line(8)),
        ("c=IN IP4 127.0.0.1", "c=IN IP4 pbx.example", line(4)),
        ("c=IN IP4 127.0.0.1", "c=IN IP4", line(4)),
        ("c=IN IP4 127.0.0.1", "c=ATM NSAP 47.0005", line(4)),
        ("o=user1 53655765 2353687637", "o=user1 53655765", line(2)),
        ("o=user1 53655765", "o=user1 -1", line(2)),
        ("s=-", "s=-\r\nthis is not sdp", line(4)),
        ("s=-", "s=-\r\nA=sendrecv", line(4)),
        ("s=-", "s=-\r\na=ok\0", line(4)),
        ("v=0", "v=1", SdpError::UnsupportedVersion),
        ("v=0\r\n", "", line(1)),
        (
            "c=IN IP4 127.0.0.1\r\n",
            "",
            SdpError::MissingConnection { media: 0 },
        ),
    ];
    for (from, to, expected) in cases {
        let text = SIPP_UAC.replace(from, to);
        let got = SessionDescription::parse(text.as_bytes());
        match (got, expected) {
            (Err(SdpError::Line { line, reason }), SdpError::Line { line: want, .. }) => {
                assert_eq!(line, *want, "{to:?}: {reason}")
            }
            (got, want) => assert_eq!(got.as_ref().err(), Some(want), "{to:?}"),
        }
    }
    let no_origin = SIPP_UAC.replace("o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n", "");
    assert_eq!(
        SessionDescription::parse(no_origin.as_bytes()),
        Err(SdpError::MissingOrigin)
    );
    assert_eq!(SessionDescription::parse(b"\r\n\r\n"), Err(SdpError::Empty));
    assert_eq!(
        SessionDescription::parse(b"v=0\r\n").unwrap_err().status(),
        400
    );
}

fn line(line: usize) -> SdpError {
    SdpError::Line { line, reason: "" }
}

#[test]
fn tolerated_quirks_parse_and_serialize_in_rfc_order() {
    // No s= or t=, c= after t=, blank lines, trailing spaces, a port count, an
    // unknown line type, and a rejected stream without formats.
    let text = "v=0\n\no=- 1 2 IN IP4 10.0.0.1  \nt=0 0\nc=IN IP4 10.0.0.1\nx=vendor\n\
                m=audio 4000/2 RTP/AVP 8\nm=video 0 RTP/AVP\n";
    let sdp = parse(text);
    assert_eq!(sdp.session_name, "-");
    assert_eq!(sdp.media[0].port_count, Some(2));
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nx=vendor\r\n\
         m=audio 4000/2 RTP/AVP 8\r\nm=video 0 RTP/AVP\r\n"
    );
    assert_eq!(negotiate(&sdp, BOTH).unwrap().codec, AudioCodec::Pcma);
}

/// xorshift64*: deterministic, so a failure reproduces from its iteration.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"=",
    b":",
    b"/",
    b" ",
    b"\0",
    b"\xff",
    b"m=audio 0 RTP/AVP 0\r\n",
    b"c=IN IP4 0.0.0.0\r\n",
    b"c=IN IP6 ::1\r\n",
    b"a=sendonly\r\n",
    b"a=rtpmap:101 telephone-event/8000\r\n",
    b"a=rtpmap:8 PCMA/8000\r\n",
    b"a=ptime:30\r\n",
    b"99999999999999999999",
    b"127",
    b"128",
];

fn mutate(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 => {
                let end = (at + rng.below(40)).min(data.len());
                data.drain(at..end);
            }
            3 => data.truncate(at),
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            _ => {
                let random: Vec<u8> = (0..rng.below(32)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, random);
            }
        }
    }
    data
}

#[test]
fn random_and_mutated_bytes_never_panic_and_what_parses_round_trips() {
    let seeds: &[&[u8]] = &[
        SIPP_UAC.as_bytes(),
        BARESIP.as_bytes(),
        ASTERISK_ANSWER.as_bytes(),
        CHROME.as_bytes(),
    ];
    let ours = local().offer();
    let mut rng = Rng(0x5d50_ffea);
    let (mut parsed, mut negotiated) = (0, 0);
    for iteration in 0..20_000 {
        let data = if iteration % 10 == 0 {
            (0..rng.below(300)).map(|_| rng.next() as u8).collect()
        } else {
            mutate(&mut rng, seeds)
        };
        let Ok(sdp) = SessionDescription::parse(&data) else {
            continue;
        };
        parsed += 1;
        let bytes = sdp.to_bytes();
        let again = SessionDescription::parse(&bytes).unwrap_or_else(|e| {
            panic!(
                "#{iteration}: re-parse failed: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(again.to_bytes(), bytes, "#{iteration}: not a fixed point");
        let _ = is_hold(&sdp);
        let _ = Negotiated::from_answer(&ours, &sdp);
        if let Ok(call) = negotiate(&sdp, BOTH) {
            negotiated += 1;
            let answer = call.answer(&local()).to_bytes();
            let answer = SessionDescription::parse(&answer).unwrap();
            assert_eq!(answer.media.len(), sdp.media.len());
            if sdp.audio() == Some(call.media_index) {
                let back = Negotiated::from_answer(&sdp, &answer).unwrap();
                assert_eq!(back.codec, call.codec, "#{iteration}");
            }
        }
    }
    assert!(
        parsed > 2_000,
        "mutations should often stay valid: {parsed}"
    );
    assert!(negotiated > 1_000, "{negotiated}");
}
