//! Offers: sticky agents, rejects and time-outs re-offer to someone else, agents who
//! keep missing offers are set away, transfers.

mod common;

use common::*;
use switchboard_routing::{
    Candidate, EngineConfig, EngineError, MISSED_OFFERS_REASON, MatchRequest, Output, Presence,
    Target, default_rank,
};

/// Ada is the best at support, then Bob, then Cy.
fn team() -> World {
    let mut world = World::default();
    world
        .add_queue(queue("support").skill("support", 1))
        .add_queue(queue("billing").skill("billing", 1))
        .add_agent(agent("ada").skill("support", 5))
        .add_agent(agent("bob").skill("support", 4).skill("billing", 3))
        .add_agent(agent("cy").skill("support", 3));
    world
}

#[test]
fn a_returning_customer_waits_for_their_agent_then_anyone() {
    let mut world = team();
    // Cy served this customer last time; she is on a call right now.
    world.arrive(task("cy-call", "voice", "support"));
    world.transfer("cy-call", Target::Agent(aid("cy")));
    world.accept("cy-call");

    world.arrive(task("follow-up", "chat", "support").last_agent("cy"));
    assert_eq!(
        world.holder("follow-up"),
        None,
        "Ada and Bob are free, yet it waits"
    );
    assert_eq!(world.engine.poll_timeout(), Some(20 * SECOND));

    // Cy finishes her call at 10 s and gets her customer back.
    world.elapse(10 * SECOND).complete("cy-call");
    assert_eq!(world.holder("follow-up").as_deref(), Some("cy"));
}

#[test]
fn the_sticky_wait_is_bounded() {
    let mut world = team();
    world.set_presence(
        "cy",
        Presence::Away {
            reason: "meeting".into(),
        },
    );
    world.arrive(task("follow-up", "chat", "support").last_agent("cy"));
    world.elapse(20 * SECOND - 1);
    assert_eq!(world.holder("follow-up"), None);
    world.elapse(1);
    assert_eq!(world.holder("follow-up").as_deref(), Some("ada"));
}

#[test]
fn stickiness_ends_at_once_if_the_agent_is_offline_or_declines() {
    let mut world = team();
    world.set_presence("cy", Presence::Offline);
    world.arrive(task("offline-case", "chat", "support").last_agent("cy"));
    assert_eq!(world.holder("offline-case").as_deref(), Some("ada"));

    let mut world = team();
    world.arrive(task("declined", "chat", "support").last_agent("cy"));
    assert_eq!(world.holder("declined").as_deref(), Some("cy"));
    let offered_to_cy = world
        .log
        .iter()
        .any(|o| matches!(o, Output::Offered { reservation } if reservation.agent == aid("cy")));
    assert!(offered_to_cy);
    world.reject("declined");
    assert_eq!(world.holder("declined").as_deref(), Some("ada"));
}

#[test]
fn a_reject_reoffers_to_the_next_agent_never_the_same() {
    let mut world = team();
    world.arrive(task("chat", "chat", "support"));
    assert_eq!(world.holder("chat").as_deref(), Some("ada"));
    world.reject("chat");
    assert_eq!(world.holder("chat").as_deref(), Some("bob"));
    world.reject("chat");
    assert_eq!(world.holder("chat").as_deref(), Some("cy"));
    world.reject("chat");
    assert_eq!(world.holder("chat"), None, "everyone declined");
    assert_eq!(world.offer_log(), ["chat->ada", "chat->bob", "chat->cy"]);
    let task = world.engine.task(&tid("chat")).unwrap();
    assert_eq!(task.excluded_agents.len(), 3);
    assert_eq!(task.offers, 3);

    // Declining was not a missed offer: nobody is set away.
    assert_eq!(world.presence("ada"), Presence::Available);
}

#[test]
fn a_time_out_reoffers_to_the_next_agent() {
    let mut world = team();
    world.arrive(task("chat", "chat", "support"));
    let first = world.reservation_of("chat");
    assert_eq!(world.engine.poll_timeout(), Some(15 * SECOND));
    world.elapse(15 * SECOND);
    assert!(world.log.iter().any(
        |o| matches!(o, Output::ReservationExpired { reservation } if reservation.id == first)
    ));
    assert_eq!(world.holder("chat").as_deref(), Some("bob"));
    // Too late to accept the expired offer.
    assert_eq!(
        world.engine.accept(world.now, &first),
        Err(EngineError::UnknownReservation(first))
    );
}

#[test]
fn three_missed_offers_in_a_row_set_the_agent_away() {
    let mut world = World::default();
    world.add_queue(queue("support")).add_agent(agent("ada"));
    for n in 1..=4 {
        world.arrive(task(&format!("call-{n}"), "voice", "support"));
    }
    // Ada ignores call-1, call-2, call-3, one after the other, 15 s each.
    world.elapse(30 * SECOND);
    assert_eq!(world.presence("ada"), Presence::Available, "two misses");
    assert_eq!(world.offers_to("ada"), ["call-3"]);
    world.elapse(15 * SECOND);
    assert_eq!(
        world.presence("ada"),
        Presence::Away {
            reason: MISSED_OFFERS_REASON.into()
        }
    );
    assert!(world.log.contains(&Output::AgentSetAway {
        agent: aid("ada"),
        reason: "missed offers".into(),
    }));
    assert!(world.offers_to("ada").is_empty());
    assert_eq!(world.stats("support").waiting, 4);
}

#[test]
fn answering_resets_the_count_of_missed_offers() {
    let mut world = World::default();
    world.add_queue(queue("support")).add_agent(agent("ada"));
    for n in 1..=5 {
        world.arrive(task(&format!("call-{n}"), "voice", "support"));
    }
    world.elapse(30 * SECOND); // misses call-1 and call-2
    world.accept("call-3").complete("call-3");
    world.elapse(30 * SECOND); // misses call-4 and call-5
    assert_eq!(world.presence("ada"), Presence::Available);
}

#[test]
fn missed_offers_can_be_tolerated() {
    let config = EngineConfig {
        max_missed_offers: 0,
        ..EngineConfig::default()
    };
    let mut world = World::new(config);
    world.add_queue(queue("support")).add_agent(agent("ada"));
    for n in 1..=5 {
        world.arrive(task(&format!("call-{n}"), "voice", "support"));
    }
    world.elapse(100 * SECOND);
    assert_eq!(world.presence("ada"), Presence::Available);
}

#[test]
fn transfer_to_a_queue_releases_the_agent_and_waits_there() {
    let mut world = team();
    world.arrive(task("question", "voice", "support"));
    world.accept("question");
    assert_eq!(world.load("ada"), 100);

    world.elapse(60 * SECOND);
    world.transfer("question", Target::Queue(qid("billing")));
    assert_eq!(world.load("ada"), 0);
    assert_eq!(world.holder("question").as_deref(), Some("bob"));
    let task = world.engine.task(&tid("question")).unwrap();
    assert_eq!(task.queue, qid("billing"));
    assert_eq!(task.queued_at, 60 * SECOND);
    assert!(world.log.contains(&Output::TaskTransferred {
        task: tid("question"),
        target: Target::Queue(qid("billing")),
    }));

    // Bob declines; Ada, who handed it over, is not offered it back.
    world.reject("question");
    assert_eq!(world.holder("question"), None);
}

#[test]
fn transfer_to_an_agent_offers_only_them_then_the_queue_if_they_decline() {
    let mut world = team();
    world.arrive(task("escalation", "chat", "support"));
    world.accept("escalation");

    world.transfer("escalation", Target::Agent(aid("cy")));
    assert_eq!(
        world.holder("escalation").as_deref(),
        Some("cy"),
        "not Bob, the better match"
    );

    world.reject("escalation");
    assert_eq!(world.holder("escalation").as_deref(), Some("bob"));
}

#[test]
fn transfer_checks_its_target() {
    let mut world = team();
    world.arrive(task("t", "chat", "support"));
    assert_eq!(
        world
            .engine
            .transfer(0, &tid("t"), Target::Queue(qid("nowhere"))),
        Err(EngineError::UnknownQueue(qid("nowhere")))
    );
    assert_eq!(
        world
            .engine
            .transfer(0, &tid("t"), Target::Agent(aid("nobody"))),
        Err(EngineError::UnknownAgent(aid("nobody")))
    );
    assert!(matches!(
        world.engine.complete(0, &tid("t")),
        Err(EngineError::InvalidState {
            action: "complete",
            state: "reserved",
            ..
        })
    ));
}

#[test]
fn the_offer_rechecks_eligibility_after_the_policy_ranked() {
    let mut world = team();
    world
        .arrive(task("call", "voice", "support"))
        .set_presence("ada", Presence::Offline);
    world.accept("call").complete("call"); // Bob took it; everyone is idle again
    world.set_presence("ada", Presence::Available);

    world
        .engine
        .enqueue(world.now, task("late", "voice", "support"))
        .unwrap();
    let request = world.engine.next_match(world.now).unwrap();
    assert_eq!(request.task_id, tid("late"));
    let ranked = default_rank(&request);
    assert_eq!(ranked, [aid("ada"), aid("bob"), aid("cy")]);

    // While the policy thought, Ada went on a break.
    world
        .engine
        .set_presence(
            world.now,
            &aid("ada"),
            Presence::Away {
                reason: "break".into(),
            },
        )
        .unwrap();
    let reservation = world
        .engine
        .offer(world.now, &tid("late"), &ranked)
        .unwrap()
        .unwrap();
    assert_eq!(reservation.agent, aid("bob"));
    world.engine.check_invariants();
}

#[test]
fn a_policy_that_passes_does_not_block_the_tasks_behind() {
    let mut world = team();
    world
        .set_presence("ada", Presence::Offline)
        .set_presence("cy", Presence::Offline);
    world.set_presence("bob", Presence::Offline);
    world.arrive(task("vip", "chat", "support").priority(10));
    world.arrive(task("normal", "chat", "support"));
    world
        .engine
        .set_presence(0, &aid("cy"), Presence::Available)
        .unwrap();

    // The policy keeps VIPs for senior agents: it ranks nobody.
    let request = world.engine.next_match(0).unwrap();
    assert_eq!(request.task_id, tid("vip"));
    assert_eq!(world.engine.offer(0, &tid("vip"), &[]).unwrap(), None);
    // Unknown ids in a ranking are ignored.
    let request = world.engine.next_match(0).unwrap();
    assert_eq!(request.task_id, tid("normal"));
    let offer = world
        .engine
        .offer(0, &tid("normal"), &[aid("ghost"), aid("cy")])
        .unwrap();
    assert_eq!(offer.unwrap().agent, aid("cy"));
    assert_eq!(world.engine.next_match(0), None);

    // When the candidates change (Ada comes in), the policy is asked about the VIP again.
    world
        .engine
        .set_presence(0, &aid("ada"), Presence::Available)
        .unwrap();
    let request = world.engine.next_match(0).unwrap();
    assert_eq!(request.task_id, tid("vip"));
    let agents: Vec<_> = request
        .candidates
        .iter()
        .map(|c| c.agent_id.clone())
        .collect();
    assert_eq!(agents, [aid("ada"), aid("cy")]);
    world.engine.check_invariants();
}

#[test]
fn candidates_describe_the_agents_for_the_policy() {
    let mut world = team();
    world
        .set_presence("ada", Presence::Offline)
        .set_presence("bob", Presence::Offline);
    world.arrive(task("chat-1", "chat", "support"));
    world.accept("chat-1");
    world.elapse(7 * SECOND);

    world
        .engine
        .enqueue(
            world.now,
            task("chat-2", "chat", "support").last_agent("cy"),
        )
        .unwrap();
    let request = world.engine.next_match(world.now).unwrap();
    assert_eq!(request.required_skills, [("support".to_string(), 1)]);
    let cy = &request.candidates[0];
    assert_eq!(cy.agent_id, aid("cy"));
    assert_eq!((cy.load, cy.capacity, cy.idle_ms), (25, 100, 7 * SECOND));
    assert!(cy.served_contact_last);
}

#[test]
fn the_default_order_is_skill_then_longest_idle_then_least_load() {
    let candidate = |id: &str, level: u8, idle_ms: u64, load: u32| Candidate {
        agent_id: aid(id),
        skills: vec![("billing".into(), level), ("sales".into(), 5)],
        idle_ms,
        load,
        capacity: 100,
        served_contact_last: false,
    };
    let request = MatchRequest {
        task_id: tid("t"),
        queue: qid("billing"),
        channel: "chat".into(),
        priority: 0,
        required_skills: vec![("billing".into(), 1)],
        contact_id: None,
        candidates: vec![
            candidate("busy-twin", 3, 9_000, 50),
            candidate("expert", 5, 0, 75),
            candidate("idle", 3, 60_000, 75),
            candidate("twin", 3, 9_000, 25),
        ],
    };
    // Sales is not required, so it does not count towards the match.
    assert_eq!(
        default_rank(&request),
        [aid("expert"), aid("idle"), aid("twin"), aid("busy-twin")]
    );
}

#[test]
fn after_an_agent_finishes_the_longest_idle_colleague_goes_first() {
    let mut world = World::default();
    world
        .add_queue(queue("support"))
        .add_agent(agent("ada"))
        .add_agent(agent("bob"));
    world
        .arrive(task("call-1", "voice", "support"))
        .accept("call-1"); // ada (by id)
    world.elapse(10 * SECOND);
    world
        .arrive(task("call-2", "voice", "support"))
        .accept("call-2"); // bob
    world.elapse(10 * SECOND).complete("call-2"); // bob idle since 20 s
    world.elapse(10 * SECOND).complete("call-1"); // ada idle since 30 s
    world.arrive(task("call-3", "voice", "support"));
    assert_eq!(world.holder("call-3").as_deref(), Some("bob"));
}
