//! `routing-least-busy`: an example routing policy, written the way a third
//! party would, against `switchboard-sdk` alone (plugin API
//! `switchboard:plugin@0.2.0`). See `README.md`.
//!
//! Every task joins one queue; the agent with the most spare capacity gets it.
//! `rank` reads three columns of the host's candidates — load, capacity and
//! idle time — and nothing else.

pub mod policy;

use switchboard_sdk::routing::{Candidates, Classification, TaskInfo};
use switchboard_sdk::{PluginError, RoutingPolicy, config};

use crate::policy::Workload;

struct LeastBusy;

impl RoutingPolicy for LeastBusy {
    fn classify(task: TaskInfo) -> Result<Classification, PluginError> {
        let queue = policy::queue_setting(config::get("queue"))?;
        policy::classify(&queue, &task)
    }

    fn rank(_task: TaskInfo, candidates: &Candidates) -> Result<Vec<u32>, PluginError> {
        policy::rank(&Workload {
            load: candidates.load(),
            capacity: candidates.capacity(),
            idle_ms: candidates.idle_ms(),
        })
    }
}

switchboard_sdk::export_routing!(LeastBusy);
