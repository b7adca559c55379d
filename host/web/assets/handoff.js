// The warm hand-off summary: the same card in an incoming offer, pinned on top of a
// transferred conversation and inside the timeline, so the receiver reads the reason,
// steps, promises and mood in one familiar shape.

import { h } from './dom.js';
import { clock } from './time.js';

const MOOD = {
  negative: { text: 'negative', cls: 'mood-negative' },
  neutral: { text: 'neutral', cls: 'mood-neutral' },
  positive: { text: 'positive', cls: 'mood-positive' },
};

function list(title, items) {
  const clean = (items ?? []).filter((s) => s && String(s).trim());
  if (clean.length === 0) return null;
  return h('div', { class: 'ho-section' },
    h('div', { class: 'ho-label' }, title),
    h('ul', { class: 'ho-list' }, clean.map((s) => h('li', null, String(s)))));
}

/** `context` = {reason, steps, commitments, sentiment, summary}; `meta` = {from, at, title}. */
export function handoffCard(context, meta = {}, attrs = {}) {
  const ctx = context ?? {};
  const mood = MOOD[ctx.sentiment] ?? null;
  return h('section', { class: 'handoff', ...attrs },
    h('div', { class: 'ho-head' },
      h('span', { class: 'ho-title' }, meta.title ?? 'Hand-off'),
      meta.from ? h('span', { class: 'ho-from' }, `from ${meta.from}`) : null,
      meta.at ? h('span', { class: 'ho-at' }, clock(meta.at)) : null,
      mood ? h('span', { class: ['badge', 'mood', mood.cls] }, `mood: ${mood.text}`) : null),
    ctx.reason ? h('div', { class: 'ho-section' },
      h('div', { class: 'ho-label' }, 'Reason'),
      h('div', { class: 'ho-text' }, ctx.reason)) : null,
    list('Steps taken', ctx.steps),
    list('Commitments', ctx.commitments),
    ctx.summary ? h('div', { class: 'ho-section' },
      h('div', { class: 'ho-label' }, 'Summary'),
      h('div', { class: 'ho-text' }, ctx.summary)) : null);
}

/**
 * The transfer that brought the conversation here, if it carried context: the most
 * recent transfer record (acknowledgements such as `handoff.received` are not
 * transfers themselves and are skipped).
 */
export function latestHandoff(timeline) {
  for (let i = (timeline?.length ?? 0) - 1; i >= 0; i -= 1) {
    const e = timeline[i];
    if (e.kind !== 'transfer') continue;
    const d = e.data ?? {};
    if ('context_received' in d && !d.context) continue;
    return d.context ? e : null;
  }
  return null;
}
