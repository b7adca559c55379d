//! The policy itself, as plain functions over the SDK's routing types and
//! [`Workload`]: no host calls here, so `cargo test` runs it natively.

use core::cmp::Ordering;

use switchboard_sdk::PluginError;
use switchboard_sdk::routing::{Classification, TaskInfo};

/// The queue when the operator sets none.
pub const DEFAULT_QUEUE: &str = "general";

/// Checks the configured queue name; `None` or empty means [`DEFAULT_QUEUE`].
///
/// # Errors
///
/// [`PluginError::Config`] when the name is not 1–64 ASCII letters, digits,
/// `-`, `_` or `.`.
pub fn queue_setting(value: Option<String>) -> Result<String, PluginError> {
    let queue = value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_QUEUE.to_owned());
    let valid = queue.len() <= 64
        && queue
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(queue)
    } else {
        Err(PluginError::Config(format!(
            "config `queue`: `{queue}` is not a queue name (1-64 letters, digits, `-`, `_` or `.`)"
        )))
    }
}

/// Every task joins `queue`, at the priority of its `priority` attribute (0
/// without one), with no skills, no steps and no IVR.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] when `priority` is not an integer.
pub fn classify(queue: &str, task: &TaskInfo) -> Result<Classification, PluginError> {
    let priority = match task
        .attributes
        .iter()
        .find(|(name, _)| name == "priority")
        .map(|(_, value)| value.trim())
    {
        Some(text) => text.parse().map_err(|_| {
            PluginError::InvalidRequest(format!(
                "task attribute `priority`: `{text}` is not an integer"
            ))
        })?,
        None => 0,
    };
    Ok(Classification {
        queue: queue.to_owned(),
        priority,
        required_skills: Vec::new(),
        steps: Vec::new(),
        ivr: Vec::new(),
    })
}

/// The three columns of the host's candidates this policy ranks on, each
/// indexed like the candidates. `lib.rs` reads them with
/// `candidates.load()`, `candidates.capacity()` and `candidates.idle_ms()`;
/// skills, ids and attributes are never read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// Capacity each agent has in use.
    pub load: Vec<u32>,
    /// Each agent's total capacity.
    pub capacity: Vec<u32>,
    /// Milliseconds since each agent last finished work.
    pub idle_ms: Vec<u64>,
}

/// Every candidate, least loaded first (`load / capacity`; no capacity counts
/// as full), then the longest idle, then the host's order. Skills and who
/// served the contact last are ignored on purpose.
///
/// # Errors
///
/// [`PluginError::Internal`] when the columns differ in length.
pub fn rank(workload: &Workload) -> Result<Vec<u32>, PluginError> {
    let Workload {
        load,
        capacity,
        idle_ms,
    } = workload;
    if capacity.len() != load.len() || idle_ms.len() != load.len() {
        return Err(PluginError::Internal(format!(
            "the host gave {} loads, {} capacities and {} idle times",
            load.len(),
            capacity.len(),
            idle_ms.len()
        )));
    }
    // The host lends at most `u32::MAX` candidates (a WIT list), so every
    // index fits.
    let mut order: Vec<u32> = (0..load.len())
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        load_ratio_cmp((load[a], capacity[a]), (load[b], capacity[b]))
            .then(idle_ms[b].cmp(&idle_ms[a]))
    });
    Ok(order)
}

/// `a_load / a_capacity` against `b_load / b_capacity`, in integers.
fn load_ratio_cmp((a_load, a_cap): (u32, u32), (b_load, b_cap): (u32, u32)) -> Ordering {
    match (a_cap, b_cap) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        _ => (u64::from(a_load) * u64::from(b_cap)).cmp(&(u64::from(b_load) * u64::from(a_cap))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(attributes: &[(&str, &str)]) -> TaskInfo {
        TaskInfo {
            id: "t1".into(),
            channel: "voice".into(),
            conversation_id: None,
            contact: None,
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            waiting_ms: 0,
            last_agent: Some("sticky".into()),
        }
    }

    /// The columns of agents given as (load, capacity, idle-ms).
    fn workload(agents: &[(u32, u32, u64)]) -> Workload {
        Workload {
            load: agents.iter().map(|a| a.0).collect(),
            capacity: agents.iter().map(|a| a.1).collect(),
            idle_ms: agents.iter().map(|a| a.2).collect(),
        }
    }

    #[test]
    fn one_queue_priority_from_the_task_only() {
        let c = classify("general", &task(&[("skills", "billing:3")])).unwrap();
        assert_eq!(
            c,
            Classification {
                queue: "general".into(),
                priority: 0,
                required_skills: vec![],
                steps: vec![],
                ivr: vec![],
            }
        );
        assert_eq!(
            classify("q", &task(&[("priority", " 42 ")]))
                .unwrap()
                .priority,
            42
        );
        assert!(matches!(
            classify("q", &task(&[("priority", "urgent")])),
            Err(PluginError::InvalidRequest(_))
        ));
    }

    #[test]
    fn queue_setting_defaults_and_validates() {
        assert_eq!(queue_setting(None).unwrap(), "general");
        assert_eq!(queue_setting(Some(" ".into())).unwrap(), "general");
        assert_eq!(
            queue_setting(Some("support.eu".into())).unwrap(),
            "support.eu"
        );
        for bad in ["front desk", "a,b", &"q".repeat(65)] {
            assert!(
                matches!(queue_setting(Some(bad.into())), Err(PluginError::Config(m)) if m.starts_with("config `queue`")),
                "{bad}"
            );
        }
    }

    #[test]
    fn least_loaded_first_then_longest_idle() {
        let candidates = workload(&[
            (75, 100, 90_000), // the longest idle, but the busiest
            (50, 100, 1_000),  // half
            (50, 200, 1_000),  // a quarter of a bigger capacity
            (0, 100, 1_000),   // free
            (0, 100, 30_000),  // free, and idle longer
            (0, 0, 99_000),    // no capacity counts as full
        ]);
        assert_eq!(rank(&candidates).unwrap(), vec![4, 3, 2, 1, 0, 5]);
        assert_eq!(rank(&Workload::default()).unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn equals_keep_the_hosts_order() {
        let candidates = workload(&[(1, 4, 10), (25, 100, 10), (0, 0, 10), (0, 0, 99)]);
        assert_eq!(rank(&candidates).unwrap(), vec![0, 1, 3, 2]);
    }

    #[test]
    fn columns_of_different_lengths_are_an_internal_error() {
        let mut candidates = workload(&[(0, 100, 1), (0, 100, 2)]);
        candidates.idle_ms.pop();
        assert!(matches!(rank(&candidates), Err(PluginError::Internal(_))));
    }
}
