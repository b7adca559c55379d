//! `routing-least-busy`: an example routing policy, written the way a third
//! party would, against `switchboard-sdk` alone. See `README.md`.
//!
//! Every task joins one queue; the agent with the most spare capacity gets it.

pub mod policy;

use switchboard_sdk::routing::{AgentCandidate, Classification, TaskInfo};
use switchboard_sdk::{PluginError, RoutingPolicy, config};

struct LeastBusy;

impl RoutingPolicy for LeastBusy {
    fn classify(task: TaskInfo) -> Result<Classification, PluginError> {
        let queue = policy::queue_setting(config::get("queue"))?;
        policy::classify(&queue, &task)
    }

    fn rank(_task: TaskInfo, candidates: Vec<AgentCandidate>) -> Result<Vec<u32>, PluginError> {
        Ok(policy::rank(&candidates))
    }
}

switchboard_sdk::export_routing!(LeastBusy);
