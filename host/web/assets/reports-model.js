// What the reports page shows of each report, and how its requests are made: the
// columns on screen (labels, formats, the drill-down metric behind each count), the
// date presets in the operator's time zone, and the query strings shared by the
// tables, the charts, the drill-downs and the CSV downloads. No DOM here.
//
// The definitions of every figure are REPORTS.md's; the API names the columns and the
// page shows a subset of them (the CSV download has them all).

/** The report tabs, in order. */
export const TABS = [
  ['operations', 'Operations'],
  ['agents', 'Agents'],
  ['journeys', 'Journeys'],
  ['experience', 'Experience'],
];

// kind: 'count' (an integer; with `drill`, the metric of /reports/drill that lists it),
// 'rate' (a fraction shown as a percentage), 'ms' (a duration), 'score' (a mean),
// 'nps' (a number of points).
const c = (key, label, kind, drill, title) => ({ key, label, kind, drill, title });

/** Columns shown in each report's table, in order. */
export const COLUMNS = {
  operations: [
    c('arrived', 'Arrived', 'count', 'arrived', 'Tasks that arrived'),
    c('handled', 'Handled', 'count', 'handled', 'Tasks answered by an agent'),
    c('abandoned', 'Abandoned', 'count', 'abandoned', 'Customers who left before an answer'),
    c('short_abandoned', 'Short abandons', 'count', 'short_abandoned', 'Abandoned sooner than the short-abandon threshold'),
    c('abandon_rate', 'Abandon rate', 'rate', null, '(abandoned − short) / (handled + abandoned − short)'),
    c('answered_in_sl', 'In service level', 'count', 'answered_in_sl', 'Answered within the service-level threshold'),
    c('service_level', 'Service level', 'rate', null, 'Answered in service level / (handled + abandoned − short)'),
    c('avg_queue_ms', 'Avg queue', 'ms', null, 'Mean time from arrival to answer'),
    c('p90_queue_ms', 'P90 queue', 'ms', null, '90th percentile of queue time'),
    c('avg_first_response_ms', 'Avg first response', 'ms', null, 'Mean time from arrival to the first agent message'),
    c('avg_handle_ms', 'Avg handle', 'ms', null, 'Talk or chat + hold + wrap-up, per handled task that ended'),
    c('transferred', 'Transferred', 'count', 'transferred', 'Tasks transferred at least once'),
    c('handoffs', 'Hand-offs', 'count', 'handoffs', 'Transferred tasks accepted by the next agent'),
    c('context_transfer_rate', 'With context', 'rate', null, 'Hand-offs that carried context'),
    c('missed_offers', 'Missed offers', 'count', 'missed_offers', 'Offers rejected or let time out'),
    c('waiting', 'Still waiting', 'count', 'waiting', 'Neither answered nor ended yet'),
  ],
  agents: [
    c('staffed_ms', 'Staffed', 'ms', null, 'Available, or holding a task'),
    c('busy_ms', 'Busy', 'ms', null, 'Holding at least one task'),
    c('occupancy', 'Occupancy', 'rate', null, 'Busy / staffed'),
    c('avg_concurrency', 'Concurrency', 'score', null, 'Tasks held at once, on average, while busy'),
    c('utilization', 'Utilization', 'rate', null, 'Capacity used / capacity staffed'),
    c('handled', 'Handled', 'count', 'legs', 'Tasks taken (legs assigned)'),
    c('avg_handle_ms', 'Avg handle', 'ms', null, 'Mean handle time per leg that ended'),
    c('transferred_out', 'Transferred out', 'count', 'transferred_out', 'Legs that ended in a transfer'),
  ],
  journeys: [
    c('journeys', 'Journeys', 'count', 'journeys', 'Conversations opened'),
    c('resolved', 'Resolved', 'count', 'resolved', 'Of those, resolved now'),
    c('fcr_yes', 'FCR yes', 'count', 'fcr_yes', 'Resolved with no new contact within the FCR window'),
    c('fcr_no', 'FCR no', 'count', 'fcr_no', 'The customer came back within the FCR window'),
    c('fcr_pending', 'FCR pending', 'count', 'fcr_pending', 'Resolved; the FCR window is still open'),
    c('fcr_rate', 'FCR rate', 'rate', null, 'FCR yes / (yes + no)'),
    c('arrivals', 'Arrivals', 'count', 'arrivals', 'Customer arrivals: openings and reopenings'),
    c('repeat_contacts', 'Repeat contacts', 'count', 'repeat_contacts', 'Arrivals within the FCR window after a resolution'),
    c('repeat_contact_rate', 'Repeat rate', 'rate', null, 'Repeat contacts / arrivals'),
    c('multi_channel', 'Multi-channel', 'count', 'multi_channel', 'Journeys that used two channels or more'),
    c('multi_channel_share', 'Multi-channel share', 'rate', null, 'Multi-channel / journeys'),
    c('channel_switches', 'Channel switches', 'count', null, 'Moves to another channel'),
    c('reopened', 'Reopened', 'count', 'reopened', 'Journeys reopened at least once'),
    c('avg_resolution_ms', 'Avg resolution', 'ms', null, 'Opening to final resolution, across channels'),
    c('handoffs', 'Hand-offs', 'count', 'journey_handoffs', 'Hand-offs received over the journeys’ tasks'),
    c('context_transfer_rate', 'With context', 'rate', null, 'Hand-offs that carried context'),
  ],
  experience: [
    c('csat_sent', 'CSAT sent', 'count', 'csat_sent', 'Journeys sent a CSAT survey'),
    c('csat_responses', 'CSAT answers', 'count', 'csat_responses', 'Journeys that answered it'),
    c('csat_response_rate', 'CSAT response rate', 'rate', null, 'Answers / sent'),
    c('csat_avg', 'CSAT (1–5)', 'score', null, 'Mean CSAT score'),
    c('csat_satisfied_share', 'Satisfied', 'rate', null, 'Answers of 4 or 5'),
    c('ces_sent', 'CES sent', 'count', 'ces_sent', 'Journeys sent a CES survey'),
    c('ces_responses', 'CES answers', 'count', 'ces_responses', 'Journeys that answered it'),
    c('ces_avg', 'CES (1–7)', 'score', null, 'Mean CES score (7 = very easy)'),
    c('ces_easy_share', 'Easy', 'rate', null, 'Answers of 5 to 7'),
    c('nps_sent', 'NPS sent', 'count', 'nps_sent', 'Journeys sent an NPS survey'),
    c('nps_responses', 'NPS answers', 'count', 'nps_responses', 'Journeys that answered it'),
    c('nps', 'NPS', 'nps', null, 'Promoters − detractors, per 100 answers'),
  ],
};

/** The headline figures above each table, from the whole range. */
export const TILES = {
  operations: ['arrived', 'handled', 'abandoned', 'service_level', 'avg_queue_ms', 'avg_handle_ms'],
  agents: ['handled', 'occupancy', 'utilization', 'avg_handle_ms', 'transferred_out'],
  journeys: ['journeys', 'fcr_rate', 'repeat_contacts', 'multi_channel', 'reopened', 'avg_resolution_ms'],
  experience: ['csat_avg', 'csat_responses', 'ces_avg', 'ces_responses', 'nps'],
};

export function column(report, key) {
  return COLUMNS[report].find((col) => col.key === key);
}

// ------------------------------------------------------------------ formats

/** "1,204"; "—" for nothing. */
export function count(v) {
  return v == null ? '—' : Number(v).toLocaleString('en-US');
}

/** 0.8125 → "81.3%"; one decimal is what a service level is read to. */
export function percent(v) {
  if (v == null || !Number.isFinite(v)) return '—';
  return `${(Math.round(v * 1000) / 10).toFixed(1)}%`;
}

/** A mean score: two decimals. */
export function score(v) {
  return v == null || !Number.isFinite(v) ? '—' : v.toFixed(2);
}

// ------------------------------------------------------------------ dates

/** "YYYY-MM-DD" of the instant `ms` in `zone` (an IANA name; the browser's own if null). */
export function localDate(ms, zone) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: zone || undefined, year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (t) => parts.find((p) => p.type === t).value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

const toUtc = (d) => new Date(`${d}T00:00:00Z`);
const fromUtc = (dt) => dt.toISOString().slice(0, 10);

/** A calendar date `n` days after `d` (both "YYYY-MM-DD"). */
export function addDays(d, n) {
  const dt = toUtc(d);
  dt.setUTCDate(dt.getUTCDate() + n);
  return fromUtc(dt);
}

export const PRESETS = [
  ['today', 'Today'],
  ['yesterday', 'Yesterday'],
  ['last7', 'Last 7 days'],
  ['last30', 'Last 30 days'],
  ['this_month', 'This month'],
  ['last_month', 'Last month'],
  ['custom', 'Custom dates'],
];

/** The dates a preset covers, given today's date in the operator's zone. */
export function presetRange(preset, today) {
  switch (preset) {
    case 'today': return [today, today];
    case 'yesterday': return [addDays(today, -1), addDays(today, -1)];
    case 'last7': return [addDays(today, -6), today];
    case 'last30': return [addDays(today, -29), today];
    case 'this_month': return [`${today.slice(0, 8)}01`, today];
    case 'last_month': {
      const first = `${today.slice(0, 8)}01`;
      const last = addDays(first, -1);
      return [`${last.slice(0, 8)}01`, last];
    }
    default: return null;
  }
}

const WEEKDAY = new Intl.DateTimeFormat('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' });
const DAY_MONTH = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });
const MONTH = new Intl.DateTimeFormat('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' });

/** How a row's period reads: "Mon 1 Dec", "W49 · 1–7 Dec", "Dec 2025", "1 Dec – 7 Dec". */
export function periodLabel(row, groupBy) {
  const from = toUtc(row.from);
  const to = toUtc(row.to);
  switch (groupBy) {
    case 'day': return WEEKDAY.format(from);
    case 'week': return `${String(row.period).slice(5)} · ${DAY_MONTH.format(from)}–${DAY_MONTH.format(to)}`;
    case 'month': return MONTH.format(from);
    default: return row.from === row.to ? WEEKDAY.format(from) : `${DAY_MONTH.format(from)} – ${DAY_MONTH.format(to)}`;
  }
}

/** A period as a chart's axis reads it, short: "1 Dec", "W49", "Dec 2025". */
export function chartLabel(row, groupBy) {
  if (groupBy === 'week') return String(row.period).slice(5);
  if (groupBy === 'day') return DAY_MONTH.format(toUtc(row.from));
  return periodLabel(row, groupBy);
}

// ------------------------------------------------------------------ queries

/**
 * The query string of a report, drill-down or export. `state` is the page's
 * {from, to, groupBy, by, channel, queue, agent, serviceLevel, shortAbandon, fcrDays};
 * `over` replaces any of them (`by: ''` drops the grouping).
 */
export function query(state, over = {}) {
  const s = { ...state, ...over };
  const q = new URLSearchParams();
  q.set('from', s.from);
  q.set('to', s.to);
  if (s.groupBy) q.set('group_by', s.groupBy);
  if (s.by) q.set('by', s.by);
  if (s.key != null) q.set('key', s.key);
  if (s.metric) q.set('metric', s.metric);
  for (const [k, v] of [['channel', s.channel], ['queue', s.queue], ['agent', s.agent],
    ['service_level_secs', s.serviceLevel], ['short_abandon_secs', s.shortAbandon], ['fcr_days', s.fcrDays]]) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  return q.toString();
}

/**
 * The report requests of a tab: `table` (what the user chose), `trend` (per period, no
 * group), `total` (the whole range, no group) and `split` (the whole range per channel,
 * or per agent for the agents report). Equal queries are asked once.
 */
export function tabQueries(report, state) {
  const by = report === 'agents' ? 'agent' : state.by;
  return {
    table: query(state, { by }),
    trend: query(state, { by: '' }),
    total: query(state, { groupBy: 'total', by: '' }),
    split: query(state, { groupBy: 'total', by: report === 'agents' ? 'agent' : 'channel' }),
  };
}

/** The page's state as the hash's query (`#/reports?…`), for reloads and bookmarks. */
export function stateToHash(state) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  return `#/reports?${q}`;
}
