//! `rank`: the best of the eligible agents first.
//!
//! The host lends the candidates as a resource read by column
//! (`agents.candidates`). `rank` reads only the columns it ranks on — who
//! served the contact last, the agents' ids only when the task names a
//! `last-agent`, one proficiency column per required skill, idle time, load
//! and capacity — into [`Columns`], and orders them with plain functions.
//! Agents' attributes and skills the task does not ask for are never copied.

use core::cmp::Ordering;

use switchboard_sdk::PluginError;
use switchboard_sdk::routing::{SkillRequirement, TaskInfo};

use crate::task;

/// The columns of the host's `agents.candidates` that [`rank`] may read, each
/// a list indexed like the candidates. `lib.rs` implements it for the SDK's
/// `routing::Candidates`; the tests implement it over a table.
pub trait CandidateColumns {
    /// Agent ids.
    fn ids(&self) -> Vec<String>;
    /// Whether each agent served the task's contact last.
    fn served_contact_last(&self) -> Vec<bool>;
    /// Each agent's proficiency in `skill`, 0 without it.
    fn skill(&self, skill: &str) -> Vec<u8>;
    /// Milliseconds since each agent last finished work.
    fn idle_ms(&self) -> Vec<u64>;
    /// Capacity in use.
    fn load(&self) -> Vec<u32>;
    /// Total capacity.
    fn capacity(&self) -> Vec<u32>;
}

/// What `rank` knows of each candidate, indexed like the candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// Served the contact last (`served-contact-last`, or the task's
    /// `last-agent`).
    pub sticky: Vec<bool>,
    /// The sum of the agent's proficiencies in the required skills.
    pub skill_match: Vec<u32>,
    /// Milliseconds since the agent last finished work.
    pub idle_ms: Vec<u64>,
    /// Capacity in use.
    pub load: Vec<u32>,
    /// Total capacity.
    pub capacity: Vec<u32>,
}

impl Columns {
    /// Reads what ranking needs: `ids` only when `last_agent` is set, and
    /// one `skill` column per required skill (none when the task requires
    /// none).
    ///
    /// # Errors
    ///
    /// [`PluginError::Internal`] when the columns differ in length.
    pub fn read(
        candidates: &impl CandidateColumns,
        last_agent: Option<&str>,
        required: &[SkillRequirement],
    ) -> Result<Columns, PluginError> {
        // Every column has one entry per candidate, so the first one read
        // counts them: no separate `len` call.
        let mut sticky = candidates.served_contact_last();
        let n = sticky.len();
        let check = |column: &str, len: usize| {
            if len == n {
                Ok(())
            } else {
                Err(PluginError::Internal(format!(
                    "the host gave {len} `{column}` values for {n} candidates"
                )))
            }
        };
        if let Some(last_agent) = last_agent {
            let ids = candidates.ids();
            check("ids", ids.len())?;
            for (sticky, id) in sticky.iter_mut().zip(&ids) {
                *sticky |= id == last_agent;
            }
        }

        let mut skill_match = vec![0u32; n];
        for requirement in required {
            let levels = candidates.skill(&requirement.skill);
            check("skill", levels.len())?;
            for (sum, level) in skill_match.iter_mut().zip(levels) {
                *sum += u32::from(level);
            }
        }

        let columns = Columns {
            sticky,
            skill_match,
            idle_ms: candidates.idle_ms(),
            load: candidates.load(),
            capacity: candidates.capacity(),
        };
        check("idle-ms", columns.idle_ms.len())?;
        check("load", columns.load.len())?;
        check("capacity", columns.capacity.len())?;
        Ok(columns)
    }
}

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
/// malformed; [`PluginError::Internal`] when the host's columns differ in
/// length.
pub fn rank(
    task: &TaskInfo,
    candidates: &impl CandidateColumns,
    language_skills: bool,
) -> Result<Vec<u32>, PluginError> {
    let required = task::required_skills(task, language_skills)?;
    let columns = Columns::read(candidates, task.last_agent.as_deref(), &required)?;
    Ok(order(&columns))
}

/// The order of [`rank`] over columns already read.
pub fn order(columns: &Columns) -> Vec<u32> {
    let mut order: Vec<u32> = (0..columns.sticky.len())
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    // A stable sort keeps the host's order among equals.
    order.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        columns.sticky[b]
            .cmp(&columns.sticky[a])
            .then(columns.skill_match[b].cmp(&columns.skill_match[a]))
            .then(columns.idle_ms[b].cmp(&columns.idle_ms[a]))
            .then(load_ratio_cmp(
                (columns.load[a], columns.capacity[a]),
                (columns.load[b], columns.capacity[b]),
            ))
    });
    order
}

/// Compares `load / capacity` as `(load, capacity)` pairs without floating
/// point; a candidate without capacity sorts after every one with some.
pub fn load_ratio_cmp((a_load, a_cap): (u32, u32), (b_load, b_cap): (u32, u32)) -> Ordering {
    match (a_cap, b_cap) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        _ => (u64::from(a_load) * u64::from(b_cap)).cmp(&(u64::from(b_load) * u64::from(a_cap))),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::task::tests::task;

    /// One agent as the host holds it.
    #[derive(Clone)]
    struct Agent {
        id: String,
        skills: Vec<(String, u8)>,
        idle_ms: u64,
        load: u32,
        capacity: u32,
        served_contact_last: bool,
    }

    fn agent(id: &str, skills: &[(&str, u8)], idle_ms: u64, load: u32) -> Agent {
        Agent {
            id: id.into(),
            skills: skills.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect(),
            idle_ms,
            load,
            capacity: 100,
            served_contact_last: false,
        }
    }

    /// The host's candidates, answering column reads as the host does and
    /// recording which columns were read.
    struct Table {
        agents: Vec<Agent>,
        reads: RefCell<Vec<String>>,
    }

    impl Table {
        fn new(agents: &[Agent]) -> Table {
            Table {
                agents: agents.to_vec(),
                reads: RefCell::default(),
            }
        }

        fn column<T>(&self, name: &str, f: impl Fn(&Agent) -> T) -> Vec<T> {
            self.reads.borrow_mut().push(name.to_owned());
            self.agents.iter().map(f).collect()
        }

        fn reads(&self) -> Vec<String> {
            self.reads.borrow().clone()
        }
    }

    impl CandidateColumns for Table {
        fn ids(&self) -> Vec<String> {
            self.column("ids", |a| a.id.clone())
        }

        fn served_contact_last(&self) -> Vec<bool> {
            self.column("served-contact-last", |a| a.served_contact_last)
        }

        fn skill(&self, skill: &str) -> Vec<u8> {
            self.column(&format!("skill {skill}"), |a| {
                a.skills
                    .iter()
                    .filter(|(s, _)| s == skill)
                    .map(|(_, level)| *level)
                    .max()
                    .unwrap_or(0)
            })
        }

        fn idle_ms(&self) -> Vec<u64> {
            self.column("idle-ms", |a| a.idle_ms)
        }

        fn load(&self) -> Vec<u32> {
            self.column("load", |a| a.load)
        }

        fn capacity(&self) -> Vec<u32> {
            self.column("capacity", |a| a.capacity)
        }
    }

    fn ranked(t: &TaskInfo, candidates: &[Agent]) -> Vec<u32> {
        rank(t, &Table::new(candidates), true).unwrap()
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
        assert_eq!(
            rank(&t, &Table::new(&candidates), false).unwrap(),
            vec![1, 0, 2]
        );
    }

    #[test]
    fn a_skill_listed_twice_counts_its_best_level() {
        let t = task("chat", &[("skills", "billing:1")], None);
        let candidates = [
            agent("twice", &[("billing", 1), ("billing", 4)], 0, 0),
            agent("once", &[("billing", 3)], 90_000, 0),
        ];
        assert_eq!(ranked(&t, &candidates), vec![0, 1]);
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
        assert_eq!(
            load_ratio_cmp((big.load, big.capacity), (small.load, small.capacity)),
            Ordering::Less
        );
        assert_eq!(load_ratio_cmp((0, 0), (5, 0)), Ordering::Equal);
        assert_eq!(load_ratio_cmp((0, 0), (99, 100)), Ordering::Greater);
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
    fn reads_only_the_columns_it_ranks_on() {
        let candidates = [agent("a", &[("billing", 3)], 0, 0), agent("b", &[], 0, 0)];
        let basics = ["served-contact-last", "idle-ms", "load", "capacity"];

        // No last agent and no skills: neither ids nor any skill column.
        let table = Table::new(&candidates);
        rank(&task("chat", &[], None), &table, true).unwrap();
        assert_eq!(table.reads(), basics);

        // One skill column per required skill; ids only for a last agent.
        let mut t = task(
            "chat",
            &[("skills", "billing:2")],
            Some(&[("language", "es")]),
        );
        t.last_agent = Some("b".into());
        let table = Table::new(&candidates);
        assert_eq!(rank(&t, &table, true).unwrap(), vec![1, 0]);
        assert_eq!(
            table.reads(),
            [
                "served-contact-last",
                "ids",
                "skill billing",
                "skill lang-es",
                "idle-ms",
                "load",
                "capacity"
            ]
        );
    }

    #[test]
    fn columns_of_the_wrong_length_are_an_internal_error() {
        /// Answers one idle time too few.
        struct Short(Table);

        impl CandidateColumns for Short {
            fn ids(&self) -> Vec<String> {
                self.0.ids()
            }
            fn served_contact_last(&self) -> Vec<bool> {
                self.0.served_contact_last()
            }
            fn skill(&self, skill: &str) -> Vec<u8> {
                self.0.skill(skill)
            }
            fn idle_ms(&self) -> Vec<u64> {
                let mut column = self.0.idle_ms();
                column.pop();
                column
            }
            fn load(&self) -> Vec<u32> {
                self.0.load()
            }
            fn capacity(&self) -> Vec<u32> {
                self.0.capacity()
            }
        }

        let short = Short(Table::new(&[agent("a", &[], 0, 0)]));
        assert!(matches!(
            rank(&task("chat", &[], None), &short, true),
            Err(PluginError::Internal(m)) if m.contains("idle-ms")
        ));
    }

    #[test]
    fn malformed_skills_are_an_invalid_request() {
        let t = task("chat", &[("skills", "billing:nine")], None);
        let table = Table::new(&[agent("a", &[], 0, 0)]);
        assert!(matches!(
            rank(&t, &table, true),
            Err(PluginError::InvalidRequest(_))
        ));
        assert!(table.reads().is_empty(), "nothing is read for a bad task");
    }
}
