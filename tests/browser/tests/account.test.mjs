// Sessions from the web client, in headless Chromium against the real binary:
// - an admin disables an agent on the Agents page: the agent's open desk returns to
//   sign-in at once, and the agent cannot sign in until enabled again;
// - an agent changes their password in the Account dialog: a weak one is refused
//   with the reason, a good one ends their other session (that tab returns to
//   sign-in) and only the new password works;
// - "Sign out everywhere" ends every session, this one included.
// Screenshots go to tests/browser/artifacts/.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launch, screenshot, unnamedControls, watch } from '../lib/browser.mjs';
import { ApiError, createAgent, login, startServer } from '../lib/server.mjs';

const PAT = { email: 'pat@account.test', password: 'pat-password-1', name: 'Pat Agent' };
const NEW_PASSWORD = 'a-much-longer-pass-2';

let server;
let browser;
let admin;

before(async () => {
  server = await startServer();
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  await createAgent(server.base, admin, { role: 'agent', ...PAT });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function page() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p = await context.newPage();
  watch(p);
  return p;
}

async function signIn(p, who) {
  await p.goto(`${server.base}/`);
  await p.getByTestId('login-email').fill(who.email);
  await p.getByTestId('login-password').fill(who.password);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
}

async function signedOut(p) {
  await p.getByTestId('login-form').waitFor({ timeout: 10_000 });
}

async function refused(email, password) {
  try {
    await login(server.base, email, password);
  } catch (e) {
    assert.ok(e instanceof ApiError, String(e));
    return e.status;
  }
  return 200;
}

test('an admin disables an agent: their desk signs out at once; enabling lets them back', async () => {
  const pat = await page();
  await signIn(pat, PAT);
  const boss = await page();
  await signIn(boss, { email: server.adminEmail, password: server.adminPassword });
  await boss.goto(`${server.base}/#/admin/agents`);
  const row = boss.locator('[data-testid="admin-agent"]').filter({ hasText: PAT.email });
  await row.getByTestId('agent-state').filter({ hasText: 'Active' }).waitFor();
  const mine = boss.locator('[data-testid="admin-agent"]').filter({ hasText: server.adminEmail });
  assert.equal(await mine.getByTestId('agent-disable').count(), 0, 'no one disables themselves');
  assert.deepEqual(await unnamedControls(boss), []);
  await screenshot(boss, 'admin-agents');

  await row.getByTestId('agent-disable').click();
  await row.getByTestId('agent-state').filter({ hasText: 'Disabled' }).waitFor();
  await signedOut(pat);
  assert.equal(await refused(PAT.email, PAT.password), 401, 'a disabled agent cannot sign in');
  await screenshot(boss, 'admin-agents-disabled');

  await row.getByTestId('agent-enable').click();
  await row.getByTestId('agent-state').filter({ hasText: 'Active' }).waitFor();
  await signIn(pat, PAT);
});

test('an agent changes their password in the Account dialog; other sessions end', async () => {
  const here = await page();
  await signIn(here, PAT);
  const elsewhere = await page();
  await signIn(elsewhere, PAT);

  await here.getByTestId('account-open').click();
  const dialog = here.getByRole('dialog', { name: 'My account' });
  await dialog.waitFor();
  assert.deepEqual(await unnamedControls(here), []);
  await dialog.getByTestId('account-current').fill(PAT.password);
  await dialog.getByTestId('account-new').fill('password');
  await dialog.getByTestId('account-change').click();
  await dialog.getByRole('alert').filter({ hasText: /password/i }).waitFor();
  await screenshot(here, 'account-weak-password');

  await dialog.getByTestId('account-new').fill(NEW_PASSWORD);
  await dialog.getByTestId('account-change').click();
  await dialog.waitFor({ state: 'detached' });
  await signedOut(elsewhere);
  // This tab carries on.
  await here.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor();
  assert.equal(await refused(PAT.email, PAT.password), 401, 'the old password no longer works');
  assert.equal(await refused(PAT.email, NEW_PASSWORD), 200);

  // Signing out everywhere ends this session too.
  await here.getByTestId('account-open').click();
  await here.getByTestId('account-logout-all').click();
  await signedOut(here);
  await screenshot(here, 'account-signed-out-everywhere');
});
