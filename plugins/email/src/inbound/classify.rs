//! Whether a machine wrote a message, from its headers: bounces, auto-replies
//! (out-of-office, vacation responders) and bulk mail (lists, newsletters,
//! notifications). The host records such mail but never routes or answers
//! it, so a support address cannot loop with another robot.
//!
//! Only headers are read, never the subject or the text: a customer whose
//! subject is "Out of office" must still reach an agent.

use switchboard_sdk::mail::Automatic;

use crate::address;

/// The kind of machine mail `headers` (name, unfolded value) describe, with
/// the `From` address; `None` when a person wrote it.
///
/// - bounce: `Content-Type: multipart/report; report-type=delivery-status`,
///   a top-level `message/delivery-status`, `X-Failed-Recipients`, or mail
///   from `MAILER-DAEMON` or `postmaster`;
/// - auto-reply: `Auto-Submitted: auto-replied`, `X-Autoreply`,
///   `X-Autorespond`, `Precedence: auto_reply`;
/// - bulk: any other `Auto-Submitted` but `no` (`auto-generated`,
///   `auto-notified`), `Precedence: bulk|list|junk`, `List-Id`,
///   `List-Unsubscribe`.
pub fn classify(headers: &[(String, String)], from: Option<&str>) -> Option<Automatic> {
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let has = |name: &'static str| values(name).next().is_some();
    // The first token of a structured value, lower-case: `auto-replied` of
    // `auto-replied; owner-email="x"`.
    let token = |value: &str| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"')
            .to_ascii_lowercase()
    };

    let is_report = values("Content-Type").any(|ct| {
        let ct = ct.to_ascii_lowercase();
        (ct.starts_with("multipart/report")
            && ct.replace('"', "").contains("report-type=delivery-status"))
            || ct.starts_with("message/delivery-status")
    });
    if is_report || has("X-Failed-Recipients") || from.is_some_and(address::is_mailer_daemon) {
        return Some(Automatic::Bounce);
    }

    let auto_submitted: Vec<String> = values("Auto-Submitted").map(token).collect();
    let precedence: Vec<String> = values("Precedence").map(token).collect();
    if auto_submitted.iter().any(|v| v == "auto-replied")
        || values("X-Autoreply").any(|v| !v.eq_ignore_ascii_case("no"))
        || has("X-Autorespond")
        || precedence
            .iter()
            .any(|v| v == "auto_reply" || v == "auto-reply")
    {
        return Some(Automatic::AutoReply);
    }
    if auto_submitted.iter().any(|v| !v.is_empty() && v != "no")
        || precedence
            .iter()
            .any(|v| matches!(v.as_str(), "bulk" | "list" | "junk"))
        || has("List-Id")
        || has("List-Unsubscribe")
    {
        return Some(Automatic::Bulk);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_headers(pairs: &[(&str, &str)], from: Option<&str>) -> Option<Automatic> {
        let headers: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        classify(&headers, from)
    }

    #[test]
    fn people_are_not_machines() {
        assert_eq!(
            classify_headers(
                &[
                    ("Subject", "Out of office? No, I need help"),
                    ("Auto-Submitted", "no"),
                    ("Content-Type", "multipart/mixed; boundary=x"),
                ],
                Some("bob@example.com")
            ),
            None
        );
    }

    #[test]
    fn auto_replies() {
        for headers in [
            vec![("Auto-Submitted", "auto-replied")],
            vec![("auto-submitted", "Auto-Replied; owner-email=\"a@b\"")],
            vec![("X-Autoreply", "yes")],
            vec![("X-Autorespond", "Vacation")],
            vec![("Precedence", "auto_reply")],
        ] {
            assert_eq!(
                classify_headers(&headers, Some("bob@example.com")),
                Some(Automatic::AutoReply),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn bulk_mail() {
        for headers in [
            vec![("Auto-Submitted", "auto-generated")],
            vec![("Precedence", "bulk")],
            vec![("Precedence", "list")],
            vec![("Precedence", "junk")],
            vec![("List-Id", "<news.example.com>")],
            vec![("List-Unsubscribe", "<mailto:u@example.com>")],
        ] {
            assert_eq!(
                classify_headers(&headers, Some("news@example.com")),
                Some(Automatic::Bulk),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn bounces_win_over_everything() {
        assert_eq!(
            classify_headers(
                &[
                    (
                        "Content-Type",
                        "multipart/report; report-type=\"delivery-status\"; boundary=b"
                    ),
                    ("Auto-Submitted", "auto-replied"),
                ],
                Some("postmaster@mx.example.com")
            ),
            Some(Automatic::Bounce)
        );
        assert_eq!(
            classify_headers(&[], Some("MAILER-DAEMON@mx.example.com")),
            Some(Automatic::Bounce)
        );
        assert_eq!(
            classify_headers(&[("X-Failed-Recipients", "a@b")], Some("x@y.test")),
            Some(Automatic::Bounce)
        );
        // A read receipt is a report, not a bounce.
        assert_eq!(
            classify_headers(
                &[(
                    "Content-Type",
                    "multipart/report; report-type=disposition-notification"
                )],
                Some("bob@example.com")
            ),
            None
        );
    }
}
