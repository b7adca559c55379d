//! What agents may do with calls, as the calls API asks it: control a call they are
//! on (supervisors any call), dial out, transfer blind or warm, hear a recording of a
//! call they were on. The rules are here; the edge only parses and shapes answers.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_app::accounts::is_supervisor;
use switchboard_app::tasks::TransferRequest;
use switchboard_app::{App, AppError, AppResult, ErrorKind};
use switchboard_core::{HandoffContext, parse_identity_query};
use switchboard_store::Agent;

use crate::service::VoiceService;

/// A transfer of a call as the softphone asks for it.
#[derive(Debug, Clone, Default)]
pub struct CallTransfer {
    /// Blind: to this queue…
    pub queue: Option<String>,
    /// …or this agent; with `warm`, consult them first.
    pub agent_id: Option<String>,
    /// Consult the agent while the caller holds, then hand over.
    pub warm: bool,
    /// The hand-off context, as the client sent it.
    pub context: Option<Value>,
}

fn not_your_call() -> AppError {
    AppError::new(ErrorKind::Forbidden, "forbidden", "not your call")
}

fn no_task() -> AppError {
    AppError::new(
        ErrorKind::Conflict,
        "conflict",
        "the call has no task to transfer",
    )
}

fn transfer_request(
    queue: Option<String>,
    agent_id: Option<String>,
    context: Option<Value>,
) -> AppResult<TransferRequest> {
    let context = match context {
        Some(c) if !c.is_null() => Some(
            serde_json::from_value::<HandoffContext>(c)
                .map_err(|e| AppError::bad_request(format!("transfer: {e}")))?,
        ),
        _ => None,
    };
    Ok(TransferRequest {
        queue,
        agent_id,
        context,
    })
}

impl VoiceService {
    /// Refuses unless `agent` is on the live call `id` (or consulted about it), or
    /// is a supervisor.
    pub fn check_control(&self, agent: &Agent, id: &str) -> AppResult<()> {
        let (holder, consult) = self
            .call_agents(id)
            .ok_or_else(|| AppError::not_found("no live call with that id"))?;
        let mine = holder.as_deref() == Some(agent.id.as_str())
            || consult.as_deref() == Some(agent.id.as_str());
        if mine || is_supervisor(agent) {
            Ok(())
        } else {
            Err(not_your_call())
        }
    }

    /// An outbound call from `agent` to the number `to` through the trunk; with
    /// `contact_id`, the number must be one of that contact's so the call lands on
    /// their timeline. Returns the call as the softphone shows it.
    pub async fn dial_for(
        self: &Arc<Self>,
        agent: &Agent,
        to: &str,
        contact_id: Option<&str>,
    ) -> AppResult<Option<Value>> {
        let party = parse_identity_query(
            &format!("phone:{}", to.trim()),
            self.app().config.default_region.as_deref(),
        )
        .map_err(|e| AppError::bad_request(format!("to: {e}")))?;
        if let Some(contact) = contact_id {
            let c = self.app().store.contact(contact).await?;
            if !c.identities.iter().any(|i| i.value == party.value()) {
                return Err(AppError::bad_request("to: not a number of that contact"));
            }
        }
        if !self.calls_of_agent(&agent.id).is_empty() {
            return Err(AppError::new(
                ErrorKind::Conflict,
                "busy",
                "you are already on a call",
            ));
        }
        let id = crate::sip::dial(self, &agent.id, party).await?;
        Ok(self
            .calls_of_agent(&agent.id)
            .into_iter()
            .find(|c| c["id"] == id.as_str()))
    }

    /// Transfers call `id` on behalf of `agent`: blind to a queue or an agent (the
    /// caller waits with music), or warm (a consult first; the context travels when
    /// the transfer is completed).
    pub async fn transfer_for(&self, agent: &Agent, id: &str, t: CallTransfer) -> AppResult<Value> {
        self.check_control(agent, id)?;
        if t.warm {
            let target = t
                .agent_id
                .as_deref()
                .ok_or_else(|| AppError::bad_request("a warm transfer needs agent_id"))?;
            if t.queue.is_some() {
                return Err(AppError::bad_request(
                    "a warm transfer goes to an agent, not a queue",
                ));
            }
            self.app().store.agent(target).await?;
            // The context travels when the transfer is completed; keep it until then.
            self.set_pending_context(id, t.context.clone());
            return self.start_consult(id, target).await;
        }
        let task = self.call_task(id).ok_or_else(no_task)?;
        let request = transfer_request(t.queue, t.agent_id, t.context)?;
        let mut out = self.app().tasks.transfer(agent, &task, request).await?;
        // The caller waits with music for whoever routing finds.
        self.before_transfer(id).await;
        out["call"] = json!(self.call_view(id));
        Ok(out)
    }

    /// Completes a warm transfer: the task goes to the consulted agent with the
    /// context.
    pub async fn complete_transfer_for(&self, agent: &Agent, id: &str) -> AppResult<Value> {
        self.check_control(agent, id)?;
        let task = self.call_task(id).ok_or_else(no_task)?;
        let context = self.take_pending_context(id);
        let target = self.complete_consult(id).await?;
        let request = transfer_request(None, Some(target), context)?;
        let mut out = self.app().tasks.transfer(agent, &task, request).await?;
        out["call"] = json!(self.call_view(id));
        Ok(out)
    }

    /// Cancels a warm transfer: the caller is given back.
    pub async fn cancel_transfer_for(&self, agent: &Agent, id: &str) -> AppResult<Value> {
        self.check_control(agent, id)?;
        self.cancel_consult(id).await
    }
}

/// The WAV recording of call `id`, for the agents who were on it and for
/// supervisors (also when voice is not running on this host, and on a cluster
/// from any node: [`switchboard_app::recordings`]).
pub async fn recording(app: &App, agent: &Agent, id: &str) -> AppResult<Vec<u8>> {
    let record = app.store.call(id).await?;
    let on_it = record.agent_id.as_deref() == Some(agent.id.as_str())
        || record.detail["agents"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == agent.id.as_str()));
    if !on_it && !is_supervisor(agent) {
        return Err(not_your_call());
    }
    app.recordings.read(&record).await
}
