//! `switchboard-bench` (the default command, also `switchboard-bench ingest`): connector
//! call cost and end-to-end ingest, the figures in the README's "Benchmarks".
//!
//! Every figure is printed next to a baseline measured in the same run on the same
//! machine, and compared as a ratio; nothing here asserts a timing (machines are
//! noisy).
//!
//! 1. **Connector call cost** of `sms-twilio` and `whatsapp-cloud` against the same
//!    work done natively: see [`crate::plugin_call`], which also runs alone as
//!    `switchboard-bench plugin-call`.
//! 2. **End-to-end ingest over HTTP.** The real server in-process on `127.0.0.1:0`
//!    (store, plugin host, API) takes signed webhooks from concurrent clients; every
//!    `200` means the message was committed. Baseline: a minimal axum server doing one
//!    durable `INSERT` per request on the same engine with the same settings. Run on
//!    SQLite (temporary files) and on PostgreSQL (a scratch database, dropped at the
//!    end; skipped with a note if the server is unreachable).
//!
//! All traffic stays on loopback. Webhooks that do not get a `200` are counted,
//! printed, and make the command exit non-zero after the report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use clap::Args;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};
use switchboard_api::AppState;
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::plugins as admin;
use switchboard_app::{App, AppConfig, OutboxConfig};
use switchboard_plugin_host::Limits;
use switchboard_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::machine::{load_average, print_header};
use crate::plugin_call;
use crate::sample::{Summary, ms, random_hex, us};
use crate::twilio::{EMPTY_TWIML, HOOK_PATH, PLUGIN_ID, Webhook, sender_number, twilio_config};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `switchboard-bench ingest` options (also the default command's).
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Where built plugins are (sms-twilio; whatsapp-cloud too for part 1).
    #[arg(long, default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,
    /// Webhooks sent in each end-to-end run (after a short warm-up).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub messages: u32,
    /// Concurrent HTTP clients in the end-to-end runs.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Measured rounds per end-to-end comparison; switchboard and baseline
    /// alternate, so drift on a busy machine hits both.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Distinct sender numbers; messages cycle through them, so conversations are reused.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub senders: u32,
    /// PostgreSQL server to benchmark on: a connectable database URL; a scratch
    /// database `sb_bench_<random>` is created through it and dropped at the end.
    /// Default: try postgres://postgres@127.0.0.1:5432/postgres and skip
    /// PostgreSQL with a note if it is unreachable.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Skip the PostgreSQL runs.
    #[arg(long, conflicts_with = "postgres")]
    pub no_postgres: bool,
    /// Skip SQLite in part 2 (to profile PostgreSQL alone).
    #[arg(long, conflicts_with = "no_postgres")]
    pub no_sqlite: bool,
    /// Connector calls timed in part 1 (each side).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
}

/// Runs both parts and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    plugin_call::check_built(&args.plugins_dir)?;
    let plugin_dir = args.plugins_dir.join(PLUGIN_ID);
    print_header("ingest");
    println!();

    // Fail fast on an explicit --postgres that does not answer.
    let postgres = postgres_target(&args).await?;

    let calls = plugin_call::measure(&args.plugins_dir, args.iterations as usize).await?;
    plugin_call::print(&calls);
    println!();

    let shape = LoadShape {
        messages: args.messages as usize,
        concurrency: args.concurrency as usize,
        senders: args.senders as usize,
        rounds: args.rounds as usize,
    };
    println!(
        "2. End-to-end ingest over HTTP: POST {HOOK_PATH} on 127.0.0.1, signed inbound SMS from {} senders,",
        shape.senders
    );
    println!(
        "   {} concurrent clients; per server {} warm-up webhooks, then rounds: {} x {} webhooks, alternating with the baseline",
        shape.concurrency,
        shape.warm_up(),
        shape.rounds,
        shape.messages
    );
    let mut rows = Vec::new();
    if !args.no_sqlite {
        rows.push(e2e_sqlite(&plugin_dir, &shape).await?);
    }
    match &postgres {
        Ok(server) => {
            let scratch = PgScratch::create(server).await?;
            // Drop the scratch database whatever happened, then report.
            let result = e2e_postgres(&plugin_dir, &shape, &scratch).await;
            let dropped = scratch.drop_database().await;
            rows.push(result?);
            dropped?;
        }
        Err(why) => println!("   (PostgreSQL skipped: {why})"),
    }
    print_e2e(&mut rows);
    println!("   load average at the end {}", load_average());

    let problems: Vec<String> = rows.iter().flat_map(E2e::problems).collect();
    if !problems.is_empty() {
        eprintln!();
        eprintln!("{} problem(s):", problems.len());
        for p in problems.iter().take(20) {
            eprintln!("  - {p}");
        }
        if problems.len() > 20 {
            eprintln!("  … and {} more", problems.len() - 20);
        }
        bail!("the benchmark saw failed or unstored webhooks (see above)");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Part 2: end-to-end ingest
// ---------------------------------------------------------------------------

/// What every end-to-end run sends.
struct LoadShape {
    messages: usize,
    concurrency: usize,
    senders: usize,
    rounds: usize,
}

impl LoadShape {
    fn warm_up(&self) -> usize {
        (self.messages / 10).clamp(self.concurrency.min(self.messages), 200)
    }
}

/// A server running in this process until `stop` is called.
struct Running {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn hook_url(&self) -> String {
        format!("http://{}{HOOK_PATH}", self.addr)
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        match tokio::time::timeout(Duration::from_secs(15), self.task).await {
            Ok(joined) => joined.context("server task")?.context("server")?,
            Err(_) => bail!("the server did not stop within 15 s"),
        }
        Ok(())
    }
}

/// What one load run saw.
struct LoadRun {
    sent: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

impl LoadRun {
    fn ok(&self) -> usize {
        self.sent - self.failures.len()
    }

    fn per_sec(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends every webhook once to `url` from `concurrency` clients (each its own
/// reqwest client with one keep-alive connection) and collects the answers.
async fn drive(url: &str, webhooks: Vec<Webhook>, concurrency: usize) -> anyhow::Result<LoadRun> {
    let webhooks = Arc::new(webhooks);
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.min(webhooks.len()) {
        clients.push(
            reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()?,
        );
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len());
    for client in clients {
        let (url, webhooks, next) = (url.to_string(), webhooks.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(w) = webhooks.get(i) else { break };
                let sent = Instant::now();
                let result = client
                    .post(&url)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::USER_AGENT, "TwilioProxy/1.1")
                    .header("i-twilio-idempotency-token", &w.idempotency_token)
                    .header("x-twilio-signature", &w.signature)
                    .body(w.body.clone())
                    .send()
                    .await;
                let outcome = match result {
                    Ok(response) => {
                        let status = response.status();
                        match response.bytes().await {
                            Ok(_) if status == reqwest::StatusCode::OK => Ok(()),
                            Ok(body) => Err(format!(
                                "webhook {}: HTTP {status}: {}",
                                w.message_sid,
                                String::from_utf8_lossy(&body[..body.len().min(300)])
                            )),
                            Err(e) => Err(format!(
                                "webhook {}: HTTP {status}, body unreadable: {e}",
                                w.message_sid
                            )),
                        }
                    }
                    Err(e) => Err(format!("webhook {}: {e}", w.message_sid)),
                };
                latencies.push(sent.elapsed());
                if let Err(f) = outcome {
                    failures.push(f);
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(webhooks.len());
    let mut failures = Vec::new();
    for task in tasks {
        let (l, f) = task.await.context("client task")?;
        latencies.extend(l);
        failures.extend(f);
    }
    Ok(LoadRun {
        sent: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
        failures,
    })
}

/// Hands out webhooks with unique message ids; senders cycle through
/// `senders` numbers, so after the first round every conversation is reused.
struct WebhookSource {
    run: String,
    next: usize,
    senders: usize,
}

impl WebhookSource {
    fn new(senders: usize) -> WebhookSource {
        WebhookSource {
            run: random_hex(8),
            next: 0,
            senders,
        }
    }

    fn take(&mut self, hook_url: &str, n: usize) -> Vec<Webhook> {
        let batch = (self.next..self.next + n)
            .map(|i| {
                Webhook::new(
                    hook_url,
                    &format!("SM{}{i:016x}", self.run),
                    &sender_number(i % self.senders),
                )
            })
            .collect();
        self.next += n;
        batch
    }
}

/// The measured rounds of one server, pooled.
#[derive(Default)]
struct Side {
    sent: usize,
    ok: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    failures: Vec<String>,
    per_round: Vec<f64>,
}

impl Side {
    fn add(&mut self, run: LoadRun) {
        self.per_round.push(run.per_sec());
        self.sent += run.sent;
        self.ok += run.ok();
        self.elapsed += run.elapsed;
        self.latencies.extend(run.latencies);
        self.failures.extend(run.failures);
    }

    fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One backend's end-to-end results.
struct E2e {
    backend: &'static str,
    note: String,
    switchboard: Side,
    baseline: Side,
    /// Mean ingest batches per group-commit transaction in the measured rounds.
    batches_per_commit: f64,
    /// Warm-up failures and stored rows that do not match acknowledged webhooks.
    other_problems: Vec<String>,
}

impl E2e {
    fn ratio(&self) -> f64 {
        self.switchboard.per_sec() / self.baseline.per_sec().max(1e-9)
    }

    fn problems(&self) -> Vec<String> {
        let tag = |who: &str, f: &String| format!("{} {who}: {f}", self.backend);
        self.switchboard
            .failures
            .iter()
            .map(|f| tag("switchboard", f))
            .chain(self.baseline.failures.iter().map(|f| tag("baseline", f)))
            .chain(self.other_problems.iter().map(|f| tag("check", f)))
            .collect()
    }
}

fn print_e2e(rows: &mut [E2e]) {
    println!(
        "   {:<9} {:<30} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "backend", "server", "msg/s", "p50 ms", "p99 ms", "sent", "failed"
    );
    for r in rows.iter_mut() {
        let sb = Summary::of(&mut r.switchboard.latencies);
        let base = Summary::of(&mut r.baseline.latencies);
        let line = |name: &str, side: &Side, s: &Summary| {
            println!(
                "   {:<9} {:<30} {:>9.0} {:>9.2} {:>9.2} {:>7} {:>7}",
                r.backend,
                name,
                side.per_sec(),
                ms(s.p50),
                ms(s.p99),
                side.sent,
                side.failures.len()
            );
        };
        line("switchboard (full ingest)", &r.switchboard, &sb);
        line("baseline (1 INSERT/request)", &r.baseline, &base);
        println!(
            "   {:<9} {:<30} {:>8.2}x {:>8.2}x {:>8.2}x",
            r.backend,
            "ratio switchboard/baseline",
            r.ratio(),
            ms(sb.p50) / ms(base.p50).max(1e-9),
            ms(sb.p99) / ms(base.p99).max(1e-9),
        );
    }
    println!();
    for r in rows.iter() {
        let rounds: Vec<String> = r
            .switchboard
            .per_round
            .iter()
            .zip(&r.baseline.per_round)
            .map(|(s, b)| format!("{:.2}x", s / b.max(1e-9)))
            .collect();
        println!(
            "   {}: throughput ratio per round {}",
            r.backend,
            rounds.join(" ")
        );
        println!(
            "   {}: {:.1} webhooks per group commit; {}",
            r.backend, r.batches_per_commit, r.note
        );
    }
    for (backend, name) in [("sqlite", "SQLite"), ("postgres", "PostgreSQL")] {
        match rows.iter().find(|r| r.backend == backend) {
            Some(r) => {
                let ratio = r.ratio();
                println!(
                    "   goal on {name}: ≥ 1.0x baseline throughput: {} ({ratio:.2}x)",
                    if ratio >= 1.0 { "met" } else { "MISSED" }
                );
            }
            None => println!("   goal on {name}: not measured"),
        }
    }
}

/// The real server: store, plugin host with the server's services, sms-twilio
/// installed and loaded, the API on `127.0.0.1:0`.
async fn start_switchboard(
    db_url: &str,
    data_dir: &Path,
    plugin_dir: &Path,
) -> anyhow::Result<(Store, Running)> {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    let store = Store::connect(db_url, key)
        .await
        .context("opening the store")?;
    let host = server_plugin_host(&store, Limits::default())
        .map_err(|e| anyhow::anyhow!("plugin host: {e}"))?;
    admin::install(
        &store,
        &host,
        &admin::PluginFiles::folder(data_dir),
        admin::InstallRequest {
            source: plugin_dir.to_path_buf(),
            config: twilio_config(),
            allow_hosts: Vec::new(),
            id: None,
        },
    )
    .await
    .context("installing sms-twilio")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let public_url = format!("http://{addr}");
    let failed = admin::load_installed(&store, &host, &public_url).await?;
    if let Some((id, why)) = failed.first() {
        bail!("plugin {id} did not load: {why}");
    }
    let app = App::start(
        store.clone(),
        host,
        AppConfig {
            public_url,
            data_dir: data_dir.to_path_buf(),
            reopen_window_ms: 7 * 24 * 3600 * 1000,
            default_region: None,
            dispositions: switchboard_app::desk::default_dispositions(),
            outbox: OutboxConfig::default(),
            routing: None,
            login: Default::default(),
            webchat: Default::default(),
            attachments: Default::default(),
            crm: Default::default(),
            file_store: Default::default(),
            node: Default::default(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("starting the application: {e}"))?;
    let state = AppState::new(app, None);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(switchboard_api::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Ok((
        store,
        Running {
            addr,
            shutdown,
            task,
        },
    ))
}

async fn baseline_insert(State(pool): State<AnyPool>, body: Bytes) -> Response {
    let id = uuid::Uuid::now_v7().to_string();
    let text = String::from_utf8_lossy(&body).into_owned();
    match sqlx::query("INSERT INTO bench_baseline (id, body) VALUES ($1, $2)")
        .bind(id)
        .bind(text)
        .execute(&pool)
        .await
    {
        Ok(_) => ([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// The baseline server: one autocommitted `INSERT` per request on `pool`.
async fn start_baseline(pool: AnyPool) -> anyhow::Result<Running> {
    sqlx::query("CREATE TABLE bench_baseline (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await
        .context("creating the baseline table")?;
    let app = axum::Router::new()
        .route(
            "/hooks/{plugin_id}/{*rest}",
            axum::routing::post(baseline_insert),
        )
        .with_state(pool);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Running {
        addr,
        shutdown,
        task,
    })
}

async fn baseline_rows(pool: &AnyPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM bench_baseline")
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    Ok(n.max(0) as u64)
}

/// Both servers up side by side; both warmed up, then `rounds` measured runs
/// each, alternating which goes first, so drift on a busy machine hits both.
/// Afterwards every acknowledged webhook must be stored.
async fn compare(
    backend: &'static str,
    note: String,
    sb_db_url: &str,
    data_dir: &Path,
    plugin_dir: &Path,
    baseline_pool: AnyPool,
    shape: &LoadShape,
) -> anyhow::Result<E2e> {
    let (store, sb) = start_switchboard(sb_db_url, data_dir, plugin_dir).await?;
    let base = start_baseline(baseline_pool.clone()).await?;
    let (sb_url, base_url) = (sb.hook_url(), base.hook_url());
    let mut sb_source = WebhookSource::new(shape.senders);
    let mut base_source = WebhookSource::new(shape.senders);
    let mut problems = Vec::new();
    let (mut sb_acked, mut base_acked) = (0usize, 0usize);

    let warm = shape.warm_up();
    let run = drive(&sb_url, sb_source.take(&sb_url, warm), shape.concurrency).await?;
    sb_acked += run.ok();
    problems.extend(
        run.failures
            .into_iter()
            .map(|f| format!("switchboard warm-up {f}")),
    );
    let run = drive(
        &base_url,
        base_source.take(&base_url, warm),
        shape.concurrency,
    )
    .await?;
    base_acked += run.ok();
    problems.extend(
        run.failures
            .into_iter()
            .map(|f| format!("baseline warm-up {f}")),
    );

    let before = store.ingest_stats();
    let (mut sb_side, mut base_side) = (Side::default(), Side::default());
    for round in 0..shape.rounds {
        let sb_batch = sb_source.take(&sb_url, shape.messages);
        let base_batch = base_source.take(&base_url, shape.messages);
        let (sb_run, base_run) = if round % 2 == 0 {
            let s = drive(&sb_url, sb_batch, shape.concurrency).await?;
            (s, drive(&base_url, base_batch, shape.concurrency).await?)
        } else {
            let b = drive(&base_url, base_batch, shape.concurrency).await?;
            (drive(&sb_url, sb_batch, shape.concurrency).await?, b)
        };
        sb_acked += sb_run.ok();
        base_acked += base_run.ok();
        sb_side.add(sb_run);
        base_side.add(base_run);
    }
    let after = store.ingest_stats();
    sb.stop().await?;
    base.stop().await?;

    let counts = store.metrics_counts().await?;
    if counts.timeline_events != sb_acked as u64 {
        problems.push(format!(
            "switchboard acknowledged {sb_acked} webhooks but stored {} timeline events",
            counts.timeline_events
        ));
    }
    let expected_contacts = shape.senders.min(sb_source.next) as u64;
    if counts.contacts != expected_contacts {
        problems.push(format!(
            "switchboard stored {} contacts, expected {expected_contacts} (one per sender)",
            counts.contacts
        ));
    }
    store.close().await;
    let stored = baseline_rows(&baseline_pool).await?;
    if stored != base_acked as u64 {
        problems.push(format!(
            "baseline acknowledged {base_acked} requests but stored {stored} rows"
        ));
    }
    baseline_pool.close().await;

    let groups = after.groups - before.groups;
    Ok(E2e {
        backend,
        note,
        switchboard: sb_side,
        baseline: base_side,
        batches_per_commit: (after.batches - before.batches) as f64 / groups.max(1) as f64,
        other_problems: problems,
    })
}

/// Webhooks through the real server (signature check, the connector in the sandbox,
/// the store's ingest transaction) with the report facts kept and without them
/// (`skip_report_facts_for_benchmark`), alternating rounds on one server; for
/// `switchboard-bench reports`. Messages per second with and without, and the failures.
pub(crate) async fn facts_cost(
    db_url: &str,
    data_dir: &Path,
    plugin_dir: &Path,
    messages: usize,
    concurrency: usize,
    rounds: usize,
) -> anyhow::Result<(f64, f64, Vec<String>)> {
    let (store, sb) = start_switchboard(db_url, data_dir, plugin_dir).await?;
    let url = sb.hook_url();
    let mut source = WebhookSource::new(200);
    let warm = drive(
        &url,
        source.take(&url, (messages / 5).max(concurrency)),
        concurrency,
    )
    .await?;
    let mut problems = warm.failures;
    let (mut with, mut without) = (Side::default(), Side::default());
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for skip in order {
            switchboard_store::skip_report_facts_for_benchmark(skip);
            let run = drive(&url, source.take(&url, messages), concurrency).await?;
            problems.extend(run.failures.iter().cloned());
            if skip {
                without.add(run);
            } else {
                with.add(run);
            }
        }
    }
    switchboard_store::skip_report_facts_for_benchmark(false);
    sb.stop().await?;
    store.close().await;
    Ok((with.per_sec(), without.per_sec(), problems))
}

/// How long a SQLite connection waits for the write lock; the store's value.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;
/// Connections in the store's SQLite pool.
const SQLITE_POOL: u32 = 8;
/// Connections in the store's PostgreSQL pool.
const PG_POOL: u32 = 10;

/// A SQLite pool set up the way the store sets up its own (host/store/src/db.rs):
/// WAL switched on once before the pool opens, then every connection with
/// foreign keys on and the same busy timeout; `synchronous` left at SQLite's
/// default, which is checked to be FULL.
async fn sqlite_baseline_pool(path: &Path) -> anyhow::Result<(AnyPool, String)> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut first = AnyConnection::connect(&url).await?;
    first.execute("PRAGMA journal_mode = WAL").await?;
    first.close().await?;
    let pool = AnyPoolOptions::new()
        .max_connections(SQLITE_POOL)
        .acquire_timeout(Duration::from_secs(60))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                )))
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    let mut conn = pool.acquire().await?;
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let synchronous: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    drop(conn);
    if synchronous != 2 {
        bail!(
            "SQLite's default synchronous is {synchronous}, not FULL (2); the comparison would be unfair"
        );
    }
    Ok((
        pool,
        format!("journal_mode={journal}, synchronous=FULL, {SQLITE_POOL} connections"),
    ))
}

/// The median time of a 4 KiB overwrite plus `fdatasync` in `dir`: what one
/// durable commit costs the disk at least. Group commit saves this per webhook.
fn fsync_cost(dir: &Path) -> anyhow::Result<Duration> {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    file.write_all(&[0u8; 64 << 10])?;
    file.sync_all()?;
    let block = [1u8; 4096];
    let mut times = Vec::with_capacity(200);
    for i in 0..200u64 {
        file.seek(SeekFrom::Start((i % 16) * 4096))?;
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(Summary::of(&mut times).p50)
}

async fn e2e_sqlite(plugin_dir: &Path, shape: &LoadShape) -> anyhow::Result<E2e> {
    let dir = tempfile::Builder::new().prefix("sb-bench-").tempdir()?;
    let data_dir = dir.path().join("switchboard");
    std::fs::create_dir_all(&data_dir)?;
    let db_url = format!("sqlite://{}", data_dir.join("switchboard.db").display());
    let fsync = fsync_cost(dir.path())?;
    let (pool, settings) = sqlite_baseline_pool(&dir.path().join("baseline.db")).await?;
    let note = format!(
        "files in {}, where a 4 KiB write + fdatasync takes {:.0} µs (p50); baseline pool {settings}, like the store",
        std::env::temp_dir().display(),
        us(fsync)
    );
    compare("sqlite", note, &db_url, &data_dir, plugin_dir, pool, shape).await
}

async fn e2e_postgres(
    plugin_dir: &Path,
    shape: &LoadShape,
    scratch: &PgScratch,
) -> anyhow::Result<E2e> {
    let dir = tempfile::Builder::new().prefix("sb-bench-").tempdir()?;
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(PG_POOL)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&scratch.url)
        .await?;
    let note = format!(
        "scratch database {} (dropped at the end); baseline pool {PG_POOL} connections, like the store",
        scratch.name
    );
    compare(
        "postgres",
        note,
        &scratch.url,
        dir.path(),
        plugin_dir,
        pool,
        shape,
    )
    .await
}

/// The PostgreSQL server to use, or why PostgreSQL is skipped. An explicit
/// `--postgres` that does not answer is an error; the default one is optional.
async fn postgres_target(args: &BenchArgs) -> anyhow::Result<Result<String, String>> {
    if args.no_postgres {
        return Ok(Err("--no-postgres".into()));
    }
    let (url, explicit) = match &args.postgres {
        Some(url) => (url.clone(), true),
        None => (DEFAULT_PG.to_string(), false),
    };
    let attempt = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::postgres::PgConnection::connect(&url),
    )
    .await;
    let why = match attempt {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Ok(Ok(url));
        }
        Ok(Err(e)) => format!("{url} unreachable: {e}"),
        Err(_) => format!("{url} did not answer within 5 s"),
    };
    if explicit {
        bail!("PostgreSQL at {why}");
    }
    Ok(Err(why))
}

/// A scratch database created for this run.
struct PgScratch {
    admin_url: String,
    name: String,
    url: String,
}

impl PgScratch {
    async fn create(admin_url: &str) -> anyhow::Result<PgScratch> {
        let name = format!("sb_bench_{}", random_hex(6));
        let mut url = url::Url::parse(admin_url).context("the PostgreSQL URL")?;
        url.set_path(&format!("/{name}"));
        let mut admin = sqlx::postgres::PgConnection::connect(admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .with_context(|| format!("creating database {name}"))?;
        let _ = admin.close().await;
        Ok(PgScratch {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        })
    }

    async fn drop_database(&self) -> anyhow::Result<()> {
        let mut admin = sqlx::postgres::PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await
            .with_context(|| format!("dropping database {}", self.name))?;
        let _ = admin.close().await;
        Ok(())
    }
}
