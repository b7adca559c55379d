//! `/api/v1` survey routes: each queue's survey settings (admins change them) and a
//! conversation's surveys. The use cases are `switchboard_app::surveys`'s.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_app::surveys::{SurveySettingsInput, TemplateName};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `PUT /api/v1/queues/{id}/survey` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveySettingsBody {
    /// What is asked after a resolve, in order: `csat` (1–5), `ces` (1–7), `nps`
    /// (0–10). Empty asks nothing.
    #[serde(default)]
    surveys: Vec<String>,
    /// One reminder this many seconds after an unanswered question (60–604800);
    /// null sends none.
    #[serde(default)]
    reminder_secs: Option<i64>,
    /// How long a question can be answered, in seconds (600–2592000; 3 days if not
    /// given).
    #[serde(default)]
    expire_secs: Option<i64>,
    /// The approved template (`{name, language}`) sent instead of the question where
    /// the channel's messaging window is closed; without one the survey is recorded
    /// as not sent.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    template: Option<TemplateBody>,
    /// Offer the questions to callers: when the agent hangs up first, the IVR asks
    /// them one key each before hanging up (default false: calls end as before).
    #[serde(default)]
    voice: bool,
}

/// A template by name and language.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    name: String,
    language: String,
}

/// `GET /api/v1/surveys/settings`.
#[utoipa::path(get, path = "/surveys/settings", tag = "routing",
    responses(
        (status = 200, description = "`{queues: [{queue_id, surveys, reminder_secs, \
            expire_secs, template, voice}]}`, one per queue (and per queue named in settings \
            before its first task)", body = Object),
    ))]
pub async fn all_settings(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<Value>> {
    Ok(Json(state.surveys.all_settings().await?))
}

/// `GET /api/v1/queues/{id}/survey`.
#[utoipa::path(get, path = "/queues/{id}/survey", tag = "routing",
    params(("id" = String, Path, description = "Queue id (its name)")),
    responses(
        (status = 200, description = "`{queue_id, surveys, reminder_secs, expire_secs, \
            template, voice}`; a queue never set asks nothing", body = Object),
        (status = 400, description = "Not a queue name", body = ErrorBody),
    ))]
pub async fn get_settings(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.surveys.settings(&id).await?))
}

/// `PUT /api/v1/queues/{id}/survey` (admin): what the queue asks after a resolve.
#[utoipa::path(put, path = "/queues/{id}/survey", tag = "routing",
    params(("id" = String, Path, description = "Queue id (its name)")),
    request_body = SurveySettingsBody,
    responses(
        (status = 200, description = "The settings as saved", body = Object),
        (status = 400, description = "Every problem with the settings, in one message",
            body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
    ))]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<SurveySettingsBody>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let input = SurveySettingsInput {
        surveys: body.surveys,
        reminder_secs: body.reminder_secs,
        expire_secs: body.expire_secs,
        template: body.template.map(|t| TemplateName {
            name: t.name,
            language: t.language,
        }),
        voice: body.voice,
    };
    Ok(Json(
        state
            .surveys
            .set_settings(&auth.agent.id, &id, input)
            .await?,
    ))
}

/// `GET /api/v1/conversations/{id}/surveys`.
#[utoipa::path(get, path = "/conversations/{id}/surveys", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "`{surveys: [...]}`: each question asked after a \
            resolve, with `kind`, `mode`, `channel`, `status` (`waiting`, `sent`, \
            `answered`, `not_sent`, `dropped`, `expired`), `score`, `comment` and `reason`",
            body = Object),
    ))]
pub async fn conversation_surveys(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let surveys = state.surveys.of_conversation(&id).await?;
    Ok(Json(json!({ "surveys": surveys })))
}
