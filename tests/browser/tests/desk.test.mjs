// The agent desk, the wallboard and the webchat widget, end to end in headless
// Chromium against the real binary:
// - a customer chats on the widget; the supervisor's wallboard shows the task waiting;
// - an agent goes available, accepts the offer (countdown shown), replies; the
//   customer sees the reply; the wallboard shows nobody waiting and the agent's load;
// - the same customer texts from a number already on their contact: the agent sees
//   one conversation with both channels;
// - a message containing <script> renders as text;
// - a warm transfer to a second agent shows the context summary before accepting and
//   pinned on the conversation after; resolving records a disposition;
// - every control has an accessible name; the desk works at phone size.
// Screenshots of the main screens go to tests/browser/artifacts/.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launch, screenshot, unnamedControls, watch } from '../lib/browser.mjs';
import { api, createAgent, login, signedTwilioSms, startServer, waitFor } from '../lib/server.mjs';

const SAM = { email: 'sam@desk.test', password: 'sam-password-1', name: 'Sam Agent' };
const ALEX = { email: 'alex@desk.test', password: 'alex-password-1', name: 'Alex Agent' };
const SUE = { email: 'sue@desk.test', password: 'sue-password-1', name: 'Sue Supervisor', role: 'supervisor' };
const PHONE = '+15550107777';
const HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2"> I was charged twice for my May invoice';

let server;
let browser;
let admin;
const watchers = [];

before(async () => {
  server = await startServer();
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  for (const a of [SAM, ALEX, SUE]) await createAgent(server.base, admin, { role: 'agent', ...a });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function page(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const p = await context.newPage();
  watchers.push({ name: `page ${watchers.length}`, watcher: watch(p) });
  return p;
}

/** Logs in through the form, from the keyboard. */
async function signIn(p, who) {
  await p.goto(`${server.base}/`);
  await p.getByTestId('login-email').fill(who.email);
  await p.keyboard.press('Tab');
  await p.keyboard.type(who.password);
  await p.keyboard.press('Enter');
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
}

async function setPresence(p, value) {
  await p.getByTestId('presence-select').selectOption(value);
}

async function wallboardRow(p, queue) {
  const row = p.locator(`[data-testid="wallboard-queue"][data-queue="${queue}"]`);
  await row.waitFor({ timeout: 15_000 });
  return row;
}

test('a customer goes from webchat to SMS in one conversation, with a warm transfer', async () => {
  // The supervisor watches the wallboard from the start.
  const sue = await page();
  await signIn(sue, SUE);
  await sue.goto(`${server.base}/#/wallboard`);
  await sue.getByTestId('wallboard').waitFor();

  // The customer chats on the demo site's widget.
  const customer = await page({ width: 390, height: 844 });
  await customer.goto(`${server.base}/demo`);
  await customer.getByTestId('webchat-launcher').click();
  const chat = customer.frameLocator('iframe[title="Chat with us"]');
  await chat.getByTestId('webchat-name').fill('Jane Doe');
  await chat.getByTestId('webchat-email').fill('jane.doe@example.com');
  await chat.getByTestId('webchat-start').click();
  await chat.getByTestId('webchat-body').fill(HOSTILE);
  await chat.getByTestId('webchat-send').click();
  await chat.locator('[data-testid="webchat-message"][data-direction="out"]').first().waitFor();
  await screenshot(customer, 'webchat-customer-waiting');

  // Nobody is available: the wallboard shows it waiting in the chat queue.
  const queueRow = await wallboardRow(sue, 'chat');
  await waitFor(async () => (await queueRow.getByTestId('wallboard-waiting').textContent()).trim() === '1', {
    what: 'the wallboard to count 1 waiting',
  });
  await screenshot(sue, 'wallboard-one-waiting');

  // Sam goes available and gets the offer, with its countdown.
  const sam = await page();
  await signIn(sam, SAM);
  await setPresence(sam, 'available');
  const offer = sam.getByTestId('offer').first();
  await offer.waitFor({ timeout: 15_000 });
  assert.match(await offer.textContent(), /Jane Doe/);
  const countdown = await offer.getByTestId('offer-countdown').textContent();
  assert.match(countdown, /\d/, `countdown: ${countdown}`);
  await screenshot(sam, 'desk-offer');
  await offer.getByTestId('offer-accept').click();

  // The conversation opens; the hostile message is text, nothing ran.
  const timeline = sam.getByTestId('timeline');
  await timeline.getByText('I was charged twice', { exact: false }).first().waitFor();
  const shown = await timeline.textContent();
  assert.ok(shown.includes('<script>window.__pwned = 1</script>'), 'the markup shows as text');
  assert.equal(await timeline.locator('script, img').count(), 0, 'no element was made from customer text');
  assert.equal(await sam.evaluate(() => window.__pwned), undefined);

  // The wallboard: nobody waiting any more, Sam carries one webchat.
  await waitFor(async () => (await queueRow.getByTestId('wallboard-waiting').textContent()).trim() === '0', {
    what: 'the wallboard to count 0 waiting',
  });
  const samId = (await api(server.base, admin, 'GET', '/api/v1/agents')).agents.find((a) => a.email === SAM.email).id;
  const samRow = sue.locator(`[data-testid="wallboard-agent"][data-agent="${samId}"]`);
  await waitFor(async () => /webchat\s*1/.test(await samRow.textContent()), { what: "Sam's load on the wallboard" });

  // Sam replies; the customer reads it.
  await sam.getByTestId('reply-channel').waitFor();
  await sam.getByTestId('reply-body').fill('Hi Jane, I checked your account and see both charges. I will refund one by tomorrow.');
  await sam.getByTestId('reply-send').click();
  await chat.getByText('I will refund one by tomorrow', { exact: false }).waitFor();
  assert.equal(await customer.evaluate(() => window.__pwned), undefined);
  await screenshot(customer, 'webchat-customer-answered');

  // The customer's phone is on their contact; they text from it.
  const mine = await api(server.base, await login(server.base, SAM.email, SAM.password), 'GET', '/api/v1/agents/me/conversations');
  const { contact, conversation } = mine.conversations[0];
  await api(server.base, admin, 'POST', `/api/v1/contacts/${contact.id}/identities`, { kind: 'phone', value: PHONE });
  await signedTwilioSms(server.base, { from: PHONE, body: 'Texting you as well: any news on the refund?' });
  await timeline.getByText('any news on the refund?', { exact: false }).waitFor({ timeout: 15_000 });
  const channels = await timeline
    .locator('[data-testid="timeline-event"][data-kind="message"]')
    .evaluateAll((els) => [...new Set(els.map((e) => e.dataset.channel))]);
  assert.deepEqual(channels.sort(), ['sms', 'webchat'], `one timeline, both channels: ${channels}`);
  assert.equal(await timeline.locator('[data-testid="timeline-event"][data-kind="channel_switch"]').count(), 1);
  const items = sam.getByTestId('conversation-item');
  await waitFor(async () => /sms/i.test(await items.first().getByTestId('conversation-channels').textContent()), {
    what: 'the conversation list to show both channels',
  });
  assert.equal(await items.count(), 1, 'one conversation, not two');
  await sam.getByTestId('customer-identities').getByText(PHONE).waitFor();
  const replyChannels = await sam.getByTestId('reply-channel').locator('option').allTextContents();
  assert.ok(replyChannels.some((t) => /sms/i.test(t)) && replyChannels.some((t) => /webchat/i.test(t)), `${replyChannels}`);
  await screenshot(sam, 'desk-conversation');

  // Alex is available; Sam transfers warm, with the drafted context.
  const alex = await page();
  await signIn(alex, ALEX);
  await setPresence(alex, 'available');
  await sam.getByTestId('transfer-open').click();
  const reason = sam.getByTestId('transfer-reason');
  await waitFor(async () => (await reason.inputValue()).length > 0, { what: 'the drafted reason' });
  assert.match(await sam.getByTestId('transfer-commitments').inputValue(), /refund one by tomorrow/);
  const alexOption = await sam
    .getByTestId('transfer-target')
    .locator('option', { hasText: 'Alex Agent' })
    .getAttribute('value');
  await sam.getByTestId('transfer-target').selectOption(alexOption);
  await reason.fill('Double charge on the May invoice; refund promised by tomorrow');
  await screenshot(sam, 'desk-transfer-dialog');
  await sam.getByTestId('transfer-confirm').click();

  // Alex sees the context before accepting, and pinned after.
  const alexOffer = alex.getByTestId('offer').first();
  await alexOffer.waitFor({ timeout: 15_000 });
  const handoff = alexOffer.getByTestId('offer-handoff');
  await handoff.getByText('Double charge on the May invoice', { exact: false }).waitFor();
  await screenshot(alex, 'desk-transfer-offer');
  await alexOffer.getByTestId('offer-accept').click();
  await alex.getByTestId('handoff-pinned').getByText('Double charge on the May invoice', { exact: false }).waitFor();
  const report = await api(server.base, admin, 'GET', '/api/v1/reports/context-transfer');
  assert.equal(report.with_context, 1);

  // Alex resolves with a disposition.
  await alex.getByTestId('resolve-open').click();
  await alex.getByTestId('disposition-select').selectOption('billing_adjusted');
  await alex.getByTestId('resolve-confirm').click();
  await waitFor(async () => {
    const c = await api(server.base, admin, 'GET', `/api/v1/conversations/${conversation.id}`);
    return c.status === 'resolved' && c.timeline.some((e) => e.kind === 'disposition');
  }, { what: 'the conversation to be resolved with a disposition' });

  // Accepted and resolved: the wallboard is back to nobody waiting.
  await waitFor(async () => (await queueRow.getByTestId('wallboard-waiting').textContent()).trim() === '0', {
    what: 'the wallboard to count 0 waiting after the transfer was accepted',
  });

  // Every control on each screen has a name.
  for (const [name, p] of [['desk', sam], ['wallboard', sue], ['desk (Alex)', alex]]) {
    assert.deepEqual(await unnamedControls(p), [], `${name}: controls without an accessible name`);
  }
  const frame = customer.frames().find((f) => f.url().includes('/webchat/'));
  assert.deepEqual(await unnamedControls(frame), [], 'webchat: controls without an accessible name');
  await screenshot(sue, 'wallboard');

  for (const { name, watcher } of watchers) {
    const csp = watcher.problems().filter((m) => /Content Security Policy|Refused to/i.test(m));
    assert.deepEqual(csp, [], `${name}: CSP violations`);
  }
});

test('the desk and admin pages work at phone size and on a laptop', async () => {
  const p = await page({ width: 390, height: 844 });
  await signIn(p, { email: server.adminEmail, password: server.adminPassword });
  await screenshot(p, 'desk-phone');
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling at phone size (page is ${width}px wide)`);
  assert.deepEqual(await unnamedControls(p), []);

  const laptop = await page();
  await signIn(laptop, { email: server.adminEmail, password: server.adminPassword });
  await laptop.goto(`${server.base}/#/admin/plugins`);
  await laptop.getByText('sms-twilio').first().waitFor();
  const text = await laptop.locator('body').textContent();
  assert.ok(!text.includes('demo-auth-token'), 'secrets are never shown');
  await screenshot(laptop, 'admin-plugins');
  assert.deepEqual(await unnamedControls(laptop), []);
});
