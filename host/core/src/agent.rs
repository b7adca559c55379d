//! Agents' roles and skills.
//!
//! This module owns what a role may be and what a skill with proficiency is (1–5, as in
//! skills-based routing), including the `sales:4,billing:2` notation operators type on
//! the command line. It knows nothing about passwords, sessions or presence.

use serde::{Deserialize, Serialize};

string_enum! {
    /// What a user of the agent desk may do.
    "role",
    pub enum Role {
        /// Handles conversations and calls.
        Agent => "agent",
        /// An agent who also watches queues and other agents.
        Supervisor => "supervisor",
        /// Configures the platform: users, plugins, queues.
        Admin => "admin",
    }
}

impl Role {
    /// True if this role includes everything `other` may do.
    pub const fn includes(self, other: Role) -> bool {
        (self as u8) >= (other as u8)
    }
}

/// Lowest skill proficiency.
pub const MIN_PROFICIENCY: u8 = 1;
/// Highest skill proficiency.
pub const MAX_PROFICIENCY: u8 = 5;

/// A skill an agent has, with a proficiency from 1 (novice) to 5 (expert).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawSkill")]
pub struct Skill {
    name: String,
    proficiency: u8,
}

#[derive(Deserialize)]
struct RawSkill {
    name: String,
    proficiency: u8,
}

impl TryFrom<RawSkill> for Skill {
    type Error = SkillError;

    fn try_from(raw: RawSkill) -> Result<Self, SkillError> {
        Skill::new(&raw.name, raw.proficiency)
    }
}

impl Skill {
    /// A skill; the name is trimmed and lower-cased, the proficiency must be 1–5.
    pub fn new(name: &str, proficiency: u8) -> Result<Skill, SkillError> {
        let name = name.trim().to_lowercase();
        if name.is_empty() || name.contains([',', ':']) || name.chars().any(char::is_whitespace) {
            return Err(SkillError::InvalidName(name));
        }
        if !(MIN_PROFICIENCY..=MAX_PROFICIENCY).contains(&proficiency) {
            return Err(SkillError::Proficiency { name, proficiency });
        }
        Ok(Skill { name, proficiency })
    }

    /// The skill's name, e.g. `billing`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Proficiency from 1 to 5.
    pub fn proficiency(&self) -> u8 {
        self.proficiency
    }
}

/// Why a skill was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkillError {
    /// Empty, or containing whitespace, `,` or `:`.
    #[error("invalid skill name {0:?}")]
    InvalidName(String),
    /// Proficiency outside 1–5.
    #[error("skill {name:?}: proficiency {proficiency} is outside 1-5")]
    Proficiency {
        /// The skill name.
        name: String,
        /// The rejected proficiency.
        proficiency: u8,
    },
    /// Not of the form `name:level`.
    #[error("skill {0:?} is not of the form name:level (e.g. sales:4)")]
    Syntax(String),
    /// The same skill appears twice.
    #[error("skill {0:?} is listed twice")]
    Duplicate(String),
}

/// Parses `sales:4,billing:2` (whitespace around items is ignored; an empty string is
/// no skills).
pub fn parse_skills(text: &str) -> Result<Vec<Skill>, SkillError> {
    let mut skills: Vec<Skill> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, level) = item
            .split_once(':')
            .ok_or_else(|| SkillError::Syntax(item.to_owned()))?;
        let level: u8 = level
            .trim()
            .parse()
            .map_err(|_| SkillError::Syntax(item.to_owned()))?;
        let skill = Skill::new(name, level)?;
        if skills.iter().any(|s| s.name == skill.name) {
            return Err(SkillError::Duplicate(skill.name));
        }
        skills.push(skill);
    }
    Ok(skills)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert!(Role::Admin.includes(Role::Supervisor));
        assert!(Role::Supervisor.includes(Role::Agent));
        assert!(!Role::Agent.includes(Role::Supervisor));
        assert_eq!("supervisor".parse::<Role>().unwrap(), Role::Supervisor);
    }

    #[test]
    fn skills_parse() {
        let skills = parse_skills("Sales:4, billing:2").unwrap();
        assert_eq!(
            skills,
            vec![
                Skill::new("sales", 4).unwrap(),
                Skill::new("billing", 2).unwrap()
            ]
        );
        assert_eq!(parse_skills("").unwrap(), vec![]);
        assert_eq!(
            parse_skills("sales"),
            Err(SkillError::Syntax("sales".into()))
        );
        assert_eq!(
            parse_skills("sales:6"),
            Err(SkillError::Proficiency {
                name: "sales".into(),
                proficiency: 6
            })
        );
        assert_eq!(
            parse_skills("a:1,A:2"),
            Err(SkillError::Duplicate("a".into()))
        );
        assert!(serde_json::from_str::<Skill>(r#"{"name":"x","proficiency":0}"#).is_err());
    }
}
