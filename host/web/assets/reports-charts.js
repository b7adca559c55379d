// The reports' charts, drawn by Chart.js (vendor/chart.umd.min.js, MIT; see README).
// The library draws on a canvas and sizes it through the CSSOM, so the page's
// Content-Security-Policy needs nothing inline. Each chart is a figure with a caption;
// the canvas carries a one-sentence summary as its accessible name, and the table below
// it holds every number for reading and drilling.

import './vendor/chart.umd.min.js';
import { h } from './dom.js';
import { channelName } from './channels.js';
import { duration } from './time.js';

const { Chart } = globalThis;

function css(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

let styled = false;
function setDefaults() {
  if (styled) return;
  styled = true;
  Chart.defaults.font.family = css('--font', 'system-ui, sans-serif');
  Chart.defaults.font.size = 12;
  Chart.defaults.color = css('--ink-2', '#4b5565');
  Chart.defaults.borderColor = css('--line-2', '#eceef2');
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
}

/** The palette: fixed meanings, so "abandoned" is the same red in every chart. */
export const COLOR = {
  arrived: '#9db4f0',
  handled: '#2450d8',
  abandoned: '#c0262d',
  level: '#17803d',
  rate: '#a15c00',
  neutral: '#5b6472',
  yes: '#17803d',
  no: '#c0262d',
  pending: '#c9ced6',
  csat: '#2450d8',
  ces: '#7a4fd6',
};

export function channelColor(channel) {
  const known = ['webchat', 'sms', 'whatsapp', 'telegram', 'email', 'voice'];
  const key = channel === 'chat' ? 'webchat' : channel;
  return css(known.includes(key) ? `--ch-${key}` : '--ch-other', '#5b6472');
}

const pctAxis = (position = 'right') => ({
  type: 'linear', position, min: 0, max: 1, grid: { drawOnChartArea: position === 'left' },
  ticks: { callback: (v) => `${Math.round(v * 100)}%` },
});
const countAxis = (position = 'left') => ({
  type: 'linear', position, beginAtZero: true, ticks: { precision: 0 },
});
const msAxis = (position = 'left') => ({
  type: 'linear', position, beginAtZero: true, ticks: { callback: (v) => duration(v) },
});

/** Tooltip text per dataset kind. */
function tooltipLabel(ctx) {
  const kind = ctx.dataset.kind;
  const v = ctx.raw;
  let text;
  if (v == null) text = '—';
  else if (kind === 'rate') text = `${(Math.round(v * 1000) / 10).toFixed(1)}%`;
  else if (kind === 'ms') text = duration(v);
  else if (kind === 'score') text = Number(v).toFixed(2);
  else text = String(v);
  return `${ctx.dataset.label}: ${text}`;
}

/**
 * A chart card: `<figure>` with its caption and a canvas. `config` is Chart.js's;
 * `summary` is the accessible name. Returns {el, chart}; call `chart.destroy()` when
 * the figure leaves the page.
 */
export function chartFigure({ title, summary, config, testid, tall = false }) {
  setDefaults();
  const canvas = h('canvas', { role: 'img', 'aria-label': summary }, summary);
  const box = h('div', { class: ['chart-box', tall && 'chart-box-tall'] }, canvas);
  const el = h('figure', { class: 'card report-chart', 'data-testid': testid },
    h('figcaption', { class: 'chart-title' }, title), box);
  config.options = config.options ?? {};
  config.options.responsive = true;
  // Reports are read, not watched: no animation, so a redraw is at once.
  config.options.animation = false;
  config.options.plugins = { ...(config.options.plugins ?? {}), tooltip: { callbacks: { label: tooltipLabel } } };
  const chart = new Chart(canvas, config);
  return { el, chart };
}

const bar = (label, data, color, extra = {}) => ({
  type: 'bar', label, data, backgroundColor: color, borderColor: color, kind: 'count', yAxisID: 'y', ...extra,
});
const line = (label, data, color, extra = {}) => ({
  type: 'line', label, data, borderColor: color, backgroundColor: color, pointRadius: 3, tension: 0.2,
  spanGaps: false, kind: 'rate', yAxisID: 'pct', ...extra,
});

function describe(labels, series) {
  if (labels.length === 0) return 'No data in this range.';
  return series.map(([name, values, fmt]) =>
    `${name}: ${labels.map((l, i) => `${l} ${fmt(values[i])}`).join(', ')}`).join('; ');
}
const fmtCount = (v) => (v == null ? '—' : String(v));
const fmtPct = (v) => (v == null ? '—' : `${Math.round(v * 100)}%`);
const fmtScore = (v) => (v == null ? '—' : Number(v).toFixed(2));

/** The trend charts of a report, over `rows` (one per period) labelled `labels`. */
export function trendCharts(report, rows, labels) {
  const col = (k) => rows.map((r) => r[k] ?? null);
  const figures = [];
  if (report === 'operations') {
    figures.push(chartFigure({
      title: 'Tasks per period',
      testid: 'report-chart-volume',
      summary: `Tasks per period. ${describe(labels, [['arrived', col('arrived'), fmtCount], ['handled', col('handled'), fmtCount], ['abandoned', col('abandoned'), fmtCount]])}`,
      config: {
        data: { labels, datasets: [bar('Arrived', col('arrived'), COLOR.arrived), bar('Handled', col('handled'), COLOR.handled), bar('Abandoned', col('abandoned'), COLOR.abandoned)] },
        options: { scales: { y: countAxis() } },
      },
    }));
    figures.push(chartFigure({
      title: 'Service level and abandon rate',
      testid: 'report-chart-service',
      summary: `Service level and abandon rate. ${describe(labels, [['service level', col('service_level'), fmtPct], ['abandon rate', col('abandon_rate'), fmtPct]])}`,
      config: {
        data: { labels, datasets: [line('Service level', col('service_level'), COLOR.level), line('Abandon rate', col('abandon_rate'), COLOR.abandoned)] },
        options: { scales: { pct: pctAxis('left') } },
      },
    }));
  } else if (report === 'agents') {
    figures.push(chartFigure({
      title: 'Occupancy and utilization (team)',
      testid: 'report-chart-occupancy',
      summary: `Team occupancy and utilization. ${describe(labels, [['occupancy', col('occupancy'), fmtPct], ['utilization', col('utilization'), fmtPct]])}`,
      config: {
        data: { labels, datasets: [line('Occupancy', col('occupancy'), COLOR.handled), line('Utilization', col('utilization'), COLOR.ces)] },
        options: { scales: { pct: pctAxis('left') } },
      },
    }));
  } else if (report === 'journeys') {
    figures.push(chartFigure({
      title: 'Journeys per period',
      testid: 'report-chart-journeys',
      summary: `Journeys per period. ${describe(labels, [['journeys', col('journeys'), fmtCount], ['resolved', col('resolved'), fmtCount], ['multi-channel', col('multi_channel'), fmtCount]])}`,
      config: {
        data: { labels, datasets: [bar('Journeys', col('journeys'), COLOR.arrived), bar('Resolved', col('resolved'), COLOR.handled), bar('Multi-channel', col('multi_channel'), COLOR.ces)] },
        options: { scales: { y: countAxis() } },
      },
    }));
    figures.push(chartFigure({
      title: 'First contact resolution and repeat contacts',
      testid: 'report-chart-fcr',
      summary: `FCR rate and repeat-contact rate. ${describe(labels, [['FCR rate', col('fcr_rate'), fmtPct], ['repeat-contact rate', col('repeat_contact_rate'), fmtPct]])}`,
      config: {
        data: { labels, datasets: [line('FCR rate', col('fcr_rate'), COLOR.yes), line('Repeat-contact rate', col('repeat_contact_rate'), COLOR.rate)] },
        options: { scales: { pct: pctAxis('left') } },
      },
    }));
  } else if (report === 'experience') {
    figures.push(chartFigure({
      title: 'CSAT and CES averages',
      testid: 'report-chart-scores',
      summary: `CSAT (1 to 5) and CES (1 to 7) averages. ${describe(labels, [['CSAT', col('csat_avg'), fmtScore], ['CES', col('ces_avg'), fmtScore]])}`,
      config: {
        data: {
          labels,
          datasets: [
            line('CSAT (1–5)', col('csat_avg'), COLOR.csat, { kind: 'score', yAxisID: 'csat' }),
            line('CES (1–7)', col('ces_avg'), COLOR.ces, { kind: 'score', yAxisID: 'ces' }),
          ],
        },
        options: {
          scales: {
            csat: { type: 'linear', position: 'left', min: 1, max: 5, ticks: { stepSize: 1 } },
            ces: { type: 'linear', position: 'right', min: 1, max: 7, ticks: { stepSize: 1 }, grid: { drawOnChartArea: false } },
          },
        },
      },
    }));
    figures.push(chartFigure({
      title: 'Survey answers',
      testid: 'report-chart-answers',
      summary: `Survey answers per period. ${describe(labels, [['CSAT', col('csat_responses'), fmtCount], ['CES', col('ces_responses'), fmtCount], ['NPS', col('nps_responses'), fmtCount]])}`,
      config: {
        data: { labels, datasets: [bar('CSAT', col('csat_responses'), COLOR.csat), bar('CES', col('ces_responses'), COLOR.ces), bar('NPS', col('nps_responses'), COLOR.neutral)] },
        options: { scales: { y: countAxis() } },
      },
    }));
  }
  return figures;
}

/**
 * The distributions of a report over the whole range: `total` is its one total row,
 * `split` its rows per channel (per agent for the agents report); `names` maps an agent
 * id to a name.
 */
export function distributionCharts(report, total, split, names) {
  const figures = [];
  const keyOf = (r) => (report === 'agents' ? r.agent : r.channel);
  const rows = split.filter((r) => keyOf(r) != null);
  const labels = rows.map((r) => (report === 'agents' ? (r.agent_name ?? names.get(r.agent) ?? r.agent) : channelName(r.channel)));
  const col = (k) => rows.map((r) => r[k] ?? 0);
  if (report === 'operations') {
    figures.push(chartFigure({
      title: 'Tasks by channel',
      testid: 'report-chart-channels',
      summary: `Tasks by channel. ${describe(labels, [['handled', col('handled'), fmtCount], ['abandoned', col('abandoned'), fmtCount], ['arrived', col('arrived'), fmtCount]])}`,
      config: {
        data: {
          labels,
          datasets: [
            bar('Handled', col('handled'), COLOR.handled, { stack: 's' }),
            bar('Abandoned', col('abandoned'), COLOR.abandoned, { stack: 's' }),
            bar('Other (waiting, replaced)', rows.map((r) => Math.max(0, (r.arrived ?? 0) - (r.handled ?? 0) - (r.abandoned ?? 0))), COLOR.pending, { stack: 's' }),
          ],
        },
        options: { indexAxis: 'y', scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } } },
      },
    }));
  } else if (report === 'agents') {
    figures.push(chartFigure({
      title: 'Occupancy and utilization by agent',
      testid: 'report-chart-agents',
      summary: `By agent. ${describe(labels, [['occupancy', col('occupancy'), fmtPct], ['utilization', col('utilization'), fmtPct]])}`,
      config: {
        data: {
          labels,
          datasets: [
            bar('Occupancy', col('occupancy'), COLOR.handled, { kind: 'rate', xAxisID: 'x' }),
            bar('Utilization', col('utilization'), COLOR.ces, { kind: 'rate', xAxisID: 'x' }),
          ],
        },
        options: { indexAxis: 'y', scales: { x: { min: 0, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)}%` } } } },
      },
    }));
  } else if (report === 'journeys') {
    const t = total ?? {};
    figures.push(chartFigure({
      title: 'First contact resolution',
      testid: 'report-chart-fcr-split',
      summary: `First contact resolution: yes ${t.fcr_yes ?? 0}, no ${t.fcr_no ?? 0}, pending ${t.fcr_pending ?? 0}.`,
      config: {
        type: 'doughnut',
        data: {
          labels: ['Yes', 'No', 'Pending'],
          datasets: [{ label: 'Journeys', kind: 'count', data: [t.fcr_yes ?? 0, t.fcr_no ?? 0, t.fcr_pending ?? 0], backgroundColor: [COLOR.yes, COLOR.no, COLOR.pending] }],
        },
        options: { plugins: { legend: { position: 'right' } } },
      },
    }));
    figures.push(chartFigure({
      title: 'Journeys by first channel',
      testid: 'report-chart-first-channel',
      summary: `Journeys by first channel. ${describe(labels, [['single channel', rows.map((r) => (r.journeys ?? 0) - (r.multi_channel ?? 0)), fmtCount], ['multi-channel', col('multi_channel'), fmtCount]])}`,
      config: {
        data: {
          labels,
          datasets: [
            bar('One channel', rows.map((r) => (r.journeys ?? 0) - (r.multi_channel ?? 0)), rows.map((r) => channelColor(r.channel)), { stack: 's' }),
            bar('Multi-channel', col('multi_channel'), COLOR.ces, { stack: 's' }),
          ],
        },
        options: { indexAxis: 'y', scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } } },
      },
    }));
  } else if (report === 'experience') {
    figures.push(chartFigure({
      title: 'Scores by first channel',
      testid: 'report-chart-score-channels',
      summary: `Scores by first channel. ${describe(labels, [['CSAT', rows.map((r) => r.csat_avg), fmtScore], ['CES', rows.map((r) => r.ces_avg), fmtScore]])}`,
      config: {
        data: {
          labels,
          datasets: [
            bar('CSAT (1–5)', rows.map((r) => r.csat_avg), COLOR.csat, { kind: 'score' }),
            bar('CES (1–7)', rows.map((r) => r.ces_avg), COLOR.ces, { kind: 'score' }),
          ],
        },
        options: { scales: { y: { min: 0, max: 7, ticks: { stepSize: 1 } } } },
      },
    }));
  }
  return figures;
}
