//! `/api/v1` routes of the agent desk: my conversations, read markers, internal notes,
//! reply channels, dispositions and resolving, the hand-off draft, the customer
//! panel's profile and contact edits. The use cases are `switchboard_app::desk`'s.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `GET /api/v1/agents/me/conversations`: what I am working on.
#[utoipa::path(get, path = "/agents/me/conversations", tag = "conversations",
    responses(
        (status = 200, description = "`{conversations}`: the conversations whose task the caller \
            holds, longest-waiting customer first; each item has `display`, `conversation`, \
            `contact` (`id`, `display_name`), `task` (`id`, `state`, `channel`, `queue`, \
            `assigned_at`), `channels`, `unread`, `waiting_since` and `last_event`",
            body = Object),
    ))]
pub async fn my_conversations(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let items = state.desk.my_conversations(&auth.agent.id).await?;
    Ok(Json(json!({ "conversations": items })))
}

/// `POST /api/v1/conversations/{id}/read` answer.
#[derive(Serialize, ToSchema)]
pub struct ConversationRead {
    /// Always 0: everything up to now is read.
    unread: u32,
}

/// `POST /api/v1/conversations/{id}/read`: my read marker moves to now.
#[utoipa::path(post, path = "/conversations/{id}/read", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The caller's read marker is now", body = ConversationRead),
        (status = 404, description = "No such conversation", body = ErrorBody),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversationRead>> {
    state.desk.mark_read(&auth.agent.id, &id).await?;
    Ok(Json(ConversationRead { unread: 0 }))
}

/// `POST /api/v1/conversations/{id}/notes` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// The note; trimmed, not empty, at most 4000 characters.
    body: String,
}

/// `POST /api/v1/conversations/{id}/notes`: an internal note.
#[utoipa::path(post, path = "/conversations/{id}/notes", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = NoteBody,
    responses(
        (status = 201, description = "`{event}`: the note's timeline event (kind `note`, \
            direction `internal`)", body = Object),
        (status = 400, description = "The note is empty or too long", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    ))]
pub async fn add_note(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event = state.desk.add_note(&auth.agent.id, &id, &body.body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "event": event }))))
}

/// `GET /api/v1/conversations/{id}/reply-channels`.
#[utoipa::path(get, path = "/conversations/{id}/reply-channels", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "`{channels, default}`: each channel the contact can be \
            reached on (`plugin_id`, `channel`, `display_name`, `identity`, `allowed`, `reason` \
            = `opted_out` when consent forbids it); `default` is the conversation's current \
            channel plugin if allowed, else null", body = Object),
        (status = 404, description = "No such conversation", body = ErrorBody),
    ))]
pub async fn reply_channels(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.desk.reply_channels(&id).await?))
}

/// `GET /api/v1/dispositions`: the outcomes agents choose from when resolving.
#[utoipa::path(get, path = "/dispositions", tag = "conversations",
    responses(
        (status = 200, description = "`{dispositions}`: each with `code` and `label`",
            body = Object),
    ))]
pub async fn dispositions(State(state): State<AppState>, _auth: Auth) -> Json<Value> {
    Json(json!({ "dispositions": state.desk.dispositions() }))
}

/// `POST /api/v1/conversations/{id}/resolve` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// A disposition code from `GET /dispositions`.
    disposition: String,
    /// A note on the outcome; at most 4000 characters.
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/conversations/{id}/resolve`: record the outcome, resolve the
/// conversation and complete its task.
#[utoipa::path(post, path = "/conversations/{id}/resolve", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "`{conversation, event}`: the conversation as resolved and \
            its `disposition` timeline event", body = Object),
        (status = 400, description = "Unknown disposition, or the note is too long",
            body = ErrorBody),
        (status = 403, description = "Another agent holds this conversation", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
        (status = 409, description = "The conversation's task cannot be completed in its \
            current state", body = ErrorBody),
    ))]
pub async fn resolve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ResolveBody>,
) -> ApiResult<Json<Value>> {
    let (conversation, event) = state
        .desk
        .resolve(&auth.agent, &id, &body.disposition, body.note.as_deref())
        .await?;
    Ok(Json(
        json!({ "conversation": conversation, "event": event }),
    ))
}

/// `GET /api/v1/conversations/{id}/handoff-draft`.
#[utoipa::path(get, path = "/conversations/{id}/handoff-draft", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The host's draft of the hand-off context: `reason`, \
            `steps`, `commitments`, `sentiment` (`negative`, `neutral` or `positive`) and \
            `summary`", body = Object),
        (status = 404, description = "No such conversation", body = ErrorBody),
    ))]
pub async fn handoff_draft(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.desk.handoff_draft(&id).await?))
}

/// `GET /api/v1/contacts/{id}/profile`: the customer panel.
#[utoipa::path(get, path = "/contacts/{id}/profile", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "`{contact, preferred_channel, language, conversations, \
            last_interaction}`: the contact, their preferred channel and language, their \
            conversations with channels and outcome, and the last resolved interaction (or \
            null)", body = Object),
        (status = 404, description = "No such contact", body = ErrorBody),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.desk.profile(&id).await?))
}

/// `PATCH /api/v1/contacts/{id}` body: absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    /// The new name, at most 200 characters; `null` or blank clears it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    display_name: Option<Option<String>>,
    /// Merged into the contact's attributes (language, preferred channel…); a `null`
    /// value removes that key.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Map<String, Value>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// `PATCH /api/v1/contacts/{id}`: name and attributes (language, preferred channel…).
#[utoipa::path(patch, path = "/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    request_body = ContactPatch,
    responses(
        (status = 200, description = "The contact as changed: `id`, `display_name`, \
            `attributes`, `identities`, `consents`, `merged_into`, `created_at`, `updated_at`",
            body = Object),
        (status = 400, description = "The name is longer than 200 characters", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "The contact was merged into another", body = ErrorBody),
    ))]
pub async fn update_contact(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ContactPatch>,
) -> ApiResult<Json<Value>> {
    let contact = state
        .desk
        .update_contact(&auth.agent.id, &id, body.display_name, body.attributes)
        .await?;
    Ok(Json(json!(contact)))
}
