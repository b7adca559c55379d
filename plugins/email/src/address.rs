//! E-mail addresses and message ids as the connector handles them: checking
//! an address, its domain, the plus-addressed reply address that carries a
//! conversation's tag, and ids without their angle brackets.

/// Longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS: usize = 254;
/// Longest conversation tag accepted from a plus address.
const MAX_TAG: usize = 64;

/// Whether `address` looks like `local@domain` and is safe in a header and an
/// SMTP command: no spaces, controls, angle brackets or commas.
pub fn is_valid(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.len() <= MAX_ADDRESS
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !address.chars().any(|c| {
            c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

/// The domain of `address`, if it has one.
pub fn domain(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|domain| !domain.is_empty())
}

/// `support+TAG@example.com` for `support@example.com`.
pub fn with_tag(address: &str, tag: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{tag}@{domain}"),
        None => address.to_owned(),
    }
}

/// Whether `tag` may travel in the local part of an address unquoted.
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// The tag of `candidate` when it is `ours` plus-addressed
/// (`support+TAG@example.com` for `support@example.com`), compared as mail
/// systems do: the domain and the local part without regard to case.
pub fn plus_tag(candidate: &str, ours: &str) -> Option<String> {
    let candidate = bare(candidate);
    let (local, domain) = candidate.rsplit_once('@')?;
    let (our_local, our_domain) = ours.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(our_domain) {
        return None;
    }
    let (base, tag) = local.split_once('+')?;
    (base.eq_ignore_ascii_case(our_local) && is_valid_tag(tag)).then(|| tag.to_owned())
}

/// The address inside `Name <addr>` or `<addr>`, else the trimmed input.
pub fn bare(value: &str) -> &str {
    let value = value.trim();
    match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => value[open + 1..close].trim(),
        _ => value,
    }
}

/// A message id without its angle brackets and surrounding space.
pub fn strip_id(id: &str) -> &str {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    id.strip_suffix('>').unwrap_or(id).trim()
}

/// Every `<id>` in a `References`/`In-Reply-To` value, without brackets; bare
/// ids separated by spaces when the value has no brackets at all.
pub fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let id = rest[open + 1..open + close].trim();
        if !id.is_empty() {
            ids.push(id.to_owned());
        }
        rest = &rest[open + close + 1..];
    }
    if ids.is_empty() {
        ids = value
            .split([' ', '\t', '\r', '\n', ','])
            .map(strip_id)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect();
    }
    ids
}

/// Whether `local@…` is a mail system's own sender (bounces come from these).
pub fn is_mailer_daemon(address: &str) -> bool {
    let local = bare(address)
        .rsplit_once('@')
        .map_or(bare(address), |(local, _)| local);
    local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_for_header_safety() {
        assert!(is_valid("support@example.com"));
        assert!(is_valid("first.last+tag@sub.example.co.uk"));
        assert!(!is_valid("support"));
        assert!(!is_valid("@example.com"));
        assert!(!is_valid("a@"));
        assert!(!is_valid("a b@example.com"));
        assert!(!is_valid("a@example.com\r\nBcc: x@evil.test"));
        assert!(!is_valid("a@example.com>"));
        assert!(!is_valid("a@.example.com"));
    }

    #[test]
    fn plus_tags_are_found_on_our_address_only() {
        let ours = "support@example.com";
        assert_eq!(
            plus_tag("support+abc123@example.com", ours).as_deref(),
            Some("abc123")
        );
        assert_eq!(
            plus_tag("Support Team <SUPPORT+Abc@Example.COM>", ours).as_deref(),
            Some("Abc")
        );
        assert_eq!(plus_tag("support@example.com", ours), None);
        assert_eq!(plus_tag("sales+abc@example.com", ours), None);
        assert_eq!(plus_tag("support+abc@example.org", ours), None);
        assert_eq!(plus_tag("support+@example.com", ours), None);
        assert_eq!(plus_tag("support+a b@example.com", ours), None);
        assert_eq!(plus_tag("support+a+b@example.com", ours), None);
        assert_eq!(with_tag(ours, "t1"), "support+t1@example.com");
    }

    #[test]
    fn message_ids_lose_their_brackets() {
        assert_eq!(strip_id(" <a@b> "), "a@b");
        assert_eq!(strip_id("a@b"), "a@b");
        assert_eq!(
            message_ids("<a@b> <c@d>\r\n\t<e@f>"),
            vec!["a@b", "c@d", "e@f"]
        );
        assert_eq!(message_ids("a@b c@d"), vec!["a@b", "c@d"]);
        assert_eq!(message_ids("<a@b"), vec!["a@b"]);
        assert!(message_ids("").is_empty());
    }

    #[test]
    fn mailer_daemons() {
        assert!(is_mailer_daemon("MAILER-DAEMON@mx.example.com"));
        assert!(is_mailer_daemon(
            "Mail Delivery System <postmaster@example.com>"
        ));
        assert!(!is_mailer_daemon("bob@example.com"));
    }
}
