//! Provider webhook ingress: `POST /hooks/{plugin_id}/{rest…}`.
//!
//! The request's parts go to the ingest use case as they came; the connector's
//! answer goes back to the provider only after the batch is committed.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use switchboard_app::ingest::WebhookRequest;

use crate::error::ApiError;
use crate::state::AppState;

/// `POST /hooks/{plugin_id}` (no trailing path).
pub async fn webhook_root(
    State(state): State<AppState>,
    Path(plugin_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &plugin_id, method, uri, headers, body).await
}

/// `POST /hooks/{plugin_id}/{rest…}`.
pub async fn webhook(
    State(state): State<AppState>,
    Path((plugin_id, _rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &plugin_id, method, uri, headers, body).await
}

async fn handle(
    state: &AppState,
    plugin_id: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = WebhookRequest {
        method: method.to_string(),
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: body.to_vec(),
    };
    let answer = match state.ingest.webhook(plugin_id, request).await {
        Ok(answer) => answer,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut response =
        Response::builder().status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK));
    for (k, v) in &answer.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            response = response.header(k, v);
        }
    }
    response
        .body(axum::body::Body::from(answer.body))
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}
