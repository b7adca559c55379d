//! The streams capability without wasm: the same functions the `streams`
//! host trait calls, on a bare context, against real servers on 127.0.0.1
//! (TLS with a test CA, STARTTLS, silence). Nothing leaves loopback: refused
//! connections are refused before any packet is sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use wasmtime::component::{Resource, ResourceTable};

use super::*;

const EMAIL_MANIFEST: &str = r#"
id = "email"
version = "0.1.0"
kind = "channel"
world = "switchboard:mail/email@0.1.0"
component = "email.wasm"

[[capabilities.connect]]
host-config = "imap_host"
port-config = "imap_port"
default-port = 993

[[capabilities.connect]]
host-config = "smtp_host"
port-config = "smtp_port"
default-port = 465

[[config]]
key = "imap_host"

[[config]]
key = "imap_port"

[[config]]
key = "smtp_host"

[[config]]
key = "smtp_port"
"#;

/// A store's data as the tests build it: what `PluginState` holds for streams.
struct TestCtx {
    streams: Option<StreamsCtx>,
    table: ResourceTable,
}

impl StreamsView for TestCtx {
    fn streams_ctx(&mut self) -> Option<&mut StreamsCtx> {
        self.streams.as_mut()
    }

    fn streams_table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

fn config_map(config: &[(&str, &str)]) -> HashMap<String, String> {
    config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn endpoints(config: &[(&str, &str)]) -> Result<Vec<Endpoint>, String> {
    let manifest = Manifest::parse(EMAIL_MANIFEST).expect("test manifest");
    approved_endpoints(&manifest, &config_map(config))
}

/// The context of one call of the e-mail plugin configured with `config`.
fn mail_ctx(config: &[(&str, &str)], streams: StreamsConfig) -> TestCtx {
    let endpoints = endpoints(config).expect("valid config");
    let shared = streams.build().expect("TLS client");
    TestCtx {
        streams: Some(StreamsCtx::new("email".into(), shared, endpoints.into())),
        table: ResourceTable::new(),
    }
}

/// A test CA; servers get certificates it signed.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "Switchboard test CA");
        let key = KeyPair::generate().expect("CA key");
        Pki {
            ca: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Streams settings trusting this CA, with short deadlines.
    fn streams(&self) -> StreamsConfig {
        let mut config = StreamsConfig::default();
        assert_eq!(config.add_pem_roots(self.ca_pem().as_bytes()).unwrap(), 1);
        config.op_timeout = Duration::from_secs(5);
        config
    }

    /// A TLS acceptor with a certificate for `names`.
    fn acceptor(&self, names: &[&str]) -> TlsAcceptor {
        let key = KeyPair::generate().expect("server key");
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server params");
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("server certificate");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        TlsAcceptor::from(Arc::new(config))
    }
}

async fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    (listener, port)
}

/// Echoes every chunk back until the peer closes.
async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// An echo server behind TLS with a certificate for `names`.
async fn tls_echo_server(pki: &Pki, names: &[&str]) -> u16 {
    let acceptor = pki.acceptor(names);
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    echo(tls).await;
                }
            });
        }
    });
    port
}

/// An echo server without TLS.
async fn plain_echo_server() -> u16 {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(echo(tcp));
        }
    });
    port
}

/// SMTP-like: a plain greeting, `STARTTLS`, then TLS and echo.
async fn starttls_server(pki: &Pki, names: &[&str]) -> u16 {
    let acceptor = pki.acceptor(names);
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if tcp.write_all(b"220 ready\r\n").await.is_err() {
                    return;
                }
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while !line.ends_with(b"\r\n") {
                    match tcp.read(&mut byte).await {
                        Ok(1) => line.push(byte[0]),
                        _ => return,
                    }
                }
                if line != b"STARTTLS\r\n" || tcp.write_all(b"220 go ahead\r\n").await.is_err() {
                    return;
                }
                if let Ok(tls) = acceptor.accept(tcp).await {
                    echo(tls).await;
                }
            });
        }
    });
    port
}

/// Accepts and never says anything; the sockets stay open.
async fn silent_server() -> u16 {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    port
}

async fn round_trip(ctx: &mut TestCtx, conn: &Resource<Connection>, text: &[u8]) -> Vec<u8> {
    write(ctx, conn, text).await.expect("write");
    let mut got = Vec::new();
    while got.len() < text.len() {
        let chunk = read(ctx, conn, 1024).await.expect("read");
        assert!(!chunk.is_empty(), "server closed early");
        got.extend(chunk);
    }
    got
}

fn not_allowed(r: Result<Resource<Connection>, StreamError>) -> String {
    match r {
        Err(StreamError::NotAllowed(m)) => m,
        Err(other) => panic!("expected not-allowed, got {other:?}"),
        Ok(_) => panic!("expected not-allowed, got a connection"),
    }
}

// Approval.

#[test]
fn approved_servers_come_from_config_with_default_ports() {
    let got = endpoints(&[("imap_host", "Imap.Example.COM."), ("smtp_host", "[::1]")]).unwrap();
    let shown: Vec<_> = got.iter().map(Endpoint::to_string).collect();
    assert_eq!(shown, ["imap.example.com:993", "[::1]:465"]);

    let got = endpoints(&[("imap_host", "127.0.0.1"), ("imap_port", " 1143 ")]).unwrap();
    let shown: Vec<_> = got.iter().map(Endpoint::to_string).collect();
    assert_eq!(
        shown,
        ["127.0.0.1:1143"],
        "an unset smtp_host approves nothing"
    );

    assert!(endpoints(&[]).unwrap().is_empty());
}

#[test]
fn config_values_that_name_no_server_are_refused() {
    let e = endpoints(&[("imap_host", "mail.example.com"), ("imap_port", "99999")]).unwrap_err();
    assert!(e.contains("`imap_port` = `99999` is not a port"), "{e}");
    let e = endpoints(&[("imap_host", "mail.example.com"), ("imap_port", "0")]).unwrap_err();
    assert!(e.contains("is not a port"), "{e}");
    let e = endpoints(&[("imap_host", "mail.example.com:993")]).unwrap_err();
    assert!(
        e.contains("`imap_host` = `mail.example.com:993` is not a host"),
        "{e}"
    );
    let e = endpoints(&[("smtp_host", "https://mail.example.com")]).unwrap_err();
    assert!(e.contains("`smtp_host`"), "{e}");
}

#[tokio::test]
async fn the_approved_server_is_reached_over_tls_with_the_extra_root() {
    let pki = Pki::new();
    let port = tls_echo_server(&pki, &["localhost"]).await;
    let mut ctx = mail_ctx(
        &[("imap_host", "localhost"), ("imap_port", &port.to_string())],
        pki.streams(),
    );
    let conn = connect(&mut ctx, "localhost".into(), port, Security::Tls)
        .await
        .expect("connect");
    assert!(is_tls(&mut ctx, &conn));
    assert_eq!(
        round_trip(&mut ctx, &conn, b"a1 NOOP\r\n").await,
        b"a1 NOOP\r\n"
    );

    // The name is compared without regard to case.
    let again = connect(&mut ctx, "LocalHost".into(), port, Security::Tls).await;
    assert!(again.is_ok(), "{:?}", again.err());
}

#[tokio::test]
async fn an_ip_address_server_is_verified_against_the_address() {
    let pki = Pki::new();
    let port = tls_echo_server(&pki, &["127.0.0.1"]).await;
    let mut ctx = mail_ctx(
        &[("imap_host", "127.0.0.1"), ("imap_port", &port.to_string())],
        pki.streams(),
    );
    let conn = connect(&mut ctx, "127.0.0.1".into(), port, Security::Tls)
        .await
        .expect("connect");
    assert_eq!(round_trip(&mut ctx, &conn, b"EHLO\r\n").await, b"EHLO\r\n");
}

#[tokio::test]
async fn another_host_is_not_allowed() {
    let pki = Pki::new();
    let mut ctx = mail_ctx(
        &[("imap_host", "localhost"), ("imap_port", "1993")],
        pki.streams(),
    );
    let m = not_allowed(connect(&mut ctx, "127.0.0.1".into(), 1993, Security::Tls).await);
    assert!(
        m.contains("127.0.0.1:1993 is not an approved server") && m.contains("localhost:1993"),
        "{m}"
    );
    let m = not_allowed(connect(&mut ctx, "evil.example".into(), 1993, Security::Tls).await);
    assert!(m.contains("allowed: localhost:1993"), "{m}");
    let m = not_allowed(connect(&mut ctx, "local host".into(), 1993, Security::Tls).await);
    assert!(m.contains("`local host`:1993"), "{m}");
}

#[tokio::test]
async fn another_port_is_not_allowed() {
    let pki = Pki::new();
    let mut ctx = mail_ctx(
        &[
            ("imap_host", "localhost"),
            ("smtp_host", "localhost"),
            ("smtp_port", "2587"),
        ],
        pki.streams(),
    );
    let m = not_allowed(connect(&mut ctx, "localhost".into(), 25, Security::Starttls).await);
    assert!(
        m.contains("localhost:25 is not an approved server")
            && m.contains("allowed: localhost:993, localhost:2587"),
        "{m}"
    );
}

#[tokio::test]
async fn a_plugin_without_approved_servers_is_not_allowed() {
    // Any plugin that is not an e-mail connector: no streams state at all.
    let mut ctx = TestCtx {
        streams: None,
        table: ResourceTable::new(),
    };
    let m = not_allowed(connect(&mut ctx, "localhost".into(), 993, Security::Tls).await);
    assert!(m.contains("no approved servers"), "{m}");

    // An e-mail connector whose host keys the operator left unset.
    let mut ctx = mail_ctx(&[], StreamsConfig::default());
    let m = not_allowed(connect(&mut ctx, "localhost".into(), 993, Security::Tls).await);
    assert!(m.contains("allowed: none"), "{m}");
}

#[tokio::test]
async fn plain_is_refused_to_a_non_loopback_server_before_connecting() {
    // TEST-NET addresses: refused by the check, no packet is ever sent.
    let mut ctx = mail_ctx(
        &[
            ("imap_host", "192.0.2.1"),
            ("imap_port", "143"),
            ("smtp_host", "2001:db8::25"),
        ],
        StreamsConfig::default(),
    );
    let started = std::time::Instant::now();
    let m = not_allowed(connect(&mut ctx, "192.0.2.1".into(), 143, Security::Plain).await);
    assert!(
        m.contains("only to loopback servers") && m.contains("192.0.2.1:143"),
        "{m}"
    );
    let m = not_allowed(connect(&mut ctx, "[2001:db8::25]".into(), 465, Security::Plain).await);
    assert!(m.contains("[2001:db8::25]:465"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn plain_works_to_loopback() {
    let port = plain_echo_server().await;
    let mut ctx = mail_ctx(
        &[("imap_host", "localhost"), ("imap_port", &port.to_string())],
        StreamsConfig::default(),
    );
    let conn = connect(&mut ctx, "localhost".into(), port, Security::Plain)
        .await
        .expect("connect");
    assert!(!is_tls(&mut ctx, &conn));
    assert_eq!(
        round_trip(&mut ctx, &conn, b"a1 LOGIN\r\n").await,
        b"a1 LOGIN\r\n"
    );
    match start_tls(&mut ctx, &conn).await {
        Err(StreamError::NotAllowed(m)) => assert!(m.contains("cannot be upgraded"), "{m}"),
        other => panic!("expected not-allowed, got {other:?}"),
    }
}

// TLS.

#[tokio::test]
async fn a_certificate_for_another_name_fails_the_handshake() {
    let pki = Pki::new();
    let port = tls_echo_server(&pki, &["mail.other.example"]).await;
    let mut ctx = mail_ctx(
        &[("imap_host", "localhost"), ("imap_port", &port.to_string())],
        pki.streams(),
    );
    match connect(&mut ctx, "localhost".into(), port, Security::Tls).await {
        Err(StreamError::Tls(m)) => assert!(m.contains("localhost"), "{m}"),
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("expected a TLS error, got a connection"),
    }
}

#[tokio::test]
async fn a_server_from_an_unknown_ca_fails_the_handshake() {
    let pki = Pki::new();
    let port = tls_echo_server(&pki, &["localhost"]).await;
    // Public roots only: the test CA is not trusted.
    let mut ctx = mail_ctx(
        &[("imap_host", "localhost"), ("imap_port", &port.to_string())],
        StreamsConfig::default(),
    );
    match connect(&mut ctx, "localhost".into(), port, Security::Tls).await {
        Err(StreamError::Tls(m)) => assert!(m.to_lowercase().contains("certificate"), "{m}"),
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("expected a TLS error, got a connection"),
    }
}

#[tokio::test]
async fn starttls_upgrades_the_connection() {
    let pki = Pki::new();
    let port = starttls_server(&pki, &["localhost"]).await;
    let mut ctx = mail_ctx(
        &[("smtp_host", "localhost"), ("smtp_port", &port.to_string())],
        pki.streams(),
    );
    let conn = connect(&mut ctx, "localhost".into(), port, Security::Starttls)
        .await
        .expect("connect");
    assert!(!is_tls(&mut ctx, &conn));
    assert_eq!(read(&mut ctx, &conn, 1024).await.unwrap(), b"220 ready\r\n");
    write(&mut ctx, &conn, b"STARTTLS\r\n").await.unwrap();
    assert_eq!(
        read(&mut ctx, &conn, 1024).await.unwrap(),
        b"220 go ahead\r\n"
    );
    start_tls(&mut ctx, &conn).await.expect("start-tls");
    assert!(is_tls(&mut ctx, &conn));
    assert_eq!(
        round_trip(&mut ctx, &conn, b"AUTH PLAIN xyz\r\n").await,
        b"AUTH PLAIN xyz\r\n"
    );
    match start_tls(&mut ctx, &conn).await {
        Err(StreamError::Tls(m)) => assert!(m.contains("already encrypted"), "{m}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn starttls_to_a_server_with_the_wrong_name_fails() {
    let pki = Pki::new();
    let port = starttls_server(&pki, &["smtp.other.example"]).await;
    let mut ctx = mail_ctx(
        &[("smtp_host", "localhost"), ("smtp_port", &port.to_string())],
        pki.streams(),
    );
    let conn = connect(&mut ctx, "localhost".into(), port, Security::Starttls)
        .await
        .expect("connect");
    read(&mut ctx, &conn, 1024).await.unwrap();
    write(&mut ctx, &conn, b"STARTTLS\r\n").await.unwrap();
    read(&mut ctx, &conn, 1024).await.unwrap();
    assert!(matches!(
        start_tls(&mut ctx, &conn).await,
        Err(StreamError::Tls(_))
    ));
    // The connection is closed after the failed upgrade.
    assert!(matches!(
        write(&mut ctx, &conn, b"QUIT\r\n").await,
        Err(StreamError::Io(_))
    ));
}

// Limits.

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let port = silent_server().await;
    let streams = StreamsConfig {
        op_timeout: Duration::from_millis(200),
        ..StreamsConfig::default()
    };
    let mut ctx = mail_ctx(
        &[("imap_host", "localhost"), ("imap_port", &port.to_string())],
        streams,
    );
    // The TLS handshake waits for a ServerHello that never comes.
    match connect(&mut ctx, "localhost".into(), port, Security::Tls).await {
        Err(StreamError::Timeout(m)) => assert!(m.contains("TLS handshake"), "{m}"),
        Err(other) => panic!("expected a timeout, got {other:?}"),
        Ok(_) => panic!("expected a timeout, got a connection"),
    }
    // A plain read waits for a greeting that never comes; then it is closed.
    let conn = connect(&mut ctx, "localhost".into(), port, Security::Starttls)
        .await
        .expect("connect");
    match read(&mut ctx, &conn, 1024).await {
        Err(StreamError::Timeout(m)) => assert!(m.contains("sent nothing for 200 ms"), "{m}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(matches!(
        read(&mut ctx, &conn, 1024).await,
        Err(StreamError::Io(_))
    ));
}

#[tokio::test]
async fn the_read_and_write_budgets_hold_for_the_whole_call() {
    let port = plain_echo_server().await;
    let streams = StreamsConfig {
        read_budget: 8,
        write_budget: 12,
        ..StreamsConfig::default()
    };
    let mut ctx = mail_ctx(
        &[("imap_host", "127.0.0.1"), ("imap_port", &port.to_string())],
        streams,
    );
    let conn = connect(&mut ctx, "127.0.0.1".into(), port, Security::Plain)
        .await
        .expect("connect");
    write(&mut ctx, &conn, b"0123456789").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 8 {
        got.extend(read(&mut ctx, &conn, 1024).await.unwrap());
    }
    assert_eq!(got, b"01234567");
    assert!(matches!(
        read(&mut ctx, &conn, 1024).await,
        Err(StreamError::Limit(_))
    ));
    // Writing past the budget is refused whole, on any connection.
    let other = connect(&mut ctx, "127.0.0.1".into(), port, Security::Plain)
        .await
        .expect("connect");
    assert!(matches!(
        write(&mut ctx, &other, b"abc").await,
        Err(StreamError::Limit(_))
    ));
    write(&mut ctx, &other, b"ab").await.unwrap();
}

#[tokio::test]
async fn connections_per_call_are_capped() {
    let port = plain_echo_server().await;
    let streams = StreamsConfig {
        max_connections: 2,
        ..StreamsConfig::default()
    };
    let mut ctx = mail_ctx(
        &[("imap_host", "localhost"), ("imap_port", &port.to_string())],
        streams,
    );
    for _ in 0..2 {
        connect(&mut ctx, "localhost".into(), port, Security::Plain)
            .await
            .expect("connect");
    }
    assert!(matches!(
        connect(&mut ctx, "localhost".into(), port, Security::Plain).await,
        Err(StreamError::Limit(_))
    ));
}

#[tokio::test]
async fn connections_close_with_the_store() {
    let (listener, port) = listener().await;
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut tcp, _)) = listener.accept().await else {
            return;
        };
        let mut buf = [0u8; 64];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                let _ = closed_tx.send(());
                return;
            }
        }
    });
    let mut ctx = mail_ctx(
        &[("imap_host", "localhost"), ("imap_port", &port.to_string())],
        StreamsConfig::default(),
    );
    let conn = connect(&mut ctx, "localhost".into(), port, Security::Plain)
        .await
        .expect("connect");
    write(&mut ctx, &conn, b"hello").await.unwrap();
    drop(ctx);
    tokio::time::timeout(Duration::from_secs(5), closed_rx)
        .await
        .expect("the server saw the connection close")
        .expect("server task");
}

#[tokio::test]
async fn a_refused_connection_is_an_io_error() {
    // A port nothing listens on (bound, then closed).
    let port = {
        let (listener, port) = listener().await;
        drop(listener);
        port
    };
    let mut ctx = mail_ctx(
        &[("imap_host", "127.0.0.1"), ("imap_port", &port.to_string())],
        StreamsConfig::default(),
    );
    match connect(&mut ctx, "127.0.0.1".into(), port, Security::Tls).await {
        Err(StreamError::Io(m)) => assert!(m.contains("cannot connect to 127.0.0.1"), "{m}"),
        Err(other) => panic!("expected an I/O error, got {other:?}"),
        Ok(_) => panic!("expected an I/O error, got a connection"),
    }
}

#[test]
fn extra_roots_must_be_pem_certificates() {
    let mut config = StreamsConfig::default();
    assert!(matches!(
        config.add_pem_roots(b"not a certificate"),
        Err(StreamsConfigError::Pem { .. })
    ));
    assert!(matches!(
        config.add_pem_file(Path::new("/nonexistent/ca.pem")),
        Err(StreamsConfigError::Read { .. })
    ));
    assert_eq!(config.extra_roots(), 0);
    let pki = Pki::new();
    let two = format!("{}{}", pki.ca_pem(), Pki::new().ca_pem());
    assert_eq!(config.add_pem_roots(two.as_bytes()).unwrap(), 2);
    assert_eq!(config.extra_roots(), 2);
}

#[tokio::test]
async fn a_connection_that_never_existed_is_an_error_not_a_trap() {
    let mut ctx = mail_ctx(&[], StreamsConfig::default());
    let bogus = Resource::<Connection>::new_own(42);
    assert!(matches!(
        read(&mut ctx, &bogus, 10).await,
        Err(StreamError::Io(_))
    ));
    assert!(!is_tls(&mut ctx, &bogus));
}
