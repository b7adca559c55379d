//! Twilio's Messages API: what `send` posts and what the answer means.

use serde::Deserialize;
use switchboard_sdk::http::Response;
use switchboard_sdk::{OutboundMessage, PluginError, SendReceipt};

use crate::inbound::{PHONE, delivery_status};

/// `POST` target for a new message.
pub fn messages_url(api_base: &str, account_sid: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
        api_base.trim_end_matches('/')
    )
}

/// The form fields of a new message, in the order Twilio documents them.
///
/// # Errors
///
/// [`PluginError::Permanent`] when the recipient is not a phone number;
/// [`PluginError::Unsupported`] for a template or an interactive message,
/// which SMS cannot carry (the connector's capabilities say so, so the host
/// does not ask).
pub fn form(
    message: &OutboundMessage,
    from_number: &str,
    status_callback: Option<&str>,
) -> Result<Vec<(&'static str, String)>, PluginError> {
    if message.to.kind != PHONE {
        return Err(PluginError::Permanent(format!(
            "SMS goes to phone identities, not `{}`",
            message.to.kind
        )));
    }
    if message.template.is_some() || message.interactive.is_some() {
        return Err(PluginError::Unsupported(
            "SMS carries neither templates nor interactive messages".into(),
        ));
    }
    let mut form = vec![
        ("To", message.to.value.clone()),
        ("From", from_number.to_owned()),
        ("Body", message.body.clone()),
    ];
    form.extend(
        message
            .attachments
            .iter()
            .map(|attachment| ("MediaUrl", attachment.url.clone())),
    );
    if let Some(callback) = status_callback {
        form.push(("StatusCallback", callback.to_owned()));
    }
    Ok(form)
}

#[derive(Deserialize)]
struct CreatedMessage {
    sid: String,
    status: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<u64>,
    message: Option<String>,
}

/// What Twilio's answer to a new message means.
///
/// # Errors
///
/// 429 → [`PluginError::RateLimited`], 5xx → [`PluginError::Transient`], other
/// statuses → [`PluginError::Permanent`] with Twilio's error code and message; a
/// success without a message sid → [`PluginError::Internal`] (not retried: the
/// message may have gone out).
pub fn receipt(response: &Response) -> Result<SendReceipt, PluginError> {
    if !response.is_success() {
        return Err(response.failure(error_detail(&response.body)));
    }
    let created: CreatedMessage = serde_json::from_slice(&response.body).map_err(|error| {
        PluginError::Internal(format!(
            "Twilio accepted the message but its answer is unreadable: {error}"
        ))
    })?;
    // Twilio answers `queued` or `accepted`; anything unknown is at least queued.
    let status = created
        .status
        .as_deref()
        .and_then(delivery_status)
        .unwrap_or(switchboard_sdk::DeliveryStatus::Queued);
    Ok(SendReceipt {
        provider_id: created.sid,
        status,
    })
}

/// `Twilio error 21211: Invalid 'To' Phone Number`, or the start of the body
/// when it is not Twilio's JSON error.
fn error_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(ApiError {
            code: Some(code),
            message,
        }) => format!(
            "Twilio error {code}: {}",
            message.as_deref().unwrap_or("no message")
        ),
        Ok(ApiError {
            code: None,
            message: Some(message),
        }) => format!("Twilio error: {message}"),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{
        Attachment, Choice, DeliveryStatus, Identity, InteractiveMessage, TemplateMessage,
    };

    fn message(kind: &str) -> OutboundMessage {
        OutboundMessage {
            attachments: vec![Attachment {
                content_type: Some("application/pdf".into()),
                ..Attachment::new("https://cdn.test/label.pdf")
            }],
            ..OutboundMessage::text(
                "m-1",
                "c-1",
                Identity::new(kind, "+15551234567"),
                "Your order shipped",
            )
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn url_tolerates_a_trailing_slash() {
        assert_eq!(
            messages_url("http://127.0.0.1:8080/", "AC1"),
            "http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Messages.json"
        );
    }

    #[test]
    fn form_has_media_and_status_callback() {
        let form = form(
            &message("phone"),
            "+15550001111",
            Some("https://sb.test/hooks/sms-twilio/status"),
        )
        .unwrap();
        assert_eq!(
            form,
            vec![
                ("To", "+15551234567".to_owned()),
                ("From", "+15550001111".to_owned()),
                ("Body", "Your order shipped".to_owned()),
                ("MediaUrl", "https://cdn.test/label.pdf".to_owned()),
                (
                    "StatusCallback",
                    "https://sb.test/hooks/sms-twilio/status".to_owned()
                ),
            ]
        );
        assert!(matches!(
            super::form(&message("email"), "+1", None),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn templates_and_interactive_messages_are_unsupported() {
        let template = OutboundMessage {
            body: String::new(),
            template: Some(TemplateMessage {
                name: "order_update".into(),
                language: "en_US".into(),
                parameters: Vec::new(),
            }),
            ..message("phone")
        };
        let buttons = OutboundMessage {
            interactive: Some(InteractiveMessage::Buttons(vec![Choice {
                id: "yes".into(),
                title: "Yes".into(),
                description: None,
            }])),
            ..message("phone")
        };
        for message in [template, buttons] {
            assert!(matches!(
                form(&message, "+1", None),
                Err(PluginError::Unsupported(_))
            ));
        }
    }

    #[test]
    fn created_message_is_a_receipt() {
        let ok = response(201, &[], r#"{"sid":"SM42","status":"queued","to":"+1"}"#);
        assert_eq!(
            receipt(&ok).unwrap(),
            SendReceipt {
                provider_id: "SM42".into(),
                status: DeliveryStatus::Queued
            }
        );
        let garbled = response(201, &[], "<html>");
        assert!(matches!(receipt(&garbled), Err(PluginError::Internal(_))));
    }

    #[test]
    fn errors_follow_twilio_statuses() {
        let throttled = response(
            429,
            &[("Retry-After", "7")],
            r#"{"code":20429,"message":"Too Many Requests"}"#,
        );
        assert_eq!(receipt(&throttled), Err(PluginError::RateLimited(Some(7))));
        let down = response(503, &[], "Service Unavailable");
        assert!(
            matches!(receipt(&down), Err(PluginError::Transient(m)) if m.contains("Service Unavailable"))
        );
        let invalid = response(
            400,
            &[],
            r#"{"code":21211,"message":"The 'To' number +1555 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
        );
        assert_eq!(
            receipt(&invalid),
            Err(PluginError::Permanent(
                "HTTP 400: Twilio error 21211: The 'To' number +1555 is not a valid phone number."
                    .into()
            ))
        );
        let unauthorized = response(401, &[], r#"{"code":20003,"message":"Authenticate"}"#);
        assert!(
            matches!(receipt(&unauthorized), Err(PluginError::Permanent(m)) if m.contains("20003"))
        );
    }
}
