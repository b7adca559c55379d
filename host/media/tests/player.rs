//! Stories of the prompt player on virtual time.

use switchboard_media::{Codec, FRAME_MS, Player, PlayerError};

#[test]
fn a_one_shot_prompt_plays_every_20_ms_and_pads_its_tail_with_silence() {
    let prompt: Vec<u8> = (0..400).map(|i| (i % 200) as u8).collect();
    let mut player = Player::new(1_000, Codec::Pcmu, prompt.clone(), false).unwrap();
    assert_eq!(player.handle_timeout(999), None);

    let mut frames = Vec::new();
    while let Some(due) = player.poll_timeout() {
        frames.push(player.handle_timeout(due).unwrap());
        assert_eq!(player.handle_timeout(due), None, "one frame per slot");
    }
    assert!(player.is_finished());
    assert_eq!(
        frames.iter().map(|f| f.at).collect::<Vec<_>>(),
        vec![1_000, 1_020, 1_040]
    );
    assert_eq!(
        frames.iter().map(|f| f.first).collect::<Vec<_>>(),
        vec![true, false, false]
    );
    assert_eq!(frames[0].payload, prompt[..160]);
    assert_eq!(frames[2].payload[..80], prompt[320..]);
    assert!(
        frames[2].payload[80..].iter().all(|&b| b == 0xFF),
        "μ-law silence"
    );
}

#[test]
fn hold_music_loops_without_a_seam() {
    let prompt: Vec<u8> = (0..=99).collect();
    let mut player = Player::new(0, Codec::Pcma, prompt, true).unwrap();
    let mut played = Vec::new();
    for slot in 0..10 {
        played.extend(player.handle_timeout(slot * FRAME_MS).unwrap().payload);
    }
    assert_eq!(played.len(), 1600);
    assert!(
        played
            .iter()
            .enumerate()
            .all(|(i, &b)| usize::from(b) == i % 100)
    );
    assert!(!player.is_finished());
    player.stop();
    assert_eq!(player.poll_timeout(), None);
}

#[test]
fn a_stalled_driver_skips_stale_frames_instead_of_bursting() {
    let prompt: Vec<u8> = (0..50).flat_map(|i| [i as u8; 160]).collect();
    let mut player = Player::new(0, Codec::Pcmu, prompt, true).unwrap();
    player.handle_timeout(0).unwrap();
    // The driver wakes 200 ms late: frames older than the late limit are skipped.
    let mut caught_up = Vec::new();
    while let Some(frame) = player.handle_timeout(220) {
        caught_up.push((frame.at, frame.payload[0]));
    }
    assert_eq!(caught_up, vec![(160, 8), (180, 9), (200, 10), (220, 11)]);
    assert_eq!(player.poll_timeout(), Some(240));
    assert_eq!(player.frames_played(), 5);
}

#[test]
fn an_empty_prompt_is_refused() {
    assert_eq!(
        Player::new(0, Codec::Pcmu, Vec::new(), true).unwrap_err(),
        PlayerError::EmptyPrompt
    );
}
