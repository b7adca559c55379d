// A stand-in for Meta's Graph API (the WhatsApp Cloud API) on 127.0.0.1, signed
// WhatsApp webhooks, and small real PNGs for media. The stand-in checks what the real
// API checks — the bearer token on every call, the JSON shape of a send — and records
// every request so a test can assert what went out.

import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { deflateSync } from 'node:zlib';

export const GRAPH_TOKEN = 'browser-meta-access-token';
export const GRAPH_APP_SECRET = 'browser-meta-app-secret';
export const GRAPH_VERIFY_TOKEN = 'browser-meta-verify-token';
export const GRAPH_VERSION = 'v21.0';
export const WA_PHONE_NUMBER_ID = 'PNID-BROWSER';
export const WA_DISPLAY_NUMBER = '15550783881';
export const WABA_ID = 'WABA-BROWSER';

/** The one approved template the stand-in lists (and a rejected one it hides). */
export const ORDER_UPDATE = { name: 'order_update', language: 'en_US', body: 'Hi {{1}}, your order {{2}} has shipped' };

// ------------------------------------------------------------ PNG

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/**
 * A real RGB PNG of `width`×`height`, `paint(x, y)` → [r, g, b] per pixel: big enough
 * to see in a screenshot, small enough for any limit.
 */
export function png(width, height, paint) {
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) {
      const [r, g, b] = paint(x, y);
      row[1 + x * 3] = r;
      row[2 + x * 3] = g;
      row[3 + x * 3] = b;
    }
    rows.push(row);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ------------------------------------------------------------ the stand-in

function send(res, status, body, type = 'application/json') {
  res.recorded.status = status;
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': type, 'content-length': bytes.length });
  res.end(bytes);
}

function graphError(res, status, code, message) {
  send(res, status, { error: { message, type: 'OAuthException', code, fbtrace_id: 'browser' } });
}

const MEDIA_FIELDS = ['image', 'video', 'audio', 'document'];

/** What is wrong with a WhatsApp send body, or null when the Cloud API would take it. */
function badSend(json) {
  if (json?.messaging_product !== 'whatsapp') return '(#100) messaging_product must be "whatsapp"';
  if (typeof json.to !== 'string' || !/^\d{6,15}$/.test(json.to)) return '(#100) The parameter to is required.';
  const type = json.type;
  if (!type || typeof json[type] !== 'object') return `(#100) The parameter ${type ?? 'type'} is required.`;
  if (MEDIA_FIELDS.includes(type) && !json[type].link && !json[type].id) return `(#100) ${type} needs a link or an id`;
  if (type === 'text' && typeof json.text.body !== 'string') return '(#100) text.body is required';
  if (type === 'template' && (!json.template.name || !json.template.language?.code)) return '(#100) template name and language are required';
  return null;
}

/**
 * Starts the stand-in on a free loopback port. `media` maps media ids to
 * `{bytes, mimeType, held?}` (served from `/media-bytes/{id}` after
 * `GET /{version}/{id}`; with `held` — a promise — only once it settles). An unknown
 * media id is answered as Meta answers one: 400, code 100.
 * Returns `{base, requests, sends(), close()}`.
 */
export async function startGraph({ media = new Map() } = {}) {
  const requests = [];
  let sent = 0;
  let base = '';
  // Node answers an HTTP/1.1 request without a Host header 400 by itself. The host's
  // attachment download (plugin-host's `send_direct`) sends none at the time of
  // writing, so the stand-in lets such requests through, as the Rust e2e stand-in
  // (hyper) does, and records the header (`host`) for a test to assert on.
  const server = createServer({ requireHostHeader: false }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, base);
      const raw = Buffer.concat(chunks);
      let json = null;
      try { json = raw.length ? JSON.parse(raw.toString('utf8')) : null; } catch { json = null; }
      const entry = { method: req.method, path: url.pathname, query: url.search, authorization: req.headers.authorization ?? null, host: req.headers.host ?? null, json };
      requests.push(entry);
      res.recorded = entry;
      if (req.headers.authorization !== `Bearer ${GRAPH_TOKEN}`) {
        graphError(res, 401, 190, 'Invalid OAuth access token.');
        return;
      }
      const parts = url.pathname.split('/').filter(Boolean);
      if (req.method === 'GET' && parts[0] === 'media-bytes' && parts.length === 2) {
        const file = media.get(decodeURIComponent(parts[1]));
        if (!file) { graphError(res, 404, 100, 'Unknown media'); return; }
        Promise.resolve(file.held).then(() => send(res, 200, file.bytes, file.mimeType));
        return;
      }
      if (parts[0] !== GRAPH_VERSION) { graphError(res, 404, 100, 'Unsupported request'); return; }
      if (req.method === 'GET' && parts.length === 3 && parts[2] === 'message_templates') {
        if (parts[1] !== WABA_ID) { graphError(res, 404, 100, 'Unknown business account'); return; }
        send(res, 200, {
          data: [
            { name: ORDER_UPDATE.name, language: ORDER_UPDATE.language, status: 'APPROVED', category: 'UTILITY', id: '1',
              components: [{ type: 'BODY', text: ORDER_UPDATE.body }] },
            { name: 'draft_promo', language: 'en_US', status: 'REJECTED', category: 'MARKETING', id: '2',
              components: [{ type: 'BODY', text: 'Sale!' }] },
          ],
          paging: { cursors: { before: 'A', after: 'B' } },
        });
        return;
      }
      if (req.method === 'POST' && parts.length === 3 && parts[2] === 'messages') {
        if (parts[1] !== WA_PHONE_NUMBER_ID) { graphError(res, 400, 100, 'Unknown phone number id'); return; }
        const problem = badSend(json);
        if (problem) { graphError(res, 400, 100, problem); return; }
        sent += 1;
        entry.answer = `wamid.out.${sent}`;
        send(res, 200, { messaging_product: 'whatsapp', contacts: [{ input: json.to, wa_id: json.to }], messages: [{ id: entry.answer }] });
        return;
      }
      if (req.method === 'GET' && parts.length === 2) {
        const id = decodeURIComponent(parts[1]);
        const file = media.get(id);
        if (!file) {
          send(res, 400, { error: { message: `Unsupported get request. Object with ID '${id}' does not exist`, type: 'GraphMethodException', code: 100, error_subcode: 33, fbtrace_id: 'browser' } });
          return;
        }
        send(res, 200, {
          messaging_product: 'whatsapp', url: `${base}/media-bytes/${encodeURIComponent(id)}`,
          mime_type: file.mimeType, sha256: 'browser', file_size: file.bytes.length, id,
        });
        return;
      }
      graphError(res, 404, 100, 'Unsupported request');
    });
  });
  server.on('clientError', (err, socket) => {
    requests.push({ method: 'CLIENT-ERROR', path: `${err.code} ${err.message} ${err.rawPacket?.toString('latin1') ?? ''}`, status: 400 });
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    requests,
    /** The sends (`POST /{version}/{phone_number_id}/messages`) so far. */
    sends: () => requests.filter((r) => r.method === 'POST' && r.path.endsWith('/messages')),
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

// ------------------------------------------------------------ webhooks

/** The Cloud API webhook body for messages from one customer, and statuses of ours. */
export function whatsappWebhook({ from, name, messages = [], statuses = [] }) {
  return {
    object: 'whatsapp_business_account',
    entry: [{
      id: WABA_ID,
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: WA_DISPLAY_NUMBER, phone_number_id: WA_PHONE_NUMBER_ID },
          ...(messages.length ? { contacts: [{ profile: { name }, wa_id: from }], messages: messages.map((m) => ({ from, ...m })) } : {}),
          ...(statuses.length ? { statuses } : {}),
        },
      }],
    }],
  };
}

/** Posts a webhook the way Meta does: signed with X-Hub-Signature-256 over the raw body. */
export async function signedWhatsapp(base, body, plugin = 'whatsapp-cloud') {
  const raw = Buffer.from(JSON.stringify(body));
  const signature = `sha256=${createHmac('sha256', GRAPH_APP_SECRET).update(raw).digest('hex')}`;
  const res = await fetch(`${base}/hooks/${plugin}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
    body: raw,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /hooks/${plugin} → ${res.status}: ${text}`);
  return text;
}
