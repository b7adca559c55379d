//! Routing steps that expire: widen the proficiency needed, then overflow elsewhere.

mod common;

use common::*;
use switchboard_routing::Output;

#[test]
fn after_sixty_seconds_a_novice_may_take_what_needed_an_expert() {
    let mut world = World::default();
    world
        .add_queue(
            queue("billing")
                .skill("billing", 4)
                .widen_after(60 * SECOND, 1),
        )
        .add_agent(agent("novice").skill("billing", 2))
        .add_agent(agent("no-billing").skill("sales", 5));

    world.arrive(task("dispute", "chat", "billing"));
    assert_eq!(world.holder("dispute"), None, "nobody has billing ≥ 4");
    assert_eq!(world.engine.poll_timeout(), Some(60 * SECOND));

    world.elapse(60 * SECOND - 1);
    assert_eq!(world.holder("dispute"), None);

    world.elapse(1);
    assert_eq!(world.holder("dispute").as_deref(), Some("novice"));
    let offer = world
        .engine
        .reservation(&world.reservation_of("dispute"))
        .unwrap();
    assert_eq!(offer.offered_at, 60 * SECOND);
}

#[test]
fn an_expert_who_is_free_gets_it_at_once() {
    let mut world = World::default();
    world
        .add_queue(
            queue("billing")
                .skill("billing", 4)
                .widen_after(60 * SECOND, 1),
        )
        .add_agent(agent("novice").skill("billing", 2))
        .add_agent(agent("expert").skill("billing", 5));
    world.arrive(task("dispute", "chat", "billing"));
    assert_eq!(world.holder("dispute").as_deref(), Some("expert"));
}

#[test]
fn after_three_minutes_the_task_overflows_to_the_next_queue() {
    let mut world = World::default();
    world
        .add_queue(queue("general"))
        .add_queue(
            queue("tier2")
                .skill("billing", 4)
                .widen_after(60 * SECOND, 3)
                .overflow_after(180 * SECOND, "general"),
        )
        .add_agent(agent("generalist"));

    world.arrive(task("refund", "chat", "tier2"));
    world.elapse(179 * SECOND);
    assert_eq!(world.holder("refund"), None);
    assert_eq!(world.stats("tier2").waiting, 1);

    world.elapse(SECOND);
    assert!(world.log.contains(&Output::TaskOverflowed {
        task: tid("refund"),
        from: qid("tier2"),
        to: qid("general"),
    }));
    assert_eq!(world.holder("refund").as_deref(), Some("generalist"));
    let task = world.engine.task(&tid("refund")).unwrap();
    assert_eq!(task.queue, qid("general"));
    assert_eq!(task.queued_at, 180 * SECOND);
    assert_eq!(task.arrived_at, 0);
    assert_eq!(world.stats("tier2").waiting, 0);
    assert_eq!(
        world.stats("general").waiting,
        1,
        "offered, not yet accepted"
    );
}

#[test]
fn a_late_host_still_overflows_at_the_deadline_and_runs_the_next_queue_from_there() {
    let mut world = World::default();
    world
        .add_queue(queue("a").skill("x", 1).overflow_after(180 * SECOND, "b"))
        .add_queue(queue("b").skill("y", 1).overflow_after(60 * SECOND, "c"))
        .add_queue(queue("c").skill("z", 1));
    world.arrive(task("t", "chat", "a"));

    // The host only wakes up at 250 s: both steps are due, each at its own instant.
    world.now = 250 * SECOND;
    world.engine.handle_timeout(world.now);
    world.settle();
    let task = world.engine.task(&tid("t")).unwrap();
    assert_eq!(task.queue, qid("c"));
    assert_eq!(task.queued_at, 240 * SECOND);
    let overflows: Vec<_> = world
        .log
        .iter()
        .filter(|o| matches!(o, Output::TaskOverflowed { .. }))
        .collect();
    assert_eq!(overflows.len(), 2);
}

#[test]
fn a_step_due_while_offered_waits_until_the_offer_is_answered() {
    let mut world = World::default();
    world
        .add_queue(queue("sales").overflow_after(10 * SECOND, "backlog"))
        .add_queue(queue("backlog"))
        .add_agent(agent("ada"));
    world.arrive(task("lead", "email", "sales"));
    assert_eq!(world.holder("lead").as_deref(), Some("ada"));

    // The overflow falls due at 10 s while Ada still has the offer: nothing moves.
    world.elapse(14 * SECOND);
    assert_eq!(world.engine.task(&tid("lead")).unwrap().queue, qid("sales"));
    assert_eq!(world.holder("lead").as_deref(), Some("ada"));

    // Her offer times out at 15 s; the overdue step applies at once.
    world.elapse(SECOND);
    let task = world.engine.task(&tid("lead")).unwrap();
    assert_eq!(task.queue, qid("backlog"));
    assert_eq!(task.queued_at, 10 * SECOND);
}

#[test]
fn overflow_into_itself_or_immediately_is_refused() {
    let mut world = World::default();
    let err = world
        .engine
        .upsert_queue(0, queue("loop").overflow_after(SECOND, "loop"))
        .unwrap_err();
    assert!(err.to_string().contains("itself"), "{err}");
    let err = world
        .engine
        .upsert_queue(0, queue("a").overflow_after(0, "b"))
        .unwrap_err();
    assert!(err.to_string().contains("after_ms"), "{err}");
}
