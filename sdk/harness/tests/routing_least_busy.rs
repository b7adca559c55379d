//! The built `routing-least-busy` example in the real sandbox, and side by
//! side with `routing-default` on the same input to show the two policies
//! differ.
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness`.

use switchboard_harness::bindings::{Classification, ContactSummary, TaskInfo};
use switchboard_harness::{AgentCandidate, CandidateSet, Harness, PluginError, plugin_dir};

fn load(id: &str, config: &[(&str, &str)]) -> Harness {
    Harness::load(&plugin_dir(id), config)
        .unwrap_or_else(|e| panic!("load {id} (run `bash plugins/build.sh` first): {e}"))
}

fn least_busy() -> Harness {
    load("routing-least-busy", &[])
}

fn task(channel: &str, attributes: &[(&str, &str)]) -> TaskInfo {
    TaskInfo {
        id: "task-1".into(),
        channel: channel.into(),
        conversation_id: Some("conv-1".into()),
        contact: Some(ContactSummary {
            id: "contact-1".into(),
            display_name: None,
            identities: Vec::new(),
            attributes: vec![
                ("vip".into(), "true".into()),
                ("language".into(), "es".into()),
            ],
        }),
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
        skills: vec![("billing".into(), 5), ("lang-es".into(), 3)],
        idle_ms,
        load,
        capacity,
        served_contact_last: id == "sticky",
        attributes: Vec::new(),
    }
}

async fn classify(h: &Harness, task: &TaskInfo) -> Result<Classification, PluginError> {
    h.host()
        .classify(h.id(), task)
        .await
        .expect("the call completes")
}

async fn rank(h: &Harness, task: &TaskInfo, candidates: &[AgentCandidate]) -> Vec<u32> {
    h.host()
        .rank(h.id(), task, &CandidateSet::new(candidates))
        .await
        .expect("the call completes")
        .expect("the candidates are ranked")
}

#[tokio::test]
async fn every_task_joins_one_queue_with_its_own_priority() {
    let h = least_busy();
    for channel in ["voice", "chat", "email"] {
        let c = classify(&h, &task(channel, &[("skills", "billing:3")]))
            .await
            .unwrap();
        assert_eq!((c.queue.as_str(), c.priority), ("general", 0), "{channel}");
        assert!(c.required_skills.is_empty() && c.steps.is_empty() && c.ivr.is_empty());
    }
    let c = classify(&h, &task("email", &[("priority", "7")]))
        .await
        .unwrap();
    assert_eq!(c.priority, 7);
    assert!(matches!(
        classify(&h, &task("email", &[("priority", "urgent")])).await,
        Err(PluginError::InvalidRequest(_))
    ));

    let h = load("routing-least-busy", &[("queue", "support")]);
    let c = classify(&h, &task("voice", &[])).await.unwrap();
    assert_eq!(c.queue, "support");
}

#[tokio::test]
async fn least_loaded_first_then_longest_idle() {
    let h = least_busy();
    let candidates = [
        agent("sticky", 75, 100, 90_000),
        agent("half", 50, 100, 1_000),
        agent("big", 50, 200, 1_000),
        agent("free-short", 0, 100, 1_000),
        agent("free-long", 0, 100, 30_000),
        agent("no-capacity", 0, 0, 99_000),
    ];
    assert_eq!(
        rank(&h, &task("chat", &[]), &candidates).await,
        vec![4, 3, 2, 1, 0, 5]
    );
}

#[tokio::test]
async fn differs_from_the_default_policy_on_the_same_input() {
    let least = least_busy();
    let default = load("routing-default", &[]);
    let t = task("voice", &[("skills", "billing:2")]);
    let candidates = [
        agent("sticky", 75, 100, 1_000),
        agent("idle-loaded", 25, 100, 90_000),
        agent("free", 0, 100, 5_000),
    ];
    // Default: the sticky agent, then (equal skills) the longest idle.
    assert_eq!(rank(&default, &t, &candidates).await, vec![0, 1, 2]);
    // Least busy: spare capacity first, stickiness ignored.
    assert_eq!(rank(&least, &t, &candidates).await, vec![2, 1, 0]);

    let d = classify(&default, &t).await.unwrap();
    let l = classify(&least, &t).await.unwrap();
    assert_eq!((d.queue.as_str(), d.priority), ("voice", 25));
    assert_eq!((l.queue.as_str(), l.priority), ("general", 0));
    assert!(!d.required_skills.is_empty());
    assert!(l.required_skills.is_empty());
}

#[tokio::test]
async fn bad_queue_name_is_a_config_error() {
    let h = load("routing-least-busy", &[("queue", "front desk")]);
    match classify(&h, &task("chat", &[])).await {
        Err(PluginError::Config(message)) => {
            assert!(message.contains("config `queue`"), "{message}")
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}
