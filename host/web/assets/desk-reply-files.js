// Files attached to the reply being written: the Attach button, one chip per file
// (name, size, uploading or ready, a remove control), and the upload ids the reply
// sends. Each file is uploaded as soon as it is chosen, so Send only names them;
// a refused upload (too large, empty) is reported through `onError` and leaves no
// chip behind.

import { h, mount } from './dom.js';
import { upload } from './api.js';
import { fileSize } from './files.js';

export class ReplyFiles {
  /** `onError(text)` shows a problem in the composer; `onChange()` after any change. */
  constructor({ onError, onChange }) {
    this.onError = onError;
    this.onChange = onChange ?? (() => {});
    this.files = []; // {name, id (null while uploading), chip}
    this.seq = 0;
    this.input = h('input', {
      type: 'file', multiple: true, hidden: true, 'aria-label': 'Files to attach',
      'data-testid': 'reply-attach-input',
      on: { change: () => { this.add([...this.input.files]); this.input.value = ''; } },
    });
    this.button = h('button', {
      type: 'button', class: 'btn reply-attach', 'data-testid': 'reply-attach',
      on: { click: () => this.input.click() },
    }, 'Attach files');
    this.chips = h('ul', { class: 'reply-files', 'data-testid': 'reply-attachments', 'aria-label': 'Attached files' });
  }

  /** The controls for the composer's action row. */
  controls() { return [this.input, this.button]; }

  /** Upload ids of the files ready to send, in the order chosen. */
  ids() { return this.files.filter((f) => f.id).map((f) => f.id); }

  /** Whether a file is still uploading. */
  busy() { return this.files.some((f) => !f.id); }

  /** Forgets every file (the reply went out, or the conversation changed). */
  clear() {
    this.seq += 1;
    this.files = [];
    mount(this.chips);
    this.onChange();
  }

  add(list) {
    for (const file of list) this.upload(file);
  }

  async upload(file) {
    const seq = this.seq;
    const entry = { name: file.name || 'file', id: null, chip: null };
    const state = h('span', { class: 'reply-file-state' }, 'uploading…');
    entry.chip = h('li', { class: 'reply-file', 'data-testid': 'reply-attachment', 'data-state': 'uploading' },
      h('span', { class: 'reply-file-name' }, entry.name),
      h('span', { class: 'reply-file-size' }, fileSize(file.size)),
      state,
      h('button', {
        type: 'button', class: 'reply-file-remove', 'data-testid': 'reply-attachment-remove',
        'aria-label': `Remove ${entry.name}`, title: `Remove ${entry.name}`,
        on: { click: () => this.remove(entry) },
      }, '×'));
    this.files.push(entry);
    this.chips.append(entry.chip);
    this.onChange();
    try {
      const res = await upload(`/attachments?filename=${encodeURIComponent(entry.name)}`, file);
      if (seq !== this.seq || !this.files.includes(entry)) return;
      entry.id = res.attachment.id;
      entry.chip.dataset.state = 'ready';
      state.textContent = '';
    } catch (e) {
      if (seq !== this.seq || !this.files.includes(entry)) return;
      this.remove(entry);
      this.onError(e.status === 413
        ? `${entry.name} (${fileSize(file.size)}) is too large to attach: ${e.message}.`
        : `${entry.name} was not attached: ${e.message}.`);
      return;
    }
    this.onChange();
  }

  remove(entry) {
    this.files = this.files.filter((f) => f !== entry);
    entry.chip.remove();
    this.onChange();
  }
}
