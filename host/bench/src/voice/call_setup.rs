//! Part 1, call setup rate. The real server runs in this process, wired like
//! `switchboard serve`: SQLite in a temporary directory, `routing-default` as built
//! (when it is), the routing service, voice on 127.0.0.1 with recording off, and a
//! trunk for 127.0.0.1. sipp (Debian `sip-tester`) calls it at rising rates with
//! `call_setup_uac.xml`: INVITE with a PCMU offer, 200, ACK, 0–100 ms of call, BYE,
//! 200. Every call comes from a new number, so after the 200 each one makes a new
//! contact and conversation, a timeline event, a policy classification, hold music
//! and a queued task, as far as it gets before the caller hangs up (the server
//! answers before any of it; after the run, what was stored is counted per step).
//! Baseline: the same caller against `sipp -sn uas`, the SIP exchange alone.
//!
//! A step is one sipp run of `--step-seconds` at one rate; its figures come from
//! sipp's own statistics (`-trace_stat`) and response times (`-trace_rtt`). The
//! server stops at its first failed step, the baseline runs every step, and the two
//! alternate which goes first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use switchboard_api::AppState;
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::plugins as admin;
use switchboard_app::{App, AppConfig, OutboxConfig};
use switchboard_plugin_host::{Limits, PluginHost};
use switchboard_store::Store;
use switchboard_voice::VoiceConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::measure::{LOOPBACK, ThreadCpu, VoiceBenchArgs, process_cpu};

/// The sipp caller.
const UAC_SCENARIO: &str = include_str!("call_setup_uac.xml");
/// The policy installed when it is built.
const POLICY: &str = "routing-default";
/// The queue routing-default (and the built-in classification) puts calls in.
const VOICE_QUEUE: &str = "voice";
/// A step passes when at least this share of its calls completed...
const PASS_ANSWERED: f64 = 0.99;
/// ...and sipp placed them at this share of the step's rate or more (sipp's rate
/// counts the whole run, including the last calls' 0–100 ms and BYE).
const PASS_RATE: f64 = 0.90;
/// How long sipp waits for any expected message before failing the call.
const RECV_TIMEOUT_MS: u32 = 5000;

/// A free UDP port on loopback (bound and released), for sipp.
fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind((LOOPBACK, 0))?
        .local_addr()?
        .port())
}

/// The server of part 1 (and of `switchboard-bench login`), running in this process.
pub(crate) struct VoiceServer {
    pub(crate) voice: Arc<switchboard_voice::VoiceService>,
    pub(crate) store: Store,
    /// The HTTP API's address.
    pub(crate) http: SocketAddr,
    plugins: PluginHost,
    policy: Option<&'static str>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl VoiceServer {
    /// Store, plugin host with the server's services, the policy, routing, voice and
    /// the HTTP API, wired like `switchboard serve`, with the login throttle `login`.
    pub(crate) async fn start(
        plugins_dir: &Path,
        data_dir: &Path,
        login: switchboard_app::login::ThrottleConfig,
    ) -> anyhow::Result<VoiceServer> {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        let db_url = format!("sqlite://{}", data_dir.join("switchboard.db").display());
        let store = Store::connect(&db_url, key)
            .await
            .context("opening the store")?;
        let host = server_plugin_host(&store, Limits::default())
            .map_err(|e| anyhow::anyhow!("plugin host: {e}"))?;
        let policy_dir = plugins_dir.join(POLICY);
        let policy = if policy_dir.join("plugin.toml").exists() {
            admin::install(
                &store,
                &host,
                &admin::PluginFiles::folder(data_dir),
                admin::InstallRequest {
                    source: policy_dir,
                    config: HashMap::new(),
                    allow_hosts: Vec::new(),
                    id: None,
                },
            )
            .await
            .with_context(|| format!("installing {POLICY}"))?;
            Some(POLICY)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await?;
        let http = listener.local_addr()?;
        let public_url = format!("http://{http}");
        let failed = admin::load_installed(&store, &host, &public_url).await?;
        if let Some((id, why)) = failed.first() {
            bail!("plugin {id} did not load: {why}");
        }
        // Trunks are matched by source IP; sipp calls from 127.0.0.1.
        store
            .upsert_trunk("loopback", "127.0.0.1:5999", None, None)
            .await?;
        let app = App::start(
            store.clone(),
            host.clone(),
            AppConfig {
                public_url,
                data_dir: data_dir.to_path_buf(),
                reopen_window_ms: 7 * 24 * 3600 * 1000,
                default_region: None,
                dispositions: switchboard_app::desk::default_dispositions(),
                outbox: OutboxConfig::default(),
                routing: Some(switchboard_routing::EngineConfig::default()),
                login,
                webchat: Default::default(),
                attachments: Default::default(),
                crm: Default::default(),
                file_store: Default::default(),
                node: Default::default(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("starting routing: {e}"))?;
        // The queue calls are classified into, as an operator would have created it
        // (else routing creates it on the first call, with a warning).
        if let Some(routing) = &app.routing {
            routing
                .upsert_queue(switchboard_routing::Queue::new(VOICE_QUEUE, VOICE_QUEUE))
                .await
                .map_err(|e| anyhow::anyhow!("creating the {VOICE_QUEUE} queue: {e:?}"))?;
        }
        let voice = switchboard_voice::VoiceService::start(
            app.clone(),
            VoiceConfig {
                sip_addr: SocketAddr::new(LOOPBACK, 0),
                tls: None,
                rtp_ports: (20000, 29999),
                webrtc_addr: SocketAddr::new(LOOPBACK, 0),
                public_ip: Some(LOOPBACK),
                record_calls: false,
                realm: "switchboard".into(),
                rtp_timeout: std::time::Duration::from_secs(60),
                source_rate: (50, 100),
            },
        )
        .await
        .context("starting voice")?;
        let state = AppState::new(app, Some(voice.clone()));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_api::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Ok(VoiceServer {
            voice,
            store,
            http,
            plugins: host,
            policy,
            shutdown,
            task,
        })
    }

    fn live_calls(&self) -> usize {
        self.voice.counts().1
    }

    /// Waits until no call is live (the last BYEs handled), at most `within`.
    async fn drain(&self, within: Duration) -> usize {
        let until = Instant::now() + within;
        while self.live_calls() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.live_calls()
    }

    /// Waits (at most 30 s) for the work the calls left behind to finish — the last
    /// calls' hang-ups, routing steps still queued behind the engine — so nothing is
    /// cut off when the store closes: no live call, and the task count steady for 1 s.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        let mut steady_since = Instant::now();
        while Instant::now() < deadline {
            let tasks = self.store.tasks_since(0).await.map(|t| t.len()).ok();
            if tasks != last || self.live_calls() > 0 {
                last = tasks;
                steady_since = Instant::now();
            } else if steady_since.elapsed() >= Duration::from_secs(1) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.settle().await;
        let _ = self.shutdown.send(());
        match tokio::time::timeout(Duration::from_secs(15), self.task).await {
            Ok(joined) => joined.context("server task")?.context("server")?,
            Err(_) => bail!("the server did not stop within 15 s"),
        }
        self.store.close().await;
        Ok(())
    }
}

/// Times a store read (`Store::trunks`) every 20 ms while calls run: it waits for a
/// pool connection behind the calls' own database work (contact, timeline event,
/// call record, task). INVITEs do not wait for it: they check a cached trunk list.
struct StoreProbe {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<f64>>,
}

impl StoreProbe {
    fn start(store: &Store) -> StoreProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let (store, stopped) = (store.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut times = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let started = Instant::now();
                if store.trunks().await.is_ok() {
                    times.push(started.elapsed().as_secs_f64() * 1e3);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            times
        });
        StoreProbe { stop, task }
    }

    async fn stop(self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// Which server a sipp step called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callee {
    SippUas,
    Switchboard,
}

impl Callee {
    fn name(self) -> &'static str {
        match self {
            Callee::SippUas => "sipp -sn uas",
            Callee::Switchboard => "switchboard",
        }
    }
}

/// What one sipp caller run saw, from its statistics files.
struct Step {
    callee: Callee,
    rate: u32,
    created: u64,
    successful: u64,
    failed: u64,
    /// Failure counters sipp keeps, by name, where not zero.
    reasons: Vec<(String, u64)>,
    retransmissions: u64,
    /// sipp's cumulative call rate: calls created per second of the run.
    call_rate: f64,
    /// INVITE → 200 times, ms (sipp's resolution is 1 ms).
    invite_to_200: Vec<f64>,
    /// This process's CPU time during the step (only meaningful for the server).
    cpu: Option<ThreadCpu>,
    /// Calls still live on the server 10 s after sipp finished.
    left_live: usize,
    /// Latency of a store read during the step (a probe of the pool the calls'
    /// writes use), ms; only for the server.
    store_read: Vec<f64>,
    /// First lines of sipp's error log when calls failed.
    errors: Vec<String>,
    /// When the step ran (wall clock ms, from sipp's start to the server's drain);
    /// only for the server.
    window: Option<(i64, i64)>,
}

impl Step {
    fn answered_share(&self) -> f64 {
        if self.created == 0 {
            0.0
        } else {
            self.successful as f64 / self.created as f64
        }
    }

    /// Completed calls per second over the run.
    fn answered_rate(&self) -> f64 {
        self.call_rate * self.answered_share()
    }

    fn passed(&self) -> bool {
        self.answered_share() >= PASS_ANSWERED && self.call_rate >= PASS_RATE * f64::from(self.rate)
    }

    fn print(&self) {
        let (p50, p99) = percentiles(&self.invite_to_200);
        let cpu = match (self.cpu, self.successful) {
            (Some(cpu), n) if n > 0 => format!(
                "{:.2} ({:.0}%)",
                cpu.total.as_secs_f64() * 1e3 / n as f64,
                100.0 * cpu.system_share()
            ),
            _ => "-".into(),
        };
        println!(
            "    {:>6} {:<14} {:>9.1} {:>13} {:>7} {:>8} {:>9} {:>11}   {}",
            self.rate,
            self.callee.name(),
            self.answered_rate(),
            format!("{}/{}", self.successful, self.created),
            self.failed,
            format!("{p50:.0}/{p99:.0}"),
            cpu,
            self.retransmissions,
            if self.passed() { "pass" } else { "FAIL" }
        );
        if !self.reasons.is_empty() {
            let reasons: Vec<String> = self
                .reasons
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            println!("           failures: {}", reasons.join(", "));
        }
        for line in &self.errors {
            println!("           sipp: {line}");
        }
        if self.left_live > 0 {
            println!(
                "           {} calls still live on the server 10 s after sipp finished",
                self.left_live
            );
        }
        if !self.store_read.is_empty() {
            let (p50, p99) = percentiles(&self.store_read);
            println!(
                "           a store read meanwhile (Store::trunks, on the pool the calls write through): p50 {p50:.1} ms, p99 {p99:.1} ms"
            );
        }
    }
}

/// p50 and p99 of a sample (0 when empty).
fn percentiles(samples: &[f64]) -> (f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| {
        if sorted.is_empty() {
            0.0
        } else {
            sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
        }
    };
    (at(0.50), at(0.99))
}

/// The last row of a sipp `-trace_stat` file, by column name.
struct SippStat {
    columns: HashMap<String, String>,
}

impl SippStat {
    fn read(path: &Path) -> anyhow::Result<SippStat> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading sipp statistics {}", path.display()))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next().context("sipp statistics are empty")?;
        let last = lines.next_back().context("sipp wrote no statistics row")?;
        let columns = header
            .split(';')
            .zip(last.split(';'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(SippStat { columns })
    }

    fn count(&self, name: &str) -> u64 {
        self.columns
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn rate(&self, name: &str) -> f64 {
        self.columns
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// `FailedTimeoutOnRecv(C)` → `TimeoutOnRecv`, for every cumulative failure
    /// counter that is not zero.
    fn reasons(&self) -> Vec<(String, u64)> {
        let mut reasons: Vec<(String, u64)> = self
            .columns
            .keys()
            .filter(|k| k.starts_with("Failed") && k.ends_with("(C)") && *k != "FailedCall(C)")
            .map(|k| {
                let name = k.trim_start_matches("Failed").trim_end_matches("(C)");
                (name.to_string(), self.count(k))
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        reasons.sort();
        reasons
    }
}

/// Response times from sipp's `-trace_rtt` files in `dir`, ms.
fn read_rtt(dir: &Path) -> Vec<f64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut times = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with("_rtt.csv") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        times.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| l.split(';').nth(1)?.trim().parse::<f64>().ok()),
        );
    }
    times
}

/// The sipp UAS of the baseline, answering on its port until dropped.
struct SippUas {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl SippUas {
    async fn start(sipp: &Path, dir: &Path) -> anyhow::Result<SippUas> {
        let port = free_udp_port()?;
        let media = free_udp_port()?;
        let log = std::fs::File::create(dir.join("uas.out"))?;
        let child = tokio::process::Command::new(sipp)
            .current_dir(dir)
            .args(["-sn", "uas", "-i", "127.0.0.1", "-nostdin"])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", sipp.display()))?;
        // sipp binds before it prints anything; give it a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(SippUas {
            child,
            addr: SocketAddr::new(LOOPBACK, port),
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// One rate step: sipp calls `target` at `rate` for `seconds`.
async fn sipp_step(
    sipp: &Path,
    scenario: &Path,
    dir: &Path,
    target: SocketAddr,
    rate: u32,
    seconds: u32,
) -> anyhow::Result<(SippStat, Vec<f64>, Vec<String>)> {
    std::fs::create_dir_all(dir)?;
    let port = free_udp_port()?;
    let media = free_udp_port()?;
    let calls = u64::from(rate) * u64::from(seconds);
    // Open calls are capped at one second's worth: a callee that falls further
    // behind than that slows sipp down, which shows as a missed rate.
    let limit = rate.max(10);
    let stat = dir.join("stat.csv");
    let screen = std::fs::File::create(dir.join("screen.out"))?;
    let mut child = tokio::process::Command::new(sipp)
        .current_dir(dir)
        .arg("-sf")
        .arg(scenario)
        .args(["-i", "127.0.0.1", "-nostdin"])
        .args(["-p", &port.to_string(), "-mp", &media.to_string()])
        .args(["-r", &rate.to_string(), "-rp", "1000"])
        .args(["-m", &calls.to_string(), "-l", &limit.to_string()])
        .args(["-recv_timeout", &RECV_TIMEOUT_MS.to_string()])
        .args(["-timeout", &format!("{}s", seconds + 60)])
        .arg("-trace_stat")
        .arg("-stf")
        .arg(&stat)
        .args(["-trace_rtt", "-rtt_freq", "1", "-trace_err"])
        .arg("-error_file")
        .arg(dir.join("errors.log"))
        .arg(target.to_string())
        .stdin(Stdio::null())
        .stdout(screen)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", sipp.display()))?;
    let mut stderr = child.stderr.take().context("sipp stderr")?;
    let mut err_text = String::new();
    let waited = tokio::time::timeout(Duration::from_secs(u64::from(seconds) + 90), async {
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err_text).await;
        child.wait().await
    })
    .await;
    // sipp exits 1 when some calls failed; the statistics say which.
    match waited {
        Ok(Ok(_)) if stat.exists() => {}
        Ok(Ok(status)) => bail!("sipp exited with {status} and no statistics: {err_text}"),
        Ok(Err(e)) => bail!("sipp: {e}"),
        Err(_) => bail!(
            "sipp did not finish a {seconds} s step within {} s",
            seconds + 90
        ),
    }
    let errors: Vec<String> = std::fs::read_to_string(dir.join("errors.log"))
        .unwrap_or_default()
        .split(" aborting call")
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .map(|l| l.chars().take(240).collect())
        .collect();
    Ok((SippStat::read(&stat)?, read_rtt(dir), errors))
}

/// What the server stored for the calls of each step, counted after it stopped.
struct StoredCalls {
    /// Per server step: rate, calls, with a timeline event, with a routing task.
    steps: Vec<(u32, i64, i64, i64)>,
    /// Every call record by its `outcome`.
    outcomes: Vec<(String, i64)>,
}

impl StoredCalls {
    /// Counts by step window: call records started in it, those whose timeline event
    /// exists (the event's provider id is the call id), and voice tasks that arrived
    /// in it (every call is a new conversation, so at most one task each).
    async fn read(data_dir: &Path, windows: &[(u32, (i64, i64))]) -> anyhow::Result<StoredCalls> {
        use sqlx::{Connection, Row};
        let url = format!(
            "sqlite://{}?mode=ro",
            data_dir.join("switchboard.db").display()
        );
        let mut db = sqlx::AnyConnection::connect(&url).await?;
        let mut steps = Vec::new();
        for &(rate, (from, to)) in windows {
            let row = sqlx::query(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM timeline_event e \
                 WHERE e.plugin_id = 'voice' AND e.provider_id = c.id) THEN 1 ELSE 0 END), 0) \
                 FROM call_record c WHERE c.started_at BETWEEN $1 AND $2",
            )
            .bind(from)
            .bind(to)
            .fetch_one(&mut db)
            .await?;
            let tasks: i64 = sqlx::query(
                "SELECT COUNT(*) FROM task WHERE channel = 'voice' AND arrived_at BETWEEN $1 AND $2",
            )
            .bind(from)
            .bind(to)
            .fetch_one(&mut db)
            .await?
            .try_get(0)?;
            steps.push((rate, row.try_get(0)?, row.try_get(1)?, tasks));
        }
        let outcomes = sqlx::query(
            "SELECT COALESCE(json_extract(detail, '$.outcome'), '?') AS outcome, COUNT(*) \
             FROM call_record GROUP BY outcome ORDER BY COUNT(*) DESC",
        )
        .fetch_all(&mut db)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
        db.close().await?;
        Ok(StoredCalls { steps, outcomes })
    }

    fn print(&self) {
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(outcome, n)| format!("{outcome} {n}"))
            .collect();
        println!(
            "   what the server stored, per step (counted after it stopped; call outcomes: {}):",
            outcomes.join(", ")
        );
        println!(
            "    {:>6} {:>9} {:>22} {:>22}",
            "rate/s", "calls", "with timeline event", "with routing task"
        );
        let share = |n: i64, of: i64| {
            format!(
                "{n} ({:.0}%)",
                if of > 0 {
                    100.0 * n as f64 / of as f64
                } else {
                    0.0
                }
            )
        };
        for &(rate, calls, events, tasks) in &self.steps {
            println!(
                "    {rate:>6} {calls:>9} {:>22} {:>22}",
                share(events, calls),
                share(tasks, calls)
            );
        }
        println!(
            "           a call hung up (after 0-100 ms) before its timeline write or its classification ends there"
        );
        let unfinished: i64 = self
            .outcomes
            .iter()
            .filter(|(outcome, _)| outcome == "in_progress")
            .map(|(_, n)| n)
            .sum();
        if unfinished > 0 {
            println!(
                "           RECORDS WRONG: {unfinished} calls ended but their record still says in_progress (a save of the live call landed after the hang-up's)"
            );
        }
    }
}

/// Part 1's results.
pub(super) struct CallSetup {
    steps: Vec<Step>,
}

impl CallSetup {
    /// The best passed step of a callee.
    fn best(&self, callee: Callee) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| s.callee == callee && s.passed())
            .max_by_key(|s| s.rate)
    }

    pub(super) fn goal(&self) -> (String, String, bool) {
        let best = self.best(Callee::Switchboard);
        (
            "call setup >= 500 calls/s (part 1)".into(),
            best.map_or("no step".into(), |s| format!("{}/s step", s.rate)),
            best.is_some_and(|s| s.rate >= 500),
        )
    }
}

/// Runs part 1 and prints its rows as they come.
pub(super) async fn run(args: &VoiceBenchArgs) -> anyhow::Result<CallSetup> {
    let version = tokio::process::Command::new(&args.sipp)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| {
            format!(
                "{} does not run (apt-get install sip-tester, or pass --sipp, or --no-sipp)",
                args.sipp.display()
            )
        })?;
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SIPp"))
        .unwrap_or("SIPp (version unknown)")
        .trim_end_matches('.')
        .to_string();
    let work = tempfile::tempdir()?;
    let scenario = work.path().join("call_setup_uac.xml");
    std::fs::write(&scenario, UAC_SCENARIO)?;
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    let server = VoiceServer::start(&args.plugins_dir, &data_dir, Default::default()).await?;
    let uas = SippUas::start(&args.sipp, work.path()).await?;

    println!(
        "1. Call setup rate: {version} calls with INVITE (PCMU) -> 200 -> ACK, 0-100 ms, BYE -> 200; a new caller number per call"
    );
    println!(
        "   switchboard: in this process, SIP on {}, SQLite in a temporary directory, recording off, trunk 127.0.0.1",
        server.voice.sip_addr()
    );
    match server.policy {
        Some(policy) => println!(
            "   policy {policy} as built in {}: after the 200 each call makes a new contact, a timeline event, an IVR classify,",
            args.plugins_dir.display()
        ),
        None => println!(
            "   no policy ({POLICY} is not built in {}): after the 200 each call makes a new contact, a timeline event,",
            args.plugins_dir.display()
        ),
    }
    println!(
        "   hold music and a routing task, as far as it gets before the caller hangs up (an abandon; counted at the end)."
    );
    println!("   Baseline: the same caller against sipp -sn uas");
    println!(
        "   {} s per rate; a step passes with >= {:.0}% of calls completed and >= {:.0}% of the rate placed (sipp's rate over the whole run);",
        args.step_seconds,
        PASS_ANSWERED * 100.0,
        PASS_RATE * 100.0
    );
    println!(
        "   CPU per call = this process's CPU time (the server; sipp runs apart) over the calls completed"
    );
    println!(
        "    {:>6} {:<14} {:>9} {:>13} {:>7} {:>11} {:>17} {:>8}",
        "rate/s",
        "callee",
        "calls/s",
        "completed",
        "failed",
        "INVITE-200",
        "CPU per call",
        "retrans"
    );
    println!(
        "    {:>6} {:<14} {:>9} {:>13} {:>7} {:>11} {:>17} {:>8}",
        "", "", "completed", "", "", "p50/p99 ms", "ms (kernel)", ""
    );

    let mut steps = Vec::new();
    let mut server_done = false;
    let mut result = Ok(());
    for (i, &rate) in args.rates.iter().enumerate() {
        // Alternate who goes first, so drift on a busy machine hits both.
        let order = if i % 2 == 0 {
            [Callee::SippUas, Callee::Switchboard]
        } else {
            [Callee::Switchboard, Callee::SippUas]
        };
        for callee in order {
            if callee == Callee::Switchboard && server_done {
                continue;
            }
            let target = match callee {
                Callee::SippUas => uas.addr,
                Callee::Switchboard => server.voice.sip_addr(),
            };
            let dir = work
                .path()
                .join(format!("{rate}-{}", callee.name().replace(' ', "")));
            let probe = (callee == Callee::Switchboard).then(|| StoreProbe::start(&server.store));
            let started_ms = switchboard_app::now_ms();
            let cpu_before = process_cpu();
            let outcome =
                sipp_step(&args.sipp, &scenario, &dir, target, rate, args.step_seconds).await;
            let cpu = match (process_cpu(), cpu_before) {
                (Some(after), Some(before)) if callee == Callee::Switchboard => {
                    Some(after.since(before))
                }
                _ => None,
            };
            let store_read = match probe {
                Some(probe) => probe.stop().await,
                None => Vec::new(),
            };
            let (stat, rtt, errors) = match outcome {
                Ok(o) => o,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let left_live = match callee {
                Callee::Switchboard => server.drain(Duration::from_secs(10)).await,
                Callee::SippUas => 0,
            };
            let failed = stat.count("FailedCall(C)");
            let step = Step {
                callee,
                rate,
                created: stat.count("TotalCallCreated"),
                successful: stat.count("SuccessfulCall(C)"),
                failed,
                reasons: stat.reasons(),
                retransmissions: stat.count("Retransmissions(C)"),
                call_rate: stat.rate("CallRate(C)"),
                invite_to_200: rtt,
                cpu,
                left_live,
                store_read,
                errors: if failed > 0 { errors } else { Vec::new() },
                window: (callee == Callee::Switchboard)
                    .then(|| (started_ms, switchboard_app::now_ms())),
            };
            step.print();
            if callee == Callee::Switchboard && !step.passed() {
                server_done = true;
            }
            steps.push(step);
        }
        if result.is_err() {
            break;
        }
    }
    uas.stop().await;
    let handled = server.voice.counts().0;
    let policy_status = server.policy.and_then(|p| server.plugins.status(p));
    server.stop().await?;
    result?;
    let windows: Vec<(u32, (i64, i64))> = steps
        .iter()
        .filter_map(|s: &Step| Some((s.rate, s.window?)))
        .collect();
    let stored = StoredCalls::read(&data_dir, &windows).await;

    let setup = CallSetup { steps };
    let sipp_completed: u64 = setup
        .steps
        .iter()
        .filter(|s| s.callee == Callee::Switchboard)
        .map(|s| s.successful)
        .sum();
    println!(
        "   switchboard handled {handled} calls in all; sipp counted {sipp_completed} of them completed"
    );
    if let Some(status) = policy_status {
        println!(
            "   policy {}: {} calls, {} failed{}",
            status.id,
            status.calls,
            status.failures,
            status
                .quarantined
                .map(|why| format!(", QUARANTINED: {why}"))
                .unwrap_or_default()
        );
    }
    match stored {
        Ok(s) => s.print(),
        Err(e) => println!("   what the server stored: not counted ({e:#})"),
    }
    let describe = |s: Option<&Step>| match s {
        Some(s) => format!("{:.0} calls/s at the {}/s step", s.answered_rate(), s.rate),
        None => "no step passed".into(),
    };
    let ours = setup.best(Callee::Switchboard);
    let theirs = setup.best(Callee::SippUas);
    let baseline_topped =
        matches!((theirs, args.rates.last()), (Some(t), Some(&top)) if t.rate == top);
    println!(
        "   highest step passed: switchboard {}; sipp -sn uas {}{}",
        describe(ours),
        describe(theirs),
        if baseline_topped {
            " (the highest step tried)"
        } else {
            ""
        }
    );
    if let (Some(o), Some(t)) = (ours, theirs) {
        println!(
            "   ratio switchboard/sipp-uas (highest step passed): {:.2}x{}",
            o.answered_rate() / t.answered_rate().max(1e-9),
            if baseline_topped {
                " (an upper bound: the baseline passed every step)"
            } else {
                ""
            }
        );
    }
    Ok(setup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipp_statistics_are_read_by_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat.csv");
        std::fs::write(
            &path,
            "StartTime;CallRate(C);TotalCallCreated;SuccessfulCall(C);FailedCall(C);FailedTimeoutOnRecv(C);FailedMaxUDPRetrans(C);\n\
             a;99.0;10;9;1;0;0;\n\
             b;98.5;500;497;3;2;1;\n",
        )
        .unwrap();
        let stat = SippStat::read(&path).unwrap();
        assert_eq!(stat.count("TotalCallCreated"), 500);
        assert_eq!(stat.rate("CallRate(C)"), 98.5);
        assert_eq!(
            stat.reasons(),
            vec![
                ("MaxUDPRetrans".to_string(), 1),
                ("TimeoutOnRecv".to_string(), 2)
            ]
        );
    }

    #[test]
    fn a_step_passes_on_completions_and_rate() {
        let step = |created, successful, call_rate| Step {
            callee: Callee::Switchboard,
            rate: 500,
            created,
            successful,
            failed: created - successful,
            reasons: Vec::new(),
            retransmissions: 0,
            call_rate,
            invite_to_200: Vec::new(),
            cpu: None,
            left_live: 0,
            store_read: Vec::new(),
            errors: Vec::new(),
            window: None,
        };
        assert!(step(2500, 2500, 489.0).passed());
        assert!(!step(2500, 2470, 489.0).passed());
        assert!(!step(2500, 2500, 400.0).passed());
    }
}
