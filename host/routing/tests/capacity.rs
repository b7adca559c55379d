//! Capacity across channels: one call or four chats; email costs 20; wrap-up holds it.

mod common;

use common::*;
use switchboard_routing::{CapacityProfile, EngineError, Output, Presence};

#[test]
fn one_call_or_four_chats() {
    let mut world = World::default();
    world.add_queue(queue("support")).add_agent(agent("ada"));

    world.arrive(task("call", "voice", "support"));
    world.accept("call");
    assert_eq!(world.load("ada"), 100);

    // A chat waits while Ada is on the phone.
    world.arrive(task("chat-1", "chat", "support"));
    assert_eq!(world.holder("chat-1"), None);

    // When the call ends she can hold four chats; the fifth waits.
    for n in 2..=5 {
        world.arrive(task(&format!("chat-{n}"), "chat", "support"));
    }
    world.complete("call");
    assert_eq!(
        world.offers_to("ada"),
        ["chat-1", "chat-2", "chat-3", "chat-4"]
    );
    assert_eq!(world.load("ada"), 100, "offers count against capacity too");
    assert_eq!(world.holder("chat-5"), None);

    // Finishing one chat makes room for the fifth at once.
    world.accept("chat-1").complete("chat-1");
    assert_eq!(world.holder("chat-5").as_deref(), Some("ada"));

    // A call cannot join any chat.
    world.arrive(task("call-2", "voice", "support"));
    assert_eq!(world.holder("call-2"), None);
}

#[test]
fn email_costs_twenty_so_it_fits_beside_three_chats() {
    let mut world = World::default();
    world.add_queue(queue("support")).add_agent(agent("bob"));
    for n in 1..=3 {
        world.arrive(task(&format!("chat-{n}"), "chat", "support"));
        world.accept(&format!("chat-{n}"));
    }
    world.arrive(task("email-1", "email", "support"));
    assert_eq!(world.holder("email-1").as_deref(), Some("bob"));
    assert_eq!(world.load("bob"), 95);

    world.arrive(task("email-2", "email", "support"));
    assert_eq!(world.holder("email-2"), None, "95 + 20 > 100");

    world.complete("chat-1");
    assert_eq!(world.holder("email-2").as_deref(), Some("bob"));
    assert_eq!(world.load("bob"), 90);
}

#[test]
fn unknown_channels_cost_twenty_five_and_profiles_are_per_agent() {
    let profile = CapacityProfile::default();
    assert_eq!(profile.cost("voice"), 100);
    assert_eq!(profile.cost("whatsapp"), 25);
    assert_eq!(profile.cost("carrier-pigeon"), 25);

    // Cy does two calls at once (a supervisor barging in, say) but no chat at all.
    let mut cy = agent("cy").capacity(200);
    cy.capacity.costs.insert("chat".into(), 1_000);
    let mut world = World::default();
    world.add_queue(queue("support")).add_agent(cy);
    world.arrive(task("call-1", "voice", "support"));
    world.arrive(task("call-2", "voice", "support"));
    world.arrive(task("chat", "chat", "support"));
    assert_eq!(world.offers_to("cy"), ["call-1", "call-2"]);
    assert_eq!(world.holder("chat"), None);
}

#[test]
fn wrap_up_holds_capacity_until_the_agent_completes() {
    let mut world = World::default();
    world.add_queue(queue("support")).add_agent(agent("ada"));
    world.arrive(task("call-1", "voice", "support"));
    world.accept("call-1");
    world.arrive(task("call-2", "voice", "support"));

    world.elapse(120 * SECOND).wrap_up("call-1");
    assert_eq!(world.state("call-1"), "wrapping");
    assert_eq!(world.load("ada"), 100);
    world.elapse(30 * SECOND);
    assert_eq!(world.holder("call-2"), None, "still writing notes");

    world.complete("call-1");
    assert_eq!(world.state("call-1"), "gone");
    assert_eq!(world.holder("call-2").as_deref(), Some("ada"));
    assert!(world.log.contains(&Output::TaskCompleted {
        task: tid("call-1"),
        agent: Some(aid("ada")),
    }));
}

#[test]
fn an_agent_becoming_available_is_offered_waiting_work_at_once() {
    let mut world = World::default();
    world
        .add_queue(queue("support"))
        .add_agent(agent("ada").presence(Presence::Offline));
    world.arrive(task("chat", "chat", "support"));
    world.elapse(42 * SECOND);
    assert_eq!(world.holder("chat"), None);

    world.set_presence("ada", Presence::Available);
    let offer = world
        .engine
        .reservation(&world.reservation_of("chat"))
        .unwrap();
    assert_eq!(offer.agent, aid("ada"));
    assert_eq!(offer.offered_at, 42 * SECOND, "no polling interval");
}

#[test]
fn going_away_withdraws_open_offers_but_not_work_in_hand() {
    let mut world = World::default();
    world
        .add_queue(queue("support"))
        .add_agent(agent("ada").skill("support", 5))
        .add_agent(agent("bob").skill("support", 1).presence(Presence::Offline));
    world.arrive(task("chat-1", "chat", "support"));
    world.accept("chat-1");
    world.arrive(task("chat-2", "chat", "support"));
    assert_eq!(world.offers_to("ada"), ["chat-2"]);

    world.set_presence(
        "ada",
        Presence::Away {
            reason: "break".into(),
        },
    );
    assert_eq!(world.state("chat-1"), "assigned");
    assert_eq!(world.state("chat-2"), "pending");
    assert_eq!(world.load("ada"), 25);
    assert!(world
        .log
        .iter()
        .any(|o| matches!(o, Output::ReservationCanceled { reservation } if reservation.task == tid("chat-2"))));

    // Not blamed: once back, she may be offered it again.
    world.set_presence("ada", Presence::Available);
    assert_eq!(world.offers_to("ada"), ["chat-2"]);
}

#[test]
fn capacity_cannot_be_cut_below_the_work_in_hand() {
    let mut world = World::default();
    world.add_queue(queue("support")).add_agent(agent("ada"));
    world.arrive(task("call", "voice", "support"));
    world.accept("call");
    let err = world
        .engine
        .upsert_agent(world.now, agent("ada").capacity(50))
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::OverCapacity {
            agent: aid("ada"),
            load: 100,
            capacity: 50
        }
    );
    world.complete("call");
    world
        .engine
        .upsert_agent(world.now, agent("ada").capacity(50))
        .unwrap();
    world.engine.check_invariants();
}
