//! The host's log. Every line is tagged with the plugin id; long lines are cut.
//! Never log secrets or message bodies at `info` or above.
//!
//! Each function takes anything that displays, so both a literal and
//! `format_args!` work:
//!
//! ```no_run
//! switchboard_sdk::log::info("webhook received");
//! switchboard_sdk::log::warn(format_args!("provider answered {}", 503));
//! ```

use core::fmt::Display;

use crate::bindings::channel::switchboard::plugin::host;

pub use crate::bindings::channel::switchboard::plugin::host::LogLevel;

/// Writes `message` at `level`.
pub fn log(level: LogLevel, message: impl Display) {
    host::log(level, &message.to_string());
}

/// Writes at [`LogLevel::Trace`].
pub fn trace(message: impl Display) {
    log(LogLevel::Trace, message);
}

/// Writes at [`LogLevel::Debug`].
pub fn debug(message: impl Display) {
    log(LogLevel::Debug, message);
}

/// Writes at [`LogLevel::Info`].
pub fn info(message: impl Display) {
    log(LogLevel::Info, message);
}

/// Writes at [`LogLevel::Warn`].
pub fn warn(message: impl Display) {
    log(LogLevel::Warn, message);
}

/// Writes at [`LogLevel::Error`].
pub fn error(message: impl Display) {
    log(LogLevel::Error, message);
}
