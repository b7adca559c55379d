//! `/api/v1` resources: contacts, conversations, replies, the outbox.
//!
//! Handlers parse the request, call the contact, conversation or outbox use case (or
//! read the store for a plain lookup) and shape JSON.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::{ConversationStatus, OutboxStatus};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use switchboard_app::compose::ReplyContent;

/// `?identity=kind:value`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// The identity to look up, written `kind:value` (`phone:+15551234567`,
    /// `email:…`, `whatsapp:…`, `telegram:…`); normalized first. Without it the
    /// answer is 400.
    identity: Option<String>,
}

/// `GET /api/v1/contacts?identity=phone:+15551234567`.
#[utoipa::path(get, path = "/contacts", tag = "contacts",
    params(ContactQuery),
    responses(
        (status = 200, description = "`{contacts}`: the contact owning the identity (one item), \
            or none (empty)", body = Object),
        (status = 400, description = "No `identity`, or it is not a valid `kind:value`",
            body = ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact: `id`, `display_name`, `attributes`, \
            `identities`, `consents` (per identity and channel), `merged_into`, `created_at`, \
            `updated_at`, and `crm`: what each CRM plugin said, keyed by plugin id \
            (`external_id`, `url`, `attributes`…)", body = Object),
        (status = 404, description = "No such contact", body = ErrorBody),
    ))]
pub async fn get_contact(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let contact = state.store.contact(&id).await?;
    let mut view = json!(contact);
    view["crm"] = state.crm.links(&contact).await?;
    Ok(Json(view))
}

/// Paging for timelines.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// At most this many events (default 200; values outside 1–1000 are clamped).
    limit: Option<u32>,
    /// An event id: return events older than it.
    before: Option<String>,
}

/// `GET /api/v1/contacts/{id}/timeline`: every channel, oldest first.
#[utoipa::path(get, path = "/contacts/{id}/timeline", tag = "contacts",
    params(("id" = String, Path, description = "Contact id"), TimelineQuery),
    responses(
        (status = 200, description = "`{contact_id, events}`: the contact's timeline events \
            across every channel, oldest first", body = Object),
        (status = 404, description = "No such contact, or no such `before` event",
            body = ErrorBody),
    ))]
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
#[derive(Deserialize, ToSchema)]
pub struct AddIdentity {
    /// `phone`, `email`, `whatsapp`, `telegram`…
    kind: String,
    /// The address; normalized (phones to E.164).
    value: String,
}

/// `POST /api/v1/contacts/{id}/identities`: link another number, email or handle.
#[utoipa::path(post, path = "/contacts/{id}/identities", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    request_body = AddIdentity,
    responses(
        (status = 201, description = "The contact with the identity linked (same shape as \
            `GET /contacts/{id}`)", body = Object),
        (status = 400, description = "Not a valid identity", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "The identity belongs to another contact, or the contact \
            was merged into another", body = ErrorBody),
    ))]
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
#[derive(Deserialize, ToSchema)]
pub struct MergeBody {
    /// The contact merged into `{id}`.
    merge_contact_id: String,
}

/// `POST /api/v1/contacts/{id}/merge`: reversible merge.
#[utoipa::path(post, path = "/contacts/{id}/merge", tag = "contacts",
    params(("id" = String, Path, description = "The contact kept")),
    request_body = MergeBody,
    responses(
        (status = 200, description = "`{merge_id, contact}`: `merge_id` is the merge's ledger \
            record (an object: its `id` is what `POST /merges/{id}/undo` takes, plus \
            `keep_contact_id`, `merged_contact_id`, `actor`, `moved`, `created_at`, \
            `undone_at`, `undone_by`); `contact` is the contact kept", body = Object),
        (status = 400, description = "A contact cannot be merged into itself", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "One of the contacts was already merged", body = ErrorBody),
    ))]
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

/// `POST /api/v1/merges/{id}/undo` answer.
#[derive(Serialize, ToSchema)]
pub struct MergeUndone {
    /// The merge undone.
    undone: String,
}

/// `POST /api/v1/merges/{id}/undo`: undo a merge exactly.
#[utoipa::path(post, path = "/merges/{id}/undo", tag = "contacts",
    params(("id" = String, Path, description = "Merge id (the `id` of the merge's ledger record)")),
    responses(
        (status = 200, description = "The merge is undone", body = MergeUndone),
        (status = 404, description = "No such merge", body = ErrorBody),
        (status = 409, description = "The merge was already undone, or the merged contact is no \
            longer merged into the kept one", body = ErrorBody),
    ))]
pub async fn undo_merge(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<MergeUndone>> {
    state.contacts.undo_merge(&auth.agent.id, &id).await?;
    Ok(Json(MergeUndone { undone: id }))
}

/// `?status=open`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// Only conversations in this status: `open`, `pending`, `snoozed` or `resolved`.
    status: Option<String>,
    /// At most this many (default 100; values outside 1–1000 are clamped).
    limit: Option<u32>,
}

/// `GET /api/v1/conversations?status=open`.
#[utoipa::path(get, path = "/conversations", tag = "conversations",
    params(ConversationQuery),
    responses(
        (status = 200, description = "`{conversations}`: the conversations", body = Object),
        (status = 400, description = "Unknown status", body = ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The conversation's fields (`id`, `display_id`, \
            `contact_id`, `status`, …) with `timeline` (its events, oldest first) and \
            `contact`", body = Object),
        (status = 404, description = "No such conversation", body = ErrorBody),
    ))]
pub async fn get_conversation(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.contacts.conversation(&id).await?))
}

/// `PUT /api/v1/conversations/{id}/status` body.
#[derive(Deserialize, ToSchema)]
pub struct StatusBody {
    /// `open`, `pending`, `snoozed` or `resolved`.
    status: String,
}

/// `PUT /api/v1/conversations/{id}/status`.
#[utoipa::path(put, path = "/conversations/{id}/status", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "The conversation with its new status (`id`, \
            `display_id`, `contact_id`, `status`, …)", body = Object),
        (status = 400, description = "Unknown status", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    ))]
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
#[derive(Deserialize, ToSchema)]
pub struct ReplyBody {
    /// The reply; trimmed, at most 4000 characters (and the channel's own limit);
    /// may be empty when files are attached; ignored with a template.
    #[serde(default)]
    body: String,
    /// A channel plugin id or channel name to answer on instead of the conversation's
    /// current one.
    channel: Option<String>,
    /// Upload ids from `POST /attachments`, in order.
    #[serde(default)]
    attachments: Vec<String>,
    /// An approved template, sent even outside the messaging window:
    /// `{name, language, parameters}`; each parameter is a string or
    /// `{name, value}` (named placeholders).
    #[schema(value_type = Option<Object>)]
    template: Option<switchboard_app::compose::Template>,
    /// Choices to tap: `{"buttons": [{id, title}]}` or
    /// `{"list": {button, choices: [{id, title, description?}]}}`.
    #[schema(value_type = Option<Object>)]
    interactive: Option<switchboard_app::compose::Interactive>,
    /// E-mail replies: `{subject?, cc?: [address], bcc?: [address],
    /// include_quote?: bool}`. The subject defaults to `Re: ` and the answered
    /// e-mail's subject; the quote is on unless `include_quote` is false.
    #[schema(value_type = Option<Object>)]
    email: Option<switchboard_app::mail::EmailReply>,
}

/// `POST /api/v1/conversations/{id}/messages`: reply on the conversation's
/// current channel (or `channel`), through the outbox.
#[utoipa::path(post, path = "/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = ReplyBody,
    responses(
        (status = 202, description = "`{event, outbox}`: the reply's timeline event (delivery \
            `queued`) and its outbox row; it is sent in the background", body = Object),
        (status = 400, description = "Empty or too long, no such channel, no channel yet, or \
            the contact has no identity to reach on it", body = ErrorBody),
        (status = 404, description = "No such conversation or channel plugin", body = ErrorBody),
        (status = 422, description = "`opted_out`: the contact opted out of that channel; \
            `window_closed`: a free-form reply outside the channel's messaging window (the \
            error carries `closed_at`; send a template); `templates_unsupported` / \
            `interactive_unsupported`: the channel has none", body = ErrorBody),
    ))]
pub async fn reply(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ReplyBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (event, outbox) = state
        .outbox
        .reply(
            &auth.agent.id,
            &id,
            ReplyContent {
                body: body.body,
                attachments: body.attachments,
                template: body.template,
                interactive: body.interactive,
                email: body.email,
            },
            body.channel.as_deref(),
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "event": event, "outbox": outbox })),
    ))
}

/// `?status=dead`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// Only rows in this status: `pending`, `sending`, `sent` or `dead`.
    status: Option<String>,
}

/// `GET /api/v1/outbox?status=dead`: dead letters and pending sends.
#[utoipa::path(get, path = "/outbox", tag = "outbox",
    params(OutboxQuery),
    responses(
        (status = 200, description = "`{outbox}`: outbox rows, newest first (at most 500)",
            body = Object),
        (status = 400, description = "Unknown status", body = ErrorBody),
    ))]
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

/// `POST /api/v1/outbox/{id}/retry` answer.
#[derive(Serialize, ToSchema)]
pub struct OutboxRequeued {
    /// The outbox row put back in line.
    requeued: String,
}

/// `POST /api/v1/outbox/{id}/retry`: put a dead letter back in line.
#[utoipa::path(post, path = "/outbox/{id}/retry", tag = "outbox",
    params(("id" = String, Path, description = "Outbox row id")),
    responses(
        (status = 200, description = "Requeued for immediate retry", body = OutboxRequeued),
        (status = 404, description = "No such outbox row", body = ErrorBody),
        (status = 409, description = "The row is not dead", body = ErrorBody),
    ))]
pub async fn retry_outbox(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OutboxRequeued>> {
    state.outbox.retry(&auth.agent.id, &id).await?;
    Ok(Json(OutboxRequeued { requeued: id }))
}

/// `POST /api/v1/conversations/{id}/typing`: the agent is typing (shown to webchat
/// visitors; other channels have no typing indicator).
#[utoipa::path(post, path = "/conversations/{id}/typing", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 204, description = "Told the webchat visitor, if the conversation is on \
            webchat"),
        (status = 404, description = "No such conversation", body = ErrorBody),
    ))]
pub async fn typing(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.webchat.agent_typing(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
