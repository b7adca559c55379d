//! Reports on known journeys, with exact figures, on SQLite and PostgreSQL.
//!
//! Each scenario drives the real application on a manual clock: messages and calls go
//! through `Ingest::commit` and the store's ingest transaction, routing through the
//! routing service and its engine, accepts, transfers and resolves through the task
//! and desk use cases, replies through the outbox; the reports are read back through
//! the reports use case. Calls enter as the voice service enters them (a `call` ingest
//! event, then the caller hanging up), without a SIP leg. The harness and the journey
//! scripts live in `support`, shared with the other scenario files.

mod support;

use serde_json::{Value, json};
use switchboard_app::reports::{ReportKind, ReportRequest};
use switchboard_core::EventKind;
use switchboard_store::{Dimension, FactQuery, JourneyFigures, NewEvent, Store, Thresholds};

use support::{
    DAY, MIN, S, T0, World, abandons, both_backends, chat_then_call, only_row, phone, ratio, row,
    text_back, transfer, two_chats,
};

// ---------------------------------------------------------------- scenarios

async fn chat_then_call_resolved_once(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let (ada, conversation) = chat_then_call(&w, 0, 1).await;

    let ops = w
        .report(
            ReportKind::Operations,
            "2025-12-01",
            "2025-12-01",
            &[("by", "channel")],
        )
        .await;
    let chat = row(&ops, "channel", "webchat");
    assert_eq!(chat["arrived"], 1);
    assert_eq!(chat["handled"], 1);
    assert_eq!(chat["avg_queue_ms"], 10_000);
    assert_eq!(chat["avg_first_response_ms"], 30_000);
    assert_eq!(
        chat["avg_handle_ms"], 110_000,
        "chat from accept to the call"
    );
    assert_eq!(chat["service_level"], 1.0);
    let voice = row(&ops, "channel", "voice");
    assert_eq!(voice["arrived"], 1);
    assert_eq!(voice["handled"], 1);
    assert_eq!(voice["avg_queue_ms"], 5_000);
    assert_eq!(voice["avg_first_response_ms"], 5_000, "a call's answer");
    assert_eq!(
        voice["avg_handle_ms"], 150_000,
        "talk 100 s + hold 20 s + wrap-up 30 s"
    );
    assert_eq!(voice["avg_talk_ms"], 100_000);
    assert_eq!(voice["avg_hold_ms"], 20_000);
    assert_eq!(voice["avg_wrap_ms"], 30_000);

    // Before the window closes, first contact resolution is pending.
    w.at(DAY);
    let j = w
        .report(ReportKind::Journeys, "2025-12-01", "2025-12-01", &[])
        .await;
    let day = only_row(&j);
    assert_eq!(day["journeys"], 1);
    assert_eq!(day["resolved"], 1);
    assert_eq!(day["fcr_pending"], 1);
    assert_eq!(day["fcr_rate"], Value::Null);
    assert_eq!(day["channel_switches"], 1);
    assert_eq!(day["switches_per_journey"], 1.0);
    assert_eq!(day["multi_channel"], 1);
    assert_eq!(day["multi_channel_share"], 1.0);
    assert_eq!(
        day["avg_resolution_ms"], 275_000,
        "first contact to final resolution"
    );
    assert_eq!(day["arrivals"], 1);
    assert_eq!(day["repeat_contacts"], 0);

    // Seven days later with no new contact: settled yes.
    w.at(8 * DAY);
    let j = w
        .report(ReportKind::Journeys, "2025-12-01", "2025-12-01", &[])
        .await;
    let day = only_row(&j);
    assert_eq!(day["fcr_yes"], 1);
    assert_eq!(day["fcr_pending"], 0);
    assert_eq!(day["fcr_rate"], 1.0);
    assert_eq!(
        w.drill("fcr_yes", "2025-12-01", "2025-12-01", &[]).await,
        vec![conversation.clone()]
    );
    // By first channel: the journey started on webchat.
    let j = w
        .report(
            ReportKind::Journeys,
            "2025-12-01",
            "2025-12-01",
            &[("by", "channel")],
        )
        .await;
    assert_eq!(row(&j, "channel", "webchat")["fcr_yes"], 1);

    // Ada: available 09:59–10:05 (6 min), busy 110 s on the chat, 150 s on the call.
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-01",
            &[("by", "agent")],
        )
        .await;
    let r = row(&a, "agent", &ada.id);
    assert_eq!(r["agent_name"], "Ada1");
    assert_eq!(r["staffed_ms"], 360_000);
    assert_eq!(r["busy_ms"], 260_000);
    assert_eq!(r["occupancy"], ratio(260_000, 360_000));
    assert_eq!(r["avg_concurrency"], 1.0);
    assert_eq!(
        r["utilization"],
        ratio(110_000 * 25 + 150_000 * 100, 360_000 * 100)
    );
    assert_eq!(r["handled"], 2);

    // The export: one row, both channels, FCR settled.
    let lines = w.export("2025-12-01", "2025-12-01").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("conversation_id,display_id,status,contact_id"));
    let cells: Vec<&str> = lines[1].trim_end().split(',').collect();
    assert_eq!(cells[0], conversation);
    assert_eq!(cells[2], "resolved");
    assert_eq!(cells[5], "webchat voice");
    assert_eq!(cells[6], "1");
    assert_eq!(cells[8], ada.id);
    assert_eq!(cells[10], "2025-12-01T09:00:00+00:00");
    assert_eq!(cells[14], "275000");
    assert_eq!(cells[17], "yes");
    assert_eq!(cells[18], "resolved");
}

async fn resolved_then_texts_on_day_three(store: Store) {
    // A one-day reopen window: the text on day 3 opens a new conversation.
    let w = World::start(store, DAY).await;
    let (first, second) = text_back(&w, 0, 1).await;
    assert_ne!(first, second);
    w.at(20 * DAY);
    let j = w
        .report(
            ReportKind::Journeys,
            "2025-12-01",
            "2025-12-04",
            &[("group_by", "total")],
        )
        .await;
    let all = only_row(&j);
    assert_eq!(all["journeys"], 2);
    assert_eq!(all["fcr_no"], 1, "the customer came back within 7 days");
    assert_eq!(all["fcr_pending"], 0);
    assert_eq!(all["fcr_yes"], 0, "the second conversation is not resolved");
    assert_eq!(all["fcr_rate"], 0.0);
    assert_eq!(all["arrivals"], 2);
    assert_eq!(all["repeat_contacts"], 1);
    assert_eq!(all["repeat_contact_rate"], 0.5);
    assert_eq!(
        w.drill("fcr_no", "2025-12-01", "2025-12-04", &[]).await,
        vec![first.clone()]
    );
    assert_eq!(
        w.drill("repeat_contacts", "2025-12-01", "2025-12-04", &[])
            .await,
        vec![second.clone()]
    );
    // Day by day: the repeat is counted on the day it came.
    let j = w
        .report(ReportKind::Journeys, "2025-12-01", "2025-12-04", &[])
        .await;
    assert_eq!(j["rows"].as_array().unwrap().len(), 4, "every day is a row");
    assert_eq!(row(&j, "period", "2025-12-01")["repeat_contacts"], 0);
    assert_eq!(row(&j, "period", "2025-12-02")["journeys"], 0);
    assert_eq!(row(&j, "period", "2025-12-04")["repeat_contacts"], 1);
    assert_eq!(row(&j, "period", "2025-12-04")["repeat_contact_rate"], 1.0);
    // With a 2-day window the same history is a first contact resolution.
    let j = w
        .report(
            ReportKind::Journeys,
            "2025-12-01",
            "2025-12-04",
            &[("group_by", "total"), ("fcr_days", "2")],
        )
        .await;
    assert_eq!(only_row(&j)["fcr_yes"], 1);
    assert_eq!(only_row(&j)["repeat_contacts"], 0);
}

async fn resolved_then_texts_back_reopens(store: Store) {
    // The default seven-day reopen window: the text reopens the same conversation.
    let w = World::start(store, 7 * DAY).await;
    let (first, second) = text_back(&w, 0, 1).await;
    assert_eq!(first, second);
    w.at(20 * DAY);
    let j = w
        .report(
            ReportKind::Journeys,
            "2025-12-01",
            "2025-12-04",
            &[("group_by", "total")],
        )
        .await;
    let all = only_row(&j);
    assert_eq!(all["journeys"], 1);
    assert_eq!(all["fcr_no"], 1);
    assert_eq!(all["reopened"], 1);
    assert_eq!(all["arrivals"], 2);
    assert_eq!(all["repeat_contacts"], 1);
}

async fn abandon_after_four_seconds_is_short(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let calls = abandons(&w, 0, 1).await;
    let ops = w
        .report(
            ReportKind::Operations,
            "2025-12-01",
            "2025-12-01",
            &[("by", "channel")],
        )
        .await;
    let v = row(&ops, "channel", "voice");
    assert_eq!(v["arrived"], 4);
    assert_eq!(v["handled"], 2);
    assert_eq!(v["abandoned"], 2);
    assert_eq!(v["short_abandoned"], 1, "4 s < 5 s");
    assert_eq!(
        v["abandon_rate"],
        ratio(1, 3),
        "1 counted abandon of 3 settled"
    );
    assert_eq!(v["answered_in_sl"], 1);
    assert_eq!(v["service_level"], ratio(1, 3), "answered within 20 s of 3");
    assert_eq!(v["avg_queue_ms"], 35_000);
    assert_eq!(v["p90_queue_ms"], 60_000);
    assert_eq!(v["max_queue_ms"], 60_000);
    assert_eq!(v["avg_abandon_ms"], 8_000, "short abandons excluded");
    assert_eq!(
        w.drill("short_abandoned", "2025-12-01", "2025-12-01", &[])
            .await,
        [calls[0].clone()]
    );
    assert_eq!(
        w.drill("abandoned_counted", "2025-12-01", "2025-12-01", &[])
            .await,
        [calls[1].clone()]
    );
    // With a 3 s threshold the 4 s abandon counts.
    let ops = w
        .report(
            ReportKind::Operations,
            "2025-12-01",
            "2025-12-01",
            &[("by", "channel"), ("short_abandon_secs", "3")],
        )
        .await;
    let v = row(&ops, "channel", "voice");
    assert_eq!(v["short_abandoned"], 0);
    assert_eq!(v["abandon_rate"], ratio(2, 4));
    assert_eq!(v["service_level"], ratio(1, 4));
    // CSV of the same table.
    let r = w
        .app
        .reports
        .report(
            ReportKind::Operations,
            &ReportRequest {
                from: "2025-12-01".into(),
                to: "2025-12-01".into(),
                by: Some("channel".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .to_csv();
    let lines: Vec<&str> = r.lines().collect();
    assert!(lines[0].starts_with("period,from,to,channel,arrived,handled,abandoned"));
    assert!(
        lines[1].starts_with("2025-12-01,2025-12-01,2025-12-01,voice,4,2,2,1,"),
        "{}",
        lines[1]
    );
}

async fn transfer_with_context(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let (cy, di, conversation) = transfer(&w, 0, 1).await;
    let ops = w
        .report(ReportKind::Operations, "2025-12-01", "2025-12-01", &[])
        .await;
    let d = only_row(&ops);
    assert_eq!(d["handled"], 1);
    assert_eq!(d["transferred"], 1);
    assert_eq!(d["transfers"], 1);
    assert_eq!(d["transfer_rate"], 1.0);
    assert_eq!(d["handoffs"], 1);
    assert_eq!(d["handoffs_with_context"], 1);
    assert_eq!(d["context_transfer_rate"], 1.0);
    assert_eq!(d["avg_queue_ms"], 5_000, "to the first answer");
    assert_eq!(d["avg_handle_ms"], 55_000 + 130_000, "both agents' time");
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-01",
            &[("by", "agent")],
        )
        .await;
    assert_eq!(row(&a, "agent", &cy.id)["handled"], 1);
    assert_eq!(row(&a, "agent", &cy.id)["transferred_out"], 1);
    assert_eq!(row(&a, "agent", &cy.id)["avg_handle_ms"], 55_000);
    assert_eq!(row(&a, "agent", &di.id)["handled"], 1);
    assert_eq!(row(&a, "agent", &di.id)["avg_handle_ms"], 130_000);
    let j = w
        .report(ReportKind::Journeys, "2025-12-01", "2025-12-01", &[])
        .await;
    assert_eq!(only_row(&j)["context_transfer_rate"], 1.0);
    assert_eq!(
        w.drill("handoffs", "2025-12-01", "2025-12-01", &[]).await,
        vec![conversation.clone()]
    );
    let lines = w.export("2025-12-01", "2025-12-01").await;
    let cells: Vec<&str> = lines[1].trim_end().split(',').collect();
    assert_eq!(cells[8], format!("{} {}", cy.id, di.id));
    assert_eq!(cells[19], "1");
    assert_eq!(cells[20], "1");
}

async fn two_chats_at_once(store: Store) {
    let w = World::start(store, 7 * DAY).await;
    let ed = two_chats(&w, 0, 1).await;
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-01",
            &[("by", "agent")],
        )
        .await;
    let r = row(&a, "agent", &ed.id);
    assert_eq!(r["staffed_ms"], 20 * MIN);
    assert_eq!(r["busy_ms"], 10 * MIN);
    assert_eq!(r["idle_ms"], 10 * MIN);
    assert_eq!(
        r["occupancy"], 0.5,
        "busy 10 of 20 minutes, whatever the chats"
    );
    assert_eq!(r["avg_concurrency"], 2.0, "two chats at once while busy");
    assert_eq!(
        r["utilization"], 0.25,
        "2 × 25 of 100 capacity for half the time"
    );
    assert_eq!(r["utilization_by_channel"], json!({"webchat": 0.25}));
    assert_eq!(r["handled"], 2);
    assert_eq!(r["avg_handle_ms"], 10 * MIN);
    // A week report holds the same day.
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-07",
            &[("group_by", "week")],
        )
        .await;
    let week = only_row(&a);
    assert_eq!(week["period"], "2025-W49");
    assert_eq!(week["occupancy"], 0.5);
    // Available 23:00–01:00 UTC: an hour on each day.
    let gus = w.agent("Gus").await;
    w.at(14 * 60 * MIN);
    w.presence(&gus, "available").await;
    w.at(16 * 60 * MIN);
    w.presence(&gus, "offline").await;
    let a = w
        .report(
            ReportKind::Agents,
            "2025-12-01",
            "2025-12-02",
            &[("by", "agent"), ("agent", &gus.id)],
        )
        .await;
    let rows = a["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{a:#}");
    assert_eq!(rows[0]["staffed_ms"], 60 * MIN);
    assert_eq!(rows[1]["staffed_ms"], 60 * MIN);
    assert_eq!(rows[1]["occupancy"], 0.0);
}

async fn rebuild_gives_the_live_numbers(store: Store) {
    let w = World::start(store, DAY).await;
    chat_then_call(&w, 0, 1).await;
    abandons(&w, 1, 2).await;
    transfer(&w, 2, 3).await;
    two_chats(&w, 3, 4).await;
    text_back(&w, 4, 5).await;
    w.at(30 * DAY);
    let total = [("group_by", "total")];
    let ops = w
        .report(ReportKind::Operations, "2025-12-01", "2025-12-10", &total)
        .await;
    assert_eq!(only_row(&ops)["arrived"], 11);
    let live = snapshot(&w).await;
    let stats = w.app.store.rebuild_reports().await.expect("rebuild");
    assert!(stats.routing_entries > 50 && stats.events > 20, "{stats:?}");
    assert_eq!(stats.conversations, 10);
    let rebuilt = snapshot(&w).await;
    assert_eq!(live.len(), rebuilt.len());
    for (a, b) in live.iter().zip(&rebuilt) {
        assert_eq!(a, b);
    }
    // Figures that were checked exactly in the scenarios hold after the rebuild too.
    let ops = w
        .report(ReportKind::Operations, "2025-12-01", "2025-12-10", &total)
        .await;
    assert_eq!(only_row(&ops)["arrived"], 11);
    assert_eq!(only_row(&ops)["short_abandoned"], 1);
    let a = w
        .report(ReportKind::Agents, "2025-12-04", "2025-12-04", &[])
        .await;
    assert_eq!(only_row(&a)["occupancy"], 0.5);
    assert_eq!(only_row(&a)["avg_concurrency"], 2.0);
}

/// The hourly rollups and the facts give the same task, journey, survey and agent time
/// figures: every grouping and filter, hour and day and week buckets, first
/// contact resolution pending and settled, before and after a rebuild; the queries the
/// rollups do not serve (half-hour edges, other thresholds, per agent, filters) read
/// the facts.
async fn rollup_gives_the_raw_numbers(store: Store) {
    let w = World::start(store, DAY).await;
    let (_, first_call) = chat_then_call(&w, 0, 1).await;
    abandons(&w, 1, 2).await;
    let (_, _, moved) = transfer(&w, 2, 3).await;
    two_chats(&w, 3, 4).await;
    text_back(&w, 4, 5).await;
    // Surveys on two of them: an answered CSAT and NPS, a CES sent and left.
    for (conversation, survey, phase, score) in [
        (&moved, "csat", "answered", 4),
        (&moved, "nps", "answered", 6),
        (&first_call, "ces", "sent", 0),
    ] {
        w.app
            .store
            .append_event(NewEvent::internal(
                conversation,
                EventKind::Survey,
                "survey",
                None,
                json!({"survey": survey, "phase": phase, "score": score}),
                T0 + 7 * DAY,
            ))
            .await
            .expect("survey");
    }
    // A call ten seconds before midnight UTC, still waiting.
    w.at(8 * DAY + 15 * 60 * MIN - 10 * S);
    w.call(phone("+15559990001")).await;
    let queues = w
        .app
        .store
        .drill(
            &task_query(vec![(T0 - DAY, T0 + 10 * DAY)]),
            "arrived",
            None,
            100,
        )
        .await
        .expect("drill");
    let mut queue_ids: Vec<String> = queues.iter().filter_map(|r| r.queue.clone()).collect();
    queue_ids.sort();
    queue_ids.dedup();
    assert!(!queue_ids.is_empty());
    assert!(
        queues
            .iter()
            .any(|r| r.conversation_id.as_deref() == Some(moved.as_str()))
    );

    let midnight = T0 - 9 * 60 * MIN;
    let days: Vec<(i64, i64)> = (0..10)
        .map(|d| (midnight + d * DAY, midnight + (d + 1) * DAY))
        .collect();
    let hours: Vec<(i64, i64)> = (0..48)
        .map(|h| (T0 + h * 60 * MIN, T0 + (h + 1) * 60 * MIN))
        .collect();
    let weeks = vec![
        (midnight, midnight + 7 * DAY),
        (midnight + 7 * DAY, midnight + 14 * DAY),
    ];
    // Tasks, journeys and surveys; the number of tasks seen.
    let check = |label: String, q: FactQuery| {
        let store = w.app.store.clone();
        async move {
            let rolled = store.task_figures(&q).await.expect("rollup");
            let raw = store.task_figures_from_facts(&q).await.expect("raw");
            assert_eq!(rolled, raw, "tasks {label}");
            let journeys = store.journey_figures(&q).await.expect("rollup");
            let raw = store.journey_figures_from_facts(&q).await.expect("raw");
            assert_eq!(journeys, raw, "journeys {label}");
            let surveys = store.experience_figures(&q).await.expect("rollup");
            let raw = store.experience_figures_from_facts(&q).await.expect("raw");
            assert_eq!(surveys, raw, "experience {label}");
            let time = store.agent_time(&q).await.expect("rollup");
            let raw = store.agent_time_from_facts(&q).await.expect("raw");
            assert_eq!(time, raw, "agent time {label}");
            rolled.iter().map(|c| c.figures.arrived).sum::<i64>()
        }
    };
    for round in ["live", "rebuilt"] {
        let mut seen = 0;
        for (name, buckets) in [("days", &days), ("hours", &hours), ("weeks", &weeks)] {
            for by in [
                None,
                Some(Dimension::Channel),
                Some(Dimension::Queue),
                Some(Dimension::Agent),
            ] {
                let mut q = task_query(buckets.clone());
                q.by = by;
                seen += check(format!("{round} {name} by {by:?}"), q).await;
            }
            let mut q = task_query(buckets.clone());
            q.channel = Some("voice".into());
            check(format!("{round} {name} voice"), q).await;
            for queue in &queue_ids {
                let mut q = task_query(buckets.clone());
                q.queue = Some(queue.clone());
                q.by = Some(Dimension::Channel);
                check(format!("{round} {name} {queue}"), q).await;
            }
        }
        // 12 tasks in the days and weeks, 6 in the first 48 hours; four groupings each.
        assert_eq!(seen, 4 * (12 + 12 + 6), "{round}: every task is counted");
        // Edges on the half hour, other thresholds: the task facts answer.
        let mut q = task_query(
            days.iter()
                .map(|(a, b)| (a + 30 * MIN, b + 30 * MIN))
                .collect(),
        );
        q.by = Some(Dimension::Channel);
        check(format!("{round} half-hour days"), q).await;
        let mut q = task_query(days.clone());
        q.thresholds.short_abandon_ms = 3_000;
        q.thresholds.service_level_ms = 60_000;
        q.thresholds.fcr_window_ms = 2 * DAY;
        check(format!("{round} other thresholds"), q).await;
        // First contact resolution pending, then settled, as now moves.
        for now in [T0 + DAY, T0 + 5 * DAY, T0 + 9 * DAY, T0 + 30 * DAY] {
            let mut q = task_query(days.clone());
            q.thresholds.now_ms = now;
            q.by = Some(Dimension::Channel);
            check(format!("{round} now {now}"), q).await;
        }
        let fcr = w
            .app
            .store
            .journey_figures(&task_query(days.clone()))
            .await
            .expect("journeys");
        let sum = |f: fn(&JourneyFigures) -> i64| fcr.iter().map(|c| f(&c.figures)).sum::<i64>();
        assert!(
            sum(|f| f.fcr_yes) > 0 && sum(|f| f.fcr_pending) > 0,
            "{fcr:?}"
        );
        let surveys = w
            .app
            .store
            .experience_figures(&task_query(days.clone()))
            .await
            .expect("surveys");
        assert_eq!(
            surveys
                .iter()
                .map(|c| c.figures.csat_responses)
                .sum::<i64>(),
            1
        );
        assert_eq!(surveys.iter().map(|c| c.figures.ces_sent).sum::<i64>(), 1);
        w.app.store.rebuild_reports().await.expect("rebuild");
    }
}

fn task_query(buckets: Vec<(i64, i64)>) -> FactQuery {
    FactQuery {
        buckets,
        by: None,
        channel: None,
        queue: None,
        agent: None,
        thresholds: Thresholds {
            short_abandon_ms: 5_000,
            service_level_ms: 20_000,
            fcr_window_ms: 7 * DAY,
            now_ms: T0 + 9 * DAY,
        },
    }
}

/// Every report, grouped every way, the drill-downs and the export.
async fn snapshot(w: &World) -> Vec<Value> {
    let (from, to) = ("2025-12-01", "2025-12-10");
    let mut out = Vec::new();
    for kind in [
        ReportKind::Operations,
        ReportKind::Agents,
        ReportKind::Journeys,
        ReportKind::Experience,
    ] {
        for by in ["", "channel", "queue", "agent"] {
            if kind == ReportKind::Agents && (by == "channel" || by == "queue") {
                continue;
            }
            for group_by in ["day", "total"] {
                let mut opts = vec![("group_by", group_by)];
                if !by.is_empty() {
                    opts.push(("by", by));
                }
                out.push(w.report(kind, from, to, &opts).await);
            }
        }
    }
    for metric in switchboard_store::DRILL_METRICS {
        out.push(json!(w.drill(metric, from, to, &[]).await));
    }
    out.push(json!(w.export(from, to).await));
    out
}

both_backends!(
    chat_then_call_resolved_once,
    resolved_then_texts_on_day_three,
    resolved_then_texts_back_reopens,
    abandon_after_four_seconds_is_short,
    transfer_with_context,
    two_chats_at_once,
    rebuild_gives_the_live_numbers,
    rollup_gives_the_raw_numbers,
);
