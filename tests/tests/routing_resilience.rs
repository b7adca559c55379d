//! Routing under a broken policy plugin: `test-misbehave-routing` panics, loops
//! or answers garbage, and inbound SMS are still routed with the built-in
//! defaults, the failures are reported in the log, a policy that keeps
//! failing is quarantined (visibly, through the API), and offers only ever go
//! to real agents, never twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_e2e::*;

const POLICY: &str = "test-misbehave-routing";

/// The queue the host picks for SMS when the policy does not answer.
const BUILT_IN_QUEUE: &str = "messaging";

async fn login(server: &Server, email: &str, password: &str) -> (String, String) {
    server.login(email, password).await
}

async fn call(server: &Server, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    server.call(token, method, path, body).await
}

async fn offers(server: &Server, token: &str) -> Vec<Value> {
    let (status, v) = call(
        server,
        token,
        "GET",
        "/api/v1/agents/me/offers",
        json!(null),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["offers"].as_array().cloned().unwrap_or_default()
}

async fn wait_offers(server: &Server, token: &str, n: usize) -> Vec<Value> {
    server
        .eventually(Duration::from_secs(15), || async {
            let offers = offers(server, token).await;
            (offers.len() >= n).then_some(offers)
        })
        .await
        .unwrap_or_else(|| panic!("expected {n} offer(s); server log:\n{}", server.log()))
}

struct Agent {
    email: String,
    password: String,
}

fn agent(name: &str) -> Agent {
    Agent {
        email: format!("{name}@e2e.test"),
        password: format!("{name}-password-123"),
    }
}

/// A data folder with the admin, the channels, `agents` and the misbehaving
/// policy installed in `mode`.
async fn provision_with_policy(
    options: &Options,
    twilio: &FakeTwilio,
    agents: &[Agent],
    mode: &str,
) -> tempfile::TempDir {
    let data = provision(options, twilio).await;
    for a in agents {
        cli(
            data.path(),
            options,
            &[
                "admin",
                "create-user",
                "--email",
                &a.email,
                "--password",
                &a.password,
                "--role",
                "agent",
            ],
        )
        .await;
    }
    let policy = plugin_dist().join(POLICY);
    cli(
        data.path(),
        options,
        &[
            "plugin",
            "install",
            policy.to_str().unwrap(),
            "--config",
            &format!("mode={mode}"),
        ],
    )
    .await;
    data
}

async fn set_available(server: &Server, token: &str) {
    let (status, v) = call(
        server,
        token,
        "PUT",
        "/api/v1/agents/me/presence",
        json!({"status": "available"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

async fn healthy(server: &Server) {
    let r = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the server keeps answering");
}

/// Every realtime event a supervisor (the admin) sees, in order.
async fn supervisor_feed(server: &Server) -> Arc<Mutex<Vec<Value>>> {
    let url = format!(
        "{}/api/v1/realtime?token={}",
        server.base.replacen("http", "ws", 1),
        server.token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // Subscribed once `hello` arrives: nothing published later is missed.
    while let Some(Ok(msg)) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg
            && serde_json::from_str::<Value>(&t).unwrap()["type"] == "hello"
        {
            break;
        }
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                sink.lock().unwrap().push(v);
            }
        }
    });
    events
}

/// A policy that fails every call (`mode`, failing with `failure` in the
/// log) never stops routing: each SMS is offered in the built-in queue, the
/// failures are logged, and after four in a row the policy is quarantined and
/// no longer called.
async fn failing_policy_falls_back(mode: &str, extra_env: &[(&str, &str)], failure: &str) {
    let twilio = FakeTwilio::start().await;
    let mut env = vec![("SWITCHBOARD_QUARANTINE_AFTER".to_string(), "4".to_string())];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let options = Options {
        env,
        ..Options::default()
    };
    let sam = agent("sam");
    let data = provision_with_policy(&options, &twilio, std::slice::from_ref(&sam), mode).await;
    let server = Server::start_in(Arc::new(data), options).await;
    let (token, _) = login(&server, &sam.email, &sam.password).await;
    set_available(&server, &token).await;

    // Each SMS costs a classify and a rank call: two failures each.
    for i in 1..=2 {
        let (status, _) = server
            .sms(&format!("SMbroken{i}"), &format!("+1555330000{i}"), "help")
            .await;
        assert_eq!(status, 200);
        let offers = wait_offers(&server, &token, i).await;
        for offer in &offers {
            assert_eq!(
                offer["task"]["queue"], BUILT_IN_QUEUE,
                "{mode}: the built-in queue by channel: {offer}"
            );
        }
        healthy(&server).await;
    }

    let log = server.log();
    assert!(
        log.contains("classify failed, using defaults"),
        "{mode}: classify failure reported:\n{log}"
    );
    assert!(
        log.contains("rank failed, using the default order"),
        "{mode}: rank failure reported:\n{log}"
    );
    assert!(
        log.contains(failure),
        "{mode}: `{failure}` in the log:\n{log}"
    );

    let plugin = server
        .eventually(Duration::from_secs(10), || async {
            let (status, plugin) = server.get(&format!("/api/v1/plugins/{POLICY}")).await;
            assert_eq!(status, 200, "{plugin}");
            plugin["quarantined"].is_string().then_some(plugin)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{mode}: the policy was never quarantined:\n{}",
                server.log()
            )
        });
    assert!(
        plugin["quarantined"]
            .as_str()
            .unwrap()
            .contains("4 failed calls in a row"),
        "{mode}: {plugin}"
    );
    assert!(
        server.log().contains("plugin quarantined"),
        "{mode}: the quarantine is reported"
    );
    let calls = plugin["health"]["calls"].as_u64().expect("calls");

    // Quarantined: routing goes on with the defaults, without calling it.
    for i in 3..=4 {
        server
            .sms(&format!("SMbroken{i}"), &format!("+1555330000{i}"), "help")
            .await;
        let offers = wait_offers(&server, &token, i).await;
        assert!(
            offers.iter().all(|o| o["task"]["queue"] == BUILT_IN_QUEUE),
            "{offers:?}"
        );
    }
    let offers = offers(&server, &token).await;
    assert_eq!(offers.len(), 4, "one offer per SMS: {offers:?}");
    for offer in &offers {
        let reservation = offer["reservation"]["id"].as_str().unwrap();
        let (status, v) = call(
            &server,
            &token,
            "POST",
            &format!("/api/v1/reservations/{reservation}/accept"),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }
    let task = offers[0]["task"]["id"].as_str().unwrap();
    let (status, v) = call(
        &server,
        &token,
        "POST",
        &format!("/api/v1/tasks/{task}/complete"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, plugin) = server.get(&format!("/api/v1/plugins/{POLICY}")).await;
    assert_eq!(
        plugin["health"]["calls"].as_u64(),
        Some(calls),
        "a quarantined policy is not called: {plugin}"
    );
    assert!(plugin["quarantined"].is_string(), "{plugin}");
    healthy(&server).await;
}

#[tokio::test]
async fn a_panicking_policy_falls_back_and_is_quarantined() {
    failing_policy_falls_back("panic", &[], "trapped").await;
}

#[tokio::test]
async fn a_looping_policy_times_out_falls_back_and_is_quarantined() {
    failing_policy_falls_back(
        "loop",
        &[("SWITCHBOARD_PLUGIN_CALL_TIMEOUT_MS", "300")],
        "timed out",
    )
    .await;
}

#[tokio::test]
async fn a_policy_returning_errors_falls_back() {
    let twilio = FakeTwilio::start().await;
    let options = Options::default();
    let sam = agent("sam");
    let data = provision_with_policy(&options, &twilio, std::slice::from_ref(&sam), "error").await;
    let server = Server::start_in(Arc::new(data), options).await;
    let (token, _) = login(&server, &sam.email, &sam.password).await;
    set_available(&server, &token).await;
    for i in 1..=3 {
        server
            .sms(&format!("SMerr{i}"), &format!("+1555331000{i}"), "help")
            .await;
        let offers = wait_offers(&server, &token, i).await;
        assert!(
            offers.iter().all(|o| o["task"]["queue"] == BUILT_IN_QUEUE),
            "{offers:?}"
        );
    }
    let log = server.log();
    assert!(log.contains("deliberate error in classify"), "{log}");
    assert!(log.contains("deliberate error in rank"), "{log}");
    healthy(&server).await;
}

/// Garbage answers (a queue name with spaces, out-of-range and duplicate
/// ranks) never create a bogus queue, never offer to someone who is not an
/// agent, and never offer a task twice at once or twice to the same agent.
#[tokio::test]
async fn a_policy_answering_garbage_only_reaches_real_agents_once() {
    const TASKS: usize = 6;
    let twilio = FakeTwilio::start().await;
    let options = Options::default();
    let agents = [agent("ann"), agent("ben"), agent("cat")];
    let data = provision_with_policy(&options, &twilio, &agents, "garbage").await;
    let server = Server::start_in(Arc::new(data), options).await;
    let mut tokens = BTreeMap::new();
    for a in &agents {
        let (token, id) = login(&server, &a.email, &a.password).await;
        set_available(&server, &token).await;
        tokens.insert(id, token);
    }
    let feed = supervisor_feed(&server).await;

    for i in 0..TASKS {
        let (status, _) = server
            .sms(&format!("SMjunk{i}"), &format!("+1555332000{i}"), "hi")
            .await;
        assert_eq!(status, 200);
    }
    let all_offers = || async {
        let mut all = Vec::new();
        for (id, token) in &tokens {
            for offer in offers(&server, token).await {
                assert_eq!(offer["reservation"]["agent"], id.as_str(), "{offer}");
                all.push((id.clone(), offer));
            }
        }
        all
    };
    let first = server
        .eventually(Duration::from_secs(15), || async {
            let all = all_offers().await;
            (all.len() >= TASKS).then_some(all)
        })
        .await
        .unwrap_or_else(|| panic!("{TASKS} offers expected:\n{}", server.log()));
    assert_eq!(first.len(), TASKS, "one offer per task: {first:?}");
    let tasks: BTreeSet<&str> = first
        .iter()
        .map(|(_, o)| o["task"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(tasks.len(), TASKS, "no task offered twice: {first:?}");
    for (_, offer) in &first {
        assert_eq!(
            offer["task"]["queue"], BUILT_IN_QUEUE,
            "an invalid queue name from the policy falls back: {offer}"
        );
    }
    let (_, queues) = server.get("/api/v1/queues").await;
    for q in queues["queues"].as_array().unwrap() {
        let name = q["queue"]["name"].as_str().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "no queue named {name:?}"
        );
    }

    // Everyone declines what they were offered: each task goes to someone else.
    let mut declined: BTreeMap<String, String> = BTreeMap::new();
    for (id, offer) in &first {
        let reservation = offer["reservation"]["id"].as_str().unwrap();
        let (status, v) = call(
            &server,
            &tokens[id],
            "POST",
            &format!("/api/v1/reservations/{reservation}/reject"),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        declined.insert(
            offer["task"]["id"].as_str().unwrap().to_string(),
            id.clone(),
        );
    }
    let second = server
        .eventually(Duration::from_secs(15), || async {
            let all = all_offers().await;
            (all.len() >= TASKS).then_some(all)
        })
        .await
        .unwrap_or_else(|| panic!("re-offers expected:\n{}", server.log()));
    assert_eq!(second.len(), TASKS, "{second:?}");
    for (id, offer) in &second {
        let task = offer["task"]["id"].as_str().unwrap();
        assert_ne!(
            declined.get(task),
            Some(id),
            "not offered again to the agent who declined: {offer}"
        );
        let reservation = offer["reservation"]["id"].as_str().unwrap();
        let (status, v) = call(
            &server,
            &tokens[id],
            "POST",
            &format!("/api/v1/reservations/{reservation}/accept"),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }

    // The feed saw every offer: real agents only, each task to each agent at
    // most once, and never two open offers of one task.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = feed.lock().unwrap().clone();
    let mut offered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    for e in &events {
        if e["type"] != "task.updated" {
            continue;
        }
        let output = &e["data"]["output"];
        let reservation = &output["reservation"];
        let (Some(task), Some(id)) = (reservation["task"].as_str(), reservation["id"].as_str())
        else {
            continue;
        };
        match output["event"].as_str().unwrap() {
            "offered" => {
                let agent = reservation["agent"].as_str().unwrap();
                assert!(tokens.contains_key(agent), "offer to a non-agent: {e}");
                offered
                    .entry(task.to_string())
                    .or_default()
                    .push(agent.to_string());
                assert!(
                    open.insert(task.to_string(), id.to_string()).is_none(),
                    "two open offers of {task}: {e}"
                );
            }
            _ => {
                assert_eq!(open.remove(task).as_deref(), Some(id), "{e}");
            }
        }
    }
    assert_eq!(offered.len(), TASKS, "{offered:?}");
    for (task, agents) in &offered {
        assert_eq!(
            agents.len(),
            2,
            "offered, declined, offered: {task} {agents:?}"
        );
        assert_ne!(agents[0], agents[1], "never twice to one agent: {task}");
    }
    assert!(open.is_empty(), "every offer was answered: {open:?}");
    healthy(&server).await;
}
