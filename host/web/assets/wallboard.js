// The supervisor wallboard: every queue, every channel and every agent on one page,
// refreshed from REST when the floor changes and on a slow timer as a safety net.

import { h, mount as replace } from './dom.js';
import { get } from './api.js';
import { channelName } from './channels.js';
import { duration, clock } from './time.js';
import { waitChart } from './wallboard-chart.js';

const POLL_MS = 5000;
const DEBOUNCE_MS = 300;

function sla(q) {
  const pct = q.today?.sla_pct;
  if (pct == null) return h('td', { class: 'num', 'data-testid': 'wallboard-sla' }, '—');
  // The host sends a percentage with one decimal (93.3); the board shows whole points.
  const value = pct;
  return h('td', { class: ['num', value >= 80 ? 'sla-ok' : 'sla-bad'], 'data-testid': 'wallboard-sla' }, `${Math.round(value)}%`);
}

function queuesTable(queues) {
  return h('div', { class: 'table-wrap' }, h('table', null,
    h('caption', { class: 'sr-only' }, 'Queues'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Queue'),
      h('th', { scope: 'col', class: 'num' }, 'Waiting'),
      h('th', { scope: 'col', class: 'num' }, 'Longest wait'),
      h('th', { scope: 'col', class: 'num' }, 'SLA today'),
      h('th', { scope: 'col', class: 'num' }, 'Target'),
      h('th', { scope: 'col', class: 'num' }, 'Arrived'),
      h('th', { scope: 'col', class: 'num' }, 'Answered'),
      h('th', { scope: 'col', class: 'num' }, 'Abandoned'))),
    h('tbody', null, queues.length === 0
      ? h('tr', null, h('td', { colspan: '8', class: 'empty' }, 'No queues yet.'))
      : queues.map((q) => h('tr', { 'data-testid': 'wallboard-queue', 'data-queue': q.id },
        h('th', { scope: 'row' }, q.name ?? q.id),
        h('td', { class: ['num', 'big'], 'data-testid': 'wallboard-waiting' }, String(q.waiting ?? 0)),
        h('td', {
          class: ['num', q.sla_target_ms && q.longest_wait_ms > q.sla_target_ms && 'wait-bad'],
          'data-testid': 'wallboard-longest',
        }, duration(q.longest_wait_ms ?? 0)),
        sla(q),
        h('td', { class: 'num' }, q.sla_target_ms ? duration(q.sla_target_ms) : '—'),
        h('td', { class: 'num' }, String(q.today?.arrived ?? 0)),
        h('td', { class: 'num' }, String(q.today?.answered ?? 0)),
        h('td', { class: 'num' }, String(q.today?.abandoned ?? 0)))))));
}

function loadText(load) {
  const parts = Object.entries(load ?? {}).filter(([, n]) => n > 0).map(([ch, n]) => `${ch} ${n}`);
  return parts.length ? parts.join(' · ') : 'idle';
}

function agentsTable(agents) {
  const order = { available: 0, away: 1, offline: 2 };
  const sorted = [...agents].sort((a, b) => (order[a.presence] ?? 3) - (order[b.presence] ?? 3) || a.name.localeCompare(b.name));
  return h('div', { class: 'table-wrap' }, h('table', null,
    h('caption', { class: 'sr-only' }, 'Agents'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Agent'),
      h('th', { scope: 'col' }, 'Presence'),
      h('th', { scope: 'col' }, 'Load'),
      h('th', { scope: 'col', class: 'num' }, 'Capacity'))),
    h('tbody', null, sorted.length === 0
      ? h('tr', null, h('td', { colspan: '4', class: 'empty' }, 'No agents.'))
      : sorted.map((a) => {
        const pct = a.total ? Math.min(100, (a.used / a.total) * 100) : 0;
        const fill = h('span', { class: 'load-fill' });
        fill.style.setProperty('width', `${pct}%`);
        return h('tr', { 'data-testid': 'wallboard-agent', 'data-agent': a.id },
          h('th', { scope: 'row' }, a.name, a.role !== 'agent' ? h('span', { class: 'muted small' }, ` (${a.role})`) : null),
          h('td', null, h('span', { class: ['pres', `pres-${a.presence}`] },
            a.presence, a.reason ? ` — ${String(a.reason).replace(/_/g, ' ')}` : '')),
          h('td', null, loadText(a.load)),
          h('td', { class: 'num' }, `${a.used ?? 0}/${a.total ?? 0}`,
            h('div', { class: 'load-bar', 'aria-hidden': 'true' }, fill)));
      }))));
}

function channelsTable(channels) {
  return h('div', { class: 'table-wrap' }, h('table', null,
    h('caption', { class: 'sr-only' }, 'Channels'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Channel'),
      h('th', { scope: 'col', class: 'num' }, 'Waiting'),
      h('th', { scope: 'col', class: 'num' }, 'Longest'),
      h('th', { scope: 'col', class: 'num' }, 'Answered today'),
      h('th', { scope: 'col', class: 'num' }, 'Avg wait'),
      h('th', { scope: 'col', class: 'num' }, 'Max wait'))),
    h('tbody', null, channels.length === 0
      ? h('tr', null, h('td', { colspan: '6', class: 'empty' }, 'No channel activity today.'))
      : channels.map((c) => h('tr', { 'data-channel': c.channel },
        h('th', { scope: 'row' }, channelName(c.channel)),
        h('td', { class: 'num' }, String(c.waiting ?? 0)),
        h('td', { class: 'num' }, c.waiting ? duration(c.longest_wait_ms) : '—'),
        h('td', { class: 'num' }, String(c.answered_today ?? 0)),
        h('td', { class: 'num' }, duration(c.avg_wait_ms)),
        h('td', { class: 'num' }, duration(c.max_wait_ms)))))));
}

export function mount(container, { rt }) {
  let destroyed = false;
  const updated = h('span', { class: 'page-sub', 'aria-live': 'off' });
  const transfer = h('span', { class: 'page-sub' });
  const body = h('div', { class: 'cards' }, h('p', { class: 'loading' }, 'Loading…'));
  replace(container, h('div', { class: 'page', 'data-testid': 'wallboard' },
    h('div', { class: 'page-head' }, h('h1', { class: 'page-title' }, 'Wallboard'), updated, transfer),
    body));

  let inflight = false;
  async function load() {
    if (inflight || destroyed) return;
    inflight = true;
    try {
      const wb = await get('/wallboard');
      if (destroyed) return;
      replace(body,
        h('section', { class: 'card card-wide', 'aria-label': 'Queues' }, h('h2', null, 'Queues'), queuesTable(wb.queues ?? [])),
        h('section', { class: 'card', 'aria-label': 'Queue time by channel' }, h('h2', null, 'Queue time by channel (today)'),
          waitChart(wb.channels ?? []),
          h('div', { class: 'chart-legend', 'aria-hidden': 'true' },
            h('span', null, h('span', { class: 'swatch swatch-avg' }), 'average wait'),
            h('span', null, h('span', { class: 'swatch swatch-max' }), 'max wait'))),
        h('section', { class: 'card', 'aria-label': 'Channels' }, h('h2', null, 'Channels'), channelsTable(wb.channels ?? [])),
        h('section', { class: 'card card-wide', 'aria-label': 'Agents' }, h('h2', null, 'Agents'), agentsTable(wb.agents ?? [])));
      updated.textContent = `updated ${clock(wb.at ?? Date.now())}`;
    } catch (e) {
      if (!destroyed) updated.textContent = `not updated: ${e.message}`;
    } finally {
      inflight = false;
    }
    get('/reports/context-transfer').then((r) => {
      if (destroyed) return;
      transfer.textContent = r.rate == null
        ? 'context transfer rate: — (no transfers yet)'
        : `context transfer rate: ${Math.round(r.rate * 100)}% (${r.with_context}/${r.transfers})`;
    }).catch(() => {});
  }

  let t = null;
  const soon = () => { clearTimeout(t); t = setTimeout(load, DEBOUNCE_MS); };
  const offs = ['task.updated', 'offer.created', 'agent.presence', 'resync'].map((type) => rt.on(type, soon));
  const timer = setInterval(load, POLL_MS);
  load();
  return () => {
    destroyed = true;
    clearInterval(timer);
    clearTimeout(t);
    offs.forEach((off) => off());
  };
}
