// The e-mail part of the reply box, shown while the reply channel is e-mail: To (the
// customer's address on the channel, read-only: the host answers the conversation's
// customer, and anyone else is added in Cc), Cc and Bcc, the subject (prefilled
// "Re: <last subject>", never "Re: Re:"), whether the quoted message goes along
// (on by default; the host adds it), and a preview of my signature (the host appends
// it) with a dialog to edit it. The body and the files are the composer's own.
//
// `payload()` is the reply's `email` object: {subject, cc: [address], bcc: [address],
// include_quote}. Addresses are sent bare (`ann@example.com`), whatever the agent
// typed around them (`Ann <ann@example.com>`).

import { h, field, nextId } from './dom.js';
import { get, put } from './api.js';
import { openDialog } from './dialog.js';

const MAX_SIGNATURE = 2000;
const REPLY_PREFIX = /^\s*(re|aw|sv|antw|ref|réf|r|vs|odp|res)\s*(\[\d+\])?\s*:/i;
const ADDRESS = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/;

/** "Re: " before a subject that has no reply prefix yet. */
export function replySubject(subject) {
  const s = String(subject ?? '').trim();
  if (!s) return '';
  return REPLY_PREFIX.test(s) ? s : `Re: ${s}`;
}

/** The bare addresses of a Cc or Bcc field; throws naming the first that is not one. */
export function parseAddresses(text, label) {
  const out = [];
  for (const part of String(text ?? '').split(/[,;\n]+/)) {
    const item = part.trim();
    if (!item) continue;
    const angle = /<([^<>]+)>\s*$/.exec(item);
    const address = (angle ? angle[1] : item).trim();
    if (!ADDRESS.test(address)) throw new Error(`${label}: “${item}” is not an e-mail address.`);
    if (!out.some((a) => a.toLowerCase() === address.toLowerCase())) out.push(address);
  }
  return out;
}

// My signature, shared by every composer of the tab; reloaded after an edit.
let signature = null; // Promise<string|null>
function mySignature() {
  signature ??= get('/agents/me/signature').then((r) => r?.signature ?? null).catch(() => {
    signature = null;
    return undefined;
  });
  return signature;
}

function lastEmail(timeline, test = () => true) {
  for (let i = (timeline?.length ?? 0) - 1; i >= 0; i -= 1) {
    const e = timeline[i];
    if (e.email && test(e)) return e;
  }
  return null;
}

export class EmailComposer {
  /** `conversation()` is what the pane loaded (or null). */
  constructor({ conversation }) {
    this.conversation = conversation;
    this.subjectTouched = false;
    this.ccAll = [];
    this.build();
    this.show(false);
  }

  build() {
    const toId = nextId('email-to');
    this.to = h('output', { class: 'email-to', 'data-testid': 'email-to', 'aria-labelledby': toId });
    this.ccAllBtn = h('button', {
      type: 'button', class: 'btn btn-small email-cc-all', 'data-testid': 'email-cc-all', hidden: true,
      on: { click: () => this.fillCcAll() },
    }, 'Cc all');
    this.cc = h('input', {
      type: 'text', class: 'email-cc', 'data-testid': 'email-cc', autocomplete: 'off',
      placeholder: 'name@example.com, …',
    });
    this.bcc = h('input', {
      type: 'text', class: 'email-bcc', 'data-testid': 'email-bcc', autocomplete: 'off',
      placeholder: 'name@example.com, …',
    });
    this.subject = h('input', {
      type: 'text', class: 'email-subject-input', 'data-testid': 'email-subject-input', maxlength: '998',
      on: { input: () => { this.subjectTouched = true; } },
    });
    this.fields = h('div', { class: 'email-fields', 'data-testid': 'email-fields' },
      h('div', { class: 'email-to-row' },
        h('span', { class: 'email-field-label', id: toId }, 'To'),
        this.to,
        this.ccAllBtn),
      h('div', { class: 'email-field-grid' },
        field('Cc', this.cc),
        field('Bcc', this.bcc)),
      field('Subject', this.subject));

    this.includeQuote = h('input', { type: 'checkbox', checked: true, 'data-testid': 'email-include-quote' });
    const quoteId = nextId('email-quote');
    this.includeQuote.id = quoteId;
    this.signatureText = h('div', { class: 'email-signature-text', 'data-testid': 'email-signature' }, '…');
    this.extras = h('div', { class: 'email-extras' },
      h('label', { class: 'email-include', for: quoteId }, this.includeQuote, ' Include quoted message'),
      h('div', { class: 'email-signature' },
        h('div', { class: 'email-signature-head' },
          h('span', { class: 'email-field-label' }, 'Signature'),
          h('button', {
            type: 'button', class: 'btn-link email-signature-edit', 'data-testid': 'email-signature-edit',
            on: { click: () => this.editSignature() },
          }, 'Edit signature')),
        this.signatureText));
  }

  /** Shows or hides the e-mail fields; `identity` is the reply channel's (`email:…`). */
  show(on, identity = '') {
    this.on = on;
    this.fields.hidden = !on;
    this.extras.hidden = !on;
    if (!on) return;
    this.to.textContent = String(identity || '').replace(/^email:/, '') || 'the customer';
    this.refresh();
    this.loadSignature();
  }

  /** The conversation reloaded: prefill what the agent has not written yet. */
  refresh() {
    const timeline = this.conversation()?.timeline ?? [];
    if (!this.subjectTouched) {
      this.subject.value = replySubject(lastEmail(timeline, (e) => e.email.subject)?.email.subject);
    }
    const inbound = lastEmail(timeline, (e) => e.direction === 'in');
    this.ccAll = inbound?.email.cc ?? [];
    this.ccAllBtn.hidden = this.ccAll.length === 0;
    this.ccAllBtn.textContent = `Cc all (${this.ccAll.length})`;
    this.ccAllBtn.title = this.ccAll.length ? `Copy everyone the customer copied: ${this.ccAll.join(', ')}` : '';
  }

  fillCcAll() {
    const current = this.cc.value.trim();
    this.cc.value = [current, ...this.ccAll].filter(Boolean).join(', ');
    this.cc.focus();
  }

  async loadSignature() {
    const text = await mySignature();
    if (text === undefined) {
      this.signatureText.textContent = 'Signature not loaded.';
    } else {
      this.signatureText.textContent = text || 'No signature yet.';
      this.signatureText.classList.toggle('muted', !text);
    }
  }

  editSignature() {
    const area = h('textarea', {
      rows: '6', maxlength: String(MAX_SIGNATURE), 'data-testid': 'signature-input', class: 'signature-input',
    });
    mySignature().then((text) => { if (!area.value) area.value = text ?? ''; });
    openDialog({
      title: 'My e-mail signature',
      confirmLabel: 'Save',
      confirmTestId: 'signature-save',
      body: field('Signature', area, `Plain text, added under your e-mail replies. At most ${MAX_SIGNATURE} characters.`),
      onConfirm: async () => {
        const res = await put('/agents/me/signature', { signature: area.value });
        signature = Promise.resolve(res?.signature ?? null);
        await this.loadSignature();
      },
    });
  }

  /** The reply's `email` object; throws when Cc or Bcc holds something that is not an address. */
  payload() {
    return {
      subject: this.subject.value.trim(),
      cc: parseAddresses(this.cc.value, 'Cc'),
      bcc: parseAddresses(this.bcc.value, 'Bcc'),
      include_quote: this.includeQuote.checked,
    };
  }

  /** After a send: empty copies, the subject prefilled again, the quote back on. */
  reset() {
    this.cc.value = '';
    this.bcc.value = '';
    this.subjectTouched = false;
    this.includeQuote.checked = true;
    this.refresh();
  }
}
