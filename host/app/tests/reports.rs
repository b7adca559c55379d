//! Reports on known journeys, with exact figures, on SQLite and PostgreSQL.
//!
//! Each scenario drives the real application on a manual clock: messages and calls go
//! through `Ingest::commit` and the store's ingest transaction, routing through the
//! routing service and its engine, accepts, transfers and resolves through the task
//! and desk use cases, replies through the outbox; the reports are read back through
//! the reports use case. Calls enter as the voice service enters them (a `call` ingest
//! event, then the caller hanging up), without a SIP leg.
//!
//! PostgreSQL: `SWITCHBOARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`);
//! each test makes its own database and drops it; `SWITCHBOARD_TEST_SKIP_PG=1` skips.

use std::future::Future;
use std::panic::resume_unwind;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;
use switchboard_app::compose::ReplyContent;
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::reports::{ReportKind, ReportRequest};
use switchboard_app::tasks::TransferRequest;
use switchboard_app::{App, AppConfig, Clock, LocalBus};
use switchboard_core::{Direction, HandoffContext, Identity, Role, Sentiment};
use switchboard_store::{
    Agent, CallStarted, InboundMessage, IngestEvent, IngestOutcome, NewAgent, Store,
};

/// 2025-12-01T09:00:00Z, a Monday.
const T0: i64 = 1_764_579_600_000;
const S: i64 = 1_000;
const MIN: i64 = 60 * S;
const DAY: i64 = 24 * 60 * MIN;

const KEY: [u8; 32] = *b"switchboard-test-secret-key-0001";

// ---------------------------------------------------------------- harness

async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::connect(&url, KEY).await.expect("connect sqlite");
    let closer = store.clone();
    let outcome = tokio::spawn(body(store)).await;
    closer.close().await;
    if let Err(e) = outcome {
        resume_unwind(e.into_panic());
    }
}

async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server = std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let server = server.trim_end_matches('/').to_owned();
    let mut admin = match sqlx::postgres::PgConnection::connect(&format!("{server}/postgres")).await
    {
        Ok(c) => c,
        Err(e) if std::env::var("SWITCHBOARD_TEST_SKIP_PG").as_deref() == Ok("1") => {
            eprintln!("note: PostgreSQL unreachable ({e}); skipped");
            return;
        }
        Err(e) => panic!("PostgreSQL at {server} is unreachable: {e}"),
    };
    let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = format!("{server}/{name}");
    let outcome = tokio::spawn(async move {
        let store = Store::connect(&url, KEY).await.expect("connect postgres");
        let closer = store.clone();
        let outcome = tokio::spawn(body(store)).await;
        closer.close().await;
        if let Err(e) = outcome {
            resume_unwind(e.into_panic());
        }
    })
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("drop test database");
    if let Err(e) = outcome {
        resume_unwind(e.into_panic());
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::on_sqlite(super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::on_postgres(super::$name).await;
            }
        }
    )*};
}

/// The application on a manual clock, and what the scenarios do with it.
struct World {
    app: App,
    clock: Clock,
    _data: tempfile::TempDir,
}

fn phone(n: &str) -> Identity {
    Identity::from_normalized("phone", n)
}

fn visitor(id: &str) -> Identity {
    Identity::from_normalized("webchat", id)
}

impl World {
    async fn start(store: Store, reopen_window_ms: i64) -> World {
        let data = tempfile::tempdir().expect("data dir");
        let clock = Clock::manual(T0 - 10 * MIN);
        let plugins = server_plugin_host(&store, Default::default()).expect("plugin host");
        let app = App::start_with_clock(
            store,
            plugins,
            AppConfig {
                public_url: "http://127.0.0.1:9".into(),
                data_dir: data.path().to_path_buf(),
                reopen_window_ms,
                default_region: None,
                dispositions: switchboard_app::desk::default_dispositions(),
                outbox: Default::default(),
                routing: Some(Default::default()),
                login: Default::default(),
                webchat: Default::default(),
                attachments: Default::default(),
            },
            Arc::new(LocalBus::default()),
            clock.clone(),
        )
        .await
        .expect("app");
        World {
            app,
            clock,
            _data: data,
        }
    }

    /// Moves the clock to `T0 + ms`.
    fn at(&self, ms: i64) {
        self.clock.set(T0 + ms);
    }

    async fn agent(&self, name: &str) -> Agent {
        self.app
            .store
            .create_agent(NewAgent {
                email: format!("{}@example.test", name.to_lowercase()),
                name: name.into(),
                role: Role::Agent,
                password_hash: "not-used".into(),
                skills: vec![],
            })
            .await
            .expect("agent")
    }

    async fn presence(&self, agent: &Agent, status: &str) {
        self.app
            .tasks
            .set_presence(agent, "me", status, None)
            .await
            .expect("presence");
    }

    /// Waits until the conversation's live task is on `channel` (routing runs after
    /// the ingest commit, on its own task).
    async fn task_on(&self, conversation: &str, channel: &str) -> String {
        let routing = self.app.routing.as_ref().expect("routing");
        for _ in 0..1000 {
            if let Some(t) = routing.task_of_conversation(conversation).await
                && t.channel == channel
            {
                return t.id.as_str().to_string();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no {channel} task for {conversation}");
    }

    async fn ingest(&self, plugin: &str, channel: &str, event: IngestEvent) -> (String, String) {
        let outcomes = self
            .app
            .ingest
            .commit(plugin, channel, vec![event])
            .await
            .expect("ingest");
        let Some(IngestOutcome::Created {
            conversation_id,
            contact_id,
            ..
        }) = outcomes.into_iter().next()
        else {
            panic!("not stored");
        };
        self.task_on(&conversation_id, channel).await;
        (conversation_id, contact_id)
    }

    /// A customer message; returns (conversation, contact).
    async fn message(&self, plugin: &str, channel: &str, from: Identity) -> (String, String) {
        let id = uuid::Uuid::new_v4().to_string();
        self.ingest(
            plugin,
            channel,
            IngestEvent::InboundMessage(InboundMessage {
                provider_id: id,
                sender: from,
                sender_name: Some("Jane".into()),
                body: "Hello".into(),
                attachments: vec![],
                sent_at_ms: None,
                metadata: Value::Null,
            }),
        )
        .await
    }

    /// A call from `from`, as the voice service records it.
    async fn call(&self, from: Identity) -> (String, String) {
        let id = uuid::Uuid::new_v4().to_string();
        self.ingest(
            "voice",
            "voice",
            IngestEvent::Call(CallStarted {
                provider_id: id,
                party: from.clone(),
                direction: Direction::In,
                body: format!("Call from {}", from.value()),
                data: json!({"direction": "inbound"}),
            }),
        )
        .await
    }

    /// The caller hangs up.
    async fn hang_up(&self, conversation: &str) {
        let routing = self.app.routing.as_ref().expect("routing");
        assert!(routing.cancel_conversation_task(conversation).await);
    }

    /// The agent accepts their offer for `conversation`.
    async fn accept(&self, agent: &Agent, conversation: &str) {
        let routing = self.app.routing.as_ref().expect("routing");
        for _ in 0..1000 {
            let offers = routing.offers(&agent.id).await;
            let found = offers["offers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["conversation_id"] == conversation)
                .and_then(|o| o["reservation"]["id"].as_str().map(str::to_owned));
            if let Some(id) = found {
                self.app.tasks.accept(agent, &id).await.expect("accept");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no offer for {} on {conversation}", agent.name);
    }

    async fn reply(&self, agent: &Agent, conversation: &str) {
        self.app
            .outbox
            .reply(
                &agent.id,
                conversation,
                ReplyContent::text("Let me check."),
                Some("webchat"),
            )
            .await
            .expect("reply");
    }

    async fn resolve(&self, agent: &Agent, conversation: &str) {
        self.app
            .desk
            .resolve(agent, conversation, "resolved", None)
            .await
            .expect("resolve");
    }

    async fn report(&self, kind: ReportKind, from: &str, to: &str, opts: &[(&str, &str)]) -> Value {
        let mut r = ReportRequest {
            from: from.into(),
            to: to.into(),
            ..Default::default()
        };
        for (k, v) in opts {
            let v = Some(v.to_string());
            match *k {
                "group_by" => r.group_by = v,
                "by" => r.by = v,
                "channel" => r.channel = v,
                "queue" => r.queue = v,
                "agent" => r.agent = v,
                "short_abandon_secs" => r.short_abandon_secs = v.and_then(|v| v.parse().ok()),
                "service_level_secs" => r.service_level_secs = v.and_then(|v| v.parse().ok()),
                "fcr_days" => r.fcr_days = v.and_then(|v| v.parse().ok()),
                other => panic!("unknown option {other}"),
            }
        }
        self.app
            .reports
            .report(kind, &r)
            .await
            .expect("report")
            .to_json()
    }

    async fn drill(
        &self,
        metric: &str,
        from: &str,
        to: &str,
        opts: &[(&str, &str)],
    ) -> Vec<String> {
        let mut r = ReportRequest {
            from: from.into(),
            to: to.into(),
            ..Default::default()
        };
        let mut key = None;
        for (k, v) in opts {
            match *k {
                "by" => r.by = Some(v.to_string()),
                "key" => key = Some(v.to_string()),
                "channel" => r.channel = Some(v.to_string()),
                "short_abandon_secs" => r.short_abandon_secs = v.parse().ok(),
                other => panic!("unknown option {other}"),
            }
        }
        let answer = self
            .app
            .reports
            .drill(&r, metric, key.as_deref(), 1000)
            .await
            .expect("drill");
        answer["conversations"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| {
                row["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    async fn export(&self, from: &str, to: &str) -> Vec<String> {
        let mut lines = self
            .app
            .reports
            .conversations_csv(&ReportRequest {
                from: from.into(),
                to: to.into(),
                ..Default::default()
            })
            .expect("export");
        let mut out = Vec::new();
        while let Some(line) = lines.next().await {
            out.push(line.expect("line"));
        }
        out
    }
}

/// The row of `rows` whose `column` is `value`.
fn row<'a>(report: &'a Value, column: &str, value: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r[column] == value)
        .unwrap_or_else(|| panic!("no row with {column} = {value} in {report:#}"))
}

fn only_row(report: &Value) -> &Value {
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{report:#}");
    &rows[0]
}

fn ratio(a: i64, b: i64) -> Value {
    json!(a as f64 / b as f64)
}

// ---------------------------------------------------------------- scripts

/// A chat, then the same customer calls, and the call is resolved once. Day `day`.
async fn chat_then_call(w: &World, day: i64, n: u32) -> (Agent, String) {
    let base = day * DAY;
    let ada = w.agent(&format!("Ada{n}")).await;
    w.at(base - MIN);
    w.presence(&ada, "available").await;
    w.at(base);
    let (conversation, contact) = w
        .message("webchat", "webchat", visitor(&format!("v-{n}")))
        .await;
    w.app
        .store
        .add_identity(&contact, &phone(&format!("+1555000{n:04}")))
        .await
        .expect("phone");
    w.at(base + 10 * S);
    w.accept(&ada, &conversation).await;
    w.at(base + 30 * S);
    w.reply(&ada, &conversation).await;
    w.at(base + 120 * S);
    let (same, _) = w.call(phone(&format!("+1555000{n:04}"))).await;
    assert_eq!(same, conversation, "the call joins the chat's conversation");
    w.at(base + 125 * S);
    w.accept(&ada, &conversation).await;
    let routing = w.app.routing.as_ref().expect("routing");
    w.at(base + 150 * S);
    routing.record_hold(&conversation, true).await;
    w.at(base + 170 * S);
    routing.record_hold(&conversation, false).await;
    w.at(base + 245 * S);
    w.hang_up(&conversation).await;
    w.at(base + 275 * S);
    w.resolve(&ada, &conversation).await;
    w.at(base + 300 * S);
    w.presence(&ada, "offline").await;
    (ada, conversation)
}

/// Four calls to the voice queue: abandoned after 4 s and 8 s, answered after 10 s and
/// 60 s. Day `day`.
async fn abandons(w: &World, day: i64, n: u32) -> Vec<String> {
    let base = day * DAY;
    let bo = w.agent(&format!("Bo{n}")).await;
    w.at(base);
    let (a, _) = w.call(phone(&format!("+1555100{n:04}"))).await;
    w.at(base + 4 * S);
    w.hang_up(&a).await;
    w.at(base + 10 * S);
    let (b, _) = w.call(phone(&format!("+1555200{n:04}"))).await;
    w.at(base + 18 * S);
    w.hang_up(&b).await;
    w.at(base + 20 * S);
    let (c, _) = w.call(phone(&format!("+1555300{n:04}"))).await;
    w.at(base + 30 * S);
    w.presence(&bo, "available").await;
    w.accept(&bo, &c).await;
    w.at(base + 40 * S);
    let (d, _) = w.call(phone(&format!("+1555400{n:04}"))).await;
    w.at(base + 100 * S);
    w.hang_up(&c).await;
    w.resolve(&bo, &c).await;
    w.accept(&bo, &d).await;
    w.at(base + 160 * S);
    w.hang_up(&d).await;
    w.resolve(&bo, &d).await;
    w.presence(&bo, "offline").await;
    vec![a, b, c, d]
}

/// A chat taken by Cy, transferred with context to Di, who resolves it. Day `day`.
async fn transfer(w: &World, day: i64, n: u32) -> (Agent, Agent, String) {
    let base = day * DAY;
    let cy = w.agent(&format!("Cy{n}")).await;
    let di = w.agent(&format!("Di{n}")).await;
    w.at(base);
    w.presence(&cy, "available").await;
    let (conversation, _) = w
        .message("webchat", "webchat", visitor(&format!("t-{n}")))
        .await;
    w.at(base + 5 * S);
    w.accept(&cy, &conversation).await;
    w.at(base + 50 * S);
    w.presence(&di, "available").await;
    w.at(base + 60 * S);
    let task = w.task_on(&conversation, "webchat").await;
    w.app
        .tasks
        .transfer(
            &cy,
            &task,
            TransferRequest {
                queue: None,
                agent_id: Some(di.id.clone()),
                context: Some(HandoffContext {
                    reason: "Refund for order 1234".into(),
                    steps: vec!["Checked the order".into()],
                    commitments: vec![],
                    sentiment: Sentiment::Neutral,
                    summary: "Wants a refund; order found.".into(),
                }),
            },
        )
        .await
        .expect("transfer");
    w.at(base + 70 * S);
    w.accept(&di, &conversation).await;
    w.at(base + 200 * S);
    w.resolve(&di, &conversation).await;
    w.presence(&cy, "offline").await;
    w.presence(&di, "offline").await;
    (cy, di, conversation)
}

/// Two chats handled at once by Ed for 10 minutes out of 20 available. Day `day`.
async fn two_chats(w: &World, day: i64, n: u32) -> Agent {
    let base = day * DAY;
    let ed = w.agent(&format!("Ed{n}")).await;
    w.at(base);
    w.presence(&ed, "available").await;
    let (one, _) = w
        .message("webchat", "webchat", visitor(&format!("c1-{n}")))
        .await;
    let (two, _) = w
        .message("webchat", "webchat", visitor(&format!("c2-{n}")))
        .await;
    w.accept(&ed, &one).await;
    w.accept(&ed, &two).await;
    w.at(base + 10 * MIN);
    w.resolve(&ed, &one).await;
    w.resolve(&ed, &two).await;
    w.at(base + 20 * MIN);
    w.presence(&ed, "offline").await;
    ed
}

/// Resolved, then the same customer texts on day 3. Day `day`.
async fn text_back(w: &World, day: i64, n: u32) -> (String, String) {
    let base = day * DAY;
    let fay = w.agent(&format!("Fay{n}")).await;
    w.at(base);
    w.presence(&fay, "available").await;
    let number = phone(&format!("+1555500{n:04}"));
    let (first, _) = w.message("sms-twilio", "sms", number.clone()).await;
    w.at(base + 12 * S);
    w.accept(&fay, &first).await;
    w.at(base + 5 * MIN);
    w.resolve(&fay, &first).await;
    w.presence(&fay, "offline").await;
    w.at(base + 3 * DAY);
    let (second, _) = w.message("sms-twilio", "sms", number).await;
    (first, second)
}

// ---------------------------------------------------------------- scenarios

async fn chat_then_call_resolved_once(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let (ada, conversation) = chat_then_call(&w, 0, 1).await;

    let ops = w
        .report(
            ReportKind::Operations,
            "2025-12-01",
            "2025-12-01",
            &[("by", "channel")],
        )
        .await;
    let chat = row(&ops, "channel", "webchat");
    assert_eq!(chat["arrived"], 1);
    assert_eq!(chat["handled"], 1);
    assert_eq!(chat["avg_queue_ms"], 10_000);
    assert_eq!(chat["avg_first_response_ms"], 30_000);
    assert_eq!(
        chat["avg_handle_ms"], 110_000,
        "chat from accept to the call"
    );
    assert_eq!(chat["service_level"], 1.0);
    let voice = row(&ops, "channel", "voice");
    assert_eq!(voice["arrived"], 1);
    assert_eq!(voice["handled"], 1);
    assert_eq!(voice["avg_queue_ms"], 5_000);
    assert_eq!(voice["avg_first_response_ms"], 5_000, "a call's answer");
    assert_eq!(
        voice["avg_handle_ms"], 150_000,
        "talk 100 s + hold 20 s + wrap-up 30 s"
    );
    assert_eq!(voice["avg_talk_ms"], 100_000);
    assert_eq!(voice["avg_hold_ms"], 20_000);
    assert_eq!(voice["avg_wrap_ms"], 30_000);

    // Before the window closes, first contact resolution is pending.
    w.at(DAY);
    let j = w
        .report(ReportKind::Journeys, "2025-12-01", "2025-12-01", &[])
        .await;
    let day = only_row(&j);
    assert_eq!(day["journeys"], 1);
    assert_eq!(day["resolved"], 1);
    assert_eq!(day["fcr_pending"], 1);
    assert_eq!(day["fcr_rate"], Value::Null);
    assert_eq!(day["channel_switches"], 1);
    assert_eq!(day["switches_per_journey"], 1.0);
    assert_eq!(day["multi_channel"], 1);
    assert_eq!(day["multi_channel_share"], 1.0);
    assert_eq!(
        day["avg_resolution_ms"], 275_000,
        "first contact to final resolution"
    );
    assert_eq!(day["arrivals"], 1);
    assert_eq!(day["repeat_contacts"], 0);

    // Seven days later with no new contact: settled yes.
    w.at(8 * DAY);
    let j = w
        .report(ReportKind::Journeys, "2025-12-01", "2025-12-01", &[])
        .await;
    let day = only_row(&j);
    assert_eq!(day["fcr_yes"], 1);
    assert_eq!(day["fcr_pending"], 0);
    assert_eq!(day["fcr_rate"], 1.0);
    assert_eq!(
        w.drill("fcr_yes", "2025-12-01", "2025-12-01", &[]).await,
        vec![conversation.clone()]
    );
    // By first channel: the journey started on webchat.
    let j = w
        .report(
            ReportKind::Journeys,
            "2025-12-01",
            "2025-12-01",
            &[("by", "channel")],
        )
        .await;
    assert_eq!(row(&j, "channel", "webchat")["fcr_yes"], 1);

    // Ada: available 09:59–10:05 (6 min), busy 110 s on the chat, 150 s on the call.
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-01",
            &[("by", "agent")],
        )
        .await;
    let r = row(&a, "agent", &ada.id);
    assert_eq!(r["agent_name"], "Ada1");
    assert_eq!(r["staffed_ms"], 360_000);
    assert_eq!(r["busy_ms"], 260_000);
    assert_eq!(r["occupancy"], ratio(260_000, 360_000));
    assert_eq!(r["avg_concurrency"], 1.0);
    assert_eq!(
        r["utilization"],
        ratio(110_000 * 25 + 150_000 * 100, 360_000 * 100)
    );
    assert_eq!(r["handled"], 2);

    // The export: one row, both channels, FCR settled.
    let lines = w.export("2025-12-01", "2025-12-01").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("conversation_id,display_id,status,contact_id"));
    let cells: Vec<&str> = lines[1].trim_end().split(',').collect();
    assert_eq!(cells[0], conversation);
    assert_eq!(cells[2], "resolved");
    assert_eq!(cells[5], "webchat voice");
    assert_eq!(cells[6], "1");
    assert_eq!(cells[8], ada.id);
    assert_eq!(cells[10], "2025-12-01T09:00:00+00:00");
    assert_eq!(cells[14], "275000");
    assert_eq!(cells[17], "yes");
    assert_eq!(cells[18], "resolved");
}

async fn resolved_then_texts_on_day_three(store: Store) {
    // A one-day reopen window: the text on day 3 opens a new conversation.
    let w = World::start(store, DAY).await;
    let (first, second) = text_back(&w, 0, 1).await;
    assert_ne!(first, second);
    w.at(20 * DAY);
    let j = w
        .report(
            ReportKind::Journeys,
            "2025-12-01",
            "2025-12-04",
            &[("group_by", "total")],
        )
        .await;
    let all = only_row(&j);
    assert_eq!(all["journeys"], 2);
    assert_eq!(all["fcr_no"], 1, "the customer came back within 7 days");
    assert_eq!(all["fcr_pending"], 0);
    assert_eq!(all["fcr_yes"], 0, "the second conversation is not resolved");
    assert_eq!(all["fcr_rate"], 0.0);
    assert_eq!(all["arrivals"], 2);
    assert_eq!(all["repeat_contacts"], 1);
    assert_eq!(all["repeat_contact_rate"], 0.5);
    assert_eq!(
        w.drill("fcr_no", "2025-12-01", "2025-12-04", &[]).await,
        vec![first.clone()]
    );
    assert_eq!(
        w.drill("repeat_contacts", "2025-12-01", "2025-12-04", &[])
            .await,
        vec![second.clone()]
    );
    // Day by day: the repeat is counted on the day it came.
    let j = w
        .report(ReportKind::Journeys, "2025-12-01", "2025-12-04", &[])
        .await;
    assert_eq!(j["rows"].as_array().unwrap().len(), 4, "every day is a row");
    assert_eq!(row(&j, "period", "2025-12-01")["repeat_contacts"], 0);
    assert_eq!(row(&j, "period", "2025-12-02")["journeys"], 0);
    assert_eq!(row(&j, "period", "2025-12-04")["repeat_contacts"], 1);
    assert_eq!(row(&j, "period", "2025-12-04")["repeat_contact_rate"], 1.0);
    // With a 2-day window the same history is a first contact resolution.
    let j = w
        .report(
            ReportKind::Journeys,
            "2025-12-01",
            "2025-12-04",
            &[("group_by", "total"), ("fcr_days", "2")],
        )
        .await;
    assert_eq!(only_row(&j)["fcr_yes"], 1);
    assert_eq!(only_row(&j)["repeat_contacts"], 0);
}

async fn resolved_then_texts_back_reopens(store: Store) {
    // The default seven-day reopen window: the text reopens the same conversation.
    let w = World::start(store, 7 * DAY).await;
    let (first, second) = text_back(&w, 0, 1).await;
    assert_eq!(first, second);
    w.at(20 * DAY);
    let j = w
        .report(
            ReportKind::Journeys,
            "2025-12-01",
            "2025-12-04",
            &[("group_by", "total")],
        )
        .await;
    let all = only_row(&j);
    assert_eq!(all["journeys"], 1);
    assert_eq!(all["fcr_no"], 1);
    assert_eq!(all["reopened"], 1);
    assert_eq!(all["arrivals"], 2);
    assert_eq!(all["repeat_contacts"], 1);
}

async fn abandon_after_four_seconds_is_short(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let calls = abandons(&w, 0, 1).await;
    let ops = w
        .report(
            ReportKind::Operations,
            "2025-12-01",
            "2025-12-01",
            &[("by", "channel")],
        )
        .await;
    let v = row(&ops, "channel", "voice");
    assert_eq!(v["arrived"], 4);
    assert_eq!(v["handled"], 2);
    assert_eq!(v["abandoned"], 2);
    assert_eq!(v["short_abandoned"], 1, "4 s < 5 s");
    assert_eq!(
        v["abandon_rate"],
        ratio(1, 3),
        "1 counted abandon of 3 settled"
    );
    assert_eq!(v["answered_in_sl"], 1);
    assert_eq!(v["service_level"], ratio(1, 3), "answered within 20 s of 3");
    assert_eq!(v["avg_queue_ms"], 35_000);
    assert_eq!(v["p90_queue_ms"], 60_000);
    assert_eq!(v["max_queue_ms"], 60_000);
    assert_eq!(v["avg_abandon_ms"], 8_000, "short abandons excluded");
    assert_eq!(
        w.drill("short_abandoned", "2025-12-01", "2025-12-01", &[])
            .await,
        [calls[0].clone()]
    );
    assert_eq!(
        w.drill("abandoned_counted", "2025-12-01", "2025-12-01", &[])
            .await,
        [calls[1].clone()]
    );
    // With a 3 s threshold the 4 s abandon counts.
    let ops = w
        .report(
            ReportKind::Operations,
            "2025-12-01",
            "2025-12-01",
            &[("by", "channel"), ("short_abandon_secs", "3")],
        )
        .await;
    let v = row(&ops, "channel", "voice");
    assert_eq!(v["short_abandoned"], 0);
    assert_eq!(v["abandon_rate"], ratio(2, 4));
    assert_eq!(v["service_level"], ratio(1, 4));
    // CSV of the same table.
    let r = w
        .app
        .reports
        .report(
            ReportKind::Operations,
            &ReportRequest {
                from: "2025-12-01".into(),
                to: "2025-12-01".into(),
                by: Some("channel".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .to_csv();
    let lines: Vec<&str> = r.lines().collect();
    assert!(lines[0].starts_with("period,from,to,channel,arrived,handled,abandoned"));
    assert!(
        lines[1].starts_with("2025-12-01,2025-12-01,2025-12-01,voice,4,2,2,1,"),
        "{}",
        lines[1]
    );
}

async fn transfer_with_context(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let (cy, di, conversation) = transfer(&w, 0, 1).await;
    let ops = w
        .report(ReportKind::Operations, "2025-12-01", "2025-12-01", &[])
        .await;
    let d = only_row(&ops);
    assert_eq!(d["handled"], 1);
    assert_eq!(d["transferred"], 1);
    assert_eq!(d["transfers"], 1);
    assert_eq!(d["transfer_rate"], 1.0);
    assert_eq!(d["handoffs"], 1);
    assert_eq!(d["handoffs_with_context"], 1);
    assert_eq!(d["context_transfer_rate"], 1.0);
    assert_eq!(d["avg_queue_ms"], 5_000, "to the first answer");
    assert_eq!(d["avg_handle_ms"], 55_000 + 130_000, "both agents' time");
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-01",
            &[("by", "agent")],
        )
        .await;
    assert_eq!(row(&a, "agent", &cy.id)["handled"], 1);
    assert_eq!(row(&a, "agent", &cy.id)["transferred_out"], 1);
    assert_eq!(row(&a, "agent", &cy.id)["avg_handle_ms"], 55_000);
    assert_eq!(row(&a, "agent", &di.id)["handled"], 1);
    assert_eq!(row(&a, "agent", &di.id)["avg_handle_ms"], 130_000);
    let j = w
        .report(ReportKind::Journeys, "2025-12-01", "2025-12-01", &[])
        .await;
    assert_eq!(only_row(&j)["context_transfer_rate"], 1.0);
    assert_eq!(
        w.drill("handoffs", "2025-12-01", "2025-12-01", &[]).await,
        vec![conversation.clone()]
    );
    let lines = w.export("2025-12-01", "2025-12-01").await;
    let cells: Vec<&str> = lines[1].trim_end().split(',').collect();
    assert_eq!(cells[8], format!("{} {}", cy.id, di.id));
    assert_eq!(cells[19], "1");
    assert_eq!(cells[20], "1");
}

async fn two_chats_at_once(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let ed = two_chats(&w, 0, 1).await;
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-01",
            &[("by", "agent")],
        )
        .await;
    let r = row(&a, "agent", &ed.id);
    assert_eq!(r["staffed_ms"], 20 * MIN);
    assert_eq!(r["busy_ms"], 10 * MIN);
    assert_eq!(r["idle_ms"], 10 * MIN);
    assert_eq!(
        r["occupancy"], 0.5,
        "busy 10 of 20 minutes, whatever the chats"
    );
    assert_eq!(r["avg_concurrency"], 2.0, "two chats at once while busy");
    assert_eq!(
        r["utilization"], 0.25,
        "2 × 25 of 100 capacity for half the time"
    );
    assert_eq!(r["utilization_by_channel"], json!({"webchat": 0.25}));
    assert_eq!(r["handled"], 2);
    assert_eq!(r["avg_handle_ms"], 10 * MIN);
    // A week report holds the same day.
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-07",
            &[("group_by", "week")],
        )
        .await;
    let week = only_row(&a);
    assert_eq!(week["period"], "2025-W49");
    assert_eq!(week["occupancy"], 0.5);
    // Available 23:00–01:00 UTC: an hour on each day.
    let gus = w.agent("Gus").await;
    w.at(14 * 60 * MIN);
    w.presence(&gus, "available").await;
    w.at(16 * 60 * MIN);
    w.presence(&gus, "offline").await;
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-02",
            &[("by", "agent"), ("agent", &gus.id)],
        )
        .await;
    let rows = a["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{a:#}");
    assert_eq!(rows[0]["staffed_ms"], 60 * MIN);
    assert_eq!(rows[1]["staffed_ms"], 60 * MIN);
    assert_eq!(rows[1]["occupancy"], 0.0);
}

async fn rebuild_gives_the_live_numbers(store: Store) {
    let w = World::start(store, DAY).await;
    chat_then_call(&w, 0, 1).await;
    abandons(&w, 1, 2).await;
    transfer(&w, 2, 3).await;
    two_chats(&w, 3, 4).await;
    text_back(&w, 4, 5).await;
    w.at(30 * DAY);
    let total = [("group_by", "total")];
    let ops = w
        .report(ReportKind::Operations, "2025-12-01", "2025-12-10", &total)
        .await;
    assert_eq!(only_row(&ops)["arrived"], 11);
    let live = snapshot(&w).await;
    let stats = w.app.store.rebuild_reports().await.expect("rebuild");
    assert!(stats.routing_entries > 50 && stats.events > 20, "{stats:?}");
    assert_eq!(stats.conversations, 10);
    let rebuilt = snapshot(&w).await;
    assert_eq!(live.len(), rebuilt.len());
    for (a, b) in live.iter().zip(&rebuilt) {
        assert_eq!(a, b);
    }
    // Figures that were checked exactly in the scenarios hold after the rebuild too.
    let ops = w
        .report(ReportKind::Operations, "2025-12-01", "2025-12-10", &total)
        .await;
    assert_eq!(only_row(&ops)["arrived"], 11);
    assert_eq!(only_row(&ops)["short_abandoned"], 1);
    let a = w
        .report(ReportKind::Agents, "2025-12-04", "2025-12-04", &[])
        .await;
    assert_eq!(only_row(&a)["occupancy"], 0.5);
    assert_eq!(only_row(&a)["avg_concurrency"], 2.0);
}

/// Every report, grouped every way, the drill-downs and the export.
async fn snapshot(w: &World) -> Vec<Value> {
    let (from, to) = ("2025-12-01", "2025-12-10");
    let mut out = Vec::new();
    for kind in [
        ReportKind::Operations,
        ReportKind::Agents,
        ReportKind::Journeys,
        ReportKind::Experience,
    ] {
        for by in ["", "channel", "queue", "agent"] {
            if kind == ReportKind::Agents && (by == "channel" || by == "queue") {
                continue;
            }
            for group_by in ["day", "total"] {
                let mut opts = vec![("group_by", group_by)];
                if !by.is_empty() {
                    opts.push(("by", by));
                }
                out.push(w.report(kind, from, to, &opts).await);
            }
        }
    }
    for metric in switchboard_store::DRILL_METRICS {
        out.push(json!(w.drill(metric, from, to, &[]).await));
    }
    out.push(json!(w.export(from, to).await));
    out
}

both_backends!(
    chat_then_call_resolved_once,
    resolved_then_texts_on_day_three,
    resolved_then_texts_back_reopens,
    abandon_after_four_seconds_is_short,
    transfer_with_context,
    two_chats_at_once,
    rebuild_gives_the_live_numbers,
);
