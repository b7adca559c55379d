//! Routing under concurrent load, on SQLite and on PostgreSQL: six agents and
//! a supervisor hammer the real server for a few seconds — presence flapping,
//! accepting and rejecting whatever they are offered (sometimes an agent and
//! the supervisor race on the same offer), wrapping up, completing and
//! transferring — while sixty SMS arrive. Then:
//!
//! - the supervisor's realtime feed, replayed in order, never shows a task
//!   offered or accepted while someone holds it, a decision on an offer that
//!   is not open, or an agent holding more than their capacity at any step;
//! - every API answer agrees with that feed (one winner per offer; a task an
//!   agent completed was theirs);
//! - every snapshot of the database taken during the run, and the final one,
//!   is consistent: each task's state matches its offers, at most one live
//!   offer per task, no agent over capacity;
//! - the final database agrees with the feed and the API: sixty tasks, none
//!   lost, no task accepted twice without a transfer in between.
//!
//! One agent is slow: most of its offers time out, so expiries (and the
//! engine setting it away after missed offers) race with everything else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_e2e::routing_db::{check_snapshot, read_db};
use switchboard_e2e::*;
use tokio::time::Instant;

const AGENTS: usize = 6;
const SMS: usize = 60;
/// Worker tasks per agent, so one agent's actions race with each other too.
const WORKERS_PER_AGENT: usize = 2;
/// Supervisor tasks racing agents on their offers.
const RACERS: usize = 2;
/// How long the hammering lasts, and how many requests each worker may make.
const HAMMER: Duration = Duration::from_secs(5);
const MAX_OPS: usize = 250;
/// Every agent's capacity and an SMS task's cost (the defaults).
const CAPACITY: u32 = 100;
const SMS_COST: u32 = 25;
const TRANSFER_QUEUE: &str = "escalations";
/// The queues a task may be in.
const QUEUES: &[&str] = &["messaging", TRANSFER_QUEUE];

/// One answered request.
#[derive(Debug, Clone)]
struct Act {
    /// `accept`, `reject`, `wrapup`, `complete`, `transfer`, `presence`,
    /// `offers`, `steal` (accepting another agent's offer) or `sms`.
    kind: &'static str,
    /// Who called: an agent id, or `admin`.
    actor: String,
    /// The reservation or task acted on.
    target: String,
    status: u16,
}

#[derive(Default)]
struct Journal {
    acts: Mutex<Vec<Act>>,
    /// Reservation id → agent, of every offer any worker saw.
    seen_offers: Mutex<Vec<(String, String)>>,
}

impl Journal {
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
}

/// An agent as the test drives it.
struct Agent {
    id: String,
    token: String,
    /// Lets most offers time out.
    slow: bool,
    /// Tasks this agent accepted and has not yet completed or transferred.
    held: Mutex<BTreeSet<String>>,
}

struct Ctx {
    base: String,
    admin: String,
    http: reqwest::Client,
    agents: Vec<Arc<Agent>>,
    journal: Journal,
    deadline: Instant,
}

impl Ctx {
    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
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
            // A dropped connection is as bad as a 5xx.
            Err(e) => (599, json!({ "transport": e.to_string() })),
        }
    }

    fn agent(&self, id: &str) -> &Arc<Agent> {
        self.agents
            .iter()
            .find(|a| a.id == id)
            .expect("known agent")
    }

    fn running(&self, ops: usize) -> bool {
        Instant::now() < self.deadline && ops < MAX_OPS
    }

    async fn accept(&self, token: &str, actor: &str, reservation: &str, task: &str, owner: &str) {
        let (status, _) = self
            .call(
                token,
                "POST",
                &format!("/api/v1/reservations/{reservation}/accept"),
                json!({}),
            )
            .await;
        self.journal.record("accept", actor, reservation, status);
        if status == 200 {
            self.agent(owner)
                .held
                .lock()
                .unwrap()
                .insert(task.to_string());
        }
    }

    async fn reject(&self, token: &str, actor: &str, reservation: &str) {
        let (status, _) = self
            .call(
                token,
                "POST",
                &format!("/api/v1/reservations/{reservation}/reject"),
                json!({}),
            )
            .await;
        self.journal.record("reject", actor, reservation, status);
    }
}

fn chance(percent: u32) -> bool {
    rand::random_range(0..100) < percent
}

/// One of an agent's workers: flaps presence, answers offers, finishes or
/// transfers what it holds, and now and then tries to take someone else's offer.
async fn worker(ctx: Arc<Ctx>, me: Arc<Agent>) {
    let mut ops = 0;
    while ctx.running(ops) {
        ops += 1;
        if me.slow {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        match rand::random_range(0..100) {
            0..12 => {
                let status = if chance(75) { "available" } else { "away" };
                let (code, _) = ctx
                    .call(
                        &me.token,
                        "PUT",
                        "/api/v1/agents/me/presence",
                        json!({"status": status}),
                    )
                    .await;
                ctx.journal.record("presence", &me.id, status, code);
            }
            12..60 => {
                let (code, v) = ctx
                    .call(&me.token, "GET", "/api/v1/agents/me/offers", json!(null))
                    .await;
                ctx.journal.record("offers", &me.id, "me", code);
                for offer in v["offers"].as_array().cloned().unwrap_or_default() {
                    let reservation = offer["reservation"]["id"].as_str().unwrap().to_string();
                    let task = offer["task"]["id"].as_str().unwrap().to_string();
                    ctx.journal
                        .seen_offers
                        .lock()
                        .unwrap()
                        .push((reservation.clone(), me.id.clone()));
                    if me.slow && chance(85) {
                        continue;
                    }
                    if chance(65) {
                        ctx.accept(&me.token, &me.id, &reservation, &task, &me.id)
                            .await;
                    } else if chance(70) {
                        ctx.reject(&me.token, &me.id, &reservation).await;
                    }
                }
            }
            60..85 => {
                let (task, holding) = {
                    let held = me.held.lock().unwrap();
                    let pick = (!held.is_empty())
                        .then(|| held.iter().nth(rand::random_range(0..held.len())).cloned());
                    (pick.flatten(), held.len())
                };
                let Some(task) = task else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                // Agents keep their last task, so some work is still held at the end.
                let (kind, body) = match rand::random_range(0..100) {
                    _ if holding < 2 => ("wrapup", json!({})),
                    0..30 => ("wrapup", json!({})),
                    30..70 => ("complete", json!({})),
                    _ => ("transfer", json!({"queue": TRANSFER_QUEUE})),
                };
                let (code, _) = ctx
                    .call(
                        &me.token,
                        "POST",
                        &format!("/api/v1/tasks/{task}/{kind}"),
                        body,
                    )
                    .await;
                ctx.journal.record(kind, &me.id, &task, code);
                let gone = (code == 200 && kind != "wrapup") || code == 403 || code == 404;
                if gone {
                    me.held.lock().unwrap().remove(&task);
                }
            }
            85..92 => {
                // Someone else's offer: never ours to take.
                let theirs = {
                    let seen = ctx.journal.seen_offers.lock().unwrap();
                    seen.iter()
                        .rev()
                        .take(20)
                        .find(|(_, agent)| *agent != me.id)
                        .map(|(r, _)| r.clone())
                };
                if let Some(reservation) = theirs {
                    let (code, _) = ctx
                        .call(
                            &me.token,
                            "POST",
                            &format!("/api/v1/reservations/{reservation}/accept"),
                            json!({}),
                        )
                        .await;
                    ctx.journal.record("steal", &me.id, &reservation, code);
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(rand::random_range(1..10))).await,
        }
    }
}

/// A supervisor racing agents (and itself) on the same offer.
async fn racer(ctx: Arc<Ctx>) {
    let mut ops = 0;
    while ctx.running(ops) {
        ops += 1;
        // Not the slow agent: its offers are left to time out.
        let agent = ctx.agents[rand::random_range(1..ctx.agents.len())].clone();
        let (code, v) = ctx
            .call(
                &ctx.admin,
                "GET",
                &format!("/api/v1/agents/{}/offers", agent.id),
                json!(null),
            )
            .await;
        ctx.journal.record("offers", "admin", &agent.id, code);
        let Some(offer) = v["offers"].as_array().and_then(|o| o.first()).cloned() else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let reservation = offer["reservation"]["id"].as_str().unwrap().to_string();
        let task = offer["task"]["id"].as_str().unwrap().to_string();
        let (r, t, a) = (&reservation, &task, &agent.id);
        match rand::random_range(0..3) {
            0 => {
                tokio::join!(
                    ctx.accept(&agent.token, a, r, t, a),
                    ctx.accept(&ctx.admin, "admin", r, t, a),
                );
            }
            1 => {
                tokio::join!(
                    ctx.accept(&agent.token, a, r, t, a),
                    ctx.reject(&ctx.admin, "admin", r),
                );
            }
            _ => {
                tokio::join!(
                    ctx.accept(&ctx.admin, "admin", r, t, a),
                    ctx.accept(&ctx.admin, "admin", r, t, a),
                    ctx.reject(&agent.token, a, r),
                );
            }
        }
    }
}

async fn send_sms(server: &Server, journal: &Journal, range: std::ops::Range<usize>) {
    let sends = range.map(|i| async move {
        let (status, body) = server
            .sms(
                &format!("SMload{i:04}"),
                &format!("+1555777{i:04}"),
                &format!("message {i}"),
            )
            .await;
        assert_eq!(status, 200, "sms {i}: {body}");
        journal.record("sms", "customer", &i.to_string(), status);
    });
    futures::stream::iter(sends)
        .buffer_unordered(6)
        .collect::<Vec<()>>()
        .await;
}

/// Every realtime event the admin (a supervisor) sees, from `hello` on.
async fn supervisor_feed(server: &Server) -> Arc<Mutex<Vec<Value>>> {
    let url = format!(
        "{}/api/v1/realtime?token={}",
        server.base.replacen("http", "ws", 1),
        server.token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    while let Some(Ok(msg)) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg
            && serde_json::from_str::<Value>(&t).unwrap()["type"] == "hello"
        {
            break;
        }
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                sink.lock().unwrap().push(serde_json::from_str(&t).unwrap());
            }
        }
    });
    events
}

/// What the feed says happened, replayed step by step with the invariants
/// checked at every event.
#[derive(Default, Debug)]
struct Replay {
    /// Open offers: task → (reservation, agent).
    reserved: BTreeMap<String, (String, String)>,
    /// Tasks being handled or wrapped up: task → agent.
    assigned: BTreeMap<String, String>,
    /// What each agent holds (offers included), in capacity units.
    load: BTreeMap<String, u32>,
    /// Tasks that ended.
    finished: BTreeSet<String>,
    /// Accepted reservations, and completed tasks with who held them.
    accepted: Vec<String>,
    completed: BTreeMap<String, String>,
    /// Counts per output kind, to show the run exercised them.
    kinds: BTreeMap<String, usize>,
}

impl Replay {
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
                assert!(
                    *load <= CAPACITY,
                    "{agent} over capacity ({load}) with {event}"
                );
                self.reserved
                    .insert(task, (reservation.unwrap(), agent.clone()));
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
                self.accepted.push(open);
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
            "task_transferred" => {
                assert!(!self.reserved.contains_key(&task), "{event}");
                if let Some(agent) = self.assigned.remove(&task) {
                    *self.load.get_mut(&agent).unwrap() -= SMS_COST;
                }
            }
            "task_completed" => {
                let agent = self
                    .assigned
                    .remove(&task)
                    .unwrap_or_else(|| panic!("completed while nobody held it: {event}"));
                assert_eq!(output["agent"].as_str(), Some(agent.as_str()), "{event}");
                *self.load.get_mut(&agent).unwrap() -= SMS_COST;
                self.finished.insert(task.clone());
                self.completed.insert(task, agent);
            }
            "task_canceled" => panic!("nothing cancels tasks in this test: {event}"),
            _ => {}
        }
    }

    /// Agent → tasks they hold (offers, assigned, wrapping) at the end.
    fn holdings(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (task, (_, agent)) in &self.reserved {
            out.entry(agent.clone()).or_default().insert(task.clone());
        }
        for (task, agent) in &self.assigned {
            out.entry(agent.clone()).or_default().insert(task.clone());
        }
        out
    }
}

/// A task row and its reservation rows (by offer number).
async fn hammer(options: Options, db_url: impl FnOnce(&Server) -> String) {
    let twilio = FakeTwilio::start().await;
    let data = provision(&options, &twilio).await;
    let credentials: Vec<(String, String)> = (0..AGENTS)
        .map(|i| (format!("load{i}@e2e.test"), format!("load-{i}-password")))
        .collect();
    for (email, password) in &credentials {
        cli(
            data.path(),
            &options,
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
    let server = Server::start_in(Arc::new(data), options).await;
    let db_url = db_url(&server);

    let mut agents = Vec::new();
    for (i, (email, password)) in credentials.iter().enumerate() {
        let v: Value = server
            .http
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        agents.push(Arc::new(Agent {
            id: v["agent"]["id"].as_str().unwrap().to_string(),
            token: v["token"].as_str().unwrap().to_string(),
            slow: i == 0,
            held: Mutex::default(),
        }));
    }
    let (status, v) = server
        .post("/api/v1/queues", json!({"name": TRANSFER_QUEUE}))
        .await;
    assert_eq!(status, 201, "{v}");
    let feed = supervisor_feed(&server).await;

    let ctx = Arc::new(Ctx {
        base: server.base.clone(),
        admin: server.token.clone(),
        http: server.http.clone(),
        agents,
        journal: Journal::default(),
        deadline: Instant::now() + HAMMER,
    });
    for agent in &ctx.agents {
        let (status, v) = ctx
            .call(
                &agent.token,
                "PUT",
                "/api/v1/agents/me/presence",
                json!({"status": "available"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }

    // Half the SMS arrive first, the other half while the agents work.
    send_sms(&server, &ctx.journal, 0..SMS / 2).await;
    let mut workers = Vec::new();
    for agent in &ctx.agents {
        for _ in 0..WORKERS_PER_AGENT {
            workers.push(tokio::spawn(worker(ctx.clone(), agent.clone())));
        }
    }
    for _ in 0..RACERS {
        workers.push(tokio::spawn(racer(ctx.clone())));
    }
    // Snapshots of the database while everything runs.
    let checker = {
        let (ctx, url) = (ctx.clone(), db_url.clone());
        tokio::spawn(async move {
            let mut snapshots = 0;
            while Instant::now() < ctx.deadline {
                check_snapshot(&read_db(&url).await, QUEUES, SMS_COST, CAPACITY);
                snapshots += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            snapshots
        })
    };
    send_sms(&server, &ctx.journal, SMS / 2..SMS).await;
    let snapshots = checker.await.expect("every snapshot is consistent");
    assert!(snapshots > 5, "only {snapshots} snapshots");
    for w in workers {
        tokio::time::timeout(HAMMER + Duration::from_secs(60), w)
            .await
            .expect("workers end in time")
            .expect("no worker panicked");
    }

    // Every SMS became a task (routing runs after the webhook is answered).
    let all_there = server
        .eventually(Duration::from_secs(30), || async {
            (read_db(&db_url).await.len() >= SMS).then_some(())
        })
        .await;
    assert!(
        all_there.is_some(),
        "{SMS} tasks expected:\n{}",
        server.log()
    );

    // Quiesce: everyone goes away, so no offer is open and no timer fires.
    for agent in &ctx.agents {
        let (status, v) = ctx
            .call(
                &agent.token,
                "PUT",
                "/api/v1/agents/me/presence",
                json!({"status": "away"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let mut seen = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = feed.lock().unwrap().len();
        if now == seen {
            break;
        }
        seen = now;
    }

    let health = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the server is still healthy");
    let (status, _) = server.get("/api/v1/queues").await;
    assert_eq!(status, 200);
    let log = server.log();
    for bad in ["routing step not persisted", "offer failed", "panicked"] {
        assert!(!log.contains(bad), "`{bad}` in the server log:\n{log}");
    }

    // ---- The API answers -----------------------------------------------------
    let acts = ctx.journal.acts();
    let failed: Vec<&Act> = acts
        .iter()
        .filter(|a| !matches!(a.status, 200 | 201 | 403 | 404 | 409))
        .collect();
    assert!(failed.is_empty(), "unexpected answers: {failed:?}");
    let ok = |kind: &str| {
        acts.iter()
            .filter(|a| a.kind == kind && a.status == 200)
            .count()
    };
    for kind in [
        "accept", "reject", "complete", "wrapup", "transfer", "presence",
    ] {
        assert!(
            ok(kind) > 0,
            "no successful {kind} in {} requests",
            acts.len()
        );
    }
    assert_eq!(ok("sms"), SMS);
    let stolen: Vec<&Act> = acts
        .iter()
        .filter(|a| a.kind == "steal" && a.status == 200)
        .collect();
    assert!(
        stolen.is_empty(),
        "an agent took another's offer: {stolen:?}"
    );
    let mut decisions: BTreeMap<&str, Vec<&Act>> = BTreeMap::new();
    for a in &acts {
        if matches!(a.kind, "accept" | "reject") && a.status == 200 {
            decisions.entry(&a.target).or_default().push(a);
        }
    }
    for (reservation, won) in &decisions {
        assert_eq!(
            won.len(),
            1,
            "{reservation} decided more than once: {won:?}"
        );
    }
    let raced = acts
        .iter()
        .filter(|a| a.actor == "admin" && matches!(a.kind, "accept" | "reject"))
        .count();
    assert!(raced > 0, "the supervisor never raced an agent");

    // ---- The realtime feed ---------------------------------------------------
    let events = feed.lock().unwrap().clone();
    assert!(
        events.iter().all(|e| e["type"] != "resync"),
        "the feed lost events"
    );
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "feed out of order");
    let mut replay = Replay::default();
    for e in events.iter().filter(|e| e["type"] == "task.updated") {
        replay.apply(e);
    }
    let accepted_by_api: BTreeSet<&str> = acts
        .iter()
        .filter(|a| a.kind == "accept" && a.status == 200)
        .map(|a| a.target.as_str())
        .collect();
    let accepted_in_feed: BTreeSet<&str> = replay.accepted.iter().map(String::as_str).collect();
    assert_eq!(
        replay.accepted.len(),
        accepted_in_feed.len(),
        "accepted twice"
    );
    assert_eq!(accepted_by_api, accepted_in_feed, "API and feed disagree");
    for a in acts
        .iter()
        .filter(|a| a.kind == "complete" && a.status == 200)
    {
        assert_eq!(
            replay.completed.get(&a.target),
            Some(&a.actor),
            "{} completed {}, which it did not hold",
            a.actor,
            a.target
        );
    }
    assert!(
        replay.reserved.is_empty(),
        "offers open after everyone left"
    );

    // ---- The database --------------------------------------------------------
    let db = read_db(&db_url).await;
    assert_eq!(db.len(), SMS, "one task per SMS, none lost or doubled");
    let holdings = check_snapshot(&db, QUEUES, SMS_COST, CAPACITY);
    assert_eq!(holdings, replay.holdings(), "database and feed disagree");
    let mut transfers: BTreeMap<&str, usize> = BTreeMap::new();
    for a in acts
        .iter()
        .filter(|a| a.kind == "transfer" && a.status == 200)
    {
        *transfers.entry(&a.target).or_default() += 1;
    }
    let mut accepted_rows = 0;
    for (id, t) in &db {
        let accepted: Vec<_> = t.offers.iter().filter(|r| r.2 == "accepted").collect();
        accepted_rows += accepted.len();
        let transfers = transfers.get(id.as_str()).copied().unwrap_or(0);
        assert!(
            accepted.len() <= 1 + transfers,
            "{id} accepted {} times with {transfers} transfers: {t:?}",
            accepted.len(),
        );
        if t.state == "completed" {
            assert_eq!(
                replay.completed.get(id),
                t.agent.as_ref(),
                "{id} completed by its holder: {t:?}"
            );
        }
    }
    assert_eq!(
        accepted_rows,
        accepted_by_api.len(),
        "every accept persisted"
    );
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for t in db.values() {
        *states.entry(&t.state).or_default() += 1;
    }
    assert_eq!(
        states.get("completed").copied().unwrap_or(0),
        replay.completed.len(),
        "every completion persisted"
    );

    eprintln!(
        "{} requests, {snapshots} snapshots; {} accepted, {} rejects, {} transfers; \
         tasks end {states:?}; feed outputs {:?}",
        acts.len(),
        accepted_by_api.len(),
        ok("reject"),
        ok("transfer"),
        replay.kinds
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_routing_never_double_assigns_on_sqlite() {
    let options = Options {
        env: vec![("SWITCHBOARD_ACCEPT_TIMEOUT_MS".into(), "1500".into())],
        ..Options::default()
    };
    hammer(options, |server| {
        format!(
            "sqlite://{}",
            server.data.path().join("switchboard.db").display()
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_routing_never_double_assigns_on_postgres() {
    let db = PgDatabase::create().await;
    let options = Options {
        database_url: Some(db.url.clone()),
        env: vec![("SWITCHBOARD_ACCEPT_TIMEOUT_MS".into(), "1500".into())],
    };
    let url = db.url.clone();
    hammer(options, move |_| url).await;
}
