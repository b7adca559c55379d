//! The approved templates agents may pick:
//! `GET /{business_account_id}/message_templates`, approved ones only, with
//! their body text and placeholder names.

use serde::Deserialize;
use switchboard_sdk::TemplateInfo;

/// The fields asked for, and the page size.
pub const QUERY: &str = "fields=name,language,status,category,components&limit=100";

/// Pages read at most (100 templates each).
pub const MAX_PAGES: usize = 10;

/// One page of `message_templates`.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    data: Vec<Template>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct Template {
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Debug, Deserialize)]
struct Component {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Paging {
    #[serde(default)]
    cursors: Option<Cursors>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}

/// The path of page one (`after` = `None`) or of the page after a cursor.
pub fn path(business_account_id: &str, after: Option<&str>) -> String {
    let account = meta_common::graph::encode(business_account_id);
    match after {
        None => format!("{account}/message_templates?{QUERY}"),
        Some(cursor) => format!(
            "{account}/message_templates?{QUERY}&after={}",
            meta_common::graph::encode(cursor)
        ),
    }
}

impl Page {
    /// The approved templates on this page.
    pub fn approved(&self) -> Vec<TemplateInfo> {
        self.data
            .iter()
            .filter(|t| t.status.eq_ignore_ascii_case("APPROVED") && !t.name.is_empty())
            .map(|t| {
                let body = t
                    .components
                    .iter()
                    .find(|c| c.kind.eq_ignore_ascii_case("BODY"))
                    .and_then(|c| c.text.clone())
                    .unwrap_or_default();
                TemplateInfo {
                    name: t.name.clone(),
                    language: t.language.clone(),
                    category: t.category.clone(),
                    parameters: placeholders(&body),
                    body,
                }
            })
            .collect()
    }

    /// The cursor of the next page, when there is one.
    pub fn next_cursor(&self) -> Option<String> {
        let paging = self.paging.as_ref()?;
        paging.next.as_ref()?;
        paging
            .cursors
            .as_ref()?
            .after
            .clone()
            .filter(|c| !c.is_empty())
    }
}

/// The placeholder names of a template text, in order of first appearance:
/// `Hello {{1}}, {{2}}` → `1`, `2`; `Hi {{first_name}}` → `first_name`.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid && !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_order_without_repeats() {
        assert_eq!(
            placeholders("Hello {{1}}, order {{2}} ships {{1}}"),
            ["1", "2"]
        );
        assert_eq!(
            placeholders("Hi {{first_name}}, your code is {{ code }}."),
            ["first_name", "code"]
        );
        assert!(placeholders("No placeholders {here} {{}} {{ bad name }} {{open").is_empty());
    }

    #[test]
    fn only_approved_templates_with_their_body() {
        let page: Page = serde_json::from_str(
            r#"{"data":[
                {"name":"order_update","language":"en_US","status":"APPROVED","category":"UTILITY","id":"1",
                 "components":[{"type":"HEADER","format":"TEXT","text":"Order news"},
                               {"type":"BODY","text":"Hi {{1}}, order {{2}} has shipped."},
                               {"type":"FOOTER","text":"Reply STOP to opt out"}]},
                {"name":"welcome","language":"de","status":"APPROVED","category":"MARKETING","parameter_format":"NAMED",
                 "components":[{"type":"BODY","text":"Hallo {{first_name}}!"}]},
                {"name":"draft","language":"en_US","status":"PENDING","components":[{"type":"BODY","text":"x"}]},
                {"name":"rejected","language":"en_US","status":"REJECTED","components":[]}
            ],"paging":{"cursors":{"before":"QVFI","after":"QVFJ"},"next":"https://graph.facebook.com/v21.0/1/message_templates?after=QVFJ"}}"#,
        )
        .unwrap();
        let approved = page.approved();
        assert_eq!(approved.len(), 2);
        assert_eq!(
            approved[0],
            TemplateInfo {
                name: "order_update".into(),
                language: "en_US".into(),
                category: Some("UTILITY".into()),
                body: "Hi {{1}}, order {{2}} has shipped.".into(),
                parameters: vec!["1".into(), "2".into()],
            }
        );
        assert_eq!(approved[1].parameters, ["first_name"]);
        assert_eq!(page.next_cursor().as_deref(), Some("QVFJ"));

        let last: Page =
            serde_json::from_str(r#"{"data":[],"paging":{"cursors":{"after":"X"}}}"#).unwrap();
        assert_eq!(last.next_cursor(), None, "no `next`, no more pages");
    }

    #[test]
    fn paths() {
        assert_eq!(
            path("102290129340398", None),
            "102290129340398/message_templates?fields=name,language,status,category,components&limit=100"
        );
        assert!(path("1", Some("QVF=")).ends_with("&limit=100&after=QVF%3D"));
    }
}
