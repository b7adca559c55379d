// The realtime socket: one per signed-in tab, reconnecting with backoff and resuming
// from the last sequence number seen so a short drop loses nothing.
//
// Two kinds of message arrive. Hub events `{seq, type, at, data}` are the feed everyone
// shares; handlers get `data` (and the whole message second). Direct messages have no
// `seq` — the host's replies to what this tab sent with `send()`, such as
// `webrtc.answer` — and handlers get the whole message. Direct messages belong to one
// socket: after a reconnect (`open` fires again) nothing sent before will be answered.

const MIN_DELAY = 500;
const MAX_DELAY = 10_000;

export const STATE_TEXT = {
  connected: 'connected',
  reconnecting: 'reconnecting…',
  offline: 'offline',
};

export class Realtime {
  constructor(getToken) {
    this.getToken = getToken;
    this.handlers = new Map();
    this.lastSeq = null;
    this.delay = MIN_DELAY;
    this.ws = null;
    this.timer = null;
    this.stopped = true;
    this.state = 'offline';
    this.failures = 0;
    this.onOnline = () => { if (!this.stopped) { this.delay = MIN_DELAY; this.reconnectNow(); } };
    this.onOffline = () => { if (!this.stopped) this.setState('offline'); };
  }

  /**
   * Subscribes to a message type ('offer.created', 'webrtc.answer', 'resync', '*'), or
   * to 'state' (connected/reconnecting/offline) or 'open' (every new socket, also when
   * the badge never left "connected"); returns an unsubscribe.
   */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type)?.delete(fn);
  }

  emit(type, payload, message) {
    for (const fn of [...(this.handlers.get(type) ?? [])]) {
      try { fn(payload, message); } catch (e) { console.error('realtime handler', type, e); }
    }
  }

  /** Sends a JSON message on the open socket; false when there is none (wait for 'open'). */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    clearTimeout(this.timer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
    this.lastSeq = null;
    this.setState('offline');
  }

  reconnectNow() {
    clearTimeout(this.timer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    const t = this.getToken();
    if (!t) { this.setState('offline'); return; }
    if (navigator.onLine === false) { this.setState('offline'); this.schedule(); return; }
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const params = new URLSearchParams({ token: t });
    if (this.lastSeq != null) params.set('since', String(this.lastSeq));
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/api/v1/realtime?${params}`);
    } catch {
      this.schedule();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.delay = MIN_DELAY;
      this.setState('connected');
      this.emit('open');
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (typeof msg.seq === 'number') this.lastSeq = Math.max(this.lastSeq ?? 0, msg.seq);
      if (msg.type === 'error' && msg.code === 'unauthorized') {
        this.emit('unauthorized', msg);
        return;
      }
      this.emit(msg.type, msg.data ?? msg, msg);
      this.emit('*', msg);
    };
    ws.onclose = () => {
      this.ws = null;
      if (this.stopped) return;
      if (!opened) {
        this.failures += 1;
        // A refused upgrade looks like any other failure from here; let the shell
        // check whether the session expired (it answers 401 through REST).
        if (this.failures === 3) this.emit('check-session');
      }
      this.schedule();
    };
  }

  schedule() {
    if (this.stopped) return;
    if (navigator.onLine !== false) this.setState('reconnecting');
    clearTimeout(this.timer);
    // Jitter so a fleet of desks does not hammer a restarted host in lockstep.
    const wait = this.delay * (0.8 + Math.random() * 0.4);
    this.delay = Math.min(MAX_DELAY, this.delay * 2);
    this.timer = setTimeout(() => this.connect(), wait);
  }
}
