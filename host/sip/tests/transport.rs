//! The tokio transport over loopback: desk phones, trunks and a second Switchboard
//! talking to an endpoint, with a small test TU answering in the test body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_sip::message::{
    Framing, Message, Method, SipUri, Transport, Via, frame, new_branch, new_call_id, new_tag,
};
use switchboard_sip::transaction::TransactionId;
use switchboard_sip::transport::{SipEndpoint, SipEvent, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn endpoint(config: TransportConfig) -> (SipEndpoint, Receiver<SipEvent>) {
    SipEndpoint::bind(config).await.expect("bind on loopback")
}

async fn plain_endpoint() -> (SipEndpoint, Receiver<SipEvent>) {
    endpoint(TransportConfig::new(loopback())).await
}

/// A request from `from` (the address it claims in Via and Contact) to `to`.
fn request(method: Method, transport: Transport, from: SocketAddr, to: SocketAddr) -> Message {
    let host = from.ip().to_string();
    Message::request(
        method.clone(),
        SipUri::sip(Some("queue-sales"), &to.ip().to_string(), Some(to.port())),
    )
    .with_header(
        "Via",
        Via::new(transport, &host, Some(from.port()), &new_branch()),
    )
    .with_header("Max-Forwards", 70)
    .with_header("From", format!("<sip:1001@{from}>;tag={}", new_tag()))
    .with_header("To", format!("<sip:queue-sales@{to}>"))
    .with_header("Call-ID", new_call_id(&host))
    .with_header("CSeq", format!("1 {method}"))
    .with_header("Contact", format!("<sip:1001@{from}>"))
    .with_header("Content-Length", 0)
}

async fn next_event(events: &mut Receiver<SipEvent>) -> SipEvent {
    timeout(PATIENCE, events.recv())
        .await
        .expect("an event in time")
        .expect("the endpoint is running")
}

/// A request as the TU sees it.
struct Incoming {
    id: TransactionId,
    request: Message,
    source: SocketAddr,
    transport: Transport,
}

/// The next new request, skipping transaction ends and other chatter.
async fn next_request(events: &mut Receiver<SipEvent>) -> Incoming {
    loop {
        if let SipEvent::Request {
            id,
            request,
            source,
            transport,
        } = next_event(events).await
        {
            return Incoming {
                id,
                request,
                source,
                transport,
            };
        }
    }
}

/// The next response for client transaction `id`.
async fn next_response(events: &mut Receiver<SipEvent>, id: TransactionId) -> Message {
    loop {
        if let SipEvent::Response { id: got, response } = next_event(events).await
            && got == id
        {
            return response;
        }
    }
}

async fn next_malformed(events: &mut Receiver<SipEvent>) -> (String, bool) {
    loop {
        if let SipEvent::Malformed {
            error, answered, ..
        } = next_event(events).await
        {
            return (error, answered);
        }
    }
}

/// A desk phone on a raw UDP socket.
struct UdpPhone {
    socket: UdpSocket,
}

impl UdpPhone {
    async fn new() -> UdpPhone {
        UdpPhone {
            socket: UdpSocket::bind(loopback()).await.unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.socket.send_to(bytes, to).await.unwrap();
    }

    async fn receive_within(&self, wait: Duration) -> Option<Message> {
        let mut buf = vec![0u8; 65536];
        let (n, _) = timeout(wait, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some(Message::parse(&buf[..n]).expect("the endpoint sends valid SIP"))
    }

    async fn receive(&self) -> Message {
        self.receive_within(PATIENCE)
            .await
            .expect("a message in time")
    }
}

/// A desk phone on a raw TCP connection.
struct TcpPhone {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl TcpPhone {
    async fn connect(to: SocketAddr) -> TcpPhone {
        TcpPhone {
            stream: TcpStream::connect(to).await.unwrap(),
            buf: Vec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn receive(&mut self) -> Message {
        loop {
            match frame(&self.buf) {
                Framing::Complete(n) => {
                    let message = Message::parse(&self.buf[..n]).unwrap();
                    self.buf.drain(..n);
                    return message;
                }
                Framing::KeepAlive(n) => {
                    self.buf.drain(..n);
                }
                Framing::Incomplete => {
                    let mut chunk = [0u8; 4096];
                    let n = timeout(PATIENCE, self.stream.read(&mut chunk))
                        .await
                        .expect("bytes in time")
                        .unwrap();
                    assert!(n > 0, "connection closed while waiting for a message");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Framing::Invalid => panic!("the endpoint sent an unframeable stream"),
            }
        }
    }

    /// Reads until the endpoint closes the connection; false if it stays open.
    async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

#[tokio::test]
async fn an_options_over_udp_is_answered_200_by_the_tu() {
    let (sip, mut events) = plain_endpoint().await;
    let phone = UdpPhone::new().await;
    let options = request(
        Method::Options,
        Transport::Udp,
        phone.addr(),
        sip.udp_addr(),
    );
    phone.send(&options.to_bytes(), sip.udp_addr()).await;

    let Incoming {
        id,
        request: received,
        source,
        transport,
    } = next_request(&mut events).await;
    assert_eq!((source, transport), (phone.addr(), Transport::Udp));
    assert_eq!(received.method(), Some(&Method::Options));
    let port = phone.addr().port().to_string();
    assert_eq!(received.via().unwrap().params.value("rport"), Some(&*port));
    sip.respond(id, Message::response_to(&received, 200));

    let ok = phone.receive().await;
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.call_id(), options.call_id());
    let stats = sip.stats();
    assert_eq!((stats.received, stats.sent, stats.malformed), (1, 1, 0));
}

#[tokio::test]
async fn an_invite_over_tcp_gets_100_trying_then_200_and_its_ack_reaches_the_tu() {
    let (sip, mut events) = plain_endpoint().await;
    let tcp = sip.tcp_addr().unwrap();
    assert_eq!(
        tcp,
        sip.udp_addr(),
        "TCP listens on the UDP address by default"
    );
    let mut phone = TcpPhone::connect(tcp).await;
    let invite = request(Method::Invite, Transport::Tcp, phone.addr(), tcp);
    phone.send(&invite.to_bytes()).await;

    assert_eq!(phone.receive().await.status(), Some(100));
    let Incoming {
        id,
        request: received,
        transport,
        ..
    } = next_request(&mut events).await;
    assert_eq!(transport, Transport::Tcp);
    let mut ok = Message::response_to(&received, 200);
    ok.push_header("Contact", format!("<sip:queue-sales@{tcp};transport=tcp>"));
    sip.respond(id, ok);

    let ok = phone.receive().await;
    assert_eq!(ok.status(), Some(200));
    let mut ack = request(Method::Ack, Transport::Tcp, phone.addr(), tcp);
    for name in ["From", "Call-ID"] {
        ack.set_header(name, invite.header(name).unwrap());
    }
    ack.set_header("To", ok.header("To").unwrap());
    phone.send(&ack.to_bytes()).await;

    loop {
        match next_event(&mut events).await {
            SipEvent::Ack {
                request, transport, ..
            } => {
                assert_eq!(transport, Transport::Tcp);
                assert_eq!(request.call_id(), invite.call_id());
                break;
            }
            SipEvent::Terminated { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_cancelled_invite_is_answered_487_and_both_sides_hear_of_it() {
    let (caller, mut caller_events) = plain_endpoint().await;
    let (callee, mut callee_events) = plain_endpoint().await;
    let invite = request(
        Method::Invite,
        Transport::Udp,
        caller.udp_addr(),
        callee.udp_addr(),
    );
    let id = caller
        .send_request(invite, callee.udp_addr(), Transport::Udp)
        .await
        .unwrap();
    let invite_id = next_request(&mut callee_events).await.id;
    assert_eq!(
        next_response(&mut caller_events, id).await.status(),
        Some(100)
    );

    let cancel_id = caller.cancel(id).await.unwrap();
    assert_eq!(
        next_response(&mut caller_events, cancel_id).await.status(),
        Some(200)
    );
    assert_eq!(
        next_response(&mut caller_events, id).await.status(),
        Some(487)
    );
    loop {
        if let SipEvent::Cancelled { id: cancelled, .. } = next_event(&mut callee_events).await {
            assert_eq!(cancelled, invite_id);
            break;
        }
    }
}

#[tokio::test]
async fn a_garbage_datagram_gets_nothing_back_and_the_endpoint_keeps_working() {
    let (sip, mut events) = plain_endpoint().await;
    let phone = UdpPhone::new().await;
    phone
        .send(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not SIP",
            sip.udp_addr(),
        )
        .await;
    assert!(
        phone
            .receive_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    let (error, answered) = next_malformed(&mut events).await;
    assert!(!answered, "{error}");

    // Readable enough to route a response: it gets its 400.
    let bad = request(
        Method::Options,
        Transport::Udp,
        phone.addr(),
        sip.udp_addr(),
    )
    .to_string()
    .replace("Max-Forwards: 70", "Max-Forwards: lots");
    phone.send(bad.as_bytes(), sip.udp_addr()).await;
    assert_eq!(phone.receive().await.status(), Some(400));
    let (error, answered) = next_malformed(&mut events).await;
    assert!(answered, "{error}");

    let options = request(
        Method::Options,
        Transport::Udp,
        phone.addr(),
        sip.udp_addr(),
    );
    phone.send(&options.to_bytes(), sip.udp_addr()).await;
    let incoming = next_request(&mut events).await;
    sip.respond(incoming.id, Message::response_to(&incoming.request, 200));
    assert_eq!(phone.receive().await.status(), Some(200));
    assert_eq!(sip.stats().malformed, 2);
}

#[tokio::test]
async fn a_megabyte_of_tcp_garbage_closes_that_connection_only() {
    let (sip, mut events) = plain_endpoint().await;
    let tcp = sip.tcp_addr().unwrap();
    let mut good = TcpPhone::connect(tcp).await;
    let mut bad = TcpPhone::connect(tcp).await;

    let garbage = vec![b'x'; 1024 * 1024];
    // The endpoint stops reading after the size limit; the rest may fail to send.
    let _ = bad.stream.write_all(&garbage).await;
    assert!(
        bad.closed_within(PATIENCE).await,
        "the garbage connection is closed"
    );
    let (error, answered) = next_malformed(&mut events).await;
    assert!(!answered, "{error}");

    let options = request(Method::Options, Transport::Tcp, good.addr(), tcp);
    good.send(&options.to_bytes()).await;
    let incoming = next_request(&mut events).await;
    sip.respond(incoming.id, Message::response_to(&incoming.request, 200));
    assert_eq!(good.receive().await.status(), Some(200));
}

#[tokio::test]
async fn a_stream_message_without_content_length_is_answered_400_and_the_connection_closed() {
    let (sip, mut events) = plain_endpoint().await;
    let tcp = sip.tcp_addr().unwrap();
    let mut phone = TcpPhone::connect(tcp).await;
    let mut options = request(Method::Options, Transport::Tcp, phone.addr(), tcp);
    options.remove_header("Content-Length");
    phone.send(&options.to_bytes()).await;

    let answer = phone.receive().await;
    assert_eq!(answer.status(), Some(400));
    assert!(answer.reason().unwrap().contains("Content-Length"));
    assert!(phone.closed_within(PATIENCE).await);
    let (error, answered) = next_malformed(&mut events).await;
    assert!(answered, "{error}");
}

#[tokio::test]
async fn a_crlf_ping_over_tcp_gets_a_pong() {
    let (sip, _events) = plain_endpoint().await;
    let mut phone = TcpPhone::connect(sip.tcp_addr().unwrap()).await;
    phone.send(b"\r\n\r\n").await;
    let mut pong = [0u8; 2];
    timeout(PATIENCE, phone.stream.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");
}

#[tokio::test]
async fn an_outbound_request_over_udp_gets_its_response_event() {
    let (trunk, mut trunk_events) = plain_endpoint().await;
    let (switchboard, mut events) = plain_endpoint().await;
    let options = request(
        Method::Options,
        Transport::Udp,
        switchboard.udp_addr(),
        trunk.udp_addr(),
    );
    let id = switchboard
        .send_request(options, trunk.udp_addr(), Transport::Udp)
        .await
        .unwrap();
    let incoming = next_request(&mut trunk_events).await;
    trunk.respond(incoming.id, Message::response_to(&incoming.request, 200));
    assert_eq!(next_response(&mut events, id).await.status(), Some(200));
}

#[tokio::test]
async fn an_outbound_request_over_tcp_opens_a_connection_and_reuses_it() {
    let (trunk, mut trunk_events) = plain_endpoint().await;
    let (switchboard, mut events) = plain_endpoint().await;
    let to = trunk.tcp_addr().unwrap();
    let mut sources = Vec::new();
    for _ in 0..2 {
        let options = request(Method::Options, Transport::Tcp, switchboard.udp_addr(), to);
        let id = switchboard
            .send_request(options, to, Transport::Tcp)
            .await
            .unwrap();
        let incoming = next_request(&mut trunk_events).await;
        assert_eq!(incoming.transport, Transport::Tcp);
        sources.push(incoming.source);
        trunk.respond(incoming.id, Message::response_to(&incoming.request, 200));
        assert_eq!(next_response(&mut events, id).await.status(), Some(200));
    }
    assert_eq!(sources[0], sources[1], "one connection for both requests");

    let closed_port = {
        let listener = std::net::TcpListener::bind(loopback()).unwrap();
        listener.local_addr().unwrap()
    };
    let refused = switchboard
        .send_request(
            request(
                Method::Options,
                Transport::Tcp,
                switchboard.udp_addr(),
                closed_port,
            ),
            closed_port,
            Transport::Tcp,
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[tokio::test]
async fn an_options_over_tls_with_a_self_signed_certificate_is_delivered() {
    let (server, client) = tls_configs();
    let mut config = TransportConfig::new(loopback());
    config.tls = Some((loopback(), server));
    let (trunk, mut trunk_events) = endpoint(config).await;
    let to = trunk.tls_addr().unwrap();

    let (plain, _) = plain_endpoint().await;
    let error = plain
        .send_request(
            request(Method::Options, Transport::Tls, plain.udp_addr(), to),
            to,
            Transport::Tls,
        )
        .await;
    assert!(error.is_err(), "no client configuration, no TLS");

    let mut config = TransportConfig::new(loopback());
    config.tls_client = Some(client);
    let (switchboard, mut events) = endpoint(config).await;
    let options = request(Method::Options, Transport::Tls, switchboard.udp_addr(), to);
    let id = switchboard
        .send_request(options, to, Transport::Tls)
        .await
        .unwrap();
    let incoming = next_request(&mut trunk_events).await;
    assert_eq!(incoming.transport, Transport::Tls);
    assert_eq!(incoming.request.method(), Some(&Method::Options));
    trunk.respond(incoming.id, Message::response_to(&incoming.request, 200));
    assert_eq!(next_response(&mut events, id).await.status(), Some(200));
}

#[tokio::test]
async fn a_tu_that_falls_behind_gets_new_requests_shed_with_503() {
    let mut config = TransportConfig::new(loopback());
    config.event_capacity = 4;
    let (sip, mut events) = endpoint(config).await;
    let phone = UdpPhone::new().await;
    for _ in 0..20 {
        let options = request(
            Method::Options,
            Transport::Udp,
            phone.addr(),
            sip.udp_addr(),
        );
        phone.send(&options.to_bytes(), sip.udp_addr()).await;
    }
    let mut shed = 0;
    while let Some(answer) = phone.receive_within(Duration::from_millis(500)).await {
        assert_eq!(answer.status(), Some(503));
        assert!(answer.header("Retry-After").is_some());
        shed += 1;
    }
    assert!(shed > 0, "some requests are shed");

    // The TU catches up: what it was given, it can still answer.
    let mut delivered = 0;
    while let Ok(Some(event)) = timeout(Duration::from_millis(200), events.recv()).await {
        if let SipEvent::Request { id, request, .. } = event {
            sip.respond(id, Message::response_to(&request, 200));
            delivered += 1;
        }
    }
    assert_eq!(delivered + shed, 20);
    for _ in 0..delivered {
        assert_eq!(phone.receive().await.status(), Some(200));
    }
}

#[tokio::test]
async fn shutdown_ends_the_event_stream_and_refuses_requests() {
    let (sip, mut events) = plain_endpoint().await;
    sip.shutdown();
    assert_eq!(timeout(PATIENCE, events.recv()).await.unwrap(), None);
    let refused = sip
        .send_request(
            request(
                Method::Options,
                Transport::Udp,
                sip.udp_addr(),
                sip.udp_addr(),
            ),
            sip.udp_addr(),
            Transport::Udp,
        )
        .await;
    assert!(refused.is_err());
}

/// Two endpoints on one two-thread runtime run a thousand OPTIONS transactions over
/// UDP, 100 in flight at a time. A release build does this in a fraction of a second;
/// the bound leaves room for a debug build on a loaded machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_transactions_go_through_quickly() {
    const TOTAL: usize = 1000;
    const IN_FLIGHT: usize = 100;
    let (trunk, mut trunk_events) = plain_endpoint().await;
    let (switchboard, mut events) = plain_endpoint().await;
    let (to, from) = (trunk.udp_addr(), switchboard.udp_addr());
    tokio::spawn(async move {
        while let Some(event) = trunk_events.recv().await {
            if let SipEvent::Request { id, request, .. } = event {
                trunk.respond(id, Message::response_to(&request, 200));
            }
        }
    });

    let started = Instant::now();
    let mut sent = 0;
    let mut answered = 0;
    while answered < TOTAL {
        while sent < TOTAL && sent - answered < IN_FLIGHT {
            let options = request(Method::Options, Transport::Udp, from, to);
            switchboard
                .send_request(options, to, Transport::Udp)
                .await
                .unwrap();
            sent += 1;
        }
        match next_event(&mut events).await {
            SipEvent::Response { response, .. } => {
                assert_eq!(response.status(), Some(200));
                answered += 1;
            }
            SipEvent::Terminated { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{TOTAL} transactions in {elapsed:?}: {:.0}/s",
        TOTAL as f64 / elapsed.as_secs_f64()
    );
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    assert_eq!(switchboard.stats().dropped, 0);
}
