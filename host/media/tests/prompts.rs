//! The shipped prompt files are exactly what the generator produces.
//!
//! Regenerate them after changing `tones` with
//! `SWITCHBOARD_REGENERATE_PROMPTS=1 cargo test -p switchboard-media --test prompts`.

use std::path::PathBuf;

use switchboard_media::{Codec, Player, tones, wav};

fn prompts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts")
}

#[test]
fn shipped_prompts_equal_the_generators_output() {
    let regenerate = std::env::var("SWITCHBOARD_REGENERATE_PROMPTS").is_ok_and(|v| v == "1");
    for (name, samples) in tones::shipped_prompts() {
        let path = prompts_dir().join(format!("{name}.wav"));
        let expected = tones::prompt_file(&samples).unwrap();
        if regenerate {
            std::fs::write(&path, &expected).unwrap();
        }
        let shipped = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}); regenerate the prompts",
                path.display()
            )
        });
        assert!(
            shipped == expected,
            "{} differs from the generator; regenerate the prompts",
            path.display()
        );
        assert!(shipped.len() < 48_000, "{name} is small");
    }
}

#[test]
fn every_file_in_the_prompts_folder_comes_from_the_generator() {
    let known: Vec<String> = tones::shipped_prompts()
        .iter()
        .map(|(name, _)| format!("{name}.wav"))
        .collect();
    for entry in std::fs::read_dir(prompts_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(known.contains(&name), "{name} has no generator");
    }
}

#[test]
fn the_shipped_beep_plays_as_25_frames_of_pcma() {
    let file = std::fs::read(prompts_dir().join("beep.wav")).unwrap();
    let samples = wav::read_prompt(&file).unwrap();
    assert_eq!(samples.len(), 4000);
    // The prompt is μ-law on disk; an A-law call re-encodes it once.
    let mut player = Player::from_samples(0, Codec::Pcma, &samples, false).unwrap();
    let mut frames = 0;
    while let Some(due) = player.poll_timeout() {
        let frame = player.handle_timeout(due).unwrap();
        assert_eq!(frame.payload.len(), 160);
        frames += 1;
    }
    assert_eq!(frames, 25);
}
