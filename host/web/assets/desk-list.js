// My conversations: the work I hold, most urgent (longest waiting customer) first.

import { h, mount } from './dom.js';
import { channelBadge } from './channels.js';
import { duration, tick } from './time.js';

function preview(event) {
  if (!event) return '';
  const text = (event.body ?? '').replace(/\s+/g, ' ').trim();
  if (event.kind === 'note') return `Note: ${text}`;
  if (event.direction === 'out') return `You: ${text}`;
  return text;
}

function sortItems(items) {
  // Customers waiting for us first (oldest wait on top), then the rest by activity.
  return [...items].sort((a, b) => {
    const wa = a.waiting_since ?? Infinity;
    const wb = b.waiting_since ?? Infinity;
    if (wa !== wb) return wa - wb;
    return (b.conversation?.updated_at ?? 0) - (a.conversation?.updated_at ?? 0);
  });
}

function itemEl(item, openId, onOpen) {
  const c = item.conversation;
  const name = item.contact?.display_name || 'Unknown customer';
  const channels = item.channels?.length ? item.channels : [c?.last_channel].filter(Boolean);
  const waiting = h('span', { class: 'conv-waiting', 'data-testid': 'conversation-waiting' });
  if (item.waiting_since != null) {
    tick(waiting, (now) => { waiting.textContent = `waiting ${duration(now - item.waiting_since)}`; });
    waiting.classList.add('is-waiting');
  }
  const selected = c.id === openId;
  const el = h('li', {
    class: ['conv-item', selected && 'is-open', item.unread > 0 && 'has-unread', item.task?.state === 'wrapping' && 'is-wrapping'],
    'data-testid': 'conversation-item',
    'data-conversation': c.id,
    tabindex: '0',
    role: 'button',
    'aria-current': selected ? 'true' : null,
    'aria-label': `${name} ${item.display ?? ''}${item.unread ? `, ${item.unread} unread` : ''}`,
    on: {
      click: () => onOpen(item),
      keydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onOpen(item); } },
    },
  },
  h('div', { class: 'conv-row' },
    h('span', { class: 'conv-name' }, name),
    h('span', { class: 'conv-display' }, item.display ?? `#${c.display_id}`),
    item.unread > 0 ? h('span', { class: 'badge badge-unread', 'data-testid': 'conversation-unread', 'aria-label': `${item.unread} unread` }, String(item.unread)) : null),
  h('div', { class: 'conv-row' },
    h('span', { class: 'conv-channels', 'data-testid': 'conversation-channels' }, channels.map(channelBadge)),
    item.task?.state === 'wrapping' ? h('span', { class: 'badge badge-muted' }, 'wrap-up') : null,
    waiting),
  h('div', { class: 'conv-preview' }, preview(item.last_event)));
  return el;
}

export function renderList(el, items, openId, onOpen) {
  const sorted = sortItems(items);
  // Keep keyboard focus on the same conversation across a refresh.
  const focusedId = document.activeElement?.closest?.('[data-conversation]')?.dataset.conversation;
  mount(el, sorted.length === 0
    ? h('li', { class: 'empty small' }, 'No conversations assigned to you.')
    : sorted.map((item) => itemEl(item, openId, onOpen)));
  if (focusedId && el.contains(document.activeElement) === false) {
    el.querySelector(`[data-conversation="${CSS.escape(focusedId)}"]`)?.focus();
  }
}
