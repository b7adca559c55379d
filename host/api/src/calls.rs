//! `/api/v1/calls…`: the softphone's controls, outbound calls, recordings.
//!
//! An agent controls the calls they are on; supervisors and admins any call. Those
//! rules live in `switchboard-voice` (`VoiceService::check_control`, `dial_for`,
//! `transfer_for`, `recording_for`); the handlers parse and shape.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_voice::{CallTransfer, VoiceService};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn voice(state: &AppState) -> ApiResult<Arc<VoiceService>> {
    state.voice.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "voice_disabled",
            "voice is not running on this host",
        )
    })
}

/// `GET /api/v1/calls/me`: live calls I am on, offered, or consulted about.
pub async fn my_calls(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let calls = match &state.voice {
        Some(v) => v.calls_of_agent(&auth.agent.id),
        None => Vec::new(),
    };
    Ok(Json(json!({"calls": calls})))
}

/// `GET /api/v1/calls`: every live call (supervisors).
pub async fn all_calls(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    switchboard_app::supervisor::require_supervisor(&auth.agent)?;
    let calls = match &state.voice {
        Some(v) => v.all_calls(),
        None => Vec::new(),
    };
    Ok(Json(json!({"calls": calls})))
}

/// `POST /api/v1/calls` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialBody {
    to: String,
    #[serde(default)]
    contact_id: Option<String>,
}

/// `POST /api/v1/calls`: an outbound call through the trunk.
pub async fn dial(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<DialBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let voice = voice(&state)?;
    let call = voice
        .dial_for(&auth.agent, &body.to, body.contact_id.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"call": call}))))
}

/// The body of a softphone control.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    #[serde(default)]
    held: Option<bool>,
    #[serde(default)]
    muted: Option<bool>,
    #[serde(default)]
    digits: Option<String>,
}

/// `POST /api/v1/calls/{id}/hangup`, `/hold` `{held}`, `/mute` `{muted}`,
/// `/dtmf` `{digits}`: the softphone's controls.
pub async fn control(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ControlBody>>,
) -> ApiResult<Json<Value>> {
    let voice = voice(&state)?;
    voice.check_control(&auth.agent, &id)?;
    let body = body.map(|Json(b)| b).unwrap_or(ControlBody {
        held: None,
        muted: None,
        digits: None,
    });
    let missing = |field: &str| ApiError::bad_request(format!("{action}: `{field}` is required"));
    match action.as_str() {
        "hangup" => {
            voice.hang_up(&id, "answered").await;
            Ok(Json(json!({"ended": id})))
        }
        "hold" => Ok(Json(
            voice
                .hold(&id, body.held.ok_or_else(|| missing("held"))?)
                .await?,
        )),
        "mute" => Ok(Json(
            voice.mute(&id, body.muted.ok_or_else(|| missing("muted"))?)?,
        )),
        "dtmf" => {
            let digits = body.digits.ok_or_else(|| missing("digits"))?;
            voice.dtmf(&id, &digits).await?;
            Ok(Json(json!({"sent": digits})))
        }
        _ => Err(ApiError::not_found("hangup, hold, mute, dtmf or transfer")),
    }
}

/// `POST /api/v1/calls/{id}/transfer`: `{queue}` blind, or `{agent_id, mode:"warm"}`
/// (consult first). Either carries `context` like a digital transfer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallTransferBody {
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    context: Option<Value>,
}

/// `POST /api/v1/calls/{id}/transfer`.
pub async fn transfer(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<CallTransferBody>,
) -> ApiResult<Json<Value>> {
    let voice = voice(&state)?;
    let warm = match body.mode.as_deref() {
        Some("warm") => true,
        None | Some("blind") => false,
        Some(_) => {
            voice.check_control(&auth.agent, &id)?;
            return Err(ApiError::bad_request("mode: blind or warm"));
        }
    };
    let transfer = CallTransfer {
        queue: body.queue,
        agent_id: body.agent_id,
        warm,
        context: body.context,
    };
    Ok(Json(voice.transfer_for(&auth.agent, &id, transfer).await?))
}

/// `POST /api/v1/calls/{id}/transfer/complete` and `/transfer/cancel`.
pub async fn transfer_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let voice = voice(&state)?;
    match action.as_str() {
        "complete" => Ok(Json(voice.complete_transfer_for(&auth.agent, &id).await?)),
        "cancel" => Ok(Json(voice.cancel_transfer_for(&auth.agent, &id).await?)),
        _ => {
            voice.check_control(&auth.agent, &id)?;
            Err(ApiError::not_found("complete or cancel"))
        }
    }
}

/// `GET /api/v1/calls/{id}/recording`: the WAV, to the agents who were on the call
/// and to supervisors.
pub async fn recording(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let bytes = switchboard_voice::recording(&state.store, &auth.agent, &id).await?;
    Response::builder()
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from(bytes))
        .map_err(ApiError::internal)
}
