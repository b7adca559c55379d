//! Typed settings: a TOML file, then `SWITCHBOARD_*` environment variables on
//! top. Unknown keys are errors, and every problem is reported at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Everything `switchboard serve` can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// HTTP listen address.
    pub http_addr: String,
    /// `sqlite://…` or `postgres://…`; default a SQLite file in the data dir.
    pub database_url: Option<String>,
    /// Where the database file, installed plugins and the secret key live.
    pub data_dir: PathBuf,
    /// The URL providers call; default `http://{bound address}`.
    pub public_url: Option<String>,
    /// A resolved conversation reopens when the customer writes within this.
    pub reopen_window_secs: u64,
    /// Region for phone numbers without a country code (`US`, `GB`…).
    pub default_region: Option<String>,
    /// tracing filter, e.g. `info` or `switchboard=debug`.
    pub log: String,
    /// Plugin sandbox limits.
    pub plugins: PluginSettings,
    /// Outbox retry policy.
    pub outbox: OutboxSettings,
    /// Routing timers.
    pub routing: RoutingSettings,
    /// The outcomes agents choose from when resolving (`[[dispositions]]` with `code`
    /// and `label`; `SWITCHBOARD_DISPOSITIONS=code:Label,code2:Label 2`).
    pub dispositions: Vec<switchboard_app::desk::Disposition>,
    /// Voice: SIP, RTP and WebRTC.
    pub voice: VoiceSettings,
    /// Login throttling.
    pub login: LoginSettings,
    /// WebSocket limits.
    pub sockets: SocketSettings,
    /// Request body limits.
    pub bodies: BodySettings,
    /// HTTP connection and request limits.
    pub http: HttpSettings,
    /// Failed webhook verifications per source.
    pub webhooks: WebhookSettings,
    /// What webchat visitors may do.
    pub webchat: WebchatSettings,
    /// Files of messages.
    pub attachments: AttachmentSettings,
    /// The operator's time zone, an IANA name (`Europe/Paris`); reports count days,
    /// weeks and months in it (`SWITCHBOARD_TIMEZONE`, default `UTC`).
    pub timezone: String,
    /// Report thresholds.
    pub reports: ReportSettings,
    /// CRM lookups and write-back.
    pub crm: CrmSettings,
    /// Several nodes on one database.
    pub cluster: ClusterSettings,
}

/// `[cluster]`: what several nodes sharing one PostgreSQL database need.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// The NATS server (with JetStream) that carries events between the nodes
    /// (`SWITCHBOARD_NATS_URL`, `nats://host:4222`); unset, events stay in this process.
    pub nats_url: Option<String>,
    /// The JetStream stream of this cluster's events, the same on every node
    /// (`SWITCHBOARD_NATS_STREAM`, default `switchboard`).
    pub stream: String,
    /// Where attachments, call recordings and installed plugin components live:
    /// `folder` (the default: under the data directory, one node) or `database`
    /// (in the database, every node reads them; the data directory is this node's
    /// cache) (`SWITCHBOARD_FILE_STORE`).
    pub file_store: switchboard_app::FileStore,
    /// This node's name among several on one PostgreSQL database
    /// (`SWITCHBOARD_NODE_ID`; default the host name and HTTP port).
    pub node_id: Option<String>,
    /// How often a node that does not lead routing tries to, and the leader checks
    /// its database session (`SWITCHBOARD_LEADER_POLL_MS`, default 1000).
    pub leader_poll_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            nats_url: None,
            stream: "switchboard".into(),
            file_store: Default::default(),
            node_id: None,
            leader_poll_ms: 1000,
        }
    }
}

impl ClusterSettings {
    /// The event bus across nodes, when a NATS server is set.
    pub fn bus(&self) -> Option<switchboard_app::events_nats::NatsBusConfig> {
        self.nats_url.as_ref().map(|url| {
            switchboard_app::events_nats::NatsBusConfig::new(url.clone(), self.stream.clone())
        })
    }
}

/// `[reports]`: the default thresholds of the reports (a request may give others).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// Abandons sooner than this are short abandons
    /// (`SWITCHBOARD_REPORT_SHORT_ABANDON_SECS`).
    pub short_abandon_secs: u64,
    /// The service level's threshold (`SWITCHBOARD_REPORT_SERVICE_LEVEL_SECS`).
    pub service_level_secs: u64,
    /// First contact resolution's window in days (`SWITCHBOARD_REPORT_FCR_DAYS`).
    pub fcr_days: u64,
}

impl Default for ReportSettings {
    fn default() -> Self {
        use switchboard_core::reports as r;
        ReportSettings {
            short_abandon_secs: (r::DEFAULT_SHORT_ABANDON_MS / 1000) as u64,
            service_level_secs: (r::DEFAULT_SERVICE_LEVEL_MS / 1000) as u64,
            fcr_days: r::DEFAULT_FCR_WINDOW_DAYS as u64,
        }
    }
}

/// `[attachments]`: files customers send and agents attach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentSettings {
    /// Largest file kept, inbound or uploaded (`SWITCHBOARD_ATTACHMENT_MAX_BYTES`).
    pub max_bytes: u64,
    /// Copy attempts before an inbound file is marked failed
    /// (`SWITCHBOARD_ATTACHMENT_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Delay before the first retry of a failed copy, in ms; doubles each attempt
    /// (`SWITCHBOARD_ATTACHMENT_RETRY_BASE_MS`).
    pub retry_base_ms: u64,
    /// How long a signed link to an outbound file stays valid, in seconds
    /// (`SWITCHBOARD_ATTACHMENT_URL_TTL_SECS`).
    pub url_ttl_secs: u64,
}

impl Default for AttachmentSettings {
    fn default() -> Self {
        let d = switchboard_app::attachments::AttachmentConfig::default();
        AttachmentSettings {
            max_bytes: d.max_bytes,
            max_attempts: d.max_attempts,
            retry_base_ms: d.retry_base.as_millis() as u64,
            url_ttl_secs: d.url_ttl.as_secs(),
        }
    }
}

/// `[http]`: limits on each HTTP connection and request (slowloris and friends).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Time to send a request head, and to stay idle between requests
    /// (`SWITCHBOARD_HTTP_HEADER_TIMEOUT_MS`).
    pub header_timeout_ms: u64,
    /// Time to send a request and get its answer (`SWITCHBOARD_HTTP_REQUEST_TIMEOUT_MS`).
    pub request_timeout_ms: u64,
    /// The largest request head in bytes, at least 8192
    /// (`SWITCHBOARD_HTTP_MAX_HEADER_BYTES`).
    pub max_header_bytes: usize,
    /// The most header fields in a request (`SWITCHBOARD_HTTP_MAX_HEADERS`).
    pub max_headers: usize,
    /// Proxies whose `X-Forwarded-For` is believed: addresses or CIDR blocks
    /// (`SWITCHBOARD_TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7`).
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let d = switchboard_api::limits::ConnectionLimits::default();
        HttpSettings {
            header_timeout_ms: d.header_timeout.as_millis() as u64,
            request_timeout_ms: d.request_timeout.as_millis() as u64,
            max_header_bytes: d.max_header_bytes,
            max_headers: d.max_headers,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[webhooks]`: sources whose webhooks keep failing verification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Failures per minute per source, 0 = off (`SWITCHBOARD_WEBHOOK_FAILURES_PER_MINUTE`).
    pub failures_per_minute: u32,
    /// Failures in a burst (`SWITCHBOARD_WEBHOOK_FAILURE_BURST`).
    pub failure_burst: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let d = switchboard_api::limits::WebhookLimits::default();
        WebhookSettings {
            failures_per_minute: d.failures_per_minute,
            failure_burst: d.failure_burst,
        }
    }
}

/// `[webchat]`: what visitors, who have no account, may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebchatSettings {
    /// New chats per client address and minute (`SWITCHBOARD_WEBCHAT_STARTS_PER_MINUTE`).
    pub starts_per_minute: u32,
    /// Messages per visitor and minute (`SWITCHBOARD_WEBCHAT_MESSAGES_PER_MINUTE`).
    pub messages_per_minute: u32,
    /// Messages in a burst (`SWITCHBOARD_WEBCHAT_MESSAGE_BURST`).
    pub message_burst: u32,
}

impl Default for WebchatSettings {
    fn default() -> Self {
        let d = switchboard_app::webchat::WebchatLimits::default();
        WebchatSettings {
            starts_per_minute: d.starts_per_minute,
            messages_per_minute: d.messages_per_minute,
            message_burst: d.message_burst,
        }
    }
}

/// `[bodies]`: the largest request body per kind of route, in bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BodySettings {
    /// `/api/v1` (`SWITCHBOARD_API_BODY_BYTES`).
    pub api_bytes: usize,
    /// `/webchat/v1` (`SWITCHBOARD_WEBCHAT_BODY_BYTES`).
    pub webchat_bytes: usize,
    /// `/hooks` (`SWITCHBOARD_WEBHOOK_BODY_BYTES`).
    pub webhook_bytes: usize,
}

impl Default for BodySettings {
    fn default() -> Self {
        let d = switchboard_api::limits::BodyLimits::default();
        BodySettings {
            api_bytes: d.api_bytes,
            webchat_bytes: d.webchat_bytes,
            webhook_bytes: d.webhook_bytes,
        }
    }
}

/// `[sockets]`: WebSockets of agents and webchat visitors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocketSettings {
    /// Open sockets per agent or visitor (`SWITCHBOARD_WS_PER_CLIENT`).
    pub per_client: usize,
    /// Open sockets on this host (`SWITCHBOARD_WS_TOTAL`).
    pub total: usize,
    /// The largest message a client may send (`SWITCHBOARD_WS_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// Messages a client may send per second on a socket
    /// (`SWITCHBOARD_WS_MESSAGES_PER_SECOND`).
    pub messages_per_second: u32,
    /// Messages in a burst (`SWITCHBOARD_WS_MESSAGE_BURST`).
    pub message_burst: u32,
}

impl Default for SocketSettings {
    fn default() -> Self {
        let d = switchboard_api::sockets::SocketLimits::default();
        SocketSettings {
            per_client: d.per_owner,
            total: d.total,
            max_message_bytes: d.max_message_bytes,
            messages_per_second: d.messages_per_second,
            message_burst: d.message_burst,
        }
    }
}

/// `[login]`: failed logins per client address and per account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Failures before a wait (`SWITCHBOARD_LOGIN_FREE_FAILURES`).
    pub free_failures: u32,
    /// The first wait, doubling per further failure (`SWITCHBOARD_LOGIN_DELAY_MS`).
    pub delay_ms: u64,
    /// The longest wait (`SWITCHBOARD_LOGIN_MAX_DELAY_MS`).
    pub max_delay_ms: u64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        let d = switchboard_app::login::ThrottleConfig::default();
        LoginSettings {
            free_failures: d.free_failures,
            delay_ms: d.base_delay_ms,
            max_delay_ms: d.max_delay_ms,
        }
    }
}

/// `[voice]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceSettings {
    /// Run voice at all (`SWITCHBOARD_VOICE=off` turns it off).
    pub enabled: bool,
    /// SIP over UDP and TCP (`SWITCHBOARD_SIP_ADDR`).
    pub sip_addr: String,
    /// SIP over TLS (`SWITCHBOARD_SIP_TLS_ADDR`), with `tls_cert` and `tls_key` (PEM).
    pub sip_tls_addr: Option<String>,
    /// Certificate chain for SIP over TLS (`SWITCHBOARD_SIP_TLS_CERT`).
    pub tls_cert: Option<PathBuf>,
    /// Private key for SIP over TLS (`SWITCHBOARD_SIP_TLS_KEY`).
    pub tls_key: Option<PathBuf>,
    /// RTP ports of SIP legs, `low-high` (`SWITCHBOARD_RTP_PORTS`).
    pub rtp_ports: String,
    /// The ICE-lite WebRTC endpoint (`SWITCHBOARD_WEBRTC_ADDR`).
    pub webrtc_addr: String,
    /// The IP written in SDP, Contact and WebRTC candidates (`SWITCHBOARD_MEDIA_IP`);
    /// default the SIP address, or 127.0.0.1 when that is 0.0.0.0.
    pub media_ip: Option<String>,
    /// Record answered calls (`SWITCHBOARD_RECORD_CALLS=false` to stop).
    pub record_calls: bool,
    /// Digest realm of desk phones.
    pub realm: String,
    /// Hang up a caller silent this long (`SWITCHBOARD_RTP_TIMEOUT_SECS`).
    pub rtp_timeout_secs: u64,
    /// SIP requests a second from one address that is not a trunk
    /// (`SWITCHBOARD_SIP_SOURCE_RATE`, 0: no limit).
    pub source_rate: u32,
    /// Their burst (`SWITCHBOARD_SIP_SOURCE_BURST`).
    pub source_burst: u32,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        VoiceSettings {
            enabled: true,
            sip_addr: "0.0.0.0:5060".into(),
            sip_tls_addr: None,
            tls_cert: None,
            tls_key: None,
            rtp_ports: "20000-20999".into(),
            webrtc_addr: "0.0.0.0:5062".into(),
            media_ip: None,
            record_calls: true,
            realm: "switchboard".into(),
            rtp_timeout_secs: 60,
            source_rate: switchboard_voice::VoiceConfig::default().source_rate.0,
            source_burst: switchboard_voice::VoiceConfig::default().source_rate.1,
        }
    }
}

impl VoiceSettings {
    /// The service's configuration (validated by [`Settings::load`]).
    pub fn config(&self) -> anyhow::Result<switchboard_voice::VoiceConfig> {
        let (low, high) = parse_ports(&self.rtp_ports)
            .ok_or_else(|| anyhow::anyhow!("rtp_ports {:?} is not low-high", self.rtp_ports))?;
        let tls = match (&self.sip_tls_addr, &self.tls_cert, &self.tls_key) {
            (Some(addr), Some(cert), Some(key)) => Some((addr.parse()?, cert.clone(), key.clone())),
            (None, _, _) => None,
            _ => bail!("sip_tls_addr needs tls_cert and tls_key"),
        };
        Ok(switchboard_voice::VoiceConfig {
            sip_addr: self.sip_addr.parse()?,
            tls,
            rtp_ports: (low, high),
            webrtc_addr: self.webrtc_addr.parse()?,
            public_ip: self.media_ip.as_deref().map(str::parse).transpose()?,
            record_calls: self.record_calls,
            realm: self.realm.clone(),
            rtp_timeout: std::time::Duration::from_secs(self.rtp_timeout_secs.max(1)),
            source_rate: (self.source_rate, self.source_burst),
        })
    }
}

fn parse_ports(text: &str) -> Option<(u16, u16)> {
    let (low, high) = text.split_once('-')?;
    let (low, high): (u16, u16) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
    (low >= 1024 && low < high).then_some((low, high))
}

/// `[routing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSettings {
    /// How long an agent has to accept an offer.
    pub accept_timeout_ms: u64,
    /// How long a returning customer waits for the agent who served them last.
    pub sticky_wait_ms: u64,
    /// Offers missed in a row before an agent is set away (0: never).
    pub max_missed_offers: u32,
    /// Priority aging: every this many ms of waiting…
    pub aging_every_ms: u64,
    /// …a task's priority rises by this much (0: no aging).
    pub aging_step: u32,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        let d = switchboard_routing::EngineConfig::default();
        RoutingSettings {
            accept_timeout_ms: d.accept_timeout_ms,
            sticky_wait_ms: d.sticky_wait_ms,
            max_missed_offers: d.max_missed_offers,
            aging_every_ms: 60_000,
            aging_step: 0,
        }
    }
}

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    /// Deadline of webhook, routing and CRM calls.
    pub call_timeout_ms: u64,
    /// Deadline of `send` calls.
    pub send_timeout_ms: u64,
    /// Linear memory cap per instance.
    pub memory_mb: usize,
    /// Failed calls in a row before quarantine.
    pub quarantine_after: u32,
}

/// `[crm]`: CRM lookups (screen pop) and write-back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrmSettings {
    /// The longest one CRM lookup may take.
    pub lookup_timeout_ms: u64,
    /// The longest a new task waits for CRM enrichment before it is routed.
    pub routing_budget_ms: u64,
    /// How long a CRM answer (or "unknown") is reused.
    pub cache_ttl_secs: u64,
    /// First write-back retry delay; doubles per attempt.
    pub retry_base_ms: u64,
    /// Longest write-back retry delay.
    pub retry_max_ms: u64,
    /// Write-back attempts before a dead letter.
    pub max_attempts: u32,
    /// How long an answered call's write-back waits for its disposition.
    pub disposition_wait_secs: u64,
}

impl Default for CrmSettings {
    fn default() -> Self {
        let d = switchboard_app::crm::CrmConfig::default();
        CrmSettings {
            lookup_timeout_ms: d.lookup_timeout.as_millis() as u64,
            routing_budget_ms: d.routing_budget.as_millis() as u64,
            cache_ttl_secs: d.cache_ttl.as_secs(),
            retry_base_ms: d.retry_base.as_millis() as u64,
            retry_max_ms: d.retry_max.as_millis() as u64,
            max_attempts: d.max_attempts,
            disposition_wait_secs: d.disposition_wait.as_secs(),
        }
    }
}

/// `[outbox]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    /// First retry delay; doubles per attempt.
    pub retry_base_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Attempts before a dead letter.
    pub max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http_addr: "127.0.0.1:8080".into(),
            database_url: None,
            data_dir: PathBuf::from("data"),
            public_url: None,
            reopen_window_secs: 7 * 24 * 3600,
            default_region: None,
            log: "info".into(),
            plugins: PluginSettings::default(),
            outbox: OutboxSettings::default(),
            routing: RoutingSettings::default(),
            dispositions: switchboard_app::desk::default_dispositions(),
            voice: VoiceSettings::default(),
            login: LoginSettings::default(),
            sockets: SocketSettings::default(),
            bodies: BodySettings::default(),
            http: HttpSettings::default(),
            webhooks: WebhookSettings::default(),
            webchat: WebchatSettings::default(),
            attachments: AttachmentSettings::default(),
            timezone: "UTC".into(),
            reports: ReportSettings::default(),
            crm: CrmSettings::default(),
            cluster: ClusterSettings::default(),
        }
    }
}

impl Default for PluginSettings {
    fn default() -> Self {
        let d = switchboard_plugin_host::Limits::default();
        PluginSettings {
            call_timeout_ms: d.call_timeout.as_millis() as u64,
            send_timeout_ms: d.send_timeout.as_millis() as u64,
            memory_mb: d.memory_bytes >> 20,
            quarantine_after: d.quarantine_after,
        }
    }
}

impl Default for OutboxSettings {
    fn default() -> Self {
        let d = switchboard_app::OutboxConfig::default();
        OutboxSettings {
            retry_base_ms: d.retry_base.as_millis() as u64,
            retry_max_ms: d.retry_max.as_millis() as u64,
            max_attempts: d.max_attempts,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Settings {
    /// Reads `path` (if given, else `switchboard.toml` when present), applies
    /// the environment, and validates.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Settings> {
        let mut settings = match path {
            Some(p) => Self::from_file(p)?,
            None if Path::new("switchboard.toml").exists() => {
                Self::from_file(Path::new("switchboard.toml"))?
            }
            None => Settings::default(),
        };
        let mut problems = Vec::new();
        settings.apply_env(&mut problems);
        settings.validate(&mut problems);
        if !problems.is_empty() {
            bail!(
                "configuration has {} problem(s):\n  - {}",
                problems.len(),
                problems.join("\n  - ")
            );
        }
        Ok(settings)
    }

    fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))
    }

    fn apply_env(&mut self, problems: &mut Vec<String>) {
        fn num<T: std::str::FromStr>(name: &str, slot: &mut T, problems: &mut Vec<String>) {
            if let Some(v) = env(name) {
                match v.parse() {
                    Ok(n) => *slot = n,
                    Err(_) => problems.push(format!("{name}={v:?} is not a number")),
                }
            }
        }
        if let Some(v) = env("SWITCHBOARD_HTTP_ADDR") {
            self.http_addr = v;
        }
        if let Some(v) = env("SWITCHBOARD_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = env("SWITCHBOARD_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("SWITCHBOARD_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = env("SWITCHBOARD_DEFAULT_REGION") {
            self.default_region = Some(v);
        }
        if let Some(v) = env("SWITCHBOARD_TIMEZONE") {
            self.timezone = v;
        }
        if let Some(v) = env("SWITCHBOARD_FILE_STORE") {
            match v.parse() {
                Ok(store) => self.cluster.file_store = store,
                Err(e) => problems.push(format!("SWITCHBOARD_FILE_STORE: {e}")),
            }
        }
        if let Some(v) = env("SWITCHBOARD_NODE_ID") {
            self.cluster.node_id = Some(v);
        }
        num(
            "SWITCHBOARD_LEADER_POLL_MS",
            &mut self.cluster.leader_poll_ms,
            problems,
        );
        num(
            "SWITCHBOARD_REPORT_SHORT_ABANDON_SECS",
            &mut self.reports.short_abandon_secs,
            problems,
        );
        num(
            "SWITCHBOARD_REPORT_SERVICE_LEVEL_SECS",
            &mut self.reports.service_level_secs,
            problems,
        );
        num(
            "SWITCHBOARD_REPORT_FCR_DAYS",
            &mut self.reports.fcr_days,
            problems,
        );
        if let Some(v) = env("SWITCHBOARD_LOG") {
            self.log = v;
        }
        for (name, slot) in [
            (
                "SWITCHBOARD_HTTP_HEADER_TIMEOUT_MS",
                &mut self.http.header_timeout_ms,
            ),
            (
                "SWITCHBOARD_HTTP_REQUEST_TIMEOUT_MS",
                &mut self.http.request_timeout_ms,
            ),
        ] {
            num(name, slot, problems);
        }
        for (name, slot) in [
            (
                "SWITCHBOARD_HTTP_MAX_HEADER_BYTES",
                &mut self.http.max_header_bytes,
            ),
            ("SWITCHBOARD_HTTP_MAX_HEADERS", &mut self.http.max_headers),
        ] {
            num(name, slot, problems);
        }
        if let Some(v) = env("SWITCHBOARD_TRUSTED_PROXIES") {
            self.http.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
        }
        for (name, slot) in [
            (
                "SWITCHBOARD_WEBHOOK_FAILURES_PER_MINUTE",
                &mut self.webhooks.failures_per_minute,
            ),
            (
                "SWITCHBOARD_WEBHOOK_FAILURE_BURST",
                &mut self.webhooks.failure_burst,
            ),
            (
                "SWITCHBOARD_WEBCHAT_STARTS_PER_MINUTE",
                &mut self.webchat.starts_per_minute,
            ),
            (
                "SWITCHBOARD_WEBCHAT_MESSAGES_PER_MINUTE",
                &mut self.webchat.messages_per_minute,
            ),
            (
                "SWITCHBOARD_WEBCHAT_MESSAGE_BURST",
                &mut self.webchat.message_burst,
            ),
            (
                "SWITCHBOARD_WS_MESSAGES_PER_SECOND",
                &mut self.sockets.messages_per_second,
            ),
            (
                "SWITCHBOARD_WS_MESSAGE_BURST",
                &mut self.sockets.message_burst,
            ),
            (
                "SWITCHBOARD_ATTACHMENT_MAX_ATTEMPTS",
                &mut self.attachments.max_attempts,
            ),
        ] {
            num(name, slot, problems);
        }
        for (name, slot) in [
            (
                "SWITCHBOARD_ATTACHMENT_MAX_BYTES",
                &mut self.attachments.max_bytes,
            ),
            (
                "SWITCHBOARD_ATTACHMENT_RETRY_BASE_MS",
                &mut self.attachments.retry_base_ms,
            ),
            (
                "SWITCHBOARD_ATTACHMENT_URL_TTL_SECS",
                &mut self.attachments.url_ttl_secs,
            ),
        ] {
            num(name, slot, problems);
        }
        if let Some(v) = env("SWITCHBOARD_DISPOSITIONS") {
            self.dispositions.clear();
            for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                match item.split_once(':') {
                    Some((code, label)) => {
                        self.dispositions.push(switchboard_app::desk::Disposition {
                            code: code.trim().to_string(),
                            label: label.trim().to_string(),
                        })
                    }
                    None => problems.push(format!(
                        "SWITCHBOARD_DISPOSITIONS item {item:?} is not code:Label"
                    )),
                }
            }
        }
        num(
            "SWITCHBOARD_REOPEN_WINDOW_SECS",
            &mut self.reopen_window_secs,
            problems,
        );
        num(
            "SWITCHBOARD_PLUGIN_CALL_TIMEOUT_MS",
            &mut self.plugins.call_timeout_ms,
            problems,
        );
        num(
            "SWITCHBOARD_PLUGIN_SEND_TIMEOUT_MS",
            &mut self.plugins.send_timeout_ms,
            problems,
        );
        num(
            "SWITCHBOARD_PLUGIN_MEMORY_MB",
            &mut self.plugins.memory_mb,
            problems,
        );
        num(
            "SWITCHBOARD_QUARANTINE_AFTER",
            &mut self.plugins.quarantine_after,
            problems,
        );
        num(
            "SWITCHBOARD_CRM_LOOKUP_TIMEOUT_MS",
            &mut self.crm.lookup_timeout_ms,
            problems,
        );
        num(
            "SWITCHBOARD_CRM_ROUTING_BUDGET_MS",
            &mut self.crm.routing_budget_ms,
            problems,
        );
        num(
            "SWITCHBOARD_CRM_CACHE_TTL_SECS",
            &mut self.crm.cache_ttl_secs,
            problems,
        );
        num(
            "SWITCHBOARD_CRM_RETRY_BASE_MS",
            &mut self.crm.retry_base_ms,
            problems,
        );
        num(
            "SWITCHBOARD_CRM_RETRY_MAX_MS",
            &mut self.crm.retry_max_ms,
            problems,
        );
        num(
            "SWITCHBOARD_CRM_MAX_ATTEMPTS",
            &mut self.crm.max_attempts,
            problems,
        );
        num(
            "SWITCHBOARD_CRM_DISPOSITION_WAIT_SECS",
            &mut self.crm.disposition_wait_secs,
            problems,
        );
        num(
            "SWITCHBOARD_OUTBOX_RETRY_BASE_MS",
            &mut self.outbox.retry_base_ms,
            problems,
        );
        num(
            "SWITCHBOARD_OUTBOX_RETRY_MAX_MS",
            &mut self.outbox.retry_max_ms,
            problems,
        );
        num(
            "SWITCHBOARD_OUTBOX_MAX_ATTEMPTS",
            &mut self.outbox.max_attempts,
            problems,
        );
        num(
            "SWITCHBOARD_SIP_SOURCE_RATE",
            &mut self.voice.source_rate,
            problems,
        );
        num(
            "SWITCHBOARD_SIP_SOURCE_BURST",
            &mut self.voice.source_burst,
            problems,
        );
        num(
            "SWITCHBOARD_API_BODY_BYTES",
            &mut self.bodies.api_bytes,
            problems,
        );
        num(
            "SWITCHBOARD_WEBCHAT_BODY_BYTES",
            &mut self.bodies.webchat_bytes,
            problems,
        );
        num(
            "SWITCHBOARD_WEBHOOK_BODY_BYTES",
            &mut self.bodies.webhook_bytes,
            problems,
        );
        num(
            "SWITCHBOARD_WS_PER_CLIENT",
            &mut self.sockets.per_client,
            problems,
        );
        num("SWITCHBOARD_WS_TOTAL", &mut self.sockets.total, problems);
        num(
            "SWITCHBOARD_WS_MAX_MESSAGE_BYTES",
            &mut self.sockets.max_message_bytes,
            problems,
        );
        num(
            "SWITCHBOARD_LOGIN_FREE_FAILURES",
            &mut self.login.free_failures,
            problems,
        );
        num(
            "SWITCHBOARD_LOGIN_DELAY_MS",
            &mut self.login.delay_ms,
            problems,
        );
        num(
            "SWITCHBOARD_LOGIN_MAX_DELAY_MS",
            &mut self.login.max_delay_ms,
            problems,
        );
        num(
            "SWITCHBOARD_ACCEPT_TIMEOUT_MS",
            &mut self.routing.accept_timeout_ms,
            problems,
        );
        num(
            "SWITCHBOARD_STICKY_WAIT_MS",
            &mut self.routing.sticky_wait_ms,
            problems,
        );
        num(
            "SWITCHBOARD_MAX_MISSED_OFFERS",
            &mut self.routing.max_missed_offers,
            problems,
        );
        let flag = |name: &str, slot: &mut bool, problems: &mut Vec<String>| {
            if let Some(v) = env(name) {
                match v.to_ascii_lowercase().as_str() {
                    "1" | "on" | "true" | "yes" => *slot = true,
                    "0" | "off" | "false" | "no" => *slot = false,
                    _ => problems.push(format!("{name}={v:?} is not on/off")),
                }
            }
        };
        flag("SWITCHBOARD_VOICE", &mut self.voice.enabled, problems);
        flag(
            "SWITCHBOARD_RECORD_CALLS",
            &mut self.voice.record_calls,
            problems,
        );
        if let Some(v) = env("SWITCHBOARD_NATS_URL") {
            self.cluster.nats_url = Some(v);
        }
        if let Some(v) = env("SWITCHBOARD_NATS_STREAM") {
            self.cluster.stream = v;
        }
        if let Some(v) = env("SWITCHBOARD_SIP_ADDR") {
            self.voice.sip_addr = v;
        }
        if let Some(v) = env("SWITCHBOARD_SIP_TLS_ADDR") {
            self.voice.sip_tls_addr = Some(v);
        }
        if let Some(v) = env("SWITCHBOARD_SIP_TLS_CERT") {
            self.voice.tls_cert = Some(v.into());
        }
        if let Some(v) = env("SWITCHBOARD_SIP_TLS_KEY") {
            self.voice.tls_key = Some(v.into());
        }
        if let Some(v) = env("SWITCHBOARD_RTP_PORTS") {
            self.voice.rtp_ports = v;
        }
        if let Some(v) = env("SWITCHBOARD_WEBRTC_ADDR") {
            self.voice.webrtc_addr = v;
        }
        if let Some(v) = env("SWITCHBOARD_MEDIA_IP") {
            self.voice.media_ip = Some(v);
        }
        num(
            "SWITCHBOARD_RTP_TIMEOUT_SECS",
            &mut self.voice.rtp_timeout_secs,
            problems,
        );
    }

    fn validate(&self, problems: &mut Vec<String>) {
        if self.http_addr.parse::<SocketAddr>().is_err() {
            problems.push(format!("http_addr {:?} is not host:port", self.http_addr));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            problems.push(format!(
                "database_url {url:?} must start with sqlite: or postgres://"
            ));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(format!("public_url {url:?} must be an http(s) URL"));
        }
        if self.voice.enabled
            && let Err(e) = self.voice.config()
        {
            problems.push(format!("voice: {e}"));
        }
        if self.plugins.call_timeout_ms == 0 || self.plugins.send_timeout_ms == 0 {
            problems.push("plugin timeouts must be above 0".into());
        }
        if self.plugins.memory_mb == 0 {
            problems.push("plugins.memory_mb must be above 0".into());
        }
        if self.plugins.quarantine_after == 0 {
            problems.push("plugins.quarantine_after must be above 0".into());
        }
        if self.crm.max_attempts == 0 {
            problems.push("crm.max_attempts must be above 0".into());
        }
        if self.crm.lookup_timeout_ms == 0 {
            problems.push("crm.lookup_timeout_ms must be above 0".into());
        }
        if self.outbox.max_attempts == 0 {
            problems.push("outbox.max_attempts must be above 0".into());
        }
        if let Err(e) = switchboard_core::reports::ReportZone::parse(&self.timezone) {
            problems.push(format!("timezone: {e}"));
        }
        if self.reports.short_abandon_secs > 86_400 || self.reports.service_level_secs > 86_400 {
            problems.push("reports: thresholds are at most 86400 seconds".into());
        }
        if !(1..=90).contains(&self.reports.fcr_days) {
            problems.push("reports.fcr_days must be 1 to 90".into());
        }
        if self.dispositions.is_empty() {
            problems.push("dispositions: give at least one".into());
        }
        let mut codes = std::collections::HashSet::new();
        for d in &self.dispositions {
            if d.code.is_empty()
                || !d
                    .code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                problems.push(format!(
                    "disposition code {:?}: letters, digits, '_' or '-'",
                    d.code
                ));
            }
            if d.label.trim().is_empty() {
                problems.push(format!("disposition {:?} needs a label", d.code));
            }
            if !codes.insert(d.code.as_str()) {
                problems.push(format!("disposition code {:?} is given twice", d.code));
            }
        }
        for proxy in &self.http.trusted_proxies {
            if parse_net(proxy).is_none() {
                problems.push(format!(
                    "trusted_proxies: {proxy:?} is not an IP address or CIDR block"
                ));
            }
        }
        if self.http.header_timeout_ms == 0 || self.http.request_timeout_ms == 0 {
            problems.push("http timeouts must be above 0".into());
        }
        if !switchboard_app::events_nats::NatsBusConfig::valid_stream_name(&self.cluster.stream) {
            problems.push(format!(
                "cluster.stream {:?}: letters, digits, '_' or '-', at most 64",
                self.cluster.stream
            ));
        }
        if let Some(r) = &self.default_region
            && (r.len() != 2 || !r.chars().all(|c| c.is_ascii_uppercase()))
        {
            problems.push(format!(
                "default_region {r:?} must be a two-letter upper-case region like US"
            ));
        }
    }

    /// The database URL, defaulting to `{data_dir}/switchboard.db`.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("switchboard.db").display()
            )
        })
    }

    /// Sandbox limits from these settings.
    pub fn limits(&self) -> switchboard_plugin_host::Limits {
        switchboard_plugin_host::Limits {
            call_timeout: Duration::from_millis(self.plugins.call_timeout_ms),
            send_timeout: Duration::from_millis(self.plugins.send_timeout_ms),
            memory_bytes: self.plugins.memory_mb << 20,
            quarantine_after: self.plugins.quarantine_after,
            ..Default::default()
        }
    }

    /// The report settings (the time zone was validated at load).
    pub fn reports(&self) -> switchboard_app::reports::ReportConfig {
        switchboard_app::reports::ReportConfig {
            zone: switchboard_core::reports::ReportZone::parse(&self.timezone).unwrap_or_default(),
            short_abandon_ms: self.reports.short_abandon_secs as i64 * 1000,
            service_level_ms: self.reports.service_level_secs as i64 * 1000,
            fcr_window_days: self.reports.fcr_days as i64,
        }
    }

    /// Routing engine settings.
    pub fn routing(&self) -> switchboard_routing::EngineConfig {
        switchboard_routing::EngineConfig {
            accept_timeout_ms: self.routing.accept_timeout_ms,
            sticky_wait_ms: self.routing.sticky_wait_ms,
            max_missed_offers: self.routing.max_missed_offers,
            aging: (self.routing.aging_step > 0 && self.routing.aging_every_ms > 0).then_some(
                switchboard_routing::Aging {
                    every_ms: self.routing.aging_every_ms,
                    step: self.routing.aging_step,
                },
            ),
        }
    }

    /// Request body limits from these settings (at least 1 KiB each).
    pub fn bodies(&self) -> switchboard_api::limits::BodyLimits {
        switchboard_api::limits::BodyLimits {
            api_bytes: self.bodies.api_bytes.max(1024),
            webchat_bytes: self.bodies.webchat_bytes.max(1024),
            webhook_bytes: self.bodies.webhook_bytes.max(1024),
        }
    }

    /// HTTP connection limits from these settings.
    pub fn connections(&self) -> switchboard_api::limits::ConnectionLimits {
        switchboard_api::limits::ConnectionLimits {
            header_timeout: std::time::Duration::from_millis(self.http.header_timeout_ms.max(1)),
            request_timeout: std::time::Duration::from_millis(self.http.request_timeout_ms.max(1)),
            max_header_bytes: self.http.max_header_bytes.max(8192),
            max_headers: self.http.max_headers.max(16),
            trusted_proxies: self
                .http
                .trusted_proxies
                .iter()
                .filter_map(|p| parse_net(p))
                .collect(),
        }
    }

    /// The limit on failed webhooks from these settings.
    pub fn webhooks(&self) -> switchboard_api::limits::WebhookLimits {
        switchboard_api::limits::WebhookLimits {
            failures_per_minute: self.webhooks.failures_per_minute,
            failure_burst: self.webhooks.failure_burst.max(1),
        }
    }

    /// Webchat visitors' limits from these settings.
    pub fn attachments(&self) -> switchboard_app::attachments::AttachmentConfig {
        let d = switchboard_app::attachments::AttachmentConfig::default();
        switchboard_app::attachments::AttachmentConfig {
            max_bytes: self.attachments.max_bytes.max(1024),
            max_attempts: self.attachments.max_attempts.max(1),
            retry_base: std::time::Duration::from_millis(self.attachments.retry_base_ms.max(10)),
            url_ttl: std::time::Duration::from_secs(self.attachments.url_ttl_secs.max(60)),
            ..d
        }
    }

    /// Webchat limits from these settings.
    pub fn webchat(&self) -> switchboard_app::webchat::WebchatLimits {
        switchboard_app::webchat::WebchatLimits {
            starts_per_minute: self.webchat.starts_per_minute,
            messages_per_minute: self.webchat.messages_per_minute,
            message_burst: self.webchat.message_burst.max(1),
        }
    }

    /// WebSocket limits from these settings.
    pub fn sockets(&self) -> switchboard_api::sockets::SocketLimits {
        switchboard_api::sockets::SocketLimits {
            per_owner: self.sockets.per_client.max(1),
            total: self.sockets.total.max(1),
            max_message_bytes: self.sockets.max_message_bytes.max(1024),
            messages_per_second: self.sockets.messages_per_second,
            message_burst: self.sockets.message_burst.max(1),
        }
    }

    /// Login throttling from these settings.
    pub fn login(&self) -> switchboard_app::login::ThrottleConfig {
        switchboard_app::login::ThrottleConfig {
            free_failures: self.login.free_failures,
            base_delay_ms: self.login.delay_ms.max(1),
            max_delay_ms: self.login.max_delay_ms.max(self.login.delay_ms),
            ..switchboard_app::login::ThrottleConfig::default()
        }
    }

    /// This node's name and leadership timing from these settings.
    /// `port` is the HTTP port the node listens on (bound, so `:0` gives the real one).
    pub fn node(&self, port: u16) -> switchboard_app::routing::NodeConfig {
        let poll = Duration::from_millis(self.cluster.leader_poll_ms.max(50));
        switchboard_app::routing::NodeConfig {
            id: self.cluster.node_id.clone().unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .or_else(|| std::env::var("HOSTNAME").ok())
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "localhost".into());
                format!("{host}:{port}")
            }),
            leader_poll: poll,
            leader_check: poll,
            nats_url: self.cluster.nats_url.clone(),
            nats_prefix: self.cluster.stream.clone(),
        }
    }

    /// CRM lookups and write-back from these settings.
    pub fn crm(&self) -> switchboard_app::crm::CrmConfig {
        switchboard_app::crm::CrmConfig {
            lookup_timeout: Duration::from_millis(self.crm.lookup_timeout_ms),
            routing_budget: Duration::from_millis(self.crm.routing_budget_ms),
            cache_ttl: Duration::from_secs(self.crm.cache_ttl_secs),
            retry_base: Duration::from_millis(self.crm.retry_base_ms),
            retry_max: Duration::from_millis(self.crm.retry_max_ms),
            max_attempts: self.crm.max_attempts,
            disposition_wait: Duration::from_secs(self.crm.disposition_wait_secs),
            ..Default::default()
        }
    }

    /// Outbox policy from these settings.
    pub fn outbox(&self) -> switchboard_app::OutboxConfig {
        switchboard_app::OutboxConfig {
            retry_base: Duration::from_millis(self.outbox.retry_base_ms),
            retry_max: Duration::from_millis(self.outbox.retry_max_ms),
            max_attempts: self.outbox.max_attempts,
            ..Default::default()
        }
    }

    /// The key that encrypts plugin secrets: `SWITCHBOARD_SECRET_KEY` (64 hex
    /// digits) or `{data_dir}/secret.key`, created on first use.
    pub fn secret_key(&self) -> anyhow::Result<[u8; 32]> {
        let text = match env("SWITCHBOARD_SECRET_KEY") {
            Some(v) => v,
            None => {
                let path = self.data_dir.join("secret.key");
                if !path.exists() {
                    std::fs::create_dir_all(&self.data_dir)?;
                    let mut key = [0u8; 32];
                    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
                    write_private(&path, &hex::encode(key))?;
                }
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
            }
        };
        let bytes = hex::decode(text.trim()).context("the secret key must be 64 hex digits")?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the secret key must be 64 hex digits (32 bytes)"))
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?
    };
    #[cfg(not(unix))]
    let mut file = std::fs::File::create(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// An address or a CIDR block.
fn parse_net(text: &str) -> Option<ipnet::IpNet> {
    text.parse().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<Settings>("htp_addr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let s = Settings {
            http_addr: "nope".into(),
            public_url: Some("ftp://x".into()),
            default_region: Some("usa".into()),
            ..Settings::default()
        };
        let mut problems = Vec::new();
        s.validate(&mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn files_live_in_the_data_dir_unless_the_cluster_says_database() {
        assert_eq!(
            Settings::default().cluster.file_store,
            switchboard_app::FileStore::Folder
        );
        let s: Settings = toml::from_str("[cluster]\nfile_store = \"database\"").unwrap();
        assert_eq!(s.cluster.file_store, switchboard_app::FileStore::Database);
        let err = toml::from_str::<Settings>("[cluster]\nfile_store = \"s3\"").unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        assert_eq!(
            "nfs".parse::<switchboard_app::FileStore>().unwrap_err(),
            "file_store \"nfs\" is not \"folder\" or \"database\""
        );
    }

    #[test]
    fn one_node_unless_a_nats_server_is_set() {
        let s = Settings::default();
        assert!(s.cluster.bus().is_none());
        let s: Settings = toml::from_str("[cluster]\nnats_url = \"nats://10.0.0.5:4222\"").unwrap();
        let bus = s.cluster.bus().expect("a bus across nodes");
        assert_eq!(
            (bus.url.as_str(), bus.stream.as_str()),
            ("nats://10.0.0.5:4222", "switchboard")
        );
        let s = Settings {
            cluster: ClusterSettings {
                stream: "a.b".into(),
                ..ClusterSettings::default()
            },
            ..Settings::default()
        };
        let mut problems = Vec::new();
        s.validate(&mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn database_defaults_to_sqlite_in_the_data_dir() {
        let s = Settings {
            data_dir: "/tmp/sb".into(),
            ..Settings::default()
        };
        assert_eq!(s.database_url(), "sqlite:///tmp/sb/switchboard.db");
    }
}
