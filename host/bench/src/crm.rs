//! `switchboard-bench crm`: what CRM enrichment adds to the provider's answer and to
//! webhook-to-offer, with a cache hit, a cache miss against a slow CRM, and no CRM,
//! in one run (issue 14).
//!
//! A real server runs in this process, wired like `switchboard serve` (store on
//! SQLite, plugin host, routing with `routing-default`, the HTTP API), with
//! `sms-twilio` installed, agents available, and the real `crm-hubspot` plugin pointed
//! at a stand-in HubSpot on loopback that answers every contact search after
//! `--crm-delay-ms` (50) with a contact holding the searched number. Signed inbound
//! SMS webhooks go one at a time; each is timed from the POST to its HTTP response
//! (the provider's answer) and to the `offer.created` event reaching a subscriber of
//! the server's event bus (what the agent's realtime WebSocket forwards); the offer is
//! then accepted and the task completed, so the next message finds every agent free
//! and the next message from that number makes a new task, which is when routing asks
//! the CRM.
//!
//! Four setups, alternated in blocks so drift on a busy machine hits all of them:
//! no CRM (the CRM plugin switched off in the plugin host, as an admin disabling it
//! does) with a new number per message and with returning numbers (the baselines), a
//! cache miss (a new number per message: every lookup goes to the stand-in) and a
//! cache hit (returning numbers, looked up when they were warmed, within the cache's
//! TTL). A miss is compared with new numbers without CRM, a hit with returning ones,
//! each as a bootstrap interval of the p50 difference. `--separate-server` runs the
//! baselines on a second server without any CRM instead (the earlier design).
//! Nothing asserts a timing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::Args;
use serde_json::{Value, json};
use switchboard_api::AppState;
use switchboard_app::background::Background;
use switchboard_app::crm::CrmConfig;
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::plugins as admin;
use switchboard_app::{App, AppConfig, Delivery, OutboxConfig};
use switchboard_core::{Role, normalize_identity};
use switchboard_plugin_host::Limits;
use switchboard_routing::{EngineConfig, Presence, Queue, Reservation};
use switchboard_store::{NewAgent, Store};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::machine::{load_average, print_header};
use crate::sample::{Summary, ms, p50_difference_interval, random_hex, us};
use crate::twilio::{HOOK_PATH, PLUGIN_ID, Webhook, twilio_config};

const CRM_PLUGIN: &str = "crm-hubspot";
const POLICY: &str = "routing-default";
/// The queue routing-default puts SMS in, created up front as an operator would.
const QUEUE: &str = "messaging";
const HUBSPOT_TOKEN: &str = "pat-na1-bench-hubspot-token";
/// Agents available on each server.
const AGENTS: usize = 3;
/// The longest a message may take to be offered before it counts as a failure.
const OFFER_WAIT: Duration = Duration::from_secs(10);

/// `switchboard-bench crm` options.
#[derive(Args, Debug)]
pub struct CrmBenchArgs {
    /// Where built plugins are (sms-twilio, routing-default, crm-hubspot).
    #[arg(long, default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,
    /// Messages timed per setup in each round.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub messages: u32,
    /// Rounds; the four setups alternate within each, in a rotating order (at least
    /// two: the noise is a baseline's even rounds against its odd ones).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub rounds: u32,
    /// How long the stand-in HubSpot takes to answer a contact search.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=5000))]
    pub crm_delay_ms: u64,
    /// Returning numbers (warmed before the rounds, then cycled through).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub returning: u32,
    /// Idle time before each timed message, in every setup (default: the CRM's delay
    /// plus 10 ms). A cache miss waits for the CRM before its offer, so without it
    /// the machine would sit idle (cores in deeper sleep states, caches cooling)
    /// before each message of the miss setup only, and the answer would measure the
    /// wake-up, not the CRM.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=5000))]
    pub pause_ms: Option<u64>,
    /// The stand-in answers every search with no match (after the same delay), so
    /// the CRM server stores nothing more per contact than the other: what a miss
    /// costs apart from the data it brings.
    #[arg(long)]
    pub crm_finds_nobody: bool,
    /// Run the no-CRM baselines on a second server that has no CRM installed (the
    /// design before 2026-12-08) instead of on the CRM server with its CRM switched
    /// off: the two servers' own difference then lands in "answer added".
    #[arg(long)]
    pub separate_server: bool,
}

// ---------------------------------------------------------------------------
// The stand-in HubSpot
// ---------------------------------------------------------------------------

/// HubSpot's contact search, answered after a delay with a contact holding the
/// number searched for (the request and answer shapes of tests/src/crm.rs).
#[derive(Clone)]
struct StandIn {
    delay: Duration,
    searches: Arc<AtomicU64>,
    /// Answers every search with no match (`--crm-finds-nobody`).
    finds_nobody: bool,
}

async fn hubspot_search(
    State(this): State<StandIn>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    this.searches.fetch_add(1, Ordering::Relaxed);
    let bearer = format!("Bearer {HUBSPOT_TOKEN}");
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(bearer.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"status": "error", "category": "INVALID_AUTHENTICATION",
                "message": "Authentication credentials not found."}),
            ),
        )
            .into_response();
    }
    tokio::time::sleep(this.delay).await;
    let phone = body["filterGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["filters"].as_array().into_iter().flatten())
        .find(|f| f["propertyName"] == "phone" && f["operator"] == "EQ")
        .and_then(|f| f["value"].as_str());
    let results = match phone.filter(|_| !this.finds_nobody) {
        Some(phone) => {
            let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
            vec![json!({
                "id": format!("5{digits}"),
                "properties": {
                    "firstname": "Bench", "lastname": format!("Customer {digits}"),
                    "phone": phone, "vip": "false", "company": "Acme Corp",
                    "lastmodifieddate": "2026-11-02T03:04:05.000Z",
                },
                "archived": false,
                "createdAt": "2026-01-02T03:04:05.000Z", "updatedAt": "2026-11-02T03:04:05.000Z",
            })]
        }
        None => Vec::new(),
    };
    axum::Json(json!({"total": results.len(), "results": results})).into_response()
}

/// Starts the stand-in on a free loopback port; returns its origin, and the thread
/// it runs on (it stops when that is dropped).
///
/// The stand-in plays a CRM on another machine, so it runs on a thread of its own
/// at a lower priority (`switchboard_app::background`): the CPU it spends parsing
/// searches on this two-core machine is not charged to the server's answer, as a
/// remote CRM's would not be.
async fn start_stand_in(this: StandIn) -> anyhow::Result<(String, Background)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let origin = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route(
            "/crm/v3/objects/contacts/search",
            axum::routing::post(hubspot_search),
        )
        .with_state(this);
    let thread = Background::start("crm-stand-in")?;
    thread.spawn(async move {
        match TcpListener::from_std(listener) {
            Ok(listener) => {
                let _ = axum::serve(listener, app).await;
            }
            Err(e) => eprintln!("stand-in HubSpot: {e}"),
        }
    });
    Ok((origin, thread))
}

// ---------------------------------------------------------------------------
// The servers
// ---------------------------------------------------------------------------

/// A real server in this process, with the offers its event bus publishes.
struct Server {
    app: App,
    store: Store,
    addr: SocketAddr,
    client: reqwest::Client,
    /// `offer.created` events as a subscriber receives them, stamped on receipt.
    offers: mpsc::UnboundedReceiver<(Instant, Value)>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Store, plugin host, sms-twilio, routing-default and (with `crm`, the stand-in's
    /// origin) crm-hubspot, routing, the API on `127.0.0.1:0`, agents available.
    async fn start(plugins: &Path, data_dir: &Path, crm: Option<&str>) -> anyhow::Result<Server> {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        let db_url = format!("sqlite://{}", data_dir.join("switchboard.db").display());
        let store = Store::connect(&db_url, key)
            .await
            .context("opening the store")?;
        let host = server_plugin_host(&store, Limits::default())
            .map_err(|e| anyhow::anyhow!("plugin host: {e}"))?;
        let mut installs = vec![
            (PLUGIN_ID, twilio_config(), Vec::new()),
            (POLICY, HashMap::new(), Vec::new()),
        ];
        if let Some(origin) = crm {
            let config = [("access_token", HUBSPOT_TOKEN), ("api_base", origin)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            installs.push((CRM_PLUGIN, config, vec![origin.to_string()]));
        }
        for (id, config, allow_hosts) in installs {
            admin::install(
                &store,
                &host,
                &admin::PluginFiles::folder(data_dir),
                admin::InstallRequest {
                    source: plugins.join(id),
                    config,
                    allow_hosts,
                    id: None,
                },
            )
            .await
            .with_context(|| format!("installing {id}"))?;
        }
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
                routing: Some(EngineConfig::default()),
                login: Default::default(),
                webchat: Default::default(),
                attachments: Default::default(),
                crm: CrmConfig::default(),
                file_store: Default::default(),
                node: Default::default(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("starting the application: {e}"))?;
        let routing = app.routing.clone().context("routing runs")?;
        routing
            .upsert_queue(Queue::new(QUEUE, QUEUE))
            .await
            .map_err(|e| anyhow::anyhow!("creating the {QUEUE} queue: {e:?}"))?;
        for i in 0..AGENTS {
            let agent = store
                .create_agent(NewAgent {
                    email: format!("agent{i}@bench.test"),
                    name: format!("Agent {i}"),
                    role: Role::Agent,
                    password_hash: "not-used".into(),
                    skills: Vec::new(),
                })
                .await?;
            routing
                .set_presence(&agent.id, Presence::Available)
                .await
                .map_err(|e| anyhow::anyhow!("agent presence: {e:?}"))?;
        }
        let (tx, offers) = mpsc::unbounded_channel();
        let mut subscription = app.events.subscribe(None);
        tokio::spawn(async move {
            loop {
                match subscription.next().await {
                    Delivery::Event(e) if e.kind == "offer.created" => {
                        if tx.send((Instant::now(), e.data.clone())).is_err() {
                            break;
                        }
                    }
                    Delivery::Event(_) | Delivery::Resync { .. } => {}
                    Delivery::Closed => break,
                }
            }
        });
        let state = AppState::new(app.clone(), None);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_api::serve(listener, state, async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Server {
            app,
            store,
            addr,
            client,
            offers,
            shutdown,
            task,
        })
    }

    fn hook_url(&self) -> String {
        format!("http://{}{HOOK_PATH}", self.addr)
    }

    /// Sends one message from `from`, waits for its offer, accepts it and completes
    /// the task. Returns (answer, offer) latencies from the POST.
    async fn message(&mut self, sid: &str, from: &str) -> anyhow::Result<(Duration, Duration)> {
        while self.offers.try_recv().is_ok() {}
        let url = self.hook_url();
        let w = Webhook::new(&url, sid, from);
        let sent = Instant::now();
        let response = self
            .client
            .post(&url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::USER_AGENT, "TwilioProxy/1.1")
            .header("i-twilio-idempotency-token", &w.idempotency_token)
            .header("x-twilio-signature", &w.signature)
            .body(w.body.clone())
            .send()
            .await
            .with_context(|| format!("webhook {sid}"))?;
        let status = response.status();
        let body = response.bytes().await?;
        let answered = sent.elapsed();
        if status != reqwest::StatusCode::OK {
            bail!(
                "webhook {sid}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        let (at, offer) = tokio::time::timeout(OFFER_WAIT, self.offers.recv())
            .await
            .with_context(|| format!("no offer for {sid} within {OFFER_WAIT:?}"))?
            .context("the event bus closed")?;
        let offered = at.duration_since(sent);
        // Untimed: the offer is this message's, then the agent takes and ends it.
        let identity = normalize_identity("phone", from, None)?;
        let contact = self
            .store
            .contact_by_identity(&identity)
            .await?
            .context("the sender's contact")?;
        if offer["task"]["contact_id"].as_str() != Some(contact.id.as_str()) {
            bail!("the offer after {sid} is for another contact: {offer}");
        }
        let reservation: Reservation = serde_json::from_value(offer["reservation"].clone())?;
        let routing = self.app.routing.clone().context("routing runs")?;
        let r = reservation.id.clone();
        routing
            .apply(|e, now| Ok(e.accept(now, &r)?))
            .await
            .map_err(|e| anyhow::anyhow!("accepting {sid}: {e:?}"))?;
        let t = reservation.task.clone();
        routing
            .apply(|e, now| Ok(e.complete(now, &t)?))
            .await
            .map_err(|e| anyhow::anyhow!("completing {sid}: {e:?}"))?;
        Ok((answered, offered))
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        match tokio::time::timeout(Duration::from_secs(15), self.task).await {
            Ok(joined) => joined.context("server task")?.context("server")?,
            Err(_) => bail!("the server did not stop within 15 s"),
        }
        self.store.close().await;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Setups
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Setup {
    BaseNew,
    BaseReturning,
    Miss,
    Hit,
}

impl Setup {
    const ALL: [Setup; 4] = [
        Setup::BaseNew,
        Setup::BaseReturning,
        Setup::Miss,
        Setup::Hit,
    ];

    fn label(self) -> &'static str {
        match self {
            Setup::BaseNew => "(1) no CRM, new numbers",
            Setup::BaseReturning => "(1) no CRM, returning numbers",
            Setup::Miss => "(2) CRM, cache miss (new numbers)",
            Setup::Hit => "(3) CRM, cache hit (returning)",
        }
    }

    fn crm(self) -> bool {
        matches!(self, Setup::Miss | Setup::Hit)
    }

    fn returning(self) -> bool {
        matches!(self, Setup::BaseReturning | Setup::Hit)
    }

    /// The no-CRM setup this one is compared with.
    fn baseline(self) -> Setup {
        if self.returning() {
            Setup::BaseReturning
        } else {
            Setup::BaseNew
        }
    }
}

/// Sender numbers per server: the returning ones first, then one new number per message.
struct Numbers {
    returning: usize,
    next_new: usize,
    next_returning: usize,
}

impl Numbers {
    fn number(i: usize) -> String {
        format!("+1415{:07}", 5_550_000 + i)
    }

    fn take(&mut self, returning: bool) -> String {
        if returning {
            let n = Numbers::number(self.next_returning % self.returning);
            self.next_returning += 1;
            n
        } else {
            let n = Numbers::number(self.next_new);
            self.next_new += 1;
            n
        }
    }
}

#[derive(Default)]
struct Measured {
    answer: Vec<Duration>,
    offer: Vec<Duration>,
    /// The same samples by round: for intervals that pair rounds, and for a
    /// baseline's even rounds against its odd ones.
    answer_rounds: Vec<Vec<Duration>>,
    offer_rounds: Vec<Vec<Duration>>,
    searches: u64,
    failures: Vec<String>,
}

/// Runs the benchmark and prints the report.
pub async fn run(args: CrmBenchArgs) -> anyhow::Result<()> {
    for id in [PLUGIN_ID, POLICY, CRM_PLUGIN] {
        if !args.plugins_dir.join(id).join("plugin.toml").exists() {
            bail!(
                "{} is not a built plugin; run `bash plugins/build.sh` or pass --plugins-dir",
                args.plugins_dir.join(id).display()
            );
        }
    }
    print_header("crm");
    let started = Instant::now();
    let delay = Duration::from_millis(args.crm_delay_ms);
    let stand_in = StandIn {
        delay,
        searches: Arc::new(AtomicU64::new(0)),
        finds_nobody: args.crm_finds_nobody,
    };
    let (origin, _stand_in_thread) = start_stand_in(stand_in.clone()).await?;
    let dir = tempfile::Builder::new().prefix("sb-bench-crm-").tempdir()?;
    let (base_dir, crm_dir) = (dir.path().join("no-crm"), dir.path().join("crm"));
    std::fs::create_dir_all(&base_dir)?;
    std::fs::create_dir_all(&crm_dir)?;
    let mut base = match args.separate_server {
        true => Some(Server::start(&args.plugins_dir, &base_dir, None).await?),
        false => None,
    };
    let mut crm = Server::start(&args.plugins_dir, &crm_dir, Some(&origin)).await?;
    let config = CrmConfig::default();
    println!(
        "CRM enrichment on the webhook-to-offer path: signed inbound SMS ({PLUGIN_ID}) to a real server in this \
         process (SQLite, {POLICY}, {AGENTS} agents available), one message at a time; each offer is accepted and its \
         task completed before the next message"
    );
    println!(
        "   {}",
        if args.separate_server {
            "no CRM = a second server in this process without any CRM installed (--separate-server)"
        } else {
            "no CRM = the same server with its CRM switched off (as an admin disabling it does; its database work per \
             message stays the same), so server, database and process are the same for every setup"
        }
    );
    println!(
        "   CRM server: {CRM_PLUGIN} from {} against a stand-in HubSpot on {origin} (a thread of its own at nice +10, \
         as a remote CRM's CPU is not ours) answering contact searches after {} ms{}; CrmConfig defaults (routing budget {} ms, cache TTL {} s, lookup timeout {} s)",
        args.plugins_dir.display(),
        args.crm_delay_ms,
        if args.crm_finds_nobody {
            " with no match (--crm-finds-nobody)"
        } else {
            ""
        },
        config.routing_budget.as_millis(),
        config.cache_ttl.as_secs(),
        config.lookup_timeout.as_secs()
    );
    println!(
        "   answer = webhook POST -> HTTP response; offer = webhook POST -> offer.created received by a subscriber \
         of the server's event bus (what the agent's WebSocket forwards)"
    );
    println!(
        "   {} returning numbers, each messaged once before the rounds (the CRM looks them up \
         then); {} rounds x {} messages per setup, the setups alternating in a rotating order; {} ms idle before every timed message in every setup (--pause-ms), so all setups start each message from the same rest",
        args.returning,
        args.rounds,
        args.messages,
        args.pause_ms.unwrap_or(args.crm_delay_ms + 10)
    );

    let run_id = random_hex(6);
    let mut sid = 0usize;
    let mut next_sid = || {
        sid += 1;
        format!("SM{run_id}{sid:020x}")
    };
    let returning = args.returning as usize;
    let new_numbers = |start: usize| Numbers {
        returning,
        next_new: start,
        next_returning: 0,
    };
    // Sender numbers by server (true: the CRM server).
    let mut numbers: HashMap<bool, Numbers> = HashMap::from([
        (false, new_numbers(returning)),
        (true, new_numbers(returning)),
    ]);
    let on_crm_server = |setup: Setup| setup.crm() || !args.separate_server;

    // Warm-up, untimed: the returning numbers' first message (a CRM lookup each on the
    // CRM server), and a few new numbers.
    let mut servers = vec![(&mut crm, true)];
    if let Some(base) = base.as_mut() {
        servers.push((base, false));
    }
    for (server, with_crm) in servers {
        let numbers = numbers.get_mut(&with_crm).expect("both");
        for _ in 0..returning {
            let from = numbers.take(true);
            server.message(&next_sid(), &from).await?;
        }
        for _ in 0..20 {
            let from = numbers.take(false);
            server.message(&next_sid(), &from).await?;
        }
    }

    let pause = Duration::from_millis(args.pause_ms.unwrap_or(args.crm_delay_ms + 10));
    let mut results: HashMap<Setup, Measured> = HashMap::new();
    for round in 0..args.rounds as usize {
        for k in 0..Setup::ALL.len() {
            let setup = Setup::ALL[(k + round) % Setup::ALL.len()];
            let server = match base.as_mut() {
                Some(base) if !on_crm_server(setup) => base,
                _ => {
                    // The CRM is on exactly for the CRM setups (in memory, like the
                    // plugin host's enable switch an admin flips).
                    crm.app.plugins.set_enabled(CRM_PLUGIN, setup.crm());
                    &mut crm
                }
            };
            let numbers = numbers.get_mut(&on_crm_server(setup)).expect("both");
            let out = results.entry(setup).or_default();
            let searches = stand_in.searches.load(Ordering::Relaxed);
            let (mut answer, mut offer) = (Vec::new(), Vec::new());
            for _ in 0..args.messages {
                let from = numbers.take(setup.returning());
                let sid = next_sid();
                tokio::time::sleep(pause).await;
                match server.message(&sid, &from).await {
                    Ok((a, o)) => {
                        answer.push(a);
                        offer.push(o);
                    }
                    Err(e) => out.failures.push(format!("{e:#}")),
                }
            }
            out.searches += stand_in.searches.load(Ordering::Relaxed) - searches;
            out.answer.extend(&answer);
            out.offer.extend(&offer);
            out.answer_rounds.push(answer);
            out.offer_rounds.push(offer);
        }
    }

    // Where a cache hit's time goes, untimed above: the contact read routing does
    // anyway, and enrichment of the contact it read.
    let contact_id = crm
        .store
        .contact_by_identity(&normalize_identity("phone", &Numbers::number(0), None)?)
        .await?
        .context("a returning contact")?
        .id;
    crm.app.plugins.set_enabled(CRM_PLUGIN, true);
    let searches = stand_in.searches.load(Ordering::Relaxed);
    let (mut enrich, mut read) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        let t = Instant::now();
        let contact = crm.store.contact(&contact_id).await?;
        read.push(t.elapsed());
        let t = Instant::now();
        crm.app.crm.enrich_within(&contact).await;
        enrich.push(t.elapsed());
    }
    let probe_searches = stand_in.searches.load(Ordering::Relaxed) - searches;
    if let Some(base) = base {
        base.stop().await?;
    }
    crm.stop().await?;

    report(&args, &mut results, &mut enrich, &mut read, probe_searches);
    println!(
        "   run took {:.0} s; load average at the end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    let failures: Vec<&String> = results.values().flat_map(|m| &m.failures).collect();
    if !failures.is_empty() {
        eprintln!("{} message(s) failed:", failures.len());
        for f in failures.iter().take(20) {
            eprintln!("  - {f}");
        }
        bail!("messages failed (see above)");
    }
    Ok(())
}

fn report(
    args: &CrmBenchArgs,
    results: &mut HashMap<Setup, Measured>,
    enrich: &mut [Duration],
    read: &mut [Duration],
    probe_searches: u64,
) {
    println!();
    println!(
        "   {:<36}{:>18}{:>18}{:>20}{:>20}{:>10}{:>8}",
        "setup",
        "answer p50/p99",
        "offer p50/p99",
        "answer added",
        "offer added",
        "lookups",
        "failed"
    );
    println!(
        "   {:<36}{:>18}{:>18}{:>20}{:>20}",
        "", "ms", "ms", "p50/p99 ms", "p50/p99 ms"
    );
    let mut summaries: HashMap<Setup, (Summary, Summary)> = HashMap::new();
    for setup in Setup::ALL {
        let m = results.get_mut(&setup).expect("measured");
        summaries.insert(
            setup,
            (Summary::of(&mut m.answer), Summary::of(&mut m.offer)),
        );
    }
    let pair = |a: Duration, b: Duration| format!("{:.2} / {:.2}", ms(a), ms(b));
    let added = |a: Duration, b: Duration| ms(a) - ms(b);
    let signed = |a: f64, b: f64| format!("{a:+.2} / {b:+.2}");
    for setup in Setup::ALL {
        let (answer, offer) = &summaries[&setup];
        let (base_answer, base_offer) = &summaries[&setup.baseline()];
        let (answer_added, offer_added) = if setup.crm() {
            (
                signed(
                    added(answer.p50, base_answer.p50),
                    added(answer.p99, base_answer.p99),
                ),
                signed(
                    added(offer.p50, base_offer.p50),
                    added(offer.p99, base_offer.p99),
                ),
            )
        } else {
            ("-".into(), "-".into())
        };
        let m = &results[&setup];
        println!(
            "   {:<36}{:>18}{:>18}{:>20}{:>20}{:>10}{:>8}",
            setup.label(),
            pair(answer.p50, answer.p99),
            pair(offer.p50, offer.p99),
            answer_added,
            offer_added,
            if setup.crm() {
                m.searches.to_string()
            } else {
                "-".into()
            },
            m.failures.len()
        );
    }
    println!(
        "   lookups = contact searches the stand-in answered during the setup's messages ({} timed each)",
        summaries[&Setup::Hit].0.count
    );
    // A/A: each baseline's even rounds against its odd rounds, p50.
    let noise = |answer: bool| {
        [Setup::BaseNew, Setup::BaseReturning]
            .map(|s| {
                let m = &results[&s];
                let rounds = if answer {
                    &m.answer_rounds
                } else {
                    &m.offer_rounds
                };
                let mut halves: [Vec<Duration>; 2] = Default::default();
                for (r, samples) in rounds.iter().enumerate() {
                    halves[r % 2].extend(samples);
                }
                let [even, odd] = &mut halves;
                (ms(Summary::of(even).p50) - ms(Summary::of(odd).p50)).abs()
            })
            .into_iter()
            .fold(0.0, f64::max)
    };
    let (answer_noise, offer_noise) = (noise(true), noise(false));
    println!(
        "   noise (a baseline against itself: its even rounds vs its odd rounds, p50): {answer_noise:.2} ms (answer), \
         {offer_noise:.2} ms (offer)"
    );
    let enrich = Summary::of(enrich);
    let read = Summary::of(read);
    let hit_cost = ms(enrich.p50);
    println!(
        "   a cache hit alone (Crm::enrich_within on a returning contact routing has read, 1000 times): p50 {:.0} us, \
         p99 {:.0} us; the contact read routing does with or without a CRM (Store::contact): p50 {:.0} us, p99 {:.0} us; {} lookups",
        us(enrich.p50),
        us(enrich.p99),
        us(read.p50),
        us(read.p99),
        probe_searches
    );
    println!();

    let answer_added = [Setup::Miss, Setup::Hit]
        .map(|s| added(summaries[&s].0.p50, summaries[&s.baseline()].0.p50));
    let intervals = [Setup::Miss, Setup::Hit].map(|s| {
        p50_difference_interval(
            &results[&s].answer_rounds,
            &results[&s.baseline()].answer_rounds,
            2000,
        )
    });
    let hit_added = added(
        summaries[&Setup::Hit].1.p50,
        summaries[&Setup::BaseReturning].1.p50,
    );
    let miss_added = added(
        summaries[&Setup::Miss].1.p50,
        summaries[&Setup::BaseNew].1.p50,
    );
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    println!("   goals");
    println!(
        "     no added latency on the provider's answer: p50 {:+.2} ms (miss; 95 % interval {:+.2} to {:+.2}), \
         {:+.2} ms (hit; {:+.2} to {:+.2}), noise {:.2} ms   {}",
        answer_added[0],
        intervals[0].0,
        intervals[0].1,
        answer_added[1],
        intervals[1].0,
        intervals[1].1,
        answer_noise,
        verdict(intervals.iter().all(|(low, _)| *low <= 0.0))
    );
    println!(
        "       (met when neither interval lies wholly above 0: the run cannot tell the answer with a CRM from \
         the answer without one; the intervals bootstrap the p50 difference by whole rounds, 2000 resamplings)"
    );
    println!(
        "     a cache hit adds < 1 ms to webhook-to-offer: p50 {hit_added:+.2} ms (noise {offer_noise:.2} ms; \
         the hit alone {hit_cost:.2} ms)   {}",
        verdict(hit_added < 1.0 && hit_cost < 1.0)
    );
    println!(
        "     a cache miss adds the CRM's answer time ({} ms at the stand-in), bounded by the routing budget \
         ({} ms): p50 {miss_added:+.2} ms",
        args.crm_delay_ms,
        CrmConfig::default().routing_budget.as_millis()
    );
}
