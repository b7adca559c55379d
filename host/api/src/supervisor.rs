//! Supervisor and admin routes: the live wallboard, the context-transfer report, the
//! agent roster (list and create) and plugin configuration. The use cases are
//! `switchboard_app::supervisor`'s and `switchboard_app::plugins`'.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_app::supervisor::require_supervisor;
use utoipa::ToSchema;

use crate::auth::{AgentView, Auth};
use crate::error::ApiResult;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `GET /api/v1/wallboard`.
#[utoipa::path(get, path = "/wallboard", tag = "supervision",
    responses(
        (status = 200, description = "`{at, day_starts_at, queues, channels, agents}`: per queue \
            waiting, longest wait and today's figures (`arrived`, `answered`, \
            `answered_in_sla`, `abandoned`, `sla_pct`); per channel waiting and today's queue \
            times; per agent presence, load and capacity used. Times are ms since the epoch, \
            \"today\" starts at midnight UTC", body = Object),
        (status = 403, description = "Needs the supervisor or admin role", body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
pub async fn wallboard(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    require_supervisor(&auth.agent)?;
    Ok(Json(state.supervision.wallboard().await?))
}

/// `GET /api/v1/reports/context-transfer`: of the hand-offs received since midnight
/// UTC, how many arrived with context.
#[utoipa::path(get, path = "/reports/context-transfer", tag = "supervision",
    responses(
        (status = 200, description = "`{since, transfers, with_context, rate}`: hand-offs \
            received since `since` (midnight UTC, ms since the epoch), how many arrived with \
            context, and their ratio (null when there were none)", body = Object),
        (status = 403, description = "Needs the supervisor or admin role", body = ErrorBody),
    ))]
pub async fn context_transfer(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    require_supervisor(&auth.agent)?;
    Ok(Json(state.supervision.context_transfer().await?))
}

/// `GET /api/v1/agents`: the roster with live presence and capacity.
#[utoipa::path(get, path = "/agents", tag = "supervision",
    responses(
        (status = 200, description = "`{agents}`: every agent with `id`, `name`, `role`, \
            `skills`, `presence` and `reason`; supervisors and admins also see `disabled`, \
            `email` and `capacity`", body = Object),
    ))]
pub async fn list_agents(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let agents = state.supervision.agents(&auth.agent).await?;
    Ok(Json(json!({ "agents": agents })))
}

/// `POST /api/v1/agents` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgentBody {
    /// An e-mail address; the login.
    email: String,
    /// At least 8 characters, not a common password nor the e-mail or its name part.
    password: String,
    /// The name to show; the e-mail's name part when absent or blank.
    name: Option<String>,
    /// `agent`, `supervisor` or `admin`.
    role: String,
    /// Skills as `[name, proficiency]` pairs, e.g. `[["billing", 3]]`; proficiency is 1
    /// (novice) to 5 (expert).
    #[serde(default)]
    skills: Vec<(String, u8)>,
}

/// `POST /api/v1/agents` answer.
#[derive(Serialize, ToSchema)]
pub struct AgentCreated {
    agent: AgentView,
}

/// `POST /api/v1/agents` (admin).
#[utoipa::path(post, path = "/agents", tag = "supervision",
    request_body = NewAgentBody,
    responses(
        (status = 201, description = "The user is created", body = AgentCreated),
        (status = 400, description = "Not an e-mail address, a weak password, an unknown role \
            or an invalid skill", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 409, description = "The e-mail address is taken", body = ErrorBody),
    ))]
pub async fn create_agent(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<NewAgentBody>,
) -> ApiResult<(StatusCode, Json<AgentCreated>)> {
    auth.require_admin()?;
    let agent = state
        .supervision
        .create_agent(
            &auth.agent.id,
            &body.email,
            &body.password,
            body.name,
            &body.role,
            &body.skills,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AgentCreated {
            agent: AgentView::from(&agent),
        }),
    ))
}

/// `POST /api/v1/agents/{id}/disable` and `/enable` answer.
#[derive(Serialize, ToSchema)]
pub struct AgentDisabled {
    agent: AgentView,
    /// Whether the agent is now disabled.
    disabled: bool,
}

/// `POST /api/v1/agents/{id}/disable` and `/enable` (admin): a disabled agent cannot
/// sign in, and their sessions and sockets end at once.
#[utoipa::path(post, path = "/agents/{id}/{action}", tag = "supervision",
    params(
        ("id" = String, Path, description = "Agent id"),
        ("action" = String, Path, description = "`disable` or `enable`; anything else is 404"),
    ),
    responses(
        (status = 200, description = "The agent is disabled or enabled", body = AgentDisabled),
        (status = 400, description = "An admin cannot disable themselves", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such agent, or `action` is neither `disable` nor \
            `enable`", body = ErrorBody),
    ))]
pub async fn set_disabled(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<AgentDisabled>> {
    auth.require_admin()?;
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(crate::error::ApiError::not_found("no such route")),
    };
    let agent = state
        .supervision
        .set_disabled(&auth.agent.id, &id, disabled)
        .await?;
    Ok(Json(AgentDisabled {
        agent: AgentView::from(&agent),
        disabled: agent.disabled,
    }))
}

/// `PUT /api/v1/plugins/{id}/config` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    /// Values of config keys the plugin's manifest declares, by key.
    config: HashMap<String, String>,
}

/// `PUT /api/v1/plugins/{id}/config` (admin): set config values (secrets are
/// encrypted and never shown again) and reload the plugin.
#[utoipa::path(put, path = "/plugins/{id}/config", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    request_body = ConfigBody,
    responses(
        (status = 200, description = "The plugin as reloaded: `id`, `version`, `kind`, `world`, \
            `enabled`, `quarantined`, `loaded`, `health`, `config` (each `key`, `secret`, \
            `value`; secrets show as `\"set\"`) and `declared_config`", body = Object),
        (status = 400, description = "The plugin declares no such config key, or it fails to \
            load with this config", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such plugin loaded", body = ErrorBody),
    ))]
pub async fn set_plugin_config(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ConfigBody>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    Ok(Json(
        state
            .plugin_admin
            .set_config(&auth.agent.id, &id, body.config)
            .await?,
    ))
}
