//! `routing-default`: Switchboard's first-party routing policy, on plugin API
//! `switchboard:plugin@0.2.0`. See `README.md`.
//!
//! - `classify` picks the queue (task attribute `queue`, the IVR menu choice,
//!   or the channel's queue), the priority (by channel, `priority` attribute
//!   override, VIP boost), the required skills (`skills` attribute, contact
//!   language), the widening and overflow steps, and for calls an IVR menu.
//! - `rank` puts the agent who served the contact last first, then the best
//!   skill match, then the longest idle, then the least loaded. It reads from
//!   the host's candidates only the columns it ranks on ([`rank::Columns`]).
//!
//! The logic lives in plain modules that compile and test natively; the trait
//! impl below only reads the config and calls them.

pub mod classify;
pub mod rank;
pub mod settings;
pub mod task;

use switchboard_sdk::routing::{Candidates, Classification, TaskInfo};
use switchboard_sdk::{PluginError, RoutingPolicy, config};

use crate::rank::CandidateColumns;
use crate::settings::Settings;

struct DefaultPolicy;

impl RoutingPolicy for DefaultPolicy {
    fn classify(task: TaskInfo) -> Result<Classification, PluginError> {
        let settings = Settings::load(config::get)?;
        classify::classify(&settings, &task)
    }

    fn rank(task: TaskInfo, candidates: &Candidates) -> Result<Vec<u32>, PluginError> {
        let language_skills = settings::language_skills(config::get)?;
        rank::rank(&task, candidates, language_skills)
    }
}

/// Each column is one call to the host, which copies just that list.
impl CandidateColumns for Candidates {
    fn ids(&self) -> Vec<String> {
        Candidates::ids(self)
    }

    fn served_contact_last(&self) -> Vec<bool> {
        Candidates::served_contact_last(self)
    }

    fn skill(&self, skill: &str) -> Vec<u8> {
        Candidates::skill(self, skill)
    }

    fn idle_ms(&self) -> Vec<u64> {
        Candidates::idle_ms(self)
    }

    fn load(&self) -> Vec<u32> {
        Candidates::load(self)
    }

    fn capacity(&self) -> Vec<u32> {
        Candidates::capacity(self)
    }
}

switchboard_sdk::export_routing!(DefaultPolicy);
