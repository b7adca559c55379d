// E-mail messages in the timeline: the subject, who wrote to whom, the message in a
// frame the mail cannot get out of, its quoted history folded away ("Show quoted
// text"), remote images held back until the agent asks ("Load images (n)"), inline
// pictures shown from files fetched with the agent's token, automatic mail muted with
// a label, and the connector's warning when it could only partly read the mail.
//
// The frame. The host sanitizes the HTML (ammonia) and serves it as a document of its
// own at a signed address (`email.frame_url`), under a Content-Security-Policy that
// runs no script at all, allows inline styles (e-mail needs them; the host filtered
// them) and loads images only from `data:` and this page's `blob:` URLs — and from the
// internet only at the `&images=1` address, which the desk asks for when the agent
// clicks "Load images". The iframe is sandboxed without `allow-scripts` (and without
// forms or top navigation); `allow-same-origin` lets the desk measure the document to
// size the frame, unfold the quote and hand inline pictures their object URLs, which
// is safe only because nothing can run inside. Links open a new tab
// (`allow-popups-to-escape-sandbox`, so the site opened is not crippled). The desk's
// own strict policy is untouched: the mail's styles and pictures live in the frame's
// document, never in the desk's.
//
// Mails without HTML are shown as text nodes, like every other message.
//
// An EmailShelf (one per open conversation) keeps each mail's body across timeline
// redraws: the frame reloads from the browser's cache when it is moved, and comes
// back in the state the agent left it (quote shown, images loaded).

import { h } from './dom.js';
import { blob } from './api.js';

const AUTOMATIC = {
  auto_reply: 'Automatic reply',
  bulk: 'Bulk mail',
  bounce: 'Bounce',
};
const MAX_FRAME_PX = 2400;
// A frame address is re-signed every hour and valid for 12; keep the one loaded
// until it has less than this left.
const URL_MARGIN_MS = 2 * 3600_000;

function expiresAt(url) {
  try {
    const e = Number(new URL(url, location.href).searchParams.get('expires'));
    return Number.isFinite(e) ? e * 1000 : 0;
  } catch { return 0; }
}

/** A label for automatic mail, or null. */
export function automaticLabel(email) {
  const kind = email?.automatic;
  if (!kind) return null;
  return AUTOMATIC[kind] ?? `Automatic (${String(kind).replace(/_/g, ' ')})`;
}

/** The header of an e-mail: subject, from/to/cc, the automatic label and the warning. */
export function emailHead(email) {
  const parts = [];
  if (email.from) parts.push(['From', email.from]);
  if (email.to?.length) parts.push(['To', email.to.join(', ')]);
  if (email.cc?.length) parts.push(['Cc', email.cc.join(', ')]);
  const label = automaticLabel(email);
  return [
    h('div', { class: 'email-subject-row' },
      label ? h('span', { class: 'badge email-automatic', 'data-testid': 'email-automatic' }, label) : null,
      h('span', { class: 'email-subject', 'data-testid': 'email-subject' }, email.subject || '(no subject)')),
    parts.length ? h('div', { class: 'email-addresses', 'data-testid': 'email-addresses' },
      parts.map(([k, v]) => h('span', { class: 'email-address' }, h('span', { class: 'email-address-label' }, `${k}: `), v))) : null,
    email.problem ? h('div', { class: 'email-problem', 'data-testid': 'email-problem', role: 'note' },
      h('span', { 'aria-hidden': 'true' }, '⚠ '), `Only partly read: ${email.problem}`) : null,
  ];
}

export class EmailShelf {
  constructor() {
    this.kept = new Map(); // event id → entry
    this.seen = null;
  }

  /** Starts a render: mails not shown again before `sweep()` are let go. */
  begin() { this.seen = new Set(); }

  /** Ends a render. */
  sweep() {
    for (const [id, entry] of this.kept) if (!this.seen?.has(id)) this.drop(id, entry);
    this.seen = null;
  }

  /** Lets every mail go (the conversation closed). */
  clear() {
    for (const [id, entry] of this.kept) this.drop(id, entry);
  }

  drop(id, entry) {
    entry.gone = true;
    entry.observer?.disconnect();
    for (const url of entry.pictures.values()) URL.revokeObjectURL(url);
    entry.pictures.clear();
    this.kept.delete(id);
  }

  /** The body of e-mail event `e` (its `email` view): the frame or the text, and its controls. */
  body(e) {
    this.seen?.add(e.id);
    let entry = this.kept.get(e.id);
    if (!entry) {
      entry = this.build(e);
      this.kept.set(e.id, entry);
    }
    entry.event = e;
    if (entry.frame && e.email.frame_url && e.email.frame_url !== entry.url
      && expiresAt(entry.url) - Date.now() < URL_MARGIN_MS) {
      entry.url = e.email.frame_url;
      entry.frame.src = this.address(entry);
    }
    if (entry.frame) this.pictures(entry);
    return entry.el;
  }

  build(e) {
    const email = e.email;
    const entry = {
      el: null, frame: null, url: email.frame_url ?? null, event: e,
      quoted: false, images: false, gone: false, observer: null,
      pictures: new Map(), // attachment id → object URL
      quotedText: null, toggle: null, loadImages: null,
    };
    const hasQuote = email.html ? Boolean(email.quoted_html) : Boolean(email.quoted_text);
    entry.toggle = hasQuote ? h('button', {
      type: 'button', class: 'btn btn-small email-quote-toggle', 'data-testid': 'email-quote-toggle',
      'aria-expanded': 'false',
      on: { click: () => this.setQuoted(entry, !entry.quoted) },
    }, 'Show quoted text') : null;
    entry.loadImages = email.html && email.remote_images > 0 ? h('button', {
      type: 'button', class: 'btn btn-small email-load-images', 'data-testid': 'email-load-images',
      title: 'Pictures from the internet tell the sender that the mail was read, and when',
      on: { click: () => this.loadRemote(entry) },
    }, `Load images (${email.remote_images})`) : null;
    let content;
    if (email.html && entry.url) {
      entry.frame = h('iframe', {
        class: 'email-frame',
        'data-testid': 'email-frame',
        title: `E-mail: ${email.subject || 'no subject'}`,
        sandbox: 'allow-same-origin allow-popups allow-popups-to-escape-sandbox',
        referrerpolicy: 'no-referrer',
        src: this.address(entry),
        on: { load: () => this.loaded(entry) },
      });
      content = entry.frame;
    } else {
      entry.quotedText = hasQuote
        ? h('div', { class: 'bubble-text email-quoted', 'data-testid': 'email-quoted', hidden: true }, email.quoted_text)
        : null;
      content = [
        email.text ? h('div', { class: 'bubble-text email-text', 'data-testid': 'email-text' }, email.text) : null,
        entry.quotedText,
      ];
    }
    const controls = entry.toggle || entry.loadImages
      ? h('div', { class: 'email-controls' }, entry.toggle, entry.loadImages)
      : null;
    entry.el = h('div', { class: 'email-body', 'data-testid': 'email-body' }, content, controls);
    return entry;
  }

  address(entry) {
    return entry.images ? `${entry.url}&images=1` : entry.url;
  }

  doc(entry) {
    try { return entry.frame?.contentDocument ?? null; } catch { return null; }
  }

  /** The frame (re)loaded: put back what the agent chose, and fit it. */
  loaded(entry) {
    if (entry.gone) return;
    const doc = this.doc(entry);
    if (!doc?.body) return;
    const quoted = doc.getElementById('sb-quoted');
    if (quoted) quoted.hidden = !entry.quoted;
    for (const img of doc.querySelectorAll('img[data-cid]')) {
      const url = entry.pictures.get(img.dataset.cid);
      if (url) img.src = url;
    }
    this.pictures(entry);
    entry.observer?.disconnect();
    entry.observer = new ResizeObserver(() => this.fit(entry));
    entry.observer.observe(doc.body);
    this.fit(entry);
  }

  fit(entry) {
    const doc = this.doc(entry);
    if (!doc?.documentElement) return;
    const height = Math.ceil(doc.documentElement.getBoundingClientRect().height) + 2;
    const capped = Math.min(Math.max(height, 24), MAX_FRAME_PX);
    entry.frame.style.height = `${capped}px`;
    // A very long mail scrolls inside its frame rather than pushing the timeline away.
    doc.body.style.overflowY = height > MAX_FRAME_PX ? 'auto' : 'hidden';
  }

  /** Inline pictures (`cid:`): the message's files, fetched with the token once each. */
  pictures(entry) {
    const doc = this.doc(entry);
    if (!doc) return;
    const files = new Map((entry.event.attachments ?? []).map((a) => [a.id, a]));
    for (const img of doc.querySelectorAll('img[data-cid]')) {
      const id = img.dataset.cid;
      const file = files.get(id);
      if (entry.pictures.has(id) || !file || (file.status ?? 'stored') !== 'stored' || img.dataset.loading) continue;
      img.dataset.loading = '1';
      blob(file.url).then((b) => {
        if (entry.gone) return;
        const url = URL.createObjectURL(b);
        entry.pictures.set(id, url);
        for (const same of this.doc(entry)?.querySelectorAll(`img[data-cid="${CSS.escape(id)}"]`) ?? []) same.src = url;
      }).catch(() => {
        delete img.dataset.loading;
      });
    }
  }

  setQuoted(entry, shown) {
    entry.quoted = shown;
    entry.toggle.setAttribute('aria-expanded', String(shown));
    entry.toggle.textContent = shown ? 'Hide quoted text' : 'Show quoted text';
    if (entry.quotedText) {
      entry.quotedText.hidden = !shown;
      return;
    }
    const quoted = this.doc(entry)?.getElementById('sb-quoted');
    if (quoted) quoted.hidden = !shown;
    this.fit(entry);
  }

  loadRemote(entry) {
    entry.images = true;
    entry.loadImages.remove();
    entry.frame.src = this.address(entry);
  }
}
