//! Switchboard's HTTP edge.
//!
//! This crate owns the `/api/v1` routes, provider webhook ingress at `/hooks`, the
//! webchat visitors' `/webchat/v1` routes, authentication and roles, the realtime
//! WebSockets, `/healthz` and `/metrics`. It holds no business rules: a handler
//! authenticates, parses the request, calls one use case of the application layer
//! (`switchboard-app`, or `switchboard-voice` for calls) and shapes the answer,
//! mapping [`switchboard_app::AppError`] to [`ApiError`]. Read-only lookups that are
//! one store query (a contact, a conversation's timeline) read the store directly.
//!
//! [`serve`] runs the whole thing on a listener until a shutdown signal, with the
//! application's background workers, so the server can be tested in-process on
//! `127.0.0.1:0`.

#![deny(missing_docs)]

pub mod auth;
mod calls;
mod desk;
mod error;
mod hooks;
pub mod limits;
mod plugins_api;
mod realtime;
mod routes;
mod routing_api;
pub mod sockets;
mod state;
mod supervisor;
mod webchat;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use tokio::sync::watch;

pub use error::{ApiError, ApiResult};
pub use state::AppState;

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
        switchboard_app::metrics::encode_counts(&mut out, &counts);
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
    let limits = state.body_limits.clone();
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/logout-all", post(auth::logout_all))
        .route("/auth/password", post(auth::change_password))
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
        .route("/agents/{id}/{action}", post(supervisor::set_disabled))
        .route(
            "/reservations/{id}/{action}",
            post(routing_api::reservation_action),
        )
        .route("/tasks/{id}/transfer", post(routing_api::transfer))
        .route("/tasks/{id}/{action}", post(routing_api::task_action))
        .route("/calls", get(calls::all_calls).post(calls::dial))
        .route("/calls/me", get(calls::my_calls))
        .route("/calls/{id}/transfer", post(calls::transfer))
        .route("/calls/{id}/{action}", post(calls::control))
        .route(
            "/calls/{id}/transfer/{action}",
            post(calls::transfer_action),
        )
        .route("/calls/{id}/recording", get(calls::recording))
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
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.api_bytes));
    let webchat = Router::new()
        .route("/sessions", post(webchat::start))
        .route("/transcript", get(webchat::transcript))
        .route("/messages", post(webchat::post_message))
        .route("/ws", get(webchat::socket))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.webchat_bytes));
    let hooks = Router::new()
        .route("/hooks/{plugin_id}", post(hooks::webhook_root))
        .route("/hooks/{plugin_id}/{*rest}", post(hooks::webhook))
        .layer(DefaultBodyLimit::max(limits.webhook_bytes));
    Router::new()
        .nest("/api/v1", api)
        .nest("/webchat/v1", webchat)
        .merge(hooks)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_handler))
        .merge(switchboard_web::routes(
            switchboard_web::WebAssets::from_env(),
        ))
        .layer(DefaultBodyLimit::max(limits.api_bytes))
        .layer(axum::middleware::map_response(no_sniff))
        .with_state(state)
}

/// Serves HTTP and runs the application's workers until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = state.app.clone();
    let worker = tokio::spawn(async move { app.run_workers(stop_rx).await });
    let app = router(state);
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    result
}
