//! IMAP: reading the mailbox's folder without changing it.
//!
//! - [`codec`]: the wire format, without I/O (quoting, literals, framing).
//! - [`client`]: a session over any transport (login, EXAMINE, UID FETCH).
//! - [`sync`]: the cursor, batches, and reading messages and parts.

pub mod client;
pub mod codec;
pub mod sync;
