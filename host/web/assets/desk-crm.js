// The CRM card in the customer panel: the record each CRM holds for this person
// (a link into the CRM, its key fields, the addresses it knows that we do not),
// "Look up again", and "Create in <CRM>" when a CRM does not know them.

import { h, mount, toast } from './dom.js';
import { get, post, seg } from './api.js';
import { date } from './time.js';

/** Readable field names for the attributes CRMs return. */
const LABELS = {
  vip: 'VIP', owner: 'Owner', lifetime_value: 'Lifetime value', 'lifetime-value': 'Lifetime value', 'record-type': 'Record type', account: 'Account',
  company: 'Company', lead_status: 'Lead status', stage: 'Stage',
};
const label = (key) => LABELS[key] ?? key.replace(/[_-]+/g, ' ');
/** `true`/`false` as Yes/No, anything else as it is. */
const shown = (v) => ({ true: 'Yes', false: 'No' }[String(v).toLowerCase()] ?? String(v));
const crmName = (id) => ({ 'crm-hubspot': 'HubSpot', 'crm-salesforce': 'Salesforce', 'crm-zoho': 'Zoho CRM' }[id] ?? id);

/**
 * Fills `el` with the contact's CRM card. `onLinked` runs after a change that may
 * have changed the contact itself (name, attributes), so the panel reloads.
 */
export async function crmCard(el, contactId, onLinked) {
  let data;
  try {
    data = await get(`/contacts/${seg(contactId)}/crm`);
  } catch (e) {
    mount(el, h('p', { class: 'form-error small' }, `CRM not loaded: ${e.message}`));
    return;
  }
  const available = data.available ?? [];
  const records = Object.entries(data.crm ?? {});
  if (available.length === 0 && records.length === 0) {
    mount(el, h('p', { class: 'muted small' }, 'No CRM connected.'));
    return;
  }
  const busy = (btn, text) => { btn.disabled = true; btn.textContent = text; };
  const refresh = h('button', {
    type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'crm-refresh',
    on: {
      click: async (ev) => {
        busy(ev.currentTarget, 'Looking up…');
        try {
          const r = await post(`/contacts/${seg(contactId)}/crm/refresh`);
          toast(r.found?.length ? `Found in ${r.found.map(crmName).join(', ')}.` : 'Not found in any CRM.');
        } catch (e) { toast(`Lookup failed: ${e.message}`, 'error'); }
        onLinked();
      },
    },
  }, 'Look up again');

  const cards = records.map(([plugin, r]) => h('div', { class: 'crm-record', 'data-testid': 'crm-record', 'data-plugin': plugin },
    h('div', { class: 'crm-head' },
      h('strong', null, crmName(plugin)),
      r.url
        ? h('a', { href: r.url, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'crm-link' }, `Open record ${r.external_id}`)
        : h('span', { class: 'muted small' }, `Record ${r.external_id}`)),
    r.display_name ? h('div', { class: 'small' }, r.display_name) : null,
    h('dl', { class: 'facts crm-fields' },
      Object.entries(r.attributes ?? {}).flatMap(([k, v]) => [h('dt', null, label(k)), h('dd', null, shown(v))])),
    (r.identities ?? []).length
      ? h('div', { class: 'crm-offered small' },
        h('div', { class: 'muted' }, 'The CRM also knows:'),
        h('ul', null, r.identities.map((i) => h('li', null, `${i.kind}: ${i.value} `,
          h('button', {
            type: 'button', class: 'btn btn-small', 'data-testid': 'crm-link-identity',
            on: {
              click: async () => {
                try {
                  await post(`/contacts/${seg(contactId)}/identities`, { kind: i.kind, value: i.value });
                  toast('Identity linked.');
                } catch (e) {
                  toast(e.status === 409 ? 'That address belongs to another customer.' : `Not linked: ${e.message}`, 'error');
                }
                onLinked();
              },
            },
          }, 'Link')))))
      : null,
    h('div', { class: 'muted small' }, `Updated ${date(r.fetched_at)}`)));

  const create = available.filter((a) => !a.linked).map((a) => h('button', {
    type: 'button', class: 'btn btn-small', 'data-testid': 'crm-create', 'data-plugin': a.plugin_id,
    on: {
      click: async (ev) => {
        busy(ev.currentTarget, 'Creating…');
        try {
          await post(`/contacts/${seg(contactId)}/crm/${seg(a.plugin_id)}`);
          toast(`Created in ${crmName(a.plugin_id)}.`);
        } catch (e) { toast(`Not created: ${e.message}`, 'error'); }
        onLinked();
      },
    },
  }, `Create in ${crmName(a.plugin_id)}`));

  mount(el, h('div', { class: 'crm-card', 'data-testid': 'crm-card' },
    cards.length ? cards : h('p', { class: 'muted small', 'data-testid': 'crm-unknown' }, 'Not found in the CRM.'),
    h('div', { class: 'crm-actions' }, create, refresh)));
}
