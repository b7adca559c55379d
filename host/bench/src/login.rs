//! `switchboard-bench login`: does a storm of wrong logins stall the server?
//!
//! The real server runs in-process on `127.0.0.1:0` (application layer and HTTP edge,
//! SQLite in a temporary folder, no plugins). A prober asks `GET /healthz` every
//! 10 ms and times the answers: first with nothing else going on (the baseline), then
//! while 64 clients send wrong passwords as fast as they are answered, once with the
//! login throttle as shipped and once with it off (every attempt is hashed, so the
//! figure shows what keeping argon2 off the runtime's workers buys on its own).
//! Nothing here asserts a timing; the ratios are against the idle run of the same
//! server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::json;
use switchboard_api::AppState;
use switchboard_app::accounts::Passwords;
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::login::ThrottleConfig;
use switchboard_app::{App, AppConfig, OutboxConfig};
use switchboard_core::Role;
use switchboard_plugin_host::Limits;
use switchboard_store::Store;
use tokio::sync::oneshot;

use crate::machine::{load_average, print_header};

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

struct Server {
    addr: SocketAddr,
    store: Store,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(data_dir: &Path, throttle: ThrottleConfig) -> anyhow::Result<Server> {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    let url = format!("sqlite://{}", data_dir.join("switchboard.db").display());
    let store = Store::connect(&url, key)
        .await
        .context("opening the store")?;
    switchboard_app::accounts::create_user(
        &store,
        &Passwords::default(),
        ADMIN,
        "the-right-password",
        Role::Admin,
        None,
        Vec::new(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the admin: {e}"))?;
    let host = server_plugin_host(&store, Limits::default())
        .map_err(|e| anyhow::anyhow!("plugin host: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = App::start(
        store.clone(),
        host,
        AppConfig {
            public_url: format!("http://{addr}"),
            data_dir: data_dir.to_path_buf(),
            reopen_window_ms: 7 * 24 * 3600 * 1000,
            default_region: None,
            dispositions: switchboard_app::desk::default_dispositions(),
            outbox: OutboxConfig::default(),
            routing: None,
            login: throttle,
            webchat: Default::default(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("starting the application: {e}"))?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(switchboard_api::serve(
        listener,
        AppState::new(app, None),
        async {
            let _ = stopped.await;
        },
    ));
    Ok(Server {
        addr,
        store,
        shutdown,
        task,
    })
}

impl Server {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        self.store.close().await;
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
}

impl Phase {
    fn p(&self, q: f64) -> f64 {
        percentile(&self.times, q)
    }
}

async fn phase(
    name: &'static str,
    server: &Server,
    args: &LoginBenchArgs,
    with_storm: bool,
) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = with_storm.then(|| storm(server.addr, args.clients, stop.clone()));
    let (mut times, failed) = probe(server.addr, args.seconds).await;
    stop.store(true, Ordering::Relaxed);
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
    Phase {
        name,
        times,
        failed,
        storm,
    }
}

/// Runs the three phases and prints the report.
pub async fn run(args: LoginBenchArgs) -> anyhow::Result<()> {
    print_header("login");
    println!();
    println!(
        "GET /healthz every 10 ms for {} s per phase, on the real server in this process (SQLite, no plugins);",
        args.seconds
    );
    println!(
        "storm = {} clients sending wrong passwords back to back (half for a real account, half for unknown e-mails)",
        args.clients
    );
    println!();
    let dir = tempfile::tempdir()?;
    let shipped = start(&dir.path().join("shipped"), ThrottleConfig::default()).await?;
    let idle = phase("idle (baseline)", &shipped, &args, false).await;
    let throttled = phase("storm, throttle as shipped", &shipped, &args, true).await;
    shipped.stop().await;
    let open = start(
        &dir.path().join("open"),
        ThrottleConfig {
            free_failures: u32::MAX,
            ..ThrottleConfig::default()
        },
    )
    .await?;
    let idle_open = phase("idle, throttle off", &open, &args, false).await;
    let hashed = phase("storm, throttle off", &open, &args, true).await;
    open.stop().await;

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
    println!("    load average at the end {}", load_average());
    Ok(())
}
