// Incoming offers: what the work is, who it is for, how long is left to take it, and —
// for a transfer — the colleague's briefing before the agent says yes.

import { h, mount } from './dom.js';
import { channelBadge } from './channels.js';
import { handoffCard } from './handoff.js';
import { tick } from './time.js';

export function offerChannel(offer) {
  return offer.task?.channel ?? offer.conversation?.last_channel ?? null;
}

function offerCard(offer, { onAccept, onReject }) {
  const r = offer.reservation;
  const channel = offerChannel(offer);
  const name = offer.contact?.display_name || 'Unknown customer';
  const display = offer.conversation?.display_id != null ? `#${offer.conversation.display_id}` : '';
  const queue = offer.task?.queue ?? '';
  const countdown = h('span', { class: 'offer-countdown', 'data-testid': 'offer-countdown', 'aria-label': 'Seconds left to accept' });
  const meter = h('span', { class: 'offer-meter-fill' });
  const total = Math.max(1, (r.expires_at ?? 0) - (r.offered_at ?? 0));
  const accept = h('button', {
    type: 'button', class: 'btn btn-accept', 'data-testid': 'offer-accept',
    'aria-label': `Accept ${name}${display ? ` ${display}` : ''}`,
    on: { click: () => { accept.disabled = true; reject.disabled = true; onAccept(offer).finally(() => { accept.disabled = false; reject.disabled = false; }); } },
  }, 'Accept');
  const reject = h('button', {
    type: 'button', class: 'btn btn-reject', 'data-testid': 'offer-reject',
    'aria-label': `Reject ${name}${display ? ` ${display}` : ''}`,
    on: { click: () => { accept.disabled = true; reject.disabled = true; onReject(offer).finally(() => { accept.disabled = false; reject.disabled = false; }); } },
  }, 'Reject');
  const card = h('article', {
    class: 'offer', 'data-testid': 'offer', 'data-reservation': r.id,
    'aria-label': `Offer: ${name} on ${channel ?? 'unknown channel'}`,
  },
  h('div', { class: 'offer-head' },
    channel ? channelBadge(channel) : null,
    h('span', { class: 'offer-name' }, name),
    display ? h('span', { class: 'offer-display' }, display) : null),
  h('div', { class: 'offer-meta' },
    queue ? h('span', null, `queue ${queue}`) : null,
    offer.handoff ? h('span', { class: 'badge badge-transfer' }, 'transfer') : null),
  offer.handoff ? handoffCard(offer.handoff.context, {
    title: 'Hand-off',
    from: offer.handoff.from_agent?.name,
    at: offer.handoff.at,
  }, { 'data-testid': 'offer-handoff' }) : null,
  h('div', { class: 'offer-meter', 'aria-hidden': 'true' }, meter),
  h('div', { class: 'offer-actions' }, countdown, reject, accept));

  tick(countdown, (now) => {
    const left = Math.max(0, (r.expires_at ?? now) - now);
    countdown.textContent = `${Math.ceil(left / 1000)}s`;
    meter.style.setProperty('width', `${Math.min(100, (left / total) * 100)}%`);
    card.classList.toggle('offer-urgent', left < 5000);
  });
  return card;
}

// Cards are kept per reservation while their data is unchanged, so a refresh does not
// replay the arrival animation, re-announce the offer or steal focus from its buttons.
const cards = new WeakMap();

/** Re-renders the offers area from the current map of offers. */
export function renderOffers(el, offers, handlers) {
  const list = [...offers.values()].sort((a, b) => (a.reservation.expires_at ?? 0) - (b.reservation.expires_at ?? 0));
  const previous = cards.get(el) ?? new Map();
  const next = new Map();
  const nodes = list.map((o) => {
    const key = JSON.stringify(o);
    const old = previous.get(o.reservation.id);
    const card = old && old.key === key ? old.card : offerCard(o, handlers);
    next.set(o.reservation.id, { key, card });
    return card;
  });
  cards.set(el, next);
  if (nodes.length === 0) {
    mount(el, h('p', { class: 'muted small offers-empty' }, 'No offers right now.'));
    return;
  }
  // Remove what went, then put the cards in order; moving a node keeps it alive.
  for (const child of [...el.children]) if (!nodes.includes(child)) child.remove();
  nodes.forEach((card, i) => { if (el.children[i] !== card) el.insertBefore(card, el.children[i] ?? null); });
}
