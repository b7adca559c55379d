// One chronological timeline across every channel: messages as bubbles (with their
// files, taps, locations and reactions, and why a reply was not delivered), calls as
// cards (direction, outcome, how long, the IVR path and queue wait, the recording),
// everything the team did (notes, transfers, dispositions, channel switches, consent)
// as quieter entries in the same stream, so the agent reads the case top to bottom.

import { h, mount } from './dom.js';
import { blob } from './api.js';
import { channelName } from './channels.js';
import { clock, iso, duration, stopwatch } from './time.js';
import { handoffCard } from './handoff.js';
import { messageMeta } from './desk-message-meta.js';
import { emailHead } from './desk-email.js';

const DELIVERY = {
  queued: 'queued',
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  failed: 'failed',
  undelivered: 'not delivered',
};

const LATE_MS = 5 * 60_000;

function time(ms) {
  return h('time', { datetime: iso(ms), title: new Date(ms).toLocaleString() }, clock(ms));
}

function deliveryError(e) {
  if (!e.error || !['failed', 'undelivered'].includes(e.delivery_status)) return null;
  return h('div', { class: 'delivery-error', 'data-testid': 'timeline-delivery-error' },
    h('span', { class: 'delivery-error-title' }, 'Not delivered'),
    h('span', { class: 'delivery-error-text' }, e.error));
}

// An e-mail (the host sends its `email` view): headers, then the body that the
// conversation's EmailShelf keeps (desk-email.js), then its files.
function emailContent(e, { files, emails }) {
  // Pictures the mail shows inline are not listed again among its files.
  const inline = new Set(e.email.inline_attachments ?? []);
  const listed = { ...e, attachments: (e.attachments ?? []).filter((a) => !inline.has(a.id)) };
  return h('div', { class: 'bubble email-card', 'data-testid': 'email' },
    emailHead(e.email), emails.body(e), files.list(listed));
}

function message(e, { names, files, byProvider, emails }) {
  const out = e.direction === 'out';
  const auto = e.data?.auto === true;
  const who = out ? (auto ? 'Automatic' : (names.get(e.author_agent_id) ?? 'Agent')) : null;
  const status = out && e.delivery_status
    ? h('span', { class: ['delivery', `delivery-${e.delivery_status}`] }, DELIVERY[e.delivery_status] ?? e.delivery_status)
    : null;
  const meta = messageMeta(e, byProvider);
  // A message that reached us late (or was replayed) says when the customer sent it:
  // the messaging window runs from that moment.
  const late = !out && e.sent_at && Math.abs(e.occurred_at - e.sent_at) > LATE_MS
    ? h('span', { class: 'meta-sent', 'data-testid': 'timeline-sent-at', title: new Date(e.sent_at).toLocaleString() }, `sent ${clock(e.sent_at)}`)
    : null;
  const text = meta.replacesBody || !String(e.body ?? '').trim() ? null : h('div', { class: 'bubble-text' }, e.body);
  return [
    e.email && emails ? emailContent(e, { files, emails })
      : h('div', { class: 'bubble' }, meta.before, text, meta.after, files.list(e)),
    deliveryError(e),
    h('div', { class: 'meta' },
      h('span', { class: 'meta-channel' }, channelName(e.channel)),
      who ? h('span', null, who) : null,
      time(e.occurred_at),
      late,
      status),
  ];
}

function note(e, { names }) {
  return [
    h('div', { class: 'note-card' },
      h('div', { class: 'note-label' }, 'internal note'),
      h('div', { class: 'bubble-text' }, e.body)),
    h('div', { class: 'meta' }, h('span', null, names.get(e.author_agent_id) ?? 'Agent'), time(e.occurred_at)),
  ];
}

function transfer(e, { names }) {
  const d = e.data ?? {};
  if ('context_received' in d) {
    return [h('div', { class: 'sys' },
      h('span', null, d.context_received ? 'Hand-off received with context' : 'Hand-off received without context'),
      time(e.occurred_at))];
  }
  const to = d.to_agent ? `to ${d.to_agent.name ?? names.get(d.to_agent.id ?? d.to_agent) ?? 'an agent'}`
    : d.to_queue ? `to queue ${d.to_queue}` : '';
  const from = d.from_agent ? (d.from_agent.name ?? names.get(d.from_agent.id ?? d.from_agent)) : null;
  return [
    h('div', { class: 'sys sys-transfer' },
      h('span', { class: 'sys-title' }, ['Transferred', from ? `by ${from}` : '', to].filter(Boolean).join(' ')),
      time(e.occurred_at)),
    d.context ? handoffCard(d.context, { title: 'Context' }) : (e.body ? h('div', { class: 'sys-body' }, e.body) : null),
  ];
}

function disposition(e) {
  const d = e.data ?? {};
  return [h('div', { class: 'sys sys-disposition' },
    h('span', { class: 'sys-title' }, `Resolved: ${d.label ?? e.body}`),
    d.note ? h('span', { class: 'sys-note' }, d.note) : null,
    time(e.occurred_at))];
}

function system(e, cls) {
  return [h('div', { class: ['sys', cls] },
    h('span', null, e.body || e.kind),
    e.channel && e.kind !== 'channel_switch' ? h('span', { class: 'meta-channel' }, channelName(e.channel)) : null,
    time(e.occurred_at))];
}

const OUTCOME = {
  // The host records a call as soon as it starts and updates the event as it goes.
  in_progress: 'in progress',
  answered: 'answered',
  abandoned: 'abandoned in queue',
  missed: 'missed',
  failed: 'failed',
};

// Recordings are behind the token, so they are fetched as blobs and played from object
// URLs. The player is kept per recording: the timeline re-renders on every new event,
// and a recording being listened to must not stop because a message arrived.
const players = new Map(); // url → {el, src}
const PLAYERS_KEPT = 20;

function recording(url, callId) {
  const known = players.get(url);
  if (known) return known.el;
  const status = h('span', { class: 'small muted', role: 'status' });
  const el = h('div', { class: 'call-recording', 'data-testid': 'timeline-call-recording' });
  const entry = { el, src: null };
  const play = h('button', {
    type: 'button', class: 'btn btn-small', 'aria-label': 'Play the call recording',
    on: {
      click: async () => {
        play.disabled = true;
        status.textContent = 'Loading recording…';
        try {
          entry.src = URL.createObjectURL(await blob(url));
        } catch (e) {
          play.disabled = false;
          status.textContent = `Recording not loaded: ${e.message}`;
          return;
        }
        const audio = h('audio', { controls: true, src: entry.src, 'aria-label': 'Call recording' });
        mount(el, audio, h('a', { href: entry.src, download: `call-${callId ?? 'recording'}.wav`, class: 'small' }, 'Download'));
        audio.play().catch(() => {});
        audio.focus();
      },
    },
  }, '▶ Recording');
  mount(el, play, status);
  players.set(url, entry);
  for (const [key, old] of players) {
    if (players.size <= PLAYERS_KEPT) break;
    if (old.el.isConnected) continue;
    if (old.src) URL.revokeObjectURL(old.src);
    players.delete(key);
  }
  return el;
}

function fact(label, value) {
  if (value == null || value === '') return null;
  return h('div', { class: 'call-fact' }, h('dt', null, label), h('dd', null, value));
}

function call(e, { names }) {
  const d = e.data ?? {};
  const outbound = d.direction ? d.direction === 'outbound' : e.direction === 'out';
  const outcome = d.outcome ?? null;
  // The host's call record names the agent by id (`agent_id`); a name, when sent, wins.
  const agentId = d.agent_id ?? e.author_agent_id;
  const agent = d.agent_name ?? (agentId ? names.get(agentId) : null);
  const disposition = typeof d.disposition === 'object' && d.disposition ? (d.disposition.label ?? d.disposition.code) : d.disposition;
  const path = Array.isArray(d.ivr_path) ? d.ivr_path.map((step) => (typeof step === 'object' && step ? (step.label ?? step.key ?? JSON.stringify(step)) : String(step))) : [];
  const title = outbound ? 'Outbound call' : 'Inbound call';
  return [h('div', {
    class: ['call-row', outcome && `call-${outcome}`],
    'data-testid': 'timeline-call',
    'data-call': d.call_id ?? '',
    'data-outcome': outcome ?? '',
    'data-direction': outbound ? 'outbound' : 'inbound',
  },
  h('div', { class: 'call-head' },
    h('span', { class: 'call-icon', 'aria-hidden': 'true' }, outbound ? '☎↗' : '☎↙'),
    h('span', { class: 'call-title' }, title),
    outcome ? h('span', { class: ['badge', 'call-outcome', `call-outcome-${outcome}`] }, OUTCOME[outcome] ?? outcome) : null,
    time(e.occurred_at)),
  h('dl', { class: 'call-facts' },
    fact('Duration', d.duration_ms != null ? stopwatch(d.duration_ms) : null),
    fact('Queue', d.queue),
    fact('Waited', d.queue_wait_ms != null ? duration(d.queue_wait_ms) : null),
    fact('IVR', path.length ? path.join(' › ') : null),
    fact('Agent', agent),
    fact('Disposition', disposition)),
  e.body && !outcome ? h('div', { class: 'sys-body' }, e.body) : null,
  d.recording_url ? recording(d.recording_url, d.call_id) : null)];
}

const RENDER = {
  message,
  note,
  transfer,
  disposition,
  call,
  channel_switch: (e) => system(e, 'sys-switch'),
  status: (e) => system(e, 'sys-status'),
  consent: (e) => system(e, 'sys-consent'),
};

/**
 * The list items of a timeline. `names` maps agent ids to names where known; `files`
 * is the conversation's FileShelf (desk-files.js), which keeps fetched pictures;
 * `emails` its EmailShelf (desk-email.js), which keeps e-mail frames.
 */
export function timelineItems(events, { names = new Map(), files, emails }) {
  const byProvider = new Map(events.filter((e) => e.provider_id).map((e) => [e.provider_id, e]));
  const ctx = { names, files, byProvider, emails };
  return events.map((e) => {
    const render = RENDER[e.kind] ?? ((ev) => system(ev, 'sys-other'));
    const side = e.kind === 'message' ? (e.direction === 'out' ? 'out' : 'in') : 'mid';
    return h('li', {
      class: ['tl', `tl-${e.kind}`, `tl-${side}`, e.data?.auto && 'tl-auto',
        e.email && 'tl-email', e.email?.automatic && 'tl-email-automatic'],
      'data-testid': 'timeline-event',
      'data-kind': e.kind,
      'data-channel': e.channel ?? '',
      'data-event': e.id,
    }, render(e, ctx));
  });
}
