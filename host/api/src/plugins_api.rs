//! `/api/v1/plugins`: install, list, enable, disable, remove (admin only). The use
//! cases are `switchboard_app::plugins`'.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_app::plugins::InstallRequest;

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::state::AppState;

/// `GET /api/v1/plugins`.
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    Ok(Json(json!({ "plugins": state.plugin_admin.list().await? })))
}

/// `GET /api/v1/plugins/{id}`.
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    Ok(Json(state.plugin_admin.describe(&id).await?))
}

/// `POST /api/v1/plugins` body: a plugin folder on the server's disk.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallBody {
    path: PathBuf,
    #[serde(default)]
    config: HashMap<String, String>,
    #[serde(default)]
    allow_hosts: Vec<String>,
}

/// `POST /api/v1/plugins`: install or upgrade, and load at once.
pub async fn install(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<InstallBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require_admin()?;
    let plugin = state
        .plugin_admin
        .install(
            &auth.agent.id,
            InstallRequest {
                source: body.path,
                config: body.config,
                allow_hosts: body.allow_hosts,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(plugin)))
}

/// `POST /api/v1/plugins/{id}/enable` (also lifts a quarantine).
pub async fn enable(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    Ok(Json(
        state
            .plugin_admin
            .set_enabled(&auth.agent.id, &id, true)
            .await?,
    ))
}

/// `POST /api/v1/plugins/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    Ok(Json(
        state
            .plugin_admin
            .set_enabled(&auth.agent.id, &id, false)
            .await?,
    ))
}

/// `DELETE /api/v1/plugins/{id}`.
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    state.plugin_admin.remove(&auth.agent.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
