//! Arbitrary bytes through the SIP parser, framer and transaction layer; the properties
//! live in `switchboard_sip::fuzzing::check` so a stable test runs them too.
//!
//! Run for a bounded time: `cargo +nightly fuzz run parse -- -max_total_time=60`
//! (seed the corpus with `host/sip/tests/fixtures/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard_sip::fuzzing::check(data);
});
