// The softphone on a cluster: two nodes of the real binary on one PostgreSQL database
// and one NATS JetStream stream. The agent's desk is served by node B, so its socket
// and its softphone's WebRTC connection start on B; sipp calls node A, which carries
// the call. A asks the softphone over (`softphone.move`), the desk negotiates again
// with offers naming A, B hands them to A, and the agent answers in Chromium and hears
// the caller — audio only A has — through the connection to A; the hang-up reaches
// sipp. The screenshot of B's desk during the call goes to tests/browser/artifacts/.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';

import { launch, screenshot, watch } from '../lib/browser.mjs';
import { api, createAgent, login, startServer, waitFor } from '../lib/server.mjs';
import { CALLER, inboundAudio, recordPeerConnections, signInAvailable, startCaller } from '../lib/voice.mjs';

const AGENT = { email: 'wes@cluster.test', password: 'wes-password-1', name: 'Wes Agent' };
const PG = process.env.SWITCHBOARD_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432';
const NATS = process.env.SWITCHBOARD_TEST_NATS_URL || 'nats://127.0.0.1:4222';
const DATABASE = `sb_browser_${randomBytes(6).toString('hex')}`;

const run = promisify(execFile);
const psql = (sql) => run('psql', [`${PG}/postgres`, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql]);

let a;
let b;
let browser;
let sippDir;

before(async () => {
  await psql(`CREATE DATABASE ${DATABASE}`);
  const shared = {
    SWITCHBOARD_DATABASE_URL: `${PG}/${DATABASE}`,
    SWITCHBOARD_NATS_URL: NATS,
    SWITCHBOARD_NATS_STREAM: `sbbrowser-${randomBytes(6).toString('hex')}`,
    SWITCHBOARD_SECRET_KEY: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff',
    SWITCHBOARD_FILE_STORE: 'database',
  };
  // A first: it creates the demo's admin and plugins, and leads routing.
  a = await startServer({
    env: { ...shared, SWITCHBOARD_NODE_ID: 'a' },
    setup: [['trunk', 'add', '--name', 'loopback', '--address', '127.0.0.1:5999']],
  });
  b = await startServer({ env: { ...shared, SWITCHBOARD_NODE_ID: 'b' }, expectAdmin: false });
  assert.ok(a.sip, `node A printed no SIP address; output:\n${a.output()}`);
  const admin = await login(a.base, a.adminEmail, a.adminPassword);
  await createAgent(a.base, admin, AGENT);
  browser = await launch();
  sippDir = await mkdtemp(path.join(tmpdir(), 'switchboard-sipp-'));
});

after(async () => {
  await browser?.close();
  await b?.stop();
  await a?.stop();
  if (sippDir) await rm(sippDir, { recursive: true, force: true });
  await psql(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`).catch(() => {});
});

test('an agent on node B answers a call node A carries, and hears the caller', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await recordPeerConnections(context);
  const p = await context.newPage();
  const watcher = watch(p);
  // What the desk sends on its socket, to see the offer that names node A.
  const sent = [];
  p.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(String(f.payload))));

  // Wes signs in on B and goes available; the audio link comes up with B.
  await signInAvailable(p, b.base, AGENT);
  const offers = () => sent.map((text) => { try { return JSON.parse(text); } catch { return {}; } })
    .filter((m) => m.type === 'webrtc.offer');
  assert.equal(offers().length, 1, 'one offer, to B');
  assert.equal(offers()[0].node, undefined);

  // sipp calls node A.
  const caller = await startCaller(a.sip, sippDir);
  t.after(() => caller.stop());
  const untilSipp = caller.until;

  // B's desk rings, and the softphone reconnects to A.
  const offer = p.getByTestId('offer').first();
  await untilSipp(offer.waitFor({ timeout: 20_000 }));
  assert.match(await offer.textContent(), /Incoming call/);
  await untilSipp(waitFor(async () => offers().some((m) => m.node === 'a'), {
    timeoutMs: 15_000, what: 'an offer naming node A',
  }));
  await untilSipp(p.locator('[data-testid="softphone-webrtc"][data-state="connected"]').waitFor({ timeout: 20_000 }));

  // Wes answers; the caller's voice, which only A has, plays in the tab.
  await p.getByTestId('softphone-answer').click();
  await untilSipp(p.getByTestId('softphone-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 }));
  const heard = await untilSipp(
    waitFor(async () => {
      const got = await inboundAudio(p);
      return got.packets >= 50 && got.energy > 0 ? got : null;
    }, { timeoutMs: 15_000, what: 'the caller audio through node A' })
  );
  assert.ok(heard.packets >= 50, `RTP received: ${JSON.stringify(heard)}`);
  const agent = await login(b.base, AGENT.email, AGENT.password);
  const { calls } = await api(b.base, agent, 'GET', '/api/v1/calls/me');
  assert.equal(calls.length, 1, JSON.stringify(calls));
  assert.equal(calls[0].node, 'a');
  assert.equal(calls[0].state, 'connected');
  await p.mouse.move(640, 700);
  await screenshot(p, 'softphone-cluster');

  // The hang-up on B's desk reaches the caller on A.
  await p.getByTestId('softphone-hangup').click();
  const exit = await Promise.race([
    caller.done,
    new Promise((resolve) => setTimeout(() => resolve({ timedOut: true }), 15_000)),
  ]);
  assert.deepEqual(exit, { code: 0, signal: null }, `sipp did not end cleanly:\n${await caller.output()}`);
  assert.deepEqual(watcher.problems(), [], 'the page raised no errors');
  await context.close();
});
