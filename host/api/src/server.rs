//! The HTTP/1.1 accept loop, with the per-connection limits `axum::serve` cannot
//! set: how long a client may take to send a request head (and to stay idle
//! between requests), how large the head may be and how many fields it may have.
//! A slowloris client that trickles its headers, or opens a connection and sends
//! nothing, is disconnected when the header timeout runs out; a head over the size
//! limit is answered 431. The request timeout is a middleware in [`crate::router`].
//!
//! Cleartext HTTP/1.1 only: TLS and HTTP/2 belong to the load balancer in front,
//! as the README's deployment notes say. On shutdown the loop stops accepting, asks
//! every connection to finish its request in flight and waits for them.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::limits::ConnectionLimits;

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// connections finish (at most `drain` long).
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: &ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    // What each request needs to find its client, shared by every connection.
    let shared = Arc::new(limits.clone());
    // Connections watch `stop` and hold a clone of `open` until they end.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let proxies = Arc::clone(&shared);
        let service = router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                let client = proxies.client_address(peer.ip(), request.headers());
                let client = SocketAddr::new(client, peer.port());
                request.extensions_mut().insert(ConnectInfo(client));
                request
            });
        let connection = builder
            .serve_connection(
                TokioIo::new(Lingering(Some(stream))),
                TowerToHyperService::new(service),
            )
            .with_upgrades();
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopped(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(open);
        });
    }
    let _ = stop_tx.send(true);
    drop(open_rx);
    let _ = tokio::time::timeout(drain, open_tx.closed()).await;
    Ok(())
}

/// A connection's stream that closes the way nginx's `lingering_close` does. When
/// the server answers before reading the whole request (413 for a body over the
/// limit, 408), the unread bytes would make the kernel reset the connection on
/// close, and the client would see the reset instead of the answer. So on drop the
/// stream stops writing and reads and discards whatever still comes for a moment
/// (at most [`LINGER`] and [`LINGER_BYTES`]) before it closes.
struct Lingering(Option<tokio::net::TcpStream>);

/// How long a closing connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// How much of it.
const LINGER_BYTES: usize = 8 << 20;

impl Lingering {
    fn stream(self: std::pin::Pin<&mut Self>) -> std::pin::Pin<&mut tokio::net::TcpStream> {
        std::pin::Pin::new(self.get_mut().0.as_mut().expect("open until dropped"))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(mut stream) = self.0.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = stream.shutdown().await;
            let _ = tokio::time::timeout(LINGER, async {
                let mut buf = vec![0u8; 16 * 1024];
                let mut read = 0;
                while read < LINGER_BYTES {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                }
            })
            .await;
        });
    }
}

impl tokio::io::AsyncRead for Lingering {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Lingering {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.as_ref().is_some_and(|s| s.is_write_vectored())
    }
}

/// Resolves once the loop says stop (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
