//! E-mail connectors: the `switchboard:mail/email@0.2.0` world.
//!
//! An e-mail connector is a channel connector ([`crate::Channel`]) that also
//! implements [`crate::Mailer`]: polling and webhooks that report each
//! message's [`Envelope`] (its `To` and `Cc`, whether a machine wrote it,
//! what could not be read), sending with [`Copies`], and copying a large
//! inbound file straight into the host's blob store through a [`BlobWriter`]
//! ([`crate::Mailer::fetch_attachment_to`]). Export both with
//! [`crate::export_email!`]; the manifest declares
//! `world = "switchboard:mail/email@0.2.0"` (`kind = "channel"`).
//!
//! A connector built with an earlier SDK on `switchboard:mail/email@0.1.0`
//! keeps running; to move it here, change the manifest's `world` and, if it
//! reports files it can read again (IMAP parts), implement
//! `fetch_attachment_to` (the default leaves copying to
//! [`crate::Channel::fetch_attachment`]).
//!
//! Besides HTTP, such a connector may open byte streams to the mail servers
//! its operator approved ([`Connection::connect`]): the manifest names the
//! config keys that hold each server's host and port,
//!
//! ```toml
//! [[capabilities.connect]]
//! host-config = "imap_host"
//! port-config = "imap_port"
//! default-port = 993
//! ```
//!
//! and the host connects only to those `host:port` pairs as the operator set
//! them, verifies TLS certificates itself, and refuses [`Security::Plain`]
//! unless the server is on loopback.
//!
//! Protocol code is best written against the [`Transport`] trait rather than
//! [`Connection`]: the trait is what a line-based protocol needs (lines,
//! exact byte counts, writes, STARTTLS), so the same code runs over a scripted
//! fake in native unit tests.
//!
//! ```no_run
//! use switchboard_sdk::mail::{Connection, Security, Transport};
//!
//! # fn demo() -> Result<(), switchboard_sdk::PluginError> {
//! let mut imap = Connection::connect("imap.example.com", 993, Security::Tls)?;
//! let greeting = imap.read_line(8192)?; // "* OK …\r\n"
//! imap.write_all(b"a1 LOGOUT\r\n")?;
//! # let _ = greeting;
//! # Ok(())
//! # }
//! ```

use core::fmt;

use crate::bindings::email::switchboard::mail0_1_0::streams;
use crate::{HttpResponse, PluginError, PollOutcome, WebhookOutcome};

pub use crate::bindings::email::exports::switchboard::mail0_1_0::mailer::{
    Automatic, Copies, Envelope, MailBatch,
};
pub use crate::bindings::email::switchboard::mail0_1_0::streams::{Security, StreamError};
pub use crate::bindings::email::switchboard::mail0_2_0::blobs::{BlobError, BlobWriter};

/// The largest piece [`BlobWriter::write_all`] hands the host at once: each
/// piece is copied out of the sandbox, so a file is never copied whole.
pub const BLOB_PIECE_BYTES: usize = 1024 * 1024;

impl BlobWriter {
    /// Writes all of `data`, in pieces of at most [`BLOB_PIECE_BYTES`].
    ///
    /// # Errors
    ///
    /// [`BlobError::TooLarge`] once the file passes the largest the host
    /// keeps (the file will not be stored); [`BlobError::Unavailable`] when
    /// the host cannot write it. After either, every write fails.
    pub fn write_all(&self, data: &[u8]) -> Result<(), BlobError> {
        for piece in data.chunks(BLOB_PIECE_BYTES) {
            self.write(piece)?;
        }
        Ok(())
    }
}

impl From<BlobError> for PluginError {
    /// A file too large for the host will not fit the next time either
    /// ([`PluginError::Permanent`]); a host that cannot write may recover
    /// ([`PluginError::Transient`]).
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::TooLarge(max) => PluginError::Permanent(format!(
                "the file is larger than the host keeps ({max} bytes)"
            )),
            BlobError::Unavailable(detail) => {
                PluginError::Transient(format!("the host could not store the file: {detail}"))
            }
        }
    }
}

/// Bytes asked of the host per read: large enough that a 25 MB message is a
/// few hundred calls, small enough not to balloon memory.
const READ_CHUNK: usize = 256 * 1024;

/// What a line-based mail protocol (IMAP, SMTP, POP3) needs of a connection.
///
/// [`Connection`] implements it over the host's streams; tests implement it
/// over a script.
pub trait Transport {
    /// The next line, with its line end (`\n` or `\r\n`) included.
    ///
    /// # Errors
    ///
    /// [`StreamError::Limit`] when no line end comes within `max` bytes;
    /// [`StreamError::Io`] when the server closes the connection first; the
    /// connection's own errors.
    fn read_line(&mut self, max: usize) -> Result<Vec<u8>, StreamError>;

    /// Appends exactly `len` bytes to `out` (an IMAP literal after the
    /// line announcing it, without copying a large one twice).
    ///
    /// # Errors
    ///
    /// [`StreamError::Io`] when the server closes the connection first; the
    /// connection's own errors. `out` may then hold part of the bytes.
    fn read_exact_into(&mut self, len: usize, out: &mut Vec<u8>) -> Result<(), StreamError>;

    /// Exactly `len` bytes.
    ///
    /// # Errors
    ///
    /// As [`Transport::read_exact_into`].
    fn read_exact(&mut self, len: usize) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        self.read_exact_into(len, &mut out)?;
        Ok(out)
    }

    /// Writes all of `data`.
    ///
    /// # Errors
    ///
    /// The connection's errors.
    fn write_all(&mut self, data: &[u8]) -> Result<(), StreamError>;

    /// Upgrades the connection to TLS after the protocol's STARTTLS exchange.
    ///
    /// # Errors
    ///
    /// [`StreamError::Tls`] when the handshake fails; [`StreamError::Io`]
    /// when the server sent bytes after its STARTTLS answer (they would be
    /// trusted as if encrypted: a known injection, refused).
    fn start_tls(&mut self) -> Result<(), StreamError>;

    /// Whether the connection is encrypted now.
    fn is_tls(&self) -> bool;
}

/// One connection to an approved mail server, with a read buffer. Closed when
/// dropped, and at the end of the plugin call at the latest.
pub struct Connection {
    stream: streams::Connection,
    buffer: ReadBuffer,
}

impl Connection {
    /// Opens a connection to `host:port`, which must be one of the servers the
    /// manifest's `[[capabilities.connect]]` entries name and the operator set.
    ///
    /// # Errors
    ///
    /// [`StreamError::NotAllowed`] for any other server, or for
    /// [`Security::Plain`] to a server off loopback; [`StreamError::Dns`],
    /// [`StreamError::Io`], [`StreamError::Tls`], [`StreamError::Timeout`]
    /// as they say.
    pub fn connect(host: &str, port: u16, security: Security) -> Result<Self, StreamError> {
        Ok(Self {
            stream: streams::connect(host, port, security)?,
            buffer: ReadBuffer::default(),
        })
    }
}

impl Transport for Connection {
    fn read_line(&mut self, max: usize) -> Result<Vec<u8>, StreamError> {
        self.buffer.read_line(&mut HostStream(&self.stream), max)
    }

    fn read_exact_into(&mut self, len: usize, out: &mut Vec<u8>) -> Result<(), StreamError> {
        self.buffer
            .read_exact_into(&mut HostStream(&self.stream), len, out)
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), StreamError> {
        self.stream.write(data)
    }

    fn start_tls(&mut self) -> Result<(), StreamError> {
        if !self.buffer.is_empty() {
            return Err(StreamError::Io(
                "the server sent data after its STARTTLS answer; refusing to upgrade".into(),
            ));
        }
        self.stream.start_tls()
    }

    fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }
}

/// Where buffered reads get their bytes: the host's stream, or a test's.
trait ReadChunk {
    /// Up to `max` bytes; empty when the peer closed the connection.
    fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, StreamError>;
}

struct HostStream<'a>(&'a streams::Connection);

impl ReadChunk for HostStream<'_> {
    fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, StreamError> {
        self.0.read(u32::try_from(max).unwrap_or(u32::MAX))
    }
}

/// Bytes read from the stream and not yet handed out.
#[derive(Default)]
struct ReadBuffer {
    data: Vec<u8>,
    /// Start of the bytes not yet handed out.
    start: usize,
}

fn closed() -> StreamError {
    StreamError::Io("the server closed the connection".into())
}

impl ReadBuffer {
    fn is_empty(&self) -> bool {
        self.start == self.data.len()
    }

    fn pending(&self) -> &[u8] {
        &self.data[self.start..]
    }

    /// Drops what was handed out, so the buffer does not grow with the session.
    fn compact(&mut self) {
        if self.start > 0 {
            self.data.drain(..self.start);
            self.start = 0;
        }
    }

    fn fill(&mut self, source: &mut impl ReadChunk) -> Result<(), StreamError> {
        let chunk = source.read_chunk(READ_CHUNK)?;
        if chunk.is_empty() {
            return Err(closed());
        }
        self.compact();
        self.data.extend_from_slice(&chunk);
        Ok(())
    }

    fn read_line(
        &mut self,
        source: &mut impl ReadChunk,
        max: usize,
    ) -> Result<Vec<u8>, StreamError> {
        // Bytes already searched for a line end, so a long line is scanned once.
        let mut scanned = 0;
        loop {
            let pending = self.pending();
            if let Some(at) = pending[scanned..].iter().position(|b| *b == b'\n') {
                let end = scanned + at + 1;
                if end > max {
                    return Err(line_too_long(max));
                }
                let line = pending[..end].to_vec();
                self.start += end;
                return Ok(line);
            }
            scanned = pending.len();
            if scanned >= max {
                return Err(line_too_long(max));
            }
            self.fill(source)?;
        }
    }

    fn read_exact_into(
        &mut self,
        source: &mut impl ReadChunk,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamError> {
        let buffered = self.pending().len().min(len);
        out.extend_from_slice(&self.pending()[..buffered]);
        self.start += buffered;
        let mut missing = len - buffered;
        while missing > 0 {
            let chunk = source.read_chunk(missing.min(READ_CHUNK))?;
            if chunk.is_empty() {
                return Err(closed());
            }
            if chunk.len() > missing {
                // A stream may return more than asked; keep the rest.
                out.extend_from_slice(&chunk[..missing]);
                self.compact();
                self.data.extend_from_slice(&chunk[missing..]);
                missing = 0;
            } else {
                out.extend_from_slice(&chunk);
                missing -= chunk.len();
            }
        }
        Ok(())
    }
}

fn line_too_long(max: usize) -> StreamError {
    StreamError::Limit(format!("the server sent a line longer than {max} bytes"))
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::Tls => "tls",
            Security::Starttls => "starttls",
            Security::Plain => "plain",
        })
    }
}

impl From<StreamError> for PluginError {
    /// A server the host does not allow, or whose certificate it does not
    /// trust, is the operator's to fix ([`PluginError::Config`]); a name that
    /// does not resolve, a dropped connection, a timeout or a used-up budget
    /// may pass ([`PluginError::Transient`]).
    fn from(error: StreamError) -> Self {
        match error {
            StreamError::NotAllowed(detail) => {
                PluginError::Config(format!("mail server not allowed: {detail}"))
            }
            StreamError::Tls(detail) => PluginError::Config(format!("TLS failed: {detail}")),
            StreamError::Dns(detail) => {
                PluginError::Transient(format!("mail server name did not resolve: {detail}"))
            }
            StreamError::Io(detail) => {
                PluginError::Transient(format!("mail server connection failed: {detail}"))
            }
            StreamError::Timeout(detail) => {
                PluginError::Transient(format!("mail server did not answer in time: {detail}"))
            }
            StreamError::Limit(detail) => {
                PluginError::Transient(format!("mail connection limit reached: {detail}"))
            }
        }
    }
}

impl Default for Copies {
    /// No copies.
    fn default() -> Self {
        Self {
            cc: Vec::new(),
            bcc: Vec::new(),
        }
    }
}

impl Envelope {
    /// The envelope of the message `provider_id` with no recipients listed,
    /// written by a person, read whole; set the other fields directly.
    pub fn new(provider_id: impl Into<String>) -> Self {
        Self {
            provider_id: provider_id.into(),
            to: Vec::new(),
            cc: Vec::new(),
            automatic: None,
            problem: None,
        }
    }
}

impl Default for MailBatch {
    /// Nothing new, no cursor, nothing more waiting, no webhook answer.
    fn default() -> Self {
        Self {
            events: Vec::new(),
            envelopes: Vec::new(),
            cursor: None,
            more: false,
            response: None,
        }
    }
}

impl MailBatch {
    /// The same batch as `connector.poll` reports it: without envelopes.
    pub fn into_poll_outcome(self) -> PollOutcome {
        PollOutcome {
            events: self.events,
            cursor: self.cursor,
            more: self.more,
        }
    }

    /// The same batch as `connector.handle-webhook` reports it: without
    /// envelopes, answering the provider `200` with an empty body when the
    /// batch has no response of its own.
    pub fn into_webhook_outcome(self) -> WebhookOutcome {
        WebhookOutcome {
            response: self.response.unwrap_or_else(|| HttpResponse::empty(200)),
            events: self.events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out scripted chunks, then reports a closed connection.
    struct Chunks(Vec<Vec<u8>>);

    impl ReadChunk for Chunks {
        fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, StreamError> {
            if self.0.is_empty() {
                return Ok(Vec::new());
            }
            let mut chunk = self.0.remove(0);
            if chunk.len() > max {
                let rest = chunk.split_off(max);
                self.0.insert(0, rest);
            }
            Ok(chunk)
        }
    }

    fn chunks(parts: &[&[u8]]) -> Chunks {
        Chunks(parts.iter().map(|p| p.to_vec()).collect())
    }

    #[test]
    fn lines_span_chunks_and_keep_their_line_end() {
        let mut source = chunks(&[b"* OK he", b"llo\r\na1 OK", b" done\r\n"]);
        let mut buffer = ReadBuffer::default();
        assert_eq!(
            buffer.read_line(&mut source, 100).unwrap(),
            b"* OK hello\r\n"
        );
        assert_eq!(
            buffer.read_line(&mut source, 100).unwrap(),
            b"a1 OK done\r\n"
        );
        assert!(matches!(
            buffer.read_line(&mut source, 100),
            Err(StreamError::Io(_))
        ));
    }

    #[test]
    fn literals_mix_buffered_and_fresh_bytes() {
        let mut source = chunks(&[b"* 1 FETCH (BODY[] {10}\r\n0123", b"456789)\r\n"]);
        let mut buffer = ReadBuffer::default();
        assert_eq!(
            buffer.read_line(&mut source, 100).unwrap(),
            b"* 1 FETCH (BODY[] {10}\r\n"
        );
        let mut literal = b"x".to_vec();
        buffer
            .read_exact_into(&mut source, 10, &mut literal)
            .unwrap();
        assert_eq!(literal, b"x0123456789");
        assert_eq!(buffer.read_line(&mut source, 100).unwrap(), b")\r\n");
        assert!(buffer.is_empty());
    }

    #[test]
    fn a_literal_cut_short_is_an_error() {
        let mut source = chunks(&[b"abc"]);
        let mut buffer = ReadBuffer::default();
        assert!(matches!(
            buffer.read_exact_into(&mut source, 10, &mut Vec::new()),
            Err(StreamError::Io(_))
        ));
    }

    #[test]
    fn overlong_lines_are_refused() {
        let mut source = chunks(&[b"0123456789", b"0123456789\r\n"]);
        let mut buffer = ReadBuffer::default();
        assert!(matches!(
            buffer.read_line(&mut source, 12),
            Err(StreamError::Limit(_))
        ));
        let mut source = chunks(&[b"0123456789\r\n"]);
        let mut buffer = ReadBuffer::default();
        assert!(matches!(
            buffer.read_line(&mut source, 5),
            Err(StreamError::Limit(_))
        ));
    }

    #[test]
    fn batches_convert_to_channel_outcomes() {
        let batch = MailBatch {
            cursor: Some("7:42".into()),
            more: true,
            ..MailBatch::default()
        };
        let poll = batch.clone().into_poll_outcome();
        assert_eq!(poll.cursor.as_deref(), Some("7:42"));
        assert!(poll.more);
        assert_eq!(batch.into_webhook_outcome().response.status, 200);
    }

    #[test]
    fn stream_errors_map_to_plugin_errors() {
        assert!(matches!(
            PluginError::from(StreamError::NotAllowed("x".into())),
            PluginError::Config(_)
        ));
        assert!(matches!(
            PluginError::from(StreamError::Io("reset".into())),
            PluginError::Transient(_)
        ));
    }
}
