//! `/api/v1/calls…`: the softphone's controls, outbound calls, recordings.
//!
//! An agent controls the calls they are on; supervisors and admins any call.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{Role, parse_identity_query};

use switchboard_voice::VoiceService;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::routing_api::TransferBody;
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

/// The call, if the caller may control it.
fn controlled(auth: &Auth, voice: &VoiceService, id: &str) -> ApiResult<()> {
    let (agent, consult) = voice
        .call_agents(id)
        .ok_or_else(|| ApiError::not_found("no live call with that id"))?;
    let mine = agent.as_deref() == Some(auth.agent.id.as_str())
        || consult.as_deref() == Some(auth.agent.id.as_str());
    if mine || matches!(auth.agent.role, Role::Supervisor | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "not your call",
        ))
    }
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
    let party = parse_identity_query(
        &format!("phone:{}", body.to.trim()),
        state.config.default_region.as_deref(),
    )
    .map_err(|e| ApiError::bad_request(format!("to: {e}")))?;
    if let Some(contact) = &body.contact_id {
        // The number must be one of the contact's, so a call lands on their timeline.
        let c = state.store.contact(contact).await?;
        if !c.identities.iter().any(|i| i.value == party.value()) {
            return Err(ApiError::bad_request("to: not a number of that contact"));
        }
    }
    if !voice.calls_of_agent(&auth.agent.id).is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "busy",
            "you are already on a call",
        ));
    }
    let id = switchboard_voice::sip::dial(&voice, &auth.agent.id, party).await?;
    let call = voice
        .calls_of_agent(&auth.agent.id)
        .into_iter()
        .find(|c| c["id"] == id.as_str());
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
    controlled(&auth, &voice, &id)?;
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
    controlled(&auth, &voice, &id)?;
    let warm = body.mode.as_deref() == Some("warm");
    if warm {
        let target = body
            .agent_id
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("a warm transfer needs agent_id"))?;
        if body.queue.is_some() {
            return Err(ApiError::bad_request(
                "a warm transfer goes to an agent, not a queue",
            ));
        }
        state.store.agent(target).await?;
        // The context travels when the transfer is completed; keep it until then.
        voice.set_pending_context(&id, body.context.clone());
        return Ok(Json(voice.start_consult(&id, target).await?));
    }
    if body.mode.as_deref().is_some_and(|m| m != "blind") {
        return Err(ApiError::bad_request("mode: blind or warm"));
    }
    let task = voice.call_task(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the call has no task to transfer",
        )
    })?;
    let payload = json!({"queue": body.queue, "agent_id": body.agent_id, "context": body.context});
    let transfer_body: TransferBody = serde_json::from_value(payload)
        .map_err(|e| ApiError::bad_request(format!("transfer: {e}")))?;
    let mut out = state
        .tasks
        .transfer(&auth.agent, &task, transfer_body.into())
        .await?;
    // The caller waits with music for whoever routing finds.
    voice.before_transfer(&id).await;
    out["call"] = json!(voice.call_view(&id));
    Ok(Json(out))
}

/// `POST /api/v1/calls/{id}/transfer/complete` and `/transfer/cancel`.
pub async fn transfer_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let voice = voice(&state)?;
    controlled(&auth, &voice, &id)?;
    match action.as_str() {
        "complete" => {
            let task = voice.call_task(&id).ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "the call has no task to transfer",
                )
            })?;
            let context = voice.take_pending_context(&id);
            let target = voice.complete_consult(&id).await?;
            let payload = json!({"agent_id": target, "context": context});
            let body: TransferBody = serde_json::from_value(payload)
                .map_err(|e| ApiError::bad_request(format!("transfer: {e}")))?;
            let mut out = state
                .tasks
                .transfer(&auth.agent, &task, body.into())
                .await?;
            out["call"] = json!(voice.call_view(&id));
            Ok(Json(out))
        }
        "cancel" => Ok(Json(voice.cancel_consult(&id).await?)),
        _ => Err(ApiError::not_found("complete or cancel")),
    }
}

/// `GET /api/v1/calls/{id}/recording`: the WAV, to the agents who were on the call
/// and to supervisors.
pub async fn recording(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let record = state.store.call(&id).await?;
    let on_it = record.agent_id.as_deref() == Some(auth.agent.id.as_str())
        || record.detail["agents"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == auth.agent.id.as_str()));
    if !on_it && !matches!(auth.agent.role, Role::Supervisor | Role::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "not your call",
        ));
    }
    let path = record
        .recording_path
        .ok_or_else(|| ApiError::not_found("the call has no recording"))?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found("the recording file is gone"))?;
    Response::builder()
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from(bytes))
        .map_err(ApiError::internal)
}
