//! Login, bearer tokens and the extractor that guards every `/api/v1` route.
//!
//! Passwords are hashed with argon2id. A token is 32 random bytes shown once to
//! the client; only its SHA-256 is stored, so a database leak yields no usable
//! tokens.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use switchboard_app::accounts::{new_token, token_hash, verify_password};
use switchboard_app::now_ms;
use switchboard_core::Role;
use switchboard_store::Agent;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How long a login lasts.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

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

/// `POST /api/v1/auth/login`: `{email, password}` → `{token, agent}`.
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let found = state.store.agent_by_email(&body.email).await?;
    // Verify against a dummy hash when the user is unknown so timing does not
    // reveal which emails exist.
    let (agent, hash) = match found {
        Some((agent, hash)) => (Some(agent), hash),
        None => (None, state.dummy_hash().to_string()),
    };
    let ok = verify_password(&body.password, &hash);
    let agent = match (agent, ok) {
        (Some(agent), true) => agent,
        _ => return Err(ApiError::unauthorized("wrong email or password")),
    };
    let token = new_token();
    let now = now_ms();
    state
        .store
        .create_session(&agent.id, &token_hash(&token), now + SESSION_TTL_MS)
        .await?;
    Ok(Json(serde_json::json!({
        "token": token,
        "expires_at": now + SESSION_TTL_MS,
        "agent": AgentView::from(&agent),
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
