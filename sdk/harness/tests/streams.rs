//! `switchboard:mail/streams` from inside the sandbox: the `test-streams`
//! component (an e-mail-world connector) connects through the real plugin
//! host to servers on 127.0.0.1 — TLS with the test's own CA passed as the
//! extra root, STARTTLS, plain to loopback — and gets `not-allowed` for any
//! server its config does not name. Nothing leaves loopback.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use switchboard_harness::{
    Automatic, CallError, Copies, Harness, Limits, PluginError, StreamsConfig, bindings, no_copies,
    plugin_dir, text_message, webhook,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A test CA and a TLS acceptor for `localhost` signed by it.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "Switchboard harness test CA");
        Pki {
            ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn acceptor(&self, name: &str) -> TlsAcceptor {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn read_line(tcp: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if tcp.read(&mut byte).await.ok()? != 1 {
            return None;
        }
        line.push(byte[0]);
    }
    Some(line)
}

/// How a test server speaks before echoing.
#[derive(Clone, Copy)]
enum Mode {
    /// TLS from the first byte.
    Tls,
    /// `220` greeting, `STARTTLS`, `220`, then TLS.
    StartTls,
    /// Plain text, no greeting.
    Plain,
    /// A greeting line over TLS, then echo (IMAP-like).
    TlsGreeting,
}

async fn server(acceptor: TlsAcceptor, mode: Mode) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match mode {
                    Mode::Plain => echo(tcp).await,
                    Mode::Tls => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            echo(tls).await;
                        }
                    }
                    Mode::TlsGreeting => {
                        if let Ok(mut tls) = acceptor.accept(tcp).await
                            && tls.write_all(b"* OK test IMAP ready\r\n").await.is_ok()
                        {
                            echo(tls).await;
                        }
                    }
                    Mode::StartTls => {
                        if tcp.write_all(b"220 ready\r\n").await.is_err() {
                            return;
                        }
                        if read_line(&mut tcp).await.as_deref() != Some(b"STARTTLS\r\n")
                            || tcp.write_all(b"220 go ahead\r\n").await.is_err()
                        {
                            return;
                        }
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            echo(tls).await;
                        }
                    }
                }
            });
        }
    });
    port
}

fn to(server: &str) -> bindings::Identity {
    bindings::Identity {
        kind: "email".into(),
        value: server.into(),
    }
}

fn load(pki: &Pki, config: &[(&str, &str)]) -> Harness {
    Harness::load_with_extra_ca(&plugin_dir("test-streams"), config, &pki.ca.pem())
        .expect("load test-streams (run plugins/build.sh)")
}

fn refused(result: Result<Result<bindings::SendReceipt, PluginError>, CallError>) -> String {
    match result.expect("the call itself succeeds") {
        Err(PluginError::Transient(m)) => m,
        other => panic!("expected a stream error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_email_plugin_reaches_its_smtp_server_over_tls() {
    let pki = Pki::new();
    let port = server(pki.acceptor("localhost"), Mode::Tls).await;
    let h = load(
        &pki,
        &[("smtp_host", "LocalHost"), ("smtp_port", &port.to_string())],
    );
    assert!(h.is_mail());
    let status = h.host().status(h.id()).unwrap();
    assert_eq!(status.approved_servers, [format!("localhost:{port}")]);
    let copies = Copies {
        cc: vec![to("a@example.com")],
        bcc: vec![to("b@example.com"), to("c@example.com")],
    };
    let message = text_message("m1", "c1", to(&format!("localhost:{port}")), "EHLO test");
    let receipt = h.send_mail(&message, &copies).await.unwrap().unwrap();
    assert_eq!(receipt.provider_id, "EHLO test|tls=true|cc=1|bcc=2");

    // The plain channel export works on an e-mail plugin too.
    let receipt = h.send(&message).await.unwrap().unwrap();
    assert_eq!(receipt.provider_id, "EHLO test|tls=true|cc=0|bcc=0");
    assert_eq!(h.describe().await.unwrap().channel, "email");
}

#[tokio::test]
async fn poll_mail_reads_from_the_imap_server() {
    let pki = Pki::new();
    let port = server(pki.acceptor("localhost"), Mode::TlsGreeting).await;
    let h = load(
        &pki,
        &[("imap_host", "localhost"), ("imap_port", &port.to_string())],
    );
    let batch = h.poll_mail(Some("uid:7")).await.unwrap().unwrap();
    assert_eq!(batch.envelopes.len(), 1);
    assert_eq!(batch.envelopes[0].provider_id, "* OK test IMAP ready");
    assert_eq!(batch.cursor.as_deref(), Some("uid:7"));
}

#[tokio::test]
async fn handle_mail_webhook_returns_the_batch() {
    let pki = Pki::new();
    let h = load(&pki, &[]);
    let request = webhook("https://switchboard.test/hooks/test-streams", &[], b"{}");
    let batch = h.handle_mail_webhook(&request).await.unwrap().unwrap();
    assert_eq!(batch.response.map(|r| r.status), Some(200));
    assert!(matches!(
        batch.envelopes.as_slice(),
        [e] if e.provider_id == "hook" && e.automatic == Some(Automatic::Bulk)
    ));
}

#[tokio::test]
async fn starttls_upgrades_inside_the_sandbox() {
    let pki = Pki::new();
    let port = server(pki.acceptor("localhost"), Mode::StartTls).await;
    let h = load(
        &pki,
        &[
            ("smtp_host", "localhost"),
            ("smtp_port", &port.to_string()),
            ("security", "starttls"),
        ],
    );
    let message = text_message(
        "m1",
        "c1",
        to(&format!("localhost:{port}")),
        "MAIL FROM:<a@b>",
    );
    let receipt = h.send_mail(&message, &no_copies()).await.unwrap().unwrap();
    assert_eq!(receipt.provider_id, "MAIL FROM:<a@b>|tls=true|cc=0|bcc=0");
}

#[tokio::test]
async fn servers_the_config_does_not_name_are_not_allowed() {
    let pki = Pki::new();
    let port = server(pki.acceptor("localhost"), Mode::Tls).await;
    let h = load(
        &pki,
        &[("smtp_host", "localhost"), ("smtp_port", &port.to_string())],
    );
    for server in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{}", port.wrapping_add(1)),
        "smtp.example.com:465".to_string(),
    ] {
        let message = text_message("m1", "c1", to(&server), "x");
        let m = refused(h.send_mail(&message, &no_copies()).await);
        assert!(m.starts_with("not-allowed: "), "{server}: {m}");
        assert!(m.contains(&format!("localhost:{port}")), "{server}: {m}");
    }
}

#[tokio::test]
async fn the_extra_ca_is_what_makes_the_server_trusted() {
    let pki = Pki::new();
    let port = server(pki.acceptor("localhost"), Mode::Tls).await;
    let config = [
        ("smtp_host", "localhost"),
        ("smtp_port", &*port.to_string()),
    ];
    // Public roots only.
    let h = Harness::load_with(&plugin_dir("test-streams"), &config, Limits::default(), &[])
        .expect("load test-streams");
    let message = text_message("m1", "c1", to(&format!("localhost:{port}")), "x");
    let m = refused(h.send_mail(&message, &no_copies()).await);
    assert!(m.starts_with("tls: "), "{m}");

    // A certificate for another name, from the trusted CA.
    let other = server(pki.acceptor("smtp.other.example"), Mode::Tls).await;
    let h = load(
        &pki,
        &[
            ("smtp_host", "localhost"),
            ("smtp_port", &other.to_string()),
        ],
    );
    let message = text_message("m1", "c1", to(&format!("localhost:{other}")), "x");
    let m = refused(h.send_mail(&message, &no_copies()).await);
    assert!(m.starts_with("tls: "), "{m}");
}

#[tokio::test]
async fn plain_goes_only_to_loopback() {
    let pki = Pki::new();
    let port = server(pki.acceptor("localhost"), Mode::Plain).await;
    let h = load(
        &pki,
        &[
            ("smtp_host", "localhost"),
            ("smtp_port", &port.to_string()),
            ("imap_host", "192.0.2.1"),
            ("imap_port", "143"),
            ("security", "plain"),
        ],
    );
    let message = text_message("m1", "c1", to(&format!("localhost:{port}")), "HELO");
    let receipt = h.send_mail(&message, &no_copies()).await.unwrap().unwrap();
    assert_eq!(receipt.provider_id, "HELO|tls=false|cc=0|bcc=0");

    // Approved, but not loopback: refused before any packet is sent.
    let message = text_message("m1", "c1", to("192.0.2.1:143"), "HELO");
    let m = refused(h.send_mail(&message, &no_copies()).await);
    assert!(
        m.starts_with("not-allowed: ") && m.contains("loopback"),
        "{m}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_call() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let pki = Pki::new();
    let mut streams = StreamsConfig::default();
    streams.add_pem_roots(pki.ca.pem().as_bytes()).unwrap();
    streams.op_timeout = Duration::from_millis(200);
    let h = Harness::load_with_streams(
        &plugin_dir("test-streams"),
        &[("smtp_host", "localhost"), ("smtp_port", &port.to_string())],
        Limits::default(),
        &[],
        streams,
    )
    .expect("load test-streams");
    let message = text_message("m1", "c1", to(&format!("localhost:{port}")), "x");
    let m = refused(h.send_mail(&message, &no_copies()).await);
    assert!(
        m.starts_with("timeout: ") && m.contains("TLS handshake"),
        "{m}"
    );
}

#[tokio::test]
async fn mail_calls_on_a_plain_channel_plugin_are_unsupported() {
    let h = Harness::load(
        &plugin_dir("sms-twilio"),
        &[
            ("account_sid", "AC1"),
            ("auth_token", "secret"),
            ("from_number", "+15550001111"),
        ],
    )
    .expect("load sms-twilio");
    assert!(!h.is_mail());
    assert!(matches!(
        h.poll_mail(None).await,
        Ok(Err(PluginError::Unsupported(_)))
    ));
}

#[test]
fn a_config_port_that_is_no_port_fails_the_load() {
    let pki = Pki::new();
    let err = Harness::load_with_extra_ca(
        &plugin_dir("test-streams"),
        &[("smtp_host", "localhost"), ("smtp_port", "submission")],
        &pki.ca.pem(),
    )
    .err()
    .expect("refused");
    assert!(
        err.to_string()
            .contains("config `smtp_port` = `submission` is not a port"),
        "{err}"
    );
}
