// Smoke test: the server starts, serves its pages with a Content-Security-Policy, and
// the webchat widget on the demo page opens the chat and carries a message.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launch, screenshot, watch } from '../lib/browser.mjs';
import { startServer } from '../lib/server.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('healthz answers', async () => {
  const res = await fetch(`${server.base}/healthz`);
  assert.equal(res.status, 200);
});

test('the pages answer 200 with a Content-Security-Policy', async () => {
  for (const path of ['/', '/webchat/', '/demo', '/widget.js']) {
    const res = await fetch(server.base + path);
    assert.equal(res.status, 200, path);
    const csp = res.headers.get('content-security-policy');
    assert.ok(csp && csp.includes("script-src 'self'"), `${path}: ${csp}`);
    assert.ok(!csp.includes('unsafe-inline'), `${path}: ${csp}`);
  }
});

test('the widget on /demo opens the chat and sends a message', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const watcher = watch(page);
  await page.goto(`${server.base}/demo`);

  const launcher = page.getByTestId('webchat-launcher');
  await launcher.waitFor();
  assert.equal(await launcher.getAttribute('aria-label'), 'Chat with us');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');

  await launcher.click();
  assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
  const iframe = page.locator('iframe[title="Chat with us"]');
  await iframe.waitFor({ state: 'visible' });
  const chat = page.frameLocator('iframe[title="Chat with us"]');

  await chat.getByTestId('webchat-name').fill('Jane Smoke');
  await chat.getByTestId('webchat-start').click();
  await chat.getByTestId('webchat-body').fill('Hello <b>there</b>');
  await chat.getByTestId('webchat-send').click();

  const mine = chat.locator('[data-testid="webchat-message"][data-direction="in"]');
  await mine.first().waitFor();
  assert.equal(await mine.first().locator('.wc-bubble').textContent(), 'Hello <b>there</b>');
  await chat.locator('[data-testid="webchat-message"][data-direction="in"][data-status="sent"]').first().waitFor();
  await chat.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor();
  await screenshot(page, 'smoke-demo-webchat');

  // Escape closes the panel and gives the focus back to the launcher.
  await chat.getByTestId('webchat-body').press('Escape');
  await iframe.waitFor({ state: 'hidden' });
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');

  assert.deepEqual(watcher.problems(), []);
  await page.close();
});
