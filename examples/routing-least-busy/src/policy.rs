//! The policy itself, as plain functions over the SDK's routing types: no host
//! calls here, so `cargo test` runs it natively.

use core::cmp::Ordering;

use switchboard_sdk::PluginError;
use switchboard_sdk::routing::{AgentCandidate, Classification, TaskInfo};

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

/// Every candidate, least loaded first (`load / capacity`; no capacity counts
/// as full), then the longest idle, then the host's order. Skills and who
/// served the contact last are ignored on purpose.
pub fn rank(candidates: &[AgentCandidate]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        load_ratio_cmp(a, b).then(b.idle_ms.cmp(&a.idle_ms))
    });
    // The host passes at most `u32::MAX` candidates (a WIT list), so every
    // index fits.
    order
        .into_iter()
        .filter_map(|i| u32::try_from(i).ok())
        .collect()
}

/// `a.load / a.capacity` against `b.load / b.capacity`, in integers.
fn load_ratio_cmp(a: &AgentCandidate, b: &AgentCandidate) -> Ordering {
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

    fn agent(id: &str, load: u32, capacity: u32, idle_ms: u64) -> AgentCandidate {
        AgentCandidate {
            id: id.into(),
            skills: vec![("billing".into(), 5)],
            idle_ms,
            load,
            capacity,
            served_contact_last: id == "sticky",
            attributes: Vec::new(),
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
    fn least_loaded_first_then_longest_idle_and_stickiness_ignored() {
        let candidates = [
            agent("sticky", 75, 100, 90_000),
            agent("half", 50, 100, 1_000),
            agent("big", 50, 200, 1_000),
            agent("free-short", 0, 100, 1_000),
            agent("free-long", 0, 100, 30_000),
            agent("no-capacity", 0, 0, 99_000),
        ];
        assert_eq!(rank(&candidates), vec![4, 3, 2, 1, 0, 5]);
        assert_eq!(rank(&[]), Vec::<u32>::new());
    }
}
