//! Supervisor and admin routes: the live wallboard, the context-transfer report, the
//! agent roster (list and create) and plugin configuration. The use cases are
//! `switchboard_app::supervisor`'s and `switchboard_app::plugins`'.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_app::supervisor::require_supervisor;

use crate::auth::{AgentView, Auth};
use crate::error::ApiResult;
use crate::state::AppState;

/// `GET /api/v1/wallboard`.
pub async fn wallboard(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    require_supervisor(&auth.agent)?;
    Ok(Json(state.supervision.wallboard().await?))
}

/// `GET /api/v1/reports/context-transfer`: of the hand-offs received since midnight
/// UTC, how many arrived with context.
pub async fn context_transfer(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    require_supervisor(&auth.agent)?;
    Ok(Json(state.supervision.context_transfer().await?))
}

/// `GET /api/v1/agents`: the roster with live presence and capacity.
pub async fn list_agents(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let agents = state.supervision.agents(&auth.agent).await?;
    Ok(Json(json!({ "agents": agents })))
}

/// `POST /api/v1/agents` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgentBody {
    email: String,
    password: String,
    name: Option<String>,
    role: String,
    #[serde(default)]
    skills: Vec<(String, u8)>,
}

/// `POST /api/v1/agents` (admin).
pub async fn create_agent(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<NewAgentBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
        Json(json!({ "agent": AgentView::from(&agent) })),
    ))
}

/// `POST /api/v1/agents/{id}/disable` and `/enable` (admin): a disabled agent cannot
/// sign in, and their sessions and sockets end at once.
pub async fn set_disabled(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(
        json!({ "agent": AgentView::from(&agent), "disabled": agent.disabled }),
    ))
}

/// `PUT /api/v1/plugins/{id}/config` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    config: HashMap<String, String>,
}

/// `PUT /api/v1/plugins/{id}/config` (admin): set config values (secrets are
/// encrypted and never shown again) and reload the plugin.
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
