//! `test-misbehave-routing`: a routing policy that misbehaves on purpose, so
//! the host's tests can prove that a broken policy never stops routing.
//!
//! The config key `mode` (default `panic`) picks the misbehaviour of both
//! `classify` and `rank`:
//!
//! | mode      | behaviour |
//! |-----------|-----------|
//! | `panic`   | panics (a trap) |
//! | `loop`    | spins forever (the host's deadline must end it) |
//! | `error`   | returns `internal` |
//! | `garbage` | `classify` answers a queue name with spaces; `rank` answers out-of-range and duplicate indices around the real ones |
//!
//! Any other mode is a `config` error.

use core::hint::black_box;

use switchboard_sdk::routing::{Candidates, Classification, TaskInfo};
use switchboard_sdk::{PluginError, RoutingPolicy, config};

/// A queue name no queue may have (spaces, and a trailing `!`).
const GARBAGE_QUEUE: &str = "not a queue name!";

#[derive(Clone, Copy)]
enum Mode {
    Panic,
    Loop,
    Error,
    Garbage,
}

fn mode() -> Result<Mode, PluginError> {
    match config::get_or("mode", "panic").trim() {
        "panic" => Ok(Mode::Panic),
        "loop" => Ok(Mode::Loop),
        "error" => Ok(Mode::Error),
        "garbage" => Ok(Mode::Garbage),
        other => Err(PluginError::Config(format!(
            "config `mode`: `{other}` is not panic, loop, error or garbage"
        ))),
    }
}

struct Misbehave;

impl RoutingPolicy for Misbehave {
    fn classify(_task: TaskInfo) -> Result<Classification, PluginError> {
        match mode()? {
            Mode::Panic => panic!("deliberate panic in classify"),
            Mode::Loop => spin(),
            Mode::Error => Err(PluginError::Internal("deliberate error in classify".into())),
            Mode::Garbage => Ok(Classification {
                queue: GARBAGE_QUEUE.to_owned(),
                priority: i32::MAX,
                required_skills: Vec::new(),
                steps: Vec::new(),
                ivr: Vec::new(),
            }),
        }
    }

    fn rank(_task: TaskInfo, candidates: &Candidates) -> Result<Vec<u32>, PluginError> {
        match mode()? {
            Mode::Panic => panic!("deliberate panic in rank"),
            Mode::Loop => spin(),
            Mode::Error => Err(PluginError::Internal("deliberate error in rank".into())),
            Mode::Garbage => Ok(garbage_rank(candidates.len())),
        }
    }
}

switchboard_sdk::export_routing!(Misbehave);

/// Out-of-range indices first, then every real index twice (last first), with
/// more out-of-range ones in between.
fn garbage_rank(n: u32) -> Vec<u32> {
    let mut order = vec![u32::MAX, n, n.saturating_add(7)];
    for i in (0..n).rev() {
        order.extend([i, i, n.saturating_add(i), i]);
    }
    order
}

/// Never returns; `black_box` keeps the optimizer from proving the loop idle.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}
