//! `/api/v1/plugins`: install, list, enable, disable, remove (admin only). The use
//! cases are `switchboard_app::plugins`'.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_app::plugins::InstallRequest;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `GET /api/v1/plugins` answer.
#[derive(Serialize, ToSchema)]
pub struct PluginList {
    /// Every installed plugin as `GET /plugins/{id}` describes it.
    #[schema(value_type = Vec<Object>)]
    plugins: Vec<Value>,
}

/// `GET /api/v1/plugins`.
#[utoipa::path(get, path = "/plugins", tag = "plugins",
    responses(
        (status = 200, description = "Every installed plugin", body = PluginList),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<PluginList>> {
    auth.require_admin()?;
    Ok(Json(PluginList {
        plugins: state.plugin_admin.list().await?,
    }))
}

/// `GET /api/v1/plugins/{id}`.
#[utoipa::path(get, path = "/plugins/{id}", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "The plugin: `{id, version, kind, world, enabled, quarantined, loaded, health, config, declared_config}`; config values of secret keys show as `\"set\"`", body = Object),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    Ok(Json(state.plugin_admin.describe(&id).await?))
}

/// `POST /api/v1/plugins` body: a plugin folder on the server's disk.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallBody {
    /// The plugin folder (`plugin.toml` and the component) on the server's disk.
    #[schema(value_type = String)]
    path: PathBuf,
    /// Config settings, merged over those of a previous install.
    #[serde(default)]
    config: HashMap<String, String>,
    /// Origins added to the manifest's allow-list.
    #[serde(default)]
    allow_hosts: Vec<String>,
    /// Install under this plugin id instead of the manifest's, to run the same
    /// component again (a second WhatsApp number, another mailbox) with its own
    /// config, secrets, kv, webhook path `/hooks/{id}` and health.
    #[serde(default)]
    id: Option<String>,
}

/// `POST /api/v1/plugins`: install or upgrade, and load at once.
#[utoipa::path(post, path = "/plugins", tag = "plugins", request_body = InstallBody,
    responses(
        (status = 201, description = "Installed and loaded: `{id, version, kind, world, enabled, quarantined, loaded, health, config, declared_config}`; config values of secret keys show as `\"set\"`", body = Object),
        (status = 400, description = "The plugin, its config or an allowed host is invalid, \
            or its files cannot be read", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
    ))]
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
                id: body.id,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(plugin)))
}

/// `POST /api/v1/plugins/{id}/enable` (also lifts a quarantine).
#[utoipa::path(post, path = "/plugins/{id}/enable", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "Enabled: `{id, version, kind, world, enabled, quarantined, loaded, health, config, declared_config}`; config values of secret keys show as `\"set\"`", body = Object),
        (status = 400, description = "The plugin cannot be loaded", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
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
#[utoipa::path(post, path = "/plugins/{id}/disable", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "Disabled: `{id, version, kind, world, enabled, quarantined, loaded, health, config, declared_config}`; config values of secret keys show as `\"set\"`", body = Object),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
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
#[utoipa::path(delete, path = "/plugins/{id}", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 204, description = "Removed, with its files"),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    state.plugin_admin.remove(&auth.agent.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
