//! Three nodes on one PostgreSQL database and one NATS JetStream stream, end to end
//! (issue 15). Six agents log in, set their presence and accept offers through
//! different nodes (a follower relays their commands to the routing leader); a client
//! sends signed SMS webhooks to the three nodes in turn and sends one that got no 200
//! again to the next node, as a provider retries. In the middle the routing leader is
//! killed with SIGKILL; later the database session that holds the next leader's lock
//! is terminated while its process lives on. Then:
//!
//! - every webhook answered 200 is stored exactly once;
//! - every snapshot of the database taken during the run is consistent: each task's
//!   state matches its offers, at most one live offer per task, no agent over capacity;
//! - a supervisor's realtime feed on a surviving node, replayed in order, never shows a
//!   task offered or accepted while someone holds it, a decision on an offer that is
//!   not open, or an agent over capacity: from the start to the kill, and from the
//!   takeover (starting from what the database held when the new leader won) to the
//!   cut; the other survivor's feed has the same events in the same order;
//! - agents connected to surviving nodes were offered work after the kill, another
//!   node reports `routing: leader`, and every message — before the kill, between, and
//!   after the cut — was offered and accepted;
//! - the node whose session was cut reports `follower`, and another node leads.
//!
//! Nothing asserts a timing: every wait is bounded generously.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::Connection;
use switchboard_e2e::cluster::{CLUSTER_SECRET_KEY, delete_stream, nats_url};
use switchboard_e2e::routing_db::{TaskRow, check_snapshot, read_db};
use switchboard_e2e::*;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const NODES: usize = 3;
const AGENTS: usize = 6;
/// Messages sent before the leader is killed, before its successor's session is cut,
/// and in all.
const BEFORE_KILL: usize = 24;
const BEFORE_CUT: usize = 48;
const MESSAGES: usize = 60;
/// Every agent's capacity and an SMS task's cost (the defaults).
const CAPACITY: u32 = 100;
const SMS_COST: u32 = 25;
/// The longest any step of the test waits for the cluster.
const WITHIN: Duration = Duration::from_secs(30);

/// Milliseconds since the epoch on the wall clock, the clock the nodes stamp events,
/// offers and the leader's `since` with (they run on this machine).
fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One answered request (599: no answer, the node was gone).
#[derive(Debug, Clone)]
struct Act {
    kind: &'static str,
    actor: String,
    target: String,
    status: u16,
}

/// The nodes as clients see them, and what the clients did.
struct Cluster {
    bases: Vec<String>,
    names: Vec<String>,
    /// Cleared just before a node is killed, so clients go to the others (as a load
    /// balancer's health check would have them).
    alive: Vec<AtomicBool>,
    http: reqwest::Client,
    db_url: String,
    acts: Mutex<Vec<Act>>,
    stop: AtomicBool,
}

impl Cluster {
    /// `home` while it runs, else the next node that does.
    fn node_for(&self, home: usize) -> usize {
        (0..NODES)
            .map(|k| (home + k) % NODES)
            .find(|&n| self.alive[n].load(Ordering::SeqCst))
            .expect("a node runs")
    }

    fn record(&self, kind: &'static str, actor: &str, target: &str, status: u16) {
        self.acts.lock().unwrap().push(Act {
            kind,
            actor: actor.to_string(),
            target: target.to_string(),
            status,
        });
    }

    fn acts(&self) -> Vec<Act> {
        self.acts.lock().unwrap().clone()
    }

    /// Webhooks answered 200 so far.
    fn answered(&self) -> usize {
        let acts = self.acts.lock().unwrap();
        acts.iter()
            .filter(|a| a.kind == "sms" && a.status == 200)
            .count()
    }

    async fn call(
        &self,
        node: usize,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.bases[node]);
        let req = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url).json(&body),
            _ => self.http.post(url).json(&body),
        };
        match req.bearer_auth(token).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (599, json!({ "transport": e.to_string() })),
        }
    }

    /// What `/healthz` on `node` says about routing (`None`: no answer).
    async fn role(&self, node: usize) -> Option<String> {
        let r = self
            .http
            .get(format!("{}/healthz", self.bases[node]))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        assert_eq!(v["node"], self.names[node].as_str(), "{v}");
        v["routing"].as_str().map(str::to_string)
    }

    /// The one running node that reports `leader`, once exactly one does.
    async fn leader(&self) -> Option<usize> {
        let mut leaders = Vec::new();
        for n in (0..NODES).filter(|&n| self.alive[n].load(Ordering::SeqCst)) {
            if self.role(n).await.as_deref() == Some("leader") {
                leaders.push(n);
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// A signed inbound SMS to `node`; its status, 599 when the node did not answer.
    async fn sms(&self, node: usize, sid: &str, from: &str) -> u16 {
        let url = format!("{}/hooks/sms-twilio/inbound", self.bases[node]);
        let body_text = format!("message {sid}");
        let params = [
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("AccountSid", ACCOUNT_SID),
            ("From", from),
            ("To", FROM_NUMBER),
            ("Body", body_text.as_str()),
            ("NumMedia", "0"),
            ("SmsStatus", "received"),
        ];
        let signature = twilio_signature(AUTH_TOKEN, &url, &params);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let sent = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) => r.status().as_u16(),
            Err(_) => 599,
        }
    }
}

fn sid(i: usize) -> String {
    format!("SMclu{i:05}")
}

/// Sends messages `range`, one new customer each, to the nodes in turn; one that got
/// no 200 goes again to the next node, as the provider retries.
async fn send_messages(cluster: Arc<Cluster>, range: Range<usize>) {
    for i in range {
        let (sid, from) = (sid(i), format!("+1555666{i:04}"));
        let mut node = i % NODES;
        for attempt in 0.. {
            assert!(attempt < 30, "{sid} was never answered 200");
            let status = cluster.sms(node, &sid, &from).await;
            cluster.record("sms", &cluster.names[node], &sid, status);
            if status == 200 {
                break;
            }
            node = (node + 1) % NODES;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

// ---------------------------------------------------------------------------
// Realtime feeds
// ---------------------------------------------------------------------------

/// Events a socket got, each with the wall-clock ms it arrived at.
type Feed = Arc<Mutex<Vec<(Value, i64)>>>;

async fn open_socket(
    cluster: &Cluster,
    node: usize,
    token: &str,
    since: Option<u64>,
) -> Option<Socket> {
    let mut url = format!(
        "{}/api/v1/realtime?token={token}",
        cluster.bases[node].replacen("http", "ws", 1)
    );
    if let Some(seq) = since {
        url.push_str(&format!("&since={seq}"));
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg
            && serde_json::from_str::<Value>(&t).ok()?["type"] == "hello"
        {
            return Some(socket);
        }
    }
}

/// A client's realtime socket, opened on `home` (or the next running node) and, when
/// its node goes away, opened again on a running one from the last number it saw.
async fn follow(cluster: Arc<Cluster>, token: String, home: usize) -> (Feed, JoinHandle<()>) {
    let events: Feed = Arc::default();
    let mut socket = open_socket(&cluster, cluster.node_for(home), &token, None)
        .await
        .expect("a realtime socket");
    let sink = events.clone();
    let task = tokio::spawn(async move {
        loop {
            while let Some(Ok(msg)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                    let event: Value = serde_json::from_str(&t).unwrap();
                    sink.lock().unwrap().push((event, wall_ms()));
                }
            }
            loop {
                if cluster.stop.load(Ordering::SeqCst) {
                    return;
                }
                let since = sink
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .find_map(|(e, _)| e["seq"].as_u64());
                if let Some(s) = open_socket(&cluster, cluster.node_for(home), &token, since).await
                {
                    socket = s;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    (events, task)
}

// ---------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------

struct Agent {
    id: String,
    token: String,
    /// The node this agent's browser talks to while it runs.
    home: usize,
    /// Tasks held: since when, and whether wrapped up already.
    held: Mutex<BTreeMap<String, (Instant, bool)>>,
}

/// What the agent's desk shows it holds, read from the database (the desk's own list
/// is read from the leader's engine, which a takeover replaces): an accept whose
/// answer was lost with the node is found again this way.
async fn sync_held(cluster: &Cluster, me: &Agent) {
    let Ok(mut conn) = sqlx::PgConnection::connect(&cluster.db_url).await else {
        return;
    };
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, state FROM task WHERE agent_id = $1 AND state IN ('assigned', 'wrapping')",
    )
    .bind(&me.id)
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    let _ = conn.close().await;
    let mut held = me.held.lock().unwrap();
    let before = std::mem::take(&mut *held);
    for (task, state) in rows {
        let kept = before
            .get(&task)
            .copied()
            .unwrap_or((Instant::now(), state == "wrapping"));
        held.insert(task, kept);
    }
}

/// An agent at work until the test stops: takes every offer, holds each task a
/// moment, sometimes wraps it up first, then completes it.
async fn work(cluster: Arc<Cluster>, me: Arc<Agent>) {
    let mut synced = Instant::now();
    while !cluster.stop.load(Ordering::SeqCst) {
        let node = cluster.node_for(me.home);
        if synced.elapsed() > Duration::from_secs(1) {
            sync_held(&cluster, &me).await;
            synced = Instant::now();
        }
        let (code, v) = cluster
            .call(
                node,
                &me.token,
                "GET",
                "/api/v1/agents/me/offers",
                json!(null),
            )
            .await;
        cluster.record("offers", &me.id, "me", code);
        for offer in v["offers"].as_array().cloned().unwrap_or_default() {
            let reservation = offer["reservation"]["id"].as_str().unwrap().to_string();
            let task = offer["task"]["id"].as_str().unwrap().to_string();
            let (code, _) = cluster
                .call(
                    node,
                    &me.token,
                    "POST",
                    &format!("/api/v1/reservations/{reservation}/accept"),
                    json!({}),
                )
                .await;
            cluster.record("accept", &me.id, &reservation, code);
            if code == 200 {
                me.held
                    .lock()
                    .unwrap()
                    .insert(task, (Instant::now(), false));
            }
        }
        let due: Vec<(String, bool)> = me
            .held
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (at, _))| at.elapsed() > Duration::from_millis(300))
            .map(|(task, (_, wrapped))| (task.clone(), *wrapped))
            .collect();
        for (task, wrapped) in due {
            let kind = if !wrapped && rand::random_range(0..100) < 40 {
                "wrapup"
            } else {
                "complete"
            };
            let (code, _) = cluster
                .call(
                    node,
                    &me.token,
                    "POST",
                    &format!("/api/v1/tasks/{task}/{kind}"),
                    json!({}),
                )
                .await;
            cluster.record(kind, &me.id, &task, code);
            let mut held = me.held.lock().unwrap();
            match (kind, code) {
                ("wrapup", 200) => {
                    if let Some(h) = held.get_mut(&task) {
                        h.1 = true;
                    }
                }
                ("complete", 200) | (_, 403 | 404) => {
                    held.remove(&task);
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// The feed, replayed
// ---------------------------------------------------------------------------

/// Who holds what, as the feed tells it, with the invariants checked at every event.
#[derive(Default, Debug)]
struct Replay {
    /// Open offers: task → (reservation, agent).
    reserved: BTreeMap<String, (String, String)>,
    /// Tasks handled or wrapped up: task → agent.
    assigned: BTreeMap<String, String>,
    /// What each agent holds, offers included, in capacity units.
    load: BTreeMap<String, u32>,
    finished: BTreeSet<String>,
    /// Outputs seen, by kind.
    kinds: BTreeMap<String, usize>,
}

impl Replay {
    /// What the database held at `at` (ms, the new leader's `since`), rebuilt from
    /// the final rows: every write before a takeover commits before it, every write
    /// after it carries a later time.
    fn as_of(tasks: &BTreeMap<String, TaskRow>, at: i64) -> Replay {
        let mut replay = Replay::default();
        for (id, t) in tasks {
            if t.state == "completed" && t.updated_at < at {
                replay.finished.insert(id.clone());
                continue;
            }
            let Some(last) = t.offers.iter().rev().find(|o| o.3 < at) else {
                continue;
            };
            let (reservation, agent, state, _, decided) = last;
            if decided.is_none_or(|d| d >= at) {
                replay
                    .reserved
                    .insert(id.clone(), (reservation.clone(), agent.clone()));
            } else if state == "accepted" {
                replay.assigned.insert(id.clone(), agent.clone());
            } else {
                continue;
            }
            *replay.load.entry(agent.clone()).or_default() += SMS_COST;
        }
        replay
    }

    fn apply(&mut self, event: &Value) {
        let output = &event["data"]["output"];
        let kind = output["event"].as_str().unwrap_or_default().to_string();
        *self.kinds.entry(kind.clone()).or_default() += 1;
        let r = &output["reservation"];
        let reservation = r["id"].as_str().map(str::to_string);
        let task = r["task"]
            .as_str()
            .or_else(|| output["task"].as_str())
            .map(str::to_string);
        let Some(task) = task else { return };
        assert!(
            !self.finished.contains(&task),
            "an event after {task} ended: {event}"
        );
        match kind.as_str() {
            "offered" => {
                let agent = r["agent"].as_str().unwrap().to_string();
                assert!(
                    !self.reserved.contains_key(&task) && !self.assigned.contains_key(&task),
                    "{task} offered while reserved {:?} or assigned {:?}: {event}",
                    self.reserved.get(&task),
                    self.assigned.get(&task),
                );
                let load = self.load.entry(agent.clone()).or_default();
                *load += SMS_COST;
                assert!(*load <= CAPACITY, "{agent} over capacity: {event}");
                self.reserved.insert(task, (reservation.unwrap(), agent));
            }
            "reservation_accepted" => {
                let (open, agent) = self
                    .reserved
                    .remove(&task)
                    .unwrap_or_else(|| panic!("accepted without an open offer: {event}"));
                assert_eq!(Some(&open), reservation.as_ref(), "{event}");
                assert_eq!(r["agent"].as_str(), Some(agent.as_str()), "{event}");
                assert!(
                    self.assigned.insert(task, agent).is_none(),
                    "accepted by a second agent: {event}"
                );
            }
            "reservation_rejected" | "reservation_expired" | "reservation_canceled" => {
                let (open, agent) = self
                    .reserved
                    .remove(&task)
                    .unwrap_or_else(|| panic!("{kind} without an open offer: {event}"));
                assert_eq!(Some(&open), reservation.as_ref(), "{event}");
                *self.load.get_mut(&agent).unwrap() -= SMS_COST;
            }
            "task_assigned" | "task_wrapping" => {
                assert_eq!(
                    self.assigned.get(&task).map(String::as_str),
                    output["agent"].as_str(),
                    "{event}"
                );
            }
            "task_completed" => {
                let agent = self
                    .assigned
                    .remove(&task)
                    .unwrap_or_else(|| panic!("completed while nobody held it: {event}"));
                assert_eq!(output["agent"].as_str(), Some(agent.as_str()), "{event}");
                *self.load.get_mut(&agent).unwrap() -= SMS_COST;
                self.finished.insert(task);
            }
            "task_transferred" | "task_canceled" => {
                panic!("nothing transfers or cancels tasks in this test: {event}")
            }
            _ => {}
        }
    }
}

/// The routing events of `feed` stamped in `[from, to)` (ms), in order.
fn routing_events(feed: &[(Value, i64)], from: i64, to: i64) -> Vec<Value> {
    feed.iter()
        .map(|(e, _)| e)
        .filter(|e| e["type"] == "task.updated")
        .filter(|e| e["at"].as_i64().is_some_and(|at| at >= from && at < to))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

/// Terminates the database session holding the routing lock, in this test's database
/// only; how many sessions it ended.
async fn cut_leader_session(db_url: &str) -> usize {
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
         AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(switchboard_store::LEADER_LOCK)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    ended.iter().filter(|(done,)| *done).count()
}

/// The recorded leader: (node, epoch, since).
async fn leader_record(db_url: &str) -> (String, i64, i64) {
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let row = sqlx::query_as("SELECT node, epoch, since FROM routing_leader WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_keep_routing_when_the_leader_dies_or_loses_its_database() {
    let db = PgDatabase::create().await;
    let twilio = FakeTwilio::start().await;
    let stream = format!("sbe2e-{}", hex::encode(rand::random::<[u8; 6]>()));
    let shared: Vec<(String, String)> = [
        ("SWITCHBOARD_NATS_URL", nats_url().as_str()),
        ("SWITCHBOARD_NATS_STREAM", stream.as_str()),
        ("SWITCHBOARD_SECRET_KEY", CLUSTER_SECRET_KEY),
        ("SWITCHBOARD_FILE_STORE", "database"),
        ("SWITCHBOARD_LEADER_POLL_MS", "200"),
        ("SWITCHBOARD_VOICE", "off"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let names: Vec<String> = (1..=NODES).map(|n| format!("node-{n}")).collect();
    let options: Vec<Options> = names
        .iter()
        .map(|name| {
            let mut env = shared.clone();
            env.push(("SWITCHBOARD_NODE_ID".into(), name.clone()));
            Options {
                database_url: Some(db.url.clone()),
                env,
            }
        })
        .collect();

    // Node 1 is provisioned (admin, sms-twilio) and gets the agents; it starts first,
    // so it leads. Nodes 2 and 3 start on empty data directories.
    let data = provision(&options[0], &twilio).await;
    let credentials: Vec<(String, String)> = (0..AGENTS)
        .map(|i| (format!("clu{i}@e2e.test"), format!("clu-{i}-password")))
        .collect();
    for (email, password) in &credentials {
        cli(
            data.path(),
            &options[0],
            &[
                "admin",
                "create-user",
                "--email",
                email,
                "--password",
                password,
                "--role",
                "agent",
            ],
        )
        .await;
    }
    let mut servers = vec![Some(
        Server::start_in(Arc::new(data), options[0].clone()).await,
    )];
    for o in &options[1..] {
        let empty = Arc::new(tempfile::tempdir().unwrap());
        servers.push(Some(Server::start_in(empty, o.clone()).await));
    }
    let admin = servers[0].as_ref().unwrap().token.clone();
    let cluster = Arc::new(Cluster {
        bases: servers
            .iter()
            .map(|s| s.as_ref().unwrap().base.clone())
            .collect(),
        names: names.clone(),
        alive: (0..NODES).map(|_| AtomicBool::new(true)).collect(),
        http: reqwest::Client::new(),
        db_url: db.url.clone(),
        acts: Mutex::default(),
        stop: AtomicBool::new(false),
    });
    let first = eventually(WITHIN, || cluster.leader())
        .await
        .expect("one node leads");
    assert_eq!(first, 0, "the node that started alone leads");
    for n in 1..NODES {
        assert_eq!(cluster.role(n).await.as_deref(), Some("follower"));
    }

    // Agents log in through their own node and become available there (relayed to the
    // leader from a follower).
    let mut agents = Vec::new();
    for (i, (email, password)) in credentials.iter().enumerate() {
        let home = i % NODES;
        let (token, id) = servers[home].as_ref().unwrap().login(email, password).await;
        let (status, v) = cluster
            .call(
                home,
                &token,
                "PUT",
                "/api/v1/agents/me/presence",
                json!({"status": "available"}),
            )
            .await;
        assert_eq!(status, 200, "presence through {}: {v}", names[home]);
        agents.push(Arc::new(Agent {
            id,
            token,
            home,
            held: Mutex::default(),
        }));
    }
    let mut background = Vec::new();
    let mut agent_feeds = Vec::new();
    for agent in &agents {
        let (feed, task) = follow(cluster.clone(), agent.token.clone(), agent.home).await;
        agent_feeds.push(feed);
        background.push(task);
    }
    // Supervisors' feeds on the two nodes that survive the kill.
    let mut supervisor_feeds = Vec::new();
    for n in 1..NODES {
        let (feed, task) = follow(cluster.clone(), admin.clone(), n).await;
        supervisor_feeds.push(feed);
        background.push(task);
    }
    let workers: Vec<JoinHandle<()>> = agents
        .iter()
        .map(|a| tokio::spawn(work(cluster.clone(), a.clone())))
        .collect();
    let checker = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut snapshots = 0;
            while !cluster.stop.load(Ordering::SeqCst) {
                check_snapshot(
                    &read_db(&cluster.db_url).await,
                    &["messaging"],
                    SMS_COST,
                    CAPACITY,
                );
                snapshots += 1;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            snapshots
        })
    };

    // ---- The leader killed while messages arrive --------------------------------
    let sender = tokio::spawn(send_messages(cluster.clone(), 0..BEFORE_KILL));
    eventually(WITHIN, || async {
        (cluster.answered() >= BEFORE_KILL / 2).then_some(())
    })
    .await
    .expect("half the first messages answered");
    let (_, epoch_before, _) = leader_record(&db.url).await;
    cluster.alive[first].store(false, Ordering::SeqCst);
    let killed_at = wall_ms();
    let (_data, _) = servers[first].take().unwrap().kill().await;
    sender
        .await
        .expect("every message before the kill answered");

    let second = eventually(WITHIN, || cluster.leader())
        .await
        .expect("another node leads after the kill");
    let (node, epoch, took_over_at) = leader_record(&db.url).await;
    assert_eq!(node, names[second]);
    assert!(
        epoch > epoch_before,
        "a new epoch: {epoch} after {epoch_before}"
    );
    assert!(took_over_at > killed_at);

    // ---- The new leader's database session cut; its process lives on -----------
    let sender = tokio::spawn(send_messages(cluster.clone(), BEFORE_KILL..BEFORE_CUT));
    eventually(WITHIN, || async {
        (cluster.answered() >= BEFORE_KILL + (BEFORE_CUT - BEFORE_KILL) / 2).then_some(())
    })
    .await
    .expect("half the messages after the kill answered");
    let cut_at = wall_ms();
    let mut third = None;
    // The cut node may win the lock back before the other one tries; cut again then.
    for _ in 0..5 {
        assert_eq!(cut_leader_session(&db.url).await, 1, "one lock session");
        let stepped_down = eventually(WITHIN, || async {
            (cluster.role(second).await.as_deref() == Some("follower")).then_some(())
        })
        .await;
        assert!(
            stepped_down.is_some(),
            "{} still leads after its session was cut:\n{}",
            names[second],
            servers[second].as_ref().unwrap().log()
        );
        let leader = eventually(WITHIN, || cluster.leader())
            .await
            .expect("a node leads after the cut");
        if leader != second {
            third = Some(leader);
            break;
        }
    }
    let third = third.expect("another node took over from the cut one");
    assert!(
        servers[second]
            .as_ref()
            .unwrap()
            .log()
            .contains("stepped down from routing"),
        "the cut node says it stepped down"
    );
    sender.await.expect("every message before the cut answered");
    send_messages(cluster.clone(), BEFORE_CUT..MESSAGES).await;

    // ---- Everything routed ------------------------------------------------------
    let acked: BTreeSet<String> = cluster
        .acts()
        .iter()
        .filter(|a| a.kind == "sms" && a.status == 200)
        .map(|a| a.target.clone())
        .collect();
    assert_eq!(acked.len(), MESSAGES, "every message was answered 200");
    let accepted_messages = || async {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.ok()?;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT e.provider_id FROM timeline_event e \
             JOIN task t ON t.conversation_id = e.conversation_id \
             JOIN reservation r ON r.task_id = t.id AND r.state = 'accepted' \
             WHERE e.plugin_id = 'sms-twilio' AND e.direction = 'in'",
        )
        .fetch_all(&mut conn)
        .await
        .ok()?;
        let _ = conn.close().await;
        let done: BTreeSet<String> = rows.into_iter().map(|(s,)| s).collect();
        acked.is_subset(&done).then_some(())
    };
    assert!(
        eventually(WITHIN, accepted_messages).await.is_some(),
        "every message was offered and accepted; logs:\n{}",
        servers
            .iter()
            .flatten()
            .map(|s| s.log())
            .collect::<Vec<_>>()
            .join("\n----\n")
    );

    cluster.stop.store(true, Ordering::SeqCst);
    for w in workers {
        tokio::time::timeout(WITHIN, w)
            .await
            .expect("agents stop in time")
            .expect("no agent panicked");
    }
    let snapshots = checker.await.expect("every snapshot is consistent");
    assert!(snapshots > 5, "only {snapshots} snapshots");

    // ---- Every webhook answered 200 stored exactly once -------------------------
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT provider_id, COUNT(*) FROM timeline_event \
         WHERE plugin_id = 'sms-twilio' AND direction = 'in' GROUP BY provider_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let stored: BTreeMap<String, i64> = stored.into_iter().collect();
    for sid in &acked {
        assert_eq!(stored.get(sid), Some(&1), "{sid} stored once");
    }
    assert!(stored.values().all(|&n| n == 1), "{stored:?}");

    // ---- The API answers agree with the database --------------------------------
    let acts = cluster.acts();
    let failed: Vec<&Act> = acts
        .iter()
        .filter(|a| !matches!(a.status, 200 | 403 | 404 | 409 | 503 | 599))
        .collect();
    assert!(failed.is_empty(), "unexpected answers: {failed:?}");
    let db_final = read_db(&db.url).await;
    check_snapshot(&db_final, &["messaging"], SMS_COST, CAPACITY);
    assert_eq!(db_final.len(), MESSAGES, "one task per message");
    let accepted_rows: BTreeSet<&str> = db_final
        .values()
        .flat_map(|t| t.offers.iter())
        .filter(|o| o.2 == "accepted")
        .map(|o| o.0.as_str())
        .collect();
    let mut decided: BTreeMap<&str, usize> = BTreeMap::new();
    for a in acts
        .iter()
        .filter(|a| a.kind == "accept" && a.status == 200)
    {
        *decided.entry(&a.target).or_default() += 1;
        assert!(
            accepted_rows.contains(a.target.as_str()),
            "{} accepted {} but the database does not say so",
            a.actor,
            a.target
        );
    }
    assert!(
        decided.values().all(|&n| n == 1),
        "accepted twice: {decided:?}"
    );
    for t in db_final.values() {
        let accepted = t.offers.iter().filter(|o| o.2 == "accepted").count();
        assert!(accepted <= 1, "accepted twice without a transfer: {t:?}");
    }

    // ---- The realtime feeds -----------------------------------------------------
    let feed = supervisor_feeds[0].lock().unwrap().clone();
    let other = supervisor_feeds[1].lock().unwrap().clone();
    for f in [&feed, &other] {
        assert!(
            f.iter().all(|(e, _)| e["type"] != "resync"),
            "a feed resynced"
        );
        let seqs: Vec<u64> = f.iter().filter_map(|(e, _)| e["seq"].as_u64()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "a feed out of order");
    }
    let common = feed.len().min(other.len());
    for (a, b) in feed.iter().zip(&other).take(common) {
        assert_eq!(
            a.0, b.0,
            "both survivors' feeds carry the same events in order"
        );
    }
    // Before the kill: from nothing. After the takeover: from what the database held
    // when the new leader won, up to the cut.
    let mut before = Replay::default();
    for e in routing_events(&feed, 0, took_over_at) {
        before.apply(&e);
    }
    let mut after = Replay::as_of(&db_final, took_over_at);
    let after_events = routing_events(&feed, took_over_at, cut_at);
    for e in &after_events {
        after.apply(e);
    }
    assert!(
        after.kinds.get("offered").copied().unwrap_or(0) > 0,
        "the new leader offered work: {:?}",
        after.kinds
    );

    // Agents on nodes that survived the kill kept getting offers.
    for (agent, feed) in agents.iter().zip(&agent_feeds) {
        if agent.home == first {
            continue;
        }
        let offers_after = feed
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, arrived)| e["type"] == "offer.created" && *arrived > killed_at)
            .count();
        assert!(
            offers_after > 0,
            "{} on {} got no offer after the kill",
            agent.id,
            names[agent.home]
        );
    }
    for s in servers.iter().flatten() {
        assert!(!s.log().contains("panicked"), "{}", s.log());
    }
    let mut answers: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for a in &acts {
        *answers.entry((a.kind, a.status)).or_default() += 1;
    }
    let refused: Vec<usize> = servers
        .iter()
        .flatten()
        .map(|s| s.log().matches("routing step not persisted").count())
        .collect();
    eprintln!(
        "{} requests {answers:?}; {snapshots} snapshots; routing steps refused per surviving \
         node {refused:?}; leaders {} → {} → {}; feed before the kill {:?}, between the \
         takeover and the cut {:?}",
        acts.len(),
        names[first],
        names[second],
        names[third],
        before.kinds,
        after.kinds
    );

    for task in background {
        task.abort();
    }
    for s in servers.into_iter().flatten() {
        s.kill().await;
    }
    delete_stream(&stream).await;
    drop(db);
}
