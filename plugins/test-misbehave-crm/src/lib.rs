//! `test-misbehave-crm`: a CRM plugin that misbehaves on purpose, so the host's
//! tests can prove that a broken CRM is quarantined and never holds up webhooks,
//! routing or the other CRMs.
//!
//! The config key `mode` (default `loop`) picks what every call does:
//!
//! | mode    | behaviour |
//! |---------|-----------|
//! | `loop`  | spins forever (the host's deadline must end it) |
//! | `panic` | panics (a trap) |
//! | `error` | returns `internal` |
//!
//! Any other mode is a `config` error.

use core::hint::black_box;

use switchboard_sdk::crm::{CrmProfile, TimelineEntry};
use switchboard_sdk::{Crm, Identity, PluginError, config};

fn misbehave(call: &str) -> PluginError {
    match config::get_or("mode", "loop").trim() {
        "loop" => spin(),
        "panic" => panic!("deliberate panic in {call}"),
        "error" => PluginError::Internal(format!("deliberate error in {call}")),
        other => PluginError::Config(format!(
            "config `mode`: `{other}` is not loop, panic or error"
        )),
    }
}

/// Burns CPU until the host's deadline traps the instance.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

struct Misbehave;

impl Crm for Misbehave {
    fn lookup_contact(_identity: Identity) -> Result<Option<CrmProfile>, PluginError> {
        Err(misbehave("lookup-contact"))
    }

    fn record_activity(_entry: TimelineEntry) -> Result<(), PluginError> {
        Err(misbehave("record-activity"))
    }
}

switchboard_sdk::export_crm!(Misbehave);
