// The template picker that stands in for the free-text composer while the channel's
// messaging window is closed: the provider's approved templates (name, language, body),
// one field per placeholder — the customer's first name filled in where a placeholder
// asks for it — a live preview with the values in place, and Send.
//
// Values go out as `{name, value}`, in placeholder order, numbered placeholders in
// numeric order: WhatsApp fills `{{1}}` with the first value whatever the order they
// appear in the text, and the host renders the timeline's copy by name.

import { h, mount, nextId } from './dom.js';
import { get, seg } from './api.js';

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;
const FIRST_NAME = new Set(['1', 'first_name', 'firstname', 'name']);

/** The first word of a display name, unless the name is a number or an address. */
export function firstName(displayName) {
  const first = String(displayName ?? '').trim().split(/\s+/)[0] ?? '';
  return /\p{L}/u.test(first) && !first.includes('@') ? first : '';
}

function ordered(names) {
  const numeric = names.every((n) => /^\d+$/.test(n));
  return numeric ? [...names].sort((a, b) => Number(a) - Number(b)) : names;
}

/** The body with its placeholders as values (or as themselves, marked, while empty). */
export function previewParts(body, values) {
  const parts = [];
  let last = 0;
  for (const m of String(body ?? '').matchAll(PLACEHOLDER)) {
    parts.push(body.slice(last, m.index));
    const value = values.get(m[1])?.trim();
    parts.push(value
      ? h('mark', { class: 'tpl-value' }, value)
      : h('mark', { class: 'tpl-missing' }, `{{${m[1]}}}`));
    last = m.index + m[0].length;
  }
  parts.push(String(body ?? '').slice(last));
  return parts;
}

export class TemplatePicker {
  /** `contactName()` is the customer's display name; `onSend(template)` sends one. */
  constructor({ contactName, onSend }) {
    this.contactName = contactName;
    this.onSend = onSend;
    this.cache = new Map(); // plugin id → templates
    this.pluginId = null;
    this.templates = [];
    this.chosen = null;
    this.values = new Map();
    this.radios = new Map(); // template → its radio button
    this.sending = false;
    this.group = nextId('tpl');
    const titleId = nextId('tpl-title');
    this.list = h('div', { class: 'template-list', role: 'radiogroup', 'aria-labelledby': titleId, 'data-testid': 'template-list' });
    this.params = h('div', { class: 'template-params' });
    this.preview = h('div', { class: 'template-preview', 'data-testid': 'template-preview' });
    this.sendBtn = h('button', {
      type: 'button', class: 'btn btn-primary', 'data-testid': 'template-send',
      on: { click: () => this.send() },
    }, 'Send template');
    this.el = h('section', { class: 'template-picker', 'data-testid': 'template-picker', 'aria-labelledby': titleId, hidden: true },
      h('div', { class: 'template-title', id: titleId }, 'Approved templates'),
      h('p', { class: 'template-why' }, 'Free text cannot go out until the customer writes again; an approved template can.'),
      this.list,
      this.params,
      h('div', { class: 'template-preview-label' }, 'Preview'),
      this.preview,
      h('div', { class: 'composer-actions' }, this.sendBtn));
  }

  /** Shows the templates of channel plugin `pluginId` (fetched once per channel). */
  async show(pluginId) {
    this.el.hidden = false;
    if (pluginId === this.pluginId && this.templates.length) return;
    this.pluginId = pluginId;
    let templates = this.cache.get(pluginId);
    if (!templates) {
      mount(this.list, h('p', { class: 'muted small' }, 'Loading templates…'));
      try {
        templates = (await get(`/channels/${seg(pluginId)}/templates`)).templates ?? [];
        this.cache.set(pluginId, templates);
      } catch (e) {
        if (this.pluginId === pluginId) {
          mount(this.list, h('p', { class: 'form-error' }, `Templates not loaded: ${e.message}`));
          this.templates = [];
          this.radios = new Map();
          this.choose(null);
        }
        return;
      }
    }
    if (this.pluginId !== pluginId) return;
    this.templates = templates;
    this.renderList();
    this.choose(templates.length === 1 ? templates[0] : null);
  }

  hide() { this.el.hidden = true; }

  renderList() {
    if (this.templates.length === 0) {
      mount(this.list, h('p', { class: 'muted small' }, 'This channel has no approved templates.'));
      return;
    }
    this.radios = new Map();
    mount(this.list, this.templates.map((t, i) => {
      const radio = h('input', {
        type: 'radio', name: this.group, value: String(i), class: 'template-radio',
        on: { change: () => this.choose(t) },
      });
      this.radios.set(t, radio);
      return h('label', { class: 'template-option', 'data-testid': 'template-option', 'data-template': t.name, 'data-language': t.language },
        radio,
        h('span', { class: 'template-text' },
          h('span', { class: 'template-head' },
            h('span', { class: 'template-name' }, t.name),
            h('span', { class: 'badge template-lang' }, t.language),
            t.category ? h('span', { class: 'template-category' }, String(t.category).toLowerCase()) : null),
          h('span', { class: 'template-body' }, t.body)));
    }));
  }

  choose(t) {
    this.chosen = t;
    this.values = new Map();
    for (const [other, radio] of this.radios) radio.checked = other === t;
    if (!t) {
      mount(this.params, this.templates.length ? h('p', { class: 'muted small' }, 'Choose a template.') : null);
      this.update();
      return;
    }
    const first = firstName(this.contactName());
    mount(this.params, ordered(t.parameters ?? []).map((name) => {
      const prefill = FIRST_NAME.has(name.toLowerCase()) ? first : '';
      this.values.set(name, prefill);
      const input = h('input', {
        type: 'text', id: nextId('tpl-param'), value: prefill, class: 'template-param',
        'data-testid': 'template-param', 'data-param': name, maxlength: '512',
        on: { input: () => { this.values.set(name, input.value); this.update(); } },
      });
      return h('div', { class: 'template-field' },
        h('label', { for: input.id }, /^\d+$/.test(name) ? `Value {{${name}}}` : `{{${name}}}`),
        input,
        prefill ? h('span', { class: 'template-hint' }, "customer's first name") : null);
    }));
    this.update();
  }

  update() {
    const t = this.chosen;
    mount(this.preview, t ? previewParts(t.body, this.values) : h('span', { class: 'muted' }, 'Nothing chosen yet.'));
    const missing = t ? [...this.values.values()].some((v) => !v.trim()) : true;
    this.sendBtn.disabled = missing || this.sending;
  }

  async send() {
    const t = this.chosen;
    if (!t || this.sendBtn.disabled) return;
    const parameters = ordered(t.parameters ?? []).map((name) => ({ name, value: this.values.get(name).trim() }));
    this.sending = true;
    this.update();
    try {
      const sent = await this.onSend({ name: t.name, language: t.language, parameters });
      if (sent) this.choose(this.templates.length === 1 ? t : null);
    } finally {
      this.sending = false;
      this.update();
    }
  }
}
