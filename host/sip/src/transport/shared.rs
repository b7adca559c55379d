//! What the core and the network tasks (the UDP reader, the stream listeners, readers
//! and writers) share: the inbound queue and what travels on it, the counters, the
//! limits every reader applies, and the stateless answer to bytes that do not parse.
//!
//! Plain state and one pure function; it knows nothing of the tasks that use it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::message::{Message, Method, ParseError, Transport};

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) received: AtomicU64,
    pub(super) sent: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) dropped: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the readers and connection tasks share.
pub(super) struct Shared {
    pub(super) counters: Arc<Counters>,
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) max_message: usize,
    pub(super) idle_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) next_connection: AtomicU64,
}

/// What the network tasks tell the core.
pub(super) enum Inbound {
    Message {
        message: Message,
        source: SocketAddr,
        transport: Transport,
    },
    Malformed {
        source: SocketAddr,
        transport: Transport,
        error: String,
        answered: bool,
    },
    Opened {
        peer: SocketAddr,
        transport: Transport,
        connection: StreamPeer,
    },
    Closed {
        peer: SocketAddr,
        transport: Transport,
        id: u64,
    },
    ConnectFailed {
        peer: SocketAddr,
        transport: Transport,
        error: io::Error,
    },
}

/// One open connection, as the core sees it.
pub(super) struct StreamPeer {
    pub(super) id: u64,
    pub(super) writer: mpsc::Sender<Vec<u8>>,
    pub(super) tasks: [AbortHandle; 2],
}

impl StreamPeer {
    pub(super) fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The stateless answer to a malformed request; an ACK is never answered.
pub(super) fn answer_for(error: &ParseError) -> Option<Message> {
    let answerable = error.can_answer()?;
    if answerable.request.method() == Some(&Method::Ack) {
        return None;
    }
    error.answer()
}
