//! Building the [`CrmProfile`] a lookup answers: the record id, a name, every
//! e-mail address and phone number the record holds (normalized, without
//! repeats), the attributes agents see and routing policies read, and the
//! link to the record.
//!
//! Attribute names are the same whatever the CRM, so a routing policy reads
//! `vip` without knowing which CRM set it:
//!
//! | attribute        | what |
//! |------------------|------|
//! | `vip`            | `true` or `false` (`yes`, `1`, `checked`… read as `true`) |
//! | `owner`          | the record owner (a name, else the CRM's user id) |
//! | `lifetime-value` | the value the CRM keeps for the customer |
//! | `company`        | the account or company name |
//! | `record-type`    | which kind of record matched (`Contact`, `Lead`), where the CRM has several |

use switchboard_sdk::Identity;
use switchboard_sdk::crm::CrmProfile;

use crate::phone::{self, Region};

/// Attribute: a VIP, `true` or `false`.
pub const VIP: &str = "vip";
/// Attribute: the record owner.
pub const OWNER: &str = "owner";
/// Attribute: the customer's lifetime value.
pub const LIFETIME_VALUE: &str = "lifetime-value";
/// Attribute: the account or company.
pub const COMPANY: &str = "company";
/// Attribute: the kind of record (`Contact`, `Lead`).
pub const RECORD_TYPE: &str = "record-type";

/// A JSON field as text: strings trimmed, numbers and booleans written out,
/// `null`, empty strings and objects as `None`.
pub fn text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A CRM's yes/no as `true`/`false`; `None` for anything else.
pub fn flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "on" | "checked" | "x" => Some(true),
        "false" | "no" | "n" | "0" | "off" | "unchecked" | "" => Some(false),
        _ => None,
    }
}

/// "First Last", from whichever parts are set.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let name = [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some(name).filter(|n| !n.is_empty())
}

/// Collects a profile piece by piece.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileBuilder {
    profile: CrmProfile,
    region: Region,
}

impl ProfileBuilder {
    /// A profile of the record `external_id`; phone numbers without `+` are
    /// read as dialled in `region`.
    pub fn new(external_id: impl Into<String>, region: Region) -> Self {
        Self {
            profile: CrmProfile {
                external_id: external_id.into(),
                display_name: None,
                identities: Vec::new(),
                attributes: Vec::new(),
                url: None,
            },
            region,
        }
    }

    /// Sets the display name, if `name` is not blank.
    pub fn name(&mut self, name: Option<String>) -> &mut Self {
        self.profile.display_name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        self
    }

    fn identity(&mut self, kind: &str, value: String) {
        if !self
            .profile
            .identities
            .iter()
            .any(|i| i.kind == kind && i.value == value)
        {
            self.profile.identities.push(Identity::new(kind, value));
        }
    }

    /// Adds an e-mail address (lower-cased), if it looks like one.
    pub fn email(&mut self, email: Option<&str>) -> &mut Self {
        if let Some(email) = email.map(str::trim).filter(|e| e.contains('@')) {
            self.identity("email", email.to_lowercase());
        }
        self
    }

    /// Adds every address of a list CRMs keep in one field (`a@x;b@y`).
    pub fn emails(&mut self, list: Option<&str>) -> &mut Self {
        for email in list.unwrap_or_default().split([';', ',', ' ', '\n']) {
            self.email(Some(email));
        }
        self
    }

    /// Adds a phone number in E.164, if it reads as one.
    pub fn phone(&mut self, phone: Option<&str>) -> &mut Self {
        if let Some(e164) = phone.and_then(|p| phone::normalize(p, &self.region)) {
            self.identity("phone", e164);
        }
        self
    }

    /// Sets an attribute, if the value is not blank.
    pub fn attribute(&mut self, key: &str, value: Option<String>) -> &mut Self {
        if let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            self.profile.attributes.retain(|(k, _)| k != key);
            self.profile.attributes.push((key.to_owned(), value));
        }
        self
    }

    /// Sets `vip` from a CRM's yes/no field (kept as written when it is
    /// neither).
    pub fn vip(&mut self, value: Option<String>) -> &mut Self {
        let value = value.map(|v| match flag(&v) {
            Some(yes) => yes.to_string(),
            None => v,
        });
        self.attribute(VIP, value)
    }

    /// Sets the link to the record.
    pub fn url(&mut self, url: Option<String>) -> &mut Self {
        self.profile.url = url;
        self
    }

    /// The profile.
    pub fn build(&self) -> CrmProfile {
        self.profile.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profiles_collect_normalized_identities_once() {
        let mut builder = ProfileBuilder::new("101", Region::us());
        builder
            .name(full_name(Some(" Ada "), Some("Lovelace")))
            .email(Some("Ada@Example.COM"))
            .emails(Some("ada@example.com;ada.l@work.example"))
            .email(Some("not an address"))
            .phone(Some("(415) 555-0100"))
            .phone(Some("+1 415 555 0100"))
            .phone(Some("n/a"))
            .vip(Some("Yes".into()))
            .attribute(OWNER, Some("  ".into()))
            .attribute(COMPANY, Some("Analytical Engines".into()))
            .url(Some("https://crm.example/101".into()));
        let profile = builder.build();
        assert_eq!(profile.external_id, "101");
        assert_eq!(profile.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            profile.identities,
            vec![
                Identity::new("email", "ada@example.com"),
                Identity::new("email", "ada.l@work.example"),
                Identity::new("phone", "+14155550100"),
            ]
        );
        assert_eq!(
            profile.attributes,
            vec![
                ("vip".to_owned(), "true".to_owned()),
                ("company".to_owned(), "Analytical Engines".to_owned()),
            ]
        );
        assert_eq!(profile.url.as_deref(), Some("https://crm.example/101"));
    }

    #[test]
    fn json_fields_read_as_text() {
        assert_eq!(text(Some(&json!(" a "))), Some("a".into()));
        assert_eq!(text(Some(&json!(""))), None);
        assert_eq!(text(Some(&json!(12.5))), Some("12.5".into()));
        assert_eq!(text(Some(&json!(true))), Some("true".into()));
        assert_eq!(text(Some(&json!(null))), None);
        assert_eq!(text(Some(&json!({"a": 1}))), None);
        assert_eq!(text(None), None);
    }

    #[test]
    fn flags_and_names() {
        assert_eq!(flag("TRUE"), Some(true));
        assert_eq!(flag("no"), Some(false));
        assert_eq!(flag("gold"), None);
        let mut builder = ProfileBuilder::new("1", Region::us());
        builder.vip(Some("gold".into()));
        assert_eq!(
            builder.build().attributes,
            vec![("vip".into(), "gold".into())]
        );
        assert_eq!(full_name(None, Some("Hopper")), Some("Hopper".into()));
        assert_eq!(full_name(Some(" "), None), None);
    }
}
