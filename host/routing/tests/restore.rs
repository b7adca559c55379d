//! Restarts: the engine comes back from persisted rows, loses no task, assigns none
//! twice, and re-offers what timed out while it was down.

mod common;

use common::*;
use switchboard_routing::{
    Agent, Engine, EngineConfig, EngineError, Output, Presence, Queue, Reservation, Task, TaskState,
};

/// What the host would have in its database, round-tripped through JSON as it would be.
struct Rows {
    queues: Vec<Queue>,
    agents: Vec<Agent>,
    tasks: Vec<Task>,
    reservations: Vec<Reservation>,
}

fn persisted(world: &World) -> Rows {
    fn through_json<T: serde::Serialize + serde::de::DeserializeOwned>(rows: Vec<&T>) -> Vec<T> {
        let text = serde_json::to_string(&rows).unwrap();
        serde_json::from_str(&text).unwrap()
    }
    Rows {
        queues: through_json(world.engine.queues().collect()),
        agents: through_json(world.engine.agents().collect()),
        tasks: through_json(world.engine.tasks().collect()),
        reservations: through_json(world.engine.reservations().collect()),
    }
}

fn restart(rows: Rows, now: u64) -> World {
    let engine = Engine::restore(
        EngineConfig::default(),
        rows.queues,
        rows.agents,
        rows.tasks,
        rows.reservations,
        now,
    )
    .unwrap();
    engine.check_invariants();
    World::from_engine(engine, now)
}

/// Ada is on a call; a chat is offered to Bob; an email waits for a billing expert.
fn busy_day() -> World {
    let mut world = World::default();
    world
        .add_queue(queue("support"))
        .add_queue(
            queue("billing")
                .skill("billing", 4)
                .widen_after(60 * SECOND, 1),
        )
        .add_agent(agent("ada"))
        .add_agent(agent("bob").skill("billing", 2));
    world.arrive(task("call", "voice", "support"));
    world.accept("call");
    world.elapse(5 * SECOND);
    world.arrive(task("chat", "chat", "support"));
    world.arrive(task("email", "email", "billing"));
    assert_eq!(world.holder("chat").as_deref(), Some("bob"));
    assert_eq!(world.holder("email"), None);
    world
}

#[test]
fn a_restart_before_the_offer_expires_keeps_everything_as_it_was() {
    let world = busy_day();
    let rows = persisted(&world);
    let mut again = restart(rows, 10 * SECOND);
    assert!(again.log.is_empty(), "nothing to repair: {:?}", again.log);
    assert_eq!(again.state("call"), "assigned");
    assert_eq!(again.holder("chat").as_deref(), Some("bob"));
    assert_eq!(again.load("ada"), 100);
    assert_eq!(
        again.engine.poll_timeout(),
        Some(20 * SECOND),
        "the offer expires as before"
    );

    // Bob can still accept the offer made before the restart.
    again.accept("chat");
    assert_eq!(again.state("chat"), "assigned");
}

#[test]
fn an_offer_that_expired_during_the_outage_is_offered_again() {
    let world = busy_day();
    let rows = persisted(&world);
    let offer = rows.reservations[0].clone();

    // The host comes back at 40 s: Bob's offer ran out at 20 s.
    let again = restart(rows, 40 * SECOND);
    assert_eq!(
        again.log[0],
        Output::ReservationExpired { reservation: offer }
    );
    // Re-offered at once; Bob is not blamed for the outage, so he may get it again.
    let reoffer = again
        .engine
        .reservation(&again.reservation_of("chat"))
        .unwrap();
    assert_eq!(reoffer.agent, "bob".into());
    assert_eq!(reoffer.offered_at, 40 * SECOND);
    assert_eq!(
        reoffer.id.as_str(),
        "chat.2",
        "ids keep counting across the restart"
    );
    assert_eq!(again.load("bob"), 25);
}

#[test]
fn steps_that_fell_due_during_the_outage_apply_on_restore() {
    let mut world = busy_day();
    world.accept("chat");
    let rows = persisted(&world);
    // Back at 70 s: the email waited past its 60 s step, so Bob (billing 2) may take it.
    let again = restart(rows, 70 * SECOND);
    assert_eq!(again.holder("email").as_deref(), Some("bob"));
}

#[test]
fn offers_to_agents_no_longer_available_are_withdrawn() {
    let world = busy_day();
    let mut rows = persisted(&world);
    for agent in &mut rows.agents {
        if agent.id == aid("bob") {
            agent.presence = Presence::Offline;
        }
    }
    let again = restart(rows, 10 * SECOND);
    assert!(matches!(again.log[0], Output::ReservationCanceled { .. }));
    assert_eq!(again.state("chat"), "pending");
}

#[test]
fn stray_rows_are_cleaned_up_and_contradictions_refused() {
    let world = busy_day();

    // A reservation row no task points to is reported canceled.
    let mut rows = persisted(&world);
    let mut stray = rows.reservations[0].clone();
    stray.id = "chat#0".into();
    rows.reservations.push(stray.clone());
    let again = restart(rows, 10 * SECOND);
    assert_eq!(
        again.log,
        [Output::ReservationCanceled { reservation: stray }]
    );

    // A reserved task whose reservation row is lost simply waits again (and is offered).
    let mut rows = persisted(&world);
    rows.reservations.clear();
    let again = restart(rows, 10 * SECOND);
    assert_eq!(again.holder("chat").as_deref(), Some("bob"));

    // Completed rows are ignored.
    let mut rows = persisted(&world);
    rows.tasks[0].state = TaskState::Completed;
    let again = restart(rows, 10 * SECOND);
    assert_eq!(again.state("call"), "gone");

    // An assigned task whose agent is unknown cannot be guessed at.
    let mut rows = persisted(&world);
    rows.agents.retain(|a| a.id != aid("ada"));
    let err = Engine::restore(
        EngineConfig::default(),
        rows.queues,
        rows.agents,
        rows.tasks,
        rows.reservations,
        10 * SECOND,
    )
    .unwrap_err();
    assert_eq!(err, EngineError::UnknownAgent(aid("ada")));

    // Nor can work beyond an agent's capacity.
    let mut rows = persisted(&world);
    for agent in &mut rows.agents {
        agent.capacity.total = 50;
    }
    let err = Engine::restore(
        EngineConfig::default(),
        rows.queues,
        rows.agents,
        rows.tasks,
        rows.reservations,
        10 * SECOND,
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::OverCapacity { .. }), "{err}");
}

#[test]
fn rows_serialize_in_the_shape_the_store_expects() {
    let world = busy_day();
    let chat = serde_json::to_value(world.engine.task(&tid("chat")).unwrap()).unwrap();
    assert_eq!(chat["state"]["state"], "reserved");
    assert_eq!(chat["state"]["reservation"], "chat.1");
    let ada = serde_json::to_value(world.engine.agent(&aid("ada")).unwrap()).unwrap();
    assert_eq!(ada["presence"]["state"], "available");
    assert_eq!(ada["capacity"]["costs"]["voice"], 100);
    let output = serde_json::to_value(&world.log[0]).unwrap();
    assert_eq!(output["event"], "task_queued");
}
