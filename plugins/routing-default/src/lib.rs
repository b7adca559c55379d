//! `routing-default`: Switchboard's first-party routing policy. See `README.md`.
//!
//! - `classify` picks the queue (task attribute `queue`, the IVR menu choice,
//!   or the channel's queue), the priority (by channel, `priority` attribute
//!   override, VIP boost), the required skills (`skills` attribute, contact
//!   language), the widening and overflow steps, and for calls an IVR menu.
//! - `rank` puts the agent who served the contact last first, then the best
//!   skill match, then the longest idle, then the least loaded.
//!
//! The logic lives in plain modules that compile and test natively; the trait
//! impl below only reads the config and calls them.

pub mod classify;
pub mod rank;
pub mod settings;
pub mod task;

use switchboard_sdk::routing::{AgentCandidate, Classification, TaskInfo};
use switchboard_sdk::{PluginError, RoutingPolicy, config};

use crate::settings::Settings;

struct DefaultPolicy;

impl RoutingPolicy for DefaultPolicy {
    fn classify(task: TaskInfo) -> Result<Classification, PluginError> {
        let settings = Settings::load(config::get)?;
        classify::classify(&settings, &task)
    }

    fn rank(task: TaskInfo, candidates: Vec<AgentCandidate>) -> Result<Vec<u32>, PluginError> {
        let language_skills = settings::language_skills(config::get)?;
        rank::rank(&task, &candidates, language_skills)
    }
}

switchboard_sdk::export_routing!(DefaultPolicy);
