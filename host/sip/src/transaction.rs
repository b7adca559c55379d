//! RFC 3261 §17 transactions: the four state machines and the layer that matches
//! messages to them.
//!
//! The [`TransactionLayer`] is driven like str0m's `Rtc`: feed it what arrived with
//! [`TransactionLayer::handle_input`], start client transactions with
//! [`TransactionLayer::send_request`], then drain [`TransactionLayer::poll_output`]
//! until it returns `None`; sleep until [`TransactionLayer::poll_timeout`] and call
//! [`TransactionLayer::handle_timeout`]. Time is always passed in; the layer never reads
//! a clock, opens a socket or spawns a thread.
//!
//! What the layer does on its own, so the transaction user (TU) does not have to:
//! - retransmits requests (timers A, E) and non-2xx final responses (timer G) over UDP,
//!   and gives up on timers B, F and H;
//! - absorbs retransmitted requests and resends the last response;
//! - answers a new INVITE with 100 Trying at once;
//! - sends the ACK for a non-2xx final response to an INVITE it sent;
//! - retransmits a 2xx to an INVITE until its ACK arrives (the UAS core's duty in
//!   §13.3.1.4, RFC 6026's "Accepted" state), reporting [`Output::Timeout`] after
//!   64·T1 without one so the TU can hang up;
//! - answers CANCEL: 200 and 487 for the INVITE when it is still pending, 200 alone
//!   when the INVITE already has a final response, 481 when there is no such INVITE.
//!
//! What it never does: resolve names (destinations are socket addresses), keep dialog
//! state, or retransmit ACKs for 2xx (that ACK is the dialog's, sent with
//! [`TransactionLayer::send_stateless`]).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::message::{MAGIC_COOKIE, Message, Method, Transport, Via};

/// The RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: timers B, F, H, J and L.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Identifies one transaction inside a [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(u64);

/// Which of the four §17 state machines a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// §17.1.1, we sent an INVITE.
    InviteClient,
    /// §17.1.2, we sent another request.
    NonInviteClient,
    /// §17.2.1, we received an INVITE.
    InviteServer,
    /// §17.2.2, we received another request.
    NonInviteServer,
}

/// Transaction states (RFC 3261 §17, plus RFC 6026 "Accepted" for INVITE servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// INVITE client: waiting for any response.
    Calling,
    /// Non-INVITE client or server: nothing but the request yet.
    Trying,
    /// A provisional response was received or sent.
    Proceeding,
    /// A final response was received or sent; absorbing retransmissions.
    Completed,
    /// INVITE server: the ACK for a non-2xx response arrived.
    Confirmed,
    /// INVITE server: a 2xx was sent; retransmitting it until the ACK.
    Accepted,
}

/// A message the transport parsed, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The parsed message.
    pub message: Message,
    /// The peer's address (the socket's source address, or the connection's peer).
    pub source: SocketAddr,
    /// The transport it arrived on.
    pub transport: Transport,
}

/// What can be fed to [`TransactionLayer::handle_input`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message arrived from the network.
    Received(Received),
    /// The TU answers the request of server transaction `id`.
    Respond {
        /// The server transaction.
        id: TransactionId,
        /// The response, typically built with [`Message::response_to`].
        response: Message,
    },
}

/// A message for the transport to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Which transport.
    pub transport: Transport,
    /// Where to (for stream transports: the connection to that peer).
    pub destination: SocketAddr,
    /// The message; serialize with [`Message::to_bytes`].
    pub message: Message,
}

/// What the layer asks of the transport and the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message.
    Transmit(Transmit),
    /// A new request for the TU, who must answer it with [`Input::Respond`]
    /// (an INVITE has already been answered 100 Trying).
    Request {
        /// The new server transaction.
        id: TransactionId,
        /// The request, its top Via stamped with `received`/`rport`.
        request: Message,
        /// Where it came from.
        source: SocketAddr,
        /// On which transport.
        transport: Transport,
    },
    /// An ACK for a 2xx: it has no transaction and belongs to the dialog.
    Ack {
        /// The ACK.
        request: Message,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A response for client transaction `id`.
    Response {
        /// The client transaction.
        id: TransactionId,
        /// The response.
        response: Message,
    },
    /// A 2xx to an INVITE whose client transaction has ended: a retransmission the
    /// dialog must ACK again (§13.2.2.4).
    StrayResponse {
        /// The response.
        response: Message,
    },
    /// The peer cancelled INVITE server transaction `id`; the layer already answered
    /// the CANCEL 200 and the INVITE 487.
    Cancelled {
        /// The INVITE server transaction.
        id: TransactionId,
        /// The CANCEL request.
        cancel: Message,
    },
    /// Transaction `id` failed: no response in time (timers B, F), or no ACK for a final
    /// response (timer H, or 64·T1 after a 2xx).
    Timeout {
        /// The transaction.
        id: TransactionId,
    },
    /// Transaction `id` is gone; its id will not appear again.
    Terminated {
        /// The transaction.
        id: TransactionId,
    },
}

/// Misuse of the layer by the TU.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransactionError {
    /// No live transaction has this id.
    #[error("no transaction {0:?}")]
    UnknownTransaction(TransactionId),
    /// A response was given where a request is needed.
    #[error("expected a request")]
    NotARequest,
    /// A request was given where a response is needed.
    #[error("expected a response")]
    NotAResponse,
    /// ACK has no client transaction; send it with `send_stateless`.
    #[error("ACK is sent without a transaction")]
    AckIsStateless,
    /// The request's top Via has no RFC 3261 branch.
    #[error("request has no top Via with a z9hG4bK branch")]
    MissingBranch,
    /// A client transaction with this branch and method already exists.
    #[error("branch {0} is already in use")]
    DuplicateBranch(String),
    /// Responses go only to server transactions.
    #[error("{0:?} is not a server transaction")]
    NotAServerTransaction(TransactionId),
    /// The transaction already sent its final response.
    #[error("{0:?} already has a final response")]
    AlreadyFinal(TransactionId),
    /// CANCEL is only sent for an INVITE that has had a provisional response (§9.1).
    #[error("{0:?} is not an INVITE client transaction in Proceeding")]
    NotCancellable(TransactionId),
    /// A header the transaction needs is absent.
    #[error("message lacks {0}")]
    MissingHeader(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: String,
    method: Method,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerKey {
    /// §17.2.3: branch, sent-by and method (ACK counted as INVITE).
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// Requests from RFC 2543 peers without a magic-cookie branch.
    Legacy {
        call_id: String,
        from_tag: String,
        cseq: u32,
        via: String,
        method: Method,
    },
}

fn server_key(request: &Message) -> Result<ServerKey, TransactionError> {
    let via = request
        .via()
        .ok_or(TransactionError::MissingHeader("Via"))?;
    let method = match request.method().ok_or(TransactionError::NotARequest)? {
        Method::Ack => Method::Invite,
        m => m.clone(),
    };
    match via.branch() {
        Some(branch) if branch.starts_with(MAGIC_COOKIE) => Ok(ServerKey::Branch {
            branch: branch.to_string(),
            sent_by: via.sent_by(),
            method,
        }),
        _ => Ok(ServerKey::Legacy {
            call_id: request.call_id().unwrap_or_default().to_string(),
            from_tag: request
                .from()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default(),
            cseq: request.cseq().map(|c| c.number).unwrap_or_default(),
            via: via.sent_by(),
            method,
        }),
    }
}

/// Identifies the ACK for a 2xx: it carries a new branch, so it is matched to the
/// INVITE by Call-ID, From tag and CSeq number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AckKey {
    call_id: String,
    from_tag: String,
    cseq: u32,
}

fn ack_key(message: &Message) -> Option<AckKey> {
    Some(AckKey {
        call_id: message.call_id()?.to_string(),
        from_tag: message.from()?.tag().unwrap_or_default().to_string(),
        cseq: message.cseq()?.number,
    })
}

#[derive(Debug)]
struct Transaction {
    kind: Kind,
    state: State,
    transport: Transport,
    peer: SocketAddr,
    request: Message,
    /// Last response sent (server) or the ACK to resend (INVITE client).
    last_sent: Option<Message>,
    /// Timers A, E, G, and the 2xx retransmission.
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    /// Timers B, F, H and L: the transaction fails when they fire.
    give_up_at: Option<Instant>,
    /// Timers D, I, J, K: the transaction ends quietly when they fire.
    linger_until: Option<Instant>,
    acked: bool,
    /// The deadline filed in [`TransactionLayer::deadlines`], if any.
    scheduled: Option<Instant>,
    /// The index entries that lead here, removed with the transaction.
    client_key: Option<ClientKey>,
    server_key: Option<ServerKey>,
    ack_key: Option<AckKey>,
}

impl Transaction {
    fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.give_up_at, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    fn clear_timers(&mut self) {
        self.retransmit_at = None;
        self.give_up_at = None;
        self.linger_until = None;
    }
}

/// All transactions of one SIP endpoint. See the [module docs](self).
#[derive(Debug, Default)]
pub struct TransactionLayer {
    timers: Timers,
    next_id: u64,
    transactions: HashMap<TransactionId, Transaction>,
    clients: HashMap<ClientKey, TransactionId>,
    servers: HashMap<ServerKey, TransactionId>,
    accepted: HashMap<AckKey, TransactionId>,
    outputs: VecDeque<Output>,
    /// Every live deadline, so the next one and the due ones are found without a pass
    /// over all transactions (a busy trunk keeps tens of thousands lingering).
    deadlines: BTreeSet<(Instant, TransactionId)>,
    /// Transactions whose timers may have changed since the last [`Self::reschedule`].
    touched: Vec<TransactionId>,
}

impl TransactionLayer {
    /// A layer with the default timers.
    pub fn new() -> Self {
        Self::with_timers(Timers::default())
    }

    /// A layer with custom T1/T2/T4.
    pub fn with_timers(timers: Timers) -> Self {
        TransactionLayer {
            timers,
            ..Default::default()
        }
    }

    /// The state of a live transaction.
    pub fn state(&self, id: TransactionId) -> Option<State> {
        self.transactions.get(&id).map(|t| t.state)
    }

    /// The kind of a live transaction.
    pub fn kind(&self, id: TransactionId) -> Option<Kind> {
        self.transactions.get(&id).map(|t| t.kind)
    }

    /// The request that started a live transaction.
    pub fn request(&self, id: TransactionId) -> Option<&Message> {
        self.transactions.get(&id).map(|t| &t.request)
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// Whether no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// The next thing to do, if any. Drain it after every call that feeds the layer.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Feeds a received message or a TU response.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), TransactionError> {
        let result = match input {
            Input::Received(received) => self.receive(now, received),
            Input::Respond { id, response } => self.respond(now, id, response),
        };
        self.reschedule();
        result
    }

    /// Files the new deadlines of every transaction touched since the last call.
    fn reschedule(&mut self) {
        for id in self.touched.drain(..) {
            let Some(tx) = self.transactions.get_mut(&id) else {
                continue;
            };
            let next = tx.next_deadline();
            if next != tx.scheduled {
                if let Some(old) = tx.scheduled {
                    self.deadlines.remove(&(old, id));
                }
                if let Some(at) = next {
                    self.deadlines.insert((at, id));
                }
                tx.scheduled = next;
            }
        }
    }

    /// Starts a client transaction for `request` (anything but ACK) and sends it.
    ///
    /// The request's top Via must carry a fresh `z9hG4bK` branch
    /// (see [`crate::message::new_branch`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        destination: SocketAddr,
        transport: Transport,
    ) -> Result<TransactionId, TransactionError> {
        let method = request
            .method()
            .ok_or(TransactionError::NotARequest)?
            .clone();
        if method == Method::Ack {
            return Err(TransactionError::AckIsStateless);
        }
        let branch = request
            .via()
            .and_then(|v| v.branch().map(str::to_string))
            .filter(|b| b.starts_with(MAGIC_COOKIE))
            .ok_or(TransactionError::MissingBranch)?;
        let key = ClientKey {
            branch: branch.clone(),
            method: method.clone(),
        };
        if self.clients.contains_key(&key) {
            return Err(TransactionError::DuplicateBranch(branch));
        }
        let (kind, state) = if method == Method::Invite {
            (Kind::InviteClient, State::Calling)
        } else {
            (Kind::NonInviteClient, State::Trying)
        };
        let id = self.allocate_id();
        let mut tx = Transaction {
            kind,
            state,
            transport,
            peer: destination,
            request: request.clone(),
            last_sent: None,
            retransmit_at: None,
            retransmit_interval: self.timers.t1,
            give_up_at: Some(now + self.timers.timeout()),
            linger_until: None,
            acked: false,
            scheduled: None,
            client_key: Some(key.clone()),
            server_key: None,
            ack_key: None,
        };
        if !transport.is_reliable() {
            tx.retransmit_at = Some(now + self.timers.t1);
        }
        self.clients.insert(key, id);
        self.transactions.insert(id, tx);
        self.touched.push(id);
        self.reschedule();
        self.transmit(transport, destination, request);
        Ok(id)
    }

    /// Cancels the INVITE of client transaction `id` (§9.1): builds the CANCEL and
    /// starts its own non-INVITE client transaction. The INVITE transaction will see
    /// the 487.
    pub fn cancel(
        &mut self,
        now: Instant,
        id: TransactionId,
    ) -> Result<TransactionId, TransactionError> {
        let tx = self
            .transactions
            .get(&id)
            .ok_or(TransactionError::UnknownTransaction(id))?;
        if tx.kind != Kind::InviteClient || tx.state != State::Proceeding {
            return Err(TransactionError::NotCancellable(id));
        }
        let cancel = cancel_for(&tx.request);
        let (peer, transport) = (tx.peer, tx.transport);
        self.send_request(now, cancel, peer, transport)
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, or a stateless
    /// answer such as [`crate::message::ParseError::answer`].
    pub fn send_stateless(
        &mut self,
        message: Message,
        destination: SocketAddr,
        transport: Transport,
    ) {
        self.transmit(transport, destination, message);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due: Vec<TransactionId> = self
            .deadlines
            .range(..=(now, TransactionId(u64::MAX)))
            .map(|(_, id)| *id)
            .collect();
        due.sort();
        for id in due {
            self.fire(now, id);
        }
        self.reschedule();
    }

    fn fire(&mut self, now: Instant, id: TransactionId) {
        let timers = self.timers;
        self.touched.push(id);
        let Some(tx) = self.transactions.get_mut(&id) else {
            return;
        };
        if tx.give_up_at.is_some_and(|t| t <= now) {
            // B, F, H: failure. L after a 2xx: failure only without an ACK.
            let failed = !(tx.state == State::Accepted && tx.acked);
            if failed {
                self.outputs.push_back(Output::Timeout { id });
            }
            self.terminate(id);
            return;
        }
        if tx.linger_until.is_some_and(|t| t <= now) {
            self.terminate(id);
            return;
        }
        if tx.retransmit_at.is_some_and(|t| t <= now) {
            let message = match tx.kind {
                Kind::InviteClient | Kind::NonInviteClient => Some(tx.request.clone()),
                Kind::InviteServer | Kind::NonInviteServer => tx.last_sent.clone(),
            };
            let doubled = tx.retransmit_interval * 2;
            tx.retransmit_interval = match (tx.kind, tx.state) {
                // Timer A doubles without bound; E (Trying), G and the 2xx cap at T2.
                (Kind::InviteClient, _) => doubled,
                (Kind::NonInviteClient, State::Proceeding) => timers.t2,
                _ => doubled.min(timers.t2),
            };
            tx.retransmit_at = Some(now + tx.retransmit_interval);
            let (transport, peer) = (tx.transport, tx.peer);
            if let Some(message) = message {
                self.transmit(transport, peer, message);
            }
        }
    }

    fn receive(&mut self, now: Instant, received: Received) -> Result<(), TransactionError> {
        if received.message.is_request() {
            self.receive_request(now, received)
        } else {
            self.receive_response(now, received.message)
        }
    }

    fn receive_response(
        &mut self,
        now: Instant,
        response: Message,
    ) -> Result<(), TransactionError> {
        let status = response.status().ok_or(TransactionError::NotAResponse)?;
        let cseq = response
            .cseq()
            .ok_or(TransactionError::MissingHeader("CSeq"))?;
        let branch = response
            .via()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let key = ClientKey {
            branch,
            method: cseq.method.clone(),
        };
        let Some(&id) = self.clients.get(&key) else {
            if (200..300).contains(&status) && cseq.method == Method::Invite {
                self.outputs.push_back(Output::StrayResponse { response });
            }
            return Ok(());
        };
        let timers = self.timers;
        self.touched.push(id);
        let tx = self.transactions.get_mut(&id).expect("indexed");
        let (transport, peer) = (tx.transport, tx.peer);
        match (tx.kind, tx.state) {
            (Kind::InviteClient, State::Calling | State::Proceeding) => {
                if status < 200 {
                    tx.state = State::Proceeding;
                    tx.clear_timers();
                    self.outputs.push_back(Output::Response { id, response });
                } else if status < 300 {
                    self.outputs.push_back(Output::Response { id, response });
                    self.terminate(id);
                } else {
                    let ack = ack_for_failure(&tx.request, &response);
                    tx.state = State::Completed;
                    tx.clear_timers();
                    tx.last_sent = Some(ack.clone());
                    if transport.is_reliable() {
                        self.transmit(transport, peer, ack);
                        self.outputs.push_back(Output::Response { id, response });
                        self.terminate(id);
                    } else {
                        tx.linger_until = Some(now + Duration::from_secs(32));
                        self.transmit(transport, peer, ack);
                        self.outputs.push_back(Output::Response { id, response });
                    }
                }
            }
            (Kind::InviteClient, _) => {
                // Completed: a retransmitted final response gets the same ACK again.
                if status >= 300
                    && let Some(ack) = tx.last_sent.clone()
                {
                    self.transmit(transport, peer, ack);
                }
            }
            (Kind::NonInviteClient, State::Trying | State::Proceeding) => {
                if status < 200 {
                    tx.state = State::Proceeding;
                    self.outputs.push_back(Output::Response { id, response });
                } else {
                    tx.state = State::Completed;
                    tx.clear_timers();
                    self.outputs.push_back(Output::Response { id, response });
                    if transport.is_reliable() {
                        self.terminate(id);
                    } else {
                        tx.linger_until = Some(now + timers.t4);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn receive_request(
        &mut self,
        now: Instant,
        received: Received,
    ) -> Result<(), TransactionError> {
        let Received {
            mut message,
            source,
            transport,
        } = received;
        let mut via = message
            .via()
            .ok_or(TransactionError::MissingHeader("Via"))?;
        stamp_via(&mut via, source);
        message.set_top_via(&via);
        let key = server_key(&message)?;
        let method = message
            .method()
            .cloned()
            .ok_or(TransactionError::NotARequest)?;

        if let Some(&id) = self.servers.get(&key) {
            self.retransmitted_request(now, id, &method);
            return Ok(());
        }
        if method == Method::Ack {
            if let Some(key) = ack_key(&message)
                && let Some(&id) = self.accepted.get(&key)
                && let Some(tx) = self.transactions.get_mut(&id)
            {
                self.touched.push(id);
                tx.acked = true;
                tx.retransmit_at = None;
            }
            self.outputs.push_back(Output::Ack {
                request: message,
                source,
            });
            return Ok(());
        }

        let peer = response_destination(&via, source, transport);
        let kind = if method == Method::Invite {
            Kind::InviteServer
        } else {
            Kind::NonInviteServer
        };
        let id = self.allocate_id();
        self.transactions.insert(
            id,
            Transaction {
                kind,
                state: if kind == Kind::InviteServer {
                    State::Proceeding
                } else {
                    State::Trying
                },
                transport,
                peer,
                request: message.clone(),
                last_sent: None,
                retransmit_at: None,
                retransmit_interval: self.timers.t1,
                give_up_at: None,
                linger_until: None,
                acked: false,
                scheduled: None,
                client_key: None,
                server_key: Some(key.clone()),
                ack_key: None,
            },
        );
        self.servers.insert(key.clone(), id);

        if method == Method::Cancel {
            self.receive_cancel(now, id, key, message);
            return Ok(());
        }
        if kind == Kind::InviteServer {
            self.respond(now, id, Message::response_to(&message, 100))?;
        }
        self.outputs.push_back(Output::Request {
            id,
            request: message,
            source,
            transport,
        });
        Ok(())
    }

    fn retransmitted_request(&mut self, now: Instant, id: TransactionId, method: &Method) {
        self.touched.push(id);
        let Some(tx) = self.transactions.get_mut(&id) else {
            return;
        };
        if *method == Method::Ack {
            if tx.kind == Kind::InviteServer && tx.state == State::Completed {
                tx.state = State::Confirmed;
                tx.clear_timers();
                if tx.transport.is_reliable() {
                    self.terminate(id);
                } else {
                    tx.linger_until = Some(now + self.timers.t4);
                }
            }
            return;
        }
        if tx.state == State::Confirmed {
            return;
        }
        if let Some(last) = tx.last_sent.clone() {
            let (transport, peer) = (tx.transport, tx.peer);
            self.transmit(transport, peer, last);
        }
    }

    fn receive_cancel(
        &mut self,
        now: Instant,
        cancel_id: TransactionId,
        key: ServerKey,
        cancel: Message,
    ) {
        let invite_key = match key {
            ServerKey::Branch {
                branch, sent_by, ..
            } => ServerKey::Branch {
                branch,
                sent_by,
                method: Method::Invite,
            },
            ServerKey::Legacy {
                call_id,
                from_tag,
                cseq,
                via,
                ..
            } => ServerKey::Legacy {
                call_id,
                from_tag,
                cseq,
                via,
                method: Method::Invite,
            },
        };
        let invite = self.servers.get(&invite_key).copied();
        let pending = invite.filter(|id| {
            self.transactions
                .get(id)
                .is_some_and(|t| t.state == State::Proceeding)
        });
        let status = if invite.is_some() { 200 } else { 481 };
        // Responses to our own server transactions cannot fail.
        let _ = self.respond(now, cancel_id, Message::response_to(&cancel, status));
        if let Some(invite_id) = pending {
            let tx = &self.transactions[&invite_id];
            let mut terminated = Message::response_to(&tx.request, 487);
            if let Some(tag) = tx
                .last_sent
                .as_ref()
                .and_then(|r| r.to())
                .and_then(|to| to.tag().map(str::to_string))
            {
                terminated.set_to_tag(&tag);
            }
            let _ = self.respond(now, invite_id, terminated);
            self.outputs.push_back(Output::Cancelled {
                id: invite_id,
                cancel,
            });
        }
    }

    fn respond(
        &mut self,
        now: Instant,
        id: TransactionId,
        response: Message,
    ) -> Result<(), TransactionError> {
        let status = response.status().ok_or(TransactionError::NotAResponse)?;
        let timers = self.timers;
        self.touched.push(id);
        let tx = self
            .transactions
            .get_mut(&id)
            .ok_or(TransactionError::UnknownTransaction(id))?;
        let (transport, peer) = (tx.transport, tx.peer);
        let unreliable = !transport.is_reliable();
        match (tx.kind, tx.state) {
            (Kind::InviteServer, State::Proceeding) => {
                tx.last_sent = Some(response.clone());
                if (200..300).contains(&status) {
                    // The 2xx is retransmitted end to end until the ACK, on any transport.
                    tx.state = State::Accepted;
                    tx.retransmit_interval = timers.t1;
                    tx.retransmit_at = Some(now + timers.t1);
                    tx.give_up_at = Some(now + timers.timeout());
                    if let Some(key) = ack_key(&tx.request) {
                        tx.ack_key = Some(key.clone());
                        self.accepted.insert(key, id);
                    }
                } else if status >= 300 {
                    tx.state = State::Completed;
                    tx.give_up_at = Some(now + timers.timeout());
                    if unreliable {
                        tx.retransmit_interval = timers.t1;
                        tx.retransmit_at = Some(now + timers.t1);
                    }
                }
            }
            (Kind::NonInviteServer, State::Trying | State::Proceeding) => {
                tx.last_sent = Some(response.clone());
                if status < 200 {
                    tx.state = State::Proceeding;
                } else {
                    tx.state = State::Completed;
                    if unreliable {
                        tx.linger_until = Some(now + timers.timeout());
                    } else {
                        self.transmit(transport, peer, response);
                        self.terminate(id);
                        return Ok(());
                    }
                }
            }
            (Kind::InviteClient | Kind::NonInviteClient, _) => {
                return Err(TransactionError::NotAServerTransaction(id));
            }
            _ => return Err(TransactionError::AlreadyFinal(id)),
        }
        self.transmit(transport, peer, response);
        Ok(())
    }

    fn allocate_id(&mut self) -> TransactionId {
        self.next_id += 1;
        TransactionId(self.next_id)
    }

    fn transmit(&mut self, transport: Transport, destination: SocketAddr, message: Message) {
        self.outputs.push_back(Output::Transmit(Transmit {
            transport,
            destination,
            message,
        }));
    }

    fn terminate(&mut self, id: TransactionId) {
        let Some(tx) = self.transactions.remove(&id) else {
            return;
        };
        if let Some(at) = tx.scheduled {
            self.deadlines.remove(&(at, id));
        }
        if let Some(key) = tx.client_key
            && self.clients.get(&key) == Some(&id)
        {
            self.clients.remove(&key);
        }
        if let Some(key) = tx.server_key
            && self.servers.get(&key) == Some(&id)
        {
            self.servers.remove(&key);
        }
        if let Some(key) = tx.ack_key
            && self.accepted.get(&key) == Some(&id)
        {
            self.accepted.remove(&key);
        }
        self.outputs.push_back(Output::Terminated { id });
    }
}

/// §18.2.1 and RFC 3581: records the address a request really came from.
fn stamp_via(via: &mut Via, source: SocketAddr) {
    let ip = source.ip().to_string();
    if via.has_rport() {
        via.params.set("rport", Some(&source.port().to_string()));
        via.params.set("received", Some(&ip));
    } else if via.host.trim_matches(['[', ']']) != ip {
        via.params.set("received", Some(&ip));
    }
}

/// §18.2.2 (with RFC 3581): where responses to a request go. Over a stream, back on the
/// connection; over UDP, to the source address, at the source port when `rport` was
/// asked for and at the sent-by port otherwise.
fn response_destination(via: &Via, source: SocketAddr, transport: Transport) -> SocketAddr {
    if transport.is_reliable() || via.has_rport() {
        source
    } else {
        SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
    }
}

/// §17.1.1.3: the ACK for a non-2xx final response, sent by the transaction itself.
fn ack_for_failure(invite: &Message, response: &Message) -> Message {
    let uri = invite.uri().cloned().expect("INVITE has a Request-URI");
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(via) = invite.header_values("Via").first() {
        ack.push_header("Via", via);
    }
    for name in ["From", "Call-ID"] {
        if let Some(v) = invite.header(name) {
            ack.push_header(name, v);
        }
    }
    if let Some(to) = response.header("To") {
        ack.push_header("To", to);
    }
    if let Some(cseq) = invite.cseq() {
        ack.push_header("CSeq", format!("{} ACK", cseq.number));
    }
    for route in invite.header_values("Route") {
        ack.push_header("Route", route);
    }
    ack.push_header("Max-Forwards", 70);
    ack.push_header("Content-Length", 0);
    ack
}

/// §9.1: the CANCEL for an INVITE we sent: same Request-URI, top Via (so the same
/// branch), From, To, Call-ID, CSeq number and Route set.
pub fn cancel_for(invite: &Message) -> Message {
    let uri = invite.uri().cloned().expect("INVITE has a Request-URI");
    let mut cancel = Message::request(Method::Cancel, uri);
    if let Some(via) = invite.header_values("Via").first() {
        cancel.push_header("Via", via);
    }
    for name in ["From", "To", "Call-ID"] {
        if let Some(v) = invite.header(name) {
            cancel.push_header(name, v);
        }
    }
    if let Some(cseq) = invite.cseq() {
        cancel.push_header("CSeq", format!("{} CANCEL", cseq.number));
    }
    for route in invite.header_values("Route") {
        cancel.push_header("Route", route);
    }
    cancel.push_header("Max-Forwards", 70);
    cancel.push_header("Content-Length", 0);
    cancel
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{SipUri, new_branch};

    fn options(branch: &str) -> Message {
        Message::request(Method::Options, SipUri::sip(Some("bob"), "b.example", None))
            .with_header(
                "Via",
                Via::new(Transport::Udp, "a.example", Some(5060), branch),
            )
            .with_header("From", "<sip:alice@a.example>;tag=1")
            .with_header("To", "<sip:bob@b.example>")
            .with_header("Call-ID", "c1")
            .with_header("CSeq", "1 OPTIONS")
            .with_header("Content-Length", 0)
    }

    fn peer() -> SocketAddr {
        "192.0.2.7:5060".parse().unwrap()
    }

    #[test]
    fn timer_e_caps_at_t2_and_timer_f_gives_up() {
        let t0 = Instant::now();
        let mut layer = TransactionLayer::new();
        let id = layer
            .send_request(t0, options(&new_branch()), peer(), Transport::Udp)
            .unwrap();
        assert!(matches!(layer.poll_output(), Some(Output::Transmit(_))));
        let mut sends = vec![0u128];
        while let Some(at) = layer.poll_timeout() {
            layer.handle_timeout(at);
            while let Some(out) = layer.poll_output() {
                match out {
                    Output::Transmit(_) => sends.push((at - t0).as_millis()),
                    Output::Timeout { id: t } => assert_eq!(t, id),
                    Output::Terminated { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(
            sends,
            [
                0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert!(layer.is_empty());
    }

    #[test]
    fn acks_and_requests_without_branch_are_refused() {
        let mut layer = TransactionLayer::new();
        let now = Instant::now();
        let mut ack = options("z9hG4bKx");
        ack.start = crate::message::StartLine::Request {
            method: Method::Ack,
            uri: SipUri::sip(None, "b.example", None),
        };
        assert_eq!(
            layer.send_request(now, ack, peer(), Transport::Udp),
            Err(TransactionError::AckIsStateless)
        );
        assert_eq!(
            layer.send_request(now, options("no-cookie"), peer(), Transport::Udp),
            Err(TransactionError::MissingBranch)
        );
        layer
            .send_request(now, options("z9hG4bKsame"), peer(), Transport::Udp)
            .unwrap();
        assert!(matches!(
            layer.send_request(now, options("z9hG4bKsame"), peer(), Transport::Udp),
            Err(TransactionError::DuplicateBranch(_))
        ));
    }

    /// The deadline index and the key maps agree with a pass over every transaction.
    fn assert_indexes_agree(layer: &TransactionLayer) {
        let brute = layer
            .transactions
            .values()
            .filter_map(Transaction::next_deadline)
            .min();
        assert_eq!(layer.poll_timeout(), brute);
        assert_eq!(
            layer.deadlines.len(),
            layer
                .transactions
                .values()
                .filter(|t| t.next_deadline().is_some())
                .count()
        );
        for (id, tx) in &layer.transactions {
            if let Some(at) = tx.next_deadline() {
                assert!(layer.deadlines.contains(&(at, *id)), "{id:?} not filed");
            }
        }
        let live = |id: &TransactionId| layer.transactions.contains_key(id);
        assert!(layer.clients.values().all(live));
        assert!(layer.servers.values().all(live));
        assert!(layer.accepted.values().all(live));
    }

    #[test]
    fn the_deadline_index_follows_every_timer_change() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut layer = TransactionLayer::new();
        let mut now = Instant::now();
        let mut last_received: Option<Message> = None;
        let mut terminated = 0;
        for step in 0..3000 {
            let transport = if next(3) == 0 {
                Transport::Tcp
            } else {
                Transport::Udp
            };
            let ids: Vec<TransactionId> = layer.transactions.keys().copied().collect();
            let pick = |r: u64| ids.get(r as usize % ids.len().max(1)).copied();
            match next(8) {
                0 => {
                    let mut request = options(&new_branch());
                    if next(2) == 0 {
                        request.start = crate::message::StartLine::Request {
                            method: Method::Invite,
                            uri: SipUri::sip(Some("bob"), "b.example", None),
                        };
                        request.set_header("CSeq", "1 INVITE");
                    }
                    let _ = layer.send_request(now, request, peer(), transport);
                }
                1 => {
                    let request = match (&last_received, next(4)) {
                        (Some(again), 0) => again.clone(),
                        _ => {
                            let mut r = options(&new_branch());
                            r.set_header("Call-ID", format!("call-{step}"));
                            if next(2) == 0 {
                                r.start = crate::message::StartLine::Request {
                                    method: Method::Invite,
                                    uri: SipUri::sip(Some("bob"), "b.example", None),
                                };
                                r.set_header("CSeq", "1 INVITE");
                            }
                            r
                        }
                    };
                    last_received = Some(request.clone());
                    let received = Received {
                        message: request,
                        source: peer(),
                        transport,
                    };
                    let _ = layer.handle_input(now, Input::Received(received));
                }
                2 => {
                    if let Some(id) = pick(next(1000)) {
                        let status = [100, 180, 200, 486][next(4) as usize];
                        if let Some(request) = layer.request(id).cloned() {
                            let response = Message::response_to(&request, status);
                            let _ = layer.handle_input(now, Input::Respond { id, response });
                            let received = Received {
                                message: Message::response_to(&request, status),
                                source: peer(),
                                transport,
                            };
                            let _ = layer.handle_input(now, Input::Received(received));
                        }
                    }
                }
                3 => {
                    if let Some(request) = pick(next(1000)).and_then(|id| layer.request(id)) {
                        let mut ack = request.clone();
                        ack.start = crate::message::StartLine::Request {
                            method: Method::Ack,
                            uri: SipUri::sip(Some("bob"), "b.example", None),
                        };
                        let number = request.cseq().map(|c| c.number).unwrap_or(1);
                        ack.set_header("CSeq", format!("{number} ACK"));
                        if next(2) == 0 {
                            let via =
                                Via::new(Transport::Udp, "a.example", Some(5060), &new_branch());
                            ack.set_top_via(&via);
                        }
                        let received = Received {
                            message: ack,
                            source: peer(),
                            transport,
                        };
                        let _ = layer.handle_input(now, Input::Received(received));
                    }
                }
                4 => {
                    if let Some(request) = pick(next(1000)).and_then(|id| layer.request(id)) {
                        let received = Received {
                            message: cancel_for(request),
                            source: peer(),
                            transport,
                        };
                        let _ = layer.handle_input(now, Input::Received(received));
                    }
                }
                5 => {
                    if let Some(id) = pick(next(1000)) {
                        let _ = layer.cancel(now, id);
                    }
                }
                _ => {
                    now += Duration::from_millis(next(4000));
                    layer.handle_timeout(now);
                }
            }
            while let Some(output) = layer.poll_output() {
                if matches!(output, Output::Terminated { .. }) {
                    terminated += 1;
                }
            }
            assert_indexes_agree(&layer);
        }
        while let Some(at) = layer.poll_timeout() {
            layer.handle_timeout(at);
            assert_indexes_agree(&layer);
        }
        // What is left waits for the TU or the peer (a request without an answer, an
        // INVITE that is ringing), which no timer covers.
        assert!(layer.deadlines.is_empty());
        assert!(terminated > 500, "transactions do end: {terminated}");
    }

    #[test]
    fn a_non_rport_udp_response_goes_to_the_sent_by_port() {
        let via = Via::parse("SIP/2.0/UDP phone.example:5062;branch=z9hG4bK1").unwrap();
        let source: SocketAddr = "198.51.100.1:40000".parse().unwrap();
        assert_eq!(
            response_destination(&via, source, Transport::Udp),
            "198.51.100.1:5062".parse().unwrap()
        );
        let mut stamped = via.clone();
        stamp_via(&mut stamped, source);
        assert_eq!(stamped.received(), Some("198.51.100.1"));
    }
}
