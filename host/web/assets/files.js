// How files are named, sized and saved across the client. Files of the host need the
// token, so a download is a fetch into a Blob, then a click on a temporary link to an
// object URL; nothing here ever navigates to the file itself.

import { h } from './dom.js';

// The raster types the host serves inline (see `safe_inline` in the host): only these
// are shown as pictures; anything else is offered as a download.
const IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/bmp', 'image/avif']);

/** Whether a file of this type is shown as a picture. */
export function isImage(contentType) {
  return IMAGES.has(String(contentType ?? '').split(';')[0].trim().toLowerCase());
}

/** "812 B", "14 KB", "3.2 MB". */
export function fileSize(bytes) {
  if (bytes == null || !Number.isFinite(Number(bytes))) return '';
  const n = Number(bytes);
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  return `${(n / (1024 * 1024)).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MB`;
}

/** A host message with byte counts in words: "at most 26214400 bytes" → "at most 25.0 MB". */
export function readableBytes(text) {
  return String(text ?? '').replace(/\b(\d{4,}) bytes?\b/g, (_, n) => fileSize(Number(n)));
}

/** What kind of file a type is, in words: "PNG image", "PDF file". */
export function fileKind(contentType) {
  const [major, minor = ''] = String(contentType ?? '').split(';')[0].trim().toLowerCase().split('/');
  const sub = minor.replace(/^(x-|vnd\.)/, '').split(/[.+]/)[0].toUpperCase();
  const noun = ['image', 'video', 'audio'].includes(major) ? major : 'file';
  return sub ? `${sub} ${noun}` : 'File';
}

/** What to call a file: its name, else its kind. */
export function fileName(file) {
  return file?.filename || file?.name || fileKind(file?.content_type);
}

/** A name to save a file under when it came without one: "attachment.png". */
export function saveName(file) {
  if (file?.filename) return file.filename;
  const minor = String(file?.content_type ?? '').split(';')[0].split('/')[1] ?? '';
  const ext = { jpeg: 'jpg', 'svg+xml': 'svg', plain: 'txt' }[minor] ?? minor.replace(/[^a-z0-9]/gi, '').slice(0, 8);
  return ext ? `attachment.${ext}` : 'attachment';
}

/** Saves `blob` under `name` through a temporary download link. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: name || 'file', hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The download has its own reference once started; give it a moment first.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
