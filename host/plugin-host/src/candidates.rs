//! The agents a routing policy ranks, lent to a 0.2.0 policy as the
//! `agents.candidates` resource.
//!
//! A 0.1.0 policy received every candidate as a record: for the quiet case of
//! `bench routing` (about 490 candidates) that copy, with every agent's id,
//! skills and attributes, was most of the call. A 0.2.0 policy reads columns
//! instead — `idle-ms`, `load`, `skill("billing")` — each one flat list, and
//! only the columns it ranks on.
//!
//! A [`CandidateSet`] is stored by column too, so that building one per
//! `rank` call costs a few allocations rather than several per candidate: the
//! ids back to back in one string, skills and attributes as indices into the
//! set's distinct names. The host builds it from borrowed candidates
//! ([`CandidateSet::from_refs`]) and never copies an agent's skills one by one.

use std::ops::Range;
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

/// One agent the host found eligible for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCandidate {
    /// Agent id.
    pub id: String,
    /// Skills with proficiency 1–5.
    pub skills: Vec<(String, u8)>,
    /// Milliseconds since the agent last finished work.
    pub idle_ms: u64,
    /// Capacity in use, in cost units.
    pub load: u32,
    /// Total capacity, in cost units.
    pub capacity: u32,
    /// This agent served the task's contact last.
    pub served_contact_last: bool,
    /// Agent attributes.
    pub attributes: Vec<(String, String)>,
}

impl AgentCandidate {
    /// This candidate, borrowed.
    pub fn as_ref(&self) -> CandidateRef<'_> {
        CandidateRef {
            id: &self.id,
            skills: &self.skills,
            idle_ms: self.idle_ms,
            load: self.load,
            capacity: self.capacity,
            served_contact_last: self.served_contact_last,
            attributes: &self.attributes,
        }
    }
}

/// One candidate as the host holds it, borrowed while a [`CandidateSet`] is
/// built.
#[derive(Debug, Clone, Copy)]
pub struct CandidateRef<'a> {
    /// Agent id.
    pub id: &'a str,
    /// Skills with proficiency 1–5.
    pub skills: &'a [(String, u8)],
    /// Milliseconds since the agent last finished work.
    pub idle_ms: u64,
    /// Capacity in use, in cost units.
    pub load: u32,
    /// Total capacity, in cost units.
    pub capacity: u32,
    /// This agent served the task's contact last.
    pub served_contact_last: bool,
    /// Agent attributes.
    pub attributes: &'a [(String, String)],
}

/// The candidates of one `rank` call, by column, shared with the store's
/// resource table.
#[derive(Debug, Clone, Default)]
pub struct CandidateSet {
    columns: Arc<Columns>,
}

/// The columns of a [`CandidateSet`], indexed like the candidates. Skills and
/// attributes are flat lists; candidate `i` owns `ends[i - 1]..ends[i]` of
/// them (`0..ends[0]` for the first).
#[derive(Debug, Default)]
struct Columns {
    ids: String,
    id_ends: Vec<usize>,
    idle_ms: Vec<u64>,
    load: Vec<u32>,
    capacity: Vec<u32>,
    served_contact_last: Vec<bool>,
    /// Distinct skill names, in order of first appearance.
    skill_names: Vec<String>,
    /// Index into `skill_names` and level.
    skills: Vec<(u32, u8)>,
    skill_ends: Vec<usize>,
    /// Distinct attribute names, in order of first appearance.
    attribute_names: Vec<String>,
    /// Index into `attribute_names` and value.
    attributes: Vec<(u32, String)>,
    attribute_ends: Vec<usize>,
}

/// The position of `name` in `names`, added when it is new.
fn intern(names: &mut Vec<String>, name: &str) -> u32 {
    let index = match names.iter().position(|n| n == name) {
        Some(index) => index,
        None => {
            names.push(name.to_owned());
            names.len() - 1
        }
    };
    u32::try_from(index).unwrap_or(u32::MAX)
}

impl CandidateSet {
    /// A set of candidates in the host's order.
    pub fn new(rows: impl AsRef<[AgentCandidate]>) -> CandidateSet {
        CandidateSet::from_refs(rows.as_ref().iter().map(AgentCandidate::as_ref))
    }

    /// A set of borrowed candidates in the host's order, copied by column.
    pub fn from_refs<'a>(candidates: impl IntoIterator<Item = CandidateRef<'a>>) -> CandidateSet {
        let candidates = candidates.into_iter();
        let n = candidates.size_hint().0;
        let mut c = Columns {
            id_ends: Vec::with_capacity(n),
            idle_ms: Vec::with_capacity(n),
            load: Vec::with_capacity(n),
            capacity: Vec::with_capacity(n),
            served_contact_last: Vec::with_capacity(n),
            skill_ends: Vec::with_capacity(n),
            attribute_ends: Vec::with_capacity(n),
            ..Columns::default()
        };
        for candidate in candidates {
            c.ids.push_str(candidate.id);
            c.id_ends.push(c.ids.len());
            c.idle_ms.push(candidate.idle_ms);
            c.load.push(candidate.load);
            c.capacity.push(candidate.capacity);
            c.served_contact_last.push(candidate.served_contact_last);
            for (skill, level) in candidate.skills {
                let name = intern(&mut c.skill_names, skill);
                c.skills.push((name, *level));
            }
            c.skill_ends.push(c.skills.len());
            for (key, value) in candidate.attributes {
                let name = intern(&mut c.attribute_names, key);
                c.attributes.push((name, value.clone()));
            }
            c.attribute_ends.push(c.attributes.len());
        }
        CandidateSet {
            columns: Arc::new(c),
        }
    }

    /// How many candidates there are.
    pub fn len(&self) -> usize {
        self.columns.id_ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The range of candidate `i`'s entries in a flat column with these ends.
    fn span(ends: &[usize], i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { ends[i - 1] };
        start..ends[i]
    }

    /// Agent ids.
    pub fn ids(&self) -> Vec<String> {
        let c = &*self.columns;
        (0..self.len())
            .map(|i| c.ids[Self::span(&c.id_ends, i)].to_owned())
            .collect()
    }

    /// Milliseconds since each agent last finished work.
    pub fn idle_ms(&self) -> Vec<u64> {
        self.columns.idle_ms.clone()
    }

    /// Capacity in use.
    pub fn load(&self) -> Vec<u32> {
        self.columns.load.clone()
    }

    /// Total capacity.
    pub fn capacity(&self) -> Vec<u32> {
        self.columns.capacity.clone()
    }

    /// Whether each agent served the task's contact last.
    pub fn served_contact_last(&self) -> Vec<bool> {
        self.columns.served_contact_last.clone()
    }

    /// Each agent's proficiency in `skill` (its highest, when listed twice),
    /// 0 without it.
    pub fn skill(&self, skill: &str) -> Vec<u8> {
        let c = &*self.columns;
        let Some(name) = c.skill_names.iter().position(|n| n == skill) else {
            return vec![0; self.len()];
        };
        let name = u32::try_from(name).unwrap_or(u32::MAX);
        (0..self.len())
            .map(|i| {
                c.skills[Self::span(&c.skill_ends, i)]
                    .iter()
                    .filter(|(s, _)| *s == name)
                    .map(|(_, level)| *level)
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Each agent's value of attribute `name` (the first, when listed twice).
    pub fn attribute(&self, name: &str) -> Vec<Option<String>> {
        let c = &*self.columns;
        let Some(key) = c.attribute_names.iter().position(|n| n == name) else {
            return vec![None; self.len()];
        };
        let key = u32::try_from(key).unwrap_or(u32::MAX);
        (0..self.len())
            .map(|i| {
                c.attributes[Self::span(&c.attribute_ends, i)]
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }

    /// The candidates as records, in the host's order (what a 0.1.0 policy
    /// receives).
    pub fn to_rows(&self) -> Vec<AgentCandidate> {
        let c = &*self.columns;
        (0..self.len())
            .map(|i| AgentCandidate {
                id: c.ids[Self::span(&c.id_ends, i)].to_owned(),
                skills: c.skills[Self::span(&c.skill_ends, i)]
                    .iter()
                    .map(|(s, level)| (c.skill_names[*s as usize].clone(), *level))
                    .collect(),
                idle_ms: c.idle_ms[i],
                load: c.load[i],
                capacity: c.capacity[i],
                served_contact_last: c.served_contact_last[i],
                attributes: c.attributes[Self::span(&c.attribute_ends, i)]
                    .iter()
                    .map(|(k, v)| (c.attribute_names[*k as usize].clone(), v.clone()))
                    .collect(),
            })
            .collect()
    }
}

/// A store's data that can lend candidate sets to a policy: the plugin host's
/// own state, and anything else that runs 0.2.0 policies (the routing
/// benchmark's bare reference).
pub trait CandidateTable: Send {
    /// The resource table the sets live in.
    fn candidate_table(&self) -> &ResourceTable;
    /// The same, mutable.
    fn candidate_table_mut(&mut self) -> &mut ResourceTable;

    /// The set behind a handle. The host made every handle a policy holds, so
    /// a missing one reads as an empty set rather than a trap.
    fn candidates(&self, handle: &Resource<CandidateSet>) -> CandidateSet {
        self.candidate_table()
            .get(handle)
            .cloned()
            .unwrap_or_default()
    }
}

/// Implements the `agents.candidates` host resource for a store's data type
/// that is a [`CandidateTable`] (generated bindings forbid a blanket impl).
#[macro_export]
macro_rules! impl_candidate_host {
    ($t:ty) => {
        impl $crate::bindings::v0_2::routing::switchboard::plugin::agents::Host for $t {}

        impl $crate::bindings::v0_2::routing::switchboard::plugin::agents::HostCandidates for $t {
            async fn len(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> u32 {
                u32::try_from($crate::CandidateTable::candidates(self, &this).len())
                    .unwrap_or(u32::MAX)
            }

            async fn ids(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<String> {
                $crate::CandidateTable::candidates(self, &this).ids()
            }

            async fn idle_ms(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<u64> {
                $crate::CandidateTable::candidates(self, &this).idle_ms()
            }

            async fn load(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<u32> {
                $crate::CandidateTable::candidates(self, &this).load()
            }

            async fn capacity(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<u32> {
                $crate::CandidateTable::candidates(self, &this).capacity()
            }

            async fn served_contact_last(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<bool> {
                $crate::CandidateTable::candidates(self, &this).served_contact_last()
            }

            async fn skill(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
                skill: String,
            ) -> Vec<u8> {
                $crate::CandidateTable::candidates(self, &this).skill(&skill)
            }

            async fn attribute(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
                name: String,
            ) -> Vec<Option<String>> {
                $crate::CandidateTable::candidates(self, &this).attribute(&name)
            }

            async fn drop(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> wasmtime::Result<()> {
                $crate::CandidateTable::candidate_table_mut(self).delete(this)?;
                Ok(())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, skills: &[(&str, u8)], attributes: &[(&str, &str)]) -> AgentCandidate {
        AgentCandidate {
            id: id.into(),
            skills: skills.iter().map(|(s, l)| ((*s).into(), *l)).collect(),
            idle_ms: id.len() as u64,
            load: 10,
            capacity: 100,
            served_contact_last: id == "b",
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn columns_read_like_the_rows() {
        let rows = vec![
            agent("a", &[("billing", 2), ("tech", 5)], &[("team", "red")]),
            agent("b", &[], &[]),
            agent(
                "ccc",
                &[("tech", 1), ("tech", 3)],
                &[("team", "blue"), ("team", "x")],
            ),
        ];
        let set = CandidateSet::new(&rows);
        assert_eq!(set.len(), 3);
        assert_eq!(set.ids(), ["a", "b", "ccc"]);
        assert_eq!(set.idle_ms(), [1, 1, 3]);
        assert_eq!(set.load(), [10, 10, 10]);
        assert_eq!(set.capacity(), [100, 100, 100]);
        assert_eq!(set.served_contact_last(), [false, true, false]);
        // The highest level when a skill is listed twice; 0 without it.
        assert_eq!(set.skill("tech"), [5, 0, 3]);
        assert_eq!(set.skill("billing"), [2, 0, 0]);
        assert_eq!(set.skill("sales"), [0, 0, 0]);
        // The first value when an attribute is listed twice.
        assert_eq!(
            set.attribute("team"),
            [Some("red".into()), None, Some("blue".into())]
        );
        assert_eq!(set.attribute("floor"), [None, None, None]);
        assert_eq!(set.to_rows(), rows);
    }

    #[test]
    fn an_empty_set_has_empty_columns() {
        let set = CandidateSet::default();
        assert!(set.is_empty());
        assert!(set.ids().is_empty() && set.skill("tech").is_empty());
        assert!(set.to_rows().is_empty());
    }
}
