//! Voice peers for end-to-end tests: an agent's browser (an in-process str0m peer
//! signaling over the realtime WebSocket, like the softphone) and a plain SIP caller
//! (a UDP socket speaking SIP and RTP, built with the host's own message types).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use str0m::change::SdpAnswer;
use str0m::format::{Codec as Str0mCodec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use switchboard_sip::message::{
    Message, Method, NameAddr, SipUri, Transport, Via, new_branch, new_tag,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The browser's telephone-event payload type (Chrome's).
pub const DESK_EVENT_PT: u8 = 126;

enum DeskCommand {
    Say { timestamp: u64, frame: Vec<u8> },
}

/// An agent's softphone: one persistent WebRTC connection to the host, and the
/// realtime socket it was negotiated on (whose events it keeps).
pub struct AgentPhone {
    commands: mpsc::UnboundedSender<DeskCommand>,
    /// Audio payloads heard from the host, in order (telephone events left out).
    pub heard: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Whether ICE and DTLS are up.
    pub connected: Arc<Mutex<bool>>,
    /// Realtime events received.
    pub events: Arc<Mutex<Vec<Value>>>,
}

impl AgentPhone {
    /// Logs the softphone in: realtime socket, offer, answer, ICE.
    pub async fn connect(base: &str, token: &str) -> AgentPhone {
        AgentPhone::connect_to(base, token, None).await
    }

    /// [`AgentPhone::connect`] through the server at `base`, with the offer naming
    /// cluster node `node` (as the desk does after `softphone.move`): that node
    /// answers, and the audio flows to it.
    pub async fn connect_to(base: &str, token: &str, node: Option<&str>) -> AgentPhone {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let mut config = RtcConfig::new().clear_codecs();
        let codecs = config.codec_config();
        codecs.enable_opus(true, false);
        codecs.enable_pcmu(true, false);
        codecs.enable_pcma(true, false);
        codecs.add_config(
            DESK_EVENT_PT.into(),
            None,
            Str0mCodec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();

        let url = format!(
            "{}/api/v1/realtime?token={token}",
            base.replace("http://", "ws://")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("realtime socket");
        let mut message = json!({"type": "webrtc.offer", "sdp": offer.to_sdp_string()});
        if let Some(node) = node {
            message["node"] = json!(node);
        }
        ws.send(WsMessage::Text(message.to_string().into()))
            .await
            .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(msg)) = ws.next().await {
                if let WsMessage::Text(text) = msg {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    match v["type"].as_str() {
                        Some("webrtc.answer") => return v["sdp"].as_str().unwrap().to_string(),
                        Some("webrtc.error") => panic!("host refused the offer: {v}"),
                        _ => events.lock().unwrap().push(v),
                    }
                }
            }
            panic!("realtime socket closed before the answer");
        })
        .await
        .expect("webrtc.answer within 10 s");
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        let sink = events.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                if let WsMessage::Text(text) = msg
                    && let Ok(v) = serde_json::from_str::<Value>(&text)
                {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let connected = Arc::new(Mutex::new(false));
        tokio::spawn(drive(
            rtc,
            socket,
            addr,
            mid,
            rx,
            heard.clone(),
            connected.clone(),
        ));
        let phone = AgentPhone {
            commands,
            heard,
            connected,
            events,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !*phone.connected.lock().unwrap() {
            assert!(
                Instant::now() < deadline,
                "the softphone's WebRTC connection did not come up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        phone
    }

    /// Sends one 20 ms PCMU frame at RTP `timestamp`.
    pub fn say(&self, timestamp: u64, frame: Vec<u8>) {
        let _ = self.commands.send(DeskCommand::Say { timestamp, frame });
    }

    /// Realtime events of `kind` so far.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }
}

async fn drive(
    mut rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    mid: Mid,
    mut commands: mpsc::UnboundedReceiver<DeskCommand>,
    heard: Arc<Mutex<Vec<Vec<u8>>>>,
    connected: Arc<Mutex<bool>>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(at)) => break at,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(Event::Connected)) => *connected.lock().unwrap() = true,
                Ok(Output::Event(Event::MediaData(data))) => {
                    if !data.params.spec().codec.is_tele() {
                        heard.lock().unwrap().push(data.data.to_vec());
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => return,
            }
        };
        let wait = timeout.saturating_duration_since(Instant::now());
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((n, source)) = r else { return };
                if let Ok(contents) = buf[..n].try_into() {
                    let _ = rtc.handle_input(Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: addr,
                        contents,
                    }));
                }
            }
            c = commands.recv() => match c {
                Some(DeskCommand::Say { timestamp, frame }) => {
                    if let Some(writer) = rtc.writer(mid) {
                        let pt = 0u8.into();
                        let _ = writer.write(pt, Instant::now(), MediaTime::new(timestamp, Frequency::EIGHT_KHZ), frame);
                    }
                }
                None => return,
            },
            _ = tokio::time::sleep(wait) => {
                let _ = rtc.handle_input(Input::Timeout(Instant::now()));
            }
        }
    }
}

/// A plain SIP caller on loopback: one UDP socket for SIP, one for RTP.
pub struct SipCaller {
    sip: Arc<UdpSocket>,
    /// The caller's RTP socket.
    pub rtp: Arc<UdpSocket>,
    host: SocketAddr,
    call_id: String,
    from: NameAddr,
    to: Option<NameAddr>,
    /// The host's RTP address from its SDP answer.
    pub host_rtp: Option<SocketAddr>,
    /// RTP packets received from the host (raw datagrams).
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
    /// When each of `received` arrived.
    pub arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    /// SIP requests the host sent us (e.g. its BYE).
    pub requests: Arc<Mutex<Vec<Message>>>,
    responses: Arc<Mutex<Vec<Message>>>,
    cseq: u32,
    sequence: u16,
    timestamp: u32,
}

impl SipCaller {
    /// Binds the sockets on 127.0.0.1.
    pub async fn new(host: SocketAddr, number: &str) -> SipCaller {
        SipCaller::new_on("127.0.0.1", host, number).await
    }

    /// Binds the sockets on another loopback address (e.g. 127.0.0.2, not a trunk).
    pub async fn new_on(ip: &str, host: SocketAddr, number: &str) -> SipCaller {
        let sip = Arc::new(UdpSocket::bind(format!("{ip}:0")).await.unwrap());
        let rtp = Arc::new(UdpSocket::bind(format!("{ip}:0")).await.unwrap());
        let port = sip.local_addr().unwrap().port();
        let mut from = NameAddr::new(SipUri::sip(Some(number), ip, Some(port)));
        from.params.set("tag", Some(&new_tag()));
        let caller = SipCaller {
            sip: sip.clone(),
            rtp: rtp.clone(),
            host,
            call_id: format!("{}@127.0.0.1", new_tag()),
            from,
            to: None,
            host_rtp: None,
            received: Arc::default(),
            arrivals: Arc::default(),
            requests: Arc::default(),
            responses: Arc::default(),
            cseq: 0,
            sequence: 1,
            timestamp: 0,
        };
        let (received, arrivals) = (caller.received.clone(), caller.arrivals.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, _)) = rtp.recv_from(&mut buf).await {
                let at = std::time::Instant::now();
                let mut received = received.lock().unwrap();
                received.push(buf[..n].to_vec());
                arrivals.lock().unwrap().push(at);
            }
        });
        let (requests, responses) = (caller.requests.clone(), caller.responses.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = sip.recv_from(&mut buf).await {
                let Ok(msg) = Message::parse(&buf[..n]) else {
                    continue;
                };
                if msg.is_request() {
                    if msg.method() != Some(&Method::Ack) {
                        let ok = Message::response_to(&msg, 200);
                        let _ = sip.send_to(&ok.to_bytes(), from).await;
                    }
                    requests.lock().unwrap().push(msg);
                } else {
                    responses.lock().unwrap().push(msg);
                }
            }
        });
        caller
    }

    fn request(&mut self, method: Method, uri: SipUri) -> Message {
        self.cseq += 1;
        let local = self.sip.local_addr().unwrap();
        let (ip, port) = (local.ip().to_string(), local.port());
        let via = Via::new(Transport::Udp, &ip, Some(port), &new_branch());
        let to = self
            .to
            .clone()
            .unwrap_or_else(|| NameAddr::new(uri.clone()));
        Message::request(method.clone(), uri)
            .with_header("Via", via)
            .with_header("Max-Forwards", 70)
            .with_header("From", &self.from)
            .with_header("To", to)
            .with_header("Call-ID", &self.call_id)
            .with_header("CSeq", format!("{} {method}", self.cseq))
            .with_header("Contact", format!("<sip:caller@{ip}:{port}>"))
    }

    /// Calls `dialed` offering PCMU and telephone-event, waits for the final answer
    /// and ACKs a 200. Returns the final status (0: none within 10 s).
    pub async fn call(&mut self, dialed: &str) -> u16 {
        self.call_with_sdp_codecs(
            dialed,
            "0 101",
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16",
        )
        .await
    }

    /// Calls `dialed` offering the payload types `formats` with `rtpmaps` lines.
    pub async fn call_with_sdp_codecs(
        &mut self,
        dialed: &str,
        formats: &str,
        rtpmaps: &str,
    ) -> u16 {
        let uri = SipUri::sip(
            Some(dialed),
            &self.host.ip().to_string(),
            Some(self.host.port()),
        );
        let local = self.rtp.local_addr().unwrap();
        let (ip, rtp_port) = (local.ip(), local.port());
        let sdp = format!(
            "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {rtp_port} RTP/AVP {formats}\r\n{rtpmaps}\r\na=sendrecv\r\n"
        );
        let mut invite = self.request(Method::Invite, uri.clone());
        invite.set_body("application/sdp", sdp.into_bytes());
        let bytes = invite.to_bytes();
        self.sip.send_to(&bytes, self.host).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Timer A: UDP may drop the INVITE (a flooded socket does), so resend it
        // until anything comes back.
        let mut resend_at = Instant::now() + Duration::from_millis(500);
        let response = loop {
            if Instant::now() >= resend_at && self.responses.lock().unwrap().is_empty() {
                self.sip.send_to(&bytes, self.host).await.unwrap();
                resend_at = Instant::now() + Duration::from_millis(500);
            }
            let found = self
                .responses
                .lock()
                .unwrap()
                .iter()
                .find(|r| r.status().is_some_and(|s| s >= 200))
                .cloned();
            if let Some(r) = found {
                break r;
            }
            if Instant::now() >= deadline {
                return 0;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let status = response.status().unwrap();
        if status != 200 {
            return status;
        }
        self.to = response.to();
        let body = String::from_utf8_lossy(response.body()).into_owned();
        let port: u16 = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .expect("m=audio in the answer");
        self.host_rtp = Some(SocketAddr::new(self.host.ip(), port));
        let target = response.contact().map(|c| c.uri).unwrap_or(uri);
        self.cseq -= 1;
        let mut ack = self.request(Method::Ack, target);
        ack.set_header("CSeq", format!("{} ACK", self.cseq));
        self.sip.send_to(&ack.to_bytes(), self.host).await.unwrap();
        200
    }

    /// Sends one RTP packet of PCMU `payload` (20 ms).
    pub async fn say(&mut self, payload: &[u8]) {
        let mut packet = vec![0x80, 0x00];
        packet.extend_from_slice(&self.sequence.to_be_bytes());
        packet.extend_from_slice(&self.timestamp.to_be_bytes());
        packet.extend_from_slice(&0x5151_5151u32.to_be_bytes());
        packet.extend_from_slice(payload);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        let to = self.host_rtp.expect("call first");
        self.rtp.send_to(&packet, to).await.unwrap();
    }

    /// Presses a key: RFC 4733 start, updates and three end packets (payload type 101).
    pub async fn press(&mut self, event: u8) {
        let to = self.host_rtp.expect("call first");
        let timestamp = self.timestamp;
        for (i, end) in [false, false, false, true, true, true]
            .into_iter()
            .enumerate()
        {
            let duration = (i as u16 + 1).min(4) * 160;
            let mut packet = vec![0x80, if i == 0 { 0x80 | 101 } else { 101 }];
            packet.extend_from_slice(&self.sequence.to_be_bytes());
            packet.extend_from_slice(&timestamp.to_be_bytes());
            packet.extend_from_slice(&0x5151_5151u32.to_be_bytes());
            packet.extend_from_slice(&[event, if end { 0x80 | 10 } else { 10 }]);
            packet.extend_from_slice(&duration.to_be_bytes());
            self.sequence = self.sequence.wrapping_add(1);
            self.rtp.send_to(&packet, to).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.timestamp = self.timestamp.wrapping_add(960);
    }

    /// Hangs up.
    pub async fn bye(&mut self) {
        let uri = SipUri::sip(None, &self.host.ip().to_string(), Some(self.host.port()));
        let bye = self.request(Method::Bye, uri);
        self.sip.send_to(&bye.to_bytes(), self.host).await.unwrap();
    }

    /// Whether the host hung up on us.
    pub fn got_bye(&self) -> bool {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.method() == Some(&Method::Bye))
    }

    /// Sends raw bytes to the host's SIP port.
    pub async fn raw(&self, bytes: &[u8]) {
        self.sip.send_to(bytes, self.host).await.unwrap();
    }

    /// Responses so far.
    pub fn responses(&self) -> Vec<Message> {
        self.responses.lock().unwrap().clone()
    }
}

/// A free UDP port on loopback (bound and released).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running sipp (Debian `sip-tester`) with a scenario from `tests/sipp/`.
pub struct Sipp {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
    /// Its SIP port.
    pub port: u16,
}

impl Sipp {
    /// Starts `sipp -sf tests/sipp/{scenario}.xml` for one call towards `target`
    /// (`None`: a UAS waiting on its port).
    pub fn start(scenario: &str, target: Option<SocketAddr>) -> Sipp {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let media = free_udp_port();
        let path = format!("{}/sipp/{scenario}.xml", env!("CARGO_MANIFEST_DIR"));
        let mut cmd = tokio::process::Command::new("sipp");
        cmd.current_dir(dir.path())
            .args(["-sf", &path, "-m", "1", "-l", "1", "-i", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .args(["-timeout", "90s", "-trace_err"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(t) = target {
            cmd.arg(t.to_string());
        }
        let child = cmd.spawn().expect("sipp runs (apt-get install sip-tester)");
        Sipp { child, dir, port }
    }

    /// Waits for sipp to finish; returns whether its one call succeeded, and what it
    /// printed (screen and error log) for diagnostics.
    pub async fn finish(self, within: Duration) -> (bool, String) {
        let Sipp { child, dir, .. } = self;
        let out = tokio::time::timeout(within, child.wait_with_output()).await;
        let mut text = String::new();
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if let Ok(log) = std::fs::read_to_string(entry.path()) {
                text.push_str(&format!("--- {}\n{log}\n", entry.path().display()));
            }
        }
        match out {
            Ok(Ok(o)) => {
                text.push_str(&String::from_utf8_lossy(&o.stdout));
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                (o.status.success(), text)
            }
            Ok(Err(e)) => (false, format!("{text}\nsipp failed: {e}")),
            Err(_) => (
                false,
                format!("{text}\nsipp still running after {within:?}"),
            ),
        }
    }
}

/// The RTP payloads of a pcap capture (Ethernet, IPv4, UDP), in order.
pub fn pcap_rtp_payloads(path: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut offset = 24;
    let mut out = Vec::new();
    while offset + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset + 8..offset + 12].try_into().unwrap()) as usize;
        offset += 16;
        let packet = &bytes[offset..offset + len];
        offset += len;
        let ip = &packet[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let rtp = &ip[ihl + 8..];
        if rtp.len() > 12 {
            out.push(rtp[12..].to_vec());
        }
    }
    out
}

/// A server with voice for the voice tests: one agent (`agent` = (email, password,
/// name)), a trunk at `trunk` (its IP is trusted for INVITEs), `routing-default` with
/// `policy` settings when given, extra CLI `setup` commands and environment `env`.
/// Returns the server,
/// the agent's token, and the stand-in Twilio it was provisioned with.
pub async fn voice_server(
    agent: (&str, &str, &str),
    trunk: &str,
    policy: Option<&[&str]>,
    setup: &[&[&str]],
    env: &[(&str, &str)],
) -> (crate::Server, String, crate::FakeTwilio) {
    let twilio = crate::FakeTwilio::start().await;
    let options = crate::Options {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..crate::Options::default()
    };
    let data = crate::provision(&options, &twilio).await;
    let (email, password, name) = agent;
    let user = [
        "admin",
        "create-user",
        "--email",
        email,
        "--password",
        password,
        "--role",
        "agent",
        "--name",
        name,
    ];
    crate::cli(data.path(), &options, &user).await;
    let trunk_add = ["trunk", "add", "--name", "carrier", "--address", trunk];
    crate::cli(data.path(), &options, &trunk_add).await;
    if let Some(config) = policy {
        let dir = crate::plugin_dist().join("routing-default");
        let mut args = vec!["plugin", "install", dir.to_str().unwrap()];
        for c in config {
            args.extend(["--config", c]);
        }
        crate::cli(data.path(), &options, &args).await;
    }
    for args in setup {
        crate::cli(data.path(), &options, args).await;
    }
    let server = crate::Server::start_in(Arc::new(data), options).await;
    assert!(server.sip.is_some(), "voice runs: {}", server.log());
    let (token, _) = server.login(email, password).await;
    (server, token, twilio)
}

/// A frame the other side can recognise: 160 bytes of one μ-law value that decodes
/// far from silence.
pub fn frame(n: u8) -> Vec<u8> {
    vec![0x10 + (n % 0x60); 160]
}

/// How many of `wanted` appear in `heard` in order (other packets may sit between).
pub fn in_order(heard: &[Vec<u8>], wanted: &[Vec<u8>]) -> usize {
    let mut found = 0;
    for h in heard {
        if found < wanted.len() && *h == wanted[found] {
            found += 1;
        }
    }
    found
}

/// Waits (15 s at most) for a voice offer to the agent signed in with `token`, on
/// `server`, accepts it there and returns it (an SMS offer may come first: the call
/// then takes its place).
pub async fn answer_voice_offer(server: &crate::Server, token: &str) -> Value {
    let offer = server
        .eventually(Duration::from_secs(15), || async {
            let (_, v) = server
                .call(token, "GET", "/api/v1/agents/me/offers", json!(null))
                .await;
            v["offers"]
                .as_array()?
                .iter()
                .find(|o| o["task"]["channel"] == "voice")
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no voice offer; log:\n{}", server.log()));
    let id = offer["reservation"]["id"]
        .as_str()
        .expect("a reservation id");
    let (status, v) = server
        .call(
            token,
            "POST",
            &format!("/api/v1/reservations/{id}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    offer
}

/// The gaps between consecutive arrivals within `[from, to)`, in milliseconds,
/// sorted.
pub fn gaps_ms(
    arrivals: &[std::time::Instant],
    from: std::time::Instant,
    to: std::time::Instant,
) -> Vec<f64> {
    let within: Vec<_> = arrivals
        .iter()
        .filter(|at| **at >= from && **at < to)
        .collect();
    let mut gaps: Vec<f64> = within
        .windows(2)
        .map(|w| w[1].duration_since(*w[0]).as_secs_f64() * 1e3)
        .collect();
    gaps.sort_by(f64::total_cmp);
    gaps
}

/// The RTP payloads of `packets[from..]` with payload type `pt` (`None`: any).
pub fn payloads(packets: &[Vec<u8>], from: usize, pt: Option<u8>) -> Vec<Vec<u8>> {
    packets[from.min(packets.len())..]
        .iter()
        .filter(|p| p.len() > 12 && p[0] >> 6 == 2)
        .filter(|p| pt.is_none_or(|t| p[1] & 0x7f == t))
        .map(|p| p[12..].to_vec())
        .collect()
}
