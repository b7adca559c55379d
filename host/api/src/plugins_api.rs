//! `/api/v1/plugins`: install, list, enable, disable, remove (admin only).
//!
//! Changes take effect at once in the running server. Config values are
//! never returned: secrets show as `"set"`, plain values as they are.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::admin::{self, AdminError, InstallRequest};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        match e {
            AdminError::Load(e) => ApiError::bad_request(e.to_string()),
            AdminError::Store(e) => e.into(),
            AdminError::Io(m) => ApiError::bad_request(m),
        }
    }
}

pub(crate) async fn describe(state: &AppState, id: &str) -> ApiResult<Value> {
    let record = state.store.plugin(id).await?;
    let status = state.plugins.status(id);
    let manifest = state.plugins.manifest(id);
    let config: Vec<Value> = state
        .store
        .plugin_config(id)
        .await?
        .into_iter()
        .map(|e| {
            if e.secret {
                json!({"key": e.key, "secret": true, "value": "set"})
            } else {
                json!({"key": e.key, "secret": false, "value": e.value})
            }
        })
        .collect();
    Ok(json!({
        "id": record.id,
        "version": record.version,
        "kind": record.kind,
        "world": record.world,
        "enabled": record.enabled,
        "quarantined": record.quarantine_reason,
        "loaded": status.is_some(),
        "health": status,
        "config": config,
        "declared_config": manifest.map(|m| m.config).unwrap_or_default(),
    }))
}

/// `GET /api/v1/plugins`.
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let mut out = Vec::new();
    for record in state.store.list_plugins().await? {
        out.push(describe(&state, &record.id).await?);
    }
    Ok(Json(json!({ "plugins": out })))
}

/// `GET /api/v1/plugins/{id}`.
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    Ok(Json(describe(&state, &id).await?))
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
    let manifest = admin::install(
        &state.store,
        &state.plugins,
        &state.config.data_dir,
        InstallRequest {
            source: body.path,
            config: body.config,
            allow_hosts: body.allow_hosts,
        },
    )
    .await?;
    state.reload_plugin(&manifest.id).await?;
    state
        .store
        .audit(
            &auth.agent.id,
            "plugin.install",
            Some(&manifest.id),
            serde_json::json!(&manifest.version),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(describe(&state, &manifest.id).await?),
    ))
}

async fn set_enabled(state: &AppState, auth: &Auth, id: &str, enabled: bool) -> ApiResult<Value> {
    auth.require_admin()?;
    state.store.set_plugin_enabled(id, enabled).await?;
    state.plugins.set_enabled(id, enabled);
    if enabled && state.plugins.status(id).is_none() {
        state.reload_plugin(id).await?;
    }
    let action = if enabled {
        "plugin.enable"
    } else {
        "plugin.disable"
    };
    state
        .store
        .audit(&auth.agent.id, action, Some(id), serde_json::Value::Null)
        .await?;
    describe(state, id).await
}

/// `POST /api/v1/plugins/{id}/enable` (also lifts a quarantine).
pub async fn enable(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(set_enabled(&state, &auth, &id, true).await?))
}

/// `POST /api/v1/plugins/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(set_enabled(&state, &auth, &id, false).await?))
}

/// `DELETE /api/v1/plugins/{id}`.
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    let record = state.store.plugin(&id).await?;
    state.store.remove_plugin(&id).await?;
    state.plugins.unload(&id);
    state.forget_channel(&id).await;
    let _ = std::fs::remove_dir_all(&record.path);
    state
        .store
        .audit(
            &auth.agent.id,
            "plugin.remove",
            Some(&id),
            serde_json::json!(null),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
