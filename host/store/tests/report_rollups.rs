//! The report rollups against the facts they roll up: a pseudo-random history of
//! customer messages and routing steps (overflows, abandons, missed offers, holds,
//! transfers, resolutions) written through the store's own write paths, then every
//! figure read through the rollups and from the facts alone must be equal; emptied, the
//! rollups are filled from the facts at the next start, with the same answers. The
//! agent rollup likewise, on a history of shifts and tasks written in time order, so
//! that a rebuild must also give the live numbers.

#[macro_use]
mod common;

use common::{Ctx, TEST_KEY};
use sqlx::Connection;
use switchboard_core::{EventKind, Identity};
use switchboard_store::{
    AgentTime, Cell, Dimension, FactQuery, InboundMessage, IngestBatch, IngestEvent, IngestOutcome,
    JourneyFigures, LegFigures, NewEvent, RoutingChanges, RoutingLogEntry, Store, TaskFigures,
    Thresholds,
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
            agent_answers(store, &q).await;
        }
    }
    out
}

type AgentAnswers = Vec<(Vec<Cell<AgentTime>>, Vec<(Cell<LegFigures>, String)>)>;

/// Agent time of `q` through the agent rollup, checked against the stretches alone,
/// and the legs.
async fn agent_answers(store: &Store, q: &FactQuery) -> AgentAnswers {
    let time = store.agent_time(q).await.expect("agent time");
    assert_eq!(
        time,
        store.agent_time_from_facts(q).await.expect("raw"),
        "agent time {:?} {:?}",
        q.by,
        q.buckets.first()
    );
    let mut legs = store.leg_figures(q).await.expect("legs");
    legs.sort_by(|(a, x), (b, y)| (a.bucket, &a.key, x).cmp(&(b.bucket, &b.key, y)));
    vec![(time, legs)]
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
    sqlx::raw_sql("DELETE FROM task_rollup; DELETE FROM journey_rollup; DELETE FROM agent_rollup")
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

/// Three agents' shifts (across midnight, with a break) and thirty tasks, some
/// transferred between them and one assigned again while held, as routing steps in
/// time order, as live.
async fn shifts_and_tasks(store: &Store) {
    let mut r = Lcg(7);
    let mut steps: Vec<(i64, RoutingLogEntry)> = Vec::new();
    let presence = |agent: &str, status: &str| RoutingLogEntry::Presence {
        agent_id: agent.into(),
        status: status.into(),
        capacity: 100,
    };
    let agents = ["a0", "a1", "a2"];
    for (i, agent) in agents.iter().enumerate() {
        let i = i as i64;
        steps.push((
            DAY0 + 20 * HOUR + i * 17 * 60_000,
            presence(agent, "available"),
        ));
        steps.push((DAY0 + 26 * HOUR + i * 7 * 60_000, presence(agent, "away")));
        steps.push((
            DAY0 + 27 * HOUR + i * 3 * 60_000,
            presence(agent, "available"),
        ));
        // The last one stays on: their current stretch counts up to now.
        if i < 2 {
            steps.push((
                DAY0 + 40 * HOUR + i * 13 * 60_000,
                presence(agent, "offline"),
            ));
        }
    }
    for k in 0..30_i64 {
        let task = format!("t-{k}");
        let mut t = DAY0 + 21 * HOUR + k * 37 * 60_000 + r.below(600_000);
        let channel = ["sms", "webchat", "voice"][(k % 3) as usize];
        steps.push((
            t,
            RoutingLogEntry::Queued {
                task_id: task.clone(),
                conversation_id: None,
                contact_id: None,
                channel: channel.into(),
                queue_id: ["q0", "q1"][(k % 2) as usize].into(),
                arrived_at: t,
            },
        ));
        let mut agent = agents[(k % 3) as usize];
        t += r.below(300_000);
        let cost = if channel == "voice" { 100 } else { 25 };
        let assigned = |agent: &str| RoutingLogEntry::Assigned {
            task_id: task.clone(),
            agent_id: agent.into(),
            cost,
            capacity: 100,
        };
        steps.push((t, assigned(agent)));
        t += 60_000 + r.below(2_400_000);
        if k == 28 {
            // Assigned again while held (a lost release): the stale leg ends first.
            agent = agents[((k + 2) % 3) as usize];
            steps.push((t, assigned(agent)));
            t += 60_000;
        }
        if k % 5 == 0 {
            steps.push((
                t,
                RoutingLogEntry::Transferred {
                    task_id: task.clone(),
                    to_queue: None,
                    to_agent: None,
                },
            ));
            agent = agents[((k + 1) % 3) as usize];
            t += r.below(120_000);
            steps.push((t, assigned(agent)));
            t += 60_000 + r.below(1_200_000);
        }
        if k == 29 {
            // Still being handled.
            continue;
        }
        steps.push((
            t,
            RoutingLogEntry::Wrapping {
                task_id: task.clone(),
                agent_id: agent.into(),
            },
        ));
        t += r.below(180_000);
        steps.push((t, RoutingLogEntry::Completed { task_id: task }));
    }
    // Stable: a task's own steps keep their order on a tie.
    steps.sort_by_key(|(at, _)| *at);
    for (at, entry) in steps {
        step(store, at, vec![entry]).await;
    }
}

/// The agents report's buckets: hours, UTC days, days of a zone five hours behind
/// UTC, and days of one half an hour off (which the rollups cannot serve); by agent
/// and in all; filtered by agent, channel and queue.
async fn every_agent_answer(store: &Store, now: i64) -> AgentAnswers {
    let hours: Vec<(i64, i64)> = (18..46)
        .map(|h| (DAY0 + h * HOUR, DAY0 + (h + 1) * HOUR))
        .collect();
    let days = |offset: i64| -> Vec<(i64, i64)> {
        (0..3)
            .map(|d| (DAY0 + offset + d * DAY, DAY0 + offset + (d + 1) * DAY))
            .collect()
    };
    let mut out = Vec::new();
    for buckets in [hours, days(0), days(5 * HOUR), days(HOUR / 2)] {
        for by in [None, Some(Dimension::Agent)] {
            out.extend(agent_answers(store, &query(buckets.clone(), by, now)).await);
        }
        let mut q = query(buckets.clone(), Some(Dimension::Agent), now);
        q.agent = Some("a1".into());
        out.extend(agent_answers(store, &q).await);
        let mut q = query(buckets.clone(), None, now);
        q.channel = Some("sms".into());
        out.extend(agent_answers(store, &q).await);
        let mut q = query(buckets.clone(), Some(Dimension::Agent), now);
        q.queue = Some("q1".into());
        out.extend(agent_answers(store, &q).await);
    }
    out
}

async fn agent_rollup_matches_the_stretches_and_rebuild(ctx: Ctx) {
    let store = &ctx.store;
    shifts_and_tasks(store).await;
    let now = DAY0 + 44 * HOUR;
    let live = every_agent_answer(store, now).await;
    // In all, by UTC day (after the hours' five answers): every leg, and the shifts'
    // time.
    let (time, legs) = &live[5];
    assert_eq!(legs.iter().map(|(c, _)| c.figures.legs).sum::<i64>(), 37);
    assert_eq!(legs.iter().map(|(c, _)| c.figures.ended).sum::<i64>(), 36);
    assert_eq!(
        legs.iter()
            .map(|(c, _)| c.figures.transferred_out)
            .sum::<i64>(),
        6
    );
    let staffed: i64 = time.iter().map(|c| c.figures.staffed_ms).sum();
    let busy: i64 = time.iter().map(|c| c.figures.busy_ms).sum();
    assert!(
        staffed > 3 * 15 * HOUR && busy > 0 && busy < staffed,
        "{time:?}"
    );
    assert_eq!(time.len(), 2, "two UTC days: {time:?}");

    store.rebuild_reports().await.expect("rebuild");
    assert_eq!(every_agent_answer(store, now).await, live, "rebuilt");

    // Emptied, the agent rollup is filled from the stretches at the next start.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&ctx.url)
        .await
        .expect("connect");
    let rows: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM agent_rollup")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert!(rows > 10, "agent_rollup: {rows} rows");
    sqlx::raw_sql("DELETE FROM agent_rollup")
        .execute(&mut conn)
        .await
        .expect("empty the rollups");
    conn.close().await.expect("close");
    let again = Store::connect(&ctx.url, TEST_KEY).await.expect("reconnect");
    assert_eq!(every_agent_answer(&again, now).await, live, "refilled");
    again.close().await;
}

store_tests!(
    rollups_match_the_facts_and_refill,
    agent_rollup_matches_the_stretches_and_rebuild
);
