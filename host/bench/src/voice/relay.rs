//! Part 2, relay cost per packet. N bridged calls, each the real per-call media task
//! ([`media::spawn`]) on a loopback RTP socket, bridged to an agent leg of plain RTP
//! on one shared UDP socket (where the WebRTC endpoint's socket is in production;
//! its ICE and SRTP work is not part of the figure). Baseline: a bare forwarder on
//! the same sockets at the same rates, one task per call doing `recv_from` →
//! `send_to`, and the same agent-side receive loop.
//!
//! The calls run on a runtime of their own (one worker per CPU, like `switchboard
//! serve`), so the on-CPU time of its threads is the cost of the calls and nothing
//! else. Callers and agents are a load generator on one other thread: it sends
//! G.711 at 50 packets/s each way per call, spread over every 20 ms, and counts what
//! arrives at the far end. The cost is the runtime's thread time divided by the
//! packets that arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use switchboard_media::Codec;
use switchboard_voice::media::{self, AgentSink, MediaCommand, MediaCounters, MediaSetup};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use super::measure::{LOOPBACK, ThreadCpu, VoiceBenchArgs, current_tid};

/// RTP packets per second in each direction of a call (20 ms G.711 frames).
const PACKETS_PER_SECOND: u64 = 50;
/// 12-byte RTP header and 160 bytes of PCMU.
const RTP_PACKET_LEN: usize = 172;
/// The telephone-event payload type both legs negotiate.
const TELEPHONE_EVENT: u8 = 101;
/// Every run sends for this long before measuring.
const WARM_UP: Duration = Duration::from_secs(1);

/// What carries a call's packets between the caller's socket and the agent leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaPath {
    /// The real per-call media task, bridged.
    Relay,
    /// A bare forwarder: `recv_from` → `send_to`.
    Forwarder,
}

impl MediaPath {
    fn name(self) -> &'static str {
        match self {
            MediaPath::Relay => "media task (relay)",
            MediaPath::Forwarder => "bare forwarder",
        }
    }
}

/// How agent-leg packets find their call: by the agent's address, like the WebRTC
/// endpoint finds the session.
enum Route {
    Media(mpsc::Sender<MediaCommand>),
    Socket(Arc<UdpSocket>, SocketAddr),
}

/// The side under test, on the host runtime.
struct HostSide {
    /// Each call's RTP socket (where callers send).
    caller_facing: Vec<SocketAddr>,
    /// The shared agent-leg socket (where agents send).
    agent_facing: SocketAddr,
    media: Vec<mpsc::Sender<MediaCommand>>,
    tasks: Vec<AbortHandle>,
}

/// Binds the sockets and starts the calls of one run (call this on the host runtime).
async fn start_host_side(
    path: MediaPath,
    callers: Vec<SocketAddr>,
    agents: Vec<SocketAddr>,
    counters: Arc<MediaCounters>,
) -> anyhow::Result<HostSide> {
    let shared = std::net::UdpSocket::bind((LOOPBACK, 0))?;
    shared.set_nonblocking(true)?;
    let agent_facing = shared.local_addr()?;
    // Sends towards agents are synchronous and best effort, like the agent sink.
    let to_agents = Arc::new(shared.try_clone()?);
    let from_agents = UdpSocket::from_std(shared)?;
    let mut side = HostSide {
        caller_facing: Vec::with_capacity(callers.len()),
        agent_facing,
        media: Vec::new(),
        tasks: Vec::new(),
    };
    let mut routes = HashMap::with_capacity(agents.len());
    for (&caller, &agent) in callers.iter().zip(&agents) {
        let socket = UdpSocket::bind((LOOPBACK, 0)).await?;
        side.caller_facing.push(socket.local_addr()?);
        let out = to_agents.clone();
        match path {
            MediaPath::Relay => {
                let (dead, _) = mpsc::unbounded_channel();
                let commands = media::spawn(MediaSetup {
                    socket,
                    remote: caller,
                    codec: Codec::Pcmu,
                    telephone_event: Some(TELEPHONE_EVENT),
                    call_id: format!("bench-{caller}"),
                    counters: counters.clone(),
                    rtp_timeout: std::time::Duration::from_secs(3600),
                    dead,
                });
                let sink: AgentSink = Arc::new(move |packet: &[u8]| {
                    let _ = out.send_to(packet, agent);
                });
                commands
                    .send(MediaCommand::Bridge {
                        sink,
                        telephone_event: Some(TELEPHONE_EVENT),
                    })
                    .await
                    .map_err(|_| anyhow::anyhow!("a media task ended at once"))?;
                routes.insert(agent, Route::Media(commands.clone()));
                side.media.push(commands);
            }
            MediaPath::Forwarder => {
                let socket = Arc::new(socket);
                let from_caller = socket.clone();
                let task = tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    loop {
                        let Ok((n, _)) = from_caller.recv_from(&mut buf).await else {
                            continue;
                        };
                        let _ = out.send_to(&buf[..n], agent);
                    }
                });
                side.tasks.push(task.abort_handle());
                routes.insert(agent, Route::Socket(socket, caller));
            }
        }
    }
    side.tasks
        .push(tokio::spawn(agent_ingress(from_agents, routes)).abort_handle());
    Ok(side)
}

/// The agent side's receive loop: one task for every agent leg, the way the WebRTC
/// endpoint hands each session's RTP to its call (`MediaCommand::FromAgent`).
async fn agent_ingress(socket: UdpSocket, routes: HashMap<SocketAddr, Route>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        match routes.get(&from) {
            Some(Route::Media(commands)) => {
                let _ = commands.try_send(MediaCommand::FromAgent(buf[..n].to_vec()));
            }
            Some(Route::Socket(socket, caller)) => {
                let _ = socket.send_to(&buf[..n], *caller).await;
            }
            None => {}
        }
    }
}

impl HostSide {
    /// Stops every call; for the relay, returns packets the media tasks forwarded
    /// (to the agent, to the caller).
    async fn stop(self) -> (u64, u64) {
        for task in &self.tasks {
            task.abort();
        }
        let mut forwarded = (0, 0);
        for commands in self.media {
            let (reply, summary) = oneshot::channel();
            if commands.send(MediaCommand::Stop(reply)).await.is_ok()
                && let Ok(s) = summary.await
            {
                forwarded.0 += s.agent_packets.1;
                forwarded.1 += s.caller_packets.1;
            }
        }
        forwarded
    }
}

/// The load generator's counters.
#[derive(Default)]
struct Load {
    sent: AtomicU64,
    /// Packets that arrived at agents' sockets (forwarded from callers).
    at_agents: AtomicU64,
    /// Packets that arrived at callers' sockets (forwarded from agents).
    at_callers: AtomicU64,
    /// Arrivals that were not a 172-byte PCMU packet.
    malformed: AtomicU64,
    stop: AtomicBool,
}

impl Load {
    fn received(&self) -> u64 {
        self.at_agents.load(Ordering::Relaxed) + self.at_callers.load(Ordering::Relaxed)
    }
}

/// One outgoing RTP stream of the generator.
struct Stream {
    packet: [u8; RTP_PACKET_LEN],
    sequence: u16,
    timestamp: u32,
}

impl Stream {
    fn new(ssrc: u32) -> Stream {
        let mut packet = [0u8; RTP_PACKET_LEN];
        packet[0] = 0x80;
        packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
        // A quiet tone-ish pattern; the relay never looks at payload bytes.
        for (i, b) in packet[12..].iter_mut().enumerate() {
            *b = 0xf0 | (i % 16) as u8;
        }
        Stream {
            packet,
            sequence: rand::random(),
            timestamp: rand::random(),
        }
    }

    fn next(&mut self) -> &[u8] {
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        self.packet[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        self.packet[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        &self.packet
    }
}

/// Sockets of the callers and agents, bound before the host side so it knows where
/// to send.
struct Ends {
    callers: Vec<std::net::UdpSocket>,
    agents: Vec<std::net::UdpSocket>,
}

impl Ends {
    fn bind(calls: usize) -> anyhow::Result<Ends> {
        let bind = || -> anyhow::Result<std::net::UdpSocket> {
            let s = std::net::UdpSocket::bind((LOOPBACK, 0))
                .context("binding a loopback UDP socket (ulimit -n too low?)")?;
            s.set_nonblocking(true)?;
            Ok(s)
        };
        Ok(Ends {
            callers: (0..calls).map(|_| bind()).collect::<anyhow::Result<_>>()?,
            agents: (0..calls).map(|_| bind()).collect::<anyhow::Result<_>>()?,
        })
    }

    fn addrs(sockets: &[std::net::UdpSocket]) -> std::io::Result<Vec<SocketAddr>> {
        sockets
            .iter()
            .map(std::net::UdpSocket::local_addr)
            .collect()
    }
}

/// Runs the callers and agents on their own thread until `load.stop`: every call
/// sends 50 packets/s each way, spread over each 20 ms so the sockets see a steady
/// stream rather than bursts, and every arrival is counted.
fn spawn_generator(
    ends: Ends,
    caller_facing: Vec<SocketAddr>,
    agent_facing: SocketAddr,
    load: Arc<Load>,
    tid: Arc<Mutex<Option<u32>>>,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    std::thread::spawn(move || {
        *tid.lock().expect("tid") = current_tid();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let callers: Vec<Arc<UdpSocket>> = ends
                .callers
                .into_iter()
                .map(|s| UdpSocket::from_std(s).map(Arc::new))
                .collect::<std::io::Result<_>>()?;
            let agents: Vec<Arc<UdpSocket>> = ends
                .agents
                .into_iter()
                .map(|s| UdpSocket::from_std(s).map(Arc::new))
                .collect::<std::io::Result<_>>()?;
            let mut receivers = Vec::new();
            for (sockets, agent_side) in [(&callers, false), (&agents, true)] {
                for socket in sockets {
                    let (socket, load) = (socket.clone(), load.clone());
                    receivers.push(tokio::spawn(async move {
                        let mut buf = [0u8; 2048];
                        while let Ok((n, _)) = socket.recv_from(&mut buf).await {
                            if n != RTP_PACKET_LEN || buf[1] & 0x7f != 0 {
                                load.malformed.fetch_add(1, Ordering::Relaxed);
                            } else if agent_side {
                                load.at_agents.fetch_add(1, Ordering::Relaxed);
                            } else {
                                load.at_callers.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }));
                }
            }
            let mut streams: Vec<(Stream, Stream)> = (0..callers.len())
                .map(|_| (Stream::new(rand::random()), Stream::new(rand::random())))
                .collect();
            let slots = (1000 / PACKETS_PER_SECOND) as usize;
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut k = 0usize;
            while !load.stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let slot = k % slots;
                k += 1;
                for i in (slot..callers.len()).step_by(slots) {
                    let (from_caller, from_agent) = &mut streams[i];
                    if callers[i]
                        .try_send_to(from_caller.next(), caller_facing[i])
                        .is_ok()
                    {
                        load.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    if agents[i]
                        .try_send_to(from_agent.next(), agent_facing)
                        .is_ok()
                    {
                        load.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Let the last packets arrive before the sockets close.
            tokio::time::sleep(Duration::from_millis(100)).await;
            for r in receivers {
                r.abort();
            }
            Ok(())
        })
    })
}

/// One measured relay or forwarder run.
struct RelayRun {
    path: MediaPath,
    calls: usize,
    seconds: f64,
    sent: u64,
    /// Packets that arrived at the far end during the measured window.
    forwarded: u64,
    malformed: u64,
    cpu: ThreadCpu,
    generator_cpu: Duration,
    /// For the relay: what the media tasks say they forwarded (whole run).
    media_forwarded: Option<(u64, u64)>,
}

impl RelayRun {
    fn ns_per_packet(&self) -> f64 {
        self.cpu.total.as_nanos() as f64 / self.forwarded.max(1) as f64
    }

    /// Calls one core could carry at this cost (each call forwards 100 packets/s).
    fn calls_per_core(&self) -> f64 {
        1e9 / self.ns_per_packet().max(1e-9) / (2 * PACKETS_PER_SECOND) as f64
    }

    fn print(&self) {
        let offered = self.calls as f64 * (2 * PACKETS_PER_SECOND) as f64 * self.seconds;
        println!(
            "    {:>6} {:<20} {:>10.0} {:>9.2} {:>9.0} {:>10.1} {:>8.0}% {:>9.0} {:>8.1}%",
            self.calls,
            self.path.name(),
            self.forwarded as f64 / self.seconds,
            100.0 * self.forwarded as f64 / offered.max(1.0),
            self.ns_per_packet(),
            100.0 * self.cpu.total.as_secs_f64() / self.seconds,
            100.0 * self.cpu.system_share(),
            self.calls_per_core(),
            100.0 * self.generator_cpu.as_secs_f64() / self.seconds,
        );
        if self.malformed > 0 {
            println!("           {} malformed arrivals", self.malformed);
        }
        if let Some((to_agents, to_callers)) = self.media_forwarded {
            println!(
                "           media tasks forwarded {to_agents} packets to agents and {to_callers} to callers over the whole run ({} sent)",
                self.sent
            );
        }
    }
}

/// Part 2's results.
pub(super) struct RelayCost {
    /// (relay, forwarder) per call count.
    pairs: Vec<(RelayRun, RelayRun)>,
}

impl RelayCost {
    pub(super) fn goal(&self) -> Option<(String, String, bool)> {
        let worst = self
            .pairs
            .iter()
            .map(|(r, f)| r.ns_per_packet() / f.ns_per_packet().max(1e-9))
            .max_by(f64::total_cmp)?;
        Some((
            "relay CPU/packet <= 3x bare forwarder (part 2)".into(),
            format!("{worst:.2}x"),
            worst <= 3.0,
        ))
    }
}

async fn relay_run(
    host: &tokio::runtime::Runtime,
    host_tids: &[u32],
    path: MediaPath,
    calls: usize,
    seconds: u32,
) -> anyhow::Result<RelayRun> {
    let ends = Ends::bind(calls)?;
    let callers = Ends::addrs(&ends.callers)?;
    let agents = Ends::addrs(&ends.agents)?;
    let counters = Arc::new(MediaCounters::default());
    let side = host
        .spawn(start_host_side(path, callers, agents, counters))
        .await
        .context("host side")??;
    let load = Arc::new(Load::default());
    let generator_tid = Arc::new(Mutex::new(None));
    let generator = spawn_generator(
        ends,
        side.caller_facing.clone(),
        side.agent_facing,
        load.clone(),
        generator_tid.clone(),
    );
    tokio::time::sleep(WARM_UP).await;
    let gen_tids: Vec<u32> = generator_tid.lock().expect("tid").iter().copied().collect();
    let (cpu0, gen0, got0, bad0) = (
        ThreadCpu::of(host_tids),
        ThreadCpu::of(&gen_tids),
        load.received(),
        load.malformed.load(Ordering::Relaxed),
    );
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(u64::from(seconds))).await;
    let (cpu1, gen1, got1, bad1) = (
        ThreadCpu::of(host_tids),
        ThreadCpu::of(&gen_tids),
        load.received(),
        load.malformed.load(Ordering::Relaxed),
    );
    let elapsed = started.elapsed();
    load.stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || generator.join())
        .await
        .context("joining the load generator")?
        .map_err(|_| anyhow::anyhow!("the load generator panicked"))??;
    let forwarded = host
        .spawn(side.stop())
        .await
        .context("stopping the calls")?;
    Ok(RelayRun {
        path,
        calls,
        seconds: elapsed.as_secs_f64(),
        sent: load.sent.load(Ordering::Relaxed),
        forwarded: got1 - got0,
        malformed: bad1 - bad0,
        cpu: cpu1.since(cpu0),
        generator_cpu: gen1.since(gen0).total,
        media_forwarded: (path == MediaPath::Relay).then_some(forwarded),
    })
}

/// Runs part 2 and prints its rows as they come.
pub(super) async fn run(args: &VoiceBenchArgs) -> anyhow::Result<RelayCost> {
    let tids = Arc::new(Mutex::new(Vec::new()));
    let recorded = tids.clone();
    // The calls' own runtime, shaped like `switchboard serve`'s (one worker per
    // CPU), so its threads' CPU time is the cost of the calls and nothing else.
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let host = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .enable_all()
        .thread_name("bench-media")
        .on_thread_start(move || {
            if let Some(tid) = current_tid() {
                recorded.lock().expect("tids").push(tid);
            }
        })
        .build()?;
    let result = relay_runs(args, &host, &tids).await;
    // A runtime may not be dropped from async code; let its threads go.
    host.shutdown_background();
    result
}

async fn relay_runs(
    args: &VoiceBenchArgs,
    host: &tokio::runtime::Runtime,
    tids: &Mutex<Vec<u32>>,
) -> anyhow::Result<RelayCost> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    // Workers start in the background; wait until each has said who it is.
    let until = Instant::now() + Duration::from_secs(5);
    while tids.lock().expect("tids").len() < cpus && Instant::now() < until {
        host.spawn(async {}).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let host_tids = tids.lock().expect("tids").clone();
    println!(
        "2. Relay cost per packet: N bridged calls, G.711 (PCMU, 20 ms) at {PACKETS_PER_SECOND} packets/s each way, {} s measured after {} s warm-up",
        args.seconds,
        WARM_UP.as_secs()
    );
    println!(
        "   media task = switchboard_voice::media::spawn per call, bridged to an agent leg of plain RTP on one shared UDP socket"
    );
    println!(
        "   (the WebRTC endpoint's ICE/SRTP work is not in this figure); baseline = a task per call doing recv_from -> send_to on the"
    );
    println!(
        "   same sockets. CPU = on-CPU time of the calls' runtime ({} worker threads, {cpus} CPUs); the load generator is one other thread",
        host_tids.len()
    );
    println!(
        "    {:>6} {:<20} {:>10} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "calls",
        "path",
        "fwd pkt/s",
        "arrived",
        "CPU ns",
        "CPU % of",
        "kernel",
        "calls",
        "generator"
    );
    println!(
        "    {:>6} {:<20} {:>10} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "", "", "", "%", "/packet", "one core", "share", "per core", "% core"
    );
    let mut pairs = Vec::new();
    for (i, &calls) in args.calls.iter().enumerate() {
        let calls = calls as usize;
        // Alternate who goes first, so drift on a busy machine hits both.
        let order = if i % 2 == 0 {
            [MediaPath::Forwarder, MediaPath::Relay]
        } else {
            [MediaPath::Relay, MediaPath::Forwarder]
        };
        let mut relay = None;
        let mut forwarder = None;
        for path in order {
            let run = relay_run(host, &host_tids, path, calls, args.seconds).await?;
            run.print();
            match path {
                MediaPath::Relay => relay = Some(run),
                MediaPath::Forwarder => forwarder = Some(run),
            }
        }
        if let (Some(relay), Some(forwarder)) = (relay, forwarder) {
            println!(
                "    {:>6} {:<20} {:>10} {:>9} {:>8.2}x",
                calls,
                "ratio relay/forwarder",
                "",
                "",
                relay.ns_per_packet() / forwarder.ns_per_packet().max(1e-9)
            );
            pairs.push((relay, forwarder));
        }
    }
    if let Some((relay, forwarder)) = pairs.last() {
        println!(
            "   at {} calls one core forwards {:.0} packets/s through the media task ({:.0} calls at 100 packets/s each), {:.0} through the bare forwarder ({:.0} calls)",
            relay.calls,
            1e9 / relay.ns_per_packet().max(1e-9),
            relay.calls_per_core(),
            1e9 / forwarder.ns_per_packet().max(1e-9),
            forwarder.calls_per_core(),
        );
    }
    Ok(RelayCost { pairs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_packets_advance_like_20_ms_of_pcmu() {
        let mut s = Stream::new(7);
        let (seq, ts) = (s.sequence, s.timestamp);
        let p = s.next().to_vec();
        assert_eq!(p.len(), RTP_PACKET_LEN);
        assert_eq!(p[1], 0);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), seq.wrapping_add(1));
        assert_eq!(
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            ts.wrapping_add(160)
        );
    }
}
