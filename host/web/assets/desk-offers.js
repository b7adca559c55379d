// Incoming offers: what the work is, who it is for, how long is left to take it, and —
// for a transfer — the colleague's briefing before the agent says yes. A voice offer is
// a ringing phone: "Incoming call", the caller's number, and Answer (accepting it is
// answering; the host bridges the call into the softphone's audio).

import { h, mount } from './dom.js';
import { channelBadge } from './channels.js';
import { handoffCard } from './handoff.js';
import { tick } from './time.js';

export function offerChannel(offer) {
  return offer.task?.channel ?? offer.conversation?.last_channel ?? null;
}

function offerCard(offer, { onAccept, onReject }, number) {
  const r = offer.reservation;
  const channel = offerChannel(offer);
  const voice = channel === 'voice';
  const name = offer.contact?.display_name || (voice ? '' : 'Unknown customer');
  const who = voice ? (number || name || 'unknown caller') : name;
  const display = offer.conversation?.display_id != null ? `#${offer.conversation.display_id}` : '';
  const queue = offer.task?.queue ?? '';
  const countdown = h('span', { class: 'offer-countdown', 'data-testid': 'offer-countdown', 'aria-label': 'Seconds left to accept' });
  const meter = h('span', { class: 'offer-meter-fill' });
  const total = Math.max(1, (r.expires_at ?? 0) - (r.offered_at ?? 0));
  const accept = h('button', {
    type: 'button', class: 'btn btn-accept', 'data-testid': 'offer-accept',
    'aria-label': voice ? `Answer call from ${who}` : `Accept ${name}${display ? ` ${display}` : ''}`,
    on: { click: () => { accept.disabled = true; reject.disabled = true; onAccept(offer).finally(() => { accept.disabled = false; reject.disabled = false; }); } },
  }, voice ? 'Answer' : 'Accept');
  const reject = h('button', {
    type: 'button', class: 'btn btn-reject', 'data-testid': 'offer-reject',
    'aria-label': voice ? `Reject call from ${who}` : `Reject ${name}${display ? ` ${display}` : ''}`,
    on: { click: () => { accept.disabled = true; reject.disabled = true; onReject(offer).finally(() => { accept.disabled = false; reject.disabled = false; }); } },
  }, 'Reject');
  const card = h('article', {
    class: ['offer', voice && 'offer-call'], 'data-testid': 'offer', 'data-reservation': r.id,
    'aria-label': voice ? `Incoming call from ${who}` : `Offer: ${name} on ${channel ?? 'unknown channel'}`,
  },
  voice
    ? h('div', { class: 'offer-head' },
      channelBadge(channel),
      h('span', { class: 'offer-name' }, 'Incoming call'),
      number ? h('span', { class: 'offer-number', 'data-testid': 'offer-number' }, number) : null)
    : h('div', { class: 'offer-head' },
      channel ? channelBadge(channel) : null,
      h('span', { class: 'offer-name' }, name),
      display ? h('span', { class: 'offer-display' }, display) : null),
  voice && (name || display) ? h('div', { class: 'offer-caller' },
    name ? h('span', null, name) : null,
    display ? h('span', { class: 'offer-display' }, display) : null) : null,
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

/**
 * Re-renders the offers area from the current map of offers. `handlers.callNumber(offer)`
 * gives a voice offer's caller number when the call behind it is known.
 */
export function renderOffers(el, offers, handlers) {
  const list = [...offers.values()].sort((a, b) => (a.reservation.expires_at ?? 0) - (b.reservation.expires_at ?? 0));
  const previous = cards.get(el) ?? new Map();
  const next = new Map();
  const nodes = list.map((o) => {
    const number = offerChannel(o) === 'voice' ? (handlers.callNumber?.(o) ?? '') : '';
    const key = `${JSON.stringify(o)}\n${number}`;
    const old = previous.get(o.reservation.id);
    const card = old && old.key === key ? old.card : offerCard(o, handlers, number);
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
