//! `rank`: the best of the eligible agents first.

use core::cmp::Ordering;

use switchboard_sdk::PluginError;
use switchboard_sdk::routing::{AgentCandidate, SkillRequirement, TaskInfo};

use crate::task;

/// Orders every candidate, best first, and returns their indices:
///
/// 1. the agent who served the contact last (`served-contact-last`, or the
///    task's `last-agent`), so a returning issue goes back to them;
/// 2. the higher skill match: the sum of the agent's proficiencies in the
///    skills the task requires (the `skills` task attribute and the contact's
///    language, as in `classify`; a skill the agent lacks counts 0);
/// 3. the longer idle (`idle-ms`), which spreads work fairly;
/// 4. the lower load ratio (`load / capacity`; no capacity counts as full);
/// 5. the host's order.
///
/// No candidate is left out: the host offers them in this order.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] when the task's `skills` attribute is
/// malformed.
pub fn rank(
    task: &TaskInfo,
    candidates: &[AgentCandidate],
    language_skills: bool,
) -> Result<Vec<u32>, PluginError> {
    let required = task::required_skills(task, language_skills)?;
    let scored: Vec<(u32, bool, u32)> = candidates
        .iter()
        .enumerate()
        .map(|(index, candidate)| {
            let index = u32::try_from(index).map_err(|_| {
                PluginError::InvalidRequest("more candidates than a u32 can index".into())
            })?;
            Ok((
                index,
                is_sticky(task, candidate),
                skill_match(&required, candidate),
            ))
        })
        .collect::<Result<_, PluginError>>()?;

    let mut order = scored;
    // A stable sort keeps the host's order among equals.
    order.sort_by(|(a, a_sticky, a_skill), (b, b_sticky, b_skill)| {
        let (ca, cb) = (&candidates[*a as usize], &candidates[*b as usize]);
        b_sticky
            .cmp(a_sticky)
            .then(b_skill.cmp(a_skill))
            .then(cb.idle_ms.cmp(&ca.idle_ms))
            .then(load_ratio_cmp(ca, cb))
    });
    Ok(order.into_iter().map(|(index, _, _)| index).collect())
}

/// Whether this agent served the task's contact last.
pub fn is_sticky(task: &TaskInfo, candidate: &AgentCandidate) -> bool {
    candidate.served_contact_last || task.last_agent.as_deref() == Some(candidate.id.as_str())
}

/// The sum of the candidate's proficiencies in the required skills.
pub fn skill_match(required: &[SkillRequirement], candidate: &AgentCandidate) -> u32 {
    required
        .iter()
        .map(|req| {
            candidate
                .skills
                .iter()
                .filter(|(skill, _)| *skill == req.skill)
                .map(|(_, level)| u32::from(*level))
                .max()
                .unwrap_or(0)
        })
        .sum()
}

/// Compares `load / capacity` without floating point; a candidate without
/// capacity sorts after every one with some.
pub fn load_ratio_cmp(a: &AgentCandidate, b: &AgentCandidate) -> Ordering {
    match (a.capacity, b.capacity) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        (a_cap, b_cap) => {
            (u64::from(a.load) * u64::from(b_cap)).cmp(&(u64::from(b.load) * u64::from(a_cap)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::tests::task;

    fn agent(id: &str, skills: &[(&str, u8)], idle_ms: u64, load: u32) -> AgentCandidate {
        AgentCandidate {
            id: id.into(),
            skills: skills.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect(),
            idle_ms,
            load,
            capacity: 100,
            served_contact_last: false,
            attributes: Vec::new(),
        }
    }

    fn ranked(t: &TaskInfo, candidates: &[AgentCandidate]) -> Vec<u32> {
        rank(t, candidates, true).unwrap()
    }

    #[test]
    fn sticky_agent_comes_first() {
        let t = task("chat", &[("skills", "billing:2")], None);
        let mut sticky = agent("a", &[], 0, 75);
        sticky.served_contact_last = true;
        let candidates = [agent("b", &[("billing", 5)], 90_000, 0), sticky];
        assert_eq!(ranked(&t, &candidates), vec![1, 0]);

        // The task's `last-agent` counts too.
        let mut t = task("chat", &[], None);
        t.last_agent = Some("c".into());
        let candidates = [agent("b", &[], 90_000, 0), agent("c", &[], 0, 0)];
        assert_eq!(ranked(&t, &candidates), vec![1, 0]);
    }

    #[test]
    fn better_skill_match_beats_longer_idle() {
        let t = task(
            "chat",
            &[("skills", "billing:2,spanish:1")],
            Some(&[("language", "es")]),
        );
        let candidates = [
            agent("idle", &[("billing", 2)], 90_000, 0),
            agent(
                "expert",
                &[("billing", 5), ("spanish", 3), ("sales", 5)],
                1_000,
                0,
            ),
            agent("native", &[("billing", 2), ("lang-es", 4)], 5_000, 0),
        ];
        // Scores: idle 2, expert 8, native 6. Skills the task does not ask
        // for (sales) do not count.
        assert_eq!(ranked(&t, &candidates), vec![1, 2, 0]);
        // Without language skills, `lang-es` does not count: native scores 2
        // and ties with idle, which has waited longer.
        assert_eq!(rank(&t, &candidates, false).unwrap(), vec![1, 0, 2]);
    }

    #[test]
    fn longest_idle_then_lowest_load_then_host_order() {
        let t = task("email", &[], None);
        let mut no_capacity = agent("none", &[], 5_000, 0);
        no_capacity.capacity = 0;
        let candidates = [
            agent("short", &[], 1_000, 0),
            agent("busy", &[], 5_000, 75),
            agent("long", &[], 60_000, 50),
            agent("light", &[], 5_000, 20),
            no_capacity,
            agent("light-too", &[], 5_000, 20),
        ];
        assert_eq!(ranked(&t, &candidates), vec![2, 3, 5, 1, 4, 0]);
    }

    #[test]
    fn load_ratio_uses_each_agents_capacity() {
        let mut big = agent("big", &[], 0, 50);
        big.capacity = 200; // 25 %
        let small = agent("small", &[], 0, 40); // 40 %
        assert_eq!(load_ratio_cmp(&big, &small), Ordering::Less);
        assert_eq!(ranked(&task("chat", &[], None), &[small, big]), vec![1, 0]);
    }

    #[test]
    fn every_index_is_returned_once() {
        assert_eq!(ranked(&task("chat", &[], None), &[]), Vec::<u32>::new());
        let candidates: Vec<_> = (0..20)
            .map(|i| agent(&format!("a{i}"), &[], (i * 7 % 5) as u64, i))
            .collect();
        let mut order = ranked(&task("chat", &[], None), &candidates);
        order.sort_unstable();
        assert_eq!(order, (0..20).collect::<Vec<u32>>());
    }

    #[test]
    fn malformed_skills_are_an_invalid_request() {
        let t = task("chat", &[("skills", "billing:nine")], None);
        assert!(matches!(
            rank(&t, &[agent("a", &[], 0, 0)], true),
            Err(PluginError::InvalidRequest(_))
        ));
    }
}
