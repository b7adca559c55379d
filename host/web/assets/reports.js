// The supervisor's reports page (`#/reports`): a date range with presets in the
// operator's time zone, grouping and filters, then one tab per report — headline
// figures, trend and distribution charts, and the table. Every counted number opens
// the conversations behind it; every table downloads as CSV, and the conversations of
// the range download one row each. The page's choices live in the hash
// (`#/reports?tab=journeys&preset=last30…`), so a reload or a bookmark shows the same.
//
// The API computes every figure (REPORTS.md); this page only asks, formats and draws.

import { h, mount as replace, field, select } from './dom.js';
import { get } from './api.js';
import { channelName } from './channels.js';
import { duration } from './time.js';
import {
  TABS, COLUMNS, TILES, PRESETS, column, count, percent, score, localDate, presetRange,
  periodLabel, chartLabel, query, tabQueries, stateToHash,
} from './reports-model.js';
import { trendCharts, distributionCharts } from './reports-charts.js';
import { openDrill, download } from './reports-drill.js';

const ZONE_KEY = 'sb.reports.zone';
// Channels the filter always offers; others join as reports show them.
const KNOWN_CHANNELS = ['webchat', 'sms', 'whatsapp', 'telegram', 'messenger', 'instagram', 'email', 'voice'];
const GROUP_BY = [['day', 'Day'], ['week', 'Week'], ['month', 'Month'], ['total', 'Whole range']];
const BY = [['', 'Period only'], ['channel', 'Channel'], ['queue', 'Queue'], ['agent', 'Agent']];

function initialState(params) {
  const p = (k) => params?.get(k) ?? '';
  const state = {
    tab: TABS.some(([k]) => k === p('tab')) ? p('tab') : 'operations',
    preset: PRESETS.some(([k]) => k === p('preset')) ? p('preset') : 'last7',
    from: p('from'),
    to: p('to'),
    groupBy: GROUP_BY.some(([k]) => k === p('groupBy')) ? p('groupBy') : 'day',
    by: BY.some(([k]) => k === p('by')) ? p('by') : '',
    channel: p('channel'),
    queue: p('queue'),
    agent: p('agent'),
    serviceLevel: p('serviceLevel'),
    shortAbandon: p('shortAbandon'),
    fcrDays: p('fcrDays'),
  };
  const dated = /^\d{4}-\d{2}-\d{2}$/;
  if (state.preset === 'custom' && !(dated.test(state.from) && dated.test(state.to))) state.preset = 'last7';
  return state;
}

/** A value as the table shows it. */
function show(col, v) {
  switch (col.kind) {
    case 'rate': return percent(v);
    case 'ms': return v == null ? '—' : v > 0 && v < 1000 ? '<1s' : duration(v);
    case 'score': return score(v);
    case 'nps': return v == null ? '—' : String(v);
    default: return count(v);
  }
}

/** The raw value as the CSV has it, for tests and copy-paste. */
const raw = (v) => (v == null ? '' : String(v));

export function mount(container, { params }) {
  const state = initialState(params);
  let zone = sessionStorage.getItem(ZONE_KEY);
  let destroyed = false;
  let charts = [];
  let loadSeq = 0;
  const names = new Map();
  const queues = new Map();
  const channels = new Set(KNOWN_CHANNELS);

  const applyPreset = () => {
    const range = presetRange(state.preset, localDate(Date.now(), zone));
    if (range) [state.from, state.to] = range;
  };
  applyPreset();

  // ------------------------------------------------------------ controls

  const preset = select({ 'data-testid': 'report-preset', on: { change: () => { state.preset = preset.value; applyPreset(); changed(); } } }, PRESETS, state.preset);
  const from = h('input', { type: 'date', required: true, value: state.from, 'data-testid': 'report-from', on: { change: () => custom() } });
  const to = h('input', { type: 'date', required: true, value: state.to, 'data-testid': 'report-to', on: { change: () => custom() } });
  const groupBy = select({ 'data-testid': 'report-group-by', on: { change: () => { state.groupBy = groupBy.value; changed(); } } }, GROUP_BY, state.groupBy);
  const by = select({ 'data-testid': 'report-by', on: { change: () => { state.by = by.value; changed(); } } }, BY, state.by);
  const channel = h('select', { 'data-testid': 'report-channel', on: { change: () => { state.channel = channel.value; changed(); } } });
  const queue = h('select', { 'data-testid': 'report-queue', on: { change: () => { state.queue = queue.value; changed(); } } });
  const agent = h('select', { 'data-testid': 'report-agent', on: { change: () => { state.agent = agent.value; changed(); } } });
  const num = (key, testid, attrs) => {
    const input = h('input', {
      type: 'number', inputmode: 'numeric', value: state[key], placeholder: 'default', 'data-testid': testid, ...attrs,
      on: { change: () => { state[key] = input.validity.valid ? input.value : ''; changed(); } },
    });
    return input;
  };
  const thresholds = h('details', { class: 'report-thresholds' },
    h('summary', null, 'Thresholds'),
    h('div', { class: 'report-controls' },
      field('Service level (seconds)', num('serviceLevel', 'report-sl', { min: '0', max: '86400' })),
      field('Short abandon (seconds)', num('shortAbandon', 'report-short-abandon', { min: '0', max: '86400' })),
      field('FCR window (days)', num('fcrDays', 'report-fcr-days', { min: '1', max: '90' }))));
  const exportAll = h('button', {
    type: 'button', class: 'btn', 'data-testid': 'report-export-conversations',
    on: { click: () => download(`/reports/conversations.csv?${query(state, { groupBy: '', by: '' })}`, `conversations-${state.from}-${state.to}.csv`, exportAll) },
  }, 'Export conversations (CSV)');
  const refresh = h('button', { type: 'button', class: 'btn', on: { click: () => load() } }, 'Refresh');

  function custom() {
    state.preset = 'custom';
    preset.value = 'custom';
    if (from.value) state.from = from.value;
    if (to.value) state.to = to.value;
    changed();
  }

  function fillFilters() {
    const opt = (sel, all, pairs, current) => {
      replace(sel, h('option', { value: '' }, all), pairs.map(([v, l]) => h('option', { value: v, selected: v === current }, l)));
      if (current && !pairs.some(([v]) => v === current)) sel.append(h('option', { value: current, selected: true }, current));
    };
    opt(channel, 'All channels', [...channels].map((c) => [c, channelName(c)]).sort((a, b) => a[1].localeCompare(b[1])), state.channel);
    opt(queue, 'All queues', [...queues].sort((a, b) => a[1].localeCompare(b[1])), state.queue);
    opt(agent, 'All agents', [...names].sort((a, b) => a[1].localeCompare(b[1])), state.agent);
  }
  fillFilters();

  // ------------------------------------------------------------ layout

  const status = h('p', { class: 'report-status', role: 'status', 'data-testid': 'report-status' });
  const sub = h('span', { class: 'page-sub', 'data-testid': 'report-meta' });
  const tabButtons = new Map();
  const panel = h('div', { class: 'report-panel', role: 'tabpanel', id: 'report-panel', tabindex: '0' });
  const tablist = h('div', { class: 'report-tabs', role: 'tablist', 'aria-label': 'Reports' },
    TABS.map(([key, label], i) => {
      const b = h('button', {
        type: 'button', role: 'tab', id: `report-tab-${key}`, 'aria-controls': 'report-panel',
        'data-testid': `report-tab-${key}`,
        on: {
          click: () => selectTab(key),
          keydown: (ev) => {
            const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
            if (!step) return;
            ev.preventDefault();
            const next = TABS[(i + step + TABS.length) % TABS.length][0];
            selectTab(next);
            tabButtons.get(next).focus();
          },
        },
      }, label);
      tabButtons.set(key, b);
      return b;
    }));

  replace(container, h('div', { class: 'page reports', 'data-testid': 'reports' },
    h('div', { class: 'page-head' }, h('h1', { class: 'page-title' }, 'Reports'), sub),
    h('form', {
      class: 'card report-form', 'aria-label': 'Report range and filters',
      on: { submit: (ev) => { ev.preventDefault(); load(); } },
    },
    h('div', { class: 'report-controls' },
      field('Dates', preset), field('From', from), field('To', to),
      field('Rows per', groupBy), field('Split by', by),
      field('Channel', channel), field('Queue', queue), field('Agent', agent)),
    h('div', { class: 'report-actions' }, thresholds, h('span', { class: 'spacer' }), refresh, exportAll)),
    tablist, status, panel));

  function selectTab(key) {
    state.tab = key;
    changed();
  }

  function changed() {
    from.value = state.from;
    to.value = state.to;
    history.replaceState(null, '', stateToHash(state));
    load();
  }

  // ------------------------------------------------------------ loading

  async function load() {
    if (destroyed) return;
    const mine = ++loadSeq;
    const report = state.tab;
    for (const [k, b] of tabButtons) {
      b.setAttribute('aria-selected', k === report ? 'true' : 'false');
      b.tabIndex = k === report ? 0 : -1;
    }
    panel.setAttribute('aria-labelledby', `report-tab-${report}`);
    if (!state.from || !state.to || state.from > state.to) {
      status.textContent = 'Choose a first date on or before the last date.';
      status.classList.add('form-error');
      return;
    }
    status.classList.remove('form-error');
    status.textContent = 'Loading…';
    panel.setAttribute('aria-busy', 'true');
    const qs = tabQueries(report, state);
    const asked = new Map();
    const ask = (q) => {
      if (!asked.has(q)) asked.set(q, get(`/reports/${report}?${q}`));
      return asked.get(q);
    };
    let table; let trend; let total; let split;
    try {
      [table, trend, total, split] = await Promise.all([ask(qs.table), ask(qs.trend), ask(qs.total), ask(qs.split)]);
    } catch (e) {
      if (mine !== loadSeq || destroyed) return;
      status.textContent = `Not loaded: ${e.message}`;
      status.classList.add('form-error');
      panel.removeAttribute('aria-busy');
      return;
    }
    if (mine !== loadSeq || destroyed) return;
    // Presets are days of the operator's zone; the host says which zone that is.
    if (table.zone && table.zone !== zone) {
      zone = table.zone;
      sessionStorage.setItem(ZONE_KEY, zone);
      const before = `${state.from}/${state.to}`;
      applyPreset();
      if (`${state.from}/${state.to}` !== before) { changed(); return; }
    }
    for (const r of split.rows) if (r.channel) channels.add(r.channel);
    fillFilters();
    const asOf = new Intl.DateTimeFormat('en-GB', { timeZone: table.zone, hour: '2-digit', minute: '2-digit' }).format(new Date(table.at));
    sub.textContent = `${table.from} to ${table.to} · ${table.zone} time · as of ${asOf} · service level ${table.service_level_secs} s, short abandon ${table.short_abandon_secs} s, FCR window ${table.fcr_days} days`;
    status.textContent = '';
    panel.removeAttribute('aria-busy');
    render(report, { table, trend, total, split }, qs);
  }

  function destroyCharts() {
    charts.forEach((c) => c.destroy());
    charts = [];
  }

  function groupLabel(dim, row) {
    const key = row[dim];
    if (key == null || key === '') return '—';
    if (dim === 'channel') return channelName(key);
    if (dim === 'queue') return queues.get(key) ?? key;
    if (dim === 'agent') return row.agent_name ?? names.get(key) ?? key;
    return String(key);
  }

  /** The cell of a counted number: a button that lists its conversations. */
  function cell(col, row, { dim, label }) {
    const v = row[col.key];
    const attrs = { class: col.kind === 'count' || col.kind === 'ms' || col.kind === 'rate' || col.kind === 'score' || col.kind === 'nps' ? 'num' : null, 'data-column': col.key, 'data-value': raw(v) };
    if (!col.drill || !v) return h('td', attrs, show(col, v));
    const what = `${col.label} · ${label}`;
    const q = query(state, { metric: col.drill, from: row.from, to: row.to, groupBy: '', by: dim ?? '', key: dim ? (row[dim] ?? '') : null });
    return h('td', attrs, h('button', {
      type: 'button', class: 'drill', 'aria-label': `${what}: ${show(col, v)}. Show the conversations`,
      on: { click: () => openDrill({ what, q, expected: v, names, queues, zone }) },
    }, show(col, v)));
  }

  function tiles(report, total) {
    return h('div', { class: 'kpis', 'data-testid': 'report-tiles' }, TILES[report].map((key) => {
      const col = column(report, key);
      const v = total[key];
      const td = cell(col, total, { label: periodLabel(total, 'total') });
      return h('div', { class: 'kpi', 'data-testid': 'report-tile', 'data-column': key, 'data-value': raw(v) },
        h('div', { class: 'kpi-label', title: col.title }, col.label),
        h('div', { class: 'kpi-value' }, ...td.childNodes));
    }));
  }

  function table(report, res, total, groupBy) {
    const dim = res.by;
    const cols = COLUMNS[report];
    const rowLabel = (r) => [periodLabel(r, groupBy), dim ? groupLabel(dim, r) : null].filter(Boolean).join(' · ');
    const foot = res.rows.length > 1 && total;
    return h('div', { class: 'table-wrap report-table-wrap' }, h('table', { class: 'report-table', 'data-testid': 'report-table' },
      h('caption', { class: 'sr-only' }, `${TABS.find(([k]) => k === report)[1]} report`),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Period'),
        dim ? h('th', { scope: 'col' }, BY.find(([k]) => k === dim)[1]) : null,
        cols.map((col) => h('th', { scope: 'col', class: 'num', title: col.title, 'data-column': col.key }, col.label)))),
      h('tbody', null, res.rows.length === 0
        ? h('tr', null, h('td', { colspan: String(cols.length + 2), class: 'empty' }, 'Nothing in this range.'))
        : res.rows.map((r) => h('tr', { 'data-testid': 'report-row', 'data-period': r.period, 'data-key': dim ? (r[dim] ?? '') : null },
          h('th', { scope: 'row' }, periodLabel(r, groupBy)),
          dim ? h('td', null, groupLabel(dim, r)) : null,
          cols.map((col) => cell(col, r, { dim, label: rowLabel(r) }))))),
      foot ? h('tfoot', null, h('tr', { 'data-testid': 'report-total' },
        h('th', { scope: 'row' }, 'Total'),
        dim ? h('td', null) : null,
        cols.map((col) => cell(col, total, { label: periodLabel(total, 'total') })))) : null));
  }

  function render(report, { table: res, trend, total, split }, qs) {
    destroyCharts();
    const totalRow = total.rows[0] ?? {};
    const labels = trend.rows.map((r) => chartLabel(r, trend.group_by));
    const figures = [...trendCharts(report, trend.rows, labels), ...distributionCharts(report, totalRow, split.rows, names)];
    charts = figures.map((f) => f.chart);
    const csv = h('button', {
      type: 'button', class: 'btn btn-small', 'data-testid': 'report-csv',
      on: { click: () => download(`/reports/${report}.csv?${qs.table}`, `${report}-${state.from}-${state.to}.csv`, csv) },
    }, 'Download CSV');
    replace(panel,
      tiles(report, totalRow),
      h('div', { class: 'report-charts' }, figures.map((f) => f.el)),
      h('section', { class: 'card report-table-card', 'aria-labelledby': 'report-table-title' },
        h('div', { class: 'report-table-head' },
          h('h2', { id: 'report-table-title' }, `${TABS.find(([k]) => k === report)[1]} by ${GROUP_BY.find(([k]) => k === res.group_by)?.[1].toLowerCase() ?? res.group_by}${res.by ? ` and ${res.by}` : ''}`),
          report === 'agents' && state.by && state.by !== 'agent' ? h('span', { class: 'muted small' }, 'Agents are always one per row.') : null,
          h('span', { class: 'spacer' }), csv),
        table(report, res, totalRow, res.group_by)));
  }

  // Names for the filters, the groups and the drill-downs.
  Promise.all([
    get('/agents').then((r) => { for (const a of r.agents ?? []) names.set(a.id, a.name); }).catch(() => {}),
    get('/queues').then((r) => { for (const q of r.queues ?? []) queues.set(q.id ?? q.name, q.name ?? q.id); }).catch(() => {}),
  ]).then(() => { if (!destroyed) { fillFilters(); load(); } });

  return () => {
    destroyed = true;
    destroyCharts();
  };
}
