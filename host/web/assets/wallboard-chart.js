// Queue time by channel as a grouped bar chart in inline SVG: no library, no canvas,
// and real text nodes so the numbers are selectable and readable by assistive tech.

import { s } from './dom.js';
import { channelName } from './channels.js';
import { duration } from './time.js';

const W = 520;
const H = 240;
const PAD = { top: 16, right: 12, bottom: 34, left: 56 };

// Axis maxima whose quarters are round durations (1s, 2s, 5s, 15s, 1m, 5m…).
function niceMax(v) {
  const steps = [4, 8, 20, 40, 60, 120, 240, 600, 1200, 1800, 3600, 7200].map((x) => x * 1000);
  if (v <= 0) return steps[0];
  return steps.find((x) => x >= v) ?? Math.ceil(v / 3_600_000) * 3_600_000;
}

export function waitChart(channels) {
  const rows = channels ?? [];
  const label = rows.length === 0
    ? 'Queue time by channel: no data yet today.'
    : `Queue time by channel: ${rows.map((c) => `${channelName(c.channel)} average ${duration(c.avg_wait_ms)}, max ${duration(c.max_wait_ms)}`).join('; ')}.`;
  const svg = s('svg', {
    class: 'chart',
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': label,
    'data-testid': 'wallboard-chart',
    preserveAspectRatio: 'xMidYMid meet',
  });
  svg.append(s('title', null, label));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const max = niceMax(Math.max(0, ...rows.map((c) => Math.max(c.avg_wait_ms ?? 0, c.max_wait_ms ?? 0))));
  const y = (v) => PAD.top + plotH - (Math.min(v, max) / max) * plotH;

  for (let i = 0; i <= 4; i += 1) {
    const v = (max / 4) * i;
    const yy = y(v);
    svg.append(
      s('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy }),
      s('text', { x: PAD.left - 6, y: yy + 4, 'text-anchor': 'end' }, duration(v)));
  }
  svg.append(
    s('line', { class: 'axis', x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotH }),
    s('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH }),
    s('text', { x: 12, y: PAD.top + plotH / 2, transform: `rotate(-90 12 ${PAD.top + plotH / 2})`, 'text-anchor': 'middle' }, 'queue time'));

  if (rows.length === 0) {
    svg.append(s('text', { x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, 'text-anchor': 'middle' }, 'No answered or waiting work yet today'));
    return svg;
  }
  const group = plotW / rows.length;
  const barW = Math.min(36, (group - 16) / 2);
  rows.forEach((c, i) => {
    const x0 = PAD.left + group * i + group / 2 - barW - 2;
    const bars = [['bar-avg', c.avg_wait_ms, 'average'], ['bar-max', c.max_wait_ms, 'max']];
    bars.forEach(([cls, v, what], j) => {
      const val = v ?? 0;
      const x = x0 + j * (barW + 4);
      const top = y(val);
      svg.append(s('rect', {
        class: cls, x, y: top, width: barW, height: Math.max(0, PAD.top + plotH - top), rx: 2,
      }, s('title', null, `${channelName(c.channel)} ${what} wait ${duration(v)}`)));
      svg.append(s('text', { class: 'value', x: x + barW / 2, y: top - 4, 'text-anchor': 'middle' }, v == null ? '—' : duration(v)));
    });
    svg.append(s('text', { x: PAD.left + group * i + group / 2, y: H - PAD.bottom + 16, 'text-anchor': 'middle' },
      `${channelName(c.channel)} (${c.waiting ?? 0} waiting)`));
  });
  return svg;
}
