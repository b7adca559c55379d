// The CRM in the web client, end to end in headless Chromium against the real binary
// and the real crm-hubspot plugin (plugins/dist/crm-hubspot) pointed at a HubSpot
// stand-in on 127.0.0.1 that checks the private-app token.
//
// - Jane texts from a number HubSpot holds as "(415) 555-0100": Sam takes the
//   conversation and the customer panel's CRM card shows her HubSpot record (a link
//   into HubSpot, company and owner), the VIP badge the CRM's flag set, and the e-mail
//   HubSpot knows, offered with a Link button; linking it adds the identity.
// - A stranger texts: the card says HubSpot does not know them and offers "Create in
//   HubSpot"; the click creates the record and the card shows it.
// - The admin's CRM page: what each CRM receives (checkboxes, saved), and a write-back
//   HubSpot refused (400) listed as a dead letter whose Retry button sends it again.
// Screenshots go to tests/browser/artifacts/crm-*.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launch, screenshot, unnamedControls, watch } from '../lib/browser.mjs';
import { installHubSpot, startHubSpot } from '../lib/hubspot.mjs';
import { api, createAgent, login, signedTwilioSms, startServer, waitFor } from '../lib/server.mjs';

const TOKEN = 'pat-na1-browser-hubspot-token';
const SAM = { email: 'sam@crm.test', password: 'sam-password-1', name: 'Sam Agent' };
const JANE = '+14155550100';
const STRANGER = '+14155550142';

let server;
let browser;
let admin;
let hubspot;

before(async () => {
  hubspot = await startHubSpot(TOKEN, [{
    id: '501',
    properties: {
      firstname: 'Jane', lastname: 'Roe', phone: '(415) 555-0100', email: 'jane.roe@example.com',
      vip: 'true', company: 'Acme Corp', hubspot_owner_id: '77',
    },
  }]);
  server = await startServer();
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  await createAgent(server.base, admin, SAM);
  await installHubSpot(server, admin, hubspot, TOKEN);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await hubspot?.close();
});

async function page(viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ viewport });
  const p = await context.newPage();
  return { p, seen: watch(p) };
}

async function signIn(p, who) {
  await p.goto(`${server.base}/`);
  await p.getByTestId('login-email').fill(who.email);
  await p.getByTestId('login-password').fill(who.password);
  await p.keyboard.press('Enter');
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
}

/** Sam accepts the next offer in the desk. */
async function acceptOffer(p) {
  const offer = p.getByTestId('offer').first();
  await offer.waitFor({ timeout: 20_000 });
  await offer.getByTestId('offer-accept').click();
}

test('the CRM card: the record, the VIP flag, an offered identity, and create in CRM', async () => {
  const { p, seen } = await page();
  await signIn(p, SAM);
  await p.getByTestId('presence-select').selectOption('available');

  await signedTwilioSms(server.base, { from: JANE, body: 'My order 7781 is late' });
  await acceptOffer(p);
  const card = p.getByTestId('crm-card');
  const record = card.locator('[data-testid="crm-record"][data-plugin="crm-hubspot"]');
  await record.waitFor({ timeout: 15_000 });
  assert.equal(await record.getByTestId('crm-link').getAttribute('href'), 'https://app.hubspot.com/contacts/4242/record/0-1/501');
  assert.match(await record.textContent(), /Acme Corp/);
  await p.getByTestId('customer-name').filter({ hasText: 'Jane Roe' }).waitFor();
  await p.locator('.cust-tags .badge-vip').waitFor();
  assert.deepEqual(await unnamedControls(p), []);
  await screenshot(p, 'crm-card');

  // The e-mail HubSpot holds is offered; linking it makes it Jane's.
  await record.getByTestId('crm-link-identity').click();
  await p.getByTestId('customer-identities').getByText('jane.roe@example.com').waitFor({ timeout: 10_000 });
  assert.equal(await p.getByTestId('crm-link-identity').count(), 0, 'nothing left to offer');

  // A stranger: unknown to HubSpot, created from the card.
  await signedTwilioSms(server.base, { from: STRANGER, body: 'Do you ship to Canada?' });
  await acceptOffer(p);
  await p.getByTestId('customer-identities').getByText(STRANGER).waitFor({ timeout: 15_000 });
  await p.getByTestId('crm-unknown').waitFor({ timeout: 15_000 });
  await screenshot(p, 'crm-card-unknown');
  await p.getByTestId('crm-create').filter({ hasText: 'Create in HubSpot' }).click();
  await p.locator('[data-testid="crm-record"][data-plugin="crm-hubspot"]').waitFor({ timeout: 15_000 });
  const created = hubspot.contacts.find((c) => c.properties.phone === STRANGER);
  assert.ok(created, 'created in HubSpot');
  assert.match(await p.getByTestId('crm-card').textContent(), new RegExp(`Record ${created.id}|Open record ${created.id}`));
  await screenshot(p, 'crm-card-created');
  assert.deepEqual(seen.problems(), []);
});

test('the admin CRM page: what each CRM receives, and a dead letter sent again', async () => {
  const { p, seen } = await page();
  await signIn(p, { email: server.adminEmail, password: server.adminPassword });
  await p.goto(`${server.base}/#/admin/crm`);
  const row = p.locator('[data-testid="crm-settings"] tr[data-crm="crm-hubspot"]');
  await row.waitFor({ timeout: 15_000 });
  assert.equal(await row.locator('input[data-event="messages"]').isChecked(), false, 'messages are off by default');
  assert.equal(await row.locator('input[data-event="notes"]').isChecked(), true);
  await row.locator('input[data-event="messages"]').check();
  await row.getByTestId('crm-save').click();
  await waitFor(async () => (await api(server.base, admin, 'GET', '/api/v1/crm/settings')).crms[0].messages === true, {
    what: 'messages switched on',
  });

  // HubSpot refuses a note (400): it becomes a dead letter the page lists.
  const { conversations } = await api(server.base, admin, 'GET', '/api/v1/conversations?limit=50');
  assert.ok(conversations.length > 0);
  const janes = conversations[0];
  hubspot.failWrites([400]);
  await api(server.base, admin, 'POST', `/api/v1/conversations/${janes.id}/notes`, { body: 'Refund approved by finance' });
  await waitFor(async () => (await api(server.base, admin, 'GET', '/api/v1/crm/activities?status=dead')).activities.length === 1, {
    timeoutMs: 20_000, what: 'the dead letter',
  });
  await p.reload();
  const dead = p.getByTestId('crm-dead');
  await dead.waitFor({ timeout: 15_000 });
  assert.match(await dead.textContent(), /scripted failure/);
  assert.deepEqual(await unnamedControls(p), []);
  await screenshot(p, 'crm-admin');
  await dead.getByTestId('crm-retry').first().click();
  await p.getByTestId('crm-no-dead').waitFor({ timeout: 15_000 });
  await waitFor(() => hubspot.engagements.find((e) => JSON.stringify(e.json).includes('Refund approved by finance')), {
    timeoutMs: 20_000, what: 'the note in HubSpot',
  });
  await screenshot(p, 'crm-admin-retried');
  assert.deepEqual(seen.problems(), []);
});
