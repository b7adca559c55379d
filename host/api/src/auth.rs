//! Login, bearer tokens and the extractor that guards every `/api/v1` route.
//!
//! Passwords are hashed with argon2id, off the runtime's workers, and failed logins
//! are throttled per address and per account (`switchboard_app::login`). A token is 32
//! random bytes shown once to the client; only its SHA-256 is stored, so a database
//! leak yields no usable tokens.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::Extensions;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use switchboard_app::accounts::token_hash;
use switchboard_app::now_ms;
use switchboard_core::Role;
use switchboard_store::Agent;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How long a login lasts.
pub use switchboard_app::login::SESSION_TTL_MS;

/// `POST /api/v1/auth/login` body.
#[derive(Deserialize)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// An agent as the API shows it (never the password hash).
#[derive(Serialize)]
pub struct AgentView {
    id: String,
    email: String,
    name: String,
    role: String,
    skills: Vec<switchboard_core::Skill>,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> Self {
        AgentView {
            id: a.id.clone(),
            email: a.email.clone(),
            name: a.name.clone(),
            role: a.role.as_str().to_string(),
            skills: a.skills.clone(),
        }
    }
}

/// `POST /api/v1/auth/login`: `{email, password}` → `{token, agent}`; throttled per
/// client address and per account (429 with `Retry-After`).
pub async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let address = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let session = state
        .logins
        .login(address, &body.email, &body.password)
        .await?;
    Ok(Json(serde_json::json!({
        "token": session.token,
        "expires_at": session.expires_at,
        "agent": AgentView::from(&session.agent),
    })))
}

/// `POST /api/v1/auth/logout`: ends the session of the presented token.
pub async fn logout(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::http::StatusCode> {
    state.store.delete_session(&auth.token_hash).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/logout-all`: ends every session of the caller, this one
/// included, and closes their sockets.
pub async fn logout_all(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<serde_json::Value>> {
    let ended = state.logins.logout_everywhere(&auth.agent.id).await?;
    Ok(Json(serde_json::json!({"sessions_ended": ended})))
}

/// `POST /api/v1/auth/password` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: changes the caller's password; every other session
/// of theirs ends.
pub async fn change_password(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<PasswordChange>,
) -> ApiResult<axum::http::StatusCode> {
    state
        .logins
        .change_password(
            &auth.agent,
            &body.current_password,
            &body.new_password,
            &auth.token_hash,
        )
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/me`.
pub async fn me(auth: Auth) -> Json<AgentView> {
    Json(AgentView::from(&auth.agent))
}

/// The authenticated agent behind a request.
pub struct Auth {
    /// Who is calling.
    pub agent: Agent,
    token_hash: String,
}

impl Auth {
    /// Refuses unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.agent.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("this needs the admin role"))
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("Authorization must be a Bearer token"))?
            .trim();
        let token_hash = token_hash(token);
        let agent = state
            .store
            .agent_for_session(&token_hash, now_ms())
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
        Ok(Auth { agent, token_hash })
    }
}
