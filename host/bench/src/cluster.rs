//! `switchboard-bench failover` and `cluster-overhead`: several nodes on one
//! PostgreSQL database (issue 15).
//!
//! Both run real `switchboard serve` processes — the release binary built beside this
//! one (`--binary` to name another) — on a fresh PostgreSQL database and, when
//! clustered, a NATS JetStream stream of their own (deleted at the end), with the
//! cluster settings an operator gives every node: the same secret key, the stream,
//! `file_store = "database"`, a node id each. Only child processes can be killed the
//! way a machine dies (SIGKILL), which is what `failover` does.
//!
//! **failover**: three nodes, the leader poll at its default (1000 ms) unless
//! `--leader-poll-ms` says otherwise, one agent available whose realtime socket is on
//! a node that survives. Each round kills the routing leader (found with `/healthz`)
//! with SIGKILL, sends a signed inbound SMS from a new customer to that surviving node
//! right after the kill, and times kill → `offer.created` on the socket (the new
//! leader's first offer). `routing_leader.since`, the wall-clock instant the new leader
//! won the lock and bumped the epoch, splits it into the wait for the lock (the dead
//! session's release and the followers' poll) and the rest (the engine restored from
//! the database, the waiting conversation routed, the offer published through NATS and
//! delivered). The offer is accepted and completed, the killed node started again on
//! its data directory (it follows), and the next round kills whoever leads then. Each
//! round first times the same path with no kill (a message through a follower, handed
//! to the leader through `routing_inbox`), the baseline.
//!
//! **cluster-overhead**: inbound SMS webhooks per second through one node (PostgreSQL,
//! no NATS: the single-node set-up on PostgreSQL) against the same load spread
//! round-robin over three nodes, rounds alternating, on the same machine; the ratio is
//! the per-request cost of running clustered where nothing can scale (one machine).
//!
//! Nothing asserts a timing; failures are counted in the report.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::Connection;
use switchboard_e2e::PgDatabase;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

use crate::machine::{load_average, print_header};
use crate::sample::{ms, random_hex};
use crate::twilio::{ACCOUNT_SID, AUTH_TOKEN, HOOK_PATH, OUR_NUMBER, PLUGIN_ID, Webhook};

/// Every node of a cluster shares the key that seals plugin secrets.
const SECRET_KEY: &str = "5b1c9e0d7a3f42e8b6c1d0a9f8e7d6c5b4a39281706f5e4d3c2b1a0918273645";
const ADMIN_EMAIL: &str = "bench-admin@bench.test";
const AGENT_EMAIL: &str = "bench-agent@bench.test";
const PASSWORD: &str = "bench-password-123";
/// The longest one step waits before it counts as failed.
const WAIT: Duration = Duration::from_secs(60);

/// What both subcommands need to start nodes.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// The `switchboard` binary (default: the one beside this benchmark, i.e. the
    /// release build).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Where built plugins are (sms-twilio).
    #[arg(long, default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,
    /// The PostgreSQL server (a database is created on it and dropped at the end).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres: String,
    /// The NATS server with JetStream.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
}

/// `switchboard-bench failover` options.
#[derive(Args, Debug)]
pub struct FailoverArgs {
    #[command(flatten)]
    pub nodes: NodeArgs,
    /// Leaders killed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub kills: u32,
    /// `SWITCHBOARD_LEADER_POLL_MS` of every node (the product's default: 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub leader_poll_ms: u64,
}

/// `switchboard-bench cluster-overhead` options.
#[derive(Args, Debug)]
pub struct OverheadArgs {
    #[command(flatten)]
    pub nodes: NodeArgs,
    /// Webhooks per setup in each round.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub messages: u32,
    /// Rounds; the two setups alternate within each.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Webhooks in flight at once (the provider's connections).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=512))]
    pub concurrency: u32,
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl NodeArgs {
    fn binary(&self) -> anyhow::Result<PathBuf> {
        let bin = match &self.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("the benchmark's folder")?
                .join("switchboard"),
        };
        if !bin.exists() {
            bail!(
                "{} is missing: build it (`cargo build --release -p switchboard`) or pass --binary",
                bin.display()
            );
        }
        if !self
            .plugins_dir
            .join(PLUGIN_ID)
            .join("plugin.toml")
            .exists()
        {
            bail!(
                "{} is not a built plugin; run `bash plugins/build.sh` or pass --plugins-dir",
                self.plugins_dir.join(PLUGIN_ID).display()
            );
        }
        Ok(bin)
    }
}

/// How every node of one set-up is started.
struct Setup {
    binary: PathBuf,
    database_url: String,
    /// `(url, stream)` when the nodes share a NATS stream.
    nats: Option<(String, String)>,
    leader_poll_ms: Option<u64>,
}

impl Setup {
    fn command(&self, data: &Path, node: &str) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.env("SWITCHBOARD_DATA_DIR", data)
            .env("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:0")
            .env(
                "SWITCHBOARD_LOG",
                std::env::var("SWITCHBOARD_BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("SWITCHBOARD_VOICE", "off")
            .env("SWITCHBOARD_DATABASE_URL", &self.database_url)
            .env("SWITCHBOARD_SECRET_KEY", SECRET_KEY)
            .env("SWITCHBOARD_NODE_ID", node)
            .env_remove("SWITCHBOARD_PUBLIC_URL")
            .env_remove("SWITCHBOARD_LEADER_POLL_MS")
            .current_dir(data)
            .kill_on_drop(true);
        if let Some((url, stream)) = &self.nats {
            cmd.env("SWITCHBOARD_NATS_URL", url)
                .env("SWITCHBOARD_NATS_STREAM", stream)
                .env("SWITCHBOARD_FILE_STORE", "database");
        }
        if let Some(poll) = self.leader_poll_ms {
            cmd.env("SWITCHBOARD_LEADER_POLL_MS", poll.to_string());
        }
        cmd
    }

    /// Runs a CLI command on `data`.
    async fn cli(&self, data: &Path, args: &[&str]) -> anyhow::Result<()> {
        let out = self.command(data, "cli").args(args).output().await?;
        if !out.status.success() {
            bail!(
                "switchboard {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The admin, an agent and sms-twilio, in the database (and `data`).
    async fn provision(&self, data: &Path, plugins: &Path) -> anyhow::Result<()> {
        for (email, role) in [(ADMIN_EMAIL, "admin"), (AGENT_EMAIL, "agent")] {
            self.cli(
                data,
                &[
                    "admin",
                    "create-user",
                    "--email",
                    email,
                    "--password",
                    PASSWORD,
                    "--role",
                    role,
                ],
            )
            .await?;
        }
        // The CLI runs in the data directory: the plugin's path must not be relative.
        let sms = std::fs::canonicalize(plugins.join(PLUGIN_ID))?;
        self.cli(
            data,
            &[
                "plugin",
                "install",
                sms.to_str().context("a UTF-8 path")?,
                "--config",
                &format!("account_sid={ACCOUNT_SID}"),
                "--config",
                &format!("auth_token={AUTH_TOKEN}"),
                "--config",
                &format!("from_number={OUR_NUMBER}"),
            ],
        )
        .await
    }

    /// Starts `node` on `data` and waits until it listens.
    async fn start(&self, data: &Path, node: &str) -> anyhow::Result<Node> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("node.log"))?;
        let mut child = self
            .command(data, node)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .context("spawn switchboard serve")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let base = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("switchboard listening on ") {
                    return rest.split_whitespace().next().map(str::to_string);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .with_context(|| {
            format!(
                "{node} did not start: {}",
                std::fs::read_to_string(data.join("node.log")).unwrap_or_default()
            )
        })?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Node {
            name: node.to_string(),
            data: data.to_path_buf(),
            base,
            child,
        })
    }
}

/// A running `switchboard serve`.
struct Node {
    name: String,
    data: PathBuf,
    base: String,
    child: Child,
}

impl Node {
    /// What `/healthz` says about routing.
    async fn role(&self, http: &reqwest::Client) -> Option<String> {
        let v: Value = http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["routing"].as_str().map(str::to_string)
    }

    /// Log lines at ERROR.
    fn errors(&self) -> usize {
        std::fs::read_to_string(self.data.join("node.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("ERROR"))
            .count()
    }
}

/// The node that leads, once exactly one of `nodes` says so.
async fn leader(http: &reqwest::Client, nodes: &[Node]) -> anyhow::Result<usize> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut leaders = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if n.role(http).await.as_deref() == Some("leader") {
                leaders.push(i);
            }
        }
        if leaders.len() == 1 {
            return Ok(leaders[0]);
        }
        if Instant::now() > deadline {
            bail!("no single leader among the nodes: {leaders:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn login(http: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let v: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    v["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("login failed: {v}"))
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
) -> anyhow::Result<Value> {
    let url = format!("{base}{path}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let req = match method {
            "PUT" => http
                .put(&url)
                .json(&json!({"status": "available"}))
                .bearer_auth(token),
            _ => http.post(&url).json(&json!({})).bearer_auth(token),
        };
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        // A relayed command while the leader is not reachable yet: retry, as a client does.
        if status.as_u16() != 503 || Instant::now() > deadline {
            bail!("{method} {path}: {status} {v}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Posts a signed inbound SMS; its status (0: no answer).
async fn post_sms(http: &reqwest::Client, base: &str, sid: &str, from: &str) -> u16 {
    let url = format!("{base}{HOOK_PATH}");
    let hook = Webhook::new(&url, sid, from);
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", hook.signature)
        .body(hook.body)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(base: &str, token: &str) -> anyhow::Result<Socket> {
    let url = format!(
        "{}/api/v1/realtime?token={token}",
        base.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    loop {
        if next_event(&mut socket).await?["type"] == "hello" {
            return Ok(socket);
        }
    }
}

async fn next_event(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        let msg = tokio::time::timeout(WAIT, socket.next())
            .await
            .context("no event in time")?
            .context("socket closed")??;
        if let Message::Text(t) = msg {
            return Ok(serde_json::from_str(&t)?);
        }
    }
}

/// Waits for `offer.created`; returns the reservation and task ids.
async fn next_offer(socket: &mut Socket) -> anyhow::Result<(String, String)> {
    loop {
        let e = next_event(socket).await?;
        if e["type"] == "offer.created" {
            let r = &e["data"]["reservation"];
            return Ok((
                r["id"].as_str().context("reservation id")?.to_string(),
                r["task"].as_str().context("task id")?.to_string(),
            ));
        }
    }
}

/// Accepts and completes an offer through `base`.
async fn finish(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    (reservation, task): &(String, String),
) -> anyhow::Result<()> {
    call(
        http,
        base,
        token,
        "POST",
        &format!("/api/v1/reservations/{reservation}/accept"),
    )
    .await?;
    call(
        http,
        base,
        token,
        "POST",
        &format!("/api/v1/tasks/{task}/complete"),
    )
    .await?;
    Ok(())
}

/// Accepts and completes whatever is offered to the agent (a round given up).
async fn finish_pending(http: &reqwest::Client, base: &str, token: &str) {
    let Ok(r) = http
        .get(format!("{base}/api/v1/agents/me/offers"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return;
    };
    let v: Value = r.json().await.unwrap_or(Value::Null);
    for o in v["offers"].as_array().cloned().unwrap_or_default() {
        if let (Some(r), Some(t)) = (o["reservation"]["id"].as_str(), o["task"]["id"].as_str()) {
            let _ = finish(http, base, token, &(r.to_string(), t.to_string())).await;
        }
    }
}

async fn leader_record(database_url: &str) -> anyhow::Result<(String, i64, i64)> {
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let row = sqlx::query_as("SELECT node, epoch, since FROM routing_leader WHERE id = 1")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(row)
}

async fn delete_stream(url: &str, stream: &str) {
    if let Ok(client) = async_nats::connect(url).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(stream)
            .await;
    }
}

/// Median and largest.
fn median_worst(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let mid = v.len() / 2;
    let median = if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    };
    (median, v[v.len() - 1])
}

/// One kill, as measured.
struct Kill {
    from: String,
    to: String,
    /// Kill → the new leader's epoch bump (ms).
    lock: f64,
    /// Kill → `offer.created` on the surviving node's socket (ms).
    offer: f64,
    /// A message through a follower with no kill: POST → `offer.created` (ms).
    baseline: f64,
}

pub async fn failover(args: FailoverArgs) -> anyhow::Result<()> {
    let binary = args.nodes.binary()?;
    print_header("failover");
    let started = Instant::now();
    let db = PgDatabase::create().await;
    let stream = format!("sbbench-{}", random_hex(6));
    let setup = Setup {
        binary,
        database_url: db.url.clone(),
        nats: Some((args.nodes.nats_url.clone(), stream.clone())),
        leader_poll_ms: (args.leader_poll_ms != 1000).then_some(args.leader_poll_ms),
    };
    let result = run_failover(&args, &setup).await;
    delete_stream(&args.nodes.nats_url, &stream).await;
    drop(db);
    let kills = result?;

    println!(
        "   kill  leader -> new leader     lock won   restore+offer   kill -> offer   no kill (baseline)"
    );
    println!(
        "                                        ms              ms              ms                   ms"
    );
    for (i, k) in kills.iter().enumerate() {
        println!(
            "   {:>4}  {:<22} {:>8.0}   {:>13.0}   {:>13.0}   {:>18.0}",
            i + 1,
            format!("{} -> {}", k.from, k.to),
            k.lock,
            k.offer - k.lock,
            k.offer,
            k.baseline
        );
    }
    let col = |f: fn(&Kill) -> f64| median_worst(&kills.iter().map(f).collect::<Vec<_>>());
    let (lock, restore, offer, base) = (
        col(|k| k.lock),
        col(|k| k.offer - k.lock),
        col(|k| k.offer),
        col(|k| k.baseline),
    );
    println!(
        "   median                        {:>8.0}   {:>13.0}   {:>13.0}   {:>18.0}",
        lock.0, restore.0, offer.0, base.0
    );
    println!(
        "   worst                         {:>8.0}   {:>13.0}   {:>13.0}   {:>18.0}",
        lock.1, restore.1, offer.1, base.1
    );
    println!(
        "   lock won = kill -> routing_leader.since (the new leader's epoch bump: PostgreSQL \
         ends the dead session and frees its lock, a follower's next try wins it; the tries \
         come every {} ms)",
        args.leader_poll_ms
    );
    println!(
        "   restore+offer = the rest: the engine restored from the database, the waiting \
         conversation routed, the offer published to NATS and delivered on the socket"
    );
    println!(
        "   no kill = the same message through a follower while the leader runs (handed over \
         in routing_inbox, read every {} ms)",
        args.leader_poll_ms / 4
    );
    println!();
    println!("   goals");
    let met = if offer.1 < 5000.0 { "MET" } else { "MISSED" };
    println!(
        "     failover (kill -9 of the leader -> the new leader's next offer) target under 5 s: \
         median {:.2} s, worst {:.2} s over {} kills   {met}",
        offer.0 / 1000.0,
        offer.1 / 1000.0,
        kills.len()
    );
    println!(
        "   run took {:.0} s; load average at the end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}

async fn run_failover(args: &FailoverArgs, setup: &Setup) -> anyhow::Result<Vec<Kill>> {
    let http = reqwest::Client::new();
    // SWITCHBOARD_BENCH_KEEP keeps the nodes' folders and logs for a look afterwards.
    let keep = std::env::var_os("SWITCHBOARD_BENCH_KEEP").is_some();
    let root = tempfile::Builder::new()
        .prefix("sb-bench-failover-")
        .disable_cleanup(keep)
        .tempdir()?;
    if keep {
        println!("   nodes' folders kept in {}", root.path().display());
    }
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|n| root.path().join(format!("node-{n}")))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    setup.provision(&dirs[0], &args.nodes.plugins_dir).await?;
    // Node 1 starts alone, so it leads; then the two others follow.
    let mut nodes = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        nodes.push(setup.start(d, &format!("node-{}", i + 1)).await?);
    }
    println!(
        "Failover: 3 `switchboard serve` processes ({}) on one PostgreSQL database and one NATS \
         stream, SWITCHBOARD_LEADER_POLL_MS={} on every node, sms-twilio, one agent available",
        setup.binary.display(),
        args.leader_poll_ms
    );
    println!(
        "   each round: the leader (from /healthz) is killed with SIGKILL; right after, a signed \
         inbound SMS from a new customer goes to a surviving follower, where the agent's socket \
         is; timed from the kill to offer.created on that socket; then the offer is accepted and \
         completed and the killed node started again on its data directory"
    );
    let (_, epoch, _) = leader_record(&setup.database_url).await?;
    println!("   routing epoch once the three nodes run: {epoch}");
    let token = login(&http, &nodes[0].base, AGENT_EMAIL).await?;
    call(
        &http,
        &nodes[0].base,
        &token,
        "PUT",
        "/api/v1/agents/me/presence",
    )
    .await?;

    let mut kills = Vec::new();
    let mut messages = 0u32;
    // Rounds not timed: leadership moved on its own between looking and killing.
    let mut moved = 0u32;
    while kills.len() < args.kills as usize {
        let lead = leader(&http, &nodes).await?;
        // The follower after the leader survives; the agent's socket is there.
        let survivor = (lead + 1) % nodes.len();
        let base = nodes[survivor].base.clone();
        let mut events = socket(&base, &token).await?;

        // The baseline: the same path with the leader alive.
        messages += 1;
        let sid = format!("SMfo{}", random_hex(15));
        let from = format!("+1415556{:04}", messages % 10_000);
        let t = Instant::now();
        let status = post_sms(&http, &base, &sid, &from).await;
        if status != 200 {
            bail!("the baseline message was answered {status}");
        }
        let offer = next_offer(&mut events).await?;
        let baseline = ms(t.elapsed());
        finish(&http, &base, &token, &offer).await?;
        let baseline_offer = offer.clone();

        // The kill: of the node the database names, when it still says it leads.
        let (named, epoch_before, _) = leader_record(&setup.database_url).await?;
        let role = nodes[lead].role(&http).await;
        if named != nodes[lead].name || role.as_deref() != Some("leader") {
            println!(
                "   (round not timed: the database names {named} (epoch {epoch_before}), {} says {role:?}; \
                 baseline {baseline:.0} ms)",
                nodes[lead].name
            );
            moved += 1;
            finish_pending(&http, &base, &token).await;
            continue;
        }
        messages += 1;
        let sid = format!("SMfo{}", random_hex(15));
        let from = format!("+1415556{:04}", messages % 10_000);
        let killed_at = wall_ms();
        let t = Instant::now();
        nodes[lead].child.start_kill()?;
        let status = post_sms(&http, &base, &sid, &from).await;
        if status != 200 {
            bail!("the message after the kill was answered {status}");
        }
        let offer = match tokio::time::timeout(WAIT, next_offer(&mut events)).await {
            Ok(Ok(offer)) => offer,
            other => {
                bail!("no offer after the kill: {other:?}");
            }
        };
        let offered = ms(t.elapsed());
        let (new_leader, epoch, since) = leader_record(&setup.database_url).await?;
        let _ = nodes[lead].child.wait().await;
        if epoch <= epoch_before {
            // Offered before any takeover: not a failover to time.
            println!(
                "   (round not timed: offered {offered:.0} ms after killing {} with the epoch still \
                 {epoch} ({new_leader}); baseline {baseline:.0} ms; offers: baseline {:?}, after the kill {:?})",
                nodes[lead].name, baseline_offer, offer
            );
            moved += 1;
            finish(&http, &base, &token, &offer).await?;
            let name = nodes[lead].name.clone();
            let data = nodes[lead].data.clone();
            nodes[lead] = setup.start(&data, &name).await?;
            continue;
        }
        kills.push(Kill {
            from: nodes[lead].name.clone(),
            to: new_leader,
            lock: (since - killed_at) as f64,
            offer: offered,
            baseline,
        });
        finish(&http, &base, &token, &offer).await?;
        drop(events);

        // The killed node comes back and follows.
        let name = nodes[lead].name.clone();
        let data = nodes[lead].data.clone();
        nodes[lead] = setup.start(&data, &name).await?;
    }
    let errors: usize = nodes.iter().map(Node::errors).sum();
    println!(
        "   {} kills timed, {moved} rounds not timed (leadership had moved on its own), \
         {messages} messages, every one answered 200 and offered; ERROR lines in the nodes' \
         logs: {errors}",
        kills.len()
    );
    println!();
    Ok(kills)
}

// ---------------------------------------------------------------------------
// One node against three
// ---------------------------------------------------------------------------

/// Waits until `routing_inbox` is empty; how long that took (s).
async fn drain(database_url: &str) -> anyhow::Result<f64> {
    let t = Instant::now();
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM routing_inbox")
            .fetch_one(&mut conn)
            .await?;
        if waiting == 0 || t.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    conn.close().await?;
    Ok(t.elapsed().as_secs_f64())
}

/// Sends `count` webhooks, new customers each, round-robin over `bases`, `concurrency`
/// at a time; returns (webhooks per second, failures).
async fn blast(
    http: &reqwest::Client,
    bases: &[String],
    count: u32,
    concurrency: u32,
    round: &str,
) -> (f64, u64) {
    let failed = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let (http, failed) = (http.clone(), failed.clone());
            let base = bases[i as usize % bases.len()].clone();
            let sid = format!("SMov{round}{i:08}");
            let from = format!("+1415{:07}", i % 10_000_000);
            async move {
                if post_sms(&http, &base, &sid, &from).await != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .buffer_unordered(concurrency as usize)
        .collect::<Vec<()>>()
        .await;
    (
        count as f64 / t.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

pub async fn overhead(args: OverheadArgs) -> anyhow::Result<()> {
    let binary = args.nodes.binary()?;
    print_header("cluster-overhead");
    let started = Instant::now();
    let (one_db, three_db) = (PgDatabase::create().await, PgDatabase::create().await);
    let stream = format!("sbbench-{}", random_hex(6));
    let one = Setup {
        binary: binary.clone(),
        database_url: one_db.url.clone(),
        nats: None,
        leader_poll_ms: None,
    };
    let three = Setup {
        binary,
        database_url: three_db.url.clone(),
        nats: Some((args.nodes.nats_url.clone(), stream.clone())),
        leader_poll_ms: None,
    };
    let result = run_overhead(&args, &one, &three).await;
    delete_stream(&args.nodes.nats_url, &stream).await;
    drop(one_db);
    drop(three_db);
    result?;
    println!(
        "   run took {:.0} s; load average at the end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}

async fn run_overhead(args: &OverheadArgs, one: &Setup, three: &Setup) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let root = tempfile::Builder::new()
        .prefix("sb-bench-overhead-")
        .tempdir()?;
    let single_dir = root.path().join("single");
    std::fs::create_dir_all(&single_dir)?;
    one.provision(&single_dir, &args.nodes.plugins_dir).await?;
    let single = one.start(&single_dir, "single").await?;
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|n| root.path().join(format!("node-{n}")))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    three.provision(&dirs[0], &args.nodes.plugins_dir).await?;
    let mut nodes = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        nodes.push(three.start(d, &format!("node-{}", i + 1)).await?);
    }
    leader(&http, &nodes).await?;
    println!(
        "One node against three on this machine: signed inbound SMS webhooks (sms-twilio, a new \
         customer each, no agent available: every message opens a conversation and a waiting \
         task), {} in flight, {} per setup and round, {} rounds alternating",
        args.concurrency, args.messages, args.rounds
    );
    println!(
        "   one node: PostgreSQL, no NATS (the single-node set-up on PostgreSQL); three nodes: \
         the same binary x3 on another database with NATS, file_store = database, the webhooks \
         round-robin over them (two of three reach a follower, which hands the conversation to \
         the leader through routing_inbox)"
    );
    let single_bases = vec![single.base.clone()];
    let cluster_bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    // Warm both (plugin instances, connection pools).
    blast(&http, &single_bases, 200, args.concurrency, "w1").await;
    blast(&http, &cluster_bases, 200, args.concurrency, "w3").await;
    let (mut ones, mut threes, mut drains, mut failed) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for r in 0..args.rounds {
        let order: [(&[String], bool); 2] = if r.is_multiple_of(2) {
            [(&single_bases, false), (&cluster_bases, true)]
        } else {
            [(&cluster_bases, true), (&single_bases, false)]
        };
        for (bases, clustered) in order {
            let tag = format!("r{r}{}", if clustered { "c" } else { "s" });
            let (rate, f) = blast(&http, bases, args.messages, args.concurrency, &tag).await;
            failed += f;
            if clustered {
                threes.push(rate);
                // The leader routes what followers handed over after they answered:
                // let it finish before the next setup runs.
                drains.push(drain(&three.database_url).await?);
            } else {
                ones.push(rate);
            }
        }
    }
    println!("   round   one node /s   three nodes /s   ratio");
    for (r, (a, b)) in ones.iter().zip(&threes).enumerate() {
        println!("   {:>5}   {a:>11.0}   {b:>14.0}   {:>5.2}", r + 1, b / a);
    }
    let (one_median, _) = median_worst(&ones);
    let (three_median, _) = median_worst(&threes);
    println!(
        "   median  {one_median:>11.0}   {three_median:>14.0}   {:>5.2}x   ({failed} failed)",
        three_median / one_median
    );
    println!(
        "   wall time per request at this concurrency: {:.2} ms on one node, {:.2} ms on three ({:+.0}%)",
        1000.0 / one_median,
        1000.0 / three_median,
        (one_median / three_median - 1.0) * 100.0
    );
    let (drain_median, drain_worst) = median_worst(&drains);
    println!(
        "   after a three-node round, the leader was still routing handed-over conversations for \
         {drain_median:.1} s (median; worst {drain_worst:.1} s): it reads routing_inbox every quarter of the \
         leader poll, 100 at a time until it is empty"
    );
    let errors = single.errors() + nodes.iter().map(Node::errors).sum::<usize>();
    println!("   ERROR lines in the nodes' logs: {errors}");
    Ok(())
}
