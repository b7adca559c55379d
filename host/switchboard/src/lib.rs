//! The `switchboard` binary's library half: tools the CLI runs that other crates
//! reuse (the benchmarks in `switchboard-bench` replay policies the same way).
//!
//! - [`replay`]: `switchboard routing replay`, a recorded arrival trace through one or
//!   two routing policies on virtual time;
//! - [`offline`]: the host capabilities plugins get outside the server (in-memory kv,
//!   no network, a wall or virtual clock).

#![deny(missing_docs)]

pub mod offline;
pub mod replay;
