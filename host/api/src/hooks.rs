//! Provider webhook ingress: `POST /hooks/{plugin_id}/{rest…}` (and `GET`, for
//! subscription handshakes). Query strings are never logged: a handshake carries
//! the verify token in one.
//!
//! The request's parts go to the ingest use case as they came; the connector's
//! answer goes back to the provider only after the batch is committed, and what the
//! batch starts (routing, CRM lookups) runs only once that answer is written.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Bytes, HttpBody};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use switchboard_app::after_answer;
use switchboard_app::ingest::WebhookRequest;

use crate::error::ApiError;
use crate::state::AppState;

/// `POST /hooks/{plugin_id}` (no trailing path).
pub async fn webhook_root(
    State(state): State<AppState>,
    Path(plugin_id): Path<String>,
    extensions: Extensions,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = client(&extensions);
    handle(&state, source, &plugin_id, method, uri, headers, body).await
}

/// `POST /hooks/{plugin_id}/{rest…}`.
pub async fn webhook(
    State(state): State<AppState>,
    Path((plugin_id, _rest)): Path<(String, String)>,
    extensions: Extensions,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = client(&extensions);
    handle(&state, source, &plugin_id, method, uri, headers, body).await
}

/// The client's address, when the server loop recorded it.
fn client(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

async fn handle(
    state: &AppState,
    source: Option<IpAddr>,
    plugin_id: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let failures = &state.webhook_failures;
    if let Some(source) = source
        && let Err(wait) = failures.check(source, Instant::now())
    {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many webhooks from this address failed verification; try again later",
        )
        .with_retry_after(wait)
        .into_response();
    }
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
    // What the webhook starts (routing the message, a CRM lookup) waits until the
    // answer is written: see `AnswerThenRun`.
    let (answer, deferred) = after_answer::collect(state.ingest.webhook(plugin_id, request)).await;
    let answer = answer.map_err(ApiError::from);
    // Refused by the connector or the host: a failure counted against the source.
    let status = match &answer {
        Ok(answer) => answer.status,
        Err(e) => e.status().as_u16(),
    };
    if matches!(status, 400 | 401 | 403 | 404 | 422)
        && let Some(source) = source
    {
        let _ = failures.take(source, Instant::now());
    }
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return e.into_response(),
    };
    if deferred.is_empty() {
        return answer_response(answer, axum::body::Body::from);
    }
    answer_response(answer, |bytes| {
        axum::body::Body::new(AnswerThenRun {
            body: axum::body::Body::from(bytes),
            _then: deferred,
        })
    })
}

/// The connector's answer as an HTTP response, its body made by `body`.
fn answer_response(
    answer: switchboard_app::ingest::WebhookResponse,
    body: impl FnOnce(Vec<u8>) -> axum::body::Body,
) -> Response {
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
        .body(body(answer.body))
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}

/// A response body that spawns the request's deferred work when hyper drops it,
/// which it does once the last byte has gone to the connection (or the connection
/// failed): routing and CRM lookups never compete with writing the answer.
struct AnswerThenRun {
    body: axum::body::Body,
    _then: after_answer::Deferred,
}

impl HttpBody for AnswerThenRun {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
