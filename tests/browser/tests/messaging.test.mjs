// WhatsApp in the agent desk, end to end in headless Chromium against the real binary,
// the real whatsapp-cloud connector and a stand-in Graph API (lib/graph.mjs):
// - Jane Doe writes on WhatsApp and sends a photo; the agent accepts, reads the text
//   and sees the photo as a thumbnail (fetched with the token, shown from a blob URL);
//   the composer says how long the 24-hour window has left;
// - an empty file is refused in the composer; the agent attaches a PNG and sends it:
//   the Cloud API gets an `image` message whose link is the host's signed /media/
//   URL, and that link serves the file; the reply's status follows to `sent`;
// - WhatsApp later reports it failed (131047): the reason shows under the message;
// - Jane sends a document that cannot be fetched (failed, with the reason), taps a
//   button, shares a location (map link, the name as text), reacts to the label, and
//   sends a photo still being downloaded ("Downloading from the provider…") which
//   turns into a thumbnail when `timeline.updated` arrives;
// - Omar last wrote 25 hours ago (the window runs from WhatsApp's timestamp): the desk
//   shows the window closed and the template picker, the first name already filled
//   in; a free-text send the host refuses (422 window_closed) lands on the picker too;
//   the agent fills the order number and sends the template: the Cloud API gets it
//   with both values and the timeline shows the rendered text; the picker fits a phone.
// Screenshots (inbound photo, composer with a file, template picker, and a few more)
// go to tests/browser/artifacts/.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch, screenshot, unnamedControls, watch } from '../lib/browser.mjs';
import {
  GRAPH_APP_SECRET, GRAPH_TOKEN, GRAPH_VERIFY_TOKEN, ORDER_UPDATE, WABA_ID, WA_PHONE_NUMBER_ID,
  png, signedWhatsapp, startGraph, whatsappWebhook,
} from '../lib/graph.mjs';
import { REPO, api, createAgent, login, startServer, waitFor } from '../lib/server.mjs';

const AGENT = { email: 'wes@messaging.test', password: 'wes-password-1', name: 'Wes Agent' };
const JANE = { wa: '15551230101', name: 'Jane Doe' };
const OMAR = { wa: '15551230202', name: 'Omar Haddad' };

// What Jane photographs: a parcel-brown square with a label stripe.
const PHOTO = png(160, 120, (x, y) => (y > 44 && y < 76 ? [250, 250, 245] : [181 - (x >> 3), 134 - (y >> 3), 84]));
// What the agent attaches: a blue and white checkerboard.
const ATTACHMENT = png(96, 96, (x, y) => (((x >> 4) + (y >> 4)) % 2 ? [36, 80, 216] : [255, 255, 255]));

// A second photo whose download waits until the test lets it go.
let releasePhoto;
const SLOW_PHOTO = { bytes: png(120, 90, (x, y) => [40 + y, 150, 90 + x]), mimeType: 'image/png', held: new Promise((r) => { releasePhoto = r; }) };

let server;
let graph;
let browser;
let admin;

before(async () => {
  graph = await startGraph({ media: new Map([
    ['media-photo-1', { bytes: PHOTO, mimeType: 'image/png' }],
    ['media-photo-slow', SLOW_PHOTO],
  ]) });
  server = await startServer();
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  await createAgent(server.base, admin, AGENT);
  const installed = await api(server.base, admin, 'POST', '/api/v1/plugins', {
    path: path.join(REPO, 'plugins', 'dist', 'whatsapp-cloud'),
    config: {
      app_secret: GRAPH_APP_SECRET,
      verify_token: GRAPH_VERIFY_TOKEN,
      access_token: GRAPH_TOKEN,
      phone_number_id: WA_PHONE_NUMBER_ID,
      business_account_id: WABA_ID,
      api_base: graph.base,
    },
    allow_hosts: [graph.base],
  });
  assert.equal(installed.id, 'whatsapp-cloud');
  assert.ok(!JSON.stringify(installed).includes(GRAPH_TOKEN), 'secrets never come back');
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await graph?.close();
});

const nowSecs = () => Math.floor(Date.now() / 1000);

async function signIn(p, who) {
  await p.goto(`${server.base}/`);
  await p.getByTestId('login-email').fill(who.email);
  await p.getByTestId('login-password').fill(who.password);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
}

/** The conversation of the contact with `identity` (waits for the host to record it). */
async function conversationOf(identity) {
  return waitFor(async () => {
    const { contacts } = await api(server.base, admin, 'GET', `/api/v1/contacts?identity=${encodeURIComponent(identity)}`);
    if (!contacts?.length) return null;
    const { events } = await api(server.base, admin, 'GET', `/api/v1/contacts/${contacts[0].id}/timeline`);
    return events.map((e) => e.conversation_id).filter(Boolean).pop() ?? null;
  }, { what: `a conversation for ${identity}` });
}

/** Accepts the offer naming `name` and waits for its conversation to open. */
async function acceptOffer(p, name) {
  const offer = p.getByTestId('offer').filter({ hasText: name });
  await offer.waitFor({ timeout: 20_000 });
  await offer.getByTestId('offer-accept').click();
  await p.getByTestId('customer-name').filter({ hasText: name }).waitFor({ timeout: 15_000 });
}

test('WhatsApp photos, files, the messaging window and templates in the desk', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const p = await context.newPage();
  const watcher = watch(p);
  try {
    await scenario(p, watcher);
  } catch (err) {
    // What the page saw helps more than a timeout alone.
    await screenshot(p, 'messaging-failure').catch(() => {});
    err.message += `\npage problems: ${JSON.stringify(watcher.problems(), null, 1)}`;
    err.message += `\nGraph API calls: ${graph.requests.map((r) => `${r.method} ${r.path} (Host ${r.host}) → ${r.status}`).join('; ')}`;
    const warnings = server.output().split('\n').filter((l) => /WARN|ERROR/.test(l)).slice(-10);
    err.message += `\nserver warnings:\n${warnings.join('\n')}`;
    throw err;
  } finally {
    await context.close();
  }
});

async function scenario(p, watcher) {
  await signIn(p, AGENT);
  await p.getByTestId('presence-select').selectOption('available');

  // Jane writes, then sends a photo.
  await signedWhatsapp(server.base, whatsappWebhook({
    from: JANE.wa, name: JANE.name,
    messages: [{ id: 'wamid.in.jane.1', timestamp: String(nowSecs()), type: 'text', text: { body: 'Hi, my parcel arrived damaged' } }],
  }));
  await signedWhatsapp(server.base, whatsappWebhook({
    from: JANE.wa, name: JANE.name,
    messages: [{ id: 'wamid.in.jane.2', timestamp: String(nowSecs()), type: 'image', image: { id: 'media-photo-1', mime_type: 'image/png', sha256: 'x' } }],
  }));
  await acceptOffer(p, JANE.name);

  // The text, and the photo as a thumbnail that really loaded.
  const timeline = p.getByTestId('timeline');
  await timeline.getByText('Hi, my parcel arrived damaged').waitFor();
  await p.waitForFunction(() => [...document.querySelectorAll('[data-testid="timeline-image"]')]
    .some((img) => img.complete && img.naturalWidth > 0 && img.src.startsWith('blob:')), null, { timeout: 20_000 });
  const inboundImage = timeline.locator('[data-testid="timeline-event"][data-channel="whatsapp"]').filter({ has: p.getByTestId('timeline-image') });
  assert.equal(await inboundImage.count(), 1);
  assert.equal(await inboundImage.getAttribute('class').then((c) => c.includes('tl-in')), true);
  const size = await inboundImage.getByTestId('timeline-image').evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.deepEqual(size, [160, 120], 'the photo is the one WhatsApp handed over');
  const mediaCalls = graph.requests.filter((r) => r.path.includes('media-photo-1'));
  assert.ok(mediaCalls.length >= 2 && mediaCalls.every((r) => r.authorization === `Bearer ${GRAPH_TOKEN}`),
    `the host resolved the media id and downloaded it with the token: ${JSON.stringify(mediaCalls)}`);

  // The open window is on show; WhatsApp is the reply channel.
  const windowLine = p.getByTestId('reply-window');
  await windowLine.filter({ hasText: /Window closes in (23 h|1 day)/ }).waitFor();
  assert.equal(await windowLine.getAttribute('data-state'), 'open');
  assert.match(await p.getByTestId('reply-channel').locator('option:checked').textContent(), /WhatsApp/);
  await screenshot(p, 'messaging-inbound-image');

  // An empty file is refused: the composer says so and keeps no chip.
  await p.getByTestId('reply-attach-input').setInputFiles({ name: 'empty.txt', mimeType: 'text/plain', buffer: Buffer.alloc(0) });
  await p.getByTestId('reply-error').filter({ hasText: 'empty.txt was not attached: the file is empty' }).waitFor();
  assert.equal(await p.getByTestId('reply-attachment').count(), 0);

  // The agent attaches a PNG; the chip shows it, with a way to remove it.
  await p.getByTestId('reply-attach-input').setInputFiles({ name: 'return-label.png', mimeType: 'image/png', buffer: ATTACHMENT });
  const chip = p.getByTestId('reply-attachment');
  await chip.filter({ hasText: 'return-label.png' }).waitFor();
  await p.locator('[data-testid="reply-attachment"][data-state="ready"]').waitFor();
  assert.match(await chip.textContent(), /return-label\.png.*\d+ (B|KB)/);
  await chip.getByTestId('reply-attachment-remove').waitFor();
  await p.getByTestId('reply-body').fill('Sorry about that! Print this label and we will collect the parcel.');
  assert.deepEqual(await unnamedControls(p), [], 'controls without an accessible name (composer with a file)');
  await screenshot(p, 'messaging-composer-attachment');
  await p.getByTestId('reply-send').click();

  // The Cloud API got an image by link: the host's signed URL, which serves the file.
  const imageSend = await waitFor(() => graph.sends().find((r) => r.json?.type === 'image'), {
    timeoutMs: 20_000, what: 'an image message at the stand-in',
  });
  assert.equal(imageSend.authorization, `Bearer ${GRAPH_TOKEN}`);
  assert.equal(imageSend.path, `/v21.0/${WA_PHONE_NUMBER_ID}/messages`);
  assert.equal(imageSend.json.to, JANE.wa);
  const link = imageSend.json.image.link;
  assert.ok(link.startsWith(`${server.base}/media/`) && /[?&]sig=/.test(link) && /[?&]expires=/.test(link), link);
  assert.equal(imageSend.json.image.caption, 'Sorry about that! Print this label and we will collect the parcel.');
  const served = await fetch(link);
  assert.equal(served.status, 200);
  assert.ok(Buffer.from(await served.arrayBuffer()).equals(ATTACHMENT), 'the signed link serves the uploaded file');
  const forged = await fetch(link.replace(/sig=[0-9a-f]/, (m) => (m.endsWith('0') ? 'sig=1' : 'sig=0')));
  assert.equal(forged.status, 403, 'a tampered link is refused');

  // The sent file shows in the timeline too, and the chip is gone.
  await p.waitForFunction(() => document.querySelectorAll('[data-testid="timeline-image"]').length === 2
    && [...document.querySelectorAll('[data-testid="timeline-image"]')].every((img) => img.naturalWidth > 0), null, { timeout: 20_000 });
  assert.equal(await p.getByTestId('reply-attachment').count(), 0);
  // Handed over to WhatsApp: the reply's status follows without a reload.
  await timeline.locator('.tl-out .delivery').filter({ hasText: /^sent$/ }).waitFor({ timeout: 15_000 });
  await screenshot(p, 'messaging-sent-attachment');

  // Later WhatsApp reports the photo undelivered (131047, asynchronously): the agent
  // reads why under the message.
  await signedWhatsapp(server.base, whatsappWebhook({
    statuses: [{
      id: imageSend.answer, status: 'failed', timestamp: String(nowSecs()), recipient_id: JANE.wa,
      errors: [{ code: 131047, title: 'Re-engagement message', message: 'Re-engagement message',
        error_data: { details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' } }],
    }],
  }));

  // Jane answers with everything WhatsApp carries: a document that cannot be fetched,
  // a tapped button, a location, a reaction to the label, and a photo still on its way.
  await signedWhatsapp(server.base, whatsappWebhook({
    from: JANE.wa, name: JANE.name,
    messages: [
      { id: 'wamid.in.jane.3', timestamp: String(nowSecs()), type: 'document', document: { id: 'media-gone', mime_type: 'application/pdf', filename: 'invoice.pdf' } },
      { id: 'wamid.in.jane.4', timestamp: String(nowSecs()), type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'collect_yes', title: 'Yes, collect it' } } },
      { id: 'wamid.in.jane.5', timestamp: String(nowSecs()), type: 'location', location: { latitude: 52.52, longitude: 13.405, name: 'Parcel shop <b>Mitte</b>', address: 'Alexanderplatz 1, Berlin' } },
      { id: 'wamid.in.jane.6', timestamp: String(nowSecs()), type: 'reaction', reaction: { message_id: imageSend.answer, emoji: '👍' } },
      { id: 'wamid.in.jane.7', timestamp: String(nowSecs()), type: 'image', image: { id: 'media-photo-slow', mime_type: 'image/png', sha256: 'y' } },
    ],
  }));
  await timeline.getByTestId('timeline-tapped').filter({ hasText: 'Tapped: Yes, collect it' }).waitFor();
  const place = timeline.getByTestId('timeline-location');
  await place.filter({ hasText: 'Parcel shop <b>Mitte</b>' }).waitFor();
  assert.match(await place.textContent(), /Alexanderplatz 1, Berlin/);
  const map = place.getByRole('link');
  assert.equal(await map.getAttribute('href'), 'https://www.openstreetmap.org/?mlat=52.52&mlon=13.405#map=16/52.52/13.405');
  assert.equal(await map.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await map.getAttribute('target'), '_blank');
  assert.equal(await place.locator('b').count(), 0, 'the place name is text, not markup');
  await timeline.getByTestId('timeline-reaction').filter({ hasText: /👍\s*Reacted to “Sorry about that!/ }).waitFor();
  const gone = timeline.locator('[data-testid="timeline-attachment"][data-status="failed"]');
  await gone.waitFor({ timeout: 20_000 });
  assert.match(await gone.textContent(), /invoice\.pdf.*Not available: .+/);
  const onItsWay = timeline.locator('[data-testid="timeline-attachment"][data-status="pending"]');
  await onItsWay.filter({ hasText: 'Downloading from the provider…' }).waitFor();
  const undelivered = timeline.getByTestId('timeline-delivery-error');
  await undelivered.waitFor();
  assert.match(await undelivered.textContent(), /^Not delivered.*131047.*24-hour customer service window has closed/);
  await undelivered.scrollIntoViewIfNeeded();
  await screenshot(p, 'messaging-delivery-failed');
  await screenshot(p, 'messaging-rich-inbound');
  // The download finishes: `timeline.updated` redraws the event with the thumbnail.
  releasePhoto();
  await p.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('[data-testid="timeline-image"]')];
    return imgs.length === 3 && imgs.every((img) => img.naturalWidth > 0);
  }, null, { timeout: 20_000 });
  assert.equal(await onItsWay.count(), 0);

  // Omar last wrote 25 hours ago: the window is closed and the picker stands in.
  await signedWhatsapp(server.base, whatsappWebhook({
    from: OMAR.wa, name: OMAR.name,
    messages: [{ id: 'wamid.in.omar.1', timestamp: String(nowSecs() - 25 * 3600), type: 'text', text: { body: 'Where is my order?' } }],
  }));
  const omarConversation = await conversationOf(`whatsapp:+${OMAR.wa}`);
  // The desk's first look at the window is answered "open" (as if it had been open a
  // moment ago), so the free-text composer shows and the host gets to refuse the send.
  const windowRoute = `**/api/v1/conversations/${omarConversation}/window*`;
  let staleAnswers = 0;
  await p.route(windowRoute, async (route) => {
    if (staleAnswers > 0) { await route.continue(); return; }
    staleAnswers += 1;
    const real = await route.fetch();
    const w = await real.json();
    await route.fulfill({
      response: real,
      json: { ...w, open: true, human_agent: false, closed_at: null, closes_at: new Date(Date.now() + 600_000).toISOString(), seconds_left: 600 },
    });
  });
  await acceptOffer(p, OMAR.name);
  await timeline.getByText('Where is my order?').waitFor();
  const yesterday = new Date(Date.now() - 25 * 3600_000);
  assert.match(await timeline.getByTestId('timeline-sent-at').textContent(),
    new RegExp(`^sent \\D*\\b${yesterday.getDate()}\\b`),
    'the message says when Omar sent it, not only when it arrived');
  await p.getByTestId('reply-body').fill('Let me check that for you.');
  await p.getByTestId('reply-send').click();
  await p.getByTestId('reply-error').filter({ hasText: /window closed/i }).waitFor();
  await p.unroute(windowRoute);

  const picker = p.getByTestId('template-picker');
  await picker.waitFor();
  assert.equal(await p.getByTestId('reply-body').isVisible(), false, 'the free-text composer steps aside');
  await windowLine.filter({ hasText: /^Window closed at / }).waitFor();
  assert.equal(await windowLine.getAttribute('data-state'), 'closed');
  const option = picker.getByTestId('template-option');
  // The picker shows before the templates have loaded: wait for them, then count.
  await option.first().waitFor();
  assert.equal(await option.count(), 1, 'only approved templates are offered');
  assert.equal(await option.getAttribute('data-template'), ORDER_UPDATE.name);
  assert.match(await option.textContent(), /order_update.*en_US.*Hi \{\{1\}\}, your order \{\{2\}\} has shipped/);
  const first = picker.locator('[data-testid="template-param"][data-param="1"]');
  const second = picker.locator('[data-testid="template-param"][data-param="2"]');
  assert.equal(await first.inputValue(), 'Omar', "{{1}} is the customer's first name");
  assert.equal(await second.inputValue(), '');
  assert.equal(await picker.getByTestId('template-send').isDisabled(), true, 'every value is needed');
  await second.fill('A-1042');
  const preview = picker.getByTestId('template-preview');
  await preview.filter({ hasText: 'Hi Omar, your order A-1042 has shipped' }).waitFor();
  assert.deepEqual(await unnamedControls(p), [], 'controls without an accessible name (template picker)');
  await screenshot(p, 'messaging-template-picker');
  await picker.getByTestId('template-send').click();

  // The Cloud API got the template with both values; the timeline shows the text.
  const templateSend = await waitFor(() => graph.sends().find((r) => r.json?.type === 'template'), {
    timeoutMs: 20_000, what: 'a template message at the stand-in',
  });
  assert.equal(templateSend.json.to, OMAR.wa);
  assert.equal(templateSend.json.template.name, ORDER_UPDATE.name);
  assert.equal(templateSend.json.template.language.code, ORDER_UPDATE.language);
  assert.deepEqual(templateSend.json.template.components, [
    { type: 'body', parameters: [{ type: 'text', text: 'Omar' }, { type: 'text', text: 'A-1042' }] },
  ]);
  await timeline.locator('[data-testid="timeline-event"][data-kind="message"].tl-out')
    .filter({ hasText: 'Hi Omar, your order A-1042 has shipped' }).waitFor({ timeout: 15_000 });
  assert.equal(graph.sends().filter((r) => r.json?.to === OMAR.wa).length, 1, 'the refused free text never went out');
  await screenshot(p, 'messaging-template-sent');

  // On a phone the picker fits the screen.
  await p.setViewportSize({ width: 390, height: 844 });
  await picker.scrollIntoViewIfNeeded();
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling at phone size (page is ${width}px wide)`);
  await screenshot(p, 'messaging-template-picker-phone');

  const expected = [/http 400: .*\/attachments\?filename=empty\.txt$/, /http 422: .*\/messages$/];
  const problems = watcher.problems().filter((m) => !expected.some((re) => re.test(m)));
  assert.deepEqual(problems, [], 'nothing failed on the page but the empty file and the refused free-text send');
}
