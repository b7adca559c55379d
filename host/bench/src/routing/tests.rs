//! The native ranking against the real plugin, and a small run of the whole benchmark.

use std::collections::BTreeMap;
use std::path::PathBuf;

use switchboard_routing::{Candidate, QueueId, TaskState};

use super::*;

fn dist() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist");
    assert!(
        dir.join(POLICY).join("plugin.toml").exists(),
        "{} is missing: run `bash plugins/build.sh`",
        dir.join(POLICY).display()
    );
    dir
}

fn task(attributes: &[(&str, &str)], last_agent: Option<&str>) -> Task {
    Task {
        id: "t".into(),
        channel: "chat".into(),
        queue: "chat".into(),
        priority: 0,
        required_skills: Vec::new(),
        attributes: attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        contact_id: None,
        last_agent: last_agent.map(AgentId::from),
        arrived_at: 0,
        queued_at: 0,
        step: 0,
        pinned_agent: None,
        excluded_agents: Default::default(),
        offers: 0,
        assigned_at: None,
        state: TaskState::Pending,
    }
}

fn request(candidates: Vec<Candidate>) -> MatchRequest {
    MatchRequest {
        task_id: "t".into(),
        queue: QueueId::from("chat"),
        channel: "chat".into(),
        priority: 0,
        required_skills: Vec::new(),
        contact_id: None,
        candidates,
    }
}

/// Candidates with few distinct values, so every tie-break gets exercised.
fn random_candidates(rng: &mut Rng, n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let mut skills = Vec::new();
            for skill in ["billing", "tech", "billing"] {
                if rng.percent(50) {
                    skills.push((skill.to_owned(), rng.level()));
                }
            }
            Candidate {
                agent_id: AgentId(format!("a{i}")),
                skills,
                idle_ms: rng.below(3) * 1000,
                load: [0, 20, 25, 50, 75][rng.below(5) as usize],
                capacity: [0, 100, 100, 200][rng.below(4) as usize],
                served_contact_last: rng.percent(5),
            }
        })
        .collect()
}

#[tokio::test]
async fn native_rank_orders_exactly_like_the_plugin() {
    let wasm = WasmPolicy::load(&dist().join(POLICY)).unwrap();
    let mut rng = Rng(7);
    let attributes: [&[(&str, &str)]; 7] = [
        &[],
        &[("skills", "billing:3")],
        &[("skills", "tech, billing:2")],
        &[("Skills", " billing:5 ,tech:1,billing:1 ")],
        &[("skills", "")],
        &[("skills", "billing:9")],
        &[("skills", "two words:2")],
    ];
    let mut compared = 0;
    for round in 0..200 {
        let n = 1 + rng.below(12) as usize;
        let attrs = attributes[round % attributes.len()];
        let last = rng.percent(30).then(|| format!("a{}", rng.below(n as u64)));
        let t = task(attrs, last.as_deref());
        let r = request(random_candidates(&mut rng, n));
        let plugin = plugin_rank(&wasm.host, &wasm.id, &t, &r, 0).await;
        let native = native_rank(&t, &r);
        match (plugin, native) {
            (Ok(p), Some(n)) => assert_eq!(p, n, "{attrs:?} {r:#?}"),
            (Err(_), None) => {} // both refuse a malformed `skills`
            (p, n) => panic!("plugin {p:?} vs native {n:?} on {attrs:?}"),
        }
        compared += 1;
    }
    assert_eq!(compared, 200);
}

#[test]
fn native_rank_follows_the_documented_order() {
    let c = |id: &str, skills: &[(&str, u8)], idle_ms: u64, load: u32| Candidate {
        agent_id: id.into(),
        skills: skills.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect(),
        idle_ms,
        load,
        capacity: 100,
        served_contact_last: false,
    };
    let r = request(vec![
        c("idle", &[("billing", 2)], 90_000, 0),
        c("expert", &[("billing", 5)], 1_000, 0),
        c("sticky", &[], 0, 75),
        c("light", &[("billing", 2)], 90_000, 20),
        c("lighter", &[("billing", 2)], 90_000, 10),
        c("short", &[("billing", 2)], 1_000, 0),
    ]);
    let t = task(&[("skills", "billing:1")], Some("sticky"));
    let order: Vec<String> = native_rank(&t, &r)
        .unwrap()
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        order,
        ["sticky", "expert", "idle", "lighter", "light", "short"]
    );
    assert_eq!(
        native_rank(&task(&[("skills", "billing:0")], None), &r),
        None
    );
}

#[tokio::test]
async fn the_benchmark_runs_small() {
    run(RoutingBenchArgs {
        plugins_dir: dist(),
        agents: 40,
        waiting: 300,
        steps: 30,
        rounds: 1,
        samples: 20,
        email_cost: 20,
    })
    .await
    .expect("the small benchmark runs with no failure or mismatch");
}
