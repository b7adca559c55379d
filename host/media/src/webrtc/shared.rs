//! What the endpoint's handles and its driver task share without a round trip: the live
//! sessions with the payload types each accepts, and the counters.
//!
//! Only state lives here, behind a mutex or atomics, and nothing that blocks on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::model::SessionId;

/// The endpoint's counters since it was bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebRtcStats {
    /// Datagrams on the socket that are none of STUN, DTLS, RTP or RTCP.
    pub malformed_datagrams: u64,
    /// Well-formed datagrams that no session claimed (a stranger, or a session that
    /// already ended).
    pub unmatched_datagrams: u64,
    /// Datagrams a session claimed but rejected (failed SRTP authentication, bad DTLS).
    pub rejected_datagrams: u64,
    /// RTP packets from browsers delivered as [`WebRtcEvent::Rtp`](super::WebRtcEvent::Rtp).
    pub rtp_in: u64,
    /// RTP packets from browsers dropped because the consumer was not reading events.
    pub rtp_in_dropped: u64,
    /// RTP packets handed to a session for sending.
    pub rtp_out: u64,
    /// RTP packets given to `send_rtp` but not sent: the queue was full, or the session
    /// was not connected yet or had ended by the time the driver got to it.
    pub rtp_out_dropped: u64,
    /// `Connected`/`Disconnected` events dropped because the event channel was full.
    pub events_dropped: u64,
    /// Datagrams the socket refused to send.
    pub send_errors: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) malformed_datagrams: AtomicU64,
    pub(super) unmatched_datagrams: AtomicU64,
    pub(super) rejected_datagrams: AtomicU64,
    pub(super) rtp_in: AtomicU64,
    pub(super) rtp_in_dropped: AtomicU64,
    pub(super) rtp_out: AtomicU64,
    pub(super) rtp_out_dropped: AtomicU64,
    pub(super) events_dropped: AtomicU64,
    pub(super) send_errors: AtomicU64,
}

impl Counters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> WebRtcStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WebRtcStats {
            malformed_datagrams: get(&self.malformed_datagrams),
            unmatched_datagrams: get(&self.unmatched_datagrams),
            rejected_datagrams: get(&self.rejected_datagrams),
            rtp_in: get(&self.rtp_in),
            rtp_in_dropped: get(&self.rtp_in_dropped),
            rtp_out: get(&self.rtp_out),
            rtp_out_dropped: get(&self.rtp_out_dropped),
            events_dropped: get(&self.events_dropped),
            send_errors: get(&self.send_errors),
        }
    }
}

/// What the handles and the driver share: the live sessions (so `send_rtp`, `close` and
/// `sessions` answer without a round trip) and the counters.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Live sessions and the payload types each accepts. The driver inserts on accept
    /// and removes when a session ends; `close` removes and wakes the driver, which
    /// ends every session missing from here.
    sessions: Mutex<HashMap<SessionId, Vec<u8>>>,
    pub(super) wake: Notify,
    pub(super) counters: Counters,
}

impl Shared {
    pub(super) fn sessions(&self) -> MutexGuard<'_, HashMap<SessionId, Vec<u8>>> {
        // The map stays consistent whatever panicked while holding it.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
