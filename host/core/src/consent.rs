//! Consent: whether a customer agreed to receive messages on a channel, per identity.
//!
//! This module owns the vocabulary (states, the actions a keyword such as STOP or START
//! triggers) and the recognition of the usual carrier keywords. Enforcement — refusing
//! to queue a message to an opted-out identity — lives in the store, so it cannot be
//! bypassed by any caller.

string_enum! {
    /// Recorded consent of one identity on one channel. No record means "unknown", which
    /// the platform treats as allowed (transactional replies to inbound messages).
    "consent state",
    pub enum ConsentState {
        /// The customer opted in (e.g. replied START).
        OptedIn => "opted_in",
        /// The customer opted out (e.g. replied STOP); nothing may be sent.
        OptedOut => "opted_out",
    }
}

string_enum! {
    /// What a consent event asks for.
    "consent action",
    pub enum ConsentAction {
        /// Stop sending (STOP, UNSUBSCRIBE, …).
        OptOut => "opt_out",
        /// Resume sending (START, UNSTOP, …).
        OptIn => "opt_in",
        /// The customer asked for help (HELP, INFO); consent is unchanged.
        Help => "help",
    }
}

impl ConsentAction {
    /// The consent state this action leads to, if it changes consent at all.
    pub const fn resulting_state(self) -> Option<ConsentState> {
        match self {
            ConsentAction::OptOut => Some(ConsentState::OptedOut),
            ConsentAction::OptIn => Some(ConsentState::OptedIn),
            ConsentAction::Help => None,
        }
    }

    /// Recognizes the standard US carrier keywords (CTIA / 10DLC) when a message body
    /// consists of just that keyword, ignoring case, surrounding whitespace and
    /// trailing punctuation. Connectors may use their own provider's list instead.
    pub fn from_keyword(body: &str) -> Option<ConsentAction> {
        let word = body
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_punctuation())
            .to_ascii_uppercase();
        match word.as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "OPTOUT"
            | "REVOKE" => Some(ConsentAction::OptOut),
            "START" | "UNSTOP" | "YES" | "OPTIN" | "SUBSCRIBE" => Some(ConsentAction::OptIn),
            "HELP" | "INFO" => Some(ConsentAction::Help),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords() {
        assert_eq!(
            ConsentAction::from_keyword(" stop "),
            Some(ConsentAction::OptOut)
        );
        assert_eq!(
            ConsentAction::from_keyword("Unsubscribe."),
            Some(ConsentAction::OptOut)
        );
        assert_eq!(
            ConsentAction::from_keyword("START"),
            Some(ConsentAction::OptIn)
        );
        assert_eq!(
            ConsentAction::from_keyword("help"),
            Some(ConsentAction::Help)
        );
        assert_eq!(ConsentAction::from_keyword("please stop calling"), None);
    }

    #[test]
    fn states() {
        assert_eq!(
            ConsentAction::OptOut.resulting_state(),
            Some(ConsentState::OptedOut)
        );
        assert_eq!(ConsentAction::Help.resulting_state(), None);
        assert_eq!(
            "opted_out".parse::<ConsentState>().unwrap(),
            ConsentState::OptedOut
        );
        assert_eq!(
            serde_json::to_string(&ConsentAction::OptIn).unwrap(),
            "\"opt_in\""
        );
    }
}
