//! `switchboard-bench login`: does a storm of wrong logins stall the server or a
//! call's audio?
//!
//! The real server runs in-process on loopback, wired like `switchboard serve`
//! (application layer, routing, voice and the HTTP edge on one tokio runtime, SQLite
//! in a temporary folder). Two SIP calls are up: one bridged to an agent's softphone
//! (WebRTC), which speaks a frame every 20 ms that the server relays to the caller,
//! and one waiting in the queue behind it, hearing music whose every RTP packet the
//! server's media task times. The callers and the softphone share a thread of their
//! own, where the callers note when each packet arrives (the softphone's own timing
//! under load counts against the server, so the bridged figure errs high). A prober asks `GET /healthz` every 10 ms and times the answers.
//! Each is measured first with nothing else going on (the baseline), then while 64
//! clients send wrong passwords as fast as they are
//! answered, once with the login throttle as shipped and once with it off (every
//! attempt is hashed: the CPU is busy with argon2 on both cores, so the figures show
//! what keeping hashing off the runtime's workers buys on its own). The prober and
//! the storm run on a runtime of their own, so their work does not queue behind the
//! server's. Nothing here asserts a timing; the ratios are against the idle run of
//! the same server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::json;
use switchboard_app::accounts::Passwords;
use switchboard_app::login::ThrottleConfig;
use switchboard_core::Role;
use switchboard_e2e::voice::{AgentPhone, SipCaller, gaps_ms};
use tokio::sync::oneshot;

use crate::machine::{load_average, print_header};
use crate::voice::call_setup::VoiceServer;

const ADMIN: &str = "admin@bench.test";

/// `switchboard-bench login` options.
#[derive(Args, Debug)]
pub struct LoginBenchArgs {
    /// Concurrent clients sending wrong passwords.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub clients: u32,
    /// Seconds each phase lasts.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
}

async fn start(data_dir: &Path, throttle: ThrottleConfig) -> anyhow::Result<VoiceServer> {
    std::fs::create_dir_all(data_dir)?;
    // No plugins: calls wait in the default queue with its music.
    let server = VoiceServer::start(&data_dir.join("no-plugins"), data_dir, throttle).await?;
    switchboard_app::accounts::create_user(
        &server.store,
        &Passwords::default(),
        ADMIN,
        "the-right-password",
        Role::Admin,
        None,
        Vec::new(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the admin: {e}"))?;
    Ok(server)
}

/// Runs `work` on a new thread with a single-threaded runtime of its own, so that
/// its timing does not depend on the server's runtime (nor the server's on it).
fn on_own_thread(
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(work),
            Err(e) => eprintln!("a runtime for the measuring thread: {e}"),
        }
    })
}

/// Two calls on a thread and runtime of their own, so that the arrival times they
/// note are not delayed by the rest of the process: one bridged to an agent's
/// softphone (WebRTC), which speaks a frame every 20 ms that the server relays to
/// the caller; and one waiting in the queue behind it, hearing music the server's
/// media task times itself.
struct Calls {
    bridged: Arrivals,
    waiting: Arrivals,
    hang_up: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// When each RTP packet reached a caller.
type Arrivals = Arc<std::sync::Mutex<Vec<Instant>>>;

/// The agent whose softphone takes the bridged call.
const AGENT: (&str, &str) = ("agent@bench.test", "agent-password-1");

/// Signs the agent in, makes them available and returns their token.
async fn agent_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": AGENT.0, "password": AGENT.1}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"]
        .as_str()
        .context("the agent's token")?
        .to_string();
    http.put(format!("{base}/api/v1/agents/me/presence"))
        .bearer_auth(&token)
        .json(&json!({"status": "available"}))
        .send()
        .await?
        .error_for_status()?;
    Ok(token)
}

/// Accepts the agent's voice offer once it comes (at most 15 s).
async fn answer(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        let offers: serde_json::Value = http
            .get(format!("{base}/api/v1/agents/me/offers"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let voice = offers["offers"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["task"]["channel"] == "voice"));
        if let Some(id) = voice.and_then(|o| o["reservation"]["id"].as_str()) {
            http.post(format!("{base}/api/v1/reservations/{id}/accept"))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await?
                .error_for_status()?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("no voice offer for the agent within 15 s")
}

impl Calls {
    async fn place(server: &VoiceServer) -> anyhow::Result<Calls> {
        switchboard_app::accounts::create_user(
            &server.store,
            &Passwords::default(),
            AGENT.0,
            AGENT.1,
            Role::Agent,
            Some("Agent".to_string()),
            Vec::new(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the agent: {e}"))?;
        let base = format!("http://{}", server.http);
        let sip = server.voice.sip_addr();
        let (ready, answered) = oneshot::channel::<anyhow::Result<(Arrivals, Arrivals)>>();
        let (hang_up, hung_up) = oneshot::channel::<()>();
        let thread = on_own_thread(async move {
            let http = reqwest::Client::new();
            let setup = async {
                let token = agent_ready(&http, &base).await?;
                let phone = AgentPhone::connect(&base, &token).await;
                let mut bridged = SipCaller::new(sip, "+15551230008").await;
                let status = bridged.call("+15550001000").await;
                anyhow::ensure!(status == 200, "the first call was answered {status}");
                answer(&http, &base, &token).await?;
                // The agent is busy now: the second call waits in the queue.
                let mut waiting = SipCaller::new(sip, "+15551230009").await;
                let status = waiting.call("+15550001000").await;
                anyhow::ensure!(status == 200, "the second call was answered {status}");
                Ok((phone, bridged, waiting))
            };
            let (phone, mut bridged, mut waiting) = match setup.await {
                Ok(calls) => calls,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok((bridged.arrivals.clone(), waiting.arrivals.clone())));
            // The agent speaks: a 20 ms PCMU frame every 20 ms until hang-up.
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut hung_up = std::pin::pin!(hung_up);
            for n in 0u64.. {
                tokio::select! {
                    _ = tick.tick() => phone.say(n * 160, vec![0x55; 160]),
                    _ = &mut hung_up => break,
                }
            }
            bridged.bye().await;
            waiting.bye().await;
        });
        let (bridged, waiting) = answered.await.context("the callers' thread")??;
        Ok(Calls {
            bridged,
            waiting,
            hang_up: Some(hang_up),
            thread: Some(thread),
        })
    }

    /// Gaps between the packets each caller got in `[from, to)`, sorted, in ms:
    /// (bridged, waiting).
    fn gaps(&self, from: Instant, to: Instant) -> (Vec<f64>, Vec<f64>) {
        let of = |a: &Arrivals| gaps_ms(&a.lock().expect("arrivals").clone(), from, to);
        (of(&self.bridged), of(&self.waiting))
    }

    fn hang_up(mut self) {
        if let Some(h) = self.hang_up.take() {
            let _ = h.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `/healthz` answer times, every 10 ms for `seconds`; failures counted apart.
async fn probe(addr: SocketAddr, seconds: u64) -> (Vec<f64>, u64) {
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/healthz");
    let until = Instant::now() + Duration::from_secs(seconds);
    let (mut times, mut failed) = (Vec::new(), 0);
    while Instant::now() < until {
        let started = Instant::now();
        match http.get(&url).send().await {
            Ok(r) if r.status() == 200 => times.push(started.elapsed().as_secs_f64() * 1e3),
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (times, failed)
}

#[derive(Default)]
struct StormCounts {
    refused: AtomicU64,
    throttled: AtomicU64,
    other: AtomicU64,
}

/// Wrong logins from `clients` clients until `stop`, half for the real account.
fn storm(addr: SocketAddr, clients: u32, stop: Arc<AtomicBool>) -> Arc<StormCounts> {
    let counts = Arc::new(StormCounts::default());
    let http = reqwest::Client::new();
    for c in 0..clients {
        let (http, stop, counts) = (http.clone(), stop.clone(), counts.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let email = if i.is_multiple_of(2) {
                    ADMIN.to_string()
                } else {
                    format!("nobody{c}-{i}@bench.test")
                };
                let answer = http
                    .post(format!("http://{addr}/api/v1/auth/login"))
                    .json(&json!({"email": email, "password": format!("guess-{i}")}))
                    .send()
                    .await;
                let slot = match answer.map(|r| r.status().as_u16()) {
                    Ok(401) => &counts.refused,
                    Ok(429) => &counts.throttled,
                    _ => &counts.other,
                };
                slot.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    counts
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Phase {
    name: &'static str,
    times: Vec<f64>,
    failed: u64,
    storm: Option<(u64, u64, u64)>,
    /// Gaps between the bridged caller's RTP packets, sorted, in ms.
    bridged: Vec<f64>,
    /// The same for the caller waiting with music.
    gaps: Vec<f64>,
}

impl Phase {
    fn p(&self, q: f64) -> f64 {
        percentile(&self.times, q)
    }

    fn gap(&self, q: f64) -> f64 {
        percentile(&self.gaps, q)
    }

    fn bridged_gap(&self, q: f64) -> f64 {
        percentile(&self.bridged, q)
    }
}

async fn phase(
    name: &'static str,
    server: &VoiceServer,
    calls: &Calls,
    args: &LoginBenchArgs,
    with_storm: bool,
) -> anyhow::Result<Phase> {
    let (addr, clients, seconds) = (server.http, args.clients, args.seconds);
    let began = Instant::now();
    let (done, measured) = oneshot::channel();
    on_own_thread(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = with_storm.then(|| storm(addr, clients, stop.clone()));
        let probed = probe(addr, seconds).await;
        stop.store(true, Ordering::Relaxed);
        let _ = done.send((probed, counts));
    });
    let ((mut times, failed), counts) = measured.await.context("the prober's thread")?;
    let (bridged, gaps) = calls.gaps(began, Instant::now());
    times.sort_by(f64::total_cmp);
    let storm = counts.map(|c| {
        (
            c.refused.load(Ordering::Relaxed),
            c.throttled.load(Ordering::Relaxed),
            c.other.load(Ordering::Relaxed),
        )
    });
    // Let the last attempts drain before the next phase.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(Phase {
        name,
        times,
        failed,
        storm,
        bridged,
        gaps,
    })
}

/// Runs the three phases and prints the report.
pub async fn run(args: LoginBenchArgs) -> anyhow::Result<()> {
    print_header("login");
    println!();
    println!(
        "GET /healthz every 10 ms for {} s per phase, on the real server in this process (SQLite, routing, voice, no plugins);",
        args.seconds
    );
    println!(
        "storm = {} clients sending wrong passwords back to back (half for a real account, half for unknown e-mails)",
        args.clients
    );
    println!();
    let dir = tempfile::tempdir()?;
    let shipped = start(&dir.path().join("shipped"), ThrottleConfig::default()).await?;
    let calls = Calls::place(&shipped).await?;
    let idle = phase("idle (baseline)", &shipped, &calls, &args, false).await?;
    let throttled = phase("storm, throttle as shipped", &shipped, &calls, &args, true).await?;
    calls.hang_up();
    shipped.stop().await?;
    let open = start(
        &dir.path().join("open"),
        ThrottleConfig {
            free_failures: u32::MAX,
            ..ThrottleConfig::default()
        },
    )
    .await?;
    let calls = Calls::place(&open).await?;
    let idle_open = phase("idle, throttle off", &open, &calls, &args, false).await?;
    let hashed = phase("storm, throttle off", &open, &calls, &args, true).await?;
    calls.hang_up();
    open.stop().await?;

    println!(
        "   {:<28} {:>7} {:>9} {:>9} {:>9} {:>7}   logins answered: 401 / 429 / other",
        "phase", "probes", "p50 ms", "p99 ms", "max ms", "failed"
    );
    for p in [&idle, &throttled, &idle_open, &hashed] {
        let storm = p
            .storm
            .map(|(r, t, o)| format!("{r} / {t} / {o}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "   {:<28} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>7}   {storm}",
            p.name,
            p.times.len(),
            p.p(0.5),
            p.p(0.99),
            p.times.last().copied().unwrap_or(f64::NAN),
            p.failed
        );
    }
    let ratio = |storm: &Phase, base: &Phase| storm.p(0.99) / base.p(0.99);
    println!(
        "   ratio p99 storm/idle: throttle as shipped {:.2}x, throttle off {:.2}x",
        ratio(&throttled, &idle),
        ratio(&hashed, &idle_open)
    );
    println!();
    println!(
        "   RTP to the callers, one packet every 20 ms: bridged = relayed from the agent's softphone (WebRTC),"
    );
    println!("   waiting = music on hold, timed by the server's media task");
    println!(
        "   {:<28} {:>8} {:>9} {:>9} {:>9}   {:>8} {:>9} {:>9} {:>9}",
        "phase", "bridged", "p50 ms", "p99 ms", "max ms", "waiting", "p50 ms", "p99 ms", "max ms"
    );
    for p in [&idle, &throttled, &idle_open, &hashed] {
        println!(
            "   {:<28} {:>8} {:>9.2} {:>9.2} {:>9.2}   {:>8} {:>9.2} {:>9.2} {:>9.2}",
            p.name,
            p.bridged.len() + 1,
            p.bridged_gap(0.5),
            p.bridged_gap(0.99),
            p.bridged.last().copied().unwrap_or(f64::NAN),
            p.gaps.len() + 1,
            p.gap(0.5),
            p.gap(0.99),
            p.gaps.last().copied().unwrap_or(f64::NAN),
        );
    }
    println!();
    println!("Goals");
    let p99 = throttled.p(0.99);
    println!(
        "    p99 /healthz < 50 ms during the storm          {:>9.2} ms   {}",
        p99,
        if p99 < 50.0 && throttled.failed == 0 {
            "met"
        } else {
            "MISSED"
        }
    );
    for (name, storm, base) in [
        ("as shipped", &throttled, &idle),
        ("off", &hashed, &idle_open),
    ] {
        let over = storm.bridged_gap(0.99) - base.bridged_gap(0.99);
        println!(
            "    bridged RTP gap p99 within 5 ms of idle, throttle {name:<10} {:>+7.2} ms   {}",
            over,
            if over <= 5.0 { "met" } else { "MISSED" }
        );
    }
    println!("    load average at the end {}", load_average());
    Ok(())
}
