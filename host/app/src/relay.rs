//! Routing commands from a follower to the routing leader, over NATS request/reply.
//!
//! Only the leader has a routing engine (see `routing`). When a person's command
//! (presence, profile, queues, offers, accept, reject, wrap-up/complete, transfer)
//! reaches a follower, [`crate::tasks::Tasks`] sends it here as a [`TaskCommand`]
//! with the acting agent's id; the follower looks the leader up in the database
//! (`routing_leader`) and asks it on `{prefix}.routing.{leader}`. The leader
//! answers every request on its own subject by running (through [`Runner`]) the same `Tasks` method for
//! the same agent, so the answer — value or error, with its kind and code — is the
//! one the API gives on the leader. A node that receives a request but no longer
//! leads answers `routing_follower`; the follower then reads the leader again and
//! asks once more. No leader answering within the timeout is `routing_unavailable`
//! (503): a takeover is under way.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::HandoffContext;
use switchboard_routing::{CapacityProfile, Queue};
use switchboard_store::{Agent, Store};

use crate::error::{AppError, AppResult, ErrorKind};

/// How long a follower waits for the leader's answer.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// A person's routing command, as a follower hands it to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum TaskCommand {
    /// Every queue with its statistics.
    Queues,
    /// Creates or replaces a queue.
    SaveQueue {
        /// The queue.
        queue: Queue,
    },
    /// One queue's statistics.
    QueueStats {
        /// Queue id.
        id: String,
    },
    /// Sets an agent's presence.
    SetPresence {
        /// Agent id (`me` works).
        id: String,
        /// `available`, `away`, `offline`.
        status: String,
        /// Why away.
        reason: Option<String>,
    },
    /// Sets an agent's skills and capacity.
    SetProfile {
        /// Agent id.
        id: String,
        /// Skills and proficiencies.
        skills: Option<Vec<(String, u8)>>,
        /// Capacity profile.
        capacity: Option<CapacityProfile>,
    },
    /// An agent's pending offers.
    Offers {
        /// Agent id (`me` works).
        id: String,
    },
    /// Accepts an offer.
    Accept {
        /// Reservation id.
        reservation: String,
    },
    /// Rejects an offer.
    Reject {
        /// Reservation id.
        reservation: String,
    },
    /// Wraps up or completes a task.
    Finish {
        /// Task id.
        id: String,
        /// Wrap up (else complete).
        wrap: bool,
    },
    /// Transfers a task.
    Transfer {
        /// Task id.
        id: String,
        /// To this queue…
        queue: Option<String>,
        /// …or this agent.
        agent_id: Option<String>,
        /// The warm hand-off.
        context: Option<HandoffContext>,
    },
}

/// What the host's own services (desk, supervision, webchat) read from or ask of
/// the leader's engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "snake_case")]
pub enum RoutingQuery {
    /// The tasks an agent holds.
    HeldBy {
        /// Agent id.
        agent: String,
    },
    /// The live task of a conversation.
    TaskOfConversation {
        /// Conversation id.
        conversation: String,
    },
    /// The wallboard.
    Board,
    /// Every queue with its statistics.
    Queues,
    /// Completes a task if it is still live (a resolve).
    CompleteTask {
        /// Task id.
        task: String,
    },
    /// Sets an agent offline (they were disabled).
    SetOffline {
        /// Agent id.
        agent: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// The agent acting (`None` for commands that name no actor: queues, profiles).
    actor: Option<String>,
    #[serde(flatten)]
    asked: Asked,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Asked {
    Command(TaskCommand),
    Query(RoutingQuery),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
enum Answer {
    Ok {
        value: Value,
    },
    Err {
        kind: ErrorKind,
        code: String,
        message: String,
    },
}

impl Answer {
    fn of(result: AppResult<Value>) -> Answer {
        match result {
            Ok(value) => Answer::Ok { value },
            Err(e) => Answer::Err {
                kind: e.kind(),
                code: e.code().to_string(),
                message: e.message().to_string(),
            },
        }
    }

    fn into_result(self) -> AppResult<Value> {
        match self {
            Answer::Ok { value } => Ok(value),
            Answer::Err {
                kind,
                code,
                message,
            } => Err(AppError::new(kind, intern(code), message)),
        }
    }
}

/// Error codes are `&'static str`; those that come back over the wire are kept once
/// each (a small, fixed set in practice).
fn intern(code: String) -> &'static str {
    static CODES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut codes = CODES.lock().expect("codes");
    let codes = codes.get_or_insert_with(HashSet::new);
    if let Some(known) = codes.get(code.as_str()) {
        return known;
    }
    if codes.len() >= 1024 {
        return "relayed_error";
    }
    let leaked: &'static str = Box::leak(code.into_boxed_str());
    codes.insert(leaked);
    leaked
}

/// What runs relayed commands on the leader (`crate::tasks::Tasks`).
pub trait Runner: Send + Sync + 'static {
    /// Whether this node leads routing now.
    fn leads(&self) -> bool;

    /// Runs `command` here for `actor`.
    fn run<'a>(
        &'a self,
        actor: Option<&'a Agent>,
        command: TaskCommand,
    ) -> futures::future::BoxFuture<'a, AppResult<Value>>;

    /// Answers `query` from this node's engine.
    fn query(&self, query: RoutingQuery) -> futures::future::BoxFuture<'_, AppResult<Value>>;
}

/// A node's side of the relay: asks the leader, and answers as the leader.
pub struct Relay {
    client: async_nats::Client,
    prefix: String,
    node: String,
    store: Store,
}

/// The NATS subject of `node`'s routing requests.
fn subject(prefix: &str, node: &str) -> String {
    let token: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}.routing.{token}")
}

impl Relay {
    /// Connects to NATS at `url` as `node`; subjects start with `prefix`.
    pub async fn connect(url: &str, prefix: &str, node: &str, store: Store) -> AppResult<Relay> {
        // A NATS that does not answer yet does not stop the node: the client
        // connects in the background, and relayed commands answer
        // `routing_unavailable` until it does.
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| {
                AppError::new(
                    ErrorKind::Unavailable,
                    "nats_unavailable",
                    format!("routing relay: NATS at {url}: {e}"),
                )
            })?;
        Ok(Relay {
            client,
            prefix: prefix.to_string(),
            node: node.to_string(),
            store,
        })
    }

    /// Asks the routing leader to run `command` for `actor`.
    pub async fn ask(&self, actor: Option<&Agent>, command: TaskCommand) -> AppResult<Value> {
        self.send(Request {
            actor: actor.map(|a| a.id.clone()),
            asked: Asked::Command(command),
        })
        .await
    }

    /// Asks the routing leader's engine `query`.
    pub async fn query(&self, query: RoutingQuery) -> AppResult<Value> {
        self.send(Request {
            actor: None,
            asked: Asked::Query(query),
        })
        .await
    }

    async fn send(&self, request: Request) -> AppResult<Value> {
        let payload = serde_json::to_vec(&request).map_err(AppError::internal)?;
        let mut last = None;
        for _ in 0..2 {
            let leader = self.store.routing_leader().await?;
            if leader.node.is_empty() || leader.node == self.node {
                return Err(unavailable("no other node leads routing right now"));
            }
            let asked = tokio::time::timeout(
                RELAY_TIMEOUT,
                self.client
                    .request(subject(&self.prefix, &leader.node), payload.clone().into()),
            )
            .await;
            let reply = match asked {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => {
                    last = Some(unavailable(&format!("the leader did not answer: {e}")));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(_) => return Err(unavailable("the leader did not answer in time")),
            };
            let answer: Answer = serde_json::from_slice(&reply.payload)
                .map_err(|e| AppError::internal(format!("routing relay answer: {e}")))?;
            match answer.into_result() {
                Err(e) if e.code() == "routing_follower" => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| unavailable("no leader")))
    }

    /// Answers the requests sent to this node, for as long as the process runs.
    pub async fn serve(self: Arc<Self>, tasks: Arc<dyn Runner>) {
        let mut requests = match self
            .client
            .subscribe(subject(&self.prefix, &self.node))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(node = %self.node, "routing relay cannot subscribe: {e}");
                return;
            }
        };
        while let Some(message) = requests.next().await {
            let Some(reply_to) = message.reply.clone() else {
                continue;
            };
            let (me, tasks) = (self.clone(), tasks.clone());
            tokio::spawn(async move {
                let answer = Answer::of(me.run(&tasks, &message.payload).await);
                let body = serde_json::to_vec(&answer).unwrap_or_default();
                if let Err(e) = me.client.publish(reply_to, body.into()).await {
                    tracing::warn!("routing relay: answer not sent: {e}");
                }
            });
        }
    }

    async fn run(&self, tasks: &Arc<dyn Runner>, payload: &[u8]) -> AppResult<Value> {
        let request: Request = serde_json::from_slice(payload)
            .map_err(|e| AppError::bad_request(format!("routing relay request: {e}")))?;
        if !tasks.leads() {
            return Err(follower());
        }
        let actor = match &request.actor {
            Some(id) => Some(self.store.agent(id).await?),
            None => None,
        };
        match request.asked {
            Asked::Command(command) => tasks.run(actor.as_ref(), command).await,
            Asked::Query(query) => tasks.query(query).await,
        }
    }
}

/// An API request one node hands to another (the node that carries the call it
/// names). The receiving node runs it through its own router, authentication
/// included, so the answer is the one that node's API gives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardedRequest {
    /// `POST`…
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The headers that matter to the API (authorization, content type, accept).
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: String,
}

/// The answer to a [`ForwardedRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardedResponse {
    /// HTTP status.
    pub status: u16,
    /// Content type and the like.
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: String,
}

/// What runs a forwarded API request on this node (the HTTP edge's router).
pub trait HttpRunner: Send + Sync + 'static {
    /// Runs it.
    fn run(
        &self,
        request: ForwardedRequest,
    ) -> futures::future::BoxFuture<'static, ForwardedResponse>;
}

impl Relay {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Hands an API request to `node` and gives its answer.
    pub async fn forward(
        &self,
        node: &str,
        request: ForwardedRequest,
    ) -> AppResult<ForwardedResponse> {
        let payload = serde_json::to_vec(&request).map_err(AppError::internal)?;
        let subject = http_subject(&self.prefix, node);
        let reply =
            tokio::time::timeout(RELAY_TIMEOUT, self.client.request(subject, payload.into()))
                .await
                .map_err(|_| node_unavailable(node, "no answer in time"))?
                .map_err(|e| node_unavailable(node, &e.to_string()))?;
        serde_json::from_slice(&reply.payload)
            .map_err(|e| AppError::internal(format!("forwarded answer: {e}")))
    }

    /// Answers the API requests other nodes forward to this one, for as long as
    /// the process runs.
    pub async fn serve_http(self: Arc<Self>, runner: Arc<dyn HttpRunner>) {
        let subject = http_subject(&self.prefix, &self.node);
        let mut requests = match self.client.subscribe(subject).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(node = %self.node, "forwarded requests: cannot subscribe: {e}");
                return;
            }
        };
        while let Some(message) = requests.next().await {
            let Some(reply_to) = message.reply.clone() else {
                continue;
            };
            let (me, runner) = (self.clone(), runner.clone());
            tokio::spawn(async move {
                let answer = match serde_json::from_slice::<ForwardedRequest>(&message.payload) {
                    Ok(request) => runner.run(request).await,
                    Err(e) => ForwardedResponse {
                        status: 400,
                        headers: vec![],
                        body: base64_of(format!("not a forwarded request: {e}").as_bytes()),
                    },
                };
                let body = serde_json::to_vec(&answer).unwrap_or_default();
                if let Err(e) = me.client.publish(reply_to, body.into()).await {
                    tracing::warn!("forwarded request: answer not sent: {e}");
                }
            });
        }
    }
}

/// Bytes as the forwarded messages carry them.
pub fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes from a forwarded message (empty when not base64).
pub fn bytes_of(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

fn http_subject(prefix: &str, node: &str) -> String {
    subject(prefix, node).replacen(".routing.", ".http.", 1)
}

fn node_unavailable(node: &str, why: &str) -> AppError {
    AppError::new(
        ErrorKind::Unavailable,
        "node_unavailable",
        format!("node {node}, which carries this call, did not answer: {why}; retry shortly"),
    )
}

fn unavailable(why: &str) -> AppError {
    AppError::new(
        ErrorKind::Unavailable,
        "routing_unavailable",
        format!("routing leader unreachable: {why}; retry shortly"),
    )
}

/// The answer of a node that does not lead routing.
pub fn follower() -> AppError {
    AppError::new(
        ErrorKind::Unavailable,
        "routing_follower",
        "another node leads routing; retry, or send this to the leader",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_and_an_error_cross_the_wire_unchanged() {
        let request = Request {
            actor: Some("agent-1".into()),
            asked: Asked::Command(TaskCommand::SetPresence {
                id: "me".into(),
                status: "away".into(),
                reason: Some("lunch".into()),
            }),
        };
        let wire = serde_json::to_vec(&request).expect("encode");
        let back: Request = serde_json::from_slice(&wire).expect("decode");
        assert_eq!(back.actor.as_deref(), Some("agent-1"));
        assert!(matches!(
            back.asked,
            Asked::Command(TaskCommand::SetPresence { ref status, ref reason, .. })
                if status == "away" && reason.as_deref() == Some("lunch")
        ));

        let refused = Answer::of(Err(AppError::forbidden("this offer is for another agent")));
        let wire = serde_json::to_vec(&refused).expect("encode");
        let back: Answer = serde_json::from_slice(&wire).expect("decode");
        let e = back.into_result().expect_err("an error");
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert_eq!(e.code(), AppError::forbidden("x").code());
        assert_eq!(e.message(), "this offer is for another agent");
    }

    #[test]
    fn a_query_is_not_taken_for_a_command() {
        let request = Request {
            actor: None,
            asked: Asked::Query(RoutingQuery::HeldBy {
                agent: "agent-1".into(),
            }),
        };
        let wire = serde_json::to_vec(&request).expect("encode");
        let back: Request = serde_json::from_slice(&wire).expect("decode");
        assert!(
            matches!(back.asked, Asked::Query(RoutingQuery::HeldBy { ref agent }) if agent == "agent-1")
        );
        let queues = Request {
            actor: None,
            asked: Asked::Command(TaskCommand::Queues),
        };
        let back: Request =
            serde_json::from_slice(&serde_json::to_vec(&queues).expect("encode")).expect("decode");
        assert!(matches!(back.asked, Asked::Command(TaskCommand::Queues)));
    }

    #[test]
    fn node_names_make_one_subject_token() {
        assert_eq!(
            subject("switchboard", "host.example.com:8080"),
            "switchboard.routing.host_example_com_8080"
        );
    }
}
