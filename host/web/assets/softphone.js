// The softphone: my calls, what state each is in, and the buttons that act on them, as
// a bar across the top of the desk. It lives for the whole session (not for one view),
// so the audio path and a call in progress survive the router swapping pages.
//
// REST is the source of truth (`GET /calls/me`, reloaded on every new socket and on
// `resync`); `call.updated` pushes are applied at once when they are plainly mine and
// otherwise only trigger that reload. Answering is accepting the voice offer: the desk
// owns offers and hands the voice ones in with `setOffers()`. Mute acts on the
// microphone here first and tells the host second, so it works even if the request
// fails; a mute is never lifted by a push, only by the agent or the call ending.

import { h, mount, field, toast, nextId } from './dom.js';
import { get, post, seg } from './api.js';
import { openDialog } from './dialog.js';
import { transferTargets } from './desk-dialogs.js';
import { AudioLink } from './softphone-media.js';
import { stopwatch } from './time.js';

// Which call the bar shows when there are several: the one I am talking on first.
const RANK = { connected: 0, consulting: 1, held: 2, ringing: 3, offered: 4, queued: 5, ivr: 6 };
const SAY = {
  idle: 'No call',
  ivr: 'Caller in the IVR',
  queued: 'Call queued',
  offered: 'Incoming call',
  ringing: 'Ringing',
  connected: 'Call connected',
  held: 'Call on hold',
  consulting: 'Consulting a colleague; the caller is on hold',
  ended: 'Call ended',
};
const CLOCK_LABEL = {
  ivr: 'in IVR', queued: 'in queue', offered: 'ringing', ringing: 'ringing',
  connected: 'talk', held: 'on hold', consulting: 'talk', ended: 'lasted',
};
// States where audio flows between the agent and someone.
const TALKING = new Set(['connected', 'consulting', 'ringing']);
const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];
const KEY_NAME = { '*': 'star', '#': 'hash' };
const ENDED_SHOW_MS = 4000;

/** The other party's number: the caller of an inbound call, the callee of an outbound one. */
export function callNumber(call) {
  return (call?.direction === 'outbound' ? call.to : call?.from) ?? '';
}

/** The number as the host wants it ("+1 (555) 123-4567" → "+15551234567"), or null. */
export function dialable(text) {
  const n = String(text ?? '').replace(/[\s().-]/g, '');
  return /^\+?[0-9*#]{2,20}$/.test(n) ? n : null;
}

function splitTarget(value) {
  const i = value.indexOf(':');
  return i < 0 ? [null, null] : [value.slice(0, i), value.slice(i + 1)];
}

export class Softphone {
  constructor({ me, rt }) {
    this.me = me;
    this.rt = rt;
    this.calls = new Map();
    this.since = new Map(); // call id → when its current state began (ms)
    this.offers = [];
    this.askedFor = new Set(); // offers whose call I reloaded the list for
    this.names = new Map(); // contact id → display name ('' while it loads)
    this.focusId = null;
    this.ended = null; // {call, until}: the call that just ended, shown for a moment
    this.mutedCall = null; // the call the local mute belongs to
    this.digits = ''; // tones sent on the shown call
    this.handlers = {};
    this.loadSeq = 0;
    this.reloadTimer = null;
    this.ticker = null;
    this.said = '';
    this.dtmf = Promise.resolve();
    this.stopped = true;
    this.offs = [];
    this.link = new AudioLink(rt, { onChange: () => this.renderLink() });
    this.build();
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.link.start();
    this.offs = [
      this.rt.on('call.updated', (d, msg) => this.updated(d?.call, msg?.at)),
      this.rt.on('resync', () => this.load()),
      this.rt.on('open', () => this.load()),
    ];
    this.load();
  }

  stop() {
    this.stopped = true;
    this.offs.forEach((off) => off());
    this.offs = [];
    clearInterval(this.ticker);
    clearTimeout(this.reloadTimer);
    this.link.stop();
    this.el.remove();
  }

  /**
   * The panel, for the desk to place. `onAnswer(offer)` accepts a voice offer (a
   * promise); `onDialed(call)` is told of a call I just placed; `onCalls()` of any
   * change to my calls (a voice offer's card shows the caller's number from them).
   */
  attach(handlers = {}) {
    this.handlers = handlers;
    this.render();
    return this.el;
  }

  detach() {
    this.handlers = {};
    this.offers = [];
    this.el.remove();
    this.render();
  }

  /** The pending voice offers (the desk's, in its shape). */
  setOffers(offers) {
    this.offers = offers;
    for (const o of offers) {
      if (o.contact?.id && o.contact.display_name) this.names.set(o.contact.id, o.contact.display_name);
      // The offer came before the call's push: the list knows the call (ask once).
      const id = o.reservation?.id;
      if (!this.callForOffer(o) && id && !this.askedFor.has(id)) {
        this.askedFor.add(id);
        this.reloadSoon();
      }
    }
    this.render();
  }

  /** The caller's number for a voice offer, once the call behind its task is known. */
  numberFor(offer) {
    return callNumber(this.callForOffer(offer)) || null;
  }

  callForOffer(offer) {
    const task = offer?.task?.id;
    if (!task) return null;
    for (const c of this.calls.values()) if (c.task_id === task) return c;
    return null;
  }

  // ------------------------------------------------------------ state

  async load() {
    const mine = ++this.loadSeq;
    let res;
    try {
      res = await get('/calls/me');
    } catch (e) {
      if (mine === this.loadSeq) console.warn('calls', e);
      return;
    }
    if (mine !== this.loadSeq || this.stopped) return;
    const fresh = (res?.calls ?? []).filter((c) => c?.id && c.state !== 'ended');
    const ids = new Set(fresh.map((c) => c.id));
    for (const old of [...this.calls.values()]) {
      if (!ids.has(old.id)) this.gone({ ...old, state: 'ended', ended_at: old.ended_at ?? Date.now() });
    }
    for (const c of fresh) this.put(c, null);
    this.changed();
  }

  changed() {
    this.render();
    this.handlers.onCalls?.();
  }

  /** Lets the far end play; call from a click (browsers hold autoplay until one). */
  unlock() {
    this.link.unlock();
  }

  reloadSoon() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), 300);
  }

  /** A pushed (or returned) call. `at` is the push's time, when there was one. */
  updated(call, at) {
    if (!call?.id || this.stopped) return;
    const known = this.calls.has(call.id);
    if (call.state === 'ended') {
      if (known) this.gone(call);
    } else if (call.agent_id === this.me.id || this.offers.some((o) => o.task?.id && o.task.id === call.task_id)) {
      this.put(call, at);
    } else if (known) {
      // Moved on (a blind transfer, a colleague took it): the list says whether I am
      // still in it, e.g. as the one consulted.
      this.gone(call, { show: false });
      this.reloadSoon();
    } else if (this.me.role === 'agent') {
      // Agents only get pushes that concern them; supervisors get everyone's.
      this.reloadSoon();
    }
    this.changed();
  }

  /** A call returned by one of my own requests: mine whatever it says. */
  adopt(call) {
    if (!call?.id) return;
    if (call.state === 'ended') this.gone(call);
    else this.put(call, null);
    this.changed();
  }

  put(call, at) {
    const old = this.calls.get(call.id);
    if (!old || old.state !== call.state) this.since.set(call.id, this.stateStart(call, old, at));
    this.calls.set(call.id, call);
    // Adopt a mute the host reports (a reload mid-call), never an unmute.
    if (call.muted === true && this.mutedCall == null) {
      this.mutedCall = call.id;
      this.link.setMuted(true);
    }
    if (call.contact_id) this.nameOf(call.contact_id);
  }

  stateStart(call, old, at) {
    const now = Date.now();
    if (old) return at ?? now;
    // First seen mid-state (a reload): the call's own times are the best guess.
    if (call.state === 'connected' && call.answered_at) return call.answered_at;
    if (['ivr', 'queued', 'offered', 'ringing'].includes(call.state) && call.started_at) return call.started_at;
    return at ?? now;
  }

  gone(call, { show = true } = {}) {
    const shown = this.focused()?.id === call.id;
    this.calls.delete(call.id);
    this.since.delete(call.id);
    if (this.focusId === call.id) this.focusId = null;
    if (this.mutedCall === call.id) {
      this.mutedCall = null;
      this.link.setMuted(false);
    }
    if (shown) {
      this.digits = '';
      if (show) this.ended = { call: { ...call, state: 'ended' }, until: Date.now() + ENDED_SHOW_MS };
    }
  }

  focused() {
    if (this.focusId && this.calls.has(this.focusId)) return this.calls.get(this.focusId);
    let best = null;
    for (const c of this.calls.values()) {
      const rank = RANK[c.state] ?? 9;
      const bestRank = best ? (RANK[best.state] ?? 9) : Infinity;
      if (rank < bestRank || (rank === bestRank && (c.started_at ?? 0) > (best.started_at ?? 0))) best = c;
    }
    return best;
  }

  pendingOffer() {
    const call = this.focused();
    const mine = call && this.offers.find((o) => o.task?.id && o.task.id === call.task_id);
    if (mine) return mine;
    return [...this.offers].sort((a, b) => (a.reservation?.expires_at ?? 0) - (b.reservation?.expires_at ?? 0))[0] ?? null;
  }

  nameOf(contactId) {
    if (this.names.has(contactId)) return this.names.get(contactId);
    this.names.set(contactId, '');
    get(`/contacts/${seg(contactId)}`).then((c) => {
      this.names.set(contactId, c?.display_name ?? c?.contact?.display_name ?? '');
      this.render();
    }).catch(() => {});
    return '';
  }

  // ------------------------------------------------------------ actions

  async request(call, path, body, failure) {
    try {
      const res = await post(`/calls/${seg(call.id)}${path}`, body);
      if (res?.call) this.adopt(res.call);
      return true;
    } catch (e) {
      toast(`${failure}: ${e.message}`, 'error');
      this.reloadSoon();
      return false;
    }
  }

  /** Disables `button` while `fn` runs; the next render decides what it is after. */
  async busy(button, fn) {
    button.disabled = true;
    try { return await fn(); } finally { this.render(); }
  }

  answer() {
    const offer = this.pendingOffer();
    if (!offer || !this.handlers.onAnswer) return;
    this.link.unlock();
    this.busy(this.answerBtn, () => this.handlers.onAnswer(offer));
  }

  hangup() {
    const call = this.focused();
    if (call) this.busy(this.hangupBtn, () => this.request(call, '/hangup', {}, 'Not hung up'));
  }

  toggleMute() {
    const call = this.focused();
    if (!call) return;
    const muted = this.mutedCall !== call.id;
    this.mutedCall = muted ? call.id : null;
    this.link.setMuted(muted);
    this.render();
    this.request(call, '/mute', { muted }, muted ? 'Muted on this device only' : 'Unmuted on this device only');
  }

  toggleHold() {
    const call = this.focused();
    if (!call) return;
    const held = call.state !== 'held';
    this.busy(this.holdBtn, () => this.request(call, '/hold', { held }, held ? 'Not put on hold' : 'Not resumed'));
  }

  completeTransfer() {
    const call = this.focused();
    if (call) this.busy(this.completeBtn, () => this.request(call, '/transfer/complete', {}, 'Transfer not completed'));
  }

  cancelTransfer() {
    const call = this.focused();
    if (call) this.busy(this.cancelBtn, () => this.request(call, '/transfer/cancel', {}, 'Transfer not cancelled'));
  }

  /** A keypad press: a tone on a live call, otherwise a digit of the number to dial. */
  key(k) {
    const call = this.focused();
    if (call && TALKING.has(call.state)) {
      this.digits += k;
      this.digitsEl.textContent = this.digits;
      // One request per press, in order, so "1#" never arrives as "#1".
      this.dtmf = this.dtmf.then(() => post(`/calls/${seg(call.id)}/dtmf`, { digits: k })
        .catch((e) => toast(`Tone ${k} not sent: ${e.message}`, 'error')));
    } else if (!call) {
      this.dialInput.value += k;
    }
  }

  /** Places an outbound call; returns the call, or null when it was not placed. */
  async dial(text, contactId) {
    const to = dialable(text);
    if (!to) {
      toast('Enter a phone number to call, e.g. +15551234567.', 'error');
      this.dialInput.focus();
      return null;
    }
    if (this.focused()) {
      toast('Finish the current call first.', 'error');
      return null;
    }
    this.link.unlock();
    if (this.link.state !== 'connected') toast('Audio is not connected yet; the call may be silent.', 'error');
    this.dialBtn.disabled = true;
    try {
      const body = { to };
      if (contactId) body.contact_id = contactId;
      const res = await post('/calls', body);
      this.dialInput.value = '';
      if (res?.call) {
        this.focusId = res.call.id;
        this.adopt(res.call);
        this.handlers.onDialed?.(res.call);
      }
      return res?.call ?? null;
    } catch (e) {
      toast(`Call not placed: ${e.message}`, 'error');
      return null;
    } finally {
      this.render();
    }
  }

  async openTransfer() {
    const call = this.focused();
    if (!call) return;
    const target = h('select', { required: true, 'data-testid': 'softphone-transfer-target' },
      h('option', { value: '' }, 'Loading…'));
    const dlg = openDialog({
      title: `Transfer the call${callNumber(call) ? ` with ${callNumber(call)}` : ''}`,
      confirmLabel: 'Transfer',
      confirmTestId: 'softphone-transfer-confirm',
      body: field('Transfer to', target,
        'A queue takes the call at once. An agent is consulted first while the caller hears music; then complete or cancel the transfer.'),
      onConfirm: async () => {
        const [kind, id] = splitTarget(target.value);
        if (!kind) throw new Error('Choose a queue or an agent.');
        const label = target.selectedOptions[0]?.dataset.name ?? id;
        const res = await post(`/calls/${seg(call.id)}/transfer`, kind === 'queue' ? { queue: id } : { agent_id: id, mode: 'warm' });
        if (res?.call) this.adopt(res.call);
        else this.reloadSoon();
        toast(kind === 'queue' ? `Call sent to ${label}.` : `Consulting ${label}; the caller is on hold.`);
      },
    });
    const t = await transferTargets(this.me.id);
    if (!dlg.el.isConnected) return;
    const options = [h('option', { value: '' }, 'Choose…')];
    if (t.queues.length) {
      options.push(h('optgroup', { label: 'Queues (transfer now)' }, t.queues.map((q) =>
        h('option', { value: `queue:${q.id}`, 'data-name': q.name ?? q.id }, q.name ?? q.id))));
    }
    if (t.agents.length) {
      options.push(h('optgroup', { label: 'Agents (consult first)' }, t.agents.map((a) =>
        h('option', { value: `agent:${a.id}`, 'data-name': a.name }, `${a.name}${a.presence ? ` (${a.presence})` : ''}`))));
    }
    mount(target, options);
  }

  // ------------------------------------------------------------ view

  build() {
    const button = (testid, label, onClick, cls = '') => h('button', {
      type: 'button', class: ['btn', 'btn-small', cls], 'data-testid': testid, on: { click: onClick },
    }, label);
    this.stateEl = h('span', { class: 'sp-state', 'data-testid': 'softphone-state' }, 'idle');
    this.numberEl = h('span', { class: 'sp-number', 'data-testid': 'softphone-number' });
    this.nameEl = h('span', { class: 'sp-name' });
    this.clockLabel = h('span', { class: 'sp-clock-label' });
    this.timerEl = h('span', { class: 'sp-timer', 'data-testid': 'softphone-timer', role: 'timer' });
    this.clockEl = h('span', { class: 'sp-clock' }, this.clockLabel, ' ', this.timerEl);

    this.answerBtn = button('softphone-answer', 'Answer', () => this.answer(), 'btn-accept');
    this.hangupBtn = button('softphone-hangup', 'Hang up', () => this.hangup(), 'btn-danger');
    this.muteBtn = button('softphone-mute', 'Mute', () => this.toggleMute());
    this.holdBtn = button('softphone-hold', 'Hold', () => this.toggleHold());
    this.transferBtn = button('softphone-transfer', 'Transfer', () => this.openTransfer());
    this.transferBtn.setAttribute('aria-haspopup', 'dialog');
    this.completeBtn = button('softphone-transfer-complete', 'Complete transfer', () => this.completeTransfer(), 'btn-primary');
    this.cancelBtn = button('softphone-transfer-cancel', 'Cancel transfer', () => this.cancelTransfer());

    const keypadId = nextId('keypad');
    this.keypadBtn = h('button', {
      type: 'button', class: 'btn btn-small', 'data-testid': 'softphone-keypad',
      'aria-expanded': 'false', 'aria-controls': keypadId, on: { click: () => this.toggleKeypad() },
    }, 'Keypad');
    this.digitsEl = h('div', { class: 'sp-digits', 'aria-label': 'Tones sent' });
    this.keypad = h('div', {
      class: 'sp-keypad', id: keypadId, role: 'group', 'aria-label': 'Keypad', hidden: true,
      on: {
        keydown: (ev) => {
          if (ev.key === 'Escape') { ev.stopPropagation(); this.toggleKeypad(false); this.keypadBtn.focus(); }
          else if (KEYS.includes(ev.key) && !ev.ctrlKey && !ev.metaKey && !ev.altKey) { ev.preventDefault(); this.key(ev.key); }
        },
      },
    },
    this.digitsEl,
    h('div', { class: 'sp-keys' }, KEYS.map((k) => h('button', {
      type: 'button', class: 'sp-key', 'data-testid': `softphone-key-${KEY_NAME[k] ?? k}`,
      'aria-label': KEY_NAME[k] ?? k, on: { click: () => this.key(k) },
    }, k))));

    this.dialInput = h('input', {
      type: 'tel', class: 'sp-dial-input', 'data-testid': 'softphone-dial-input', 'aria-label': 'Number to call',
      placeholder: '+15551234567', autocomplete: 'off', inputmode: 'tel',
    });
    this.dialBtn = h('button', { type: 'submit', class: 'btn btn-small btn-primary', 'data-testid': 'softphone-dial' }, 'Call');
    this.dialForm = h('form', {
      class: 'sp-dial', role: 'search', 'aria-label': 'Place a call',
      on: { submit: (ev) => { ev.preventDefault(); this.dial(this.dialInput.value); } },
    }, this.dialInput, this.dialBtn);

    this.othersEl = h('div', { class: 'sp-others' });
    this.linkEl = h('span', { class: 'sp-link-state', 'data-testid': 'softphone-webrtc', 'data-state': 'new' }, 'new');
    this.noteEl = h('span', { class: 'sp-note' });
    // Announces state changes only; the ticking clock stays out of the live region.
    this.announcer = h('div', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });

    this.el = h('section', { class: 'softphone', 'data-testid': 'softphone', 'aria-label': 'Softphone', 'data-state': 'idle' },
      h('div', { class: 'sp-status' },
        h('span', { class: 'sp-icon', 'aria-hidden': 'true' }, '☎'),
        this.stateEl, this.numberEl, this.nameEl, this.clockEl),
      h('div', { class: 'sp-controls', role: 'group', 'aria-label': 'Call controls' },
        this.answerBtn, this.hangupBtn, this.muteBtn, this.holdBtn, this.transferBtn, this.completeBtn, this.cancelBtn,
        h('div', { class: 'sp-keypad-wrap' }, this.keypadBtn, this.keypad)),
      this.dialForm,
      this.othersEl,
      h('div', { class: 'sp-audio' }, h('span', { class: 'sp-audio-label' }, 'audio'), this.linkEl, this.noteEl),
      this.announcer);
    this.render();
  }

  toggleKeypad(open = this.keypad.hidden) {
    this.keypad.hidden = !open;
    this.keypadBtn.setAttribute('aria-expanded', String(open));
    if (open) this.keypad.querySelector('button')?.focus();
  }

  /** What the bar shows: the focused call, else a ringing offer, else the call that just ended. */
  shown() {
    const call = this.focused();
    if (call) return { state: call.state, call };
    const offer = this.pendingOffer();
    if (offer) return { state: 'offered', call: this.callForOffer(offer), offer };
    if (this.ended && this.ended.until > Date.now()) return { state: 'ended', call: this.ended.call };
    this.ended = null;
    return { state: 'idle', call: null };
  }

  render() {
    const { state, call, offer } = this.shown();
    const live = this.focused();
    const number = call ? callNumber(call) : '';
    const name = (call?.contact_id ? this.names.get(call.contact_id) : null) || offer?.contact?.display_name || '';
    this.el.dataset.state = state;
    this.stateEl.textContent = state;
    this.stateEl.className = `sp-state sp-state-${state}`;
    this.numberEl.textContent = number;
    this.nameEl.textContent = name && name !== number ? name : '';

    const pending = this.pendingOffer();
    this.answerBtn.hidden = !pending;
    this.answerBtn.disabled = !this.handlers.onAnswer;
    this.answerBtn.setAttribute('aria-label', `Answer call${pending ? ` from ${this.numberFor(pending) || pending.contact?.display_name || 'unknown caller'}` : ''}`);
    const active = live && live.state !== 'offered';
    const consulting = live?.state === 'consulting';
    this.hangupBtn.hidden = !active;
    this.hangupBtn.disabled = false;
    const muted = Boolean(live) && this.mutedCall === live.id;
    this.muteBtn.hidden = !active;
    this.muteBtn.disabled = !(muted || TALKING.has(live?.state));
    this.muteBtn.textContent = muted ? 'Unmute' : 'Mute';
    this.muteBtn.classList.toggle('is-on', muted);
    this.holdBtn.hidden = !active || consulting;
    this.holdBtn.disabled = !['connected', 'held'].includes(live?.state);
    this.holdBtn.textContent = live?.state === 'held' ? 'Resume' : 'Hold';
    this.holdBtn.classList.toggle('is-on', live?.state === 'held');
    this.transferBtn.hidden = !active || consulting;
    this.transferBtn.disabled = !['connected', 'held'].includes(live?.state);
    this.completeBtn.hidden = !consulting;
    this.completeBtn.disabled = false;
    this.cancelBtn.hidden = !consulting;
    this.cancelBtn.disabled = false;
    this.dialForm.hidden = Boolean(live) || Boolean(pending);
    this.dialBtn.disabled = false;
    this.digitsEl.textContent = active ? this.digits : '';

    const others = [...this.calls.values()].filter((c) => c.id !== live?.id);
    mount(this.othersEl, others.map((c) => h('button', {
      type: 'button', class: 'btn btn-small btn-ghost sp-other',
      'aria-label': `Show the call with ${callNumber(c) || 'unknown'} (${c.state})`,
      on: { click: () => { this.focusId = c.id; this.digits = ''; this.render(); } },
    }, `${callNumber(c) || 'call'} · ${c.state}`)));

    const said = `${SAY[state] ?? state}${number ? `, ${number}` : ''}${name && name !== number ? `, ${name}` : ''}`;
    if (said !== this.said) {
      // An idle bar at sign-in is not news.
      if (this.said || state !== 'idle') this.announcer.textContent = said;
      this.said = said;
    }
    this.renderClock();
    this.renderLink();
    const ticking = state !== 'idle';
    if (ticking && !this.ticker) this.ticker = setInterval(() => this.tick(), 1000);
    else if (!ticking && this.ticker) { clearInterval(this.ticker); this.ticker = null; }
  }

  tick() {
    // The "ended" moment is over: back to idle (render stops the ticker).
    if (this.ended && this.ended.until <= Date.now() && !this.focused()) this.render();
    else this.renderClock();
  }

  renderClock() {
    const { state, call, offer } = this.shown();
    const now = Date.now();
    let ms = null;
    if (state === 'connected' || state === 'consulting') ms = now - (call.answered_at ?? this.since.get(call.id) ?? now);
    else if (state === 'ended') ms = call.answered_at ? (call.ended_at ?? now) - call.answered_at : null;
    else if (state === 'offered' && !call) ms = offer?.reservation?.offered_at != null ? now - offer.reservation.offered_at : null;
    else if (call) ms = now - (this.since.get(call.id) ?? now);
    this.clockEl.hidden = ms == null;
    this.clockLabel.textContent = state === 'ended' && ms == null ? '' : (CLOCK_LABEL[state] ?? '');
    this.timerEl.textContent = ms == null ? '' : stopwatch(ms);
  }

  renderLink() {
    const state = this.link.state;
    this.linkEl.dataset.state = state;
    this.linkEl.textContent = state;
    this.linkEl.className = `sp-link-state sp-link-${state}`;
    const note = this.link.micError ? `Microphone: ${this.link.micError}` : (this.link.error ?? '');
    this.noteEl.textContent = note;
    this.noteEl.title = note;
  }
}
