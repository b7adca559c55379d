//! Switchboard's HTTP edge.
//!
//! This crate owns the `/api/v1` routes, provider webhook ingress at `/hooks`,
//! authentication, `/healthz` and `/metrics`, and the outbox worker that
//! delivers replies. It holds no business rules of its own: identities and
//! enums come from `switchboard-core`, durability from `switchboard-store`,
//! sandboxing from `switchboard-plugin-host`.
//!
//! [`serve`] runs the whole thing on a listener until a shutdown signal, so the
//! server can be tested in-process on `127.0.0.1:0`.

#![deny(missing_docs)]

pub mod admin;
pub mod auth;
pub mod desk;
mod error;
mod hooks;
mod metrics;
mod plugins_api;
pub mod realtime;
mod routes;
pub mod routing;
mod routing_api;
mod services;
pub mod supervisor;
pub mod voice;
pub mod webchat;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use switchboard_plugin_host::{CallError, ChannelInfo, PluginHost, PluginKind};
use switchboard_store::Store;
use tokio::sync::{Notify, RwLock, watch};

pub use error::{ApiError, ApiResult};
pub use metrics::Metrics;
pub use services::ServerServices;
pub use worker::OutboxConfig;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What the HTTP layer needs to know about the deployment.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The URL providers call, without a trailing slash; connectors verify
    /// signatures against it.
    pub public_url: String,
    /// Where installed plugins are kept.
    pub data_dir: PathBuf,
    /// A resolved conversation reopens if the customer writes again within this.
    pub reopen_window_ms: i64,
    /// Region for phone numbers written without a country code (e.g. `US`).
    pub default_region: Option<String>,
    /// The outcomes agents choose from when resolving.
    pub dispositions: Vec<desk::Disposition>,
}

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The plugin sandbox.
    pub plugins: PluginHost,
    /// Deployment settings.
    pub config: Arc<ApiConfig>,
    /// Outbox tuning.
    pub outbox: Arc<OutboxConfig>,
    /// Wakes the outbox worker when a reply is queued.
    pub outbox_wake: Arc<Notify>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Realtime fan-out to agents and supervisors.
    pub realtime: Arc<realtime::Hub>,
    /// Routing, once started with [`AppState::start_routing`].
    pub routing: Option<Arc<routing::RoutingService>>,
    /// Webchat visitors' open sockets.
    pub webchat: Arc<webchat::Hub>,
    /// Voice, once started with [`AppState::start_voice`].
    pub voice: Option<Arc<voice::VoiceService>>,
    channels: Arc<RwLock<HashMap<String, ChannelInfo>>>,
    dummy_hash: String,
}

impl AppState {
    /// State over a store and plugin host.
    pub fn new(
        store: Store,
        plugins: PluginHost,
        config: ApiConfig,
        outbox: OutboxConfig,
    ) -> AppState {
        AppState {
            store,
            plugins,
            config: Arc::new(config),
            outbox: Arc::new(outbox),
            outbox_wake: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::default()),
            realtime: Arc::default(),
            routing: None,
            webchat: Arc::default(),
            voice: None,
            channels: Arc::default(),
            dummy_hash: auth::hash_password("not-a-real-password").unwrap_or_default(),
        }
    }

    /// A channel connector's description, asked once and then cached. Native
    /// channels (webchat) answer for themselves.
    pub async fn channel_info(&self, plugin_id: &str) -> Result<ChannelInfo, CallError> {
        if plugin_id == webchat::PLUGIN_ID {
            return Ok(webchat::channel_info());
        }
        if let Some(info) = self.channels.read().await.get(plugin_id) {
            return Ok(info.clone());
        }
        let info = self.plugins.describe_channel(plugin_id).await?;
        self.channels
            .write()
            .await
            .insert(plugin_id.to_string(), info.clone());
        Ok(info)
    }

    /// Every channel a reply can go out on: webchat, then the enabled channel
    /// plugins that are not quarantined.
    pub async fn channel_plugins(&self) -> Vec<String> {
        let mut ids = vec![webchat::PLUGIN_ID.to_string()];
        ids.extend(
            self.plugins
                .list()
                .into_iter()
                .filter(|p| p.kind == PluginKind::Channel && p.enabled && p.quarantined.is_none())
                .map(|p| p.id),
        );
        ids
    }

    /// The enabled channel plugin whose id or channel name is `name`.
    pub async fn channel_plugin(&self, name: &str) -> Option<String> {
        if name == webchat::PLUGIN_ID {
            return Some(name.to_string());
        }
        let candidates: Vec<_> = self
            .plugins
            .list()
            .into_iter()
            .filter(|p| p.kind == PluginKind::Channel && p.enabled && p.quarantined.is_none())
            .collect();
        if candidates.iter().any(|p| p.id == name) {
            return Some(name.to_string());
        }
        for p in candidates {
            if let Ok(info) = self.channel_info(&p.id).await
                && info.channel == name
            {
                return Some(p.id);
            }
        }
        None
    }

    /// Who sees changes to a conversation: supervisors, and (once routing
    /// assigns it) the agents holding its task.
    pub fn conversation_audience(&self, conversation_id: &str) -> realtime::Audience {
        match &self.routing {
            Some(r) => r.audience(conversation_id),
            None => realtime::Audience::Supervisors,
        }
    }

    /// Restores routing from the store and starts it.
    pub async fn start_routing(
        &mut self,
        config: switchboard_routing::EngineConfig,
    ) -> Result<(), ApiError> {
        let service = routing::RoutingService::start(
            self.store.clone(),
            self.plugins.clone(),
            self.realtime.clone(),
            config,
        )
        .await?;
        self.routing = Some(service);
        Ok(())
    }

    /// Binds SIP, RTP and WebRTC and starts voice (after routing).
    pub async fn start_voice(&mut self, config: voice::VoiceConfig) -> std::io::Result<()> {
        let service = voice::VoiceService::start(self.clone(), config).await?;
        self.voice = Some(service);
        Ok(())
    }

    async fn forget_channel(&self, plugin_id: &str) {
        self.channels.write().await.remove(plugin_id);
    }

    /// (Re)loads one installed plugin from the store.
    pub async fn reload_plugin(&self, id: &str) -> Result<(), ApiError> {
        let record = self.store.plugin(id).await?;
        let spec = admin::spec_for(&self.store, &record, &self.config.public_url).await?;
        self.plugins
            .load(spec)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        self.forget_channel(id).await;
        Ok(())
    }
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.metrics_counts().await {
        Ok(_) => (
            axum::http::StatusCode::OK,
            Json(serde_json::json!({"status": "ok"})),
        ),
        Err(e) => {
            tracing::error!("health check: store unavailable: {e}");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable"})),
            )
        }
    }
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = state.metrics.encode();
    out.push('\n');
    if let Ok(counts) = state.store.metrics_counts().await {
        metrics::encode_counts(&mut out, &counts);
    }
    out.push_str("# HELP switchboard_plugin_up 1 if the plugin is enabled and not quarantined.\n");
    out.push_str("# TYPE switchboard_plugin_up gauge\n");
    let plugins = state.plugins.list();
    for p in &plugins {
        let up = u8::from(p.enabled && p.quarantined.is_none());
        out.push_str(&format!(
            "switchboard_plugin_up{{plugin=\"{}\"}} {up}\n",
            p.id
        ));
    }
    out.push_str("# HELP switchboard_plugin_failures Failed plugin calls since start.\n");
    out.push_str("# TYPE switchboard_plugin_failures counter\n");
    for p in &plugins {
        out.push_str(&format!(
            "switchboard_plugin_failures_total{{plugin=\"{}\"}} {}\n",
            p.id, p.failures
        ));
    }
    out.push_str("# EOF\n");
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}

/// Every answer, API or page, is taken as the type it says it is.
async fn no_sniff(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/contacts", get(routes::find_contacts))
        .route(
            "/contacts/{id}",
            get(routes::get_contact).patch(desk::update_contact),
        )
        .route("/contacts/{id}/timeline", get(routes::contact_timeline))
        .route("/contacts/{id}/identities", post(routes::add_identity))
        .route("/contacts/{id}/merge", post(routes::merge_contacts))
        .route("/merges/{id}/undo", post(routes::undo_merge))
        .route("/conversations", get(routes::list_conversations))
        .route("/conversations/{id}", get(routes::get_conversation))
        .route(
            "/conversations/{id}/status",
            put(routes::set_conversation_status),
        )
        .route("/conversations/{id}/messages", post(routes::reply))
        .route("/conversations/{id}/read", post(desk::mark_read))
        .route("/conversations/{id}/notes", post(desk::add_note))
        .route("/conversations/{id}/typing", post(routes::typing))
        .route(
            "/conversations/{id}/reply-channels",
            get(desk::reply_channels),
        )
        .route("/conversations/{id}/resolve", post(desk::resolve))
        .route(
            "/conversations/{id}/handoff-draft",
            get(desk::handoff_draft),
        )
        .route("/dispositions", get(desk::dispositions))
        .route("/contacts/{id}/profile", get(desk::profile))
        .route(
            "/agents",
            get(supervisor::list_agents).post(supervisor::create_agent),
        )
        .route("/agents/me/conversations", get(desk::my_conversations))
        .route("/wallboard", get(supervisor::wallboard))
        .route(
            "/reports/context-transfer",
            get(supervisor::context_transfer),
        )
        .route("/plugins/{id}/config", put(supervisor::set_plugin_config))
        .route("/realtime", get(realtime::realtime))
        .route(
            "/queues",
            get(routing_api::list_queues).post(routing_api::create_queue),
        )
        .route("/queues/{id}/stats", get(routing_api::queue_stats))
        .route("/agents/{id}/presence", put(routing_api::set_presence))
        .route("/agents/{id}/routing", put(routing_api::set_profile))
        .route("/agents/{id}/offers", get(routing_api::offers))
        .route(
            "/reservations/{id}/{action}",
            post(routing_api::reservation_action),
        )
        .route("/tasks/{id}/transfer", post(routing_api::transfer))
        .route("/tasks/{id}/{action}", post(routing_api::task_action))
        .route("/calls", get(voice::api::all_calls).post(voice::api::dial))
        .route("/calls/me", get(voice::api::my_calls))
        .route("/calls/{id}/transfer", post(voice::api::transfer))
        .route("/calls/{id}/{action}", post(voice::api::control))
        .route(
            "/calls/{id}/transfer/{action}",
            post(voice::api::transfer_action),
        )
        .route("/calls/{id}/recording", get(voice::api::recording))
        .route("/outbox", get(routes::list_outbox))
        .route("/outbox/{id}/retry", post(routes::retry_outbox))
        .route(
            "/plugins",
            get(plugins_api::list).post(plugins_api::install),
        )
        .route(
            "/plugins/{id}",
            get(plugins_api::get).delete(plugins_api::remove),
        )
        .route("/plugins/{id}/enable", post(plugins_api::enable))
        .route("/plugins/{id}/disable", post(plugins_api::disable))
        .fallback(not_found);
    let webchat = Router::new()
        .route("/sessions", post(webchat::start))
        .route("/transcript", get(webchat::transcript))
        .route("/messages", post(webchat::post_message))
        .route("/ws", get(webchat::socket))
        .fallback(not_found);
    Router::new()
        .nest("/api/v1", api)
        .nest("/webchat/v1", webchat)
        .route("/hooks/{plugin_id}", post(hooks::webhook_root))
        .route("/hooks/{plugin_id}/{*rest}", post(hooks::webhook))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_handler))
        .merge(switchboard_web::routes(
            switchboard_web::WebAssets::from_env(),
        ))
        .layer(axum::extract::DefaultBodyLimit::max(2 << 20))
        .layer(axum::middleware::map_response(no_sniff))
        .with_state(state)
}

/// Serves HTTP and runs the outbox worker until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(worker::run(state.clone(), stop_rx));
    let app = router(state);
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    result
}
