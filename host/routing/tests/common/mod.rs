//! A small world for routing stories: builders for queues, agents and tasks, and a
//! `World` that plays the host — feeds inputs on virtual time, routes with the default
//! ranking after every input, records outputs and checks the invariants each time.
#![allow(dead_code)]

use switchboard_routing::{
    Agent, AgentId, Aging, Engine, EngineConfig, NewTask, Output, Presence, Queue, QueueId,
    QueueStats, ReservationId, RoutingStep, Target, TaskId, TaskState, default_rank,
};

pub const SECOND: u64 = 1_000;

pub fn queue(id: &str) -> Queue {
    Queue::new(id, id)
}

pub trait QueueExt {
    fn skill(self, skill: &str, min: u8) -> Self;
    fn priority(self, priority: i32) -> Self;
    fn sla(self, ms: u64) -> Self;
    fn widen_after(self, after_ms: u64, min: u8) -> Self;
    fn overflow_after(self, after_ms: u64, to: &str) -> Self;
}

impl QueueExt for Queue {
    fn skill(mut self, skill: &str, min: u8) -> Self {
        self.required_skills.push((skill.into(), min));
        self
    }
    fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    fn sla(mut self, ms: u64) -> Self {
        self.sla_target_ms = ms;
        self
    }
    fn widen_after(mut self, after_ms: u64, min: u8) -> Self {
        self.steps.push(RoutingStep {
            after_ms,
            min_proficiency: Some(min),
            overflow_queue: None,
        });
        self
    }
    fn overflow_after(mut self, after_ms: u64, to: &str) -> Self {
        self.steps.push(RoutingStep {
            after_ms,
            min_proficiency: None,
            overflow_queue: Some(to.into()),
        });
        self
    }
}

/// An available agent with the default capacity.
pub fn agent(id: &str) -> Agent {
    let mut agent = Agent::new(id);
    agent.presence = Presence::Available;
    agent
}

pub trait AgentExt {
    fn skill(self, skill: &str, level: u8) -> Self;
    fn capacity(self, total: u32) -> Self;
    fn presence(self, presence: Presence) -> Self;
}

impl AgentExt for Agent {
    fn skill(mut self, skill: &str, level: u8) -> Self {
        self.skills.push((skill.into(), level));
        self
    }
    fn capacity(mut self, total: u32) -> Self {
        self.capacity.total = total;
        self
    }
    fn presence(mut self, presence: Presence) -> Self {
        self.presence = presence;
        self
    }
}

pub fn task(id: &str, channel: &str, queue: &str) -> NewTask {
    NewTask::new(id, channel, queue)
}

pub trait TaskExt {
    fn priority(self, priority: i32) -> Self;
    fn skill(self, skill: &str, min: u8) -> Self;
    fn last_agent(self, agent: &str) -> Self;
}

impl TaskExt for NewTask {
    fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    fn skill(mut self, skill: &str, min: u8) -> Self {
        self.required_skills.push((skill.into(), min));
        self
    }
    fn last_agent(mut self, agent: &str) -> Self {
        self.last_agent = Some(agent.into());
        self
    }
}

pub fn aging(every_ms: u64, step: u32) -> EngineConfig {
    EngineConfig {
        aging: Some(Aging { every_ms, step }),
        ..EngineConfig::default()
    }
}

pub fn tid(id: &str) -> TaskId {
    id.into()
}

pub fn aid(id: &str) -> AgentId {
    id.into()
}

pub fn qid(id: &str) -> QueueId {
    id.into()
}

/// Plays the host on virtual time.
pub struct World {
    pub engine: Engine,
    pub now: u64,
    /// Every output so far, in order.
    pub log: Vec<Output>,
}

impl Default for World {
    fn default() -> Self {
        World::new(EngineConfig::default())
    }
}

impl World {
    pub fn new(config: EngineConfig) -> World {
        World {
            engine: Engine::new(config),
            now: 0,
            log: Vec::new(),
        }
    }

    /// Wraps an engine that already exists (e.g. restored), draining its outputs.
    pub fn from_engine(engine: Engine, now: u64) -> World {
        let mut world = World {
            engine,
            now,
            log: Vec::new(),
        };
        world.settle();
        world
    }

    pub fn add_queue(&mut self, queue: Queue) -> &mut Self {
        self.engine.upsert_queue(self.now, queue).unwrap();
        self.settle();
        self
    }

    pub fn add_agent(&mut self, agent: Agent) -> &mut Self {
        self.engine.upsert_agent(self.now, agent).unwrap();
        self.settle();
        self
    }

    pub fn arrive(&mut self, task: NewTask) -> &mut Self {
        self.engine.enqueue(self.now, task).unwrap();
        self.settle();
        self
    }

    /// Lets time pass, firing every timer on the way at its own instant.
    pub fn elapse(&mut self, ms: u64) -> &mut Self {
        self.run_until(self.now + ms)
    }

    pub fn run_until(&mut self, until: u64) -> &mut Self {
        while let Some(at) = self.engine.poll_timeout().filter(|&at| at <= until) {
            self.now = at;
            self.engine.handle_timeout(at);
            self.settle();
        }
        self.now = until;
        self.engine.handle_timeout(until);
        self.settle();
        self
    }

    /// What the host does after every input: match, drain outputs; here also check
    /// the invariants.
    pub fn settle(&mut self) {
        self.engine.route_all(self.now, default_rank);
        while let Some(output) = self.engine.poll_output() {
            self.log.push(output);
        }
        self.engine.check_invariants();
    }

    pub fn reservation_of(&self, task: &str) -> ReservationId {
        match &self.engine.task(&tid(task)).expect("live task").state {
            TaskState::Reserved { reservation } => reservation.clone(),
            other => panic!("task {task} is {} rather than offered", other.name()),
        }
    }

    pub fn accept(&mut self, task: &str) -> &mut Self {
        let reservation = self.reservation_of(task);
        self.engine.accept(self.now, &reservation).unwrap();
        self.settle();
        self
    }

    pub fn reject(&mut self, task: &str) -> &mut Self {
        let reservation = self.reservation_of(task);
        self.engine.reject(self.now, &reservation).unwrap();
        self.settle();
        self
    }

    pub fn wrap_up(&mut self, task: &str) -> &mut Self {
        self.engine.wrap_up(self.now, &tid(task)).unwrap();
        self.settle();
        self
    }

    pub fn complete(&mut self, task: &str) -> &mut Self {
        self.engine.complete(self.now, &tid(task)).unwrap();
        self.settle();
        self
    }

    pub fn cancel(&mut self, task: &str) -> &mut Self {
        self.engine.cancel(self.now, &tid(task)).unwrap();
        self.settle();
        self
    }

    pub fn transfer(&mut self, task: &str, target: Target) -> &mut Self {
        self.engine.transfer(self.now, &tid(task), target).unwrap();
        self.settle();
        self
    }

    pub fn set_presence(&mut self, agent: &str, presence: Presence) -> &mut Self {
        self.engine
            .set_presence(self.now, &aid(agent), presence)
            .unwrap();
        self.settle();
        self
    }

    /// The tasks currently offered to an agent, by task id.
    pub fn offers_to(&self, agent: &str) -> Vec<String> {
        self.engine
            .reservations_of(&aid(agent))
            .into_iter()
            .map(|r| r.task.to_string())
            .collect()
    }

    /// Who holds a task (offered, assigned or wrapping), if anyone.
    pub fn holder(&self, task: &str) -> Option<String> {
        self.engine.holder(&tid(task)).map(|a| a.to_string())
    }

    pub fn state(&self, task: &str) -> &'static str {
        self.engine
            .task(&tid(task))
            .map_or("gone", |t| t.state.name())
    }

    pub fn load(&self, agent: &str) -> u32 {
        self.engine.agent_load(&aid(agent)).unwrap()
    }

    pub fn presence(&self, agent: &str) -> Presence {
        self.engine.agent(&aid(agent)).unwrap().presence.clone()
    }

    pub fn stats(&self, queue: &str) -> QueueStats {
        self.engine.queue_stats(self.now, &qid(queue)).unwrap()
    }

    /// Offered tasks in the order they were offered, as `task->agent`.
    pub fn offer_log(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Offered { reservation } => {
                    Some(format!("{}->{}", reservation.task, reservation.agent))
                }
                _ => None,
            })
            .collect()
    }
}
