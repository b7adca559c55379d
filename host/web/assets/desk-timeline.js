// One chronological timeline across every channel: messages as bubbles, everything
// the team did (notes, transfers, dispositions, channel switches, consent) as quieter
// entries in the same stream, so the agent reads the case top to bottom.

import { h } from './dom.js';
import { channelName } from './channels.js';
import { clock, iso } from './time.js';
import { handoffCard } from './handoff.js';

const DELIVERY = {
  queued: 'queued',
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  failed: 'failed',
  undelivered: 'not delivered',
};

function time(ms) {
  return h('time', { datetime: iso(ms), title: new Date(ms).toLocaleString() }, clock(ms));
}

function safeUrl(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch { return null; }
}

function attachments(event) {
  const files = event.attachments ?? [];
  if (files.length === 0) return null;
  return h('ul', { class: 'attachments' }, files.map((a) => {
    const href = safeUrl(a.url);
    const label = a.filename || a.content_type || 'attachment';
    return h('li', null, href
      ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, `📎 ${label}`)
      : `📎 ${label}`);
  }));
}

function message(e, names) {
  const out = e.direction === 'out';
  const auto = e.data?.auto === true;
  const who = out ? (auto ? 'Automatic' : (names.get(e.author_agent_id) ?? 'Agent')) : null;
  const status = out && e.delivery_status
    ? h('span', {
      class: ['delivery', `delivery-${e.delivery_status}`],
      title: e.error ?? '',
    }, DELIVERY[e.delivery_status] ?? e.delivery_status, e.error ? ` — ${e.error}` : '')
    : null;
  return [
    h('div', { class: 'bubble' },
      h('div', { class: 'bubble-text' }, e.body),
      attachments(e)),
    h('div', { class: 'meta' },
      h('span', { class: 'meta-channel' }, channelName(e.channel)),
      who ? h('span', null, who) : null,
      time(e.occurred_at),
      status),
  ];
}

function note(e, names) {
  return [
    h('div', { class: 'note-card' },
      h('div', { class: 'note-label' }, 'internal note'),
      h('div', { class: 'bubble-text' }, e.body)),
    h('div', { class: 'meta' }, h('span', null, names.get(e.author_agent_id) ?? 'Agent'), time(e.occurred_at)),
  ];
}

function transfer(e, names) {
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

function call(e) {
  return [h('div', { class: 'sys sys-call' },
    h('span', { class: 'sys-title' }, `📞 ${e.direction === 'out' ? 'Outbound call' : 'Call'}`),
    e.body ? h('span', null, e.body) : null,
    time(e.occurred_at))];
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

/** The list items of a timeline; `names` maps agent ids to names where known. */
export function timelineItems(events, names = new Map()) {
  return events.map((e) => {
    const render = RENDER[e.kind] ?? ((ev) => system(ev, 'sys-other'));
    const side = e.kind === 'message' ? (e.direction === 'out' ? 'out' : 'in') : 'mid';
    return h('li', {
      class: ['tl', `tl-${e.kind}`, `tl-${side}`, e.data?.auto && 'tl-auto'],
      'data-testid': 'timeline-event',
      'data-kind': e.kind,
      'data-channel': e.channel ?? '',
      'data-event': e.id,
    }, render(e, names));
  });
}
