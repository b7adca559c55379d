// Surveys end to end in headless Chromium against the real binary and the real e-mail
// connector (plugins/dist/email) with provider `postmark`, pointed at a Postmark
// stand-in on 127.0.0.1 that checks the server token and records every send.
//
// - an admin sets the `email` queue to ask CSAT then CES (PUT /api/v1/queues/email/survey;
//   a bad setting is refused with every problem named);
// - Ann's mail arrives through the connector's real webhook; the agent accepts it and
//   resolves it: Postmark receives one mail to Ann with a link to the public page;
// - Ann opens the link (no login): the page runs under a policy with no script, shows
//   both questions as 1–5 and 1–7 buttons and a comment box, and every control has a
//   name; sending with no choice is stopped by the browser; she picks 4 and 6, writes a
//   comment and sends: "Thank you"; the survey is answered in the API with her comment;
// - a forged link shows "not valid" and asks nothing.
// Webchat: the `chat` queue asks CSAT; Carl chats, Sue answers and resolves: the rating
// card appears in Carl's open chat; sending with no score says so; a reload keeps the
// card; he picks 5 with a comment: "Thank you", the survey is answered, and after
// another reload the card is gone.
// Screenshots go to tests/browser/artifacts/survey-*.png.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import { launch, screenshot, unnamedControls, watch } from '../lib/browser.mjs';
import {
  inboundMail as postmarkMail, installPostmarkEmail, postmarkInbound, startPostmark,
} from '../lib/postmark.mjs';
import { ApiError, api, createAgent, login, startServer, waitFor } from '../lib/server.mjs';

const AGENT = { email: 'sue@surveys.test', password: 'sue-password-1', name: 'Sue Agent' };
const ANN = { email: 'ann@example.com', name: 'Ann Example' };
const SHOP = 'help@shop.example';
const POSTMARK_TOKEN = 'survey-postmark-server-token-4b2d';
const HOOK_USER = 'postmark-hook';
const HOOK_PASSWORD = 'survey-postmark-hook-pass-17';

let server;
let browser;
let admin;
let sue;
let postmark;

/** Ann writes to the shop: Postmark's inbound webhook for a plain-text mail. */
async function inbound(subject, text) {
  const mail = postmarkMail({ from: ANN, shop: SHOP, messageId: `survey-${randomUUID()}@mail.example.com`, subject, text });
  const res = await postmarkInbound(server.base, mail, { user: HOOK_USER, password: HOOK_PASSWORD });
  assert.equal(res.status, 200, res.text);
}

/** The mails the shop sent through the stand-in. */
function sentMails() {
  return postmark.requests.filter((r) => r.status === 200).map((r) => r.json);
}

before(async () => {
  postmark = await startPostmark(POSTMARK_TOKEN);
  server = await startServer();
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  await createAgent(server.base, admin, AGENT);
  sue = await login(server.base, AGENT.email, AGENT.password);
  await installPostmarkEmail(server, admin, postmark, {
    shop: SHOP,
    token: POSTMARK_TOKEN,
    hook: { user: HOOK_USER, password: HOOK_PASSWORD },
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await postmark?.close();
});

test('an e-mailed survey link: the public page takes CSAT, CES and a comment, without login', async () => {
  // Only an admin sets surveys, and a bad setting names every problem.
  await assert.rejects(
    api(server.base, sue, 'PUT', '/api/v1/queues/email/survey', { surveys: ['csat'] }),
    (e) => e instanceof ApiError && e.status === 403,
  );
  await assert.rejects(
    api(server.base, admin, 'PUT', '/api/v1/queues/email/survey', { surveys: ['csat', 'stars'], expire_secs: 5 }),
    (e) => e instanceof ApiError && e.status === 400 && /unknown survey \W{0,2}stars/.test(e.message) && /expire_secs/.test(e.message),
  );
  const saved = await api(server.base, admin, 'PUT', '/api/v1/queues/email/survey', { surveys: ['csat', 'ces'] });
  assert.deepEqual(saved.surveys, ['csat', 'ces']);

  // Ann writes; Sue takes it and resolves it.
  await api(server.base, sue, 'PUT', '/api/v1/agents/me/presence', { status: 'available' });
  await inbound('Where is order 2201?', 'Hello, my order 2201 has not arrived yet.');
  const offer = await waitFor(async () => (await api(server.base, sue, 'GET', '/api/v1/agents/me/offers')).offers?.[0], {
    timeoutMs: 20_000, what: 'an offer for Sue',
  });
  await api(server.base, sue, 'POST', `/api/v1/reservations/${offer.reservation.id}/accept`);
  const conversation = offer.conversation_id ?? offer.conversation?.id;
  const { dispositions } = await api(server.base, sue, 'GET', '/api/v1/dispositions');
  await api(server.base, sue, 'POST', `/api/v1/conversations/${conversation}/resolve`, { disposition: dispositions[0].code });

  // Postmark receives the survey mail, with the link.
  const mail = await waitFor(() => sentMails().find((m) => /\/survey\//.test(m.TextBody ?? '')), {
    timeoutMs: 20_000, what: 'the survey mail at Postmark',
  });
  assert.match(mail.To, /ann@example\.com/);
  const link = /(https?:\/\/\S+\/survey\/\S+)/.exec(mail.TextBody)[1];
  const { surveys: sent } = await api(server.base, sue, 'GET', `/api/v1/conversations/${conversation}/surveys`);
  assert.deepEqual(sent.map((s) => [s.kind, s.mode, s.status]), [['csat', 'link', 'sent'], ['ces', 'link', 'sent']]);

  // Ann opens it: no login, no script, every control named.
  const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
  const p = await context.newPage();
  const seen = watch(p);
  const pagePath = new URL(link).pathname;
  const response = await p.goto(`${server.base}${pagePath}`);
  assert.equal(response.status(), 200);
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, /default-src 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(await p.locator('script').count(), 0);
  assert.equal(await p.locator('input[name="csat"]').count(), 5);
  assert.equal(await p.locator('input[name="ces"]').count(), 7);
  assert.deepEqual(await unnamedControls(p), []);
  await screenshot(p, 'survey-page');

  // Sending with nothing chosen: the browser stops it, nothing is recorded.
  await p.getByRole('button', { name: 'Send' }).click();
  assert.equal(new URL(p.url()).pathname, pagePath);
  const { surveys: still } = await api(server.base, sue, 'GET', `/api/v1/conversations/${conversation}/surveys`);
  assert.ok(still.every((s) => s.status === 'sent'));

  await p.locator('#q-csat label.point', { hasText: /^4$/ }).click();
  await p.locator('#q-ces label.point', { hasText: /^6$/ }).click();
  await p.getByLabel(/Anything you want to add/).fill('Sue found the parcel in a day. Thanks!');
  await screenshot(p, 'survey-page-filled');
  await p.getByRole('button', { name: 'Send' }).click();
  await p.getByText('Thank you! Your answer was recorded.').waitFor();
  await screenshot(p, 'survey-page-thanks');
  assert.deepEqual(seen.problems(), []);

  const { surveys: answered } = await api(server.base, sue, 'GET', `/api/v1/conversations/${conversation}/surveys`);
  assert.deepEqual(answered.map((s) => [s.kind, s.status, s.score]), [['csat', 'answered', 4], ['ces', 'answered', 6]]);
  assert.equal(answered[0].comment, 'Sue found the parcel in a day. Thanks!');

  // Opening the link again says thank you; a forged one opens nothing.
  await p.goto(`${server.base}${pagePath}`);
  await p.getByText('Thank you! Your answer was recorded.').waitFor();
  const forged = await p.goto(`${server.base}${pagePath.slice(0, -1)}${pagePath.endsWith('0') ? '1' : '0'}`);
  assert.equal(forged.status(), 403);
  await p.getByText('this survey link is not valid').waitFor();
  assert.equal(await p.locator('input').count(), 0);
  await context.close();
});

test('the webchat rating card: shown after the resolve, answered in the chat, kept across a reload', async () => {
  await api(server.base, admin, 'PUT', '/api/v1/queues/chat/survey', { surveys: ['csat'] });
  await api(server.base, sue, 'PUT', '/api/v1/agents/me/presence', { status: 'available' });

  const context = await browser.newContext({ viewport: { width: 400, height: 720 } });
  const p = await context.newPage();
  const seen = watch(p);
  await p.goto(`${server.base}/webchat/`);
  await p.getByTestId('webchat-name').fill('Carl Card');
  await p.getByTestId('webchat-start').click();
  await p.getByTestId('webchat-body').fill('Can I change my delivery address?');
  await p.getByTestId('webchat-send').click();
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });

  const offer = await waitFor(async () => (await api(server.base, sue, 'GET', '/api/v1/agents/me/offers')).offers?.[0], {
    timeoutMs: 20_000, what: 'an offer for Sue',
  });
  await api(server.base, sue, 'POST', `/api/v1/reservations/${offer.reservation.id}/accept`);
  const conversation = offer.conversation_id ?? offer.conversation?.id;
  await api(server.base, sue, 'POST', `/api/v1/conversations/${conversation}/messages`, { body: 'Done, the new address is saved.' });
  const { dispositions } = await api(server.base, sue, 'GET', '/api/v1/dispositions');
  await api(server.base, sue, 'POST', `/api/v1/conversations/${conversation}/resolve`, { disposition: dispositions[0].code });

  // The card arrives on the open socket.
  const card = p.getByTestId('survey-card');
  await card.waitFor({ timeout: 15_000 });
  assert.equal(await card.locator('input[type="radio"]').count(), 5);
  assert.deepEqual(await unnamedControls(p), []);
  // Nothing chosen: the card says so, nothing is sent.
  await p.getByTestId('survey-send').click();
  await p.getByTestId('survey-error').filter({ hasText: 'Choose a score first.' }).waitFor();

  // A reload keeps the card (it is read back from the host).
  await p.reload();
  await p.getByTestId('survey-card').waitFor({ timeout: 15_000 });
  await p.getByTestId('survey-csat').getByRole('radio', { name: '5, Very satisfied' }).click();
  await p.getByTestId('survey-comment').fill('Quick and friendly');
  await screenshot(p, 'survey-webchat-card');
  await p.getByTestId('survey-send').click();
  await p.getByTestId('survey-thanks').waitFor();
  await screenshot(p, 'survey-webchat-thanks');
  assert.deepEqual(seen.problems(), []);

  const { surveys } = await api(server.base, sue, 'GET', `/api/v1/conversations/${conversation}/surveys`);
  assert.deepEqual(surveys.map((s) => [s.kind, s.mode, s.status, s.score, s.comment]), [['csat', 'card', 'answered', 5, 'Quick and friendly']]);
  // After a reload the card is gone.
  await p.reload();
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
  assert.equal(await p.getByTestId('survey-card').count(), 0);
  await context.close();
});

test('the admin queues page sets what a queue asks', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await context.newPage();
  const seen = watch(p);
  await p.goto(`${server.base}/`);
  await p.getByTestId('login-email').fill(server.adminEmail);
  await p.getByTestId('login-password').fill(server.adminPassword);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
  await p.goto(`${server.base}/#/admin/queues`);
  const card = p.getByRole('form', { name: 'Surveys after a resolve' });
  await card.waitFor();
  // The e-mail queue's settings from the first test are shown.
  await p.getByTestId('survey-queue').selectOption('email');
  assert.equal(await p.getByTestId('survey-kind-csat').isChecked(), true);
  assert.equal(await p.getByTestId('survey-kind-ces').isChecked(), true);
  assert.equal(await p.getByTestId('survey-kind-nps').isChecked(), false);
  await p.getByTestId('survey-kind-nps').check();
  await p.getByTestId('survey-reminder').fill('90');
  await p.getByTestId('survey-expire').fill('48');
  assert.equal(await p.getByTestId('survey-voice').isChecked(), false, 'calls are not surveyed unless offered');
  await p.getByTestId('survey-voice').check();
  await card.getByRole('button', { name: 'Save surveys' }).click();
  await p.locator('tr[data-survey-queue="email"]').filter({ hasText: 'CSAT, CES, NPS' }).filter({ hasText: 'Keypad after the call' }).waitFor();
  assert.deepEqual(await unnamedControls(p), []);
  await screenshot(p, 'survey-admin');
  const saved = await api(server.base, admin, 'GET', '/api/v1/queues/email/survey');
  assert.deepEqual(saved.surveys, ['csat', 'ces', 'nps']);
  assert.equal(saved.reminder_secs, 5400);
  assert.equal(saved.expire_secs, 172800);
  assert.equal(saved.voice, true);
  assert.deepEqual(seen.problems(), []);
  await context.close();
});
