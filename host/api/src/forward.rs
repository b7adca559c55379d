//! API requests that must run on another node: a call's controls (hang up, hold,
//! transfer…) act on the node whose SIP and RTP sockets carry the call (its record
//! names it). A request for a call another node carries is forwarded there over the
//! relay (NATS request/reply) and answered with that node's answer; the receiving
//! node runs it through its own router, authentication included. A list of live
//! calls is asked of every live node the same way and merged ([`calls_on_other_nodes`]).
//! Only with several nodes (a relay); one node runs everything itself.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use switchboard_app::relay::{
    ForwardedRequest, ForwardedResponse, HttpRunner, base64_of, bytes_of,
};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::state::AppState;

/// Marks a request another node forwarded, so it is never forwarded again.
const FORWARDED: &str = "x-switchboard-forwarded";

/// The headers a forwarded request keeps.
const KEPT: [&str; 3] = ["authorization", "content-type", "accept"];

/// The call a request acts on, when it is a call control: `POST
/// /api/v1/calls/{id}/…`.
fn controlled_call(request: &Request) -> Option<String> {
    if request.method() != Method::POST {
        return None;
    }
    let rest = request.uri().path().strip_prefix("/api/v1/calls/")?;
    let (id, action) = rest.split_once('/')?;
    (!id.is_empty() && !action.is_empty()).then(|| id.to_string())
}

/// Middleware: forwards a call control to the node carrying the call.
pub async fn calls_to_their_node(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(relay) = state.app.relay.clone() else {
        return next.run(request).await;
    };
    if request.headers().contains_key(FORWARDED) {
        return next.run(request).await;
    }
    let Some(call) = controlled_call(&request) else {
        return next.run(request).await;
    };
    let node = match state.store.call(&call).await {
        Ok(record) => record.detail["node"].as_str().map(str::to_owned),
        Err(_) => None,
    };
    let Some(node) = node.filter(|n| n != relay.node()) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, state.body_limits.api_bytes).await else {
        return ApiError::from(switchboard_app::AppError::new(
            switchboard_app::ErrorKind::PayloadTooLarge,
            "payload_too_large",
            "the request body is over the API's limit",
        ))
        .into_response();
    };
    let forwarded = ForwardedRequest {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: kept_headers(&parts.headers),
        body: base64_of(&body),
    };
    match relay.forward(&node, forwarded).await {
        Ok(answer) => response_of(answer),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// How long a list waits for another node's part of it.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);

/// The headers of `headers` a forwarded request keeps.
fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| KEPT.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// The live calls the other live nodes list for the same `GET` (`/calls` or
/// `/calls/me`, as the same caller), so a list answers for the whole cluster
/// whichever node it reaches. Empty on one node, and for a request another node
/// forwarded (it gathers itself). A node that does not answer within a few seconds
/// is left out of the list (and logged): it is dying, and its calls with it.
pub async fn calls_on_other_nodes(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Vec<Value> {
    let (Some(relay), Some(voice)) = (state.app.relay.clone(), state.voice.clone()) else {
        return Vec::new();
    };
    if headers.contains_key(FORWARDED) {
        return Vec::new();
    }
    let request = ForwardedRequest {
        method: Method::GET.to_string(),
        uri: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: kept_headers(headers),
        body: String::new(),
    };
    let nodes = voice.other_live_nodes().await;
    let answers = futures::future::join_all(nodes.iter().map(|node| {
        let (relay, request) = (relay.clone(), request.clone());
        async move { tokio::time::timeout(GATHER_TIMEOUT, relay.forward(node, request)).await }
    }))
    .await;
    let mut calls = Vec::new();
    for (node, answer) in nodes.iter().zip(answers) {
        let listed = match answer {
            Ok(Ok(answer)) if answer.status == 200 => {
                serde_json::from_slice::<Value>(&bytes_of(&answer.body))
                    .ok()
                    .and_then(|mut v| v.get_mut("calls").map(Value::take))
                    .and_then(|v| match v {
                        Value::Array(calls) => Some(calls),
                        _ => None,
                    })
                    .ok_or_else(|| "an answer without a calls list".to_string())
            }
            Ok(Ok(answer)) => Err(format!("HTTP {}", answer.status)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in time".to_string()),
        };
        match listed {
            Ok(listed) => calls.extend(listed),
            Err(e) => tracing::warn!(node, "another node's live calls are not listed: {e}"),
        }
    }
    calls
}

/// Hands an agent's softphone offer to `node` (`POST /api/v1/softphone/offer` there,
/// signed in with the agent's own `token`) and returns that node's SDP answer, or
/// why there is none.
pub async fn softphone_offer(
    relay: &switchboard_app::relay::Relay,
    node: &str,
    token: &str,
    sdp: &str,
) -> Result<String, String> {
    let body = serde_json::json!({ "sdp": sdp }).to_string();
    let request = ForwardedRequest {
        method: Method::POST.to_string(),
        uri: "/api/v1/softphone/offer".to_string(),
        headers: vec![
            ("authorization".to_string(), format!("Bearer {token}")),
            ("content-type".to_string(), "application/json".to_string()),
        ],
        body: base64_of(body.as_bytes()),
    };
    let answer = relay
        .forward(node, request)
        .await
        .map_err(|e| format!("node {node}: {}", e.message()))?;
    let value: Value = serde_json::from_slice(&bytes_of(&answer.body)).unwrap_or(Value::Null);
    match value["sdp"].as_str() {
        Some(sdp) if answer.status == 200 => Ok(sdp.to_string()),
        _ => Err(format!(
            "node {node} refused the offer (HTTP {}): {}",
            answer.status,
            value["error"]["message"]
                .as_str()
                .unwrap_or("no reason given")
        )),
    }
}

fn response_of(answer: ForwardedResponse) -> Response {
    let mut response = Response::new(Body::from(bytes_of(&answer.body)));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in answer.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            response.headers_mut().append(k, v);
        }
    }
    response
}

/// Runs requests other nodes forward through this node's router.
pub struct RouterRunner(pub axum::Router);

impl HttpRunner for RouterRunner {
    fn run(
        &self,
        request: ForwardedRequest,
    ) -> futures::future::BoxFuture<'static, ForwardedResponse> {
        let router = self.0.clone();
        Box::pin(async move {
            let mut builder = axum::http::Request::builder()
                .method(request.method.as_str())
                .uri(request.uri.as_str())
                .header(FORWARDED, "1");
            for (k, v) in &request.headers {
                if KEPT.contains(&k.to_ascii_lowercase().as_str()) {
                    builder = builder.header(k, v);
                }
            }
            let Ok(built) = builder.body(Body::from(bytes_of(&request.body))) else {
                return ForwardedResponse {
                    status: 400,
                    headers: vec![],
                    body: base64_of(b"malformed forwarded request"),
                };
            };
            let response = match router.oneshot(built).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let body = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
                .await
                .unwrap_or_default();
            ForwardedResponse {
                status,
                headers,
                body: base64_of(&body),
            }
        })
    }
}

/// Serves other nodes' forwarded requests with `router`, when there are nodes.
pub fn serve_forwarded(state: &AppState, router: &axum::Router) {
    if let Some(relay) = state.app.relay.clone() {
        tokio::spawn(relay.serve_http(Arc::new(RouterRunner(router.clone()))));
    }
}
