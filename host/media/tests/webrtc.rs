//! Stories of an agent's desk connecting to the host over WebRTC, on loopback.
//!
//! The "browser" is an in-process str0m peer that behaves like one: a full (non-lite),
//! controlling ICE agent with its own UDP socket, offering PCMU, PCMA and
//! telephone-event/8000 on one sendrecv audio track, sending frames and DTMF the way
//! libwebrtc does. The host side is the real [`WebRtcEndpoint`] on its own socket.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::*;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec as Str0mCodec, FormatParams};
use str0m::media::{Direction, Frequency, MediaData, MediaKind, MediaTime, Mid, TelephoneEvent};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use switchboard_media::webrtc::{
    Negotiated, SessionId, WebRtcConfig, WebRtcEndpoint, WebRtcError, WebRtcEvent,
};
use switchboard_media::{Codec, Leg, Output as RelayOutput, Relay, RtpPacket};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// The browser's telephone-event payload type, as Chrome numbers it.
const DESK_EVENT_PT: u8 = AGENT_EVENT_PT;
/// Generous: connecting takes a few round trips on loopback, tens of milliseconds.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
const DELIVERY_LIMIT: Duration = Duration::from_secs(5);

/// A str0m peer standing in for the agent's browser.
struct Desk {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    connected: bool,
    closed: bool,
    /// Every ICE state the desk went through.
    ice: Vec<IceConnectionState>,
    /// Audio and telephone events from the host, in arrival order.
    heard: Vec<MediaData>,
}

impl Desk {
    /// Binds a loopback socket and makes the desk's offer.
    async fn new() -> (Desk, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let mut config = RtcConfig::new()
            .clear_codecs()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()));
        let codecs = config.codec_config();
        codecs.enable_opus(true, false);
        codecs.enable_pcmu(true, false);
        codecs.enable_pcma(true, false);
        codecs.add_config(
            DESK_EVENT_PT.into(),
            None,
            Str0mCodec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let desk = Desk {
            rtc,
            socket,
            addr,
            mid,
            pending: Some(pending),
            connected: false,
            closed: false,
            ice: Vec::new(),
            heard: Vec::new(),
        };
        (desk, offer.to_sdp_string())
    }

    fn accept_answer(&mut self, answer: &str) {
        let pending = self.pending.take().expect("an offer is pending");
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
        self.drain();
    }

    /// Restarts ICE and returns the new offer.
    fn ice_restart(&mut self) -> String {
        let mut change = self.rtc.sdp_api();
        change.ice_restart(true);
        let (offer, pending) = change.apply().unwrap();
        self.pending = Some(pending);
        self.drain();
        offer.to_sdp_string()
    }

    /// Polls the desk until it waits for time or the network, handling what it says.
    fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(at) => return at,
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::Closed) => self.closed = true,
                Output::Event(Event::IceConnectionStateChange(state)) => self.ice.push(state),
                Output::Event(Event::MediaData(data)) => self.heard.push(data),
                Output::Event(_) => {}
            }
        }
    }

    /// Sends one 20 ms frame of audio.
    fn say(&mut self, codec: Codec, timestamp: u64, frame: &[u8]) {
        let pt = codec.payload_type().into();
        let writer = self.rtc.writer(self.mid).unwrap();
        writer
            .write(
                pt,
                Instant::now(),
                MediaTime::new(timestamp, Frequency::EIGHT_KHZ),
                frame.to_vec(),
            )
            .unwrap();
        self.drain();
    }

    /// Presses a key the way libwebrtc's DTMF sender does: a start, updates every 20 ms
    /// and three end packets, all at one timestamp.
    fn press(&mut self, event: u8, timestamp: u64) {
        let pt = Codec::Pcmu.payload_type().into();
        self.rtc
            .writer(self.mid)
            .unwrap()
            .telephone_event(TelephoneEvent {
                event,
                end: true,
                volume: 10,
                duration: Duration::from_millis(100),
            })
            .write(
                pt,
                Instant::now(),
                MediaTime::new(timestamp, Frequency::EIGHT_KHZ),
                Vec::new(),
            )
            .unwrap();
        self.drain();
    }

    /// The audio payloads the desk has heard, telephone events left out.
    fn heard_audio(&self) -> Vec<&MediaData> {
        self.heard
            .iter()
            .filter(|data| !data.params.spec().codec.is_tele())
            .collect()
    }
}

/// The host side: the endpoint and every event it has reported.
struct Host {
    endpoint: WebRtcEndpoint,
    events: mpsc::Receiver<WebRtcEvent>,
    seen: Vec<WebRtcEvent>,
}

impl Host {
    async fn bind(config: WebRtcConfig) -> Host {
        let (endpoint, events) = WebRtcEndpoint::bind(config).await.unwrap();
        Host {
            endpoint,
            events,
            seen: Vec::new(),
        }
    }

    async fn on_loopback() -> Host {
        Host::bind(WebRtcConfig::new("127.0.0.1:0".parse().unwrap())).await
    }

    /// A desk logs in: it offers, the host answers, and both connect.
    async fn login(&mut self) -> (Desk, SessionId, Negotiated) {
        let (mut desk, offer) = Desk::new().await;
        let (session, answer, negotiated) = self.endpoint.accept_offer(&offer).await.unwrap();
        desk.accept_answer(&answer);
        let connected = run(&mut [&mut desk], self, CONNECT_LIMIT, |desks, host| {
            desks[0].connected && host.seen.contains(&WebRtcEvent::Connected { session })
        })
        .await;
        assert!(
            connected,
            "desk and host did not both connect within {CONNECT_LIMIT:?}: desk connected {}, \
             host events {:?}",
            desk.connected, self.seen
        );
        (desk, session, negotiated)
    }

    /// The RTP datagrams the host has reported for a session, parsed.
    fn rtp_from(&self, session: SessionId) -> Vec<RtpPacket<'_>> {
        self.seen
            .iter()
            .filter_map(|event| match event {
                WebRtcEvent::Rtp { session: s, packet } if *s == session => {
                    Some(RtpPacket::parse(packet).expect("the host reports plain RTP"))
                }
                _ => None,
            })
            .collect()
    }

    fn disconnected(&self, session: SessionId) -> bool {
        self.seen.contains(&WebRtcEvent::Disconnected { session })
    }
}

/// Drives the desks' sockets and timers and collects the host's events until `done` or
/// `limit`; says whether `done` came true.
async fn run(
    desks: &mut [&mut Desk],
    host: &mut Host,
    limit: Duration,
    mut done: impl FnMut(&[&mut Desk], &Host) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut buffer = vec![0u8; 2048];
    loop {
        let mut wake = deadline;
        for desk in desks.iter_mut() {
            wake = wake.min(desk.drain());
        }
        if done(desks, host) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        // Wait for a desk's socket, a host event, or the earliest timer.
        let received = {
            let readable = desks
                .iter()
                .enumerate()
                .map(|(i, desk)| Box::pin(async move { desk.socket.readable().await.map(|()| i) }))
                .collect();
            tokio::select! {
                ready = first_of(readable) => ready.ok(),
                event = host.events.recv() => {
                    host.seen.extend(event);
                    None
                }
                () = tokio::time::sleep_until(wake.max(Instant::now()).into()) => None,
            }
        };
        if let Some(i) = received {
            let desk = &mut desks[i];
            while let Ok((len, source)) = desk.socket.try_recv_from(&mut buffer) {
                let input = Input::Receive(
                    Instant::now(),
                    Receive::new(Protocol::Udp, source, desk.addr, &buffer[..len]).unwrap(),
                );
                desk.rtc.handle_input(input).unwrap();
                desk.drain();
            }
        }
        let now = Instant::now();
        for desk in desks.iter_mut() {
            desk.rtc.handle_input(Input::Timeout(now)).unwrap();
        }
        while let Ok(event) = host.events.try_recv() {
            host.seen.push(event);
        }
    }
}

/// The output of whichever of `futures` finishes first; pending forever if there are none.
async fn first_of<T, F: Future<Output = T> + Unpin>(mut futures: Vec<F>) -> T {
    std::future::poll_fn(|cx| {
        futures
            .iter_mut()
            .find_map(|future| match Pin::new(future).poll(cx) {
                Poll::Ready(output) => Some(output),
                Poll::Pending => None,
            })
            .map_or(Poll::Pending, Poll::Ready)
    })
    .await
}

/// Runs for a while regardless, e.g. to pace packets 20 ms apart.
async fn run_for(desks: &mut [&mut Desk], host: &mut Host, duration: Duration) {
    run(desks, host, duration, |_, _| false).await;
}

/// The caller's next 20 ms packet, carrying `payload`.
fn caller_says(caller: &mut Phone, payload: &[u8]) -> Vec<u8> {
    let packet = RtpPacket::new(0, caller.sequence, caller.timestamp, caller.ssrc, payload);
    caller.sequence = caller.sequence.wrapping_add(1);
    caller.timestamp = caller.timestamp.wrapping_add(160);
    packet.to_bytes().unwrap()
}

/// 160 bytes no other packet of the story has: a counter pattern seeded by `n`.
fn frame(n: u8) -> Vec<u8> {
    (0..160u8)
        .map(|i| n.wrapping_mul(37).wrapping_add(i))
        .collect()
}

#[tokio::test]
async fn the_caller_and_the_agent_hear_each_other_across_the_agents_webrtc_leg() {
    let mut host = Host::on_loopback().await;
    let (mut desk, session, negotiated) = host.login().await;
    assert_eq!(
        negotiated,
        Negotiated {
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: Some(DESK_EVENT_PT),
        }
    );
    assert_eq!(host.endpoint.sessions(), 1);

    // A call is bridged to the agent: the relay's leg B is the WebRTC session.
    let mut config = bridge();
    config.b.telephone_event = negotiated.telephone_event;
    let mut relay = Relay::new(config).unwrap();
    let mut caller = Phone::new(0xCA11, 65_500, 4_294_960_000);

    // (a) The caller speaks 50 frames; the agent's browser hears them in order.
    let mut sent = Vec::new();
    for i in 0..50u8 {
        let datagram = caller_says(&mut caller, &frame(i));
        let out = relay.handle_packet(u64::from(i) * 20, Leg::A, &datagram);
        for to_agent in sent_to(&out, Leg::B) {
            host.endpoint
                .send_rtp(session, &to_agent.to_bytes().unwrap())
                .unwrap();
            sent.push((
                to_agent.sequence,
                to_agent.timestamp,
                to_agent.marker,
                frame(i),
            ));
        }
        run_for(&mut [&mut desk], &mut host, Duration::from_millis(20)).await;
    }
    assert_eq!(sent.len(), 50);
    let heard_all = run(&mut [&mut desk], &mut host, DELIVERY_LIMIT, |desks, _| {
        desks[0].heard_audio().len() >= 50
    })
    .await;
    let heard = desk.heard_audio();
    assert!(heard_all, "the desk heard {} of 50 frames", heard.len());
    for (data, (sequence, timestamp, marker, payload)) in heard.iter().zip(&sent) {
        assert_eq!(
            &data.data[..],
            &payload[..],
            "frames arrive whole and in order"
        );
        assert_eq!(data.params.spec().codec, Str0mCodec::PCMU);
        assert_eq!(data.seq_range.start().as_u16(), *sequence);
        assert_eq!(data.time.numer() as u32, *timestamp);
        assert_eq!(data.audio_start_of_talk_spurt, *marker);
    }
    assert!(sent[0].2, "the relay marked the start of the stream");

    // (b) The agent speaks 50 frames; the host reports each as plain RTP.
    for i in 0..50u8 {
        desk.say(Codec::Pcmu, 8_000 + 160 * u64::from(i), &frame(100 + i));
        run_for(&mut [&mut desk], &mut host, Duration::from_millis(20)).await;
    }
    let all_in = run(&mut [&mut desk], &mut host, DELIVERY_LIMIT, |_, host| {
        host.rtp_from(session).len() >= 50
    })
    .await;
    let from_agent = host.rtp_from(session);
    assert!(
        all_in,
        "the host reported {} of 50 frames",
        from_agent.len()
    );
    let payloads: Vec<&[u8]> = from_agent.iter().map(|p| p.payload).collect();
    let expected: Vec<Vec<u8>> = (0..50).map(|i| frame(100 + i)).collect();
    assert_eq!(
        payloads,
        expected.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
    for pair in from_agent.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
        assert_eq!(pair[0].ssrc, pair[1].ssrc);
    }
    assert!(
        from_agent
            .iter()
            .all(|p| p.payload_type == 0 && p.csrcs.is_empty())
    );

    // ... and the relay carries the agent's voice to the caller unchanged.
    let mut to_caller = Vec::new();
    let reported: Vec<Vec<u8>> = host
        .seen
        .iter()
        .filter_map(|e| match e {
            WebRtcEvent::Rtp { packet, .. } => Some(packet.clone()),
            _ => None,
        })
        .collect();
    for (i, packet) in reported.iter().enumerate() {
        let out = relay.handle_packet(1_000 + i as u64 * 20, Leg::B, packet);
        to_caller.extend(
            sent_to(&out, Leg::A)
                .into_iter()
                .map(|p| p.payload.to_vec()),
        );
    }
    assert_eq!(to_caller, expected);

    // (c) The agent presses 5: the digit arrives as RFC 4733 packets on the browser's PT.
    desk.press(5, 30_000);
    let before = host.rtp_from(session).len();
    let pressed = run(&mut [&mut desk], &mut host, DELIVERY_LIMIT, |_, host| {
        host.rtp_from(session)[before..]
            .iter()
            .any(|p| p.payload_type == DESK_EVENT_PT && event_of(p).end)
    })
    .await;
    assert!(
        pressed,
        "no telephone event with the end bit reached the host"
    );
    let events: Vec<_> = host.rtp_from(session)[before..]
        .iter()
        .filter(|p| p.payload_type == DESK_EVENT_PT)
        .map(|p| (p.timestamp, event_of(p)))
        .collect();
    assert!(
        events.iter().all(|(_, e)| e.digit() == Some('5')),
        "{events:?}"
    );
    assert!(
        events.iter().all(|(ts, _)| *ts == events[0].0),
        "one timestamp per key press"
    );
    let digits: String = reported_since(&host, session, before)
        .iter()
        .flat_map(|packet| relay.handle_packet(3_000, Leg::B, packet))
        .filter_map(|output| match output {
            RelayOutput::Digit {
                from: Leg::B,
                digit,
            } => Some(digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "5", "the relay reports the key press once");

    // (e) The agent logs out: the session is gone at once, and the browser is told.
    host.endpoint.close(session);
    assert_eq!(host.endpoint.sessions(), 0);
    assert_eq!(
        host.endpoint.send_rtp(session, &caller.speak(1)),
        Err(WebRtcError::UnknownSession(session))
    );
    let told = run(
        &mut [&mut desk],
        &mut host,
        DELIVERY_LIMIT,
        |desks, host| desks[0].closed && host.disconnected(session),
    )
    .await;
    assert!(
        told,
        "desk closed: {}, host events since: {:?}",
        desk.closed,
        host.seen.last()
    );
    let stats = host.endpoint.stats();
    assert_eq!(stats.rtp_out, 50);
    assert!(stats.rtp_in >= 50 + events.len() as u64, "{stats:?}");
    assert_eq!(
        (stats.rtp_in_dropped, stats.rtp_out_dropped),
        (0, 0),
        "{stats:?}"
    );
}

fn event_of(packet: &RtpPacket<'_>) -> switchboard_media::TelephoneEvent {
    switchboard_media::TelephoneEvent::parse(packet.payload).expect("an RFC 4733 payload")
}

fn reported_since(host: &Host, session: SessionId, skip: usize) -> Vec<Vec<u8>> {
    host.seen
        .iter()
        .filter_map(|e| match e {
            WebRtcEvent::Rtp { session: s, packet } if *s == session => Some(packet.clone()),
            _ => None,
        })
        .skip(skip)
        .collect()
}

#[tokio::test]
async fn junk_offers_are_errors_and_junk_datagrams_do_not_break_a_live_session() {
    let mut host = Host::on_loopback().await;

    // (d) Offers that are not SDP, or SDP the host cannot answer, are refused.
    for junk in ["", "hello", "v=0\r\n"] {
        let error = host.endpoint.accept_offer(junk).await.unwrap_err();
        assert!(
            matches!(error, WebRtcError::MalformedOffer(_)),
            "{junk:?}: {error}"
        );
    }
    let (_, offer) = Desk::new().await;
    let without_ice = offer
        .lines()
        .filter(|l| !l.starts_with("a=ice-"))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>();
    let error = host.endpoint.accept_offer(&without_ice).await.unwrap_err();
    assert!(
        matches!(&error, WebRtcError::OfferRejected(m) if m.contains("ice")),
        "{error}"
    );
    assert_eq!(
        host.endpoint.sessions(),
        0,
        "refused offers leave no session"
    );

    let (mut desk, session, _) = host.login().await;

    // Strangers throw junk at the socket; so does the desk's own address, as a spoofer
    // would.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = host.endpoint.local_addr();
    let mut rng = Rng::new(0x5EED);
    let mut junk: Vec<Vec<u8>> = vec![
        vec![],
        b"hello".to_vec(),
        vec![
            0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        vec![0x16, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        RtpPacket::new(0, 1, 2, 3, &[0xFF; 160]).to_bytes().unwrap(),
    ];
    junk.extend((0..40).map(|_| (0..rng.below(300)).map(|_| rng.byte()).collect()));
    for datagram in &junk {
        stranger.send_to(datagram, target).await.unwrap();
        desk.socket.send_to(datagram, target).await.unwrap();
    }
    run_for(&mut [&mut desk], &mut host, Duration::from_millis(200)).await;
    // The stranger's junk is all dropped before any session sees it; what the desk's
    // address sends goes to its session, which drops what does not authenticate.
    let stats = host.endpoint.stats();
    assert!(
        stats.malformed_datagrams + stats.unmatched_datagrams >= junk.len() as u64,
        "junk is counted: {stats:?}"
    );

    // The session still carries audio both ways.
    for i in 0..10u8 {
        let packet = rtp(0, 100 + u16::from(i), 160 * u32::from(i), 0xAB, &frame(i));
        host.endpoint.send_rtp(session, &packet).unwrap();
        desk.say(Codec::Pcmu, 160 * u64::from(i), &frame(200 + i));
        run_for(&mut [&mut desk], &mut host, Duration::from_millis(20)).await;
    }
    let both_ways = run(
        &mut [&mut desk],
        &mut host,
        DELIVERY_LIMIT,
        |desks, host| desks[0].heard_audio().len() >= 10 && host.rtp_from(session).len() >= 10,
    )
    .await;
    assert!(
        both_ways,
        "after the junk: desk heard {}, host heard {}",
        desk.heard_audio().len(),
        host.rtp_from(session).len()
    );
    assert_eq!(&desk.heard_audio()[9].data[..], &frame(9)[..]);
    assert_eq!(host.rtp_from(session)[9].payload, &frame(209)[..]);
    assert!(!host.disconnected(session));
    assert_eq!(host.endpoint.sessions(), 1);

    // What send_rtp refuses, it says why.
    let endpoint = &host.endpoint;
    assert!(matches!(
        endpoint.send_rtp(session, b"junk"),
        Err(WebRtcError::MalformedRtp { .. })
    ));
    let opus = rtp(111, 1, 2, 3, &[0; 20]);
    assert_eq!(
        endpoint.send_rtp(session, &opus),
        Err(WebRtcError::PayloadTypeNotNegotiated {
            session,
            payload_type: 111
        })
    );
    assert_eq!(
        endpoint.send_rtp(SessionId(999), &rtp(0, 1, 160, 0xAB, &frame(1))),
        Err(WebRtcError::UnknownSession(SessionId(999)))
    );
}

/// A plain RTP datagram.
fn rtp(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    RtpPacket::new(payload_type, sequence, timestamp, ssrc, payload)
        .to_bytes()
        .unwrap()
}

#[tokio::test]
async fn two_desks_share_the_socket_and_each_hears_only_its_own_call() {
    let mut host = Host::on_loopback().await;
    let (mut anna, anna_session, _) = host.login().await;
    let (mut ben, ben_session, _) = host.login().await;
    assert_ne!(anna_session, ben_session);
    assert_eq!(host.endpoint.sessions(), 2);

    for i in 0..10u8 {
        let to_anna = rtp(0, u16::from(i), 160 * u32::from(i), 0xA, &frame(i));
        let to_ben = rtp(8, u16::from(i), 160 * u32::from(i), 0xB, &frame(50 + i));
        host.endpoint.send_rtp(anna_session, &to_anna).unwrap();
        host.endpoint.send_rtp(ben_session, &to_ben).unwrap();
        anna.say(Codec::Pcmu, 160 * u64::from(i), &frame(100 + i));
        ben.say(Codec::Pcma, 160 * u64::from(i), &frame(150 + i));
        run_for(
            &mut [&mut anna, &mut ben],
            &mut host,
            Duration::from_millis(20),
        )
        .await;
    }
    let delivered = run(
        &mut [&mut anna, &mut ben],
        &mut host,
        DELIVERY_LIMIT,
        |d, h| {
            d[0].heard_audio().len() >= 10
                && d[1].heard_audio().len() >= 10
                && h.rtp_from(anna_session).len() >= 10
                && h.rtp_from(ben_session).len() >= 10
        },
    )
    .await;
    assert!(delivered, "every frame reached its own side");
    let heard = |desk: &Desk| -> Vec<Vec<u8>> {
        desk.heard_audio().iter().map(|d| d.data.to_vec()).collect()
    };
    assert_eq!(heard(&anna), (0..10).map(frame).collect::<Vec<_>>());
    assert_eq!(heard(&ben), (50..60).map(frame).collect::<Vec<_>>());
    let reported = |session| -> Vec<Vec<u8>> {
        host.rtp_from(session)
            .iter()
            .map(|p| p.payload.to_vec())
            .collect()
    };
    assert_eq!(
        reported(anna_session),
        (100..110).map(frame).collect::<Vec<_>>()
    );
    assert_eq!(
        reported(ben_session),
        (150..160).map(frame).collect::<Vec<_>>()
    );
    assert!(
        host.rtp_from(ben_session)
            .iter()
            .all(|p| p.payload_type == 8)
    );
}

#[tokio::test]
async fn a_desk_that_restarts_ice_renegotiates_and_keeps_talking() {
    let mut host = Host::on_loopback().await;
    let (mut desk, session, _) = host.login().await;

    let offer = desk.ice_restart();
    let answer = host.endpoint.renegotiate(session, &offer).await.unwrap();
    desk.accept_answer(&answer);
    let restarted_at = desk.ice.len();
    let reconnected = run(&mut [&mut desk], &mut host, CONNECT_LIMIT, |desks, _| {
        desks[0].ice[restarted_at..].iter().any(|s| {
            matches!(
                s,
                IceConnectionState::Connected | IceConnectionState::Completed
            )
        })
    })
    .await;
    assert!(
        reconnected,
        "ICE states after the restart: {:?}",
        &desk.ice[restarted_at..]
    );
    for i in 0..10u8 {
        let packet = rtp(0, u16::from(i), 160 * u32::from(i), 0xAB, &frame(i));
        host.endpoint.send_rtp(session, &packet).unwrap();
        run_for(&mut [&mut desk], &mut host, Duration::from_millis(20)).await;
    }
    let heard = run(&mut [&mut desk], &mut host, DELIVERY_LIMIT, |desks, _| {
        desks[0].heard_audio().len() >= 10
    })
    .await;
    assert!(
        heard,
        "the desk heard {} of 10 frames",
        desk.heard_audio().len()
    );
    assert!(!host.disconnected(session));

    assert!(matches!(
        host.endpoint.renegotiate(session, "not sdp").await,
        Err(WebRtcError::MalformedOffer(_))
    ));
    let (_, other_offer) = Desk::new().await;
    assert_eq!(
        host.endpoint
            .renegotiate(SessionId(999), &other_offer)
            .await,
        Err(WebRtcError::UnknownSession(SessionId(999)))
    );
}

#[tokio::test]
async fn a_desk_that_vanishes_is_disconnected_after_the_consent_timeout() {
    let mut config = WebRtcConfig::new("127.0.0.1:0".parse().unwrap());
    config.consent_timeout = Duration::from_secs(1);
    let mut host = Host::bind(config).await;
    let (desk, session, _) = host.login().await;

    // The browser tab is killed: no more packets, no goodbye.
    drop(desk);
    let gone = run(&mut [], &mut host, Duration::from_secs(5), |_, host| {
        host.disconnected(session)
    })
    .await;
    assert!(gone, "no Disconnected within 5 s of a 1 s consent timeout");
    assert_eq!(host.endpoint.sessions(), 0);
}

#[tokio::test]
async fn an_unspecified_bind_address_needs_a_public_address_to_advertise() {
    let error = WebRtcEndpoint::bind(WebRtcConfig::new("0.0.0.0:0".parse().unwrap()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("public_addr"), "{error}");

    let mut config = WebRtcConfig::new("127.0.0.1:0".parse().unwrap());
    config.public_addr = Some("127.0.0.2:40000".parse().unwrap());
    let host = Host::bind(config).await;
    let (_, offer) = Desk::new().await;
    let (_, answer, _) = host.endpoint.accept_offer(&offer).await.unwrap();
    assert!(answer.contains("127.0.0.2 40000 typ host"), "{answer}");
    assert!(
        !answer.contains(&host.endpoint.local_addr().port().to_string()),
        "{answer}"
    );
}
