//! Switchboard's voice: SIP calls from trunks and desk phones, run through the routing policy's
//! IVR, queued with hold music, and bridged to the agent's browser over WebRTC.
//!
//! The pieces: the tokio SIP transport (`switchboard_sip::transport`) hands requests
//! and responses to [`sip`] (the user agent: INVITE, ACK, BYE, CANCEL, OPTIONS,
//! re-INVITE for hold, REGISTER for desk phones); each call gets a media task
//! ([`media`]) with its own RTP socket; the agents' browsers keep one persistent
//! WebRTC session each on the ICE-lite endpoint (`switchboard_media::webrtc`),
//! negotiated over the realtime WebSocket (`webrtc.offer` → `webrtc.answer`).
//!
//! A call is a task on the `voice` channel like any conversation's task: its offer
//! is accepted through the routing API, and when the routing service publishes the
//! task as assigned, the call is bridged to that agent's session. Hanging up puts
//! the task in wrap-up; a caller who hangs up while waiting is an abandon (the task
//! is canceled). Where the queue offers it, an agent's hang-up leaves the caller on
//! the line for the post-call DTMF survey (module `survey`). The call is on the
//! contact's timeline from the first ring; its record (IVR path, queue wait, agent, duration, recording, disposition) is
//! rewritten on that event as the call goes on.
//!
//! This crate is an edge over the application layer (`switchboard-app`), beside the
//! HTTP API: it knows no HTTP type. The calls API in `switchboard-api` calls the
//! public methods of [`VoiceService`]; routing reaches voice only through the event
//! bus (task and offer events) and the desk's [`CallObserver`].

mod agent_calls;
pub mod flood;
pub mod media;
mod service;
pub mod sip;
mod startup;
mod survey;
pub mod ua;

pub use agent_calls::{CallTransfer, recording};
pub use service::{CallState, VOICE, VoiceConfig, VoiceService};
