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
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// How long a login lasts.
pub use switchboard_app::login::SESSION_TTL_MS;

/// `POST /api/v1/auth/login` body.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// An agent as the API shows it (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct AgentView {
    id: String,
    email: String,
    name: String,
    /// `agent`, `supervisor` or `admin`.
    role: String,
    #[schema(value_type = Vec<SkillSchema>)]
    skills: Vec<switchboard_core::Skill>,
}

/// A skill as the API shows and takes it.
#[derive(ToSchema)]
#[schema(as = Skill)]
#[allow(dead_code)]
pub struct SkillSchema {
    /// Lower case, no spaces, commas or colons.
    name: String,
    /// 1 (novice) to 5 (expert).
    #[schema(minimum = 1, maximum = 5)]
    proficiency: u8,
}

/// `POST /api/v1/auth/login` answer.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    /// The bearer token; shown once.
    token: String,
    /// When the session ends, in milliseconds since the Unix epoch.
    expires_at: i64,
    agent: AgentView,
}

/// `POST /api/v1/auth/logout-all` answer.
#[derive(Serialize, ToSchema)]
pub struct SessionsEnded {
    sessions_ended: u64,
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
#[utoipa::path(post, path = "/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginAnswer),
        (status = 401, description = "Wrong e-mail or password", body = ErrorBody),
        (status = 429, description = "Too many failed logins; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<LoginAnswer>> {
    let address = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let session = state
        .logins
        .login(address, &body.email, &body.password)
        .await?;
    Ok(Json(LoginAnswer {
        token: session.token,
        expires_at: session.expires_at,
        agent: AgentView::from(&session.agent),
    }))
}

/// `POST /api/v1/auth/logout`: ends the session of the presented token.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "The session has ended")))]
pub async fn logout(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::http::StatusCode> {
    state.store.delete_session(&auth.token_hash).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/logout-all`: ends every session of the caller, this one
/// included, and closes their sockets.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth",
    responses((status = 200, description = "Every session of the caller has ended", body = SessionsEnded)))]
pub async fn logout_all(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<SessionsEnded>> {
    let ended = state.logins.logout_everywhere(&auth.agent.id).await?;
    Ok(Json(SessionsEnded {
        sessions_ended: ended as u64,
    }))
}

/// `POST /api/v1/auth/password` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: changes the caller's password; every other session
/// of theirs ends.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; the caller's other sessions have ended"),
        (status = 400, description = "The new password is too weak", body = ErrorBody),
        (status = 401, description = "Wrong current password", body = ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses((status = 200, description = "The caller", body = AgentView)))]
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
