//! Workers on several nodes without double work: two `switchboard serve` processes on
//! one PostgreSQL database each run the outbox worker; 1,000 replies posted through
//! both nodes reach the provider stand-in once each (rows are claimed with `FOR
//! UPDATE SKIP LOCKED` and a lease, so one node sends a row).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use switchboard_e2e::cluster::Cluster;
use switchboard_e2e::*;

const CONVERSATIONS: usize = 10;
const REPLIES: usize = 1_000;

#[tokio::test]
async fn a_thousand_replies_through_two_nodes_are_each_sent_once() {
    let cluster = Cluster::new("outbox").await;
    let twilio = FakeTwilio::start().await;
    // The plugin installed once is loaded by both nodes from the database.
    let options = cluster.options(&[
        ("SWITCHBOARD_VOICE", "off"),
        ("SWITCHBOARD_FILE_STORE", "database"),
    ]);
    let data = provision(&options, &twilio).await;
    let a = Server::start_in(Arc::new(data), options.clone()).await;
    let b = Server::start_in(Arc::new(tempfile::tempdir().unwrap()), options.clone()).await;

    for i in 0..CONVERSATIONS {
        let (status, body) = a
            .sms(&format!("SMout{i:05}"), &format!("+1555600{i:04}"), "hello")
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let conversations: Vec<String> = a
        .eventually(Duration::from_secs(15), || async {
            let (_, list) = a.get("/api/v1/conversations?limit=100").await;
            let ids: Vec<String> = list["conversations"]
                .as_array()?
                .iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect();
            (ids.len() == CONVERSATIONS).then_some(ids)
        })
        .await
        .expect("the conversations");

    let nodes = [&a, &b];
    let posted: Vec<u16> = futures::stream::iter(0..REPLIES)
        .map(|i| {
            let node = nodes[i % 2];
            let conversation = conversations[i % CONVERSATIONS].clone();
            async move {
                node.post(
                    &format!("/api/v1/conversations/{conversation}/messages"),
                    json!({"body": format!("reply {i}")}),
                )
                .await
                .0
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(posted.iter().all(|s| *s == 202), "every reply accepted");

    let sent = twilio.wait_for(REPLIES, Duration::from_secs(240)).await;
    // Anything sent twice would show up shortly after: give the workers a few polls.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = twilio.requests().len().max(sent.len());
    let mut bodies: HashMap<String, usize> = HashMap::new();
    for r in twilio.requests() {
        if let Some(body) = r.field("Body") {
            *bodies.entry(body.to_string()).or_default() += 1;
        }
    }
    assert_eq!(sent, REPLIES, "each reply sent once, none lost");
    assert_eq!(bodies.len(), REPLIES);
    assert!(bodies.values().all(|n| *n == 1), "a reply was sent twice");
    a.kill().await;
    b.kill().await;
    cluster.delete_stream().await;
}
