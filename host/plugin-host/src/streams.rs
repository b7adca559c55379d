//! `switchboard:mail/streams`: byte streams from an e-mail connector to the
//! mail servers its operator approved — the capability's one home.
//!
//! This module owns which `host:port` pairs a plugin may reach (its
//! [`Endpoint`]s, from the manifest's `[[capabilities.connect]]` entries and
//! the operator's config), name resolution, the TCP connect, TLS (rustls on
//! the ring provider, the public webpki roots plus the operator's extra CA
//! file, see [`StreamsConfig`]), and the per-call limits: a timeout on every
//! operation, a byte budget for reads and one for writes, and a cap on
//! connections per call. Connections are entries of the store's
//! `ResourceTable`, so they close when the plugin drops them and, at the
//! latest, when the call's store is dropped.
//!
//! It must never log what passes through a connection (mail, passwords in
//! `LOGIN`/`AUTH`), never connect anywhere the approval check did not pass,
//! and never send `plain` traffic to anything but loopback.
//!
//! # Why a narrow host capability rather than `wasi:sockets` + TLS in the guest
//!
//! The operator approves *servers by name* (`imap_host = "imap.example.com"`),
//! and a certificate is valid *for a name*. `wasi:sockets` works one layer
//! below: the host's socket check sees only the IP address a guest asks for,
//! after the guest resolved the name itself. Name-based approval would then be
//! the guest's word (any address could be claimed to belong to
//! `imap.example.com`), and so would the certificate check, since TLS would
//! run in the guest with roots and a verifier the plugin chooses — a buggy or
//! hostile plugin could skip it and hand the mailbox password to whoever
//! answers. Here the host owns the whole chain: it compares the *name* with
//! the approved ones, resolves it, picks the address, connects, and runs the
//! rustls handshake verifying the certificate for that name against roots the
//! operator controls. The plugin gets an opaque byte stream and never sees or
//! chooses an address. `plain` is allowed only when every address of the name
//! is loopback (a local test server or relay), checked before any packet is
//! sent. The price is a small interface of our own instead of a standard one,
//! which is why it lives in its own package (`switchboard:mail`) beside the
//! frozen `switchboard:plugin`.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use wasmtime::component::{Resource, ResourceTable};

use crate::manifest::Manifest;

/// How a connection is protected (`switchboard:mail/streams.security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte.
    Tls,
    /// Plain until the protocol's STARTTLS, then `start-tls`.
    Starttls,
    /// No TLS: loopback servers only.
    Plain,
}

/// Why a stream operation failed (`switchboard:mail/streams.stream-error`).
///
/// This module keeps its own copy of the WIT types so that it depends on
/// neither the generated bindings nor the store state; [`host`] converts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// Not an approved server, or `plain` off loopback.
    NotAllowed(String),
    /// The name did not resolve.
    Dns(String),
    /// Connecting, reading or writing failed.
    Io(String),
    /// The TLS handshake failed.
    Tls(String),
    /// The server did not answer in time.
    Timeout(String),
    /// The call's byte budget is used up.
    Limit(String),
}

/// Host-side settings of the streams capability: trusted roots, timeouts and
/// budgets. The defaults suit production (public roots only); the server adds
/// the PEM file named by `SWITCHBOARD_EXTRA_CA_FILE` with
/// [`StreamsConfig::add_pem_file`], and tests their own CA.
#[derive(Clone)]
pub struct StreamsConfig {
    roots: rustls::RootCertStore,
    extra_roots: usize,
    /// Deadline of each resolve, connect, handshake, read and write.
    pub op_timeout: Duration,
    /// Bytes a plugin may read, over all its connections, in one call.
    pub read_budget: u64,
    /// Bytes a plugin may write, over all its connections, in one call.
    pub write_budget: u64,
    /// Connections a plugin may try to open in one call to approved servers
    /// (failed attempts included).
    pub max_connections: u32,
}

impl fmt::Debug for StreamsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamsConfig")
            .field("roots", &self.roots.len())
            .field("extra_roots", &self.extra_roots)
            .field("op_timeout", &self.op_timeout)
            .field("read_budget", &self.read_budget)
            .field("write_budget", &self.write_budget)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Default for StreamsConfig {
    fn default() -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        StreamsConfig {
            roots,
            extra_roots: 0,
            op_timeout: Duration::from_secs(30),
            read_budget: 96 << 20,
            write_budget: 96 << 20,
            max_connections: 8,
        }
    }
}

/// Why extra trusted roots could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StreamsConfigError {
    /// The file could not be read.
    #[error("cannot read the CA file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The text is not PEM, or holds no certificate.
    #[error("{source_name}: {message}")]
    Pem {
        /// The file, or `PEM` for in-memory text.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A certificate is not usable as a trust anchor.
    #[error("{source_name}: certificate {index} is not a usable CA: {message}")]
    Root {
        /// The file, or `PEM` for in-memory text.
        source_name: String,
        /// Its position in the file, from 1.
        index: usize,
        /// What rustls said.
        message: String,
    },
}

impl StreamsConfig {
    /// Trusts the certificates of this PEM text besides the public roots.
    /// Answers how many were added; text without any certificate is an error.
    pub fn add_pem_roots(&mut self, pem: &[u8]) -> Result<usize, StreamsConfigError> {
        self.add_roots("PEM", pem)
    }

    /// Trusts the certificates of this PEM file besides the public roots
    /// (what `SWITCHBOARD_EXTRA_CA_FILE` names).
    pub fn add_pem_file(&mut self, path: &Path) -> Result<usize, StreamsConfigError> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| StreamsConfigError::Read {
            path: name.clone(),
            message: e.to_string(),
        })?;
        self.add_roots(&name, &pem)
    }

    /// How many certificates were added to the public roots.
    pub fn extra_roots(&self) -> usize {
        self.extra_roots
    }

    fn add_roots(&mut self, source_name: &str, pem: &[u8]) -> Result<usize, StreamsConfigError> {
        let mut added = 0;
        for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let cert = cert.map_err(|e| StreamsConfigError::Pem {
                source_name: source_name.to_string(),
                message: e.to_string(),
            })?;
            self.roots.add(cert).map_err(|e| StreamsConfigError::Root {
                source_name: source_name.to_string(),
                index: i + 1,
                message: e.to_string(),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(StreamsConfigError::Pem {
                source_name: source_name.to_string(),
                message: "no certificate found".into(),
            });
        }
        self.extra_roots += added;
        Ok(added)
    }

    /// The settings every call shares: the TLS client built once.
    pub(crate) fn build(self) -> Result<Arc<StreamsShared>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots)
            .with_no_client_auth();
        Ok(Arc::new(StreamsShared {
            tls: TlsConnector::from(Arc::new(tls)),
            op_timeout: self.op_timeout,
            read_budget: self.read_budget,
            write_budget: self.write_budget,
            max_connections: self.max_connections,
        }))
    }
}

/// What every call's streams share, built once per plugin host.
pub(crate) struct StreamsShared {
    tls: TlsConnector,
    op_timeout: Duration,
    read_budget: u64,
    write_budget: u64,
    max_connections: u32,
}

/// One approved server: the host name (lower case, no brackets or trailing
/// dot) and port, as the operator configured them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A host name or IP literal as it is compared and resolved: trimmed, lower
/// case, without IPv6 brackets or a trailing dot; `None` when it cannot name
/// a server.
fn normalize_host(text: &str) -> Option<String> {
    let host = text.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    // A colon only in an IPv6 literal: `host:port` in a host key is a mistake.
    (ok && (!host.contains(':') || host.parse::<IpAddr>().is_ok())).then_some(host)
}

/// The servers a plugin may reach: for each `[[capabilities.connect]]` entry,
/// the configured host with the configured port (the entry's default port
/// when the port key is unset). An entry whose host key is unset approves
/// nothing. Errors name the config key that is wrong.
pub(crate) fn approved_endpoints(
    manifest: &Manifest,
    config: &HashMap<String, String>,
) -> Result<Vec<Endpoint>, String> {
    let mut endpoints = Vec::new();
    for entry in &manifest.capabilities.connect {
        let Some(raw_host) = config
            .get(&entry.host_config)
            .filter(|h| !h.trim().is_empty())
        else {
            continue;
        };
        let host = normalize_host(raw_host).ok_or_else(|| {
            format!(
                "config `{}` = `{raw_host}` is not a host name or IP address",
                entry.host_config
            )
        })?;
        let set_port = entry
            .port_config
            .as_ref()
            .and_then(|key| config.get(key).map(|v| (key, v.trim())))
            .filter(|(_, v)| !v.is_empty());
        let port = match (set_port, entry.default_port) {
            (Some((key, value)), _) => value
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("config `{key}` = `{value}` is not a port (1-65535)"))?,
            (None, Some(port)) => port,
            (None, None) => {
                return Err(format!(
                    "config `{}` has no value and the connect entry for `{}` no default-port",
                    entry.port_config.as_deref().unwrap_or("?"),
                    entry.host_config
                ));
            }
        };
        let endpoint = Endpoint { host, port };
        if !endpoints.contains(&endpoint) {
            endpoints.push(endpoint);
        }
    }
    Ok(endpoints)
}

/// Streams state of one call's store: the approved servers, the shared
/// settings and what is left of the budgets.
pub(crate) struct StreamsCtx {
    plugin: Arc<str>,
    shared: Arc<StreamsShared>,
    endpoints: Arc<[Endpoint]>,
    budget: Arc<Budget>,
    opened: u32,
}

impl StreamsCtx {
    pub(crate) fn new(
        plugin: Arc<str>,
        shared: Arc<StreamsShared>,
        endpoints: Arc<[Endpoint]>,
    ) -> StreamsCtx {
        let budget = Arc::new(Budget {
            read: AtomicU64::new(shared.read_budget),
            write: AtomicU64::new(shared.write_budget),
        });
        StreamsCtx {
            plugin,
            shared,
            endpoints,
            budget,
            opened: 0,
        }
    }

    fn allowed_list(&self) -> String {
        self.endpoints
            .iter()
            .map(Endpoint::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Bytes left to read and to write in this call, over all connections.
struct Budget {
    read: AtomicU64,
    write: AtomicU64,
}

impl Budget {
    /// Takes up to `want` bytes from `pool`; answers how many were granted.
    fn take(pool: &AtomicU64, want: u64) -> u64 {
        let mut granted = 0;
        let _ = pool.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            granted = left.min(want);
            Some(left - granted)
        });
        granted
    }

    /// Takes exactly `want` bytes from `pool`, or nothing when fewer are left.
    fn take_all(pool: &AtomicU64, want: u64) -> bool {
        pool.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(want)
        })
        .is_ok()
    }

    fn give_back(pool: &AtomicU64, bytes: u64) {
        pool.fetch_add(bytes, Ordering::SeqCst);
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// After a failure or a timeout: whatever the server saw is unknown.
    Closed,
}

/// One connection a plugin opened: the `connection` resource of
/// `switchboard:mail/streams`.
pub struct Connection {
    endpoint: Endpoint,
    security: Security,
    io: Io,
    budget: Arc<Budget>,
    shared: Arc<StreamsShared>,
}

impl Connection {
    fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    async fn read(&mut self, max: u32) -> Result<Vec<u8>, StreamError> {
        /// The largest single read, whatever the plugin asks for.
        const MAX_CHUNK: u32 = 64 << 10;
        if max == 0 {
            return Err(StreamError::Io("read of 0 bytes".into()));
        }
        let want = u64::from(max.min(MAX_CHUNK));
        let granted = Budget::take(&self.budget.read, want);
        if granted == 0 {
            return Err(StreamError::Limit(format!(
                "the read budget of {} bytes for this call is used up",
                self.shared.read_budget
            )));
        }
        let mut buf = vec![0; granted as usize];
        let timeout = self.shared.op_timeout;
        let read = match &mut self.io {
            Io::Plain(s) => tokio::time::timeout(timeout, s.read(&mut buf)).await,
            Io::Tls(s) => tokio::time::timeout(timeout, s.read(&mut buf)).await,
            Io::Closed => Ok(Err(closed())),
        };
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                Budget::give_back(&self.budget.read, granted);
                return Err(self.fail(io_error(&e)));
            }
            Err(_) => {
                Budget::give_back(&self.budget.read, granted);
                return Err(self.fail(StreamError::Timeout(format!(
                    "{} sent nothing for {} ms",
                    self.endpoint,
                    timeout.as_millis()
                ))));
            }
        };
        Budget::give_back(&self.budget.read, granted - n as u64);
        buf.truncate(n);
        Ok(buf)
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), StreamError> {
        let len = data.len() as u64;
        if !Budget::take_all(&self.budget.write, len) {
            return Err(StreamError::Limit(format!(
                "the write budget of {} bytes for this call is used up",
                self.shared.write_budget
            )));
        }
        let timeout = self.shared.op_timeout;
        let written = match &mut self.io {
            Io::Plain(s) => tokio::time::timeout(timeout, write_all(s, data)).await,
            Io::Tls(s) => tokio::time::timeout(timeout, write_all(&mut **s, data)).await,
            Io::Closed => Ok(Err(closed())),
        };
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.fail(io_error(&e))),
            Err(_) => Err(self.fail(StreamError::Timeout(format!(
                "{} took more than {} ms to take {} bytes",
                self.endpoint,
                timeout.as_millis(),
                data.len()
            )))),
        }
    }

    async fn start_tls(&mut self) -> Result<(), StreamError> {
        match (self.security, &self.io) {
            (_, Io::Closed) => return Err(StreamError::Io(closed().to_string())),
            (_, Io::Tls(_)) => {
                return Err(StreamError::Tls(
                    "the connection is already encrypted".into(),
                ));
            }
            (Security::Plain, _) => {
                return Err(StreamError::NotAllowed(
                    "a `plain` connection cannot be upgraded; connect with `starttls`".into(),
                ));
            }
            (Security::Tls | Security::Starttls, Io::Plain(_)) => {}
        }
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Closed) else {
            return Err(StreamError::Io(closed().to_string()));
        };
        let tls = handshake(&self.shared, &self.endpoint, tcp).await?;
        self.io = Io::Tls(Box::new(tls));
        Ok(())
    }

    /// Closes the connection after a failure and hands the error back.
    fn fail(&mut self, e: StreamError) -> StreamError {
        self.io = Io::Closed;
        e
    }
}

async fn write_all<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
) -> std::io::Result<()> {
    w.write_all(data).await?;
    w.flush().await
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "the connection is closed after an earlier failure",
    )
}

/// An I/O failure as the plugin sees it: the OS's words, nothing more.
fn io_error(e: &std::io::Error) -> StreamError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => StreamError::Tls(tls.to_string()),
        None => StreamError::Io(e.to_string()),
    }
}

/// Runs the TLS handshake on `tcp`, verifying the certificate for the
/// endpoint's name.
async fn handshake(
    shared: &StreamsShared,
    endpoint: &Endpoint,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, StreamError> {
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|_| {
        StreamError::Tls(format!(
            "`{}` cannot be checked against a certificate",
            endpoint.host
        ))
    })?;
    match tokio::time::timeout(shared.op_timeout, shared.tls.connect(name, tcp)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(match io_error(&e) {
            StreamError::Tls(m) => StreamError::Tls(format!("TLS with {endpoint} failed: {m}")),
            other => other,
        }),
        Err(_) => Err(StreamError::Timeout(format!(
            "the TLS handshake with {endpoint} took more than {} ms",
            shared.op_timeout.as_millis()
        ))),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// A store's data that can hold streams: the plugin host's own state, and the
/// tests' bare context.
pub(crate) trait StreamsView: Send {
    /// The call's streams state; `None` for a plugin without approved servers.
    fn streams_ctx(&mut self) -> Option<&mut StreamsCtx>;
    /// The table the connections live in.
    fn streams_table(&mut self) -> &mut ResourceTable;
}

/// `connect`: the approval check, resolution, the loopback rule of `plain`,
/// the TCP connect and, for `tls`, the handshake.
pub(crate) async fn connect(
    view: &mut impl StreamsView,
    host: String,
    port: u16,
    security: Security,
) -> Result<Resource<Connection>, StreamError> {
    let Some(ctx) = view.streams_ctx() else {
        return Err(StreamError::NotAllowed(
            "this plugin has no approved servers: only an `email`-world plugin that declares \
             `[[capabilities.connect]]` entries, with their host keys configured, may connect"
                .into(),
        ));
    };
    let Some(endpoint) = normalize_host(&host)
        .map(|host| Endpoint { host, port })
        .filter(|e| ctx.endpoints.contains(e))
    else {
        let wanted = match normalize_host(&host) {
            Some(host) => Endpoint { host, port }.to_string(),
            None => format!("`{host}`:{port}"),
        };
        return Err(StreamError::NotAllowed(format!(
            "{wanted} is not an approved server of this plugin; allowed: {}",
            if ctx.endpoints.is_empty() {
                "none (no connect host key is configured)".to_string()
            } else {
                ctx.allowed_list()
            }
        )));
    };
    if ctx.opened >= ctx.shared.max_connections {
        return Err(StreamError::Limit(format!(
            "at most {} connections per call",
            ctx.shared.max_connections
        )));
    }
    // `plain` to an IP literal is decided before anything is resolved.
    if security == Security::Plain
        && let Ok(ip) = endpoint.host.parse::<IpAddr>()
        && !is_loopback(ip)
    {
        return Err(plain_refused(&endpoint));
    }
    ctx.opened += 1;
    let plugin = ctx.plugin.clone();
    let shared = ctx.shared.clone();
    let budget = ctx.budget.clone();
    let timeout = shared.op_timeout;

    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            return Err(StreamError::Dns(format!(
                "`{}` did not resolve: {e}",
                endpoint.host
            )));
        }
        Err(_) => {
            return Err(StreamError::Timeout(format!(
                "resolving `{}` took more than {} ms",
                endpoint.host,
                timeout.as_millis()
            )));
        }
    };
    if addrs.is_empty() {
        return Err(StreamError::Dns(format!(
            "`{}` has no addresses",
            endpoint.host
        )));
    }
    if security == Security::Plain && !addrs.iter().all(|a| is_loopback(a.ip())) {
        return Err(plain_refused(&endpoint));
    }

    let tcp = tokio::time::timeout(timeout, async {
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(closed))
    })
    .await;
    let tcp = match tcp {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(StreamError::Io(format!(
                "cannot connect to {endpoint}: {e}"
            )));
        }
        Err(_) => {
            return Err(StreamError::Timeout(format!(
                "connecting to {endpoint} took more than {} ms",
                timeout.as_millis()
            )));
        }
    };
    let _ = tcp.set_nodelay(true);
    let io = match security {
        Security::Tls => Io::Tls(Box::new(handshake(&shared, &endpoint, tcp).await?)),
        Security::Starttls | Security::Plain => Io::Plain(tcp),
    };
    tracing::debug!(plugin = &*plugin, server = %endpoint, ?security, "plugin connected");
    let connection = Connection {
        endpoint,
        security,
        io,
        budget,
        shared,
    };
    view.streams_table()
        .push(connection)
        .map_err(|e| StreamError::Limit(e.to_string()))
}

fn plain_refused(endpoint: &Endpoint) -> StreamError {
    StreamError::NotAllowed(format!(
        "`plain` (no TLS) is allowed only to loopback servers, and {endpoint} is not one; \
         use `tls` or `starttls`"
    ))
}

fn connection<'a>(
    view: &'a mut impl StreamsView,
    handle: &Resource<Connection>,
) -> Result<&'a mut Connection, StreamError> {
    view.streams_table()
        .get_mut(handle)
        .map_err(|e| StreamError::Io(format!("no such connection: {e}")))
}

/// `connection.read`.
pub(crate) async fn read(
    view: &mut impl StreamsView,
    handle: &Resource<Connection>,
    max: u32,
) -> Result<Vec<u8>, StreamError> {
    connection(view, handle)?.read(max).await
}

/// `connection.write`.
pub(crate) async fn write(
    view: &mut impl StreamsView,
    handle: &Resource<Connection>,
    data: &[u8],
) -> Result<(), StreamError> {
    connection(view, handle)?.write(data).await
}

/// `connection.start-tls`.
pub(crate) async fn start_tls(
    view: &mut impl StreamsView,
    handle: &Resource<Connection>,
) -> Result<(), StreamError> {
    connection(view, handle)?.start_tls().await
}

/// `connection.is-tls`.
pub(crate) fn is_tls(view: &mut impl StreamsView, handle: &Resource<Connection>) -> bool {
    connection(view, handle).is_ok_and(|c| c.is_tls())
}

mod host;

#[cfg(test)]
mod tests;
