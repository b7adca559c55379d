//! Twilio's webhook payloads, already verified, turned into channel events:
//! an inbound message (plus a consent event for STOP/START/HELP keywords) or a
//! delivery receipt from a status callback.
//!
//! Neither payload says when the message was sent or its status changed
//! (`RawDlrDoneDate` on some receipts is the carrier's local time without a
//! zone), so no event carries a provider time.

use switchboard_sdk::webhook::form_value;
use switchboard_sdk::{
    Attachment, ChannelEvent, ConsentAction, ConsentEvent, DeliveryReceipt, DeliveryStatus,
    Identity, InboundMessage, PluginError,
};

/// Identity kind of SMS senders and recipients.
pub const PHONE: &str = "phone";

/// The events in one webhook's parameters.
///
/// A payload with `MessageStatus` is a status callback about a message we sent,
/// except `received`/`receiving`, which Twilio uses for inbound messages.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] when a field Twilio always sends is missing or
/// malformed.
pub fn events(params: &[(String, String)]) -> Result<Vec<ChannelEvent>, PluginError> {
    match form_value(params, "MessageStatus") {
        Some(status) if !matches!(status, "received" | "receiving") => Ok(receipt(params, status)?
            .map(ChannelEvent::Receipt)
            .into_iter()
            .collect()),
        _ => message(params),
    }
}

fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, PluginError> {
    form_value(params, name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| PluginError::InvalidRequest(format!("missing `{name}`")))
}

fn optional(params: &[(String, String)], name: &str) -> Option<String> {
    form_value(params, name)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// `None` for a status this connector does not know, so a new Twilio state is
/// acknowledged instead of retried forever.
fn receipt(
    params: &[(String, String)],
    status: &str,
) -> Result<Option<DeliveryReceipt>, PluginError> {
    let provider_id = required(params, "MessageSid")?;
    Ok(delivery_status(status).map(|status| DeliveryReceipt {
        error_code: optional(params, "ErrorCode"),
        error_message: optional(params, "ErrorMessage"),
        ..DeliveryReceipt::new(provider_id, status)
    }))
}

/// Twilio's message status in Switchboard's words. `accepted`, `scheduled` and
/// `sending` have not reached the carrier yet, so they are `queued`;
/// a `canceled` scheduled message never will, so it is `failed`.
pub fn delivery_status(twilio_status: &str) -> Option<DeliveryStatus> {
    Some(match twilio_status {
        "accepted" | "scheduled" | "queued" | "sending" => DeliveryStatus::Queued,
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" | "canceled" => DeliveryStatus::Failed,
        "undelivered" => DeliveryStatus::Undelivered,
        _ => return None,
    })
}

/// What a message body means for consent, when it is exactly one of the
/// carrier keywords (case and surrounding space ignored).
pub fn consent_keyword(body: &str) -> Option<ConsentAction> {
    match body.trim().to_uppercase().as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => {
            Some(ConsentAction::OptOut)
        }
        "START" | "YES" | "UNSTOP" => Some(ConsentAction::OptIn),
        "HELP" | "INFO" => Some(ConsentAction::Help),
        _ => None,
    }
}

fn message(params: &[(String, String)]) -> Result<Vec<ChannelEvent>, PluginError> {
    let provider_id = required(params, "MessageSid")?;
    let sender = Identity::new(PHONE, required(params, "From")?);
    let body = form_value(params, "Body").unwrap_or_default();

    let media_count: usize = match form_value(params, "NumMedia") {
        None | Some("") => 0,
        Some(count) => count.parse().map_err(|_| {
            PluginError::InvalidRequest(format!("`NumMedia` is not a count: {count}"))
        })?,
    };
    let attachments = (0..media_count)
        .map(|index| {
            Ok(Attachment {
                content_type: optional(params, &format!("MediaContentType{index}")),
                ..Attachment::new(required(params, &format!("MediaUrl{index}"))?)
            })
        })
        .collect::<Result<Vec<_>, PluginError>>()?;

    let consent = consent_keyword(body).map(|action| ConsentEvent {
        provider_id: format!("{provider_id}:consent"),
        identity: sender.clone(),
        action,
        keyword: body.trim().to_owned(),
    });
    let message = InboundMessage {
        recipient: optional(params, "To").map(|to| Identity::new(PHONE, to)),
        sender_name: optional(params, "ProfileName"),
        attachments,
        ..InboundMessage::new(provider_id, sender, body)
    };
    let mut events = vec![ChannelEvent::Message(message)];
    events.extend(consent.map(ChannelEvent::Consent));
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn inbound(body: &str) -> Vec<(String, String)> {
        params(&[
            ("MessageSid", "SM1"),
            ("From", "+15551234567"),
            ("To", "+15557654321"),
            ("Body", body),
            ("NumMedia", "0"),
            ("SmsStatus", "received"),
        ])
    }

    #[test]
    fn consent_keywords_are_exact_words() {
        for word in [
            "STOP",
            "stop",
            " StopAll ",
            "UNSUBSCRIBE",
            "cancel",
            "End",
            "QUIT",
        ] {
            assert_eq!(consent_keyword(word), Some(ConsentAction::OptOut), "{word}");
        }
        for word in ["START", "yes", "Unstop"] {
            assert_eq!(consent_keyword(word), Some(ConsentAction::OptIn), "{word}");
        }
        for word in ["HELP", "info\n"] {
            assert_eq!(consent_keyword(word), Some(ConsentAction::Help), "{word}");
        }
        for text in ["STOP please", "don't stop", "STOP!", "", "yess", "help me"] {
            assert_eq!(consent_keyword(text), None, "{text}");
        }
    }

    #[test]
    fn twilio_statuses_map_to_delivery_states() {
        let cases = [
            ("accepted", DeliveryStatus::Queued),
            ("scheduled", DeliveryStatus::Queued),
            ("queued", DeliveryStatus::Queued),
            ("sending", DeliveryStatus::Queued),
            ("sent", DeliveryStatus::Sent),
            ("delivered", DeliveryStatus::Delivered),
            ("read", DeliveryStatus::Read),
            ("failed", DeliveryStatus::Failed),
            ("canceled", DeliveryStatus::Failed),
            ("undelivered", DeliveryStatus::Undelivered),
        ];
        for (twilio, ours) in cases {
            assert_eq!(delivery_status(twilio), Some(ours), "{twilio}");
        }
        assert_eq!(delivery_status("partially_delivered"), None);
    }

    #[test]
    fn inbound_message_with_media_and_profile_name() {
        let mut p = inbound("look");
        p.retain(|(k, _)| k != "NumMedia");
        p.extend(params(&[
            ("ProfileName", "Ada"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/m/0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://api.twilio.com/m/1"),
        ]));
        let events = events(&p).unwrap();
        assert_eq!(events.len(), 1);
        let ChannelEvent::Message(message) = &events[0] else {
            panic!("expected a message: {events:?}");
        };
        assert_eq!(message.provider_id, "SM1");
        assert_eq!(message.sender, Identity::new("phone", "+15551234567"));
        assert_eq!(
            message.recipient,
            Some(Identity::new("phone", "+15557654321"))
        );
        assert_eq!(message.sender_name.as_deref(), Some("Ada"));
        assert_eq!(message.body, "look");
        assert_eq!(message.attachments.len(), 2);
        assert_eq!(message.attachments[0].url, "https://api.twilio.com/m/0");
        assert_eq!(
            message.attachments[0].content_type.as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(message.attachments[1].content_type, None);
    }

    #[test]
    fn stop_is_a_message_and_an_opt_out() {
        let events = events(&inbound(" Stop ")).unwrap();
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[0], ChannelEvent::Message(m) if m.body == " Stop "));
        let ChannelEvent::Consent(consent) = &events[1] else {
            panic!("expected consent: {events:?}");
        };
        assert_eq!(consent.provider_id, "SM1:consent");
        assert_eq!(consent.action, ConsentAction::OptOut);
        assert_eq!(consent.keyword, "Stop");
        assert_eq!(consent.identity, Identity::new("phone", "+15551234567"));
    }

    #[test]
    fn status_callback_is_a_receipt() {
        let p = params(&[
            ("MessageSid", "SM9"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
            ("ErrorMessage", "Unreachable destination handset"),
            ("SmsStatus", "undelivered"),
        ]);
        assert_eq!(
            events(&p).unwrap(),
            vec![ChannelEvent::Receipt(DeliveryReceipt {
                error_code: Some("30003".into()),
                error_message: Some("Unreachable destination handset".into()),
                ..DeliveryReceipt::new("SM9", DeliveryStatus::Undelivered)
            })]
        );
        let unknown = params(&[("MessageSid", "SM9"), ("MessageStatus", "teleported")]);
        assert_eq!(events(&unknown).unwrap(), vec![]);
    }

    #[test]
    fn malformed_payloads_are_invalid_requests() {
        let no_sid = params(&[("From", "+1555"), ("Body", "hi")]);
        assert!(matches!(
            events(&no_sid),
            Err(PluginError::InvalidRequest(_))
        ));
        let no_from = params(&[("MessageSid", "SM1"), ("Body", "hi")]);
        assert!(matches!(
            events(&no_from),
            Err(PluginError::InvalidRequest(_))
        ));
        let mut bad_media = inbound("x");
        bad_media.push(("NumMedia".into(), "many".into()));
        bad_media.retain(|(k, v)| k != "NumMedia" || v == "many");
        assert!(matches!(
            events(&bad_media),
            Err(PluginError::InvalidRequest(_))
        ));
        let mut missing_url = inbound("x");
        missing_url.retain(|(k, _)| k != "NumMedia");
        missing_url.push(("NumMedia".into(), "1".into()));
        assert!(matches!(
            events(&missing_url),
            Err(PluginError::InvalidRequest(_))
        ));
        let receipt_without_sid = params(&[("MessageStatus", "sent")]);
        assert!(matches!(
            events(&receipt_without_sid),
            Err(PluginError::InvalidRequest(_))
        ));
    }
}
