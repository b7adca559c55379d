// How channels are named and coloured everywhere in the client, so an SMS badge looks
// the same in the list, the timeline and the wallboard.

import { h } from './dom.js';

const NAMES = {
  webchat: 'Chat',
  chat: 'Chat',
  sms: 'SMS',
  whatsapp: 'WhatsApp',
  telegram: 'Telegram',
  email: 'Email',
  voice: 'Voice',
  phone: 'Phone',
  messenger: 'Messenger',
  instagram: 'Instagram',
};

const KNOWN = new Set(Object.keys(NAMES));

export function channelName(channel) {
  if (!channel) return 'Internal';
  return NAMES[channel] ?? channel.charAt(0).toUpperCase() + channel.slice(1);
}

/** A small coloured pill; the colour comes from a class so the CSP needs no inline style. */
export function channelBadge(channel) {
  const key = KNOWN.has(channel) ? channel : 'other';
  return h('span', { class: ['badge', 'ch', `ch-${key}`], title: channelName(channel) }, channelName(channel));
}
