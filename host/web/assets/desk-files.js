// Files in the timeline: stored pictures as thumbnails, other files as a Save button,
// files the host is still copying from the provider as a note, failed copies with
// their reason. The host serves files only with the token, so pictures are fetched
// into object URLs.
//
// A FileShelf (one per open conversation) keeps each file's element across timeline
// re-renders, so a picture is fetched once rather than on every new message, and it
// revokes the object URLs of files no longer shown — all of them when the
// conversation closes. A file's element is keyed by its status, so a pending file
// that became stored is built anew.

import { h } from './dom.js';
import { blob } from './api.js';
import { fileName, fileSize, isImage, saveBlob, saveName } from './files.js';

function sameOrigin(url) {
  try { return new URL(url, location.href).origin === location.origin; } catch { return false; }
}

function safeUrl(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch { return null; }
}

export class FileShelf {
  constructor() {
    this.kept = new Map(); // key → {el, url, blob, gone}
    this.seen = null;
  }

  /** Starts a render: files not asked for again before `sweep()` are let go. */
  begin() { this.seen = new Set(); }

  /** Ends a render: revokes what the new timeline no longer shows. */
  sweep() {
    for (const [key, entry] of this.kept) if (!this.seen?.has(key)) this.drop(key, entry);
    this.seen = null;
  }

  /** Lets every file go (the conversation closed). */
  clear() {
    for (const [key, entry] of this.kept) this.drop(key, entry);
  }

  drop(key, entry) {
    entry.gone = true;
    if (entry.url) URL.revokeObjectURL(entry.url);
    entry.url = null;
    this.kept.delete(key);
  }

  /** The list of an event's files, or null when it has none. */
  list(event) {
    const files = event.attachments ?? [];
    if (files.length === 0) return null;
    return h('ul', { class: 'attachments' }, files.map((a) => this.file(a)));
  }

  file(a) {
    const status = a.status ?? 'stored';
    const key = `${a.id ?? a.url}:${status}`;
    this.seen?.add(key);
    let entry = this.kept.get(key);
    if (!entry) {
      entry = { el: null, url: null, blob: null, gone: false };
      entry.el = h('li', {
        class: ['file', `file-${status}`],
        'data-testid': 'timeline-attachment',
        'data-status': status,
        'data-attachment': a.id ?? '',
      }, this.content(a, status, entry));
      this.kept.set(key, entry);
    }
    return entry.el;
  }

  content(a, status, entry) {
    const name = fileName(a);
    if (status === 'pending') {
      return [h('span', { class: 'file-name' }, name),
        h('span', { class: 'file-note' }, 'Downloading from the provider…')];
    }
    if (status === 'failed') {
      return [h('span', { class: 'file-name' }, name),
        h('span', { class: 'file-note file-error' }, `Not available: ${a.error || 'the provider did not hand over the file'}`)];
    }
    if (!sameOrigin(a.url)) {
      // Not a file of the host (an older event): a plain link, opened without the token.
      const href = safeUrl(a.url);
      return href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, name) : name;
    }
    return isImage(a.content_type) ? picture(a, name, entry) : download(a, name, entry);
  }
}

function picture(a, name, entry) {
  const note = h('span', { class: 'file-note', role: 'status' }, 'Loading picture…');
  const img = h('img', { class: 'file-img', alt: name, 'data-testid': 'timeline-image', hidden: true });
  const view = h('button', {
    type: 'button', class: 'file-thumb', 'aria-expanded': 'false', 'aria-label': `Enlarge picture ${name}`,
    'data-testid': 'timeline-image-toggle',
    on: {
      click: () => {
        const large = view.classList.toggle('is-large');
        view.setAttribute('aria-expanded', String(large));
        view.setAttribute('aria-label', `${large ? 'Shrink' : 'Enlarge'} picture ${name}`);
      },
    },
  }, img);
  const save = h('button', {
    type: 'button', class: 'btn btn-small file-save', 'data-testid': 'timeline-file-save',
    'aria-label': `Download ${name}`, disabled: true,
    on: { click: () => { if (entry.blob) saveBlob(entry.blob, saveName(a)); } },
  }, 'Download');
  blob(a.url).then((b) => {
    if (entry.gone) return;
    entry.blob = b;
    entry.url = URL.createObjectURL(b);
    img.src = entry.url;
    img.hidden = false;
    save.disabled = false;
    note.remove();
  }).catch((e) => {
    if (!entry.gone) note.textContent = `Picture not loaded: ${e.message}`;
  });
  return [view, h('div', { class: 'file-row' }, note,
    h('span', { class: 'file-meta' }, [name, fileSize(a.size)].filter(Boolean).join(' · ')), save)];
}

function download(a, name, entry) {
  const note = h('span', { class: 'file-note', role: 'status' });
  const button = h('button', {
    type: 'button', class: 'btn btn-small file-download', 'data-testid': 'timeline-file-save',
    'aria-label': `Download ${name}`,
    on: {
      click: async () => {
        button.disabled = true;
        note.textContent = 'Downloading…';
        try {
          entry.blob ??= await blob(a.url);
          saveBlob(entry.blob, saveName(a));
          note.textContent = '';
        } catch (e) {
          note.textContent = `Not downloaded: ${e.message}`;
        } finally {
          button.disabled = false;
        }
      },
    },
  }, `Download ${name}`);
  return [button, fileSize(a.size) ? h('span', { class: 'file-meta' }, fileSize(a.size)) : null, note];
}
