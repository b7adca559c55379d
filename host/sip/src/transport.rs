//! The tokio driver: UDP, TCP and TLS sockets and the clock around the sans-IO
//! [`TransactionLayer`].
//!
//! [`SipEndpoint::bind`] starts these tasks and hands back a cloneable handle plus a
//! bounded channel of [`SipEvent`]s for the transaction user (the call logic):
//!
//! - **the core**, the one task that owns the [`TransactionLayer`]: it feeds in what the
//!   readers parsed and what the handle asks for, sleeps until
//!   [`poll_timeout`](TransactionLayer::poll_timeout), drains every output at once and
//!   writes transmissions to the sockets;
//! - **the UDP reader**: one datagram is one message;
//! - **a listener per stream transport** and **a reader and a writer per connection**:
//!   the reader frames the byte stream with [`frame`](crate::message::frame), answers
//!   RFC 5626 CRLF pings, and closes the connection when it goes idle, cannot be
//!   framed or outgrows [`TransportConfig::max_message`]. Responses and requests for a stream peer go back
//!   over its connection; requests to a peer without one open it first.
//!
//! Readers parse (so parsing spreads over cores); the core only runs state machines and
//! serializes. Bad bytes never stop a loop: a malformed request that
//! [`ParseError::answer`] can answer gets its 400/416/505 statelessly, anything else is
//! dropped, and either way the TU sees [`SipEvent::Malformed`].
//!
//! When the TU falls behind, events queue inside the core up to
//! [`TransportConfig::event_capacity`] beyond the channel's own capacity; past that, new
//! requests are answered 503 with `Retry-After` instead of being queued, so every
//! transaction still ends correctly and retransmissions keep being absorbed.
//!
//! This module never decides what to answer, never resolves names (destinations are
//! socket addresses) and never keeps dialog or registration state.
//!
//! The handle, the core and the UDP reader live here; `stream` holds the connections and
//! `shared` what the core and the network tasks share. Neither child imports from this
//! module.

mod shared;
mod stream;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, warn};

use shared::{Counters, Inbound, Shared, StreamPeer, answer_for};
use stream::{accept_loop, connect, start_stream};

use crate::message::{MAX_MESSAGE_LEN, Message, ParseError, Transport};
use crate::transaction::{
    Input, Output, Received, Timers, TransactionError, TransactionId, TransactionLayer, Transmit,
};

/// How many commands or inbound messages the core takes in one go before it drains
/// the layer and checks its timer again.
const BATCH: usize = 128;
/// Parsed messages waiting for the core; readers wait when it is full (backpressure
/// to the kernel buffers, which is what UDP and TCP are for).
const INBOUND_CAPACITY: usize = 4096;

/// What [`SipEndpoint::bind`] listens on and how it behaves.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The UDP socket's address (port 0 picks one).
    pub udp: SocketAddr,
    /// The TCP listener's address; `None` means the UDP socket's address and port
    /// (with port 0, the port the UDP socket got).
    pub tcp: Option<SocketAddr>,
    /// The TLS listener's address and server configuration, if TLS is served.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    /// The client configuration for outbound TLS. The peer's certificate is checked
    /// against the destination's IP address.
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
    /// T1, T2 and T4 for the transaction layer.
    pub timers: Timers,
    /// Largest message accepted, in bytes (at most [`MAX_MESSAGE_LEN`], the default).
    pub max_message: usize,
    /// A connection that sends nothing for this long is closed (10 minutes by default:
    /// longer than RFC 5626 keep-alive intervals).
    pub idle_timeout: Duration,
    /// How long an outbound TCP connect plus TLS handshake, or an inbound TLS
    /// handshake, may take (10 s by default).
    pub connect_timeout: Duration,
    /// Capacity of the event channel, and of the queue behind it (4096 by default).
    pub event_capacity: usize,
}

impl TransportConfig {
    /// UDP and TCP on `udp`, no TLS, default timers and limits.
    pub fn new(udp: SocketAddr) -> TransportConfig {
        TransportConfig {
            udp,
            tcp: None,
            tls: None,
            tls_client: None,
            timers: Timers::default(),
            max_message: MAX_MESSAGE_LEN,
            idle_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            event_capacity: 4096,
        }
    }
}

/// What happened, for the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipEvent {
    /// A new request; answer it with [`SipEndpoint::respond`] (an INVITE has already
    /// been answered 100 Trying).
    Request {
        /// The server transaction.
        id: TransactionId,
        /// The request, its top Via stamped with `received`/`rport`.
        request: Message,
        /// The peer's address.
        source: SocketAddr,
        /// The transport it came on.
        transport: Transport,
    },
    /// An ACK for a 2xx; it belongs to the dialog.
    Ack {
        /// The ACK.
        request: Message,
        /// The peer's address.
        source: SocketAddr,
        /// The transport it came on.
        transport: Transport,
    },
    /// A response for a request sent with [`SipEndpoint::send_request`].
    Response {
        /// The client transaction.
        id: TransactionId,
        /// The response.
        response: Message,
    },
    /// A retransmitted 2xx for an INVITE whose transaction has ended; ACK it again.
    StrayResponse {
        /// The response.
        response: Message,
    },
    /// The peer cancelled an INVITE; it was already answered 487 (and the CANCEL 200).
    Cancelled {
        /// The INVITE server transaction.
        id: TransactionId,
        /// The CANCEL.
        cancel: Message,
    },
    /// A transaction failed: no response in time, or no ACK for a final response.
    Timeout {
        /// The transaction.
        id: TransactionId,
    },
    /// A transaction is gone; its id will not appear again.
    Terminated {
        /// The transaction.
        id: TransactionId,
    },
    /// Bytes that were not a valid message (or, on a stream, could not be framed).
    Malformed {
        /// Who sent them.
        source: SocketAddr,
        /// On which transport.
        transport: Transport,
        /// What was wrong.
        error: String,
        /// Whether a 4xx/5xx went back.
        answered: bool,
    },
}

/// Counters since [`SipEndpoint::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportStats {
    /// Messages parsed and handed to the transaction layer.
    pub received: u64,
    /// Messages written to a socket or queued on a connection.
    pub sent: u64,
    /// Datagrams or stream frames that failed to parse or frame.
    pub malformed: u64,
    /// Messages or events given up: send errors, no connection, a full event queue,
    /// requests shed with 503.
    pub dropped: u64,
}

/// Why a request could not be sent.
#[derive(Debug, Error)]
pub enum TransportError {
    /// [`SipEndpoint::shutdown`] was called, or the event receiver was dropped.
    #[error("the SIP endpoint has shut down")]
    Closed,
    /// The transaction layer refused the request.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// Outbound TLS needs [`TransportConfig::tls_client`].
    #[error("no TLS client configuration for outbound TLS")]
    NoTlsClient,
    /// The TCP connect or TLS handshake failed.
    #[error("cannot connect to {destination} over {transport:?}: {source}")]
    Connect {
        /// Where to.
        destination: SocketAddr,
        /// TCP or TLS.
        transport: Transport,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

/// What the handle asks of the core.
enum Command {
    Respond {
        id: TransactionId,
        response: Message,
    },
    SendRequest {
        request: Message,
        destination: SocketAddr,
        transport: Transport,
        reply: oneshot::Sender<Result<TransactionId, TransportError>>,
    },
    SendStateless {
        message: Message,
        destination: SocketAddr,
        transport: Transport,
    },
    Cancel {
        id: TransactionId,
        reply: oneshot::Sender<Result<TransactionId, TransportError>>,
    },
    Shutdown,
}

/// Something waiting for a connection to open.
enum Parked {
    Request {
        request: Message,
        reply: oneshot::Sender<Result<TransactionId, TransportError>>,
    },
    Bytes(Vec<u8>),
}

struct Connecting {
    parked: Vec<Parked>,
    task: AbortHandle,
}

type StreamKey = (Transport, SocketAddr);

#[derive(Debug)]
struct Addresses {
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: Option<SocketAddr>,
}

/// A handle on a running SIP endpoint; clone it freely. Dropping every handle (or the
/// event receiver) shuts the endpoint down, as does [`SipEndpoint::shutdown`].
#[derive(Debug, Clone)]
pub struct SipEndpoint {
    commands: mpsc::UnboundedSender<Command>,
    addresses: Arc<Addresses>,
    counters: Arc<Counters>,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl SipEndpoint {
    /// Binds the sockets and starts the tasks; see the [module docs](self).
    pub async fn bind(
        config: TransportConfig,
    ) -> io::Result<(SipEndpoint, mpsc::Receiver<SipEvent>)> {
        let (udp, tcp) = bind_udp_and_tcp(&config).await?;
        let tls = match &config.tls {
            Some((address, server)) => Some((
                TcpListener::bind(address).await?,
                TlsAcceptor::from(server.clone()),
            )),
            None => None,
        };
        let addresses = Arc::new(Addresses {
            udp: udp.local_addr()?,
            tcp: tcp.local_addr()?,
            tls: match &tls {
                Some((listener, _)) => Some(listener.local_addr()?),
                None => None,
            },
        });
        let capacity = config.event_capacity.max(1);
        let (events, events_rx) = mpsc::channel(capacity);
        let (inbound, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            counters: counters.clone(),
            inbound,
            max_message: config.max_message.min(MAX_MESSAGE_LEN),
            idle_timeout: config.idle_timeout,
            connect_timeout: config.connect_timeout,
            next_connection: AtomicU64::new(1),
        });
        let udp = Arc::new(udp);
        let mut tasks = vec![
            tokio::spawn(udp_loop(udp.clone(), shared.clone())).abort_handle(),
            tokio::spawn(accept_loop(tcp, None, shared.clone())).abort_handle(),
        ];
        if let Some((listener, acceptor)) = tls {
            tasks.push(
                tokio::spawn(accept_loop(listener, Some(acceptor), shared.clone())).abort_handle(),
            );
        }
        let core = Core {
            layer: TransactionLayer::with_timers(config.timers),
            udp,
            shared,
            events,
            backlog: VecDeque::new(),
            backlog_limit: capacity,
            shed: HashSet::new(),
            streams: HashMap::new(),
            connecting: HashMap::new(),
            tls_client: config.tls_client.map(TlsConnector::from),
            tasks,
            closed: false,
        };
        tokio::spawn(core.run(commands_rx, inbound_rx));
        Ok((
            SipEndpoint {
                commands,
                addresses,
                counters,
            },
            events_rx,
        ))
    }

    /// The UDP socket's address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.addresses.udp
    }

    /// The TCP listener's address (always listening today; an `Option` so a UDP-only
    /// endpoint can be added without breaking callers).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        Some(self.addresses.tcp)
    }

    /// The TLS listener's address, when TLS is served.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.addresses.tls
    }

    /// Answers server transaction `id`. Misuse (an unknown id, a second final
    /// response) is logged and otherwise ignored, as the peer will retransmit or time
    /// out.
    pub fn respond(&self, id: TransactionId, response: Message) {
        let _ = self.commands.send(Command::Respond { id, response });
    }

    /// Starts a client transaction (anything but ACK; the top Via needs a fresh
    /// `z9hG4bK` branch). Over TCP or TLS, a connection to `destination` is reused or
    /// opened first. Responses arrive as [`SipEvent::Response`] with the returned id.
    pub async fn send_request(
        &self,
        request: Message,
        destination: SocketAddr,
        transport: Transport,
    ) -> Result<TransactionId, TransportError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::SendRequest {
                request,
                destination,
                transport,
                reply,
            })
            .map_err(|_| TransportError::Closed)?;
        answer.await.map_err(|_| TransportError::Closed)?
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, or a stateless
    /// answer.
    pub fn send_stateless(&self, message: Message, destination: SocketAddr, transport: Transport) {
        let _ = self.commands.send(Command::SendStateless {
            message,
            destination,
            transport,
        });
    }

    /// Cancels INVITE client transaction `id` (it must have had a provisional
    /// response); returns the CANCEL's own transaction. The INVITE will see its 487.
    pub async fn cancel(&self, id: TransactionId) -> Result<TransactionId, TransportError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Cancel { id, reply })
            .map_err(|_| TransportError::Closed)?;
        answer.await.map_err(|_| TransportError::Closed)?
    }

    /// The counters so far.
    pub fn stats(&self) -> TransportStats {
        let c = &self.counters;
        TransportStats {
            received: c.received.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops every task and closes every socket; the event channel ends after the
    /// events it already holds. Live transactions are abandoned.
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}

async fn bind_udp_and_tcp(config: &TransportConfig) -> io::Result<(UdpSocket, TcpListener)> {
    if let Some(tcp) = config.tcp {
        return Ok((
            UdpSocket::bind(config.udp).await?,
            TcpListener::bind(tcp).await?,
        ));
    }
    // With port 0 the UDP port is picked first and may be taken for TCP: try again.
    let attempts = if config.udp.port() == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(config.udp).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// The one task that owns the transaction layer.
struct Core {
    layer: TransactionLayer,
    udp: Arc<UdpSocket>,
    shared: Arc<Shared>,
    events: mpsc::Sender<SipEvent>,
    /// Events the channel had no room for, oldest first.
    backlog: VecDeque<SipEvent>,
    backlog_limit: usize,
    /// Requests answered 503 while the TU was behind: the TU never saw them, so it must
    /// not see their end either.
    shed: HashSet<TransactionId>,
    streams: HashMap<StreamKey, StreamPeer>,
    connecting: HashMap<StreamKey, Connecting>,
    tls_client: Option<TlsConnector>,
    tasks: Vec<AbortHandle>,
    /// The TU dropped its receiver.
    closed: bool,
}

impl Core {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut inbound: mpsc::Receiver<Inbound>,
    ) {
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed = None;
        // A second sender to wait for room on, so the permit does not borrow `self`.
        let events = self.events.clone();
        'run: while !self.closed {
            let deadline = self.layer.poll_timeout();
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(tokio::time::Instant::from_std(at));
                }
                armed = deadline;
            }
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break 'run,
                    Some(command) => self.command(command).await,
                },
                Some(input) = inbound.recv() => self.inbound(input).await,
                () = &mut sleep, if armed.is_some() => {
                    let at = armed.take().expect("armed");
                    self.layer.handle_timeout(now().max(at));
                    self.drain(Transport::Udp).await;
                }
                permit = events.reserve(), if !self.backlog.is_empty() => match permit {
                    Ok(permit) => permit.send(self.backlog.pop_front().expect("not empty")),
                    Err(_) => self.closed = true,
                },
            }
            // Take whatever else is waiting before rearming the timer and selecting
            // again: under load most wakeups find a queue, not a single message.
            for _ in 0..BATCH {
                match commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => break 'run,
                    Ok(command) => self.command(command).await,
                    Err(TryRecvError::Empty) => break,
                }
            }
            for _ in 0..BATCH {
                match inbound.try_recv() {
                    Ok(input) => self.inbound(input).await,
                    Err(_) => break,
                }
            }
            self.flush_backlog();
        }
        self.stop();
    }

    fn stop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for peer in self.streams.values() {
            peer.abort();
        }
        for connecting in self.connecting.values() {
            connecting.task.abort();
        }
        // What is queued still reaches the TU; the channel ends when `events` drops.
        for event in self.backlog.drain(..) {
            if self.events.try_send(event).is_err() {
                break;
            }
        }
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Respond { id, response } => {
                if let Err(e) = self
                    .layer
                    .handle_input(now(), Input::Respond { id, response })
                {
                    debug!(?id, error = %e, "response refused by the transaction layer");
                }
                self.drain(Transport::Udp).await;
            }
            Command::SendRequest {
                request,
                destination,
                transport,
                reply,
            } => {
                let key = (transport, destination);
                if transport.is_reliable() && !self.streams.contains_key(&key) {
                    if transport == Transport::Tls && self.tls_client.is_none() {
                        let _ = reply.send(Err(TransportError::NoTlsClient));
                        return;
                    }
                    self.park(key, Parked::Request { request, reply });
                } else {
                    self.start_request(request, destination, transport, reply)
                        .await;
                }
            }
            Command::SendStateless {
                message,
                destination,
                transport,
            } => {
                self.layer.send_stateless(message, destination, transport);
                self.drain(Transport::Udp).await;
            }
            Command::Cancel { id, reply } => {
                let result = self.layer.cancel(now(), id);
                self.drain(Transport::Udp).await;
                let _ = reply.send(result.map_err(TransportError::from));
            }
            Command::Shutdown => {}
        }
    }

    async fn start_request(
        &mut self,
        request: Message,
        destination: SocketAddr,
        transport: Transport,
        reply: oneshot::Sender<Result<TransactionId, TransportError>>,
    ) {
        let result = self
            .layer
            .send_request(now(), request, destination, transport);
        self.drain(transport).await;
        let _ = reply.send(result.map_err(TransportError::from));
    }

    async fn inbound(&mut self, input: Inbound) {
        match input {
            Inbound::Message {
                message,
                source,
                transport,
            } => {
                let received = Input::Received(Received {
                    message,
                    source,
                    transport,
                });
                if let Err(e) = self.layer.handle_input(now(), received) {
                    Counters::add(&self.shared.counters.dropped);
                    debug!(%source, error = %e, "message refused by the transaction layer");
                }
                self.drain(transport).await;
            }
            Inbound::Malformed {
                source,
                transport,
                error,
                answered,
            } => {
                let event = SipEvent::Malformed {
                    source,
                    transport,
                    error,
                    answered,
                };
                // A flood of garbage must not crowd out real work.
                if self.backlog.is_empty() {
                    match self.events.try_send(event) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => Counters::add(&self.shared.counters.dropped),
                        Err(TrySendError::Closed(_)) => self.closed = true,
                    }
                } else {
                    Counters::add(&self.shared.counters.dropped);
                }
            }
            Inbound::Opened {
                peer,
                transport,
                connection,
            } => {
                let key = (transport, peer);
                self.streams.insert(key, connection);
                if let Some(connecting) = self.connecting.remove(&key) {
                    for parked in connecting.parked {
                        match parked {
                            Parked::Request { request, reply } => {
                                self.start_request(request, peer, transport, reply).await
                            }
                            Parked::Bytes(bytes) => self.send_stream(key, bytes, false),
                        }
                    }
                }
            }
            Inbound::Closed {
                peer,
                transport,
                id,
            } => {
                let key = (transport, peer);
                if self.streams.get(&key).is_some_and(|c| c.id == id) {
                    self.streams.remove(&key);
                }
            }
            Inbound::ConnectFailed {
                peer,
                transport,
                error,
            } => {
                debug!(%peer, ?transport, %error, "connect failed");
                if let Some(connecting) = self.connecting.remove(&(transport, peer)) {
                    for parked in connecting.parked {
                        match parked {
                            Parked::Request { reply, .. } => {
                                let _ = reply.send(Err(TransportError::Connect {
                                    destination: peer,
                                    transport,
                                    source: io::Error::new(error.kind(), error.to_string()),
                                }));
                            }
                            Parked::Bytes(_) => Counters::add(&self.shared.counters.dropped),
                        }
                    }
                }
            }
        }
    }

    /// Hands everything the layer produced to the sockets and the TU. `arrived` is the
    /// transport of the message just fed in (an ACK event needs it).
    async fn drain(&mut self, arrived: Transport) {
        while let Some(output) = self.layer.poll_output() {
            let event = match output {
                Output::Transmit(transmit) => {
                    self.transmit(transmit).await;
                    continue;
                }
                Output::Request {
                    id,
                    request,
                    source,
                    transport,
                } => {
                    if self.backlog.len() >= self.backlog_limit {
                        self.shed_request(id, &request);
                        continue;
                    }
                    SipEvent::Request {
                        id,
                        request,
                        source,
                        transport,
                    }
                }
                Output::Ack { request, source } => SipEvent::Ack {
                    request,
                    source,
                    transport: arrived,
                },
                Output::Response { id, response } => SipEvent::Response { id, response },
                Output::StrayResponse { response } => SipEvent::StrayResponse { response },
                Output::Cancelled { id, cancel } => SipEvent::Cancelled { id, cancel },
                Output::Timeout { id } => {
                    if self.shed.contains(&id) {
                        continue;
                    }
                    SipEvent::Timeout { id }
                }
                Output::Terminated { id } => {
                    if self.shed.remove(&id) {
                        continue;
                    }
                    SipEvent::Terminated { id }
                }
            };
            self.emit(event);
        }
    }

    fn emit(&mut self, event: SipEvent) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(event);
            return;
        }
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => self.backlog.push_back(event),
            Err(TrySendError::Closed(_)) => self.closed = true,
        }
    }

    fn flush_backlog(&mut self) {
        while let Some(event) = self.backlog.pop_front() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.backlog.push_front(event);
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    /// The TU is too far behind to take another request: answer it 503 ourselves.
    fn shed_request(&mut self, id: TransactionId, request: &Message) {
        Counters::add(&self.shared.counters.dropped);
        self.shed.insert(id);
        let mut busy = Message::response_to(request, 503);
        busy.set_header("Retry-After", 5);
        if let Err(e) = self
            .layer
            .handle_input(now(), Input::Respond { id, response: busy })
        {
            debug!(?id, error = %e, "could not shed request");
        }
    }

    async fn transmit(&mut self, transmit: Transmit) {
        let Transmit {
            transport,
            destination,
            message,
        } = transmit;
        let bytes = message.to_bytes();
        match transport {
            Transport::Udp => match self.udp.send_to(&bytes, destination).await {
                Ok(_) => Counters::add(&self.shared.counters.sent),
                Err(e) => {
                    Counters::add(&self.shared.counters.dropped);
                    debug!(%destination, error = %e, "UDP send failed");
                }
            },
            Transport::Tcp | Transport::Tls => {
                self.send_stream((transport, destination), bytes, message.is_request())
            }
        }
    }

    /// Queues bytes on the connection to a peer; a request for a peer without one
    /// waits for a new connection.
    fn send_stream(&mut self, key: StreamKey, bytes: Vec<u8>, may_connect: bool) {
        let counters = self.shared.counters.clone();
        let bytes = match self.streams.get(&key) {
            Some(peer) => match peer.writer.try_send(bytes) {
                Ok(()) => {
                    Counters::add(&counters.sent);
                    return;
                }
                Err(TrySendError::Full(_)) => {
                    warn!(peer = %key.1, "peer is not reading; closing its connection");
                    if let Some(peer) = self.streams.remove(&key) {
                        peer.abort();
                    }
                    Counters::add(&counters.dropped);
                    return;
                }
                Err(TrySendError::Closed(bytes)) => {
                    self.streams.remove(&key);
                    bytes
                }
            },
            None => bytes,
        };
        let can_connect = key.0 == Transport::Tcp || self.tls_client.is_some();
        if may_connect && can_connect {
            self.park(key, Parked::Bytes(bytes));
        } else {
            // Responses go back on the connection the request came on (§18.2.2); the
            // peer's ephemeral port would not accept a new one.
            Counters::add(&counters.dropped);
            debug!(peer = %key.1, "no connection for a response; dropped");
        }
    }

    fn park(&mut self, key: StreamKey, parked: Parked) {
        if !self.connecting.contains_key(&key) {
            let task = self.spawn_connect(key);
            self.connecting.insert(
                key,
                Connecting {
                    parked: Vec::new(),
                    task,
                },
            );
        }
        if let Some(connecting) = self.connecting.get_mut(&key) {
            connecting.parked.push(parked);
        }
    }

    fn spawn_connect(&self, (transport, peer): StreamKey) -> AbortHandle {
        let shared = self.shared.clone();
        let tls = self.tls_client.clone();
        tokio::spawn(async move {
            let connect = connect(peer, transport, tls);
            let result = match tokio::time::timeout(shared.connect_timeout, connect).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            };
            match result {
                Ok(stream) => start_stream(&shared, stream, peer, transport).await,
                Err(error) => {
                    let _ = shared
                        .inbound
                        .send(Inbound::ConnectFailed {
                            peer,
                            transport,
                            error,
                        })
                        .await;
                }
            }
        })
        .abort_handle()
    }
}

async fn udp_loop(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, source) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                // ICMP errors surface here on some systems; the socket is still good.
                debug!(error = %e, "UDP receive failed");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let data = &buf[..n];
        // CRLF keep-alives (and empty datagrams) are not messages.
        if data.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            continue;
        }
        let inbound = if n > shared.max_message {
            Counters::add(&shared.counters.malformed);
            Inbound::Malformed {
                source,
                transport: Transport::Udp,
                error: ParseError::TooLarge { len: n }.to_string(),
                answered: false,
            }
        } else {
            match Message::parse(data) {
                Ok(message) => {
                    Counters::add(&shared.counters.received);
                    Inbound::Message {
                        message,
                        source,
                        transport: Transport::Udp,
                    }
                }
                Err(error) => {
                    Counters::add(&shared.counters.malformed);
                    // The salvaged request came from `source`: answer there, whatever
                    // its Via claims.
                    let answered = match answer_for(&error) {
                        Some(answer) => match socket.send_to(&answer.to_bytes(), source).await {
                            Ok(_) => {
                                Counters::add(&shared.counters.sent);
                                true
                            }
                            Err(_) => false,
                        },
                        None => false,
                    };
                    Inbound::Malformed {
                        source,
                        transport: Transport::Udp,
                        error: error.to_string(),
                        answered,
                    }
                }
            }
        };
        if shared.inbound.send(inbound).await.is_err() {
            return;
        }
    }
}
