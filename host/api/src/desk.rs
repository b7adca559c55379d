//! `/api/v1` routes of the agent desk: my conversations, read markers, internal notes,
//! reply channels, dispositions and resolving, the hand-off draft, the customer
//! panel's profile and contact edits. The use cases are `switchboard_app::desk`'s.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::state::AppState;

/// `GET /api/v1/agents/me/conversations`: what I am working on.
pub async fn my_conversations(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let items = state.desk.my_conversations(&auth.agent.id).await?;
    Ok(Json(json!({ "conversations": items })))
}

/// `POST /api/v1/conversations/{id}/read`.
pub async fn mark_read(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.desk.mark_read(&auth.agent.id, &id).await?;
    Ok(Json(json!({"unread": 0})))
}

/// `POST /api/v1/conversations/{id}/notes` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    body: String,
}

/// `POST /api/v1/conversations/{id}/notes`: an internal note.
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
pub async fn reply_channels(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.desk.reply_channels(&id).await?))
}

/// `GET /api/v1/dispositions`.
pub async fn dispositions(State(state): State<AppState>, _auth: Auth) -> Json<Value> {
    Json(json!({ "dispositions": state.desk.dispositions() }))
}

/// `POST /api/v1/conversations/{id}/resolve` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    disposition: String,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/conversations/{id}/resolve`: record the outcome, resolve the
/// conversation and complete its task.
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
pub async fn handoff_draft(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.desk.handoff_draft(&id).await?))
}

/// `GET /api/v1/contacts/{id}/profile`: the customer panel.
pub async fn profile(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.desk.profile(&id).await?))
}

/// `PATCH /api/v1/contacts/{id}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    #[serde(default, with = "double_option")]
    display_name: Option<Option<String>>,
    #[serde(default)]
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
