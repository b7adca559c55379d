//! `/webchat/v1`: the webchat widget's routes (start a chat, transcript, send a
//! message) and the visitor's WebSocket. Visitors authenticate with the bearer token
//! their chat started with. The use cases are `switchboard_app::webchat`'s.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_store::WebchatVisitor;

use crate::error::{ApiError, ApiResult};
use crate::sockets::{SocketSlot, close_rate_limited};
use crate::state::AppState;

fn visitor_token(headers: &HeaderMap) -> ApiResult<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <visitor token>"))
}

async fn visitor(state: &AppState, headers: &HeaderMap) -> ApiResult<WebchatVisitor> {
    Ok(state.webchat.visitor(&visitor_token(headers)?).await?)
}

/// `POST /webchat/v1/sessions` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

/// `POST /webchat/v1/sessions`: start a chat.
pub async fn start(
    State(state): State<AppState>,
    extensions: Extensions,
    Json(body): Json<SessionBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let addr = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (visitor, token) = state
        .webchat
        .start(addr, &body.name, body.email.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"visitor_id": visitor.id, "token": token, "name": visitor.name})),
    ))
}

/// `GET /webchat/v1/transcript`.
pub async fn transcript(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let visitor = visitor(&state, &headers).await?;
    let messages = state.webchat.transcript(&visitor).await?;
    Ok(Json(
        json!({"visitor_id": visitor.id, "name": visitor.name, "messages": messages}),
    ))
}

/// `GET /webchat/v1/survey`: the visitor's open rating card, `{questions: [...]}`
/// (each with `id`, `kind`, `prompt`, `low`, `high`, `low_label`, `high_label`); empty
/// when nothing is asked.
pub async fn survey(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let visitor = visitor(&state, &headers).await?;
    Ok(Json(state.surveys.card(&visitor.identity()).await?))
}

/// `POST /webchat/v1/survey` body: a score per question kind, and a comment.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyBody {
    answers: std::collections::HashMap<String, i64>,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /webchat/v1/survey`: the visitor answers their rating card; answers the card
/// as it stands after (empty when every question is answered).
pub async fn answer_survey(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<SurveyBody>,
) -> ApiResult<Json<Value>> {
    let visitor = visitor(&state, &headers).await?;
    let mut form: std::collections::HashMap<String, String> = body
        .answers
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    if let Some(c) = body.comment {
        form.insert("comment".into(), c);
    }
    Ok(Json(
        state
            .surveys
            .answer_card(&visitor.identity(), &form)
            .await?,
    ))
}

/// `POST /webchat/v1/messages` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    client_id: String,
    body: String,
}

/// `POST /webchat/v1/messages`: the customer wrote.
pub async fn post_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<MessageBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let visitor = visitor(&state, &headers).await?;
    let message = state
        .webchat
        .post_message(&visitor, &body.client_id, &body.body)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"message": message}))))
}

/// `?token=`.
#[derive(Deserialize)]
pub struct SocketQuery {
    token: String,
}

/// `GET /webchat/v1/ws?token=…`.
pub async fn socket(
    State(state): State<AppState>,
    Query(q): Query<SocketQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let visitor = state.webchat.visitor(&q.token).await?;
    let slot = state.sockets.acquire(format!("visitor:{}", visitor.id))?;
    let max = state.sockets.limits().max_message_bytes;
    Ok(ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session(state, socket, visitor, slot)))
}

async fn session(
    state: AppState,
    mut socket: WebSocket,
    visitor: WebchatVisitor,
    _slot: SocketSlot,
) {
    let mut pushes = state.webchat.connect(&visitor);
    let mut last_typing = tokio::time::Instant::now() - Duration::from_secs(10);
    let mut budget = state.sockets.message_budget();
    if socket
        .send(Message::Text(json!({"type": "hello"}).to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            push = pushes.next() => match push {
                Some(v) => {
                    if socket.send(Message::Text(v.to_string().into())).await.is_err() {
                        return;
                    }
                }
                // Events were lost to this socket: the page reloads the transcript on
                // reconnect.
                None => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(_))) if !budget.take() => {
                    close_rate_limited(&mut socket).await;
                    return;
                }
                Some(Ok(Message::Text(text))) => {
                    let typing = serde_json::from_str::<Value>(&text)
                        .is_ok_and(|v| v["type"] == "typing");
                    // At most one typing signal a second reaches the agents.
                    if typing && last_typing.elapsed() >= Duration::from_secs(1) {
                        last_typing = tokio::time::Instant::now();
                        state.webchat.visitor_typing(&visitor).await;
                    }
                }
                Some(Ok(Message::Ping(p))) => {
                    if socket.send(Message::Pong(p)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
