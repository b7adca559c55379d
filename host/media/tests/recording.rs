//! Stories of call recording: two people talking, heard back from the file.

use std::io::Cursor;

use switchboard_media::{Codec, Leg, Recorder, RtpPacket, tones, wav};

/// Sends `samples` as 20 ms PCMU packets from one leg, starting at `start_ms`, skipping
/// the packets listed in `lost`.
fn talk(
    recorder: &mut Recorder<Cursor<Vec<u8>>>,
    leg: Leg,
    ssrc: u32,
    first_timestamp: u32,
    start_ms: u64,
    samples: &[i16],
    lost: &[usize],
) {
    let codes = Codec::Pcmu.encode(samples);
    for (i, frame) in codes.chunks(160).enumerate() {
        if lost.contains(&i) {
            continue;
        }
        let timestamp = first_timestamp.wrapping_add(160 * i as u32);
        let datagram = RtpPacket::new(0, i as u16, timestamp, ssrc, frame)
            .to_bytes()
            .unwrap();
        let packet = RtpPacket::parse(&datagram).unwrap();
        recorder
            .record_rtp(start_ms + 20 * i as u64, leg, Codec::Pcmu, &packet)
            .unwrap();
    }
}

fn decoded(samples: &[i16]) -> Vec<i16> {
    Codec::Pcmu.decode(&Codec::Pcmu.encode(samples))
}

#[test]
fn caller_left_agent_right_each_at_its_place_with_silence_for_gaps() {
    let mut recorder = Recorder::new(Cursor::new(Vec::new()), 1_000).unwrap();
    let caller_voice = tones::tone(440, 2000, 8000);
    let agent_voice = tones::tone(1000, 1000, 6000);

    // The caller talks from the start for 2 s, losing packets 10 and 11; the agent
    // answers 500 ms in with a timestamp near the wrap. Packets interleave as they would
    // on the wire.
    talk(
        &mut recorder,
        Leg::A,
        0x1111,
        1_000,
        1_000,
        &caller_voice[..4000],
        &[10, 11],
    );
    talk(
        &mut recorder,
        Leg::B,
        0x2222,
        u32::MAX - 800,
        1_500,
        &agent_voice,
        &[],
    );
    talk(
        &mut recorder,
        Leg::A,
        0x1111,
        1_000 + 4000,
        1_500,
        &caller_voice[4000..],
        &[],
    );
    let file = recorder.finish().unwrap().into_inner();

    let wav = wav::parse(&file).unwrap();
    assert_eq!(
        (wav.channels, wav.sample_rate, wav.encoding),
        (2, 8000, wav::WavEncoding::Pcm16)
    );
    assert_eq!(
        wav.frames(),
        16_000,
        "2 s long: the caller's last sample ends it"
    );
    assert_eq!(file.len(), 44 + 16_000 * 4);

    let left = wav.channel(0);
    let mut expected_left = decoded(&caller_voice);
    expected_left[1600..1920].fill(0); // the two lost packets
    assert_eq!(left, expected_left);

    let right = wav.channel(1);
    assert!(
        right[..4000].iter().all(|&s| s == 0),
        "the agent had not spoken yet"
    );
    assert_eq!(right[4000..12_000], decoded(&agent_voice)[..]);
    assert!(right[12_000..].iter().all(|&s| s == 0));
}

#[test]
fn a_transferred_agent_is_placed_by_the_clock_when_their_stream_begins() {
    let mut recorder = Recorder::new(Cursor::new(Vec::new()), 0).unwrap();
    let voice = tones::tone(600, 200, 5000);
    talk(&mut recorder, Leg::B, 0xAAAA, 50_000, 0, &voice, &[]);
    // A new agent, with unrelated timestamps, picks up 1 s into the call.
    talk(&mut recorder, Leg::B, 0xBBBB, 7, 1_000, &voice, &[]);
    let wav = wav::parse(&recorder.finish().unwrap().into_inner()).unwrap();
    let right = wav.channel(1);
    assert_eq!(wav.frames(), 8000 + 1600);
    assert_eq!(right[..1600], decoded(&voice)[..]);
    assert!(right[1600..8000].iter().all(|&s| s == 0));
    assert_eq!(right[8000..], decoded(&voice)[..]);
    assert!(wav.channel(0).iter().all(|&s| s == 0));
}

#[test]
fn audio_later_than_the_reorder_window_is_dropped_not_misplaced() {
    let mut recorder = Recorder::new(Cursor::new(Vec::new()), 0).unwrap();
    let voice = tones::tone(440, 3000, 5000);
    talk(&mut recorder, Leg::A, 1, 0, 0, &voice, &[]);
    // A packet from 100 ms into the call, delivered 3 s late.
    recorder
        .record(3_000, Leg::A, 1, 800, &[1234; 160])
        .unwrap();
    assert_eq!(recorder.late_samples(), 160);
    let wav = wav::parse(&recorder.finish().unwrap().into_inner()).unwrap();
    assert_eq!(wav.channel(0), decoded(&voice));
}

#[test]
fn a_wild_timestamp_jump_restarts_the_leg_at_the_clock() {
    let mut recorder = Recorder::new(Cursor::new(Vec::new()), 0).unwrap();
    recorder.record(0, Leg::A, 1, 0, &[100; 160]).unwrap();
    // Same source, timestamp an hour ahead, 20 ms later: placed at 20 ms, no hour of
    // silence.
    recorder
        .record(20, Leg::A, 1, 8000 * 3600, &[200; 160])
        .unwrap();
    recorder
        .record(40, Leg::A, 1, 8000 * 3600 + 160, &[300; 160])
        .unwrap();
    let wav = wav::parse(&recorder.finish().unwrap().into_inner()).unwrap();
    assert_eq!(wav.frames(), 480);
    let left = wav.channel(0);
    assert_eq!((left[0], left[160], left[320]), (100, 200, 300));
}

#[test]
fn an_empty_recording_is_a_valid_empty_file() {
    let recorder = Recorder::new(Cursor::new(Vec::new()), 0).unwrap();
    let file = recorder.finish().unwrap().into_inner();
    assert_eq!(file.len(), 44);
    let wav = wav::parse(&file).unwrap();
    assert_eq!((wav.channels, wav.frames()), (2, 0));
}

#[test]
fn telephone_events_are_not_recorded_as_audio() {
    let mut recorder = Recorder::new(Cursor::new(Vec::new()), 0).unwrap();
    let datagram = RtpPacket::new(101, 1, 0, 1, &[1, 0, 0, 160])
        .to_bytes()
        .unwrap();
    recorder
        .record_rtp(
            0,
            Leg::A,
            Codec::Pcmu,
            &RtpPacket::parse(&datagram).unwrap(),
        )
        .unwrap();
    assert_eq!(recorder.frames(), 0);
}
