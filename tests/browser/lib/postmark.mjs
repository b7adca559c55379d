// Postmark for the browser tests: a stand-in for its send API, the e-mail connector
// installed against it, and its inbound webhook as Postmark posts it.

import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import path from 'node:path';

import { api, REPO } from './server.mjs';

/**
 * A stand-in for Postmark's send API: `POST /email` with `X-Postmark-Server-Token`,
 * `Accept` and `Content-Type` JSON and a body with From, To, a text or HTML body, and
 * well-formed Headers and Attachments; anything else is refused the way Postmark
 * refuses it. Every request is recorded with its answer.
 */
export async function startPostmark(serverToken) {
  const requests = [];
  const http = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const record = { method: req.method, path: req.url, headers: req.headers, raw, json: null, status: 0, answer: null };
      const answer = (status, body) => {
        record.status = status;
        record.answer = body;
        requests.push(record);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const error = (status, code, message) => answer(status, { ErrorCode: code, Message: message });
      if (req.url !== '/email') return error(404, 0, 'Not found');
      if (req.method !== 'POST') return error(405, 0, 'Method not allowed');
      const given = req.headers['x-postmark-server-token'];
      if (!given) return error(401, 10, 'No Account or Server API tokens were supplied in the HTTP headers.');
      if (given !== serverToken) return error(401, 10, 'The Server Token you provided in the X-Postmark-Server-Token request header was invalid.');
      if (!/application\/json/i.test(req.headers.accept ?? '')) return error(406, 0, 'The Accept header must be application/json.');
      if (!/application\/json/i.test(req.headers['content-type'] ?? '')) return error(415, 0, 'The Content-Type header must be application/json.');
      let mail;
      try {
        mail = JSON.parse(raw);
      } catch {
        return error(422, 402, 'Received invalid JSON input.');
      }
      record.json = mail;
      const text = (k) => (typeof mail[k] === 'string' && mail[k].trim() ? mail[k] : null);
      if (!text('From')) return error(422, 300, "Invalid 'From' address: ''.");
      if (!text('To')) return error(422, 300, 'Zero recipients specified');
      if (!text('TextBody') && !text('HtmlBody')) return error(422, 300, 'Provide either email TextBody or HtmlBody or both.');
      if (mail.Headers != null && !(Array.isArray(mail.Headers)
        && mail.Headers.every((h) => typeof h.Name === 'string' && typeof h.Value === 'string'))) {
        return error(422, 300, "Invalid 'Headers': expected [{Name, Value}].");
      }
      if (mail.Attachments != null && !(Array.isArray(mail.Attachments) && mail.Attachments.every((f) =>
        typeof f.Name === 'string' && typeof f.ContentType === 'string' && typeof f.Content === 'string'
        && /^[A-Za-z0-9+/]*={0,2}$/.test(f.Content)))) {
        return error(422, 300, "Invalid 'Attachments'.");
      }
      return answer(200, { To: mail.To, SubmittedAt: new Date().toISOString(), MessageID: randomUUID(), ErrorCode: 0, Message: 'OK' });
    });
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${http.address().port}`,
    requests,
    close: () => new Promise((resolve) => { http.closeAllConnections?.(); http.close(() => resolve()); }),
  };
}

/**
 * Installs the real e-mail connector (`plugins/dist/email`) as `email`, for the mailbox
 * `shop`, sending through the stand-in and taking inbound posts with `hook` credentials.
 * Returns the API's answer.
 */
export async function installPostmarkEmail(server, adminToken, postmark, { shop, token, hook }) {
  return api(server.base, adminToken, 'POST', '/api/v1/plugins', {
    path: path.join(REPO, 'plugins', 'dist', 'email'),
    id: 'email',
    config: {
      address: shop,
      display_name: 'Shop Support',
      provider: 'postmark',
      postmark_server_token: token,
      postmark_webhook_user: hook.user,
      postmark_webhook_password: hook.password,
      postmark_api_base: postmark.base,
    },
    allow_hosts: [postmark.base],
  });
}

/** Posts a Postmark inbound webhook the way Postmark does, with the URL's Basic credentials. */
export async function postmarkInbound(base, body, { user, password }) {
  const res = await fetch(`${base}/hooks/email/postmark`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

/** Postmark's inbound JSON for a mail from `from` ({email, name}) to the mailbox `shop`. */
export function inboundMail({ from, shop, messageId, subject, text, html = '', headers = [], cc = [], attachments = [] }) {
  return {
    FromName: from.name,
    MessageStream: 'inbound',
    From: from.email,
    FromFull: { Email: from.email, Name: from.name, MailboxHash: '' },
    To: `"Shop Support" <${shop}>`,
    ToFull: [{ Email: shop, Name: 'Shop Support', MailboxHash: '' }],
    Cc: cc.map((c) => (c.Name ? `"${c.Name}" <${c.Email}>` : c.Email)).join(', '),
    CcFull: cc.map((c) => ({ Email: c.Email, Name: c.Name ?? '', MailboxHash: '' })),
    Bcc: '',
    BccFull: [],
    OriginalRecipient: shop,
    Subject: subject,
    MessageID: randomUUID(),
    ReplyTo: '',
    MailboxHash: '',
    Date: new Date().toUTCString().replace('GMT', '+0000'),
    TextBody: text,
    HtmlBody: html,
    StrippedTextReply: '',
    Tag: '',
    Headers: [
      { Name: 'Return-Path', Value: `<${from.email}>` },
      { Name: 'X-Spam-Status', Value: 'No' },
      { Name: 'Message-ID', Value: `<${messageId}>` },
      ...headers,
    ],
    Attachments: attachments,
  };
}
