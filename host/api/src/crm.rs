//! `/api/v1` CRM routes: a contact's CRM records (screen pop, "look up again",
//! "create in CRM"), what each CRM receives, and the write-back queue with its dead
//! letters. The use cases are `switchboard_app::crm`'s.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_store::{CrmActivityStatus, CrmSubscription};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `GET /api/v1/contacts/{id}/crm`.
#[utoipa::path(get, path = "/contacts/{id}/crm", tag = "crm",
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "`{contact_id, crm, available}`: `crm` is keyed by CRM \
            plugin id (`external_id`, `url`, `display_name`, `attributes`, `identities` the CRM \
            holds and the contact does not, `fetched_at`); `available` lists the enabled CRM \
            plugins with `linked`", body = Object),
        (status = 404, description = "No such contact", body = ErrorBody),
    ))]
pub async fn contact_crm(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let contact = state.store.contact(&id).await?;
    let links = state.crm.links(&contact).await?;
    Ok(Json(json!({
        "contact_id": contact.id,
        "available": state.crm.available(&links),
        "crm": links,
    })))
}

/// `POST /api/v1/contacts/{id}/crm/refresh`.
#[utoipa::path(post, path = "/contacts/{id}/crm/refresh", tag = "crm",
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "`{found}`: the CRM plugins that know the person, asked \
            again now past the cache", body = Object),
        (status = 404, description = "No such contact", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.crm.refresh(&id).await?))
}

/// `POST /api/v1/contacts/{id}/crm/{plugin_id}`: "create in CRM".
#[utoipa::path(post, path = "/contacts/{id}/crm/{plugin_id}", tag = "crm",
    params(
        ("id" = String, Path, description = "Contact id"),
        ("plugin_id" = String, Path, description = "The CRM plugin"),
    ),
    responses(
        (status = 200, description = "The new record as the contact's `crm` entry shows it",
            body = Object),
        (status = 404, description = "No such contact, or no enabled CRM plugin of that id",
            body = ErrorBody),
        (status = 409, description = "The contact already has a record in that CRM",
            body = ErrorBody),
        (status = 422, description = "The CRM refused, or cannot create records",
            body = ErrorBody),
        (status = 503, description = "The CRM is not answering; try again", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _auth: Auth,
    Path((id, plugin_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.crm.create(&id, &plugin_id).await?))
}

/// `GET /api/v1/crm/settings`.
#[utoipa::path(get, path = "/crm/settings", tag = "crm",
    responses(
        (status = 200, description = "`{crms: [{plugin_id, calls, summaries, notes, \
            messages}]}`: what each installed CRM plugin receives", body = Object),
    ))]
pub async fn settings(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "crms": state.crm.subscriptions().await? })))
}

/// `PUT /api/v1/crm/settings/{plugin_id}` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    /// Calls when they end, abandoned and missed ones included.
    calls: bool,
    /// Resolves: the disposition and the conversation's summary.
    summaries: bool,
    /// Agents' internal notes.
    notes: bool,
    /// Every message in and out.
    messages: bool,
}

/// `PUT /api/v1/crm/settings/{plugin_id}` (admin): what a CRM receives.
#[utoipa::path(put, path = "/crm/settings/{plugin_id}", tag = "crm",
    params(("plugin_id" = String, Path, description = "The CRM plugin")),
    request_body = SubscriptionBody,
    responses(
        (status = 200, description = "The settings as saved", body = Object),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No CRM plugin of that id", body = ErrorBody),
    ))]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Auth,
    Path(plugin_id): Path<String>,
    Json(body): Json<SubscriptionBody>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let s = CrmSubscription {
        plugin_id,
        calls: body.calls,
        summaries: body.summaries,
        notes: body.notes,
        messages: body.messages,
    };
    state.crm.set_subscription(&s).await?;
    Ok(Json(json!(s)))
}

/// `GET /api/v1/crm/activities` query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivitiesQuery {
    /// Only rows in this status: `pending`, `sending`, `done` or `dead`.
    status: Option<String>,
}

/// `GET /api/v1/crm/activities?status=dead`.
#[utoipa::path(get, path = "/crm/activities", tag = "crm",
    params(ActivitiesQuery),
    responses(
        (status = 200, description = "`{activities}`: write-back rows, newest first (at most \
            500), each with `id`, `plugin_id`, `event_id`, `kind`, `status`, `attempts`, \
            `next_attempt_at`, `last_error`", body = Object),
        (status = 400, description = "Unknown status", body = ErrorBody),
    ))]
pub async fn activities(
    State(state): State<AppState>,
    _auth: Auth,
    Query(q): Query<ActivitiesQuery>,
) -> ApiResult<Json<Value>> {
    let status = q
        .status
        .map(|s| s.parse::<CrmActivityStatus>())
        .transpose()
        .map_err(ApiError::bad_request)?;
    Ok(Json(
        json!({ "activities": state.crm.activities(status, 500).await? }),
    ))
}

/// `POST /api/v1/crm/activities/{id}/retry` (admin): re-queue a dead letter.
#[utoipa::path(post, path = "/crm/activities/{id}/retry", tag = "crm",
    params(("id" = String, Path, description = "Write-back row id")),
    responses(
        (status = 200, description = "The row, pending again", body = Object),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such row", body = ErrorBody),
        (status = 409, description = "The row is not a dead letter", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    Ok(Json(json!(state.crm.requeue(&id).await?)))
}
