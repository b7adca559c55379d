//! Stories of DTMF: a caller pressing keys, and the host sending a digit.

use switchboard_media::dtmf::{DTMF_END_REPEATS, DTMF_INTERVAL_MS};
use switchboard_media::{DtmfReceiver, DtmfSender, RtpPacket, TelephoneEvent};

/// The packets a phone sends for one key press, as (RTP timestamp, event) pairs.
fn key_press(timestamp: u32, digit: char, duration_ms: u32) -> Vec<(u32, TelephoneEvent)> {
    let mut sender = DtmfSender::new(0, digit, duration_ms).unwrap();
    let mut packets = Vec::new();
    while let Some(at) = sender.poll_timeout() {
        while let Some(packet) = sender.handle_timeout(at) {
            packets.push((timestamp, packet.event));
        }
    }
    packets
}

#[test]
fn a_caller_dialing_one_two_one_is_heard_as_three_digits() {
    let mut receiver = DtmfReceiver::new();
    let mut heard = String::new();
    // The same key twice in a row differs only by timestamp.
    let presses = [
        key_press(8000, '1', 120),
        key_press(16_000, '2', 120),
        key_press(24_000, '1', 120),
    ];
    for press in &presses {
        assert_eq!(
            press.iter().filter(|(_, e)| e.end).count(),
            3,
            "three end packets"
        );
        for (timestamp, event) in press {
            heard.extend(receiver.handle(0xCAFE, *timestamp, event));
        }
    }
    assert_eq!(heard, "121");
}

#[test]
fn lost_start_packets_and_reordered_end_copies_still_give_one_digit_each() {
    let mut receiver = DtmfReceiver::new();
    let end = |event: u8| TelephoneEvent {
        event,
        end: true,
        volume: 10,
        duration: 800,
    };
    let mut heard = String::new();
    // Only the end packets of '#' arrive; then an end copy of it turns up after '*' began.
    heard.extend(receiver.handle(1, 100, &end(11)));
    heard.extend(receiver.handle(1, 100, &end(11)));
    heard.extend(receiver.handle(
        1,
        900,
        &TelephoneEvent {
            end: false,
            ..end(10)
        },
    ));
    heard.extend(receiver.handle(1, 100, &end(11)));
    heard.extend(receiver.handle(1, 900, &end(10)));
    assert_eq!(heard, "#*");
}

#[test]
fn the_same_timestamp_from_another_source_is_another_event() {
    let mut receiver = DtmfReceiver::new();
    let press = TelephoneEvent {
        event: 5,
        end: false,
        volume: 0,
        duration: 0,
    };
    assert_eq!(receiver.handle(1, 100, &press), Some('5'));
    assert_eq!(receiver.handle(2, 100, &press), Some('5'));
}

#[test]
fn non_dtmf_events_are_not_digits() {
    let mut receiver = DtmfReceiver::new();
    // Event 32 is a fax tone (RFC 4734).
    assert_eq!(
        receiver.handle(
            1,
            100,
            &TelephoneEvent {
                event: 32,
                end: false,
                volume: 0,
                duration: 0
            }
        ),
        None
    );
}

#[test]
fn receiver_reads_rtp_packets() {
    let mut receiver = DtmfReceiver::new();
    let payload = TelephoneEvent {
        event: 12,
        end: false,
        volume: 10,
        duration: 160,
    }
    .to_bytes();
    let datagram = RtpPacket::new(101, 1, 320, 7, &payload).to_bytes().unwrap();
    let packet = RtpPacket::parse(&datagram).unwrap();
    assert_eq!(receiver.handle_packet(&packet), Ok(Some('A')));
    assert_eq!(receiver.handle_packet(&packet), Ok(None));
    let short = RtpPacket::new(101, 2, 640, 7, &[1, 2]);
    assert!(receiver.handle_packet(&short).is_err());
}

#[test]
fn the_host_sends_a_digit_as_start_updates_every_50_ms_and_three_ends() {
    let start = 10_000;
    let mut sender = DtmfSender::new(start, '#', 160)
        .unwrap()
        .with_volume(7)
        .unwrap();
    assert_eq!(
        sender.handle_timeout(start - 1),
        None,
        "nothing before its time"
    );

    let mut sent = Vec::new();
    let mut now = start;
    while let Some(due) = sender.poll_timeout() {
        assert!(due >= now, "the schedule never goes back");
        now = due;
        while let Some(packet) = sender.handle_timeout(now) {
            sent.push((now, packet));
        }
    }

    let schedule: Vec<(u64, bool, bool, u16)> = sent
        .iter()
        .map(|(at, p)| (at - start, p.marker, p.event.end, p.event.duration))
        .collect();
    assert_eq!(
        schedule,
        vec![
            (0, true, false, 0),
            (DTMF_INTERVAL_MS, false, false, 400),
            (2 * DTMF_INTERVAL_MS, false, false, 800),
            (3 * DTMF_INTERVAL_MS, false, false, 1200),
            (160, false, true, 1280),
            (160, false, true, 1280),
            (160, false, true, 1280),
        ]
    );
    assert_eq!(
        sent.iter().filter(|(_, p)| p.event.end).count(),
        usize::from(DTMF_END_REPEATS)
    );
    assert!(
        sent.iter()
            .all(|(_, p)| p.event.event == 11 && p.event.volume == 7)
    );
    assert_eq!(sender.handle_timeout(now + 1000), None, "done");
}

#[test]
fn a_late_driver_catches_up_in_order() {
    let mut sender = DtmfSender::new(0, '0', 100).unwrap();
    let mut durations = Vec::new();
    while let Some(packet) = sender.handle_timeout(500) {
        durations.push(packet.event.duration);
    }
    assert_eq!(durations, vec![0, 400, 800, 800, 800]);
}
