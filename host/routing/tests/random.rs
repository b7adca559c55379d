//! Property-style: thousands of random inputs — arrivals, answers, presence changes,
//! transfers, reconfiguration, restarts, policies that rank badly — and after every one
//! the invariants hold, no task is ever assigned twice, and the run is reproducible.

mod common;

use std::collections::BTreeSet;

use common::*;
use switchboard_routing::{
    Agent, AgentId, Aging, Engine, EngineConfig, EngineError, MatchRequest, NewTask, Output,
    Presence, Queue, ReservationId, RoutingStep, Target, TaskId, TaskState, default_rank,
};

/// splitmix64: small, seedable, good enough to pick inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len() as u64) as usize])
        }
    }
}

const AGENTS: [&str; 6] = ["ada", "bob", "cy", "dee", "eve", "fay"];
const QUEUES: [&str; 3] = ["voice", "chat", "backoffice"];
const CHANNELS: [&str; 6] = ["voice", "chat", "email", "sms", "whatsapp", "fax"];
const SKILLS: [&str; 3] = ["billing", "sales", "tech"];

fn random_agent(rng: &mut Rng, id: &str) -> Agent {
    let mut agent = agent(id);
    for skill in SKILLS {
        if rng.chance(60) {
            agent.skills.push((skill.into(), 1 + rng.below(5) as u8));
        }
    }
    agent.capacity.total = [50, 100, 100, 100, 150, 200][rng.below(6) as usize];
    agent.presence = random_presence(rng);
    agent
}

fn random_presence(rng: &mut Rng) -> Presence {
    match rng.below(4) {
        0 => Presence::Offline,
        1 => Presence::Away {
            reason: "break".into(),
        },
        _ => Presence::Available,
    }
}

fn random_queue(rng: &mut Rng, id: &str) -> Queue {
    let mut q = queue(id).priority(rng.below(20) as i32 - 5);
    if rng.chance(70) {
        q = q.skill(rng.pick(&SKILLS).unwrap(), 1 + rng.below(5) as u8);
    }
    if rng.chance(50) {
        q = q.widen_after(1 + rng.below(60_000), 1 + rng.below(3) as u8);
    }
    if rng.chance(40) {
        let to = *rng.pick(&QUEUES).unwrap();
        if to != id {
            q.steps.push(RoutingStep {
                after_ms: 1 + rng.below(200_000),
                min_proficiency: None,
                overflow_queue: Some(to.into()),
            });
        }
    }
    q
}

/// A routing policy that is sometimes sensible and sometimes not.
fn random_rank(rng: &mut Rng, request: &MatchRequest) -> Vec<AgentId> {
    let mut ranked = default_rank(request);
    match rng.below(10) {
        0 => ranked.clear(),
        1 => ranked.reverse(),
        2 => ranked.insert(0, "ghost".into()),
        3 => ranked.push((*rng.pick(&AGENTS).unwrap()).into()),
        _ => {}
    }
    ranked
}

fn allowed(result: Result<(), EngineError>) {
    match result {
        Ok(())
        | Err(EngineError::InvalidState { .. })
        | Err(EngineError::UnknownTask(_))
        | Err(EngineError::UnknownReservation(_))
        | Err(EngineError::DuplicateTask(_))
        | Err(EngineError::OverCapacity { .. }) => {}
        Err(other) => panic!("unexpected refusal: {other}"),
    }
}

/// Plays `steps` random inputs and returns the output log as JSON lines.
fn play(seed: u64, steps: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let config = EngineConfig {
        aging: rng.chance(50).then_some(Aging {
            every_ms: 5_000,
            step: 1,
        }),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config.clone());
    let mut now = 0;
    for id in QUEUES {
        engine
            .upsert_queue(now, random_queue(&mut rng, id))
            .unwrap();
    }
    for id in AGENTS {
        engine
            .upsert_agent(now, random_agent(&mut rng, id))
            .unwrap();
    }

    let mut log = Vec::new();
    // Tasks currently assigned or wrapping, according to the outputs alone.
    let mut handled: BTreeSet<TaskId> = BTreeSet::new();
    let mut next_task = 0;

    for _ in 0..steps {
        let live_tasks: Vec<TaskId> = engine.tasks().map(|t| t.id.clone()).collect();
        let in_hand: Vec<TaskId> = handled.iter().cloned().collect();
        let offers: Vec<ReservationId> = engine.reservations().map(|r| r.id.clone()).collect();
        let some_agent = AgentId::from(*rng.pick(&AGENTS).unwrap());
        match rng.below(100) {
            0..=17 => {
                next_task += 1;
                let id = if rng.chance(3) && next_task > 1 {
                    format!("t{}", rng.below(next_task)) // maybe a duplicate
                } else {
                    format!("t{next_task}")
                };
                let mut new = NewTask::new(
                    id,
                    *rng.pick(&CHANNELS).unwrap(),
                    *rng.pick(&QUEUES).unwrap(),
                );
                new.priority = rng.below(10) as i32;
                if rng.chance(30) {
                    new.required_skills
                        .push(((*rng.pick(&SKILLS).unwrap()).into(), 1 + rng.below(3) as u8));
                }
                if rng.chance(20) {
                    new.last_agent = Some(some_agent.clone());
                }
                allowed(engine.enqueue(now, new));
            }
            18..=39 => {
                if let Some(r) = rng.pick(&offers) {
                    allowed(engine.accept(now, r));
                } else {
                    allowed(engine.accept(now, &"t0#9".into()));
                }
            }
            40..=46 => {
                if let Some(r) = rng.pick(&offers) {
                    allowed(engine.reject(now, r));
                }
            }
            47..=53 => {
                if let Some(t) = rng.pick(&live_tasks) {
                    allowed(engine.wrap_up(now, t));
                }
            }
            54..=64 => {
                let from = if rng.chance(80) {
                    &in_hand
                } else {
                    &live_tasks
                };
                if let Some(t) = rng.pick(from) {
                    allowed(engine.complete(now, t));
                }
            }
            65..=68 => {
                if let Some(t) = rng.pick(&live_tasks) {
                    allowed(engine.cancel(now, t));
                }
            }
            69..=72 => {
                if let Some(t) = rng.pick(&live_tasks) {
                    let target = if rng.chance(50) {
                        Target::Queue((*rng.pick(&QUEUES).unwrap()).into())
                    } else {
                        Target::Agent(some_agent.clone())
                    };
                    allowed(engine.transfer(now, t, target));
                }
            }
            73..=81 => {
                let presence = random_presence(&mut rng);
                engine.set_presence(now, &some_agent, presence).unwrap();
            }
            82..=84 => {
                let agent = random_agent(&mut rng, some_agent.as_str());
                allowed(engine.upsert_agent(now, agent));
            }
            85 => {
                let id = *rng.pick(&QUEUES).unwrap();
                engine
                    .upsert_queue(now, random_queue(&mut rng, id))
                    .unwrap();
            }
            86..=97 => {
                let until = now + rng.below(20_000);
                while let Some(at) = engine.poll_timeout().filter(|&at| at <= until) {
                    assert!(at >= now, "a timer in the past");
                    now = at;
                    engine.handle_timeout(now);
                    engine.check_invariants();
                    engine.route_all(now, |r| random_rank(&mut rng, r));
                }
                now = until;
                engine.handle_timeout(now);
            }
            _ => {
                // Restart from the rows the host would have persisted.
                let queues = serde_json::to_string(&engine.queues().collect::<Vec<_>>()).unwrap();
                let agents = serde_json::to_string(&engine.agents().collect::<Vec<_>>()).unwrap();
                let tasks = serde_json::to_string(&engine.tasks().collect::<Vec<_>>()).unwrap();
                let reservations =
                    serde_json::to_string(&engine.reservations().collect::<Vec<_>>()).unwrap();
                while let Some(output) = engine.poll_output() {
                    observe(&mut handled, &output);
                    log.push(serde_json::to_string(&output).unwrap());
                }
                now += rng.below(30_000);
                engine = Engine::restore(
                    config.clone(),
                    serde_json::from_str(&queues).unwrap(),
                    serde_json::from_str(&agents).unwrap(),
                    serde_json::from_str(&tasks).unwrap(),
                    serde_json::from_str(&reservations).unwrap(),
                    now,
                )
                .expect("rows from a consistent engine restore");
            }
        }
        engine.check_invariants();

        // The host routes after every input, with a policy of varying quality.
        while let Some(request) = engine.next_match(now) {
            assert!(!request.candidates.is_empty());
            let ranked = random_rank(&mut rng, &request);
            engine.offer(now, &request.task_id, &ranked).unwrap();
            engine.check_invariants();
        }
        while let Some(output) = engine.poll_output() {
            observe(&mut handled, &output);
            log.push(serde_json::to_string(&output).unwrap());
        }
        for task in engine.tasks() {
            let in_hand = matches!(
                task.state,
                TaskState::Assigned { .. } | TaskState::Wrapping { .. }
            );
            assert_eq!(in_hand, handled.contains(&task.id), "task {}", task.id);
        }
    }
    log
}

/// Follows assignments through the outputs: a task is never assigned while assigned.
fn observe(handled: &mut BTreeSet<TaskId>, output: &Output) {
    match output {
        Output::TaskAssigned { task, .. } => {
            assert!(handled.insert(task.clone()), "task {task} assigned twice");
        }
        Output::TaskCompleted { task, .. }
        | Output::TaskCanceled { task }
        | Output::TaskTransferred { task, .. } => {
            handled.remove(task);
        }
        _ => {}
    }
}

#[test]
fn thousands_of_random_inputs_never_break_an_invariant() {
    let mut seen = BTreeSet::new();
    for seed in [1, 2, 3, 0xC0FFEE, 20_260_101] {
        let log = play(seed, 4_000);
        let assigned = log.iter().filter(|l| l.contains("task_assigned")).count();
        assert!(assigned > 50, "seed {seed}: too little happened");
        for line in log {
            let output: serde_json::Value = serde_json::from_str(&line).unwrap();
            seen.insert(output["event"].as_str().unwrap().to_owned());
        }
    }
    // Every kind of event happened somewhere along the way.
    let kinds = [
        "task_queued",
        "offered",
        "reservation_accepted",
        "reservation_rejected",
        "reservation_expired",
        "reservation_canceled",
        "task_assigned",
        "task_wrapping",
        "task_completed",
        "task_canceled",
        "task_overflowed",
        "task_transferred",
        "agent_set_away",
    ];
    for kind in kinds {
        assert!(seen.contains(kind), "no {kind} in any run");
    }
}

#[test]
fn the_same_inputs_make_the_same_decisions() {
    assert_eq!(play(7, 1_500), play(7, 1_500));
}
