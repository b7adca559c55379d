//! The report rollups against the facts they roll up: a pseudo-random history of
//! customer messages and routing steps (overflows, abandons, missed offers, holds,
//! transfers, resolutions) written through the store's own write paths, then every
//! figure read through the rollups and from the facts alone must be equal; emptied, the
//! rollups are filled from the facts at the next start, with the same answers.

#[macro_use]
mod common;

use common::{Ctx, TEST_KEY};
use sqlx::Connection;
use switchboard_core::{EventKind, Identity};
use switchboard_store::{
    Cell, Dimension, FactQuery, InboundMessage, IngestBatch, IngestEvent, IngestOutcome,
    JourneyFigures, NewEvent, RoutingChanges, RoutingLogEntry, Store, TaskFigures, Thresholds,
};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2025-12-01T00:00:00Z.
const DAY0: i64 = 1_764_547_200_000;

/// A small deterministic generator (no dependency, same history every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n) as i64
    }
}

async fn step(store: &Store, at: i64, log: Vec<RoutingLogEntry>) {
    store
        .save_routing(&RoutingChanges {
            at,
            log,
            ..Default::default()
        })
        .await
        .expect("routing step");
}

/// One customer message and, when it opens a conversation, its task's life, from `at`.
/// Whether it did.
async fn journey(store: &Store, r: &mut Lcg, i: u32, at: i64) -> bool {
    let channel = ["sms", "webchat"][r.below(2) as usize];
    let outcomes = store
        .ingest(IngestBatch {
            plugin_id: channel.into(),
            channel: channel.into(),
            now_ms: at,
            reopen_window_ms: DAY,
            events: vec![IngestEvent::InboundMessage(InboundMessage {
                provider_id: format!("m-{i}"),
                sender: Identity::from_normalized("phone", format!("+1555{:04}", r.below(25))),
                sender_name: None,
                body: "Hello".into(),
                attachments: vec![],
                sent_at_ms: None,
                metadata: serde_json::Value::Null,
            })],
        })
        .await
        .expect("ingest");
    let Some(IngestOutcome::Created {
        conversation_id,
        contact_id,
        ..
    }) = outcomes.into_iter().next()
    else {
        return false;
    };
    let task = format!("task-{i}");
    let queues = ["support", "sales"];
    let queue = queues[r.below(2) as usize];
    step(
        store,
        at + 100,
        vec![RoutingLogEntry::Queued {
            task_id: task.clone(),
            conversation_id: Some(conversation_id.clone()),
            contact_id: Some(contact_id),
            channel: channel.into(),
            queue_id: queue.into(),
            arrived_at: at + 100,
        }],
    )
    .await;
    let mut t = at + 1_000 + r.below(3_000);
    if r.below(4) == 0 {
        let other = if queue == "support" {
            "sales"
        } else {
            "support"
        };
        step(
            store,
            t,
            vec![RoutingLogEntry::Overflowed {
                task_id: task.clone(),
                to_queue: other.into(),
            }],
        )
        .await;
    }
    if r.below(4) == 0 {
        // Abandoned, some before the short-abandon threshold.
        t += r.below(30_000);
        step(
            store,
            t,
            vec![RoutingLogEntry::Canceled {
                task_id: task,
                reason: "abandoned".into(),
            }],
        )
        .await;
        return true;
    }
    let agent = format!("agent-{}", r.below(4));
    if r.below(5) == 0 {
        step(
            store,
            t,
            vec![
                RoutingLogEntry::Offered {
                    task_id: task.clone(),
                    agent_id: "agent-9".into(),
                },
                RoutingLogEntry::OfferEnded {
                    task_id: task.clone(),
                    agent_id: "agent-9".into(),
                    how: "expired".into(),
                },
            ],
        )
        .await;
    }
    t += r.below(40_000);
    step(
        store,
        t,
        vec![
            RoutingLogEntry::Offered {
                task_id: task.clone(),
                agent_id: agent.clone(),
            },
            RoutingLogEntry::Assigned {
                task_id: task.clone(),
                agent_id: agent.clone(),
                cost: 25,
                capacity: 100,
            },
        ],
    )
    .await;
    if r.below(3) == 0 {
        t += 5_000;
        step(
            store,
            t,
            vec![RoutingLogEntry::Hold {
                task_id: task.clone(),
                held: true,
            }],
        )
        .await;
    }
    t += 60_000 + r.below(300_000);
    let mut holder = agent;
    if r.below(5) == 0 {
        step(
            store,
            t,
            vec![RoutingLogEntry::Transferred {
                task_id: task.clone(),
                to_queue: None,
                to_agent: Some("agent-7".into()),
            }],
        )
        .await;
        t += 20_000;
        holder = "agent-7".into();
        step(
            store,
            t,
            vec![RoutingLogEntry::Assigned {
                task_id: task.clone(),
                agent_id: holder.clone(),
                cost: 25,
                capacity: 100,
            }],
        )
        .await;
        t += 100_000;
    }
    if r.below(6) == 0 {
        // Still being handled.
        return true;
    }
    step(
        store,
        t,
        vec![RoutingLogEntry::Wrapping {
            task_id: task.clone(),
            agent_id: holder.clone(),
        }],
    )
    .await;
    t += 30_000;
    step(store, t, vec![RoutingLogEntry::Completed { task_id: task }]).await;
    if r.below(3) != 0 {
        store
            .append_event(NewEvent::internal(
                &conversation_id,
                EventKind::Status,
                "open → resolved",
                Some(&holder),
                serde_json::json!({"from": "open", "to": "resolved"}),
                t,
            ))
            .await
            .expect("resolve");
    }
    true
}

fn query(buckets: Vec<(i64, i64)>, by: Option<Dimension>, now: i64) -> FactQuery {
    FactQuery {
        buckets,
        by,
        channel: None,
        queue: None,
        agent: None,
        thresholds: Thresholds {
            short_abandon_ms: 5_000,
            service_level_ms: 20_000,
            fcr_window_ms: 7 * DAY,
            now_ms: now,
        },
    }
}

type Answers = Vec<(Vec<Cell<TaskFigures>>, Vec<Cell<JourneyFigures>>)>;

/// Every grouping over days and hours, through the rollups, each checked against the
/// facts alone.
async fn answers(store: &Store, now: i64) -> Answers {
    let days: Vec<(i64, i64)> = (0..5)
        .map(|d| (DAY0 + d * DAY, DAY0 + (d + 1) * DAY))
        .collect();
    let hours: Vec<(i64, i64)> = (0..30)
        .map(|h| (DAY0 + h * HOUR, DAY0 + (h + 1) * HOUR))
        .collect();
    let mut out = Vec::new();
    for buckets in [days, hours] {
        for by in [None, Some(Dimension::Channel), Some(Dimension::Queue)] {
            let q = query(buckets.clone(), by, now);
            let tasks = store.task_figures(&q).await.expect("tasks");
            assert_eq!(
                tasks,
                store.task_figures_from_facts(&q).await.expect("raw"),
                "{by:?}"
            );
            let journeys = store.journey_figures(&q).await.expect("journeys");
            assert_eq!(
                journeys,
                store.journey_figures_from_facts(&q).await.expect("raw"),
                "{by:?}"
            );
            out.push((tasks, journeys));
        }
    }
    out
}

async fn rollups_match_the_facts_and_refill(ctx: Ctx) {
    let store = &ctx.store;
    let mut r = Lcg(13);
    let mut starts: Vec<i64> = (0..80).map(|_| DAY0 + r.below(3 * DAY as u64)).collect();
    starts.sort_unstable();
    let mut tasks = 0;
    for (i, at) in starts.into_iter().enumerate() {
        tasks += i64::from(journey(store, &mut r, i as u32, at).await);
    }
    assert!(tasks > 30, "{tasks}");
    let now = DAY0 + 4 * DAY;
    let live = answers(store, now).await;
    let arrived: i64 = live[0].0.iter().map(|c| c.figures.arrived).sum();
    assert_eq!(arrived, tasks, "every task counted");
    let journeys: i64 = live[0].1.iter().map(|c| c.figures.journeys).sum();
    assert!(journeys > 10, "{journeys}");
    let max = live[0]
        .0
        .iter()
        .filter_map(|c| c.figures.queue_ms_max)
        .max();
    assert!(max.is_some_and(|m| m > 1_000), "{max:?}");

    // Emptied, the rollups are filled from the facts at the next start.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&ctx.url)
        .await
        .expect("connect");
    sqlx::raw_sql("DELETE FROM task_rollup; DELETE FROM journey_rollup")
        .execute(&mut conn)
        .await
        .expect("empty the rollups");
    conn.close().await.expect("close");
    let again = Store::connect(&ctx.url, TEST_KEY).await.expect("reconnect");
    assert_eq!(answers(&again, now).await, live);
    again.close().await;

    // A rebuild gives them back too.
    store.rebuild_reports().await.expect("rebuild");
    assert_eq!(answers(store, now).await, live);
}

store_tests!(rollups_match_the_facts_and_refill);
