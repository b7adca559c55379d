//! What the scenario tests share: the harness that runs a body on SQLite and on
//! PostgreSQL, the application on a manual clock (`World`) with the things people do
//! in it (messages, calls, accepts, replies, resolves, reports), and short scripts of
//! whole journeys on a given day.
//!
//! Every test file that uses it declares `mod support;`; each uses a subset, hence the
//! `dead_code` allowance.
//!
//! PostgreSQL: `SWITCHBOARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`);
//! each test makes its own database and drops it; `SWITCHBOARD_TEST_SKIP_PG=1` skips.

#![allow(dead_code)]

use std::future::Future;
use std::panic::resume_unwind;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;
use switchboard_app::compose::ReplyContent;
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::reports::{ReportKind, ReportRequest};
use switchboard_app::routing::NodeConfig;
use switchboard_app::tasks::TransferRequest;
use switchboard_app::{App, AppConfig, Clock, LocalBus};
use switchboard_core::{Direction, HandoffContext, Identity, Role, Sentiment};
use switchboard_store::{
    Agent, CallStarted, InboundMessage, IngestEvent, IngestOutcome, NewAgent, Store,
};

/// 2025-12-01T09:00:00Z, a Monday.
pub const T0: i64 = 1_764_579_600_000;
pub const S: i64 = 1_000;
pub const MIN: i64 = 60 * S;
pub const DAY: i64 = 24 * 60 * MIN;

pub const KEY: [u8; 32] = *b"switchboard-test-secret-key-0001";

// ---------------------------------------------------------------- harness

pub async fn on_sqlite<F, Fut>(body: F)
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

pub async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    on_postgres_url(|store, _url| body(store)).await;
}

/// [`on_postgres`], giving the body the database's URL too (to start more nodes).
pub async fn on_postgres_url<F, Fut>(body: F)
where
    F: FnOnce(Store, String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_postgres_database(|url| async move {
        let store = Store::connect(&url, KEY).await.expect("connect postgres");
        let closer = store.clone();
        let outcome = tokio::spawn(body(store, url)).await;
        closer.close().await;
        if let Err(e) = outcome {
            resume_unwind(e.into_panic());
        }
    })
    .await;
}

/// Runs `body` with the URL of a fresh PostgreSQL database, dropped afterwards
/// (for tests that connect their own stores, as nodes do).
pub async fn with_postgres_database<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
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
    let outcome = tokio::spawn(body(format!("{server}/{name}"))).await;
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

/// Runs `body` with the URL of a fresh SQLite file.
pub async fn with_sqlite_database<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    if let Err(e) = tokio::spawn(body(url)).await {
        resume_unwind(e.into_panic());
    }
}

/// `both_backends!(a, b)` makes `a::sqlite` and `a::postgres` tests of the scenario
/// functions `a` and `b`, each taking a fresh `Store`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::support::on_sqlite(super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::support::on_postgres(super::$name).await;
            }
        }
    )*};
}
pub(crate) use both_backends;

/// The application on a manual clock, and what the scenarios do with it.
pub struct World {
    pub app: App,
    pub clock: Clock,
    _data: tempfile::TempDir,
}

pub fn phone(n: &str) -> Identity {
    Identity::from_normalized("phone", n)
}

pub fn visitor(id: &str) -> Identity {
    Identity::from_normalized("webchat", id)
}

impl World {
    pub async fn start(store: Store, reopen_window_ms: i64) -> World {
        World::start_node(store, reopen_window_ms, Default::default()).await
    }

    /// [`World::start`] as one node of several on one database.
    pub async fn start_node(store: Store, reopen_window_ms: i64, node: NodeConfig) -> World {
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
                crm: Default::default(),
                file_store: Default::default(),
                node,
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
    pub fn at(&self, ms: i64) {
        self.clock.set(T0 + ms);
    }

    pub async fn agent(&self, name: &str) -> Agent {
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

    /// A new agent who comes available at `T0 + ms`, the start of most scripts.
    pub async fn available_agent(&self, name: &str, ms: i64) -> Agent {
        let agent = self.agent(name).await;
        self.at(ms);
        self.presence(&agent, "available").await;
        agent
    }

    pub async fn presence(&self, agent: &Agent, status: &str) {
        self.app
            .tasks
            .set_presence(agent, "me", status, None)
            .await
            .expect("presence");
    }

    /// Waits until the conversation's live task is on `channel` (routing runs after
    /// the ingest commit, on its own task).
    pub async fn task_on(&self, conversation: &str, channel: &str) -> String {
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

    pub async fn ingest(
        &self,
        plugin: &str,
        channel: &str,
        event: IngestEvent,
    ) -> (String, String) {
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
    pub async fn message(&self, plugin: &str, channel: &str, from: Identity) -> (String, String) {
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
    pub async fn call(&self, from: Identity) -> (String, String) {
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
    pub async fn hang_up(&self, conversation: &str) {
        let routing = self.app.routing.as_ref().expect("routing");
        assert!(routing.cancel_conversation_task(conversation).await);
    }

    /// The agent accepts their offer for `conversation`.
    pub async fn accept(&self, agent: &Agent, conversation: &str) {
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

    pub async fn reply(&self, agent: &Agent, conversation: &str) {
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

    pub async fn resolve(&self, agent: &Agent, conversation: &str) {
        self.app
            .desk
            .resolve(agent, conversation, "resolved", None)
            .await
            .expect("resolve");
    }

    pub async fn report(
        &self,
        kind: ReportKind,
        from: &str,
        to: &str,
        opts: &[(&str, &str)],
    ) -> Value {
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

    pub async fn drill(
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

    pub async fn export(&self, from: &str, to: &str) -> Vec<String> {
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
pub fn row<'a>(report: &'a Value, column: &str, value: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r[column] == value)
        .unwrap_or_else(|| panic!("no row with {column} = {value} in {report:#}"))
}

pub fn only_row(report: &Value) -> &Value {
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{report:#}");
    &rows[0]
}

pub fn ratio(a: i64, b: i64) -> Value {
    json!(a as f64 / b as f64)
}

// ---------------------------------------------------------------- scripts

/// A chat, then the same customer calls, and the call is resolved once. Day `day`.
pub async fn chat_then_call(w: &World, day: i64, n: u32) -> (Agent, String) {
    let base = day * DAY;
    let ada = w.available_agent(&format!("Ada{n}"), base - MIN).await;
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
pub async fn abandons(w: &World, day: i64, n: u32) -> Vec<String> {
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
pub async fn transfer(w: &World, day: i64, n: u32) -> (Agent, Agent, String) {
    let base = day * DAY;
    let cy = w.available_agent(&format!("Cy{n}"), base).await;
    let di = w.agent(&format!("Di{n}")).await;
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
pub async fn two_chats(w: &World, day: i64, n: u32) -> Agent {
    let base = day * DAY;
    let ed = w.available_agent(&format!("Ed{n}"), base).await;
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
pub async fn text_back(w: &World, day: i64, n: u32) -> (String, String) {
    let base = day * DAY;
    let fay = w.available_agent(&format!("Fay{n}"), base).await;
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
