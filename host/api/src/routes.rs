//! `/api/v1` resources: contacts, conversations, replies, the outbox.
//!
//! Handlers validate input, call the store and shape JSON; the rules live in
//! the store and core crates.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{ConversationStatus, OutboxStatus, parse_identity_query};
use switchboard_store::NewReply;

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};

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
    let identity = parse_identity_query(&identity, state.config.default_region.as_deref())?;
    let found = state.store.contact_by_identity(&identity).await?;
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
    state.store.contact(&id).await?;
    let events = state
        .store
        .contact_timeline(
            &id,
            q.limit.unwrap_or(200).clamp(1, 1000),
            q.before.as_deref(),
        )
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
    let identity = switchboard_core::normalize_identity(
        &body.kind,
        &body.value,
        state.config.default_region.as_deref(),
    )?;
    state.store.add_identity(&id, &identity).await?;
    state
        .store
        .audit(
            &auth.agent.id,
            "contact.add_identity",
            Some(&id),
            serde_json::json!({"kind": identity.kind(), "value": identity.value()}),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!(state.store.contact(&id).await?)),
    ))
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
    let merge_id = state
        .store
        .merge_contacts(&id, &body.merge_contact_id, &auth.agent.id)
        .await?;
    Ok(Json(
        json!({ "merge_id": merge_id, "contact": state.store.contact(&id).await? }),
    ))
}

/// `POST /api/v1/merges/{id}/undo`.
pub async fn undo_merge(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.store.unmerge(&id, &auth.agent.id).await?;
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
    let conversation = state.store.conversation(&id).await?;
    let timeline = state.store.conversation_timeline(&id).await?;
    let contact = state.store.contact(&conversation.contact_id).await?;
    let mut v = json!(conversation);
    v["timeline"] = json!(timeline);
    v["contact"] = json!(contact);
    Ok(Json(v))
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
    let status: ConversationStatus = body
        .status
        .parse()
        .map_err(|e: switchboard_core::ParseEnumError| ApiError::bad_request(e.to_string()))?;
    state
        .store
        .set_conversation_status(&id, status, crate::now_ms())
        .await?;
    Ok(Json(json!(state.store.conversation(&id).await?)))
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
    crate::desk::text_field("body", &body.body)?;
    let conversation = state.store.conversation(&id).await?;
    let plugin_id = match &body.channel {
        Some(c) => state
            .channel_plugin(c)
            .await
            .ok_or_else(|| ApiError::bad_request(format!("no enabled channel plugin `{c}`")))?,
        None => conversation.last_plugin_id.clone().ok_or_else(|| {
            ApiError::bad_request("the conversation has no channel yet; give `channel`")
        })?,
    };
    let info = state
        .channel_info(&plugin_id)
        .await
        .map_err(crate::hooks::call_error)?;
    let contact = state.store.contact(&conversation.contact_id).await?;
    let to = contact
        .latest_identity(&info.identity_kind)
        .map(|i| i.identity())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "the contact has no {} identity to reach on {}",
                info.identity_kind, info.channel
            ))
        })?;
    let (event, outbox) = state
        .store
        .create_reply(NewReply {
            conversation_id: id.clone(),
            author_agent_id: Some(auth.agent.id.clone()),
            body: body.body,
            plugin_id,
            channel: info.channel,
            to,
            now_ms: crate::now_ms(),
        })
        .await?;
    state.outbox_wake.notify_one();
    state.realtime.publish(
        "timeline.created",
        state.conversation_audience(&id),
        json!({"conversation_id": id, "contact_id": event.contact_id, "event_id": event.id}),
    );
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
    state.store.outbox_requeue(&id, crate::now_ms()).await?;
    state
        .store
        .audit(
            &auth.agent.id,
            "outbox.retry",
            Some(&id),
            serde_json::json!(null),
        )
        .await?;
    state.outbox_wake.notify_one();
    Ok(Json(json!({ "requeued": id })))
}

/// `POST /api/v1/conversations/{id}/typing`: the agent is typing (shown to webchat
/// visitors; other channels have no typing indicator).
pub async fn typing(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let conversation = state.store.conversation(&id).await?;
    if conversation.last_channel.as_deref() == Some(crate::webchat::PLUGIN_ID) {
        crate::webchat::agent_typing(&state, &conversation.contact_id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
