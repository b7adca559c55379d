//! Helpers for Switchboard's end-to-end tests: start the real `switchboard`
//! binary on `127.0.0.1:0` with a fresh data folder, a stand-in provider that
//! speaks Twilio's API, and signed webhooks.
//!
//! The binary and the plugins must be built first (`scripts/test.sh` does it):
//! the binary is looked up beside the test executable, or at `$SWITCHBOARD_BIN`.

pub mod cluster;
pub mod crm;
pub mod crm_oauth;
pub mod mail;
pub mod mailproviders;
pub mod meta;
pub mod oauth;
pub mod routing_db;
pub mod voice;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Twilio test credentials the servers are installed with.
pub const ACCOUNT_SID: &str = "AC0000000000000000000000000000e2e0";
/// The Twilio auth token (a secret: it must never show in API output or logs).
pub const AUTH_TOKEN: &str = "e2e-secret-auth-token-5f3a";
/// The number replies come from.
pub const FROM_NUMBER: &str = "+15005550006";
/// Telegram test credentials.
pub const TELEGRAM_SECRET: &str = "e2e-telegram-webhook-secret";

/// The built `switchboard` binary.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHBOARD_BIN").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/switchboard
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("switchboard");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p switchboard` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Where `plugins/build.sh` put the built plugins.
pub fn plugin_dist() -> PathBuf {
    std::env::var_os("SWITCHBOARD_PLUGIN_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"))
}

/// A fresh PostgreSQL database on the local server, dropped on drop.
pub struct PgDatabase {
    /// Its URL.
    pub url: String,
    name: String,
}

impl PgDatabase {
    /// Creates `sb_e2e_<random>`. Fails loudly if PostgreSQL is not there.
    pub async fn create() -> PgDatabase {
        use sqlx::Connection;
        let name = format!("sb_e2e_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut conn = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth) is required");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        PgDatabase {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One recorded request to the stand-in provider.
#[derive(Debug, Clone)]
pub struct ProviderRequest {
    /// Request path.
    pub path: String,
    /// The Authorization header.
    pub authorization: Option<String>,
    /// Form fields in order.
    pub form: Vec<(String, String)>,
}

impl ProviderRequest {
    /// The first value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct ProviderState {
    requests: Vec<ProviderRequest>,
    fail_next: u32,
}

/// A local HTTP server standing in for Twilio's Messages API.
#[derive(Clone)]
pub struct FakeTwilio {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<ProviderState>>,
}

async fn twilio_messages(
    State(state): State<Arc<Mutex<ProviderState>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let mut s = state.lock().unwrap();
    s.requests.push(ProviderRequest {
        path: uri.path().to_string(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        form: form_urlencoded::parse(&body).into_owned().collect(),
    });
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"code": 20500, "message": "down for the test"})),
        );
    }
    let n = s.requests.len();
    (
        StatusCode::CREATED,
        axum::Json(json!({"sid": format!("SMout{n:04}"), "status": "queued"})),
    )
}

impl FakeTwilio {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeTwilio {
        let state = Arc::new(Mutex::new(ProviderState::default()));
        let app = axum::Router::new()
            .fallback(axum::routing::post(twilio_messages))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeTwilio { base, state }
    }

    /// Answer the next `n` requests with 503.
    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().fail_next = n;
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<ProviderRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<ProviderRequest> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let r = self.requests();
            if r.len() >= n || tokio::time::Instant::now() > deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Twilio's request signature: HMAC-SHA1 over the URL and the sorted params.
pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<_> = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Options for a server start.
#[derive(Clone, Default)]
pub struct Options {
    /// `postgres://…`; SQLite in the data folder when `None`.
    pub database_url: Option<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl Options {
    /// Options with these environment variables (SQLite).
    pub fn env(vars: &[(&str, &str)]) -> Options {
        Options {
            env: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Options::default()
        }
    }
}

/// Posts a Twilio-style form with `http` (any client, e.g. one bound to another
/// loopback address) and the given signature (or none); returns status and body.
pub async fn post_form(
    http: &reqwest::Client,
    url: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> (u16, String) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = signature {
        req = req.header("X-Twilio-Signature", s);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A running `switchboard serve` and its data folder.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A bearer token of an admin.
    pub token: String,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The data folder (kept until the server is dropped).
    pub data: Arc<tempfile::TempDir>,
    /// Options it was started with.
    pub options: Options,
    /// The SIP address (UDP and TCP), when voice runs.
    pub sip: Option<std::net::SocketAddr>,
    /// The WebRTC endpoint's address, when voice runs.
    pub webrtc: Option<std::net::SocketAddr>,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

fn command(data: &Path, options: &Options) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env("SWITCHBOARD_DATA_DIR", data)
        .env("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_LOG", "info")
        // Voice on loopback ports of its own, so servers run side by side.
        .env("SWITCHBOARD_SIP_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_WEBRTC_ADDR", "127.0.0.1:0")
        .env_remove("SWITCHBOARD_PUBLIC_URL")
        .current_dir(data)
        .kill_on_drop(true);
    if let Some(url) = &options.database_url {
        cmd.env("SWITCHBOARD_DATABASE_URL", url);
    }
    for (k, v) in &options.env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a CLI command against the data folder and returns its stdout.
pub async fn cli(data: &Path, options: &Options, args: &[&str]) -> String {
    let out = command(data, options)
        .args(args)
        .output()
        .await
        .expect("run switchboard");
    assert!(
        out.status.success(),
        "switchboard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Admin credentials the tests log in with.
pub const ADMIN_EMAIL: &str = "admin@e2e.test";
/// Its password.
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

/// Creates the admin and installs sms-twilio (pointed at `twilio`) and
/// telegram-bot into a fresh data folder.
pub async fn provision(options: &Options, twilio: &FakeTwilio) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    cli(
        data.path(),
        options,
        &[
            "admin",
            "create-user",
            "--email",
            ADMIN_EMAIL,
            "--password",
            ADMIN_PASSWORD,
            "--role",
            "admin",
        ],
    )
    .await;
    let dist = plugin_dist();
    let sms = dist.join("sms-twilio");
    let api_base = format!("api_base={}", twilio.base);
    cli(
        data.path(),
        options,
        &[
            "plugin",
            "install",
            sms.to_str().unwrap(),
            "--config",
            &format!("account_sid={ACCOUNT_SID}"),
            "--config",
            &format!("auth_token={AUTH_TOKEN}"),
            "--config",
            &format!("from_number={FROM_NUMBER}"),
            "--config",
            &api_base,
            "--allow-host",
            &twilio.base,
        ],
    )
    .await;
    let tg = dist.join("telegram-bot");
    cli(
        data.path(),
        options,
        &[
            "plugin",
            "install",
            tg.to_str().unwrap(),
            "--config",
            "bot_token=123:e2e",
            "--config",
            &format!("webhook_secret={TELEGRAM_SECRET}"),
        ],
    )
    .await;
    data
}

impl Server {
    /// Provisions a fresh data folder and starts the server.
    pub async fn start(options: Options, twilio: &FakeTwilio) -> Server {
        let data = provision(&options, twilio).await;
        Server::start_in(Arc::new(data), options).await
    }

    /// Starts the server on an existing data folder.
    pub async fn start_in(data: Arc<tempfile::TempDir>, options: Options) -> Server {
        let mut child = command(data.path(), &options)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn switchboard serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut voice = (None, None);
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("voice: SIP on ") {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    voice = (
                        words.first().and_then(|w| w.parse().ok()),
                        words.last().and_then(|w| w.parse().ok()),
                    );
                }
                if let Some(rest) = line.strip_prefix("switchboard listening on ") {
                    return rest.split_whitespace().next().map(str::to_string);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("server did not start; stderr:\n{}", stderr.lock().unwrap()));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().expect("login token").to_string();
        Server {
            base,
            token,
            http,
            data,
            options,
            sip: voice.0,
            webrtc: voice.1,
            child,
            stderr,
        }
    }

    /// Everything the server wrote to stderr (its log) so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kills the process at once (SIGKILL), like a crash.
    pub async fn kill(mut self) -> (Arc<tempfile::TempDir>, Options) {
        self.child.kill().await.unwrap();
        let _ = self.child.wait().await;
        (self.data.clone(), self.options.clone())
    }

    /// Logs in; returns the bearer token and the agent id.
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let v: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            v["token"].as_str().expect("token").to_string(),
            v["agent"]["id"].as_str().expect("agent id").to_string(),
        )
    }

    /// `METHOD {path}` with `token` and a JSON body; returns status and JSON.
    pub async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url).json(&body),
            _ => self.http.post(url).json(&body),
        };
        let r = req.bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET {path}` with the admin token; returns status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `POST {path}` with the admin token and a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Posts a correctly signed Twilio webhook; returns status and body text.
    pub async fn twilio_webhook(&self, path: &str, params: &[(&str, &str)]) -> (u16, String) {
        let url = format!("{}/hooks/sms-twilio/{path}", self.base);
        let signature = twilio_signature(AUTH_TOKEN, &url, params);
        self.raw_webhook(&url, params, Some(&signature)).await
    }

    /// Posts a Twilio-style form with the given signature (or none).
    pub async fn raw_webhook(
        &self,
        url: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> (u16, String) {
        post_form(&self.http, url, params, signature).await
    }

    /// The status `GET /healthz` answers.
    pub async fn healthz(&self) -> u16 {
        let r = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    /// An inbound SMS from `from` with Twilio's usual fields.
    pub async fn sms(&self, sid: &str, from: &str, body: &str) -> (u16, String) {
        self.twilio_webhook(
            "inbound",
            &[
                ("MessageSid", sid),
                ("SmsSid", sid),
                ("AccountSid", ACCOUNT_SID),
                ("From", from),
                ("To", FROM_NUMBER),
                ("Body", body),
                ("NumMedia", "0"),
                ("SmsStatus", "received"),
            ],
        )
        .await
    }

    /// A Telegram update from `chat_id`.
    pub async fn telegram(&self, update_id: i64, chat_id: i64, message_id: i64, text: &str) -> u16 {
        let update = json!({
            "update_id": update_id,
            "message": {
                "message_id": message_id,
                "date": 1_700_000_000,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": false, "first_name": "Jane"},
                "text": text,
            }
        });
        self.http
            .post(format!("{}/hooks/telegram-bot/update", self.base))
            .header("X-Telegram-Bot-Api-Secret-Token", TELEGRAM_SECRET)
            .json(&update)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Posts a JSON webhook to `/hooks/{plugin}`. `signature`: `None` signs it
    /// as Meta does, `Some("")` sends no signature, `Some(sig)` sends `sig`.
    pub async fn meta_webhook(
        &self,
        plugin: &str,
        body: &Value,
        signature: Option<&str>,
    ) -> (u16, String) {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut req = self
            .http
            .post(format!("{}/hooks/{plugin}", self.base))
            .header("content-type", "application/json")
            .body(bytes.clone());
        let signed = meta::meta_signature(&bytes);
        match signature {
            Some("") => {}
            Some(sig) => req = req.header("X-Hub-Signature-256", sig),
            None => req = req.header("X-Hub-Signature-256", signed),
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// The contact with this identity, if any.
    pub async fn contact_by(&self, identity: &str) -> Option<Value> {
        let encoded: String = form_urlencoded::byte_serialize(identity.as_bytes()).collect();
        let (status, v) = self
            .get(&format!("/api/v1/contacts?identity={encoded}"))
            .await;
        assert_eq!(status, 200, "{v}");
        v["contacts"].as_array().and_then(|a| a.first().cloned())
    }

    /// Polls `check` until it returns `Some` or time runs out.
    pub async fn eventually<T, F, Fut>(&self, within: Duration, mut check: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(v) = check().await {
                return Some(v);
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A WebSocket to the server (realtime or webchat).
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON text message on `socket`, waiting at most 10 s.
pub async fn next_json(socket: &mut Socket) -> Value {
    use futures::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// `from=…&to=…` for a report from yesterday to tomorrow (UTC dates), so a test of
/// today's activity holds across midnight.
pub fn report_range_around_today() -> String {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let day = jiff::Span::new().days(1);
    let (from, to) = (
        today.checked_sub(day).expect("a representable date"),
        today.checked_add(day).expect("a representable date"),
    );
    format!("from={from}&to={to}")
}
