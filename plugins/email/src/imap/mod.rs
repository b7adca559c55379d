//! IMAP: reading the mailbox's folder without changing it.
//!
//! - [`codec`]: the wire format, without I/O (quoting, literals, framing).
//! - [`client`]: a session over any transport (login, EXAMINE, UID FETCH).
//! - [`sync`]: the cursor, batches, and reading messages.
//! - [`parts`]: a message's parts by path: reading it from its structure,
//!   and copying one part in chunks for `fetch-attachment-to`.

pub mod client;
pub mod codec;
pub mod parts;
pub mod sync;
