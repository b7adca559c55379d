// What a message carries besides its text, from `data.metadata` (inbound) and
// `data.template` (outbound): the button or list row the customer tapped, a shared
// location with a map link, a reaction, shared contact cards, an e-mail subject, the
// template a reply was sent as. Connectors also write taps, locations, reactions and
// contact cards into the body as text; where the structured form is shown, that text
// is not repeated. Everything here is text nodes: provider text is never markup.

import { h } from './dom.js';

const MAP = 'https://www.openstreetmap.org/';

function coordinate(value, limit) {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && Math.abs(n) <= limit ? n : null;
}

function location(l) {
  const lat = coordinate(l.latitude, 90);
  const lon = coordinate(l.longitude, 180);
  const place = [l.name, l.address].filter((s) => typeof s === 'string' && s.trim());
  let link = null;
  if (lat !== null && lon !== null) {
    const href = `${MAP}?mlat=${encodeURIComponent(lat)}&mlon=${encodeURIComponent(lon)}#map=16/${lat}/${lon}`;
    link = h('a', {
      href, target: '_blank', rel: 'noopener noreferrer', class: 'msg-map',
      'aria-label': `Open ${lat.toFixed(5)}, ${lon.toFixed(5)} on OpenStreetMap (new tab)`,
    }, `${lat.toFixed(5)}, ${lon.toFixed(5)}`);
  }
  return h('div', { class: 'msg-location', 'data-testid': 'timeline-location' },
    h('span', { class: 'msg-label' }, 'Location'),
    place.map((s, i) => h('div', { class: i === 0 ? 'msg-place' : 'msg-address' }, s)),
    link);
}

function quote(text) {
  const t = String(text ?? '').trim().replace(/\s+/g, ' ');
  return t.length > 60 ? `${t.slice(0, 57)}…` : t;
}

function reaction(r, events) {
  const emoji = typeof r.emoji === 'string' ? r.emoji.trim() : '';
  const target = r.provider_id ? events.get(r.provider_id) : null;
  const about = target?.body ? ` to “${quote(target.body)}”` : ' to a message';
  return h('div', { class: 'msg-reaction', 'data-testid': 'timeline-reaction' },
    emoji ? [h('span', { class: 'msg-emoji' }, emoji), ` Reacted${about}`] : `Removed a reaction${about}`);
}

function contacts(cards) {
  return h('div', { class: 'msg-contacts', 'data-testid': 'timeline-contacts' },
    h('span', { class: 'msg-label' }, cards.length === 1 ? 'Contact card' : 'Contact cards'),
    h('ul', null, cards.map((c) =>
      h('li', null,
        h('span', { class: 'msg-contact-name' }, c?.name || 'A contact'),
        (c?.identities ?? []).map((i) => h('span', { class: 'msg-contact-id' }, `${i.kind}: ${i.value}`))))));
}

/**
 * The extra parts of message `e`: `before` (above the text), `after` (below it) and
 * whether its body is the connector's text form of what `after` shows. `events` maps
 * provider message ids to the timeline's events (for what a reaction is about).
 */
export function messageMeta(e, events = new Map()) {
  const m = e.data?.metadata ?? {};
  const before = [];
  const after = [];
  let replacesBody = false;
  const body = String(e.body ?? '').trim();
  if (typeof m.subject === 'string' && m.subject.trim()) {
    before.push(h('div', { class: 'msg-subject', 'data-testid': 'timeline-subject' }, `Subject: ${m.subject}`));
  }
  if (m.interactive_reply?.title) {
    after.push(h('div', { class: 'msg-tapped', 'data-testid': 'timeline-tapped' }, `Tapped: ${m.interactive_reply.title}`));
    replacesBody ||= body === String(m.interactive_reply.title).trim();
  }
  if (m.location && typeof m.location === 'object') {
    after.push(location(m.location));
    replacesBody = true;
  }
  if (m.reaction && typeof m.reaction === 'object') {
    after.push(reaction(m.reaction, events));
    replacesBody ||= body === '' || body === String(m.reaction.emoji ?? '').trim();
  }
  if (Array.isArray(m.contacts) && m.contacts.length) {
    after.push(contacts(m.contacts));
    replacesBody = true;
  }
  const t = e.data?.template;
  if (t && typeof t === 'object' && t.name) {
    before.push(h('div', { class: 'msg-template', 'data-testid': 'timeline-template' },
      `Template ${t.name}${t.language ? ` (${t.language})` : ''}`));
  }
  return { before, after, replacesBody };
}
