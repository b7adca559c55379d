//! Queue statistics for the supervisor's wallboard.

mod common;

use common::*;
use switchboard_routing::{EngineError, Presence};

#[test]
fn a_morning_in_the_support_queue() {
    let mut world = World::default();
    world
        .add_queue(queue("support").sla(20 * SECOND))
        .add_agent(agent("ada").presence(Presence::Offline));

    world.arrive(task("quick", "voice", "support"));
    world.elapse(5 * SECOND);
    world.arrive(task("slow", "voice", "support"));
    world.arrive(task("gave-up", "voice", "support"));
    world.elapse(5 * SECOND);
    let stats = world.stats("support");
    assert_eq!((stats.waiting, stats.longest_wait_ms), (3, 10 * SECOND));

    // Ada logs in at 10 s: "quick" is answered within the 20 s target.
    world.set_presence("ada", Presence::Available);
    world.accept("quick").elapse(20 * SECOND);
    world.cancel("gave-up");
    world.elapse(40 * SECOND).complete("quick");
    // "slow" waited 65 s.
    world.accept("slow").complete("slow");

    let stats = world.stats("support");
    assert_eq!(stats.waiting, 0);
    assert_eq!(stats.offered, 2);
    assert_eq!(stats.assigned, 2);
    assert_eq!(stats.completed, 2);
    assert_eq!(stats.completed_within_sla, 1);
    assert_eq!(stats.abandoned, 1);

    assert_eq!(
        world.engine.queue_stats(0, &qid("sales")),
        Err(EngineError::UnknownQueue(qid("sales")))
    );
}
