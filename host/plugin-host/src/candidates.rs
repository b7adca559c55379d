//! The agents a routing policy ranks, lent to a 0.2.0 policy as the
//! `agents.candidates` resource.
//!
//! A 0.1.0 policy received every candidate as a record: for the quiet case of
//! `bench routing` (about 490 candidates) that copy, with every agent's id,
//! skills and attributes, was most of the call. A 0.2.0 policy reads columns
//! instead — `idle-ms`, `load`, `skill("billing")` — each one flat list, and
//! only the columns it ranks on.

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

/// The candidates of one `rank` call, shared with the store's resource table.
#[derive(Debug, Clone, Default)]
pub struct CandidateSet {
    rows: Arc<[AgentCandidate]>,
}

impl CandidateSet {
    /// A set of candidates in the host's order.
    pub fn new(rows: impl Into<Arc<[AgentCandidate]>>) -> CandidateSet {
        CandidateSet { rows: rows.into() }
    }

    /// The candidates, in the host's order.
    pub fn rows(&self) -> &[AgentCandidate] {
        &self.rows
    }

    /// One value per candidate, in order.
    pub fn column_of<T>(&self, f: impl Fn(&AgentCandidate) -> T) -> Vec<T> {
        self.rows.iter().map(f).collect()
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
                u32::try_from($crate::CandidateTable::candidates(self, &this).rows().len())
                    .unwrap_or(u32::MAX)
            }

            async fn ids(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<String> {
                $crate::CandidateTable::candidates(self, &this).column_of(|c| c.id.clone())
            }

            async fn idle_ms(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<u64> {
                $crate::CandidateTable::candidates(self, &this).column_of(|c| c.idle_ms)
            }

            async fn load(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<u32> {
                $crate::CandidateTable::candidates(self, &this).column_of(|c| c.load)
            }

            async fn capacity(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<u32> {
                $crate::CandidateTable::candidates(self, &this).column_of(|c| c.capacity)
            }

            async fn served_contact_last(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
            ) -> Vec<bool> {
                $crate::CandidateTable::candidates(self, &this).column_of(|c| c.served_contact_last)
            }

            async fn skill(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
                skill: String,
            ) -> Vec<u8> {
                $crate::CandidateTable::candidates(self, &this).column_of(|c| {
                    c.skills
                        .iter()
                        .filter(|(s, _)| *s == skill)
                        .map(|(_, level)| *level)
                        .max()
                        .unwrap_or(0)
                })
            }

            async fn attribute(
                &mut self,
                this: $crate::wasmtime_resource::Resource<$crate::CandidateSet>,
                name: String,
            ) -> Vec<Option<String>> {
                $crate::CandidateTable::candidates(self, &this).column_of(|c| {
                    c.attributes
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.clone())
                })
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
