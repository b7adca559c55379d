// The messaging window of the reply channel, as one line above the composer: how long
// a free-text reply can still go out (WhatsApp's 24 hours, Messenger's longer window
// for people), or when it closed. The host decides (`GET
// /conversations/{id}/window`); this only words its answer.

import { get, seg } from './api.js';
import { clock } from './time.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function ms(at) {
  if (at == null) return null;
  const t = typeof at === 'number' ? at : Date.parse(at);
  return Number.isFinite(t) ? t : null;
}

/** "5 days", "1 day 3 h", "3 h 12 min", "12 min", "less than a minute". */
export function remaining(left) {
  if (left < MINUTE) return 'less than a minute';
  const days = Math.floor(left / DAY);
  const hours = Math.floor((left % DAY) / HOUR);
  const minutes = Math.floor((left % HOUR) / MINUTE);
  if (days >= 2) return `${days} days`;
  if (days === 1) return hours ? `1 day ${hours} h` : '1 day';
  if (hours) return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  return `${minutes} min`;
}

/** The window of conversation `id` on channel plugin `pluginId`. */
export function loadWindow(id, pluginId) {
  const query = pluginId ? `?channel=${encodeURIComponent(pluginId)}` : '';
  return get(`/conversations/${seg(id)}/window${query}`);
}

/** Whether only a template can go out now. */
export function windowClosed(w) {
  return Boolean(w?.has_window) && !w.open && !w.human_agent;
}

/**
 * `{state, text}` for window `w` at `now`: state `open`, `human_agent` or `closed`;
 * null for channels without a window.
 */
export function describeWindow(w, now = Date.now()) {
  if (!w?.has_window) return null;
  if (w.open) {
    const closes = ms(w.closes_at);
    return { state: 'open', text: closes ? `Window closes in ${remaining(closes - now)}` : 'Window open' };
  }
  if (w.human_agent) {
    const closes = ms(w.human_closes_at);
    return {
      state: 'human_agent',
      text: closes
        ? `Human agent window: replies allowed for ${remaining(closes - now)}`
        : 'Human agent window: replies allowed from a person',
    };
  }
  const closed = ms(w.closed_at);
  return {
    state: 'closed',
    text: closed
      ? `Window closed at ${clock(closed)}`
      : 'Window closed: the customer has not written on this channel yet',
  };
}
