//! `/api/v1` resources: contacts, conversations, replies, the outbox.
//!
//! Handlers parse the request, call the contact, conversation or outbox use case (or
//! read the store for a plain lookup) and shape JSON.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{ConversationStatus, OutboxStatus};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `?identity=kind:value`.
#[derive(Deserialize)]
pub struct ContactQuery {
    identity: Option<String>,
}

/// `GET /api/v1/contacts?identity=phone:+15551234567`.
pub async fn find_contacts(
    State(state): State<AppState>,
    _auth: Auth,
    Query(q): Query<ContactQuery>,
) -> ApiResult<Json<Value>> {
    let Some(identity) = q.identity else {
        return Err(ApiError::bad_request(
            "give ?identity=kind:value, e.g. phone:+15551234567",
        ));
    };
    let found = state.contacts.find(&identity).await?;
    Ok(Json(
        json!({ "contacts": found.into_iter().collect::<Vec<_>>() }),
    ))
}

/// `GET /api/v1/contacts/{id}`.
pub async fn get_contact(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let contact = state.store.contact(&id).await?;
    Ok(Json(json!(contact)))
}

/// Paging for timelines.
#[derive(Deserialize)]
pub struct TimelineQuery {
    limit: Option<u32>,
    /// An event id: return events older than it.
    before: Option<String>,
}

/// `GET /api/v1/contacts/{id}/timeline`: every channel, oldest first.
pub async fn contact_timeline(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> ApiResult<Json<Value>> {
    let events = state
        .contacts
        .timeline(&id, q.limit.unwrap_or(200), q.before.as_deref())
        .await?;
    Ok(Json(json!({ "contact_id": id, "events": events })))
}

/// `POST /api/v1/contacts/{id}/identities` body.
#[derive(Deserialize)]
pub struct AddIdentity {
    kind: String,
    value: String,
}

/// `POST /api/v1/contacts/{id}/identities`: link another number, email or handle.
pub async fn add_identity(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<AddIdentity>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let contact = state
        .contacts
        .add_identity(&auth.agent.id, &id, &body.kind, &body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(contact))))
}

/// `POST /api/v1/contacts/{id}/merge` body: the contact folded into `{id}`.
#[derive(Deserialize)]
pub struct MergeBody {
    merge_contact_id: String,
}

/// `POST /api/v1/contacts/{id}/merge`: reversible merge.
pub async fn merge_contacts(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<MergeBody>,
) -> ApiResult<Json<Value>> {
    let (merge_id, contact) = state
        .contacts
        .merge(&auth.agent.id, &id, &body.merge_contact_id)
        .await?;
    Ok(Json(json!({ "merge_id": merge_id, "contact": contact })))
}

/// `POST /api/v1/merges/{id}/undo`.
pub async fn undo_merge(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.contacts.undo_merge(&auth.agent.id, &id).await?;
    Ok(Json(json!({ "undone": id })))
}

/// `?status=open`.
#[derive(Deserialize)]
pub struct ConversationQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/conversations?status=open`.
pub async fn list_conversations(
    State(state): State<AppState>,
    _auth: Auth,
    Query(q): Query<ConversationQuery>,
) -> ApiResult<Json<Value>> {
    let status = q
        .status
        .map(|s| s.parse::<ConversationStatus>())
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let rows = state
        .store
        .list_conversations(status, q.limit.unwrap_or(100).clamp(1, 1000))
        .await?;
    Ok(Json(json!({ "conversations": rows })))
}

/// `GET /api/v1/conversations/{id}` with its timeline.
pub async fn get_conversation(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.contacts.conversation(&id).await?))
}

/// `PUT /api/v1/conversations/{id}/status` body.
#[derive(Deserialize)]
pub struct StatusBody {
    status: String,
}

/// `PUT /api/v1/conversations/{id}/status`.
pub async fn set_conversation_status(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> ApiResult<Json<Value>> {
    let conversation = state
        .contacts
        .set_conversation_status(&id, &body.status)
        .await?;
    Ok(Json(json!(conversation)))
}

/// `POST /api/v1/conversations/{id}/messages` body.
#[derive(Deserialize)]
pub struct ReplyBody {
    body: String,
    /// A channel plugin id to answer on instead of the conversation's current one.
    channel: Option<String>,
}

/// `POST /api/v1/conversations/{id}/messages`: reply on the conversation's
/// current channel (or `channel`), through the outbox.
pub async fn reply(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ReplyBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (event, outbox) = state
        .outbox
        .reply(&auth.agent.id, &id, body.body, body.channel.as_deref())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "event": event, "outbox": outbox })),
    ))
}

/// `?status=dead`.
#[derive(Deserialize)]
pub struct OutboxQuery {
    status: Option<String>,
}

/// `GET /api/v1/outbox?status=dead`: dead letters and pending sends.
pub async fn list_outbox(
    State(state): State<AppState>,
    _auth: Auth,
    Query(q): Query<OutboxQuery>,
) -> ApiResult<Json<Value>> {
    let status = q
        .status
        .map(|s| s.parse::<OutboxStatus>())
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(
        json!({ "outbox": state.store.list_outbox(status, 500).await? }),
    ))
}

/// `POST /api/v1/outbox/{id}/retry`: put a dead letter back in line.
pub async fn retry_outbox(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.outbox.retry(&auth.agent.id, &id).await?;
    Ok(Json(json!({ "requeued": id })))
}

/// `POST /api/v1/conversations/{id}/typing`: the agent is typing (shown to webchat
/// visitors; other channels have no typing indicator).
pub async fn typing(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.webchat.agent_typing(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
