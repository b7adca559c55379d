//! E-mail on the desk: the agent's own e-mail signature
//! (`GET|PUT /api/v1/agents/me/signature`) and the frame an e-mail's HTML is shown
//! in (`GET /email/{event_id}?expires=…&sig=…[&images=1]`, outside `/api/v1`: the
//! browser loads it into a frame, which cannot send the bearer token, so the
//! address is signed instead). The rules are `switchboard_app::email_view`'s and
//! `switchboard_app::desk`'s.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_app::email_view::frame_policy;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `GET|PUT /api/v1/agents/me/signature`: the signature itself.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Plain text (never HTML), at most 2000 characters; trailing spaces and
    /// surrounding blank lines are dropped. `null` (or empty, when setting) for none.
    signature: Option<String>,
}

/// `GET /api/v1/agents/me/signature`: my e-mail signature.
#[utoipa::path(get, path = "/agents/me/signature", tag = "conversations",
    responses(
        (status = 200, description = "The caller's e-mail signature, appended by the host to \
            their e-mail replies; `null` when they have none", body = Signature),
    ))]
pub async fn get_signature(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Signature>> {
    Ok(Json(Signature {
        signature: state.desk.signature(&auth.agent.id).await?,
    }))
}

/// `PUT /api/v1/agents/me/signature`: sets (or with `null` or an empty text,
/// removes) my e-mail signature.
#[utoipa::path(put, path = "/agents/me/signature", tag = "conversations",
    request_body = Signature,
    responses(
        (status = 200, description = "The signature as kept (trimmed), or `null`", body = Signature),
        (status = 400, description = "Longer than 2000 characters, or control characters other \
            than line ends and tabs", body = ErrorBody),
    ))]
pub async fn put_signature(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<Signature>,
) -> ApiResult<Json<Signature>> {
    let kept = state
        .desk
        .set_signature(&auth.agent.id, body.signature.as_deref().unwrap_or(""))
        .await?;
    Ok(Json(Signature { signature: kept }))
}

/// `GET /email/{event_id}?expires=…&sig=…[&images=1]`: the sanitized HTML of an
/// e-mail as a document of its own, under a policy that runs no script and loads
/// remote images only with `images=1`. The desk gets the address in the timeline
/// (`email.frame_url`).
pub async fn frame(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let expires = query.get("expires").and_then(|e| e.parse::<i64>().ok());
    let (Some(expires), Some(sig)) = (expires, query.get("sig")) else {
        return Err(ApiError::forbidden("the e-mail link is not valid"));
    };
    let images = query.get("images").is_some_and(|v| v == "1");
    let document = state.email.frame(&event_id, expires, sig, images).await?;
    let mut response = (StatusCode::OK, document).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(frame_policy(images)),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The desk moves the frame when the timeline redraws, which reloads it: from
    // the cache. A message never changes what it shows.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_routes_are_in_the_document() {
        let doc = serde_json::to_value(crate::openapi_document()).unwrap();
        let item = &doc["paths"]["/agents/me/signature"];
        assert!(item["get"].is_object() && item["put"].is_object(), "{item}");
        assert_eq!(
            item["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Signature"
        );
    }
}
