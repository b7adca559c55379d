// Switchboard webchat — the customer's side of a chat, shown in the frame that
// widget.js opens (or on its own at /webchat/).
//
// Flow: a visitor token in localStorage (`sb.webchat.token`) means a chat already
// exists: load its transcript and go straight to the conversation, so it survives
// reloads. Otherwise a short pre-chat form (name, optional e-mail) creates a session.
// Messages are sent with a client-generated id so that a retry is idempotent; the
// WebSocket pushes agent messages and typing, and every (re)connection re-reads the
// transcript and merges it by message id, so nothing is lost across drops.
//
// Customer and agent text is only ever set with textContent; no markup strings.

const TOKEN_KEY = 'sb.webchat.token';
const NAME_KEY = 'sb.webchat.name';
const TYPING_SHOW_MS = 4000;
const TYPING_SEND_EVERY_MS = 2000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;

// ---------------------------------------------------------------------------
// Small helpers

/** Builds an element: h('p', {class: 'x', 'data-testid': 'y'}, 'text', child…). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

const store = (() => {
  const memory = new Map();
  let ls = null;
  try {
    ls = window.localStorage;
    ls.getItem(TOKEN_KEY);
  } catch {
    ls = null; // storage blocked (e.g. third-party frame): keep the chat for this page only
  }
  return {
    get: (k) => (ls ? ls.getItem(k) : memory.get(k) ?? null),
    set: (k, v) => (ls ? ls.setItem(k, v) : memory.set(k, v)),
    remove: (k) => (ls ? ls.removeItem(k) : memory.delete(k)),
  };
})();

function uuid() {
  if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // Not a secure context: build a v4 UUID from getRandomValues.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((n) => n.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function toMillis(at) {
  if (typeof at === 'number') return at < 1e11 ? at * 1000 : at; // seconds or ms
  if (typeof at === 'string') {
    if (/^\d+$/.test(at)) return toMillis(Number(at));
    const t = Date.parse(at);
    return Number.isNaN(t) ? Date.now() : t;
  }
  return Date.now();
}

function timeLabel(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function authorName(author) {
  if (!author) return null;
  if (typeof author === 'string') return author;
  return author.name || author.display_name || null;
}

class HttpError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function request(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new HttpError(res.status, data);
  return data;
}

// ---------------------------------------------------------------------------
// Talking to the page that embeds us (widget.js)

const embedded = window.parent !== window;
const parentOrigin = (() => {
  const m = /(?:^#|&)parent=([^&]+)/.exec(location.hash);
  if (!m) return '*';
  try {
    const o = decodeURIComponent(m[1]);
    return /^https?:\/\/[^/]+$/.test(o) ? o : '*';
  } catch {
    return '*';
  }
})();

// Only non-sensitive signals ever go to the parent (close, ready, unread).
function tellParent(type) {
  if (embedded) window.parent.postMessage({ type }, parentOrigin);
}

window.addEventListener('message', (e) => {
  if (!embedded || e.source !== window.parent) return;
  if (parentOrigin !== '*' && e.origin !== parentOrigin) return;
  if (e.data && e.data.type === 'switchboard:opened') focusFirst();
});

// ---------------------------------------------------------------------------
// State

const state = {
  token: store.get(TOKEN_KEY),
  entries: [], // {key, id, clientId, direction, body, at, author, auto, status, el, seq}
  seq: 0,
  ws: null,
  wsAttempts: 0,
  reconnectTimer: null,
  conn: 'idle',
  typingTimer: null,
  lastTypingSent: 0,
  inChat: false,
  surveyKey: '', // the rating card shown (its question ids)
  surveyEl: null,
};

const els = {};

function focusFirst() {
  if (state.inChat) els.body.focus();
  else if (!els.prechat.hidden) els.name.focus();
}

// ---------------------------------------------------------------------------
// Views

function showPrechat() {
  state.inChat = false;
  els.loading.hidden = true;
  els.chat.hidden = true;
  els.conn.hidden = true;
  els.prechat.hidden = false;
  const remembered = store.get(NAME_KEY);
  if (remembered && !els.name.value) els.name.value = remembered;
}

function showChat() {
  state.inChat = true;
  els.loading.hidden = true;
  els.prechat.hidden = true;
  els.chat.hidden = false;
  els.conn.hidden = false;
  const name = store.get(NAME_KEY);
  if (name) els.subtitle.textContent = `Hi ${name} — we usually answer within a minute.`;
}

function setConn(conn) {
  state.conn = conn;
  els.conn.dataset.state = conn;
  els.conn.textContent =
    { connecting: 'connecting…', connected: 'connected', reconnecting: 'reconnecting…', offline: 'offline' }[
      conn
    ] || conn;
}

function showNotice(text) {
  clearNotice();
  const n = h('p', { class: 'wc-notice', id: 'notice', role: 'status' }, text);
  els.chat.insertBefore(n, els.composer);
}

function clearNotice() {
  const n = $('notice');
  if (n) n.remove();
}

// ---------------------------------------------------------------------------
// Messages

function nearBottom() {
  const log = els.log;
  return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
}

function scrollToBottom() {
  els.log.scrollTop = els.log.scrollHeight;
}

function renderEntry(entry) {
  // Re-render only what changed, so the live region does not announce it again.
  const sig = JSON.stringify([entry.id, entry.body, entry.status, entry.at, entry.auto, authorName(entry.author)]);
  if (entry.el && entry.sig === sig) return entry.el;
  entry.sig = sig;
  const label = entry.auto
    ? 'Automatic message'
    : entry.direction === 'in'
      ? 'You'
      : authorName(entry.author) || 'Agent';
  const meta = h('div', { class: 'wc-meta' });
  if (entry.direction === 'in' && entry.status === 'sending') {
    meta.append(h('span', { class: 'wc-status' }, 'sending…'));
  } else if (entry.direction === 'in' && entry.status === 'failed') {
    meta.append(
      h('span', { class: 'wc-status wc-status-failed' }, 'not sent — '),
      h(
        'button',
        {
          type: 'button',
          class: 'wc-retry',
          'aria-label': 'Retry sending this message',
          onclick: () => sendEntry(entry),
        },
        'retry'
      )
    );
  } else {
    meta.append(h('time', { datetime: new Date(entry.at).toISOString() }, timeLabel(entry.at)));
    if (entry.direction === 'in') meta.append(h('span', { class: 'wc-status' }, '· sent'));
  }
  const el = h(
    'div',
    {
      class: 'wc-msg',
      'data-testid': 'webchat-message',
      'data-direction': entry.direction,
      'data-status': entry.status,
      'data-auto': entry.auto ? 'true' : null,
      'data-id': entry.id || null,
    },
    h('span', { class: entry.direction === 'in' ? 'wc-author wc-visually-hidden' : 'wc-author' }, label),
    h('p', { class: 'wc-bubble' }, entry.body),
    meta
  );
  if (entry.el) {
    const hadFocus = entry.el.contains(document.activeElement);
    entry.el.replaceWith(el);
    entry.el = el;
    if (hadFocus) {
      // Keep the keyboard where it was after a retry re-renders the message.
      (el.querySelector('.wc-retry') || els.body).focus();
    }
  } else {
    entry.el = el;
  }
  return el;
}

// Confirmed messages in server time order; the ones still sending or failed after them.
function sortKey(e) {
  return e.status === 'sent' ? [0, e.at, e.seq] : [1, e.seq, 0];
}

function placeAll() {
  const stick = nearBottom();
  const sorted = [...state.entries].sort((a, b) => {
    const ka = sortKey(a);
    const kb = sortKey(b);
    return ka[0] - kb[0] || ka[1] - kb[1] || ka[2] - kb[2];
  });
  if (els.log.firstChild !== els.empty) els.log.prepend(els.empty);
  let prev = els.empty;
  for (const e of sorted) {
    if (prev.nextSibling !== e.el) els.log.insertBefore(e.el, prev.nextSibling);
    prev = e.el;
  }
  els.empty.hidden = state.entries.length > 0;
  if (stick) scrollToBottom();
}

function fromServer(m) {
  return {
    id: m.id != null ? String(m.id) : null,
    clientId: m.client_id || null,
    direction: m.direction === 'in' ? 'in' : 'out',
    body: m.body == null ? '' : String(m.body),
    at: toMillis(m.at),
    author: m.author || null,
    auto: Boolean(m.auto),
  };
}

/** Adds or updates a message from the server; returns [entry, isNew]. */
function upsert(m) {
  const s = fromServer(m);
  let entry = s.id ? state.entries.find((e) => e.id === s.id) : null;
  if (!entry && s.clientId) entry = state.entries.find((e) => e.clientId === s.clientId);
  if (!entry && s.direction === 'in') {
    // Our own message echoed before its POST answered: adopt the pending copy.
    entry = state.entries.find((e) => !e.id && e.status !== 'sent' && e.body === s.body);
  }
  let isNew = false;
  if (!entry) {
    entry = { seq: state.seq++, el: null };
    state.entries.push(entry);
    isNew = true;
  }
  Object.assign(entry, s, { clientId: s.clientId || entry.clientId || null, status: 'sent' });
  entry.key = entry.id || entry.clientId;
  renderEntry(entry);
  return [entry, isNew];
}

function mergeTranscript(messages) {
  for (const m of messages || []) upsert(m);
  placeAll();
}

async function loadTranscript() {
  const data = await request('GET', '/webchat/v1/transcript');
  mergeTranscript((data && data.messages) || []);
  loadSurvey().catch(() => {});
}

// ---------------------------------------------------------------------------
// The rating card: after an agent resolves the chat, the host may ask how it went
// (CSAT, CES…). It stays at the end of the log until answered, across reloads.

async function loadSurvey() {
  const data = await request('GET', '/webchat/v1/survey');
  showSurvey(data);
}

function showSurvey(survey) {
  const questions = (survey && survey.questions) || [];
  const key = questions.map((q) => q.id).join(',');
  if (key === state.surveyKey) return; // the same card: keep what the visitor picked
  state.surveyKey = key;
  if (state.surveyEl) state.surveyEl.remove();
  state.surveyEl = null;
  if (!questions.length) return;
  const error = h('p', { class: 'wc-error', role: 'alert', 'data-testid': 'survey-error', hidden: true });
  const fields = questions.map((q) => {
    const points = [];
    for (let n = q.low; n <= q.high; n += 1) {
      const end = n === q.low ? q.low_label : n === q.high ? q.high_label : '';
      points.push(
        h(
          'label',
          { class: 'wc-point' },
          h('input', { type: 'radio', name: `survey-${q.kind}`, value: String(n), 'aria-label': end ? `${n}, ${end}` : String(n) }),
          h('span', { 'aria-hidden': 'true' }, String(n))
        )
      );
    }
    return h(
      'fieldset',
      { class: 'wc-question', 'data-kind': q.kind, 'data-testid': `survey-${q.kind}` },
      h('legend', {}, q.prompt),
      h('div', { class: 'wc-scale' }, points),
      h('p', { class: 'wc-ends', 'aria-hidden': 'true' }, h('span', {}, q.low_label), h('span', {}, q.high_label))
    );
  });
  const comment = h('textarea', { id: 'survey-comment', rows: 2, maxlength: 4000, 'data-testid': 'survey-comment' });
  const send = h('button', { type: 'submit', class: 'wc-button wc-primary', 'data-testid': 'survey-send' }, 'Send feedback');
  const form = h(
    'form',
    { class: 'wc-survey', 'data-testid': 'survey-card', 'aria-label': 'How did we do?', novalidate: true },
    h('p', { class: 'wc-survey-title' }, 'How did we do?'),
    fields,
    h('label', { for: 'survey-comment', class: 'wc-survey-label' }, 'Anything you want to add? (optional)'),
    comment,
    error,
    send
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submitSurvey(form, questions, comment, error, send);
  });
  state.surveyEl = form;
  els.log.append(form);
  scrollToBottom();
}

async function submitSurvey(form, questions, comment, error, send) {
  const answers = {};
  for (const q of questions) {
    const picked = form.querySelector(`input[name="survey-${q.kind}"]:checked`);
    if (picked) answers[q.kind] = Number(picked.value);
  }
  if (!Object.keys(answers).length) {
    error.textContent = 'Choose a score first.';
    error.hidden = false;
    return;
  }
  error.hidden = true;
  send.disabled = true;
  try {
    const body = { answers };
    if (comment.value.trim()) body.comment = comment.value.trim();
    await request('POST', '/webchat/v1/survey', body);
    const thanks = h('p', { class: 'wc-survey-thanks', role: 'status', 'data-testid': 'survey-thanks' }, 'Thank you for your feedback!');
    form.replaceWith(thanks);
    state.surveyEl = thanks;
  } catch (err) {
    error.textContent = err instanceof HttpError && err.body && err.body.error
      ? err.body.error.message
      : "We couldn't send that. Please try again.";
    error.hidden = false;
    send.disabled = false;
  }
}

// ---------------------------------------------------------------------------
// Sending

async function sendEntry(entry) {
  entry.status = 'sending';
  renderEntry(entry);
  placeAll();
  try {
    const data = await request('POST', '/webchat/v1/messages', { client_id: entry.clientId, body: entry.body });
    const m = data && data.message;
    if (m && m.id != null) {
      const id = String(m.id);
      // The socket may have delivered the same message first, as a separate entry.
      const twin = state.entries.find((e) => e !== entry && e.id === id);
      if (twin) {
        twin.el.remove();
        state.entries.splice(state.entries.indexOf(twin), 1);
      }
      entry.id = id;
      entry.at = m.at != null ? toMillis(m.at) : entry.at;
    }
    entry.status = 'sent';
  } catch (err) {
    entry.status = 'failed';
    if (err instanceof HttpError && err.status === 401) sessionLost();
  }
  renderEntry(entry);
  placeAll();
}

function sendText(text) {
  const body = text.trim();
  if (!body) return;
  const entry = {
    seq: state.seq++,
    id: null,
    clientId: uuid(),
    direction: 'in',
    body,
    at: Date.now(),
    author: null,
    auto: false,
    status: 'sending',
    el: null,
  };
  entry.key = entry.clientId;
  state.entries.push(entry);
  renderEntry(entry);
  placeAll();
  scrollToBottom();
  sendEntry(entry);
}

// ---------------------------------------------------------------------------
// Typing

function showAgentTyping() {
  els.typing.hidden = false;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideAgentTyping, TYPING_SHOW_MS);
}

function hideAgentTyping() {
  clearTimeout(state.typingTimer);
  els.typing.hidden = true;
}

function customerTyping() {
  const now = Date.now();
  if (now - state.lastTypingSent < TYPING_SEND_EVERY_MS) return;
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  state.lastTypingSent = now;
  try {
    state.ws.send(JSON.stringify({ type: 'typing' }));
  } catch {
    /* the socket is closing; the next connection will do */
  }
}

// ---------------------------------------------------------------------------
// Realtime

function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  if (!state.token || state.ws) return;
  if (navigator.onLine === false) {
    setConn('offline');
    return;
  }
  setConn(state.wsAttempts === 0 ? 'connecting' : 'reconnecting');
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/webchat/v1/ws?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  ws.addEventListener('open', () => {
    if (state.ws !== ws) return;
    state.wsAttempts = 0;
    setConn('connected');
    clearNotice();
    // Whatever happened while we were away: read the transcript again and merge.
    loadTranscript().catch((err) => {
      if (err instanceof HttpError && err.status === 401) sessionLost();
    });
  });
  ws.addEventListener('message', (ev) => {
    if (state.ws !== ws) return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'message' && msg.message) {
      const [entry, isNew] = upsert(msg.message);
      placeAll();
      if (entry.direction === 'out') {
        hideAgentTyping();
        if (isNew) tellParent('switchboard:unread');
      }
    } else if (msg.type === 'survey') {
      showSurvey(msg.survey);
    } else if (msg.type === 'typing') {
      showAgentTyping();
    } else if (msg.type === 'resync') {
      loadTranscript().catch(() => {});
    }
  });
  ws.addEventListener('close', () => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (!state.token) return;
    scheduleReconnect();
  });
  ws.addEventListener('error', () => {
    /* a close event follows */
  });
}

async function scheduleReconnect() {
  state.wsAttempts += 1;
  if (navigator.onLine === false) {
    setConn('offline');
    return; // the 'online' event reconnects
  }
  setConn('reconnecting');
  if (state.wsAttempts >= 3) {
    // Several failures in a row: is our session still valid at all?
    try {
      await request('GET', '/webchat/v1/transcript');
    } catch (err) {
      if (err instanceof HttpError && (err.status === 401 || err.status === 403)) {
        sessionLost();
        return;
      }
    }
  }
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(state.wsAttempts - 1, 10));
  const delay = Math.round(exp * (0.75 + Math.random() * 0.5));
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(connect, delay);
}

window.addEventListener('online', () => {
  if (state.inChat && !state.ws) {
    state.wsAttempts = 0;
    connect();
  }
});
window.addEventListener('offline', () => {
  if (state.inChat && !state.ws) setConn('offline');
});

// The server no longer knows our token (e.g. its data was reset): start over.
function sessionLost() {
  state.token = null;
  store.remove(TOKEN_KEY);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  clearTimeout(state.reconnectTimer);
  for (const e of state.entries) e.el && e.el.remove();
  state.entries = [];
  hideAgentTyping();
  showPrechat();
  showPrechatError('Your previous chat has ended. Start a new one below.');
}

// ---------------------------------------------------------------------------
// Pre-chat form

function showPrechatError(text) {
  els.prechatError.textContent = text;
  els.prechatError.hidden = !text;
}

function setFieldError(input, errorEl, bad) {
  errorEl.hidden = !bad;
  if (bad) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

async function startSession(ev) {
  ev.preventDefault();
  showPrechatError('');
  const name = els.name.value.trim();
  const email = els.email.value.trim();
  const badName = !name;
  const badEmail = Boolean(email) && (!els.email.checkValidity() || !/^[^\s@]+@[^\s@]+$/.test(email));
  setFieldError(els.name, $('name-error'), badName);
  setFieldError(els.email, $('email-error'), badEmail);
  if (badName) return els.name.focus();
  if (badEmail) return els.email.focus();

  els.start.disabled = true;
  els.start.textContent = 'Starting…';
  try {
    const payload = { name };
    if (email) payload.email = email;
    const data = await request('POST', '/webchat/v1/sessions', payload);
    if (!data || !data.token) throw new Error('no token in the answer');
    state.token = data.token;
    store.set(TOKEN_KEY, data.token);
    store.set(NAME_KEY, name);
    showChat();
    placeAll();
    state.wsAttempts = 0;
    connect();
    els.body.focus();
  } catch (err) {
    const detail = err instanceof HttpError && err.body && err.body.error ? ` (${err.body.error.message})` : '';
    showPrechatError(`We couldn't start the chat. Please try again.${detail}`);
  } finally {
    els.start.disabled = false;
    els.start.textContent = 'Start chat';
  }
}

// ---------------------------------------------------------------------------
// Start-up

function autoGrow() {
  const t = els.body;
  t.style.height = 'auto';
  t.style.height = `${Math.min(t.scrollHeight + 2, 140)}px`;
}

async function init() {
  for (const id of [
    'loading', 'prechat', 'chat', 'log', 'empty', 'typing', 'composer', 'body', 'send', 'name', 'email',
    'start', 'conn', 'close', 'subtitle',
  ]) {
    els[id] = $(id);
  }
  els.prechatError = $('prechat-error');

  if (embedded) {
    els.close.hidden = false;
    els.close.addEventListener('click', () => tellParent('switchboard:close'));
  }
  document.addEventListener('keydown', (e) => {
    if ((e.key === 'Escape' || e.key === 'Esc') && embedded) {
      e.preventDefault();
      tellParent('switchboard:close');
    }
  });

  els.prechat.addEventListener('submit', startSession);
  els.name.addEventListener('input', () => setFieldError(els.name, $('name-error'), false));
  els.email.addEventListener('input', () => setFieldError(els.email, $('email-error'), false));

  els.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = els.body.value;
    if (!text.trim()) return;
    els.body.value = '';
    autoGrow();
    sendText(text);
    els.body.focus();
  });
  els.body.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      els.composer.requestSubmit();
    }
  });
  els.body.addEventListener('input', () => {
    autoGrow();
    if (els.body.value.trim()) customerTyping();
  });

  if (state.token) {
    try {
      await loadTranscript();
      showChat();
    } catch (err) {
      if (err instanceof HttpError && (err.status === 401 || err.status === 403 || err.status === 404)) {
        store.remove(TOKEN_KEY);
        state.token = null;
        showPrechat();
        showPrechatError('Your previous chat has ended. Start a new one below.');
      } else {
        showChat();
        showNotice("We couldn't load your earlier messages yet — retrying…");
      }
    }
    if (state.token) {
      placeAll();
      scrollToBottom();
      connect();
    }
  } else {
    showPrechat();
  }
  tellParent('switchboard:ready');
  if (!embedded || document.hasFocus()) focusFirst();
}

init();
