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

mod attachments;
pub mod auth;
mod calls;
mod crm;
mod desk;
mod email;
mod error;
mod forward;
mod hooks;
pub mod limits;
pub mod openapi;
mod plugins_api;
mod realtime;
mod reports;
mod routes;
mod routing_api;
mod server;
pub mod sockets;
mod state;
mod supervisor;
mod survey_page;
mod surveys;
mod webchat;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ApiResult};
pub use state::AppState;

/// `{"status", "node", "routing"}`: whether the database answers, this node's name,
/// and whether it leads routing (`leader`), follows (`follower`), or runs without
/// routing (`off`).
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let node = state.app.config.node.id.clone();
    let routing = state
        .app
        .routing
        .as_ref()
        .map_or("off", |r| r.role().as_str());
    match state.store.metrics_counts().await {
        Ok(_) => (
            axum::http::StatusCode::OK,
            Json(serde_json::json!({"status": "ok", "node": node, "routing": routing})),
        ),
        Err(e) => {
            tracing::error!("health check: store unavailable: {e}");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"status": "unavailable", "node": node, "routing": routing}),
                ),
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

/// Every answer, API or page, is taken as the type it says it is. A body refused
/// for its size was not read, so its connection cannot carry another request: the
/// client is told to open a new one.
async fn no_sniff(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        close_after(&mut response);
    }
    response
}

/// Asks the client not to reuse this connection.
fn close_after(response: &mut axum::response::Response) {
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
}

/// Answers 408 when reading and answering a request takes longer than `limit`.
async fn within(
    limit: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // Installing a plugin compiles its component, which on a small machine
    // with a cold compile cache can take longer than any other request; the
    // route is for admins only (the token is checked before the body is read).
    let limit = if request.method() == axum::http::Method::POST
        && request.uri().path() == "/api/v1/plugins"
    {
        limit.max(PLUGIN_INSTALL_TIMEOUT)
    } else {
        limit
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("the request was not read and answered within {limit:?}"),
            )
            .into_response();
            close_after(&mut response);
            response
        }
    }
}

/// How long `POST /api/v1/plugins` may take: compiling a large component.
const PLUGIN_INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The `/api/v1` routes with their OpenAPI document; see [`openapi`].
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::me))
        .routes(routes!(routes::find_contacts))
        .routes(routes!(routes::get_contact, desk::update_contact))
        .routes(routes!(routes::contact_timeline))
        .routes(routes!(routes::add_identity))
        .routes(routes!(routes::merge_contacts))
        .routes(routes!(routes::undo_merge))
        .routes(routes!(routes::list_conversations))
        .routes(routes!(routes::get_conversation))
        .routes(routes!(routes::set_conversation_status))
        .routes(routes!(routes::reply))
        .routes(routes!(attachments::upload))
        .routes(routes!(attachments::download))
        .routes(routes!(attachments::window))
        .routes(routes!(attachments::templates))
        .routes(routes!(desk::mark_read))
        .routes(routes!(desk::add_note))
        .routes(routes!(routes::typing))
        .routes(routes!(desk::reply_channels))
        .routes(routes!(desk::resolve))
        .routes(routes!(desk::handoff_draft))
        .routes(routes!(desk::dispositions))
        .routes(routes!(desk::profile))
        .routes(routes!(supervisor::list_agents, supervisor::create_agent))
        .routes(routes!(desk::my_conversations))
        .routes(routes!(email::get_signature, email::put_signature))
        .routes(routes!(supervisor::wallboard))
        .routes(routes!(supervisor::context_transfer))
        .routes(routes!(reports::report))
        .routes(routes!(reports::drill))
        .routes(routes!(reports::conversations_csv))
        .routes(routes!(supervisor::set_plugin_config))
        .routes(routes!(realtime::realtime))
        .routes(routes!(routing_api::list_queues, routing_api::create_queue))
        .routes(routes!(routing_api::queue_stats))
        .routes(routes!(surveys::get_settings, surveys::put_settings))
        .routes(routes!(surveys::all_settings))
        .routes(routes!(surveys::conversation_surveys))
        .routes(routes!(routing_api::set_presence))
        .routes(routes!(routing_api::set_profile))
        .routes(routes!(routing_api::offers))
        .routes(routes!(supervisor::set_disabled))
        .routes(routes!(routing_api::reservation_action))
        .routes(routes!(routing_api::transfer))
        .routes(routes!(routing_api::task_action))
        .routes(routes!(calls::all_calls, calls::dial))
        .routes(routes!(calls::my_calls))
        .routes(routes!(calls::softphone_offer))
        .routes(routes!(calls::transfer))
        .routes(routes!(calls::control))
        .routes(routes!(calls::transfer_action))
        .routes(routes!(calls::recording))
        .routes(routes!(crm::contact_crm))
        .routes(routes!(crm::refresh))
        .routes(routes!(crm::create))
        .routes(routes!(crm::settings))
        .routes(routes!(crm::put_settings))
        .routes(routes!(crm::activities))
        .routes(routes!(crm::retry))
        .routes(routes!(routes::list_outbox))
        .routes(routes!(routes::retry_outbox))
        .routes(routes!(plugins_api::list, plugins_api::install))
        .routes(routes!(plugins_api::get, plugins_api::remove))
        .routes(routes!(plugins_api::enable))
        .routes(routes!(plugins_api::disable))
}

/// The OpenAPI document of `/api/v1`, as the router generates it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(api_routes().split_for_parts().1)
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "auth",
    responses((status = 200, description = "The OpenAPI 3.1 document of /api/v1", body = Object)))]
async fn openapi_json(_auth: auth::Auth) -> Json<&'static utoipa::openapi::OpenApi> {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    Json(DOCUMENT.get_or_init(openapi_document))
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let limits = state.body_limits.clone();
    let request_timeout = state.connection_limits.request_timeout;
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.api_bytes))
        .layer(axum::middleware::map_response(error::json_errors));
    let webchat = Router::new()
        .route("/sessions", post(webchat::start))
        .route("/transcript", get(webchat::transcript))
        .route("/messages", post(webchat::post_message))
        .route("/survey", get(webchat::survey).post(webchat::answer_survey))
        .route("/ws", get(webchat::socket))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.webchat_bytes))
        .layer(axum::middleware::map_response(error::json_errors));
    let hooks = Router::new()
        // GET too: subscription handshakes (Meta's `hub.challenge`) are GETs that
        // the connector verifies like any webhook.
        .route(
            "/hooks/{plugin_id}",
            post(hooks::webhook_root).get(hooks::webhook_root),
        )
        .route(
            "/hooks/{plugin_id}/{*rest}",
            post(hooks::webhook).get(hooks::webhook),
        )
        .layer(DefaultBodyLimit::max(limits.webhook_bytes));
    Router::new()
        .nest("/api/v1", api)
        .nest("/webchat/v1", webchat)
        .merge(hooks)
        .route("/media/{id}", get(attachments::media))
        .route("/email/{event_id}", get(email::frame))
        .route(
            "/survey/{token}",
            get(survey_page::show).post(survey_page::submit),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_handler))
        .merge(switchboard_web::routes(
            switchboard_web::WebAssets::from_env(),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::calls_to_their_node,
        ))
        .layer(DefaultBodyLimit::max(limits.api_bytes))
        .layer(axum::middleware::map_response(no_sniff))
        .layer(axum::middleware::from_fn(move |request, next| {
            within(request_timeout, request, next)
        }))
        // A handler that panics (a bug) answers 500 in the error shape; the panic
        // is logged, and the connection and the server carry on.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a request handler panicked").into_response()
            },
        ))
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
    let limits = state.connection_limits.clone();
    let forwarding = state.clone();
    let app = router(state);
    forward::serve_forwarded(&forwarding, &app);
    let result = server::run(listener, app, &limits, shutdown, Duration::from_secs(10)).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    result
}
