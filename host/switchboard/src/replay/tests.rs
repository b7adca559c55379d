//! Replays of small traces through the real routing plugins.

use std::path::PathBuf;

use super::*;

fn plugin(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/dist")
        .join(name);
    assert!(
        dir.join("plugin.toml").exists(),
        "{} is missing: run `bash plugins/build.sh`",
        dir.display()
    );
    dir
}

fn default_policy() -> Policy {
    Policy::load(&plugin("routing-default")).expect("routing-default loads")
}

fn least_busy() -> Policy {
    Policy::load(&plugin("routing-least-busy")).expect("routing-least-busy loads")
}

async fn run(trace: &str, policy: &Policy) -> Report {
    replay(&Trace::parse(trace).expect("trace parses"), policy)
        .await
        .expect("replay runs")
}

fn waits(report: &Report, channel: &str) -> Vec<u64> {
    report
        .waits_by_channel
        .get(channel)
        .cloned()
        .unwrap_or_default()
}

fn handled(report: &Report, agent: &str) -> u64 {
    report.agents[agent].handled
}

/// One agent logs in after a call and an email arrived at the same instant.
const VOICE_AND_EMAIL: &str = r#"
{"type":"setup","queues":[{"name":"voice","sla_target_ms":20000},{"name":"email","sla_target_ms":3600000}],"agents":[{"id":"a1","skills":[]}]}
{"type":"arrival","at_ms":0,"task":"e1","channel":"email","contact":"c1","handle_ms":60000}
{"type":"arrival","at_ms":0,"task":"v1","channel":"voice","contact":"c2","handle_ms":60000}
{"type":"presence","at_ms":1000,"agent":"a1","status":"available"}
"#;

#[tokio::test]
async fn routing_default_serves_the_call_first_least_busy_the_oldest() {
    // routing-default: voice (priority 15) before email (5). The call ties the agent
    // up (cost 100), so the email waits for it: 1 s login + 2 s to accept + 60 s call
    // + 2 s to accept.
    let d = run(VOICE_AND_EMAIL, &default_policy()).await;
    assert_eq!(waits(&d, "voice"), [3_000]);
    assert_eq!(waits(&d, "email"), [65_000]);
    assert_eq!(d.queues["voice"].within_sla, 1);
    assert_eq!(d.queues["email"].within_sla, 1);
    assert!(!d.queues.contains_key("general"));

    // routing-least-busy: one queue, no priorities, so the first to arrive (the email,
    // first in the file) goes first and the caller waits past the 20 s target.
    let l = run(VOICE_AND_EMAIL, &least_busy()).await;
    assert_eq!(waits(&l, "email"), [3_000]);
    assert_eq!(waits(&l, "voice"), [65_000]);
    assert_eq!(l.queues.keys().collect::<Vec<_>>(), ["general"]);
    let general = &l.queues["general"];
    assert_eq!((general.within_sla, general.total()), (1, 2));
    assert_eq!(general.sla_target_ms, 20_000, "undeclared queues get 20 s");

    // The built-in policy classifies like routing-default does by channel.
    let n = run(VOICE_AND_EMAIL, &Policy::Native).await;
    assert_eq!(waits(&n, "voice"), [3_000]);
    assert_eq!((n.classify_calls, n.rank_calls), (0, 0));
    assert_eq!((d.classify_calls, d.rank_calls), (2, 2));
    assert_eq!(d.classify_failures + d.rank_failures, 0);

    // Occupancy: logged in from 1 s to the end (125 s), busy 2 x 60 s.
    let a1 = &d.agents["a1"];
    assert_eq!(
        (a1.busy_ms, a1.logged_in_ms, a1.handled),
        (120_000, 124_000, 2)
    );
}

/// Two agents, one a billing expert; four billing chats ten seconds apart.
const EXPERT_AND_NOVICE: &str = r#"
{"type":"setup","agents":[{"id":"a1","skills":[["billing",5]],"status":"available"},{"id":"a2","skills":[["billing",1]],"status":"available"}],"accept_delay_ms":1000}
{"type":"arrival","at_ms":0,"task":"t1","channel":"chat","attributes":{"skills":"billing:1"},"handle_ms":600000}
{"type":"arrival","at_ms":10000,"task":"t2","channel":"chat","attributes":{"skills":"billing:1"},"handle_ms":600000}
{"type":"arrival","at_ms":20000,"task":"t3","channel":"chat","attributes":{"skills":"billing:1"},"handle_ms":600000}
{"type":"arrival","at_ms":30000,"task":"t4","channel":"chat","attributes":{"skills":"billing:1"},"handle_ms":600000}
"#;

#[tokio::test]
async fn the_policies_order_agents_differently() {
    // routing-default ranks the best skill match first: the expert takes all four
    // chats (capacity 100, chat 25) while the novice idles.
    let d = run(EXPERT_AND_NOVICE, &default_policy()).await;
    assert_eq!((handled(&d, "a1"), handled(&d, "a2")), (4, 0));
    assert_eq!(d.agents["a2"].busy_ms, 0);
    assert!(d.agents["a1"].occupancy().unwrap() > 90.0);

    // routing-least-busy ranks the least loaded first: the chats alternate.
    let l = run(EXPERT_AND_NOVICE, &least_busy()).await;
    assert_eq!((handled(&l, "a1"), handled(&l, "a2")), (2, 2));
    assert!(l.agents["a2"].occupancy().unwrap() > 90.0);
    assert_ne!(d.agents, l.agents);
}

/// A caller gives up while the only agent is on another call; an emailer comes back
/// and is routed to the agent who served them.
const ABANDON_AND_RETURN: &str = r#"
{"type":"setup","queues":[{"name":"voice","sla_target_ms":20000}],"agents":[{"id":"a1","status":"available"},{"id":"a2","status":"offline"}]}
{"type":"arrival","at_ms":0,"task":"v1","channel":"voice","contact":"c1","handle_ms":120000}
{"type":"arrival","at_ms":5000,"task":"v2","channel":"voice","contact":"c2","handle_ms":60000,"abandon_after_ms":30000}
{"type":"presence","at_ms":100000,"agent":"a2","status":"available"}
{"type":"arrival","at_ms":300000,"task":"v3","channel":"voice","contact":"c1","handle_ms":60000}
{"type":"arrival","at_ms":400000,"task":"x1","channel":"fax","contact":"c9","handle_ms":1000,"abandon_after_ms":1000}
{"type":"presence","at_ms":400000,"agent":"a1","status":"offline"}
{"type":"presence","at_ms":400000,"agent":"a2","status":"offline"}
{"type":"arrival","at_ms":500000,"task":"x2","channel":"chat","contact":"c8"}
"#;

#[tokio::test]
async fn abandonment_sla_stickiness_and_work_nobody_can_take() {
    let d = run(ABANDON_AND_RETURN, &default_policy()).await;
    assert_eq!(d.abandoned_by_channel.get("voice"), Some(&1));
    let voice = &d.queues["voice"];
    // v1 and v3 assigned within 20 s; v2 gave up.
    assert_eq!(
        (voice.assigned, voice.within_sla, voice.abandoned),
        (2, 2, 1)
    );
    // c1 came back and a1, who served them, took the call, though a2 had idled longer.
    assert_eq!((d.returning_assigned, d.returning_to_last_agent), (1, 1));
    assert_eq!(handled(&d, "a1"), 2);
    // x1 is offered to nobody (everyone logs off as it arrives) and gives up; x2 comes
    // when nobody is logged in and has no patience limit: never served.
    assert_eq!(d.abandoned_by_channel.get("fax"), Some(&1));
    assert_eq!(d.unserved, 1);
    assert_eq!(d.queues["chat"].unserved, 1);
    // The replay ends with the last event, and a2 was logged in 100 s–400 s only.
    assert_eq!(d.ended_after_ms, 500_000);
    assert_eq!(d.agents["a2"].logged_in_ms, 300_000);
    assert_eq!(handled(&d, "a2"), 0);
}

#[tokio::test]
async fn same_trace_and_policy_give_the_same_numbers() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/traces/sample.jsonl");
    let text = std::fs::read_to_string(&path).expect("the sample trace exists");
    let trace = Trace::parse(&text).unwrap();
    let first = replay(&trace, &default_policy()).await.unwrap();
    // A fresh plugin host, not just a second run on the same one.
    let second = replay(&trace, &default_policy()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        render("sample", &trace, std::slice::from_ref(&first)),
        render("sample", &trace, std::slice::from_ref(&second))
    );
    assert_eq!(first.classify_failures + first.rank_failures, 0);

    // The sample is built so the two policies differ visibly.
    let least = replay(&trace, &least_busy()).await.unwrap();
    assert_eq!(least.classify_failures + least.rank_failures, 0);
    let (d, l) = (&first, &least);
    assert_eq!(d.arrivals, l.arrivals);
    assert!(d.arrivals >= 500, "{}", d.arrivals);
    let p90 = |r: &Report, c: &str| percentile(&waits(r, c), 90.0).unwrap();
    assert!(
        p90(d, "voice") < p90(l, "voice"),
        "voice goes first with routing-default"
    );
    let voice_abandoned = |r: &Report| r.abandoned_by_channel.get("voice").copied();
    assert!(voice_abandoned(d) < voice_abandoned(l));
    // ... while least-busy, which ignores skills, serves customers in languages its
    // agents do not speak.
    assert_eq!(d.language_met, d.language_asked);
    assert!(l.language_met < l.language_asked);
    assert_ne!(d.agents, l.agents);
}
