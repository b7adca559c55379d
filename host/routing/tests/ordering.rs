//! Which waiting task goes first: priority, then age; aging lets the patient overtake.

mod common;

use common::*;
use switchboard_routing::{EngineConfig, Presence};

/// One agent who can hold one call at a time takes the calls one by one.
fn serve_calls_one_by_one(world: &mut World, calls: usize) -> Vec<String> {
    world.set_presence("ada", Presence::Available);
    let mut served = Vec::new();
    for _ in 0..calls {
        let offered = world.offers_to("ada");
        assert_eq!(offered.len(), 1, "ada holds one call at a time");
        let call = offered[0].clone();
        world.accept(&call).complete(&call);
        served.push(call);
    }
    served
}

#[test]
fn higher_priority_first_then_the_oldest() {
    let mut world = World::default();
    world
        .add_queue(queue("support"))
        .add_agent(agent("ada").presence(Presence::Away {
            reason: "lunch".into(),
        }));

    // Calls pile up while Ada is at lunch.
    world.arrive(task("plain-early", "voice", "support"));
    world.elapse(SECOND);
    world.arrive(task("urgent-early", "voice", "support").priority(10));
    world.elapse(SECOND);
    world.arrive(task("urgent-late", "voice", "support").priority(10));
    world.elapse(SECOND);
    world.arrive(task("plain-late", "voice", "support"));
    assert_eq!(world.stats("support").waiting, 4);
    assert_eq!(world.stats("support").longest_wait_ms, 3 * SECOND);

    // Back from lunch, she gets them urgent first, oldest first within a priority.
    assert_eq!(
        serve_calls_one_by_one(&mut world, 4),
        ["urgent-early", "urgent-late", "plain-early", "plain-late"]
    );
}

#[test]
fn queue_priority_adds_to_task_priority() {
    let mut world = World::default();
    world
        .add_queue(queue("email").priority(5))
        .add_queue(queue("voice").priority(15))
        .add_agent(agent("ada").presence(Presence::Offline));

    world.arrive(task("an-email", "voice", "email").priority(9));
    world.elapse(SECOND);
    world.arrive(task("a-call", "voice", "voice"));
    world.elapse(SECOND);
    world.arrive(task("a-vip-email", "voice", "email").priority(11));

    // 5 + 11 = 16 > 15 > 5 + 9 = 14.
    assert_eq!(
        serve_calls_one_by_one(&mut world, 3),
        ["a-vip-email", "a-call", "an-email"]
    );
}

/// A plain chat waits from 0 s; a priority-5 chat arrives at `vip_at`; Ada frees up at
/// 100 s. Who does she get first?
fn first_served(config: EngineConfig, vip_at: u64) -> String {
    let mut world = World::new(config);
    world
        .add_queue(queue("chat"))
        .add_agent(agent("ada").presence(Presence::Offline));
    world.arrive(task("patient", "voice", "chat"));
    world.run_until(vip_at);
    world.arrive(task("vip", "voice", "chat").priority(5));
    world.run_until(100 * SECOND);
    serve_calls_one_by_one(&mut world, 2).remove(0)
}

#[test]
fn without_aging_priority_always_wins() {
    assert_eq!(first_served(EngineConfig::default(), 60 * SECOND), "vip");
}

#[test]
fn aging_lets_a_long_wait_overtake_a_higher_priority() {
    // One point per 10 s: by the time the VIP arrives at 60 s the patient chat has six.
    let config = aging(10 * SECOND, 1);
    assert_eq!(first_served(config.clone(), 60 * SECOND), "patient");
    // Arriving at 40 s the VIP is still ahead: 4 points of waiting do not beat 5.
    assert_eq!(first_served(config, 40 * SECOND), "vip");
}

#[test]
fn aging_is_continuous_and_needs_no_timer() {
    let mut world = World::new(aging(10 * SECOND, 1));
    world.add_queue(queue("chat"));
    world.arrive(task("waiting", "chat", "chat"));
    assert_eq!(world.engine.poll_timeout(), None);
    world.elapse(35 * SECOND);
    world.add_agent(agent("ada"));
    let offered = world.log.iter().any(|o| o.task() == Some(&tid("waiting")));
    assert!(offered);
}
