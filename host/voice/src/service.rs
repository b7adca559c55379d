//! The voice service: live calls, their media tasks, bridging to agents' WebRTC
//! sessions, transfers and call records. The SIP user agent ([`crate::sip`]) drives
//! it; [`crate::startup`] binds the sockets and starts it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use switchboard_core::{Direction, Identity, parse_identity_query};
use switchboard_media::webrtc::{SessionId, WebRtcEndpoint, WebRtcEvent};
use switchboard_media::{Codec, tones, wav};
use switchboard_store::{
    CallRecord, CallSave, CallStarted, IngestBatch, IngestEvent, IngestOutcome,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::media::{self, AgentSink, MediaCommand, MediaCounters, MediaSetup, Prompt};
use crate::ua::{self, SipLeg, UaState};
use switchboard_app::desk::CallObserver;
use switchboard_app::{App, AppError, Audience, Delivery, now_ms};
use switchboard_plugin_host::BoxFuture;

/// The channel name of calls (tasks, timeline events, queues).
pub const VOICE: &str = "voice";

/// Voice settings.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// SIP over UDP and TCP (`SWITCHBOARD_SIP_ADDR`, default `0.0.0.0:5060`).
    pub sip_addr: SocketAddr,
    /// SIP over TLS, when configured: address, certificate chain and key (PEM files).
    pub tls: Option<(SocketAddr, PathBuf, PathBuf)>,
    /// The RTP port range of the SIP legs (`SWITCHBOARD_RTP_PORTS`, e.g. `20000-20999`).
    pub rtp_ports: (u16, u16),
    /// The UDP address of the ICE-lite WebRTC endpoint (`SWITCHBOARD_WEBRTC_ADDR`).
    pub webrtc_addr: SocketAddr,
    /// The address written in SDP and Contact headers (the host's reachable IP);
    /// default: the SIP address, or 127.0.0.1 when that is unspecified.
    pub public_ip: Option<IpAddr>,
    /// Record every answered call (stereo WAV: caller left, agent right).
    pub record_calls: bool,
    /// The SIP domain and digest realm of desk phones.
    pub realm: String,
    /// A caller silent this long (no RTP, not on hold) is hung up: their phone or
    /// network is gone and would otherwise hold an agent forever.
    pub rtp_timeout: Duration,
    /// SIP requests a second one source address other than a trunk may send, and its
    /// burst; beyond them requests are answered 503 (`0`: no limit).
    pub source_rate: (u32, u32),
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            sip_addr: "0.0.0.0:5060".parse().expect("address"),
            tls: None,
            rtp_ports: (20000, 20999),
            webrtc_addr: "0.0.0.0:5062".parse().expect("address"),
            public_ip: None,
            record_calls: true,
            realm: "switchboard".into(),
            rtp_timeout: Duration::from_secs(60),
            source_rate: (50, 100),
        }
    }
}

/// A call's state, as the softphone and supervisors see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// The caller is in the IVR.
    Ivr,
    /// Waiting in a queue, hearing hold music.
    Queued,
    /// Offered to an agent.
    Offered,
    /// An outbound call ringing at the far end.
    Ringing,
    /// Caller and agent are talking.
    Connected,
    /// The agent put the caller on hold.
    Held,
    /// The agent consults another agent; the caller holds.
    Consulting,
    /// Over.
    Ended,
}

impl CallState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CallState::Ivr => "ivr",
            CallState::Queued => "queued",
            CallState::Offered => "offered",
            CallState::Ringing => "ringing",
            CallState::Connected => "connected",
            CallState::Held => "held",
            CallState::Consulting => "consulting",
            CallState::Ended => "ended",
        }
    }
}

/// One live call.
pub struct Call {
    /// Call id (also the timeline event's provider id).
    pub id: String,
    /// Inbound or outbound.
    pub inbound: bool,
    /// State.
    pub state: CallState,
    /// When the state began, ms since the epoch.
    pub state_since: i64,
    /// The customer's number.
    pub remote_number: String,
    /// The number dialed.
    pub dialed_number: String,
    /// The customer's contact.
    pub contact_id: Option<String>,
    /// The conversation the call is on.
    pub conversation_id: Option<String>,
    /// The call's timeline event.
    pub event_id: Option<String>,
    /// The live task.
    pub task_id: Option<String>,
    /// The agent on the call (or offered it).
    pub agent_id: Option<String>,
    /// Agents who were on it, in order (transfers).
    pub agents: Vec<String>,
    /// IVR steps taken, e.g. `menu=2`.
    pub ivr_path: Vec<String>,
    /// The queue it waited in.
    pub queue: Option<String>,
    /// When it was queued (for the wait), ms since the epoch.
    pub queued_at: Option<i64>,
    /// Total time waited in queues, ms.
    pub queue_wait_ms: i64,
    /// Started, ms since the epoch.
    pub started_at: i64,
    /// Answered by an agent (or the far end).
    pub answered_at: Option<i64>,
    /// Mute flag set by the agent.
    pub muted: bool,
    /// The media task.
    pub media: mpsc::Sender<MediaCommand>,
    /// The SIP side.
    pub sip: SipLeg,
    /// The recording file, once recording.
    pub recording: Option<PathBuf>,
    /// A warm transfer in progress: the agent being consulted.
    pub consult: Option<String>,
    /// The hand-off context given when the warm transfer started.
    pub pending_context: Option<Value>,
}

impl Call {
    /// The view the softphone and `GET /calls/me` get.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "direction": if self.inbound { "inbound" } else { "outbound" },
            "state": self.state,
            "state_since": self.state_since,
            "from": if self.inbound { &self.remote_number } else { &self.dialed_number },
            "to": if self.inbound { &self.dialed_number } else { &self.remote_number },
            "contact_id": self.contact_id,
            "conversation_id": self.conversation_id,
            "task_id": self.task_id,
            "agent_id": self.agent_id,
            "consult_agent_id": self.consult,
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "ended_at": Value::Null,
            "ivr_path": self.ivr_path,
            "queue": self.queue,
            "recording_url": self.recording.as_ref().map(|_| format!("/api/v1/calls/{}/recording", self.id)),
            "muted": self.muted,
        })
    }

    pub(crate) fn set_state(&mut self, state: CallState) {
        let now = now_ms();
        if matches!(self.state, CallState::Queued | CallState::Offered)
            && let Some(at) = self.queued_at.take()
        {
            self.queue_wait_ms += (now - at).max(0);
        }
        if state == CallState::Queued {
            self.queued_at = Some(now);
        }
        self.state = state;
        self.state_since = now;
    }
}

/// An agent's persistent WebRTC session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentLeg {
    session: SessionId,
    telephone_event: Option<u8>,
}

/// Records a resolved conversation's disposition on its call. Holds the service
/// weakly: the desk outlives no server.
pub(crate) struct Dispositions(pub(crate) std::sync::Weak<VoiceService>);

impl CallObserver for Dispositions {
    fn disposition<'a>(&'a self, conversation_id: &'a str, code: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(voice) = self.0.upgrade() {
                voice.note_disposition(conversation_id, code).await;
            }
        })
    }
}

/// The voice service. Shared behind an `Arc`.
pub struct VoiceService {
    pub(crate) state: App,
    pub(crate) config: VoiceConfig,
    pub(crate) sip: switchboard_sip::transport::SipEndpoint,
    pub(crate) webrtc: WebRtcEndpoint,
    /// Live calls by id.
    pub(crate) calls: StdMutex<HashMap<String, Call>>,
    /// SIP Call-ID → call id.
    pub(crate) by_dialog: StdMutex<HashMap<String, String>>,
    /// Agent id → WebRTC session.
    pub(crate) agents: StdMutex<HashMap<String, AgentLeg>>,
    /// WebRTC session → (call id, or consult pair) it is bridged to.
    pub(crate) bridged: StdMutex<HashMap<SessionId, Bridge>>,
    pub(crate) next_port: AtomicU16,
    pub(crate) prompts: StdMutex<HashMap<String, Prompt>>,
    pub(crate) counters: Arc<MediaCounters>,
    pub(crate) sip_state: StdMutex<UaState>,
    pub(crate) calls_total: AtomicU64,
    /// Calls whose caller went silent, to hang up.
    pub(crate) dead_calls: mpsc::UnboundedSender<String>,
    /// The trunks' IP addresses and when they were read: every INVITE checks them,
    /// and reading the database each time made INVITEs wait behind other writes.
    pub(crate) trunk_ips: StdMutex<Option<(std::time::Instant, Vec<IpAddr>)>>,
    /// Held by the one INVITE that re-reads the trunks when the list is stale.
    pub(crate) trunk_refresh: tokio::sync::Mutex<()>,
    /// Requests per source address (trunks exempt).
    pub(crate) sources: crate::flood::SourceLimiter,
    /// Callers in the post-call survey (their call is over): SIP Call-ID → media.
    pub(crate) surveying: StdMutex<HashMap<String, mpsc::Sender<MediaCommand>>>,
}

/// How long the trunk list is trusted before it is read again (a `trunk add` on a
/// running server applies within this).
const TRUNK_REFRESH: Duration = Duration::from_secs(2);

/// What an agent's WebRTC session is connected to.
#[derive(Debug, Clone)]
pub(crate) enum Bridge {
    /// A call's caller.
    Call(String),
    /// Another agent's session (a warm transfer's consult).
    Agent(SessionId),
}

/// Prompts compiled into the binary; `{data_dir}/prompts/{id}.wav` overrides them.
const SHIPPED_PROMPTS: &[(&str, &[u8])] = &[
    ("beep", include_bytes!("../../media/prompts/beep.wav")),
    // "This call may be recorded": the beep until an operator records one.
    (
        "recording-notice",
        include_bytes!("../../media/prompts/beep.wav"),
    ),
    (
        "hold-music",
        include_bytes!("../../media/prompts/hold-music.wav"),
    ),
    (
        "main-menu",
        include_bytes!("../../media/prompts/main-menu.wav"),
    ),
    ("welcome", include_bytes!("../../media/prompts/welcome.wav")),
    // The post-call survey's questions and thanks: the beep until an operator
    // records them (`survey-csat`, `survey-ces`, `survey-nps`, `survey-thanks`).
    (
        "survey-csat",
        include_bytes!("../../media/prompts/beep.wav"),
    ),
    ("survey-ces", include_bytes!("../../media/prompts/beep.wav")),
    ("survey-nps", include_bytes!("../../media/prompts/beep.wav")),
    (
        "survey-thanks",
        include_bytes!("../../media/prompts/beep.wav"),
    ),
];

impl VoiceService {
    /// The IP addresses of the configured trunks (cached for [`TRUNK_REFRESH`]).
    pub async fn trunk_ips(&self) -> Vec<IpAddr> {
        if let Some(ips) = self.fresh_trunk_ips() {
            return ips;
        }
        // One reader refreshes; INVITEs arriving meanwhile wait for its answer instead
        // of each reading the database behind the calls' writes.
        let _refresh = self.trunk_refresh.lock().await;
        if let Some(ips) = self.fresh_trunk_ips() {
            return ips;
        }
        let trunks = match self.state.store.trunks().await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("trunks not read: {e}");
                return Vec::new();
            }
        };
        let ips: Vec<IpAddr> = trunks
            .iter()
            .filter_map(|t| {
                t.address
                    .rsplit_once(':')
                    .map_or(t.address.as_str(), |(h, _)| h)
                    .trim_matches(['[', ']'])
                    .parse()
                    .ok()
            })
            .collect();
        *self.trunk_ips.lock().expect("trunks") = Some((std::time::Instant::now(), ips.clone()));
        ips
    }

    fn fresh_trunk_ips(&self) -> Option<Vec<IpAddr>> {
        match &*self.trunk_ips.lock().expect("trunks") {
            Some((at, ips)) if at.elapsed() < TRUNK_REFRESH => Some(ips.clone()),
            _ => None,
        }
    }

    /// The SIP UDP address (and TCP, same port).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip.udp_addr()
    }

    /// The WebRTC endpoint's UDP address.
    pub fn webrtc_addr(&self) -> SocketAddr {
        self.webrtc.local_addr()
    }

    /// The IP written into SDP and Contact headers.
    pub fn public_ip(&self) -> IpAddr {
        self.config.public_ip.unwrap_or_else(|| {
            let ip = self.sip.udp_addr().ip();
            if ip.is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                ip
            }
        })
    }

    /// Calls this node's crash left open (and calls of a node that named none,
    /// from before nodes were recorded) are closed as failed. Calls other nodes
    /// carry are theirs: a node that died has its calls ended by the routing
    /// leader ([`end_calls_of_dead_nodes`]).
    pub(crate) async fn end_unfinished(&self) {
        let Ok(calls) = self.state.store.unfinished_calls().await else {
            return;
        };
        let me = self.state.config.node.id.as_str();
        for record in calls {
            if call_node(&record).is_none_or(|node| node == me) {
                self.end_as_failed(record, "the host restarted during the call")
                    .await;
            }
        }
    }

    /// Ends a call whose node is gone: the record and its timeline event say it
    /// failed and why.
    async fn end_as_failed(&self, mut record: CallRecord, why: &str) {
        record.state = "ended".into();
        record.ended_at = Some(now_ms());
        record.detail["outcome"] = json!("failed");
        record.detail["failure"] = json!(why);
        let summary = summary_text(&record);
        match self
            .state
            .store
            .save_call_with_event(&record, Some(&summary))
            .await
        {
            Ok(CallSave::Saved(Some(e))) => self.state.notifier.timeline_event(&e),
            Ok(_) => {}
            Err(e) => tracing::error!(call = %record.id, "ended call not saved: {e}"),
        }
    }

    // ------------------------------------------------------------------ prompts

    /// A prompt by id: `{data_dir}/prompts/{id}.wav` if present (8 kHz mono), else
    /// the shipped one, else a short beep (an unknown prompt never breaks a call).
    pub fn prompt(&self, id: &str) -> Prompt {
        if let Some(p) = self.prompts.lock().expect("prompts").get(id) {
            return p.clone();
        }
        let safe = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let from_disk = safe
            .then(|| {
                self.state
                    .config
                    .data_dir
                    .join("prompts")
                    .join(format!("{id}.wav"))
            })
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| match wav::read_prompt(&bytes) {
                Ok(samples) => Some(samples),
                Err(e) => {
                    tracing::warn!(
                        prompt = id,
                        "prompt file unusable, using the shipped one: {e}"
                    );
                    None
                }
            });
        let samples = from_disk
            .or_else(|| {
                SHIPPED_PROMPTS
                    .iter()
                    .find(|(name, _)| *name == id)
                    .and_then(|(_, bytes)| wav::read_prompt(bytes).ok())
            })
            .unwrap_or_else(|| {
                tracing::warn!(prompt = id, "no such prompt; playing a beep");
                tones::beep()
            });
        let prompt = Arc::new(samples);
        self.prompts
            .lock()
            .expect("prompts")
            .insert(id.to_string(), prompt.clone());
        prompt
    }

    /// Hold music, looping, for the caller.
    pub(crate) fn music(&self) -> MediaCommand {
        MediaCommand::Play {
            prompt: self.prompt("hold-music"),
            looping: true,
            done: None,
        }
    }

    // ------------------------------------------------------------------ ports

    /// Binds an RTP socket from the configured range (even ports; RTCP is +1).
    pub async fn bind_rtp(&self) -> std::io::Result<UdpSocket> {
        let (low, high) = self.config.rtp_ports;
        let span = u32::from(high.saturating_sub(low)) / 2 + 1;
        let bind_ip = self.config.sip_addr.ip();
        for _ in 0..span {
            let port = self
                .next_port
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                    let next = p.saturating_add(2);
                    Some(if next > high { low } else { next })
                })
                .unwrap_or(low);
            let port = port & !1;
            if port < low || port > high {
                continue;
            }
            if let Ok(socket) = UdpSocket::bind(SocketAddr::new(bind_ip, port)).await {
                return Ok(socket);
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free RTP port in SWITCHBOARD_RTP_PORTS",
        ))
    }

    /// Starts the media task of a call on `socket`.
    pub fn start_media(
        &self,
        call_id: &str,
        socket: UdpSocket,
        remote: SocketAddr,
        codec: Codec,
        telephone_event: Option<u8>,
    ) -> mpsc::Sender<MediaCommand> {
        media::spawn(MediaSetup {
            socket,
            remote,
            codec,
            telephone_event,
            call_id: call_id.to_string(),
            counters: self.counters.clone(),
            rtp_timeout: self.config.rtp_timeout,
            dead: self.dead_calls.clone(),
        })
    }

    // ------------------------------------------------------------------ calls

    pub(crate) fn publish_call(&self, call: &Call) {
        let mut agents: Vec<String> = call.agents.clone();
        if let Some(a) = &call.agent_id
            && !agents.contains(a)
        {
            agents.push(a.clone());
        }
        if let Some(a) = &call.consult {
            agents.push(a.clone());
        }
        self.state.notifier.publish(
            "call.updated",
            Audience::Agents(agents),
            json!({"call": call.view()}),
        );
    }

    /// Runs `f` on a live call, publishes the change, and returns what `f` returned.
    pub(crate) fn update<T>(&self, call_id: &str, f: impl FnOnce(&mut Call) -> T) -> Option<T> {
        let mut calls = self.calls.lock().expect("calls");
        let call = calls.get_mut(call_id)?;
        let out = f(call);
        self.publish_call(call);
        Some(out)
    }

    pub(crate) fn with_call<T>(&self, call_id: &str, f: impl FnOnce(&Call) -> T) -> Option<T> {
        self.calls.lock().expect("calls").get(call_id).map(f)
    }

    /// Calls an agent is on, was offered, or consults.
    pub fn calls_of_agent(&self, agent_id: &str) -> Vec<Value> {
        self.calls
            .lock()
            .expect("calls")
            .values()
            .filter(|c| {
                c.agent_id.as_deref() == Some(agent_id) || c.consult.as_deref() == Some(agent_id)
            })
            .map(Call::view)
            .collect()
    }

    /// Every live call (supervisors).
    pub fn all_calls(&self) -> Vec<Value> {
        self.calls
            .lock()
            .expect("calls")
            .values()
            .map(Call::view)
            .collect()
    }

    /// This node's name (calls it carries name it in their record).
    pub fn node(&self) -> &str {
        &self.state.config.node.id
    }

    /// The other nodes alive now: those that reported within the bound after which
    /// the routing leader counts a node dead (see `end_calls_of_dead_nodes`).
    pub async fn other_live_nodes(&self) -> Vec<String> {
        let silent_for = (self.state.config.node.leader_poll * DEAD_AFTER_POLLS).as_millis() as i64;
        let now = now_ms();
        match self.state.store.nodes_seen().await {
            Ok(nodes) => nodes
                .into_iter()
                .filter(|(id, seen)| *id != self.node() && now - seen <= silent_for)
                .map(|(id, _)| id)
                .collect(),
            Err(e) => {
                tracing::warn!("the cluster's nodes could not be read: {e}");
                Vec::new()
            }
        }
    }

    /// How many calls the host has handled since it started, and how many are live.
    pub fn counts(&self) -> (u64, usize) {
        (
            self.calls_total.load(Ordering::Relaxed),
            self.calls.lock().expect("calls").len(),
        )
    }

    /// Registers a new call (inbound after its 200 OK, outbound before the INVITE).
    pub fn insert_call(&self, call: Call) {
        self.calls_total.fetch_add(1, Ordering::Relaxed);
        self.by_dialog
            .lock()
            .expect("dialogs")
            .insert(call.sip.call_id.clone(), call.id.clone());
        let mut calls = self.calls.lock().expect("calls");
        self.publish_call(&call);
        calls.insert(call.id.clone(), call);
    }

    /// The call of a SIP Call-ID.
    pub fn call_of_dialog(&self, sip_call_id: &str) -> Option<String> {
        self.by_dialog
            .lock()
            .expect("dialogs")
            .get(sip_call_id)
            .cloned()
    }

    /// Puts the call on the customer's timeline: resolves the caller's number to a
    /// contact and joins their open conversation.
    pub async fn record_start(
        &self,
        call_id: &str,
        party: Identity,
        inbound: bool,
    ) -> Result<(), AppError> {
        let (body, data) = self
            .with_call(call_id, |c| {
                let body = if inbound {
                    format!("Call from {}", c.remote_number)
                } else {
                    format!("Call to {}", c.remote_number)
                };
                (body, json!({"call_id": c.id, "direction": if inbound { "inbound" } else { "outbound" }, "outcome": "in_progress"}))
            })
            .ok_or_else(|| AppError::not_found("call ended"))?;
        let batch = IngestBatch {
            plugin_id: VOICE.into(),
            channel: VOICE.into(),
            now_ms: now_ms(),
            reopen_window_ms: self.state.config.reopen_window_ms,
            events: vec![IngestEvent::Call(CallStarted {
                provider_id: call_id.to_string(),
                party,
                direction: if inbound {
                    Direction::In
                } else {
                    Direction::Out
                },
                body,
                data,
            })],
        };
        let outcomes = self.state.store.ingest(batch).await?;
        if let Some(IngestOutcome::Created {
            contact_id,
            conversation_id,
            event_id,
            new_contact,
            new_conversation,
        }) = outcomes.first()
        {
            self.update(call_id, |c| {
                c.contact_id = Some(contact_id.clone());
                c.conversation_id = Some(conversation_id.clone());
                c.event_id = Some(event_id.clone());
            });
            self.state.notifier.publish(
                "timeline.created",
                self.state.notifier.conversation_audience(conversation_id),
                json!({"plugin_id": VOICE, "contact_id": contact_id, "conversation_id": conversation_id,
                    "event_id": event_id, "new_contact": new_contact, "new_conversation": new_conversation, "kind": "call"}),
            );
        }
        self.save(call_id).await;
        Ok(())
    }

    /// Writes the call's record and its timeline event's detail.
    pub(crate) async fn save(&self, call_id: &str) {
        let Some(record) = self.with_call(call_id, record_of) else {
            return;
        };
        self.persist(&record).await;
    }

    pub(crate) async fn persist(&self, record: &CallRecord) {
        let mut record = record.clone();
        // The node whose SIP and RTP sockets carry the call.
        record.detail["node"] = json!(self.state.config.node.id);
        if let Some(agent) = &record.agent_id
            && let Ok(a) = self.state.store.agent(agent).await
        {
            record.detail["agent_name"] = json!(a.name);
        }
        let record = &record;
        // Record and event are written together, and never over a call already
        // ended: a save that raced with the hang-up is dropped.
        match self
            .state
            .store
            .save_call_with_event(record, Some(&summary_text(record)))
            .await
        {
            Ok(CallSave::Saved(Some(e))) => self.state.notifier.timeline_event(&e),
            Ok(CallSave::Saved(None)) => {}
            Ok(CallSave::Stale) => {
                tracing::debug!(call = %record.id, "the call ended meanwhile; its end stands")
            }
            Err(e) => tracing::error!(call = %record.id, "call record not saved: {e}"),
        }
    }

    /// The inbound call flow after the 200 OK: timeline, IVR, queue.
    pub async fn run_inbound(self: Arc<Self>, call_id: String, party: Identity) {
        if let Err(e) = self.record_start(&call_id, party, true).await {
            tracing::error!(call = %call_id, "call not recorded on the timeline: {e:?}");
        }
        let Some((conversation, contact, media)) = self.with_call(&call_id, |c| {
            (
                c.conversation_id.clone(),
                c.contact_id.clone(),
                c.media.clone(),
            )
        }) else {
            return;
        };
        let (Some(conversation), Some(contact), Some(routing)) =
            (conversation, contact, self.state.routing.clone())
        else {
            tracing::error!(call = %call_id, "no conversation or routing for the call; hanging up");
            self.hang_up(&call_id, "failed").await;
            return;
        };
        if self.config.record_calls {
            // Where recording must be announced, it is: before anything else.
            let (done, wait) = oneshot::channel();
            let _ = media
                .send(MediaCommand::Play {
                    prompt: self.prompt("recording-notice"),
                    looping: false,
                    done: Some(done),
                })
                .await;
            let _ = wait.await;
        }
        let mut attributes = BTreeMap::new();
        // Rounds of classification: each IVR answer may lead to another menu.
        for _ in 0..5 {
            let steps = routing.call_ivr(&conversation, &contact, &attributes).await;
            if steps.is_empty() {
                break;
            }
            for step in steps {
                if !self.is_live(&call_id) {
                    return;
                }
                match step {
                    switchboard_plugin_host::bindings::IvrStep::Play(prompt) => {
                        let (done, wait) = oneshot::channel();
                        let _ = media
                            .send(MediaCommand::Play {
                                prompt: self.prompt(&prompt),
                                looping: false,
                                done: Some(done),
                            })
                            .await;
                        let _ = wait.await;
                        self.update(&call_id, |c| c.ivr_path.push(format!("play:{prompt}")));
                    }
                    switchboard_plugin_host::bindings::IvrStep::Gather(g) => {
                        let _ = media
                            .send(MediaCommand::Play {
                                prompt: self.prompt(&g.prompt),
                                looping: false,
                                done: None,
                            })
                            .await;
                        let (reply, digits) = oneshot::channel();
                        let _ = media
                            .send(MediaCommand::Gather {
                                max_digits: g.max_digits,
                                timeout: Duration::from_millis(u64::from(g.timeout_ms)),
                                reply,
                            })
                            .await;
                        let digits = digits.await.unwrap_or_default();
                        if !self.is_live(&call_id) {
                            return;
                        }
                        self.update(&call_id, |c| {
                            c.ivr_path.push(format!("{}={}", g.attribute, digits));
                        });
                        attributes.insert(g.attribute.clone(), digits);
                    }
                }
            }
        }
        if !self.is_live(&call_id) {
            return;
        }
        let _ = media.send(self.music()).await;
        self.update(&call_id, |c| c.set_state(CallState::Queued));
        routing
            .on_inbound_with(&conversation, &contact, VOICE, attributes)
            .await;
        if let Some(task) = routing.task_of_conversation(&conversation).await {
            let queue = task.queue.as_str().to_string();
            let task_id = task.id.as_str().to_string();
            self.update(&call_id, |c| {
                c.queue = Some(queue);
                c.task_id = Some(task_id);
            });
        }
        self.save(&call_id).await;
    }

    pub(crate) fn is_live(&self, call_id: &str) -> bool {
        self.calls.lock().expect("calls").contains_key(call_id)
    }

    // ------------------------------------------------------------------ bridging

    /// Follows routing: a voice task assigned to an agent bridges its call to that
    /// agent's browser; an offer marks the call offered; a re-queue plays music.
    pub(crate) async fn watch_routing(self: Arc<Self>) {
        let mut events = self.state.events.subscribe(None);
        loop {
            let event = match events.next().await {
                Delivery::Event(e) => e,
                Delivery::Resync { seq } => {
                    tracing::warn!("voice missed routing events (resync at {seq})");
                    continue;
                }
                Delivery::Closed => return,
            };
            match event.kind.as_str() {
                "task.updated" => self.on_task(&event.data).await,
                "offer.created" => {
                    let conversation = event.data["conversation_id"].as_str().unwrap_or_default();
                    let agent = event.data["reservation"]["agent"]
                        .as_str()
                        .map(str::to_string);
                    if let Some(call) = self.call_of_conversation(conversation) {
                        if let Some(agent) = &agent {
                            self.call_softphone_here(agent);
                        }
                        self.update(&call, |c| {
                            if c.state == CallState::Queued {
                                c.set_state(CallState::Offered);
                            }
                            if c.consult.is_none() {
                                c.agent_id = agent;
                            }
                        });
                    }
                }
                SOFTPHONE_MOVE => self.softphone_moved(&event.data),
                "offer.expired" | "offer.canceled" => {
                    let task = event.data["reservation"]["task"]
                        .as_str()
                        .unwrap_or_default();
                    if let Some(call) = self.call_of_task(task) {
                        self.update(&call, |c| {
                            if c.state == CallState::Offered {
                                c.set_state(CallState::Queued);
                                c.agent_id = None;
                            }
                        });
                    }
                }
                _ => {}
            }
        }
    }

    /// A call this node carries is offered to `agent`: when their softphone has no
    /// audio connection here (it is connected to another node of the cluster, or
    /// not at all), their desk is asked to connect it to this node
    /// (`softphone.move`), before they answer.
    fn call_softphone_here(&self, agent: &str) {
        if self.agents.lock().expect("agents").contains_key(agent) {
            return;
        }
        tracing::info!(
            agent,
            node = self.node(),
            "asking the agent's softphone to connect here"
        );
        self.state.notifier.publish(
            SOFTPHONE_MOVE,
            Audience::Agents(vec![agent.to_string()]),
            json!({"agent_id": agent, "node": self.node()}),
        );
    }

    /// Another node asked an agent's softphone over: the connection this node holds
    /// for them (unless a call is bridged to it) is closed, so this node never
    /// bridges a call into a connection the browser has left.
    fn softphone_moved(&self, data: &Value) {
        let (Some(agent), Some(node)) = (data["agent_id"].as_str(), data["node"].as_str()) else {
            return;
        };
        if node == self.node() {
            return;
        }
        let mut agents = self.agents.lock().expect("agents");
        let Some(leg) = agents.get(agent).copied() else {
            return;
        };
        if self
            .bridged
            .lock()
            .expect("bridged")
            .contains_key(&leg.session)
        {
            return;
        }
        agents.remove(agent);
        drop(agents);
        self.webrtc.close(leg.session);
        tracing::info!(
            agent,
            to = node,
            "the agent's softphone moved to another node"
        );
    }

    pub(crate) fn call_of_conversation(&self, conversation: &str) -> Option<String> {
        self.calls
            .lock()
            .expect("calls")
            .values()
            .find(|c| c.conversation_id.as_deref() == Some(conversation))
            .map(|c| c.id.clone())
    }

    pub(crate) fn call_of_task(&self, task: &str) -> Option<String> {
        self.calls
            .lock()
            .expect("calls")
            .values()
            .find(|c| c.task_id.as_deref() == Some(task))
            .map(|c| c.id.clone())
    }

    pub(crate) async fn on_task(&self, data: &Value) {
        let task = &data["task"];
        if task.is_null() || task["channel"] != VOICE {
            return;
        }
        let Some(conversation) = task["attributes"]["conversation_id"].as_str() else {
            return;
        };
        let Some(call_id) = self.call_of_conversation(conversation) else {
            return;
        };
        let task_id = task["id"].as_str().map(str::to_string);
        let queue = task["queue"].as_str().map(str::to_string);
        self.update(&call_id, |c| {
            c.task_id = task_id;
            if queue.is_some() {
                c.queue = queue;
            }
        });
        let state = task["state"]["state"]
            .as_str()
            .or_else(|| task["state"].as_str());
        let agent = data["agent_id"].as_str();
        match (state, agent) {
            (Some("assigned"), Some(agent)) => {
                let (current, consult) = self
                    .with_call(&call_id, |c| (c.state, c.consult.clone()))
                    .unwrap_or((CallState::Ended, None));
                if consult.is_none() && matches!(current, CallState::Queued | CallState::Offered) {
                    self.bridge(&call_id, agent).await;
                }
            }
            (Some("pending"), _) => {
                let requeued = self
                    .with_call(&call_id, |c| {
                        matches!(
                            c.state,
                            CallState::Connected | CallState::Held | CallState::Offered
                        ) && c.consult.is_none()
                    })
                    .unwrap_or(false);
                if requeued {
                    self.to_queue(&call_id).await;
                }
            }
            _ => {}
        }
    }

    /// The caller goes back to waiting: unbridged, music, state queued.
    pub(crate) async fn to_queue(&self, call_id: &str) {
        self.unbridge_call(call_id);
        let media = self.with_call(call_id, |c| c.media.clone());
        if let Some(media) = media {
            let _ = media.send(MediaCommand::Unbridge).await;
            let _ = media
                .send(MediaCommand::Play {
                    prompt: self.prompt("hold-music"),
                    looping: true,
                    done: None,
                })
                .await;
        }
        self.update(call_id, |c| {
            if let Some(a) = c.agent_id.take()
                && !c.agents.contains(&a)
            {
                c.agents.push(a);
            }
            c.set_state(CallState::Queued);
        });
    }

    pub(crate) fn unbridge_call(&self, call_id: &str) {
        self.bridged
            .lock()
            .expect("bridged")
            .retain(|_, b| !matches!(b, Bridge::Call(c) if c == call_id));
    }

    pub(crate) fn sink_for(&self, session: SessionId) -> AgentSink {
        let webrtc = self.webrtc.clone();
        Arc::new(move |packet: &[u8]| {
            let _ = webrtc.send_rtp(session, packet);
        })
    }

    /// Connects a call's caller to an agent's browser.
    pub async fn bridge(&self, call_id: &str, agent: &str) {
        let leg = self.agents.lock().expect("agents").get(agent).copied();
        let Some(media) = self.with_call(call_id, |c| c.media.clone()) else {
            return;
        };
        self.unbridge_call(call_id);
        match leg {
            Some(leg) => {
                self.bridged
                    .lock()
                    .expect("bridged")
                    .insert(leg.session, Bridge::Call(call_id.to_string()));
                let _ = media
                    .send(MediaCommand::Bridge {
                        sink: self.sink_for(leg.session),
                        telephone_event: leg.telephone_event,
                    })
                    .await;
            }
            None => {
                tracing::warn!(
                    call = call_id,
                    agent,
                    "agent has no audio connection; the caller keeps hearing music"
                );
            }
        }
        let recording = self.config.record_calls.then(|| {
            self.state
                .config
                .data_dir
                .join("recordings")
                .join(format!("{call_id}.wav"))
        });
        if let Some(path) = &recording {
            let _ = media.send(MediaCommand::Record(path.clone())).await;
        }
        self.update(call_id, |c| {
            if let Some(previous) = c.agent_id.replace(agent.to_string())
                && previous != agent
                && !c.agents.contains(&previous)
            {
                c.agents.push(previous);
            }
            if !c.agents.iter().any(|a| a == agent) {
                c.agents.push(agent.to_string());
            }
            if c.answered_at.is_none() {
                c.answered_at = Some(now_ms());
            }
            if c.recording.is_none() {
                c.recording = recording;
            }
            c.muted = false;
            c.set_state(CallState::Connected);
        });
        self.save(call_id).await;
    }

    // ------------------------------------------------------------------ WebRTC

    /// `webrtc.offer` from an agent's realtime socket: (re)creates their session.
    pub async fn accept_offer(&self, agent_id: &str, offer: &str) -> Result<String, String> {
        let (session, answer, negotiated) = self
            .webrtc
            .accept_offer(offer)
            .await
            .map_err(|e| e.to_string())?;
        let old = self.agents.lock().expect("agents").insert(
            agent_id.to_string(),
            AgentLeg {
                session,
                telephone_event: negotiated.telephone_event,
            },
        );
        if let Some(old) = old {
            self.retarget_session(old.session, session, negotiated.telephone_event)
                .await;
            self.webrtc.close(old.session);
        } else {
            // The agent answered a call here before their softphone had come over
            // (`softphone.move`): the caller, still hearing music, is connected now.
            let waiting: Vec<String> = self
                .calls
                .lock()
                .expect("calls")
                .values()
                .filter(|c| {
                    c.agent_id.as_deref() == Some(agent_id)
                        && c.state == CallState::Connected
                        && c.consult.is_none()
                })
                .map(|c| c.id.clone())
                .collect();
            for call_id in waiting {
                let bridged = self
                    .bridged
                    .lock()
                    .expect("bridged")
                    .values()
                    .any(|b| matches!(b, Bridge::Call(c) if *c == call_id));
                let media = self.with_call(&call_id, |c| c.media.clone());
                if let (false, Some(media)) = (bridged, media) {
                    self.bridged
                        .lock()
                        .expect("bridged")
                        .insert(session, Bridge::Call(call_id.clone()));
                    let _ = media
                        .send(MediaCommand::Bridge {
                            sink: self.sink_for(session),
                            telephone_event: negotiated.telephone_event,
                        })
                        .await;
                }
            }
        }
        Ok(answer)
    }

    /// An agent reconnected mid-call: the call follows to the new session.
    pub(crate) async fn retarget_session(
        &self,
        old: SessionId,
        new: SessionId,
        telephone_event: Option<u8>,
    ) {
        let bridge = self.bridged.lock().expect("bridged").remove(&old);
        if let Some(Bridge::Call(call_id)) = bridge {
            self.bridged
                .lock()
                .expect("bridged")
                .insert(new, Bridge::Call(call_id.clone()));
            if let Some(media) = self.with_call(&call_id, |c| c.media.clone()) {
                let _ = media
                    .send(MediaCommand::Bridge {
                        sink: self.sink_for(new),
                        telephone_event,
                    })
                    .await;
            }
        }
    }

    pub(crate) async fn run_webrtc(self: Arc<Self>, mut events: mpsc::Receiver<WebRtcEvent>) {
        while let Some(event) = events.recv().await {
            match event {
                WebRtcEvent::Rtp { session, packet } => {
                    let bridge = self.bridged.lock().expect("bridged").get(&session).cloned();
                    match bridge {
                        Some(Bridge::Call(call_id)) => {
                            let (media, muted) =
                                match self.with_call(&call_id, |c| (c.media.clone(), c.muted)) {
                                    Some(m) => m,
                                    None => continue,
                                };
                            if !muted {
                                let _ = media.try_send(MediaCommand::FromAgent(packet));
                            }
                        }
                        Some(Bridge::Agent(other)) => {
                            let _ = self.webrtc.send_rtp(other, &packet);
                        }
                        None => {}
                    }
                }
                WebRtcEvent::Connected { session } => {
                    tracing::debug!(session = ?session, "agent audio connected");
                }
                WebRtcEvent::Disconnected { session } => {
                    self.bridged.lock().expect("bridged").remove(&session);
                    self.agents
                        .lock()
                        .expect("agents")
                        .retain(|_, leg| leg.session != session);
                }
            }
        }
    }

    // ------------------------------------------------------------------ controls

    /// Ends a call from our side (agent hang-up, failure): BYE, then the same end as
    /// when the caller hangs up.
    pub async fn hang_up(&self, call_id: &str, outcome: &str) {
        if let Some(leg) = self.with_call(call_id, |c| c.sip.clone()) {
            ua::send_bye(&self.sip, self.public_ip(), self.sip_addr(), &leg).await;
        }
        self.finish(call_id, Some(outcome)).await;
    }

    /// The call is over (either side): media stopped, record written, task moved on
    /// (wrap-up if an agent had it, canceled as an abandon if it was waiting).
    pub async fn finish(&self, call_id: &str, outcome: Option<&str>) {
        self.finish_call(call_id, outcome, false).await;
    }

    /// [`VoiceService::finish`], or with `keep_line` the call alone ends (record,
    /// task, agent freed) while the caller's line and media stay up for the
    /// post-call survey. Returns the SIP leg and media of the call it ended.
    pub(crate) async fn finish_call(
        &self,
        call_id: &str,
        outcome: Option<&str>,
        keep_line: bool,
    ) -> Option<(SipLeg, mpsc::Sender<MediaCommand>)> {
        let mut call = self.calls.lock().expect("calls").remove(call_id)?;
        self.by_dialog
            .lock()
            .expect("dialogs")
            .remove(&call.sip.call_id);
        self.unbridge_call(call_id);
        if let Some(consult) = &call.consult {
            self.end_consult(call_id, consult);
        }
        let (reply, summary) = oneshot::channel();
        let _ = call
            .media
            .send(if keep_line {
                MediaCommand::EndCall(reply)
            } else {
                MediaCommand::Stop(reply)
            })
            .await;
        let summary = tokio::time::timeout(Duration::from_secs(5), summary)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let was = call.state;
        call.set_state(CallState::Ended);
        let outcome = outcome.map(str::to_string).unwrap_or_else(|| {
            match was {
                CallState::Ivr | CallState::Queued | CallState::Offered => "abandoned",
                CallState::Ringing => "missed",
                _ => "answered",
            }
            .to_string()
        });
        if call.answered_at.is_none() && outcome == "answered" {
            call.answered_at = Some(call.state_since);
        }
        call.recording = summary.recording.or(call.recording);
        let mut record = record_of(&call);
        let ended = now_ms();
        record.ended_at = Some(ended);
        record.state = "ended".into();
        record.detail["outcome"] = json!(outcome);
        record.detail["duration_ms"] =
            json!(call.answered_at.map(|a| (ended - a).max(0)).unwrap_or(0));
        record.detail["total_ms"] = json!((ended - call.started_at).max(0));
        record.detail["packets"] = json!({
            "from_caller": summary.caller_packets.0, "to_caller": summary.caller_packets.1,
            "from_agent": summary.agent_packets.0, "to_agent": summary.agent_packets.1,
        });
        self.persist(&record).await;
        if let Some(path) = call.recording.clone() {
            // On a cluster the finished WAV goes to the database too, so any node
            // serves it; off the hang-up path, it may take a while for a long call.
            let recordings = self.state.recordings.clone();
            let id = call.id.clone();
            tokio::spawn(async move {
                if let Err(e) = recordings.keep(&id, &path).await {
                    tracing::error!(call = %id, "recording not kept in the file store: {e}");
                }
            });
        }
        let mut view = call.view();
        view["ended_at"] = json!(ended);
        view["outcome"] = json!(outcome);
        let mut agents = call.agents.clone();
        agents.extend(call.agent_id.clone());
        self.state.notifier.publish(
            "call.updated",
            Audience::Agents(agents),
            json!({"call": view}),
        );
        if let (Some(routing), Some(conversation)) =
            (self.state.routing.clone(), &call.conversation_id)
            && (call.inbound || call.task_id.is_some())
        {
            routing.cancel_conversation_task(conversation).await;
        }
        Some((call.sip, call.media))
    }

    /// Hold or resume (the agent's button).
    pub async fn hold(&self, call_id: &str, held: bool) -> Result<Value, AppError> {
        let media = self
            .with_call(call_id, |c| c.media.clone())
            .ok_or_else(|| AppError::not_found("no live call with that id"))?;
        let state = self
            .with_call(call_id, |c| c.state)
            .unwrap_or(CallState::Ended);
        if !matches!(state, CallState::Connected | CallState::Held) {
            return Err(conflict("the call is not connected to an agent"));
        }
        let _ = media
            .send(MediaCommand::Hold {
                held,
                music: self.prompt("hold-music"),
            })
            .await;
        let view = self.update(call_id, |c| {
            c.set_state(if held {
                CallState::Held
            } else {
                CallState::Connected
            });
            c.view()
        });
        let conversation = self
            .with_call(call_id, |c| c.conversation_id.clone())
            .flatten();
        if let (Some(routing), Some(conversation)) = (&self.state.routing, conversation) {
            routing.record_hold(&conversation, held).await;
        }
        Ok(json!({"call": view}))
    }

    /// Mute or unmute: the agent's audio stops reaching the caller.
    pub fn mute(&self, call_id: &str, muted: bool) -> Result<Value, AppError> {
        let view = self
            .update(call_id, |c| {
                c.muted = muted;
                c.view()
            })
            .ok_or_else(|| AppError::not_found("no live call with that id"))?;
        Ok(json!({"call": view}))
    }

    /// DTMF from the agent's keypad to the caller.
    pub async fn dtmf(&self, call_id: &str, digits: &str) -> Result<(), AppError> {
        if digits.is_empty()
            || digits.len() > 32
            || !digits
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
        {
            return Err(AppError::bad_request("digits: 1-32 of 0-9, *, #, A-D"));
        }
        let media = self
            .with_call(call_id, |c| c.media.clone())
            .ok_or_else(|| AppError::not_found("no live call with that id"))?;
        let _ = media
            .send(MediaCommand::SendDigits(digits.to_string()))
            .await;
        Ok(())
    }

    /// The agent a call belongs to (for permission checks), if live.
    pub fn call_agents(&self, call_id: &str) -> Option<(Option<String>, Option<String>)> {
        self.with_call(call_id, |c| (c.agent_id.clone(), c.consult.clone()))
    }

    /// The live task of a call.
    pub fn call_task(&self, call_id: &str) -> Option<String> {
        self.with_call(call_id, |c| c.task_id.clone()).flatten()
    }

    /// The softphone's view of a live call.
    pub fn call_view(&self, call_id: &str) -> Option<Value> {
        self.with_call(call_id, Call::view)
    }

    /// Keeps a warm transfer's context until it is completed.
    pub fn set_pending_context(&self, call_id: &str, context: Option<Value>) {
        self.update(call_id, |c| c.pending_context = context);
    }

    /// The warm transfer's context, taken.
    pub fn take_pending_context(&self, call_id: &str) -> Option<Value> {
        self.update(call_id, |c| c.pending_context.take()).flatten()
    }

    /// Blind transfer: the caller hears music while routing finds the queue's agent.
    pub async fn before_transfer(&self, call_id: &str) {
        self.to_queue(call_id).await;
    }

    // ------------------------------------------------------------------ warm transfer

    /// Starts a consult (the first half of a warm transfer): the caller holds with
    /// music and the agent talks to `target` at once, browser to browser through
    /// the host. Routing is not involved until the transfer is completed.
    pub async fn start_consult(&self, call_id: &str, target: &str) -> Result<Value, AppError> {
        let (media, initiator, state) = self
            .with_call(call_id, |c| (c.media.clone(), c.agent_id.clone(), c.state))
            .ok_or_else(|| AppError::not_found("no live call with that id"))?;
        if !matches!(state, CallState::Connected | CallState::Held) {
            return Err(conflict("only a connected call can be transferred warm"));
        }
        let initiator = initiator.ok_or_else(|| conflict("the call has no agent"))?;
        if initiator == target {
            return Err(AppError::bad_request("agent_id: someone else"));
        }
        let (a, b) = {
            let agents = self.agents.lock().expect("agents");
            (agents.get(&initiator).copied(), agents.get(target).copied())
        };
        let Some(a) = a else {
            return Err(conflict("your softphone is not connected"));
        };
        let Some(b) = b else {
            // On a cluster their softphone may be on another node: ask it over, so a
            // second try in a moment finds it here.
            self.call_softphone_here(target);
            return Err(conflict(
                "the other agent's softphone is not connected to the node carrying this call; it has been asked to connect: try again in a moment",
            ));
        };
        self.unbridge_call(call_id);
        let _ = media.send(MediaCommand::Unbridge).await;
        let _ = media
            .send(MediaCommand::Hold {
                held: true,
                music: self.prompt("hold-music"),
            })
            .await;
        {
            let mut bridged = self.bridged.lock().expect("bridged");
            bridged.insert(a.session, Bridge::Agent(b.session));
            bridged.insert(b.session, Bridge::Agent(a.session));
        }
        let view = self.update(call_id, |c| {
            c.consult = Some(target.to_string());
            c.set_state(CallState::Consulting);
            c.view()
        });
        Ok(json!({"call": view}))
    }

    pub(crate) fn end_consult(&self, call_id: &str, target: &str) {
        let initiator = self.with_call(call_id, |c| c.agent_id.clone()).flatten();
        let agents = self.agents.lock().expect("agents");
        let sessions: Vec<SessionId> = [initiator.as_deref(), Some(target)]
            .into_iter()
            .flatten()
            .filter_map(|a| agents.get(a).map(|l| l.session))
            .collect();
        drop(agents);
        let mut bridged = self.bridged.lock().expect("bridged");
        for s in sessions {
            if matches!(bridged.get(&s), Some(Bridge::Agent(_))) {
                bridged.remove(&s);
            }
        }
    }

    /// Completes a warm transfer: the consult ends and the call's task goes to the
    /// consulted agent (with the hand-off context), whose softphone is offered it;
    /// the caller hears music until they answer. Returns the consulted agent.
    pub async fn complete_consult(&self, call_id: &str) -> Result<String, AppError> {
        let target = self
            .with_call(call_id, |c| c.consult.clone())
            .flatten()
            .ok_or_else(|| conflict("no consult in progress"))?;
        self.end_consult(call_id, &target);
        self.update(call_id, |c| {
            c.consult = None;
            if let Some(a) = c.agent_id.take()
                && !c.agents.contains(&a)
            {
                c.agents.push(a);
            }
            c.set_state(CallState::Queued);
        });
        Ok(target)
    }

    /// Cancels a warm transfer: the first agent gets the caller back.
    pub async fn cancel_consult(&self, call_id: &str) -> Result<Value, AppError> {
        let (target, initiator) = self
            .with_call(call_id, |c| (c.consult.clone(), c.agent_id.clone()))
            .ok_or_else(|| AppError::not_found("no live call with that id"))?;
        let target = target.ok_or_else(|| conflict("no consult in progress"))?;
        self.end_consult(call_id, &target);
        self.update(call_id, |c| c.consult = None);
        if let Some(agent) = &initiator {
            self.bridge(call_id, agent).await;
        }
        Ok(json!({"call": self.with_call(call_id, Call::view)}))
    }

    /// Records the disposition an agent chose on the call's record (the latest call
    /// of the conversation).
    pub async fn note_disposition(&self, conversation_id: &str, code: &str) {
        let Ok(events) = self
            .state
            .store
            .conversation_timeline(conversation_id)
            .await
        else {
            return;
        };
        let Some(event) = events
            .iter()
            .rev()
            .find(|e| e.kind == switchboard_core::EventKind::Call)
        else {
            return;
        };
        let Some(call_id) = event.data["call_id"].as_str() else {
            return;
        };
        if let Ok(mut record) = self.state.store.call(call_id).await
            && record.ended_at.is_some()
        {
            record.detail["disposition"] = json!(code);
            self.persist(&record).await;
        }
    }

    /// The SIP endpoint (for the user agent).
    pub fn sip_endpoint(&self) -> &switchboard_sip::transport::SipEndpoint {
        &self.sip
    }

    /// Shared user-agent state.
    pub(crate) fn ua(&self) -> std::sync::MutexGuard<'_, UaState> {
        self.sip_state.lock().expect("sip state")
    }

    /// Media counters.
    pub fn counters(&self) -> &MediaCounters {
        &self.counters
    }

    /// The settings.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// The app state (store, routing, realtime).
    pub fn app(&self) -> &App {
        &self.state
    }
}

fn conflict(message: &str) -> AppError {
    AppError::new(switchboard_app::ErrorKind::Conflict, "conflict", message)
}

/// The node that carried a call, as its record says.
fn call_node(record: &CallRecord) -> Option<&str> {
    record.detail.get("node").and_then(Value::as_str)
}

/// The event asking an agent's desk to connect its softphone to the node carrying a
/// call offered to them (`{agent_id, node}`).
pub const SOFTPHONE_MOVE: &str = "softphone.move";

/// How many leadership poll intervals a node may stay silent before the routing
/// leader counts it dead and ends the calls it carried.
const DEAD_AFTER_POLLS: u32 = 10;

/// On the routing leader, for the life of the service: calls carried by a node
/// that stopped reporting (see `Store::node_seen`) cannot go on — their SIP and
/// RTP sockets died with it — so they are ended as failed, the timeline says so,
/// and their routing tasks are closed (a waiting call canceled, an answered one put
/// in wrap-up), which frees the agents' capacity.
pub(crate) async fn end_calls_of_dead_nodes(service: std::sync::Weak<VoiceService>) {
    loop {
        let Some(poll) = service.upgrade().map(|s| s.state.config.node.leader_poll) else {
            return;
        };
        tokio::time::sleep(poll * 2).await;
        let Some(s) = service.upgrade() else { return };
        let Some(routing) = s.state.routing.clone() else {
            return;
        };
        if routing.role() != switchboard_app::routing::RoutingRole::Leader {
            continue;
        }
        let (Ok(nodes), Ok(calls)) = (
            s.state.store.nodes_seen().await,
            s.state.store.unfinished_calls().await,
        ) else {
            continue;
        };
        let silent_for = (poll * DEAD_AFTER_POLLS).as_millis() as i64;
        let now = now_ms();
        let dead: Vec<&str> = nodes
            .iter()
            .filter(|(id, seen)| *id != s.state.config.node.id && now - seen > silent_for)
            .map(|(id, _)| id.as_str())
            .collect();
        for record in calls {
            let Some(node) = call_node(&record).filter(|n| dead.contains(n)) else {
                continue;
            };
            let why = format!("the node carrying the call ({node}) stopped");
            tracing::warn!(call = %record.id, node, "ending a call whose node stopped");
            let conversation = record.conversation_id.clone();
            s.end_as_failed(record, &why).await;
            if let Some(conversation) = conversation {
                routing.cancel_conversation_task(&conversation).await;
            }
        }
    }
}

/// The durable record of a live call.
fn record_of(c: &Call) -> CallRecord {
    CallRecord {
        id: c.id.clone(),
        direction: if c.inbound { "inbound" } else { "outbound" }.into(),
        state: c.state.as_str().into(),
        remote_number: c.remote_number.clone(),
        dialed_number: c.dialed_number.clone(),
        contact_id: c.contact_id.clone(),
        conversation_id: c.conversation_id.clone(),
        event_id: c.event_id.clone(),
        agent_id: c.agent_id.clone().or_else(|| c.agents.last().cloned()),
        recording_path: c.recording.as_ref().map(|p| p.display().to_string()),
        detail: json!({
            "call_id": c.id,
            "direction": if c.inbound { "inbound" } else { "outbound" },
            "state": c.state,
            "ivr_path": c.ivr_path,
            "queue": c.queue,
            "queue_wait_ms": c.queue_wait_ms + c.queued_at.map(|q| (now_ms() - q).max(0)).unwrap_or(0),
            "agent_id": c.agent_id.clone().or_else(|| c.agents.last().cloned()),
            "agents": c.agents,
            "recording_url": c.recording.as_ref().map(|_| format!("/api/v1/calls/{}/recording", c.id)),
            "outcome": "in_progress",
            "remote_number": c.remote_number,
        }),
        started_at: c.started_at,
        answered_at: c.answered_at,
        ended_at: None,
    }
}

/// The timeline text of a call: `Call from +1555… · 3:12 · billing · Sam`.
fn summary_text(record: &CallRecord) -> String {
    let head = if record.direction == "inbound" {
        format!("Call from {}", record.remote_number)
    } else {
        format!("Call to {}", record.remote_number)
    };
    let mut parts = vec![head];
    match record.detail["outcome"].as_str() {
        Some("answered") => {
            let secs = record.detail["duration_ms"].as_i64().unwrap_or(0) / 1000;
            parts.push(format!("{}:{:02}", secs / 60, secs % 60));
        }
        Some("abandoned") => parts.push("abandoned in queue".into()),
        Some("missed") => parts.push("not answered".into()),
        Some("failed") => parts.push("failed".into()),
        _ => {}
    }
    if let Some(q) = record.detail["queue"].as_str() {
        parts.push(q.to_string());
    }
    parts.join(" · ")
}

/// The caller's identity from a SIP From user part: an E.164 number when it is
/// one (or one in the default region), else `sip:user@host`.
pub fn caller_identity(user: &str, host: &str, region: Option<&str>) -> Identity {
    parse_identity_query(&format!("phone:{user}"), region)
        .or_else(|_| parse_identity_query(&format!("sip:{user}@{host}"), None))
        .unwrap_or_else(|_| Identity::from_normalized("sip", format!("{user}@{host}")))
}
