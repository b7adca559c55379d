// The softphone's audio path: one RTCPeerConnection to the host, negotiated once over
// the realtime socket and kept up between calls, so answering is only the host bridging
// a call into audio that already flows. This module owns the connection, the
// microphone and the element that plays the far end; it knows nothing of calls.
//
// Signaling: the tab sends `{type: "webrtc.offer", sdp}` (ICE gathered in full, the
// host does no trickle) and the host answers on the same socket with
// `{type: "webrtc.answer", sdp}` or `{type: "webrtc.error", message}`. A new socket, a
// failed connection or a lost one starts over with a fresh connection and offer; only
// one offer is outstanding at a time, so an answer always belongs to the last offer.
//
// On a cluster a call lives on the node whose SIP and RTP sockets answered it. When a
// call is offered to this agent on a node their audio is not connected to, that node
// sends `softphone.move` ({agent_id, node}); the connection starts over with offers
// naming the node (`{type: "webrtc.offer", sdp, node}`), which this socket's node hands
// to it, so the audio flows to the node carrying the call. A refused offer forgets the
// node, and the next one goes to the socket's own node again.

import { h } from './dom.js';

const GATHER_MS = 2000;
const ANSWER_MS = 10_000;
// A connection that dropped often comes back by itself within a moment.
const DISCONNECTED_GRACE_MS = 2000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

/** Resolves once ICE gathering is complete, or after `ms` with what was gathered. */
function gathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

export class AudioLink {
  /** `onChange()` is called whenever `state`, `micError` or `error` change. */
  constructor(rt, { onChange } = {}) {
    this.rt = rt;
    this.onChange = onChange ?? (() => {});
    this.pc = null;
    this.gen = 0;
    this.pending = null; // {gen, timer}: the offer waiting for its answer on this socket
    this.again = false; // start over once the pending answer is in
    this.retryTimer = null;
    this.graceTimer = null;
    this.delay = RETRY_MIN_MS;
    this.stream = null;
    this.micPromise = null;
    this.muted = false;
    this.stopped = true;
    this.state = 'new';
    this.micError = null;
    this.error = null;
    this.node = null; // the cluster node the audio goes to (null: the socket's own)
    this.offs = [];
    // Outside any view, so the far end keeps playing while the router swaps pages.
    this.audio = h('audio', { autoplay: true, class: 'sr-only', 'data-testid': 'softphone-remote-audio', 'aria-hidden': 'true' });
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    document.body.append(this.audio);
    this.offs = [
      this.rt.on('open', () => this.socketOpened()),
      this.rt.on('webrtc.answer', (msg) => this.answered(msg)),
      this.rt.on('webrtc.error', (msg) => this.refused(msg)),
      this.rt.on('softphone.move', (data) => this.moveTo(data?.node)),
    ];
    if (this.rt.state === 'connected') this.negotiate();
  }

  stop() {
    this.stopped = true;
    this.offs.forEach((off) => off());
    this.offs = [];
    this.clearPending();
    clearTimeout(this.retryTimer);
    clearTimeout(this.graceTimer);
    this.gen += 1;
    this.closePc();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    this.micPromise = null;
    this.audio.srcObject = null;
    this.audio.remove();
  }

  /** Mutes the microphone here, whatever the host makes of the request. */
  setMuted(muted) {
    this.muted = Boolean(muted);
    for (const t of this.stream?.getAudioTracks() ?? []) t.enabled = !this.muted;
  }

  /** Starts playback from a user gesture, where the browser blocked autoplay. */
  unlock() {
    if (this.audio.srcObject && this.audio.paused) this.audio.play().catch(() => {});
  }

  // ------------------------------------------------------------ negotiation

  /** A call waits on cluster node `node`: connect the audio there. */
  moveTo(node) {
    if (this.stopped || typeof node !== 'string' || !node || node === this.node) return;
    this.node = node;
    this.delay = RETRY_MIN_MS;
    this.negotiate();
  }

  socketOpened() {
    // The host ties the connection to the socket: whatever was negotiated on the old
    // one is gone, and an answer to an offer sent there will never come.
    this.clearPending();
    this.again = false;
    this.delay = RETRY_MIN_MS;
    this.negotiate();
  }

  async negotiate() {
    if (this.stopped) return;
    if (this.pending) { this.again = true; return; }
    clearTimeout(this.retryTimer);
    clearTimeout(this.graceTimer);
    const gen = ++this.gen;
    this.closePc();
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
    } catch (e) {
      this.fail(`WebRTC unavailable: ${e.message}`);
      return;
    }
    this.pc = pc;
    pc.addEventListener('connectionstatechange', () => this.stateChanged(pc));
    pc.addEventListener('track', (ev) => {
      if (pc !== this.pc) return;
      this.audio.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
      this.audio.play().catch(() => { /* autoplay blocked until a click; see unlock() */ });
    });
    this.setState(pc.connectionState);
    try {
      const track = await this.microphone();
      if (gen !== this.gen) return;
      // Without a microphone the line is still sendrecv, so the agent hears the caller
      // and the host's offer/answer shape stays the same.
      if (track) pc.addTransceiver(track, { direction: 'sendrecv', streams: [this.stream] });
      else pc.addTransceiver('audio', { direction: 'sendrecv' });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_MS);
    } catch (e) {
      if (gen === this.gen) this.fail(`Audio not set up: ${e.message}`);
      return;
    }
    if (gen !== this.gen || this.stopped) return;
    // No socket now: the next 'open' negotiates again.
    const offer = { type: 'webrtc.offer', sdp: pc.localDescription.sdp };
    if (this.node) offer.node = this.node;
    if (!this.rt.send(offer)) return;
    this.pending = {
      gen,
      timer: setTimeout(() => {
        this.pending = null;
        this.fail('The server did not answer the audio offer.');
      }, ANSWER_MS),
    };
  }

  async answered(msg) {
    const pending = this.pending;
    if (!pending) return;
    this.clearPending();
    const pc = this.pc;
    if (this.again) { this.again = false; this.negotiate(); return; }
    if (pending.gen !== this.gen || !pc || pc.signalingState !== 'have-local-offer') return;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: String(msg?.sdp ?? '') });
      if (this.error) { this.error = null; this.onChange(); }
    } catch (e) {
      if (pc === this.pc) this.fail(`The server's audio answer was not usable: ${e.message}`);
    }
  }

  refused(msg) {
    if (!this.pending) return;
    this.clearPending();
    if (this.again) { this.again = false; this.negotiate(); return; }
    // The node it named may be gone: the next offer goes to the socket's own node.
    this.node = null;
    this.fail(`Audio refused by the server: ${msg?.message ?? 'no reason given'}`);
  }

  stateChanged(pc) {
    if (pc !== this.pc) return;
    const state = pc.connectionState;
    this.setState(state);
    clearTimeout(this.graceTimer);
    if (state === 'connected') {
      this.delay = RETRY_MIN_MS;
      if (this.error) { this.error = null; this.onChange(); }
    } else if (state === 'failed') {
      this.retry();
    } else if (state === 'disconnected') {
      this.graceTimer = setTimeout(() => {
        if (pc === this.pc && (pc.connectionState === 'disconnected' || pc.connectionState === 'failed')) this.negotiate();
      }, DISCONNECTED_GRACE_MS);
    }
  }

  fail(message) {
    console.warn('softphone:', message);
    this.error = message;
    this.onChange();
    this.retry();
  }

  /** Starts over after a backoff, so a host that keeps refusing is not hammered. */
  retry() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const wait = this.delay * (0.8 + Math.random() * 0.4);
    this.delay = Math.min(RETRY_MAX_MS, this.delay * 2);
    this.retryTimer = setTimeout(() => this.negotiate(), wait);
  }

  clearPending() {
    if (this.pending) clearTimeout(this.pending.timer);
    this.pending = null;
  }

  closePc() {
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      try { pc.close(); } catch { /* already closed */ }
    }
    this.setState('new');
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onChange();
  }

  // ------------------------------------------------------------ microphone

  /** The microphone track, asked for once and kept; null when there is none. */
  async microphone() {
    const live = this.stream?.getAudioTracks().find((t) => t.readyState === 'live');
    if (live) return live;
    if (!this.micPromise) {
      this.micPromise = (async () => {
        if (!navigator.mediaDevices?.getUserMedia) throw new Error('this page cannot use a microphone (it needs https or localhost)');
        return navigator.mediaDevices.getUserMedia({ audio: true });
      })();
    }
    let stream;
    try {
      stream = await this.micPromise;
    } catch (e) {
      this.micPromise = null;
      const text = e.name === 'NotAllowedError' ? 'access was refused' : e.name === 'NotFoundError' ? 'none was found' : e.message;
      if (this.micError !== text) { this.micError = text; this.onChange(); }
      return null;
    }
    if (this.stopped) { stream.getTracks().forEach((t) => t.stop()); return null; }
    if (this.stream !== stream) {
      this.stream = stream;
      for (const t of stream.getAudioTracks()) {
        t.enabled = !this.muted;
        // A headset unplugged: ask again on the next negotiation.
        t.addEventListener('ended', () => { if (this.stream === stream) { this.stream = null; this.micPromise = null; } });
      }
    }
    if (this.micError) { this.micError = null; this.onChange(); }
    return stream.getAudioTracks()[0] ?? null;
  }
}
