//! The media task of one call: the caller's RTP socket, the relay towards the agent's
//! browser, prompts and hold music, digit gathering, and the recording.
//!
//! Each call owns one task and one UDP socket from `SWITCHBOARD_RTP_PORTS`. Commands
//! come from the call logic ([`MediaCommand`]); the agent leg is whatever
//! [`AgentSink`] the call is bridged to (the agent's WebRTC session), and packets
//! from that leg come back in as [`MediaCommand::FromAgent`]. Time is the task's
//! own monotonic milliseconds; the sans-IO [`Relay`], [`Player`], [`DtmfSender`] and
//! [`Recorder`] do the rest.

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_media::{
    Codec, DtmfSender, Leg, LegConfig, Output, Player, Recorder, Relay, RelayConfig, RtpPacket,
    StreamStart,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Where the agent leg's packets go: the agent's WebRTC session.
pub type AgentSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Decoded prompt audio (8 kHz linear samples), shared between calls.
pub type Prompt = Arc<Vec<i16>>;

/// What the call logic asks of the media task.
pub enum MediaCommand {
    /// Play a prompt to the caller, replacing what was playing.
    Play {
        /// The audio.
        prompt: Prompt,
        /// Hold music loops; prompts play once.
        looping: bool,
        /// Told when a one-shot prompt has finished (or was replaced).
        done: Option<oneshot::Sender<()>>,
    },
    /// Stop playing.
    Silence,
    /// Collect caller digits: ends at `max_digits`, at `#`, or `timeout` after the
    /// prompt playing now has finished (or after the last digit).
    Gather {
        /// Most digits to collect.
        max_digits: u8,
        /// Inter-digit timeout.
        timeout: Duration,
        /// Gets the digits (possibly none).
        reply: oneshot::Sender<String>,
    },
    /// Connect the caller to an agent leg.
    Bridge {
        /// Where the agent leg's packets go.
        sink: AgentSink,
        /// The browser's telephone-event payload type.
        telephone_event: Option<u8>,
    },
    /// Disconnect the agent leg (transfer, consult).
    Unbridge,
    /// Hold: the bridge goes quiet and the caller hears `music`.
    Hold {
        /// On or off.
        held: bool,
        /// Hold music.
        music: Prompt,
    },
    /// A packet from the agent's browser.
    FromAgent(Vec<u8>),
    /// DTMF from the agent's keypad, towards the caller.
    SendDigits(String),
    /// Start recording both directions into this file (if not already recording).
    Record(PathBuf),
    /// The caller put us on hold (`sendonly`/`inactive`): silence from them is
    /// expected, so the RTP timeout is paused.
    CallerHold(bool),
    /// The call is over but the line stays open (the post-call survey): the agent
    /// leg is dropped, the recording ends, keys pressed so far are forgotten (they
    /// were meant for the agent); gets the call's summary.
    EndCall(oneshot::Sender<MediaSummary>),
    /// Stop everything; gets the summary.
    Stop(oneshot::Sender<MediaSummary>),
}

/// What a call's media did.
#[derive(Debug, Clone, Default)]
pub struct MediaSummary {
    /// Where the recording is, if there is one.
    pub recording: Option<PathBuf>,
    /// Packets from the caller, and sent to them.
    pub caller_packets: (u64, u64),
    /// Packets from the agent leg, and sent to it.
    pub agent_packets: (u64, u64),
}

/// Counters shared by every call's media task, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct MediaCounters {
    /// RTP datagrams received from callers.
    pub rtp_in: AtomicU64,
    /// Datagrams received from unexpected addresses and dropped.
    pub foreign_dropped: AtomicU64,
}

/// Settings of one call's media.
pub struct MediaSetup {
    /// The bound RTP socket.
    pub socket: UdpSocket,
    /// The caller's RTP address from SDP.
    pub remote: SocketAddr,
    /// The negotiated codec.
    pub codec: Codec,
    /// The caller's telephone-event payload type.
    pub telephone_event: Option<u8>,
    /// The call, for logs and for [`MediaSetup::dead`].
    pub call_id: String,
    /// Shared counters.
    pub counters: Arc<MediaCounters>,
    /// No RTP from the caller for this long (and not on hold) means the call is dead.
    pub rtp_timeout: Duration,
    /// Gets the call id once when that happens.
    pub dead: mpsc::UnboundedSender<String>,
}

struct Gathering {
    max_digits: u8,
    timeout: Duration,
    digits: String,
    deadline: Option<Instant>,
    reply: oneshot::Sender<String>,
}

struct Playing {
    player: Player,
    done: Option<oneshot::Sender<()>>,
}

/// Spawns the media task of a call; returns its command channel.
pub fn spawn(setup: MediaSetup) -> mpsc::Sender<MediaCommand> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(run(setup, rx));
    tx
}

fn random_start() -> StreamStart {
    StreamStart {
        ssrc: rand::random(),
        sequence: rand::random(),
        timestamp: rand::random(),
    }
}

async fn run(setup: MediaSetup, mut commands: mpsc::Receiver<MediaCommand>) {
    let MediaSetup {
        socket,
        mut remote,
        codec,
        telephone_event,
        call_id,
        counters,
        rtp_timeout,
        dead,
    } = setup;
    let config = RelayConfig {
        codec,
        a: LegConfig {
            outgoing: random_start(),
            telephone_event,
        },
        b: LegConfig {
            outgoing: random_start(),
            telephone_event: None,
        },
    };
    let mut relay = match Relay::new(config) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("call media not started: {e}");
            return;
        }
    };
    let clock = Instant::now();
    let now_ms = move || clock.elapsed().as_millis() as u64;
    let mut sink: Option<AgentSink> = None;
    let mut playing: Option<Playing> = None;
    let mut gathering: Option<Gathering> = None;
    let mut dtmf: Vec<(u64, DtmfSender)> = Vec::new();
    let mut pending_digits: Vec<char> = Vec::new();
    let mut typeahead: Vec<char> = Vec::new();
    let mut recorder: Option<(PathBuf, Recorder<BufWriter<File>>)> = None;
    let mut latched = false;
    let mut caller_held = false;
    let mut last_rx = Instant::now();
    let mut reported_dead = false;
    let mut buf = vec![0u8; 2048];

    loop {
        // The next instant something is due: a prompt frame, a DTMF packet, a gather.
        let mut next: Option<u64> = playing.as_ref().and_then(|p| p.player.poll_timeout());
        for (_, s) in &dtmf {
            if let Some(due) = s.poll_timeout() {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        let wake = next.map(|ms| clock + Duration::from_millis(ms));
        let gather_deadline = gathering.as_ref().and_then(|g| g.deadline);
        let silence_deadline = (!caller_held && !reported_dead).then_some(last_rx + rtp_timeout);
        let deadline = [wake, gather_deadline, silence_deadline]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = received else { continue };
                if from != remote {
                    // Symmetric RTP ("comedia"): the caller's first packet names its
                    // real address, which behind NAT is not the one in its SDP; from
                    // then on anything from elsewhere is dropped.
                    if !latched {
                        remote = from;
                    } else {
                        counters.foreign_dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                latched = true;
                last_rx = Instant::now();
                counters.rtp_in.fetch_add(1, Ordering::Relaxed);
                let now = now_ms();
                if let Some((_, rec)) = &mut recorder
                    && let Ok(packet) = RtpPacket::parse(&buf[..n])
                {
                    let law = Codec::from_payload_type(packet.payload_type).unwrap_or(codec);
                    let _ = rec.record_rtp(now, Leg::A, law, &packet);
                }
                for output in relay.handle_packet(now, Leg::A, &buf[..n]) {
                    match output {
                        Output::Transmit { to: Leg::B, packet } => {
                            if let Some(s) = &sink {
                                s(&packet);
                            }
                        }
                        Output::Transmit { to: Leg::A, packet } => {
                            let _ = socket.send_to(&packet, remote).await;
                        }
                        Output::Digit { from: Leg::A, digit } => pending_digits.push(digit),
                        Output::Digit { .. } => {}
                    }
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { break };
                let now = now_ms();
                match command {
                    MediaCommand::Play { prompt, looping, done } => {
                        if let Some(old) = playing.take()
                            && let Some(d) = old.done
                        {
                            let _ = d.send(());
                        }
                        match Player::from_samples(now, codec, &prompt, looping) {
                            Ok(player) => playing = Some(Playing { player, done }),
                            Err(e) => {
                                tracing::warn!("prompt not played: {e}");
                                if let Some(d) = done {
                                    let _ = d.send(());
                                }
                            }
                        }
                    }
                    MediaCommand::Silence => {
                        if let Some(old) = playing.take()
                            && let Some(d) = old.done
                        {
                            let _ = d.send(());
                        }
                    }
                    MediaCommand::Gather { max_digits, timeout, reply } => {
                        let prompting = playing.as_ref().is_some_and(|p| !p.player.is_finished());
                        gathering = Some(Gathering {
                            max_digits: max_digits.max(1),
                            timeout,
                            digits: String::new(),
                            deadline: (!prompting).then(|| Instant::now() + timeout),
                            reply,
                        });
                        // Digits typed ahead (during an announcement) count.
                        pending_digits.append(&mut typeahead);
                    }
                    MediaCommand::Bridge { sink: s, telephone_event } => {
                        if let Err(e) = relay.set_telephone_event(Leg::B, telephone_event) {
                            tracing::warn!("agent leg without DTMF: {e}");
                        }
                        relay.set_hold(false);
                        playing = None;
                        sink = Some(s);
                    }
                    MediaCommand::Unbridge => sink = None,
                    MediaCommand::Hold { held, music } => {
                        relay.set_hold(held);
                        playing = if held {
                            Player::from_samples(now, codec, &music, true)
                                .ok()
                                .map(|player| Playing { player, done: None })
                        } else {
                            None
                        };
                    }
                    MediaCommand::FromAgent(packet) => {
                        if let Some((_, rec)) = &mut recorder
                            && let Ok(p) = RtpPacket::parse(&packet)
                        {
                            let law = Codec::from_payload_type(p.payload_type).unwrap_or(codec);
                            let _ = rec.record_rtp(now, Leg::B, law, &p);
                        }
                        if sink.is_none() {
                            continue;
                        }
                        for output in relay.handle_packet(now, Leg::B, &packet) {
                            if let Output::Transmit { to: Leg::A, packet } = output {
                                let _ = socket.send_to(&packet, remote).await;
                            }
                        }
                    }
                    MediaCommand::SendDigits(digits) => {
                        let mut start = now;
                        for d in digits.chars() {
                            match DtmfSender::new(start, d, 100) {
                                Ok(s) => dtmf.push((start, s)),
                                Err(e) => tracing::debug!("digit {d:?} not sent: {e}"),
                            }
                            start += 200;
                        }
                    }
                    MediaCommand::Record(path) => {
                        if recorder.is_none() {
                            match File::create(&path)
                                .map_err(switchboard_media::WavError::from)
                                .and_then(|f| Recorder::new(BufWriter::new(f), now))
                            {
                                Ok(r) => recorder = Some((path, r)),
                                Err(e) => tracing::error!(path = %path.display(), "recording not started: {e}"),
                            }
                        }
                    }
                    MediaCommand::CallerHold(held) => {
                        caller_held = held;
                        last_rx = Instant::now();
                    }
                    MediaCommand::EndCall(reply) => {
                        sink = None;
                        relay.set_hold(false);
                        playing = None;
                        pending_digits.clear();
                        typeahead.clear();
                        let _ = reply.send(summarize(&relay, &mut recorder));
                    }
                    MediaCommand::Stop(reply) => {
                        let summary = summarize(&relay, &mut recorder);
                        if let Some(g) = gathering.take() {
                            let _ = g.reply.send(g.digits);
                        }
                        let _ = reply.send(summary);
                        return;
                    }
                }
            }
            _ = sleep => {}
        }

        if !caller_held && !reported_dead && last_rx.elapsed() >= rtp_timeout {
            reported_dead = true;
            let _ = dead.send(call_id.clone());
        }
        // Due work: prompt frames, DTMF packets, gather progress.
        let now = now_ms();
        if let Some(p) = &mut playing {
            while let Some(frame) = p.player.handle_timeout(now) {
                let packet = relay.play(Leg::A, &frame);
                let _ = socket.send_to(&packet, remote).await;
            }
            if p.player.is_finished() {
                if let Some(d) = p.done.take() {
                    let _ = d.send(());
                }
                playing = None;
                if let Some(g) = &mut gathering
                    && g.deadline.is_none()
                {
                    g.deadline = Some(Instant::now() + g.timeout);
                }
            }
        }
        let mut finished = Vec::new();
        for (i, (started, sender)) in dtmf.iter_mut().enumerate() {
            while let Some(packet) = sender.handle_timeout(now) {
                if let Some(bytes) = relay.play_event(Leg::A, *started, &packet) {
                    let _ = socket.send_to(&bytes, remote).await;
                }
            }
            if sender.poll_timeout().is_none() {
                finished.push(i);
            }
        }
        for i in finished.into_iter().rev() {
            dtmf.remove(i);
        }
        let mut complete = false;
        if let Some(g) = &mut gathering {
            for d in pending_digits.drain(..) {
                if d == '#' && !g.digits.is_empty() {
                    complete = true;
                    break;
                }
                if d == '#' && g.max_digits > 1 {
                    complete = true;
                    break;
                }
                g.digits.push(d);
                // Barge-in: the caller answered, the prompt stops.
                playing = None;
                g.deadline = Some(Instant::now() + g.timeout);
                if g.digits.len() >= usize::from(g.max_digits) {
                    complete = true;
                    break;
                }
            }
            if g.deadline.is_some_and(|d| Instant::now() >= d) {
                complete = true;
            }
        } else {
            // Kept for the next gather (callers type ahead of the menu), a few only.
            for d in pending_digits.drain(..) {
                tracing::debug!(call = %call_id, digit = %d, "caller pressed a key");
                if typeahead.len() < 16 {
                    typeahead.push(d);
                }
            }
        }
        if complete && let Some(g) = gathering.take() {
            let _ = g.reply.send(g.digits);
        }
    }
    if let Some((_, rec)) = recorder.take() {
        let _ = rec.finish();
    }
}

/// The packet counts so far, and the recording finished (it ends here).
fn summarize(
    relay: &Relay,
    recorder: &mut Option<(PathBuf, Recorder<BufWriter<File>>)>,
) -> MediaSummary {
    let mut summary = MediaSummary {
        caller_packets: (
            relay.stats(Leg::A).packets_in,
            relay.stats(Leg::A).packets_out,
        ),
        agent_packets: (
            relay.stats(Leg::B).packets_in,
            relay.stats(Leg::B).packets_out,
        ),
        ..MediaSummary::default()
    };
    if let Some((path, rec)) = recorder.take() {
        match rec.finish() {
            Ok(_) => summary.recording = Some(path),
            Err(e) => tracing::error!("recording not finished: {e}"),
        }
    }
    summary
}
