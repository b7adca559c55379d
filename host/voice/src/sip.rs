//! The SIP user agent: what the host does with each request and response the tokio
//! transport hands over.
//!
//! - **INVITE** (new dialog): accepted from a configured trunk's address, or from a
//!   desk phone that answers our digest challenge; anyone else gets 403. The SDP
//!   offer must contain PCMU or PCMA (else 488); the host answers 200 OK at once
//!   (the IVR and the queue play to the caller) with its own RTP port.
//! - **re-INVITE**: the caller holding (`sendonly`/`inactive`) or resuming; answered
//!   with the mirrored direction.
//! - **BYE** ends the call; **CANCEL** is answered by the transaction layer; **ACK**
//!   confirms the dialog; **OPTIONS** gets 200 with what we allow.
//! - **REGISTER**: the registrar of desk phones, digest-authenticated against the
//!   HA1 of `switchboard phone add`.
//! - Outbound calls ([`dial`]) go to a trunk, answering its digest challenge with the
//!   trunk's credentials.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_media::Codec;
use switchboard_sip::dialog::Dialog;
use switchboard_sip::digest::{DigestClient, Secret, Verdict};
use switchboard_sip::message::{
    Message, Method, NameAddr, SipUri, Transport, Via, new_call_id, new_tag,
};
use switchboard_sip::sdp::{self, AudioCodec, LocalAudio, SessionDescription};
use switchboard_sip::transaction::TransactionId;
use switchboard_sip::transport::SipEvent;
use tokio::sync::mpsc;

use crate::service::{Call, CallState, VoiceService, caller_identity};
use crate::ua::{Binding, SipLeg, send_bye};
use switchboard_app::{AppError, now_ms};

/// What we allow, for OPTIONS and 405s.
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER";
/// Registrations last at most this long.
const MAX_EXPIRES: u32 = 3600;
/// Server header.
const AGENT: &str = "Switchboard";

/// The user agent's loop.
pub async fn run(service: Arc<VoiceService>, mut events: mpsc::Receiver<SipEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            SipEvent::Request {
                id,
                request,
                source,
                transport,
            } => {
                // Trunks are exempt; their list is only consulted for a source over
                // its budget, so ordinary traffic never waits for it.
                if !service
                    .sources
                    .allow(source.ip(), std::time::Instant::now())
                    && !service.trunk_ips().await.contains(&source.ip())
                {
                    shed(&service, id, &request, source);
                    continue;
                }
                let service = service.clone();
                // INVITEs wait on the database; everything else is quick, but one
                // task per request keeps a slow one from holding up the rest.
                tokio::spawn(async move {
                    on_request(&service, id, request, source, transport).await;
                });
            }
            SipEvent::Ack { request, .. } => {
                if let Some(call) = request.call_id().and_then(|c| service.call_of_dialog(c)) {
                    service.update(&call, |c| c.sip.invite_tx = None);
                }
            }
            SipEvent::Response { id, response } => {
                let waiter = service.ua().waiters.get(&id).cloned();
                if let Some(w) = waiter {
                    let _ = w.send(Some(response));
                }
            }
            SipEvent::StrayResponse { response } => {
                // A retransmitted 2xx to our INVITE: ACK it again.
                if let Some(call) = response.call_id().and_then(|c| service.call_of_dialog(c))
                    && let Some(leg) = service.with_call(&call, |c| c.sip.clone())
                    && let (Some(dialog), Some(cseq)) = (&leg.dialog, response.cseq())
                {
                    let ack = dialog.ack(cseq.number, &our_via(&service, leg.transport));
                    service
                        .sip_endpoint()
                        .send_stateless(ack, leg.peer, leg.transport);
                }
            }
            SipEvent::Cancelled { id, .. } => {
                if let Some(call) = service.call_with_invite(id) {
                    service.finish(&call, None).await;
                }
            }
            SipEvent::Timeout { id } => {
                let waiter = service.ua().waiters.remove(&id);
                if let Some(w) = waiter {
                    let _ = w.send(None);
                }
                if let Some(call) = service.call_with_invite(id) {
                    // Our 200 was never ACKed: the caller is gone.
                    tracing::warn!(call = %call, "no ACK for our answer; ending the call");
                    service.hang_up(&call, "failed").await;
                }
            }
            SipEvent::Terminated { id } => {
                service.ua().waiters.remove(&id);
            }
            SipEvent::Malformed {
                source,
                error,
                answered,
                ..
            } => {
                tracing::debug!(%source, answered, "malformed SIP: {error}");
            }
        }
    }
}

fn our_via(service: &VoiceService, transport: Transport) -> Via {
    crate::ua::our_via(service.public_ip(), service.sip_addr().port(), transport)
}

fn our_contact(service: &VoiceService, user: &str) -> String {
    format!(
        "<sip:{user}@{}:{}>",
        service.public_ip(),
        service.sip_addr().port()
    )
}

/// A request over its source's budget: 503 with Retry-After, nothing else done.
fn shed(service: &VoiceService, id: TransactionId, request: &Message, source: SocketAddr) {
    tracing::debug!(%source, "SIP request shed: over the source's rate");
    let response = Message::response_to(request, 503)
        .with_header("Server", AGENT)
        .with_header("Retry-After", "5");
    service.sip_endpoint().respond(id, response);
}

fn respond(service: &VoiceService, id: TransactionId, request: &Message, status: u16) {
    let response = Message::response_to(request, status).with_header("Server", AGENT);
    service.sip_endpoint().respond(id, response);
}

async fn on_request(
    service: &Arc<VoiceService>,
    id: TransactionId,
    request: Message,
    source: SocketAddr,
    transport: Transport,
) {
    let Some(method) = request.method().cloned() else {
        return;
    };
    let in_dialog = request.to().is_some_and(|t| t.tag().is_some());
    match method {
        Method::Invite if in_dialog => on_reinvite(service, id, &request),
        Method::Invite => on_invite(service, id, request, source, transport).await,
        Method::Bye => match request.call_id().and_then(|c| service.call_of_dialog(c)) {
            Some(call) => {
                respond(service, id, &request, 200);
                service.finish(&call, None).await;
            }
            // The caller leaves the post-call survey.
            None if request
                .call_id()
                .is_some_and(|c| service.caller_left_survey(c)) =>
            {
                respond(service, id, &request, 200)
            }
            None => respond(service, id, &request, 481),
        },
        Method::Options => {
            let response = Message::response_to(&request, 200)
                .with_header("Allow", ALLOW)
                .with_header("Accept", "application/sdp")
                .with_header("Server", AGENT);
            service.sip_endpoint().respond(id, response);
        }
        Method::Register => on_register(service, id, &request, source).await,
        Method::Cancel | Method::Ack => {}
        _ if in_dialog => respond(service, id, &request, 481),
        _ => {
            let response = Message::response_to(&request, 405).with_header("Allow", ALLOW);
            service.sip_endpoint().respond(id, response);
        }
    }
}

/// Who may call in: a trunk (by source IP) or an authenticated desk phone.
enum Caller {
    Trunk,
    Phone,
}

async fn authorize_invite(
    service: &VoiceService,
    id: TransactionId,
    request: &Message,
    source: SocketAddr,
) -> Option<Caller> {
    let from_trunk = service.trunk_ips().await.contains(&source.ip());
    if from_trunk {
        return Some(Caller::Trunk);
    }
    let user = request.from().and_then(|f| f.uri.user).unwrap_or_default();
    let account = service.app().store.sip_account(&user).await.ok().flatten();
    let Some(account) = account else {
        respond(service, id, request, 403);
        return None;
    };
    let now = Instant::now();
    let verdict = service.ua().inviter.verify(now, request, |name| {
        (name == account.username).then(|| Secret::Ha1(account.ha1.clone()))
    });
    match verdict {
        Verdict::Authorized { .. } => Some(Caller::Phone),
        Verdict::Missing | Verdict::Stale => {
            let stale = matches!(verdict, Verdict::Stale);
            let challenge = service.ua().inviter.challenge_response(now, request, stale);
            service.sip_endpoint().respond(id, challenge);
            None
        }
        Verdict::Rejected(why) => {
            tracing::info!(user = %user, ?why, "desk phone INVITE refused");
            respond(service, id, request, 403);
            None
        }
    }
}

async fn on_invite(
    service: &Arc<VoiceService>,
    id: TransactionId,
    request: Message,
    source: SocketAddr,
    transport: Transport,
) {
    if authorize_invite(service, id, &request, source)
        .await
        .is_none()
    {
        return;
    }
    let Some(sip_call_id) = request.call_id().map(str::to_string) else {
        respond(service, id, &request, 400);
        return;
    };
    if service.call_of_dialog(&sip_call_id).is_some() {
        // A second INVITE with the same Call-ID and no tag: a fork or a loop.
        respond(service, id, &request, 482);
        return;
    }
    let offer = match SessionDescription::parse(request.body()) {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(%source, "INVITE without a usable SDP offer: {e}");
            let status = if request.body().is_empty() {
                488
            } else {
                e.status()
            };
            respond(service, id, &request, status);
            return;
        }
    };
    let negotiated = match sdp::negotiate(&offer, &[AudioCodec::Pcmu, AudioCodec::Pcma]) {
        Ok(n) => n,
        Err(e) => {
            let response = Message::response_to(&request, 488)
                .with_header("Warning", format!("304 {AGENT} \"{e}\""));
            service.sip_endpoint().respond(id, response);
            return;
        }
    };
    let socket = match service.bind_rtp().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("no RTP port for a call: {e}");
            let response = Message::response_to(&request, 503).with_header("Retry-After", 5);
            service.sip_endpoint().respond(id, response);
            return;
        }
    };
    let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
    let codec = media_codec(negotiated.codec);
    let local = LocalAudio::new(service.public_ip(), port)
        .with_codecs(&[negotiated.codec])
        .with_telephone_event(negotiated.telephone_event);
    let answer = negotiated.answer(&local);
    let dialed = request
        .uri()
        .and_then(|u| u.user.clone())
        .unwrap_or_default();
    let mut response = Message::response_to(&request, 200)
        .with_header("Contact", our_contact(service, &dialed))
        .with_header("Allow", ALLOW)
        .with_header("Server", AGENT);
    response.set_body("application/sdp", answer.to_bytes());
    let dialog = match Dialog::uas(&request, &response) {
        Ok(d) => d,
        Err(e) => {
            tracing::info!(%source, "INVITE cannot make a dialog: {e}");
            respond(service, id, &request, 400);
            return;
        }
    };
    let from = request
        .from()
        .map(|f| f.uri)
        .unwrap_or_else(|| SipUri::sip(None, "invalid", None));
    let caller_user = from.user.clone().unwrap_or_else(|| "anonymous".into());
    let party = caller_identity(
        &caller_user,
        &from.host,
        service.app().config.default_region.as_deref(),
    );
    let call_id = uuid::Uuid::now_v7().to_string();
    let media = service.start_media(
        &call_id,
        socket,
        negotiated.remote_rtp,
        codec,
        negotiated.telephone_event,
    );
    let now = now_ms();
    service.insert_call(Call {
        id: call_id.clone(),
        inbound: true,
        state: CallState::Ivr,
        state_since: now,
        remote_number: party.value().to_string(),
        dialed_number: dialed,
        contact_id: None,
        conversation_id: None,
        event_id: None,
        task_id: None,
        agent_id: None,
        agents: Vec::new(),
        ivr_path: Vec::new(),
        queue: None,
        queued_at: None,
        queue_wait_ms: 0,
        started_at: now,
        answered_at: None,
        muted: false,
        media,
        sip: SipLeg {
            call_id: sip_call_id,
            dialog: Some(dialog),
            peer: source,
            transport,
            local,
            invite_tx: Some(id),
        },
        recording: None,
        consult: None,
        pending_context: None,
    });
    service.sip_endpoint().respond(id, response);
    tokio::spawn(service.clone().run_inbound(call_id, party));
}

fn on_reinvite(service: &VoiceService, id: TransactionId, request: &Message) {
    let Some(call) = request.call_id().and_then(|c| service.call_of_dialog(c)) else {
        respond(service, id, request, 481);
        return;
    };
    let offer = match SessionDescription::parse(request.body()) {
        Ok(o) => o,
        Err(_) if request.body().is_empty() => {
            // An offerless re-INVITE (session refresh): offer what we have.
            let leg = service.with_call(&call, |c| c.sip.local.clone());
            if let Some(local) = leg {
                let mut response = Message::response_to(request, 200)
                    .with_header("Contact", our_contact(service, "switchboard"));
                response.set_body("application/sdp", local.offer().to_bytes());
                service.sip_endpoint().respond(id, response);
            }
            return;
        }
        Err(e) => {
            respond(service, id, request, e.status());
            return;
        }
    };
    let negotiated = match sdp::negotiate(&offer, &[AudioCodec::Pcmu, AudioCodec::Pcma]) {
        Ok(n) => n,
        Err(_) => {
            respond(service, id, request, 488);
            return;
        }
    };
    let answer = service.update(&call, |c| {
        c.sip.local.session_version += 1;
        if let Some(d) = &mut c.sip.dialog {
            let _ = d.receive_request(request);
        }
        negotiated.answer(&c.sip.local)
    });
    let Some(answer) = answer else { return };
    if let Some(media) = service.with_call(&call, |c| c.media.clone()) {
        let _ = media.try_send(crate::media::MediaCommand::CallerHold(negotiated.on_hold()));
    }
    let mut response = Message::response_to(request, 200)
        .with_header("Contact", our_contact(service, "switchboard"));
    response.set_body("application/sdp", answer.to_bytes());
    service.sip_endpoint().respond(id, response);
    tracing::info!(call = %call, hold = negotiated.on_hold(), "caller re-INVITE");
}

async fn on_register(
    service: &VoiceService,
    id: TransactionId,
    request: &Message,
    source: SocketAddr,
) {
    let user = request.to().and_then(|t| t.uri.user).unwrap_or_default();
    let account = service.app().store.sip_account(&user).await.ok().flatten();
    let now = Instant::now();
    let verdict = {
        let mut ua = service.ua();
        ua.registrar.verify(now, request, |name| {
            account
                .as_ref()
                .filter(|a| a.username == name)
                .map(|a| Secret::Ha1(a.ha1.clone()))
        })
    };
    match verdict {
        Verdict::Authorized { username } if username == user => {
            let expires = request
                .contacts()
                .first()
                .and_then(|c| c.params.value("expires").and_then(|v| v.parse().ok()))
                .or(request.expires())
                .unwrap_or(MAX_EXPIRES)
                .min(MAX_EXPIRES);
            let contact = request.contacts().first().map(|c| c.uri.to_string());
            let mut ua = service.ua();
            if expires == 0 || request.has_wildcard_contact() {
                ua.bindings.remove(&user);
            } else if let Some(contact) = &contact {
                ua.bindings.insert(
                    user.clone(),
                    Binding {
                        contact: contact.clone(),
                        source,
                        expires_at: now + Duration::from_secs(u64::from(expires)),
                    },
                );
            }
            let binding = ua.bindings.get(&user).cloned();
            drop(ua);
            let mut response = Message::response_to(request, 200).with_header("Server", AGENT);
            if let Some(b) = binding {
                let left = b.expires_at.saturating_duration_since(now).as_secs();
                response.push_header("Contact", format!("<{}>;expires={left}", b.contact));
            }
            service.sip_endpoint().respond(id, response);
            tracing::info!(user = %user, expires, "desk phone registered");
        }
        Verdict::Authorized { .. } => respond(service, id, request, 403),
        Verdict::Missing | Verdict::Stale => {
            let stale = matches!(verdict, Verdict::Stale);
            let challenge = service
                .ua()
                .registrar
                .challenge_response(now, request, stale);
            service.sip_endpoint().respond(id, challenge);
        }
        Verdict::Rejected(why) => {
            tracing::info!(user = %user, ?why, %source, "REGISTER refused");
            respond(service, id, request, 403);
        }
    }
}

/// The media crate's codec for an SDP codec.
fn media_codec(codec: AudioCodec) -> Codec {
    match codec {
        AudioCodec::Pcmu => Codec::Pcmu,
        AudioCodec::Pcma => Codec::Pcma,
    }
}

/// Sends `request` and waits for its final response (provisional ones go to
/// `on_provisional`); `None` when the transaction timed out.
async fn request_final(
    service: &VoiceService,
    request: Message,
    peer: SocketAddr,
    transport: Transport,
    mut on_provisional: impl FnMut(&Message),
) -> Result<(TransactionId, Option<Message>), AppError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = service
        .sip_endpoint()
        .send_request(request, peer, transport)
        .await
        .map_err(|e| {
            AppError::new(
                switchboard_app::ErrorKind::BadGateway,
                "sip_unreachable",
                e.to_string(),
            )
        })?;
    service.ua().waiters.insert(id, tx);
    loop {
        match rx.recv().await {
            Some(Some(response)) if response.status().is_some_and(|s| s < 200) => {
                on_provisional(&response);
            }
            Some(Some(response)) => {
                service.ua().waiters.remove(&id);
                return Ok((id, Some(response)));
            }
            Some(None) | None => {
                service.ua().waiters.remove(&id);
                return Ok((id, None));
            }
        }
    }
}

/// An outbound call from `agent_id` to `number` through the first trunk: the call
/// rings (state `ringing`), and when the far end answers it is bridged to the
/// agent's browser. Returns the call id once the INVITE is out.
pub async fn dial(
    service: &Arc<VoiceService>,
    agent_id: &str,
    party: switchboard_core::Identity,
) -> Result<String, AppError> {
    let trunk = service
        .app()
        .store
        .trunks()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            AppError::new(
                switchboard_app::ErrorKind::Conflict,
                "no_trunk",
                "no SIP trunk is configured (switchboard trunk add)",
            )
        })?;
    let peer: SocketAddr = tokio::net::lookup_host(trunk.address.as_str())
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            AppError::bad_request(format!(
                "trunk address {:?} does not resolve",
                trunk.address
            ))
        })?;
    let number = party.value().to_string();
    let socket = service.bind_rtp().await.map_err(|e| {
        AppError::new(
            switchboard_app::ErrorKind::Unavailable,
            "no_media_port",
            e.to_string(),
        )
    })?;
    let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
    let local = LocalAudio::new(service.public_ip(), port);
    let offer = local.offer();
    let sip_call_id = new_call_id(&service.public_ip().to_string());
    let transport = Transport::Udp;
    let target = SipUri::sip(Some(&number), &peer.ip().to_string(), Some(peer.port()));
    let mut from = NameAddr::new(SipUri::sip(
        Some("switchboard"),
        &service.public_ip().to_string(),
        Some(service.sip_addr().port()),
    ));
    from.params.set("tag", Some(&new_tag()));
    let mut invite = Message::request(Method::Invite, target.clone())
        .with_header("Via", our_via(service, transport))
        .with_header("Max-Forwards", 70)
        .with_header("From", &from)
        .with_header("To", NameAddr::new(target))
        .with_header("Call-ID", &sip_call_id)
        .with_header("CSeq", "1 INVITE")
        .with_header("Contact", our_contact(service, "switchboard"))
        .with_header("Allow", ALLOW)
        .with_header("User-Agent", AGENT);
    invite.set_body("application/sdp", offer.to_bytes());

    let call_id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    // The media task starts when the far end's SDP names its address; until then a
    // placeholder command channel keeps the call's shape.
    let (placeholder, _) = mpsc::channel(1);
    service.insert_call(Call {
        id: call_id.clone(),
        inbound: false,
        state: CallState::Ringing,
        state_since: now,
        remote_number: number.clone(),
        dialed_number: number.clone(),
        contact_id: None,
        conversation_id: None,
        event_id: None,
        task_id: None,
        agent_id: Some(agent_id.to_string()),
        agents: vec![agent_id.to_string()],
        ivr_path: Vec::new(),
        queue: None,
        queued_at: None,
        queue_wait_ms: 0,
        started_at: now,
        answered_at: None,
        muted: false,
        media: placeholder,
        sip: SipLeg {
            call_id: sip_call_id,
            dialog: None,
            peer,
            transport,
            local,
            invite_tx: None,
        },
        recording: None,
        consult: None,
        pending_context: None,
    });
    service.record_start(&call_id, party, false).await?;
    let service = service.clone();
    let agent = agent_id.to_string();
    let id = call_id.clone();
    tokio::spawn(async move {
        let outcome = outbound(
            &service, &id, &agent, invite, offer, peer, transport, trunk, socket,
        )
        .await;
        if let Err(why) = outcome {
            tracing::info!(call = %id, "outbound call ended: {why}");
            let status = if why.starts_with("busy") || why.starts_with("declined") {
                "missed"
            } else {
                "failed"
            };
            service.finish(&id, Some(status)).await;
        }
    });
    Ok(call_id)
}

#[allow(clippy::too_many_arguments)]
async fn outbound(
    service: &Arc<VoiceService>,
    call_id: &str,
    agent: &str,
    invite: Message,
    offer: SessionDescription,
    peer: SocketAddr,
    transport: Transport,
    trunk: switchboard_store::TrunkRow,
    socket: tokio::net::UdpSocket,
) -> Result<(), String> {
    let mut request = invite;
    let mut tried_auth = false;
    let response = loop {
        let (_, response) = request_final(service, request.clone(), peer, transport, |_| {})
            .await
            .map_err(|e| format!("{e:?}"))?;
        let response = response.ok_or("no answer from the trunk")?;
        let status = response.status().unwrap_or(500);
        if (status == 401 || status == 407) && !tried_auth {
            let (Some(user), Some(password)) = (&trunk.username, &trunk.password) else {
                return Err(format!(
                    "the trunk wants credentials ({status}) and none are set"
                ));
            };
            tried_auth = true;
            let mut client = DigestClient::new(user, password);
            request = client
                .authorize(&request, &response)
                .map_err(|e| format!("cannot answer the trunk's challenge: {e}"))?;
            // The ACK for the 401/407 was sent by the transaction layer.
            continue;
        }
        break response;
    };
    let status = response.status().unwrap_or(500);
    if !(200..300).contains(&status) {
        return Err(match status {
            486 | 600 => format!("busy ({status})"),
            603 => format!("declined ({status})"),
            _ => format!("refused with {status}"),
        });
    }
    let mut dialog = Dialog::uac(&request, &response).map_err(|e| e.to_string())?;
    dialog.confirm(&response).map_err(|e| e.to_string())?;
    let cseq = request.cseq().map(|c| c.number).unwrap_or(1);
    let ack = dialog.ack(cseq, &our_via(service, transport));
    service.sip_endpoint().send_stateless(ack, peer, transport);
    let answer = SessionDescription::parse(response.body()).map_err(|e| format!("answer SDP: {e}"));
    let negotiated =
        answer.and_then(|a| sdp::Negotiated::from_answer(&offer, &a).map_err(|e| e.to_string()));
    let negotiated = match negotiated {
        Ok(n) => n,
        Err(e) => {
            let leg = SipLeg {
                call_id: request.call_id().unwrap_or_default().to_string(),
                dialog: Some(dialog),
                peer,
                transport,
                local: LocalAudio::new(service.public_ip(), 0),
                invite_tx: None,
            };
            send_bye(
                service.sip_endpoint(),
                service.public_ip(),
                service.sip_addr(),
                &leg,
            )
            .await;
            return Err(e);
        }
    };
    let codec = media_codec(negotiated.codec);
    let media = service.start_media(
        call_id,
        socket,
        negotiated.remote_rtp,
        codec,
        negotiated.telephone_event,
    );
    let live = service.update(call_id, |c| {
        c.media = media;
        c.sip.dialog = Some(dialog);
        c.answered_at = Some(now_ms());
    });
    if live.is_none() {
        return Ok(());
    }
    service.bridge(call_id, agent).await;
    service.app().notifier.publish(
        "call.answered",
        switchboard_app::Audience::Agents(vec![agent.to_string()]),
        json!({"call_id": call_id}),
    );
    Ok(())
}

impl VoiceService {
    /// The live call whose INVITE server transaction is `id`.
    pub fn call_with_invite(&self, id: TransactionId) -> Option<String> {
        self.calls
            .lock()
            .expect("calls")
            .values()
            .find(|c| c.sip.invite_tx == Some(id))
            .map(|c| c.id.clone())
    }
}
