//! Stories of a bridged call: talking, losing packets, holding, transferring.

mod common;

use common::*;
use switchboard_media::{
    Codec, Leg, LegConfig, Output, Player, Relay, RelayError, RtpPacket, StreamStart, tones,
};

#[test]
fn caller_and_agent_hear_each_other_through_the_relays_own_streams() {
    let mut relay = Relay::new(bridge()).unwrap();
    let mut caller = Phone::new(0x1111, 65534, 4_294_967_000);
    let mut agent = Phone::new(0x2222, 7, 0);

    for i in 0..4u16 {
        let now = u64::from(i) * 20;
        let from_caller = caller.speak(0x10 + i as u8);
        let out = relay.handle_packet(now, Leg::A, &from_caller);
        let to_agent = sent_to(&out, Leg::B);
        assert_eq!(to_agent.len(), 1);
        assert_eq!(to_agent[0].ssrc, TO_AGENT_SSRC);
        assert_eq!(
            to_agent[0].sequence,
            5000 + i,
            "the caller's rollover is invisible"
        );
        assert_eq!(to_agent[0].timestamp, 50_000 + 160 * u32::from(i));
        assert_eq!(to_agent[0].payload, &[0x10 + i as u8; 160][..]);
        assert_eq!(
            to_agent[0].marker,
            i == 0,
            "the first packet starts a talkspurt"
        );

        let out = relay.handle_packet(now, Leg::B, &agent.speak(0x20));
        let to_caller = sent_to(&out, Leg::A);
        assert_eq!(to_caller[0].ssrc, TO_CALLER_SSRC);
        assert_eq!(to_caller[0].sequence, 1000 + i);
        assert_eq!(to_caller[0].timestamp, 10_000 + 160 * u32::from(i));
    }

    let a = relay.stats(Leg::A);
    assert_eq!(
        (a.packets_in, a.bytes_in, a.packets_out, a.bytes_out),
        (4, 4 * 172, 4, 4 * 172)
    );
    assert_eq!((a.lost, a.dropped()), (0, 0));
}

#[test]
fn a_lost_packet_shows_as_a_gap_on_the_far_side_and_in_the_counters() {
    let mut relay = Relay::new(bridge()).unwrap();
    let mut caller = Phone::new(0x1111, 100, 0);

    let first = relay.handle_packet(0, Leg::A, &caller.speak(1));
    caller.lose(2);
    let after_gap = relay.handle_packet(60, Leg::A, &caller.speak(1));

    let (first, after_gap) = (&sent_to(&first, Leg::B)[0], &sent_to(&after_gap, Leg::B)[0]);
    assert_eq!(
        after_gap.sequence - first.sequence,
        3,
        "the agent's jitter buffer sees the loss"
    );
    assert_eq!(after_gap.timestamp - first.timestamp, 480);
    assert_eq!(relay.stats(Leg::A).lost, 2);

    // One of the two turns up late after all: forwarded in its place, no longer lost.
    let late = RtpPacket::new(0, 101, 160, 0x1111, &[1; 160])
        .to_bytes()
        .unwrap();
    let late = relay.handle_packet(70, Leg::A, &late);
    assert_eq!(sent_to(&late, Leg::B)[0].sequence, first.sequence + 1);
    assert_eq!(relay.stats(Leg::A).lost, 1);
}

#[test]
fn the_other_g711_law_is_converted_and_other_codecs_are_dropped_and_counted() {
    let mut relay = Relay::new(bridge()).unwrap();
    let mut caller = Phone::new(0x1111, 1, 0);
    caller.payload_type = 8; // PCMA on a PCMU bridge: converted, not dropped
    let out = relay.handle_packet(0, Leg::A, &caller.speak(0xD5));
    let forwarded = sent_to(&out, Leg::B);
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].payload_type, 0);
    let expected = Codec::Pcmu.encode(&Codec::Pcma.decode(&[0xD5; 160]));
    assert_eq!(forwarded[0].payload, &expected[..]);
    caller.payload_type = 13; // comfort noise
    assert!(relay.handle_packet(20, Leg::A, &caller.speak(0)).is_empty());
    caller.payload_type = 96; // some dynamic codec
    assert!(relay.handle_packet(40, Leg::A, &caller.speak(0)).is_empty());
    caller.payload_type = 0;
    assert_eq!(
        sent_to(
            &relay.handle_packet(60, Leg::A, &caller.speak(0xFF)),
            Leg::B
        )
        .len(),
        1
    );

    let stats = relay.stats(Leg::A);
    assert_eq!((stats.dropped_payload_type, stats.converted), (2, 1));
    assert_eq!(stats.packets_in, 4);
    assert_eq!(relay.stats(Leg::B).packets_out, 2);
}

#[test]
fn junk_and_rtcp_never_cross_the_bridge() {
    let mut relay = Relay::new(bridge()).unwrap();
    let receiver_report = [0x81, 201, 0, 7, 0, 0, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(relay.handle_packet(0, Leg::A, &receiver_report).is_empty());
    assert!(relay.handle_packet(0, Leg::A, b"hello").is_empty());
    assert!(
        relay
            .handle_packet(0, Leg::A, &[0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .is_empty()
    );
    let stats = relay.stats(Leg::A);
    assert_eq!(
        (stats.rtcp_in, stats.dropped_malformed, stats.packets_in),
        (1, 2, 3)
    );
}

#[test]
fn on_hold_the_bridge_goes_quiet_and_the_caller_hears_music_in_the_same_stream() {
    let mut relay = Relay::new(bridge()).unwrap();
    let mut caller = Phone::new(0x1111, 1, 0);
    let mut agent = Phone::new(0x2222, 1, 0);
    let mut to_caller = Vec::new();
    let mut now = 0;

    for _ in 0..5 {
        to_caller.extend(owned(
            relay.handle_packet(now, Leg::B, &agent.speak(0x20)),
            Leg::A,
        ));
        relay.handle_packet(now, Leg::A, &caller.speak(0x10));
        now += 20;
    }

    relay.set_hold(true);
    let mut music = Player::from_samples(now, Codec::Pcmu, &tones::hold_music(), true).unwrap();
    let hold_started = now;
    while now < hold_started + 1000 {
        while let Some(frame) = music.handle_timeout(now) {
            to_caller.push(
                RtpPacket::parse(&relay.play(Leg::A, &frame))
                    .unwrap()
                    .to_owned_packet(),
            );
        }
        // Both sides keep sending; nothing crosses.
        assert!(
            sent_to(
                &relay.handle_packet(now, Leg::B, &agent.speak(0x20)),
                Leg::A
            )
            .is_empty()
        );
        assert!(
            sent_to(
                &relay.handle_packet(now, Leg::A, &caller.speak(0x10)),
                Leg::B
            )
            .is_empty()
        );
        now = music.poll_timeout().unwrap().max(now + 1);
    }
    relay.set_hold(false);
    for _ in 0..5 {
        to_caller.extend(owned(
            relay.handle_packet(now, Leg::B, &agent.speak(0x20)),
            Leg::A,
        ));
        now += 20;
    }

    assert_eq!(relay.stats(Leg::A).dropped_on_hold, 50);
    assert_eq!(relay.stats(Leg::B).dropped_on_hold, 50);
    assert_eq!(to_caller.len(), 5 + 50 + 5);
    assert_continuous(&to_caller);
    // Markers at each change of source: agent, music, agent again.
    let markers: Vec<usize> = to_caller
        .iter()
        .enumerate()
        .filter(|(_, p)| p.marker)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(markers, vec![0, 5, 55]);
    assert!(to_caller[5..55].iter().all(|p| p.payload.len() == 160));
}

#[test]
fn a_transfer_to_a_new_agent_continues_the_callers_stream_without_a_jump() {
    let mut relay = Relay::new(bridge()).unwrap();
    let mut first_agent = Phone::new(0x2222, 30_000, 1_000_000);
    let mut second_agent = Phone::new(0x3333, 2, 77);
    let mut to_caller = Vec::new();

    for i in 0..10 {
        to_caller.extend(owned(
            relay.handle_packet(i * 20, Leg::B, &first_agent.speak(1)),
            Leg::A,
        ));
    }
    // 3 seconds of silence while the transfer is set up, then the new agent speaks.
    for i in 0..10 {
        to_caller.extend(owned(
            relay.handle_packet(3180 + i * 20, Leg::B, &second_agent.speak(2)),
            Leg::A,
        ));
    }

    assert_continuous(&to_caller);
    let (before, after) = (&to_caller[9], &to_caller[10]);
    assert_eq!(after.sequence, before.sequence + 1);
    assert_eq!(
        after.timestamp - before.timestamp,
        3000 * 8,
        "the clock moved by the time that passed"
    );
    assert!(after.marker);
    assert_eq!(relay.stats(Leg::B).lost, 0, "a new source is not a loss");
}

#[test]
fn a_new_source_right_away_still_moves_the_clock_on_by_a_frame() {
    let mut relay = Relay::new(bridge()).unwrap();
    let out = relay.handle_packet(0, Leg::A, &Phone::new(1, 1, 1).speak(0));
    let first = sent_to(&out, Leg::B)[0].timestamp;
    let out = relay.handle_packet(0, Leg::A, &Phone::new(2, 9, 9).speak(0));
    assert_eq!(sent_to(&out, Leg::B)[0].timestamp, first + 160);
}

#[test]
fn dtmf_is_reported_once_and_forwarded_with_the_far_sides_payload_type() {
    let mut relay = Relay::new(bridge()).unwrap();
    let mut reported = String::new();
    let mut forwarded = Vec::new();
    // Digit 9: start, one update, three end copies (E bit, 0x80), all at timestamp 8000.
    for (sequence, flags) in [(1u16, 0x0A), (2, 0x0A), (3, 0x8A), (4, 0x8A), (5, 0x8A)] {
        let payload = [9, flags, 0x03, 0x20];
        let mut packet = RtpPacket::new(CALLER_EVENT_PT, sequence, 8000, 0x1111, &payload);
        packet.marker = sequence == 1;
        let out = relay.handle_packet(
            u64::from(sequence) * 50,
            Leg::A,
            &packet.to_bytes().unwrap(),
        );
        reported.push_str(&digits(&out));
        forwarded.extend(owned(out, Leg::B));
    }
    assert_eq!(reported, "9");
    assert_eq!(relay.stats(Leg::A).digits, 1);
    assert_eq!(forwarded.len(), 5);
    assert!(forwarded.iter().all(|p| p.payload_type == AGENT_EVENT_PT));
    assert!(
        forwarded
            .iter()
            .all(|p| p.timestamp == forwarded[0].timestamp),
        "one event, one timestamp"
    );
}

#[test]
fn dtmf_towards_a_leg_without_telephone_events_is_reported_but_not_sent() {
    let mut config = bridge();
    config.b.telephone_event = None;
    let mut relay = Relay::new(config).unwrap();
    let packet = RtpPacket::new(CALLER_EVENT_PT, 1, 0, 0x1111, &[1, 0x0A, 0, 160])
        .to_bytes()
        .unwrap();
    let out = relay.handle_packet(0, Leg::A, &packet);
    assert_eq!(
        out,
        vec![Output::Digit {
            from: Leg::A,
            digit: '1'
        }]
    );
}

#[test]
fn a_telephone_event_type_that_clashes_is_refused() {
    let mut config = bridge();
    config.a = LegConfig {
        outgoing: StreamStart {
            ssrc: 1,
            sequence: 0,
            timestamp: 0,
        },
        telephone_event: Some(0),
    };
    assert_eq!(
        Relay::new(config).unwrap_err(),
        RelayError::BadTelephoneEvent {
            leg: Leg::A,
            payload_type: 0
        }
    );
    config.a.telephone_event = Some(200);
    assert!(Relay::new(config).is_err());
}

#[test]
fn the_outgoing_sequence_wraps_like_any_rtp_stream() {
    let mut config = bridge();
    config.b.outgoing.sequence = 65534;
    let mut relay = Relay::new(config).unwrap();
    let mut caller = Phone::new(1, 0, 0);
    let sequences: Vec<u16> = (0..4)
        .map(|i| {
            sent_to(
                &relay.handle_packet(i * 20, Leg::A, &caller.speak(0)),
                Leg::B,
            )[0]
            .sequence
        })
        .collect();
    assert_eq!(sequences, vec![65534, 65535, 0, 1]);
}

/// The packets an input sent to `leg`, detached from the outputs they borrow.
fn owned(outputs: Vec<Output>, leg: Leg) -> Vec<OwnedPacket> {
    sent_to(&outputs, leg)
        .iter()
        .map(|p| p.to_owned_packet())
        .collect()
}

/// Asserts a stream the far side received is one source, counting up without jumps.
fn assert_continuous(stream: &[OwnedPacket]) {
    for pair in stream.windows(2) {
        assert_eq!(pair[1].ssrc, pair[0].ssrc);
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "sequence jump"
        );
        let step = pair[1].timestamp.wrapping_sub(pair[0].timestamp);
        assert!(step > 0 && step < 1 << 31, "timestamp went back: {step}");
    }
}

/// An RTP packet that owns its payload.
struct OwnedPacket {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    marker: bool,
    payload_type: u8,
    payload: Vec<u8>,
}

trait ToOwnedPacket {
    fn to_owned_packet(&self) -> OwnedPacket;
}

impl ToOwnedPacket for RtpPacket<'_> {
    fn to_owned_packet(&self) -> OwnedPacket {
        OwnedPacket {
            ssrc: self.ssrc,
            sequence: self.sequence,
            timestamp: self.timestamp,
            marker: self.marker,
            payload_type: self.payload_type,
            payload: self.payload.to_vec(),
        }
    }
}

#[test]
fn host_dtmf_reaches_a_leg_as_one_event_and_a_new_agent_brings_its_own_event_type() {
    use switchboard_media::{DtmfReceiver, DtmfSender, TelephoneEvent};
    let mut relay = Relay::new(bridge()).unwrap();
    // The agent presses 5 on the softphone's keypad; the host sends it to the caller.
    let mut sender = DtmfSender::new(400, '5', 100).unwrap();
    let mut packets = Vec::new();
    let mut now = 400;
    while let Some(due) = sender.poll_timeout() {
        now = now.max(due);
        while let Some(p) = sender.handle_timeout(now) {
            packets.push(
                relay
                    .play_event(Leg::A, 400, &p)
                    .expect("caller has events"),
            );
        }
    }
    let parsed: Vec<_> = packets
        .iter()
        .map(|p| RtpPacket::parse(p).unwrap())
        .collect();
    assert!(parsed.iter().all(|p| p.payload_type == CALLER_EVENT_PT));
    assert!(parsed.iter().all(|p| p.ssrc == TO_CALLER_SSRC));
    assert!(
        parsed.iter().all(|p| p.timestamp == parsed[0].timestamp),
        "one event, one timestamp"
    );
    assert!(parsed[0].marker && !parsed[1].marker);
    let mut receiver = DtmfReceiver::new();
    let digits: Vec<char> = parsed
        .iter()
        .filter_map(|p| receiver.handle_packet(p).unwrap())
        .collect();
    assert_eq!(digits, vec!['5']);
    let last = TelephoneEvent::parse(parsed.last().unwrap().payload).unwrap();
    assert!(last.end);

    // Re-bridged to a browser with another event type: forwarded events use it.
    relay.set_telephone_event(Leg::B, Some(110)).unwrap();
    let event = TelephoneEvent {
        event: 1,
        end: false,
        volume: 10,
        duration: 160,
    };
    let from_caller = RtpPacket::new(CALLER_EVENT_PT, 9, 800, 0x1111, &event.to_bytes())
        .to_bytes()
        .unwrap();
    let out = relay.handle_packet(1000, Leg::A, &from_caller);
    assert_eq!(sent_to(&out, Leg::B)[0].payload_type, 110);
    assert!(matches!(
        relay.set_telephone_event(Leg::B, Some(0)),
        Err(RelayError::BadTelephoneEvent { .. })
    ));
    relay.set_telephone_event(Leg::A, None).unwrap();
    assert!(relay.play_event(Leg::A, 2000, &sender_packet()).is_none());
}

fn sender_packet() -> switchboard_media::DtmfPacket {
    let mut s = switchboard_media::DtmfSender::new(0, '1', 40).unwrap();
    s.handle_timeout(0).unwrap()
}
