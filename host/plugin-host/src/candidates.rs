//! The agents a routing policy ranks, lent to a 0.2.0 policy as the
//! `agents.candidates` resource.
//!
//! A 0.1.0 policy received every candidate as a record: for the quiet case of
//! `bench routing` (about 490 candidates) that copy, with every agent's id,
//! skills and attributes, was most of the call. A 0.2.0 policy reads columns
//! instead — `idle-ms`, `load`, `skill("billing")` — each one flat list, and
//! only the columns it ranks on.

use std::sync::Arc;

use wasmtime::component::Resource;

use crate::bindings::v0_2::routing::switchboard::plugin::agents;
use crate::state::PluginState;

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

    fn column<T>(&self, f: impl Fn(&AgentCandidate) -> T) -> Vec<T> {
        self.rows.iter().map(f).collect()
    }
}

impl PluginState {
    /// The set behind a handle. The host made every handle a policy holds, so
    /// a missing one reads as an empty set rather than a trap.
    fn candidates(&self, handle: &Resource<CandidateSet>) -> CandidateSet {
        self.table().get(handle).cloned().unwrap_or_default()
    }
}

impl agents::Host for PluginState {}

impl agents::HostCandidates for PluginState {
    async fn len(&mut self, this: Resource<CandidateSet>) -> u32 {
        u32::try_from(self.candidates(&this).rows.len()).unwrap_or(u32::MAX)
    }

    async fn ids(&mut self, this: Resource<CandidateSet>) -> Vec<String> {
        self.candidates(&this).column(|c| c.id.clone())
    }

    async fn idle_ms(&mut self, this: Resource<CandidateSet>) -> Vec<u64> {
        self.candidates(&this).column(|c| c.idle_ms)
    }

    async fn load(&mut self, this: Resource<CandidateSet>) -> Vec<u32> {
        self.candidates(&this).column(|c| c.load)
    }

    async fn capacity(&mut self, this: Resource<CandidateSet>) -> Vec<u32> {
        self.candidates(&this).column(|c| c.capacity)
    }

    async fn served_contact_last(
        &mut self,
        this: Resource<CandidateSet>,
    ) -> Vec<bool> {
        self.candidates(&this).column(|c| c.served_contact_last)
    }

    async fn skill(
        &mut self,
        this: Resource<CandidateSet>,
        skill: String,
    ) -> Vec<u8> {
        self.candidates(&this).column(|c| {
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
        this: Resource<CandidateSet>,
        name: String,
    ) -> Vec<Option<String>> {
        self.candidates(&this).column(|c| {
            c.attributes
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
    }

    async fn drop(&mut self, this: Resource<CandidateSet>) -> wasmtime::Result<()> {
        self.table_mut().delete(this)?;
        Ok(())
    }
}
