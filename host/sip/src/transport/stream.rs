//! Connections: connecting and accepting (with TLS), and per connection a reader that
//! frames the stream and a writer that drains the core's queue.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, warn};

use super::shared::{Counters, Inbound, Shared, StreamPeer, answer_for};
use crate::message::{Framing, MAX_MESSAGE_LEN, Message, Method, StartLine, Transport, frame};

/// Serialized messages waiting for one connection's writer; a peer that does not read
/// this many is disconnected.
const WRITE_QUEUE: usize = 1024;
/// Reads one stream message may take before the sender counts as hostile: it bounds
/// the rescanning of a slowly trickled frame.
const MAX_READS_PER_MESSAGE: usize = 1024;
/// Bytes asked of a stream socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// A TCP or TLS connection, whichever it is.
pub(super) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}
pub(super) type BoxedStream = Box<dyn Stream>;

pub(super) async fn connect(
    peer: SocketAddr,
    transport: Transport,
    tls: Option<TlsConnector>,
) -> io::Result<BoxedStream> {
    let tcp = TcpStream::connect(peer).await?;
    tcp.set_nodelay(true)?;
    match (transport, tls) {
        (Transport::Tls, Some(connector)) => {
            let name = rustls::pki_types::ServerName::IpAddress(peer.ip().into());
            Ok(Box::new(connector.connect(name, tcp).await?))
        }
        (Transport::Tls, None) => Err(io::Error::other("no TLS client configuration")),
        _ => Ok(Box::new(tcp)),
    }
}

/// Registers a connection with the core, then starts reading it. The reader waits for
/// the core to know the writer, so an answer to its first message has somewhere to go.
pub(super) async fn start_stream(
    shared: &Arc<Shared>,
    stream: BoxedStream,
    peer: SocketAddr,
    transport: Transport,
) {
    let (reader, writer) = tokio::io::split(stream);
    let (queue, outbox) = mpsc::channel(WRITE_QUEUE);
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (go, ready) = oneshot::channel::<mpsc::Sender<Vec<u8>>>();
    let write_task = tokio::spawn(write_loop(writer, outbox));
    let reader_shared = shared.clone();
    let read_task = tokio::spawn(async move {
        if let Ok(queue) = ready.await {
            read_loop(reader, peer, transport, queue, &reader_shared).await;
            let _ = reader_shared
                .inbound
                .send(Inbound::Closed {
                    peer,
                    transport,
                    id,
                })
                .await;
        }
    });
    let connection = StreamPeer {
        id,
        writer: queue.clone(),
        tasks: [write_task.abort_handle(), read_task.abort_handle()],
    };
    let opened = Inbound::Opened {
        peer,
        transport,
        connection,
    };
    if shared.inbound.send(opened).await.is_err() {
        write_task.abort();
        read_task.abort();
        return;
    }
    let _ = go.send(queue);
}

async fn write_loop(mut writer: WriteHalf<BoxedStream>, mut outbox: mpsc::Receiver<Vec<u8>>) {
    while let Some(bytes) = outbox.recv().await {
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
        // Write what else is queued before flushing, so TLS records carry several.
        while let Ok(bytes) = outbox.try_recv() {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// Why a stream reader gave up on its connection.
enum Rejection {
    /// `frame` could not find a valid Content-Length.
    Unframeable,
    /// The message outgrew the size limit.
    TooLarge,
    /// Too many reads for one message.
    TooSlow,
}

async fn read_loop(
    mut reader: ReadHalf<BoxedStream>,
    peer: SocketAddr,
    transport: Transport,
    queue: mpsc::Sender<Vec<u8>>,
    shared: &Shared,
) {
    let limit = shared.max_message;
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // CR/LF bytes since the last message; every CRLFCRLF is a ping (RFC 5626 §3.5.1).
    let mut keepalive = 0usize;
    let mut reads = 0usize;
    loop {
        let mut start = 0;
        let rejection = loop {
            let pending = &buf[start..];
            if pending.is_empty() {
                break None;
            }
            match frame(pending) {
                Framing::KeepAlive(n) => {
                    keepalive += n;
                    while keepalive >= 4 {
                        keepalive -= 4;
                        let _ = queue.try_send(b"\r\n".to_vec());
                    }
                    start += n;
                    reads = 0;
                }
                Framing::Complete(n) if n <= limit => {
                    keepalive = 0;
                    reads = 0;
                    let accepted =
                        stream_message(&pending[..n], peer, transport, &queue, shared).await;
                    if !accepted {
                        return;
                    }
                    start += n;
                }
                Framing::Complete(_) => break Some(Rejection::TooLarge),
                Framing::Incomplete if pending.len() >= limit => break Some(Rejection::TooLarge),
                Framing::Incomplete if reads >= MAX_READS_PER_MESSAGE => {
                    break Some(Rejection::TooSlow);
                }
                Framing::Incomplete => break None,
                Framing::Invalid if pending.len() >= MAX_MESSAGE_LEN => {
                    break Some(Rejection::TooLarge);
                }
                Framing::Invalid => break Some(Rejection::Unframeable),
            }
        };
        if let Some(rejection) = rejection {
            reject_stream(&buf[start..], rejection, peer, transport, &queue, shared).await;
            return;
        }
        buf.drain(..start);
        buf.reserve(READ_CHUNK);
        match tokio::time::timeout(shared.idle_timeout, reader.read_buf(&mut buf)).await {
            Ok(Ok(0)) => return,
            Ok(Ok(_)) => reads += 1,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "stream read failed");
                return;
            }
            Err(_) => {
                debug!(%peer, "idle connection closed");
                return;
            }
        }
    }
}

/// Parses one stream frame and passes it on; a malformed one is answered on the
/// connection, which stays open because its framing was sound. Returns false when the
/// core has gone.
async fn stream_message(
    bytes: &[u8],
    peer: SocketAddr,
    transport: Transport,
    queue: &mpsc::Sender<Vec<u8>>,
    shared: &Shared,
) -> bool {
    let inbound = match Message::parse(bytes) {
        Ok(message) => {
            Counters::add(&shared.counters.received);
            Inbound::Message {
                message,
                source: peer,
                transport,
            }
        }
        Err(error) => {
            Counters::add(&shared.counters.malformed);
            let answered = match answer_for(&error) {
                Some(answer) => queue.send(answer.to_bytes()).await.is_ok(),
                None => false,
            };
            Inbound::Malformed {
                source: peer,
                transport,
                error: error.to_string(),
                answered,
            }
        }
    };
    shared.inbound.send(inbound).await.is_ok()
}

/// Answers what can be answered of an unframeable or oversized stream, and reports it;
/// the caller then closes the connection.
async fn reject_stream(
    pending: &[u8],
    rejection: Rejection,
    peer: SocketAddr,
    transport: Transport,
    queue: &mpsc::Sender<Vec<u8>>,
    shared: &Shared,
) {
    Counters::add(&shared.counters.malformed);
    let (status, error) = match rejection {
        Rejection::Unframeable => (400, "stream cannot be framed (Content-Length)"),
        Rejection::TooLarge => (513, "message exceeds the size limit"),
        Rejection::TooSlow => (408, "message trickled in too many reads"),
    };
    let window = &pending[..pending.len().min(MAX_MESSAGE_LEN)];
    let answer = match Message::parse(window) {
        Ok(request) if request.method().is_some_and(|m| *m != Method::Ack) => {
            let mut answer = Message::response_to(&request, status);
            if status == 400 {
                answer.start = StartLine::Response {
                    status,
                    reason: "Bad Request (missing or bad Content-Length)".to_string(),
                };
            }
            Some(answer)
        }
        Ok(_) => None,
        Err(parse_error) => match status {
            400 => answer_for(&parse_error),
            _ => parse_error
                .can_answer()
                .filter(|a| a.request.method().is_some_and(|m| *m != Method::Ack))
                .map(|a| Message::response_to(&a.request, status)),
        },
    };
    let answered = match answer {
        Some(answer) => queue.send(answer.to_bytes()).await.is_ok(),
        None => false,
    };
    let _ = shared
        .inbound
        .send(Inbound::Malformed {
            source: peer,
            transport,
            error: error.to_string(),
            answered,
        })
        .await;
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, mostly: wait for some to close.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        match &tls {
            None => start_stream(&shared, Box::new(tcp), peer, Transport::Tcp).await,
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                // The handshake runs apart so a slow client cannot stall the listener.
                tokio::spawn(async move {
                    let handshake = acceptor.accept(tcp);
                    match tokio::time::timeout(shared.connect_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            start_stream(&shared, Box::new(stream), peer, Transport::Tls).await
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}
