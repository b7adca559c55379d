// The customer panel: who this is across every channel, what they allow, and what
// happened last time — the "I see you spoke with Sam on the 20th" sentence.

import { h, mount, field, select, toast, nextId } from './dom.js';
import { get, post, patch, seg } from './api.js';
import { channelBadge, channelName } from './channels.js';
import { date, clock } from './time.js';
import { crmCard } from './desk-crm.js';

const KINDS = [['phone', 'Phone'], ['email', 'E-mail'], ['whatsapp', 'WhatsApp'], ['telegram', 'Telegram']];

function identityText(identity) {
  if (!identity) return '';
  if (typeof identity === 'string') return identity;
  return `${identity.kind}:${identity.value}`;
}

export class CustomerPanel {
  /** `onCall(number, contactId)` places a call from the softphone (absent: no Call buttons). */
  constructor(el, { onCall } = {}) {
    this.el = el;
    this.onCall = onCall ?? null;
    this.contactId = null;
    this.seq = 0;
    this.empty();
  }

  empty() {
    this.contactId = null;
    mount(this.el, h('section', { class: 'customer-panel', 'data-testid': 'customer-panel', 'aria-label': 'Customer' },
      h('p', { class: 'empty small' }, 'The customer appears here when a conversation is open.')));
  }

  async load(contactId) {
    if (!contactId) { this.empty(); return; }
    const changed = contactId !== this.contactId;
    this.contactId = contactId;
    const mine = ++this.seq;
    if (changed) mount(this.el, h('section', { class: 'customer-panel', 'data-testid': 'customer-panel', 'aria-label': 'Customer' }, h('p', { class: 'muted small' }, 'Loading customer…')));
    let profile;
    try {
      profile = await get(`/contacts/${seg(contactId)}/profile`);
    } catch (e) {
      if (mine !== this.seq) return;
      mount(this.el, h('section', { class: 'customer-panel', 'data-testid': 'customer-panel', 'aria-label': 'Customer' },
        h('p', { class: 'form-error' }, `Customer not loaded: ${e.message}`)));
      return;
    }
    if (mine !== this.seq) return;
    this.render(profile);
  }

  render(p) {
    const c = p.contact;
    const name = c.display_name || 'Unknown customer';
    const nameEl = h('h2', { class: 'cust-name', 'data-testid': 'customer-name' }, name);
    const head = h('div', { class: 'cust-head' }, nameEl,
      h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': 'Edit customer name', on: { click: () => this.editName(head, c) } }, 'Edit'));

    const optedOut = (c.consents ?? []).filter((x) => x.state === 'opted_out');
    const vip = c.attributes?.vip === true || c.attributes?.vip === 'true';

    const facts = h('dl', { class: 'facts' },
      h('dt', null, 'Preferred channel'), h('dd', null, p.preferred_channel ? channelName(p.preferred_channel) : '—'),
      h('dt', null, 'Language'), h('dd', null, p.language || '—'),
      h('dt', null, 'Customer since'), h('dd', null, date(c.created_at)));

    const identities = h('ul', { class: 'identities', 'data-testid': 'customer-identities' },
      (c.identities ?? []).map((i) => h('li', null,
        h('span', { class: 'id-kind' }, i.kind),
        h('span', { class: 'id-value' }, i.value),
        i.kind === 'phone' && this.onCall ? h('button', {
          type: 'button', class: 'btn btn-small id-call', 'data-testid': 'customer-call',
          'aria-label': `Call ${i.value}`, on: { click: () => this.onCall(i.value, c.id) },
        }, 'Call') : null)));

    const consent = h('ul', { class: 'consent', 'data-testid': 'customer-consent' },
      (c.consents ?? []).length === 0
        ? h('li', { class: 'muted small' }, 'No consent recorded (replies allowed).')
        : c.consents.map((x) => h('li', { class: x.state === 'opted_out' ? 'consent-out' : 'consent-in' },
          x.state === 'opted_out' ? `opted out of ${x.channel}` : `opted in to ${x.channel}`,
          h('span', { class: 'muted small' }, ` · ${identityText(x.identity)}${x.keyword ? ` (${x.keyword})` : ''} · ${date(x.updated_at)}`))));

    const li = p.last_interaction;
    const last = li ? h('div', { class: 'last' },
      h('div', null,
        li.channel ? channelBadge(li.channel) : null, ' ',
        h('span', null, `${date(li.at)} ${clock(li.at)}`),
        li.agent?.name ? h('span', null, ` with ${li.agent.name}`) : null),
      li.disposition ? h('div', { class: 'small' }, `Outcome: ${li.disposition.label ?? li.disposition}`) : null,
      li.summary ? h('p', { class: 'last-summary' }, li.summary) : null) : h('p', { class: 'muted small' }, 'First contact.');

    const history = h('ul', { class: 'history', 'data-testid': 'customer-history' },
      (p.conversations ?? []).length === 0
        ? h('li', { class: 'muted small' }, 'No earlier conversations.')
        : p.conversations.map((cv) => h('li', { class: 'history-item', 'data-conversation': cv.id },
          h('div', { class: 'history-row' },
            h('span', { class: 'history-display' }, `#${cv.display_id}`),
            h('span', { class: ['badge', 'badge-status', `status-${cv.status}`] }, cv.status),
            (cv.channels ?? []).map(channelBadge)),
          h('div', { class: 'small muted' },
            date(cv.opened_at), cv.resolved_at ? ` → ${date(cv.resolved_at)}` : ''),
          cv.disposition ? h('div', { class: 'small' }, cv.disposition.label, cv.disposition.note ? ` — ${cv.disposition.note}` : '') : null)));

    const kind = select({ 'aria-label': 'Identity kind' }, KINDS, 'phone');
    const value = h('input', { type: 'text', required: true, placeholder: '+15551234567 or name@example.com' });
    const link = h('form', {
      class: 'link-identity',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          try {
            await post(`/contacts/${seg(c.id)}/identities`, { kind: kind.value, value: value.value.trim() });
            toast('Identity linked.');
            this.load(c.id);
          } catch (e) {
            toast(e.status === 409 ? 'That address belongs to another customer.' : `Not linked: ${e.message}`, 'error');
          }
        },
      },
    },
    h('div', { class: 'link-row' }, kind, field('Value', value)),
    h('button', { type: 'submit', class: 'btn btn-small' }, 'Link identity'));

    const crm = h('div', { class: 'crm-slot' }, h('p', { class: 'muted small' }, 'Loading CRM…'));
    crmCard(crm, c.id, () => this.load(c.id));

    mount(this.el, h('section', { class: 'customer-panel', 'data-testid': 'customer-panel', 'aria-label': 'Customer' },
      head,
      h('div', { class: 'cust-tags' },
        vip ? h('span', { class: 'badge badge-vip' }, 'VIP') : null,
        optedOut.map((x) => h('span', { class: 'badge badge-warn' }, `no ${x.channel}`))),
      facts,
      h('h3', null, 'CRM'), crm,
      h('h3', null, 'Identities'), identities,
      h('h3', null, 'Consent'), consent,
      h('h3', null, 'Last interaction'), last,
      h('h3', null, 'History'), history,
      h('h3', null, 'Link identity'), link));
  }

  editName(head, contact) {
    const input = h('input', { type: 'text', value: contact.display_name ?? '', 'aria-label': 'Customer name', id: nextId('name') });
    const form = h('form', {
      class: 'edit-name',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          try {
            await patch(`/contacts/${seg(contact.id)}`, { display_name: input.value.trim() });
            this.load(contact.id);
          } catch (e) {
            toast(`Name not saved: ${e.message}`, 'error');
          }
        },
        keydown: (ev) => { if (ev.key === 'Escape') { ev.stopPropagation(); this.load(contact.id); } },
      },
    }, input,
    h('button', { type: 'submit', class: 'btn btn-small btn-primary' }, 'Save'),
    h('button', { type: 'button', class: 'btn btn-small', on: { click: () => this.load(contact.id) } }, 'Cancel'));
    mount(head, form);
    input.focus();
    input.select();
  }
}
