//! What the policy reads from a task: its attributes, its contact's
//! attributes and the skills it asks for.

use switchboard_sdk::PluginError;
use switchboard_sdk::routing::{SkillRequirement, TaskInfo};

/// Task attribute naming the queue outright.
pub const QUEUE: &str = "queue";
/// Task attribute overriding the channel's base priority.
pub const PRIORITY: &str = "priority";
/// Task attribute listing required skills: `billing:3,spanish:2`.
pub const SKILLS: &str = "skills";
/// Task attribute the IVR gathers the caller's menu choice into.
pub const MENU: &str = "menu";
/// Contact attribute marking a VIP: `true`, `yes` or `1`.
pub const VIP: &str = "vip";
/// Contact attribute holding the language code: `es`, `pt-BR`…
pub const LANGUAGE: &str = "language";

/// Prefix of the skill a contact's language requires: `lang-es`.
pub const LANGUAGE_SKILL_PREFIX: &str = "lang-";
/// Highest proficiency an agent can have.
pub const MAX_PROFICIENCY: u8 = 5;

/// The trimmed, non-empty value of `name` in `attributes` (name matched
/// case-insensitively, first match wins).
pub fn attribute<'a>(attributes: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the task carries attribute `name` at all, even empty.
pub fn has_task_attribute(task: &TaskInfo, name: &str) -> bool {
    task.attributes
        .iter()
        .any(|(k, _)| k.trim().eq_ignore_ascii_case(name))
}

/// A task attribute.
pub fn task_attribute<'a>(task: &'a TaskInfo, name: &str) -> Option<&'a str> {
    attribute(&task.attributes, name)
}

/// An attribute of the task's contact.
pub fn contact_attribute<'a>(task: &'a TaskInfo, name: &str) -> Option<&'a str> {
    task.contact
        .as_ref()
        .and_then(|contact| attribute(&contact.attributes, name))
}

/// Whether the contact is a VIP (`vip` is `true`, `yes` or `1`, any case).
pub fn is_vip(task: &TaskInfo) -> bool {
    contact_attribute(task, VIP).is_some_and(|v| {
        v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes") || v == "1"
    })
}

/// The skills the task requires: the `skills` task attribute and, when
/// `language_skills` is on, `lang-<code>` at proficiency 1 for the contact's
/// `language`. A skill named twice keeps its highest proficiency.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] when `skills` is malformed.
pub fn required_skills(
    task: &TaskInfo,
    language_skills: bool,
) -> Result<Vec<SkillRequirement>, PluginError> {
    let mut skills = match task_attribute(task, SKILLS) {
        Some(text) => parse_skills(text)?,
        None => Vec::new(),
    };
    if language_skills && let Some(language) = contact_attribute(task, LANGUAGE) {
        let skill = format!("{LANGUAGE_SKILL_PREFIX}{}", language.to_ascii_lowercase());
        add_skill(&mut skills, skill, 1);
    }
    Ok(skills)
}

/// Parses `billing:3, spanish:2, returns`: a skill without `:level` is
/// required at proficiency 1; levels are 1–5.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] naming the bad entry.
pub fn parse_skills(text: &str) -> Result<Vec<SkillRequirement>, PluginError> {
    let mut skills = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, level) = match entry.split_once(':') {
            Some((name, level)) => (name.trim(), Some(level.trim())),
            None => (entry, None),
        };
        let bad = |why: &str| {
            PluginError::InvalidRequest(format!(
                "task attribute `{SKILLS}`: entry `{entry}` {why} (expected `skill:level`, level 1-{MAX_PROFICIENCY})"
            ))
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad("has no usable skill name"));
        }
        let level = match level {
            None => 1,
            Some(level) => level
                .parse::<u8>()
                .ok()
                .filter(|l| (1..=MAX_PROFICIENCY).contains(l))
                .ok_or_else(|| bad("has a bad level"))?,
        };
        add_skill(&mut skills, name.to_owned(), level);
    }
    Ok(skills)
}

fn add_skill(skills: &mut Vec<SkillRequirement>, skill: String, level: u8) {
    match skills.iter_mut().find(|s| s.skill == skill) {
        Some(existing) => existing.min_proficiency = existing.min_proficiency.max(level),
        None => skills.push(SkillRequirement {
            skill,
            min_proficiency: level,
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use switchboard_sdk::ContactSummary;

    /// A task on `channel` with these task and contact attributes (no contact
    /// when `contact` is `None`).
    pub fn task(
        channel: &str,
        attrs: &[(&str, &str)],
        contact: Option<&[(&str, &str)]>,
    ) -> TaskInfo {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        TaskInfo {
            id: "task-1".into(),
            channel: channel.into(),
            conversation_id: Some("conv-1".into()),
            contact: contact.map(|attributes| ContactSummary {
                id: "contact-1".into(),
                display_name: None,
                identities: Vec::new(),
                attributes: pairs(attributes),
            }),
            attributes: pairs(attrs),
            waiting_ms: 0,
            last_agent: None,
        }
    }

    fn req(skill: &str, min_proficiency: u8) -> SkillRequirement {
        SkillRequirement {
            skill: skill.into(),
            min_proficiency,
        }
    }

    #[test]
    fn skills_parse_with_levels_defaults_and_duplicates() {
        assert_eq!(
            parse_skills("billing:3, spanish : 2,,returns, billing:1").unwrap(),
            vec![req("billing", 3), req("spanish", 2), req("returns", 1)]
        );
        assert_eq!(parse_skills(" , ").unwrap(), vec![]);
    }

    #[test]
    fn bad_skills_are_invalid_requests() {
        for bad in [
            "billing:0",
            "billing:6",
            "billing:x",
            ":3",
            "two words:2",
            "billing:",
        ] {
            match parse_skills(bad) {
                Err(PluginError::InvalidRequest(message)) => {
                    assert!(message.contains("task attribute `skills`"), "{message}")
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn language_becomes_a_skill_when_enabled() {
        let t = task(
            "chat",
            &[("skills", "billing:3")],
            Some(&[("Language", "ES")]),
        );
        assert_eq!(
            required_skills(&t, true).unwrap(),
            vec![req("billing", 3), req("lang-es", 1)]
        );
        assert_eq!(required_skills(&t, false).unwrap(), vec![req("billing", 3)]);
        let t = task(
            "chat",
            &[("skills", "lang-es:4")],
            Some(&[("language", "es")]),
        );
        assert_eq!(required_skills(&t, true).unwrap(), vec![req("lang-es", 4)]);
        let t = task("chat", &[], None);
        assert_eq!(required_skills(&t, true).unwrap(), vec![]);
    }

    #[test]
    fn vip_accepts_true_yes_and_1() {
        for yes in ["true", "TRUE", "yes", "Yes", "1", " 1 "] {
            assert!(is_vip(&task("chat", &[], Some(&[("vip", yes)]))), "{yes}");
        }
        for no in ["false", "no", "0", "", "vip", "2"] {
            assert!(!is_vip(&task("chat", &[], Some(&[("vip", no)]))), "{no}");
        }
        assert!(!is_vip(&task("chat", &[("vip", "true")], None)));
    }
}
