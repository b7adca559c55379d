// The softphone end to end: a real SIP caller (sipp, Debian's sip-tester) on the
// trunk, the real binary, and an agent in headless Chromium with fake audio devices:
// - the agent signs in and goes available; the softphone's WebRTC link comes up;
// - sipp calls in as the trunk and plays captured A-law speech in a loop; the desk
//   rings with "Incoming call" and the caller's number;
// - the agent answers on the softphone: the call is connected, the talk clock runs,
//   and the caller's audio arrives on the tab's RTCPeerConnection (RTP counted in
//   getStats, with energy in it) and plays on the remote audio element;
// - the agent hangs up: sipp gets the BYE and ends cleanly, and the call shows on the
//   conversation's timeline with its duration.
// The screenshot of the desk during the call goes to tests/browser/artifacts/.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch, screenshot, watch } from '../lib/browser.mjs';
import { api, createAgent, login, startServer, waitFor } from '../lib/server.mjs';
import { CALLER, inboundAudio, recordPeerConnections, signInAvailable, startCaller } from '../lib/voice.mjs';

const AGENT = { email: 'vic@voice.test', password: 'vic-password-1', name: 'Vic Agent' };

let server;
let browser;
let admin;
let sippDir;

before(async () => {
  server = await startServer({
    // INVITEs are taken only from a trunk's address; sipp calls from 127.0.0.1.
    setup: [['trunk', 'add', '--name', 'loopback', '--address', '127.0.0.1:5999']],
  });
  assert.ok(server.sip, `the server printed no SIP address; output:\n${server.output()}`);
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  await createAgent(server.base, admin, AGENT);
  sippDir = await mkdtemp(path.join(tmpdir(), 'switchboard-sipp-'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (sippDir) await rm(sippDir, { recursive: true, force: true });
});

test('an agent answers a SIP caller on the softphone, hears them and hangs up', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // The app keeps its connection private; the test keeps a reference to every one
  // the page makes, to read their stats.
  await recordPeerConnections(context);
  const p = await context.newPage();
  const watcher = watch(p);

  // The agent signs in, goes available, and the audio link comes up.
  await signInAvailable(p, server.base, AGENT);
  assert.equal(await p.getByTestId('softphone-state').textContent(), 'idle');

  // sipp calls in as the trunk.
  const caller = await startCaller(server.sip, sippDir);
  t.after(() => caller.stop());
  const untilSipp = caller.until;

  // The desk rings: the offer card and the softphone say who is calling.
  const offer = p.getByTestId('offer').first();
  await untilSipp(offer.waitFor({ timeout: 20_000 }));
  assert.match(await offer.textContent(), /Incoming call/);
  await untilSipp(offer.getByTestId('offer-number').filter({ hasText: CALLER }).waitFor({ timeout: 10_000 }));
  await untilSipp(p.getByTestId('softphone-state').filter({ hasText: /^offered$/ }).waitFor());
  assert.equal(await p.getByTestId('softphone-number').textContent(), CALLER);
  // Nothing is bridged yet: the host sends the tab no audio.
  assert.equal((await inboundAudio(p)).packets, 0, 'no audio reaches the agent before answering');

  // The agent answers on the softphone.
  await p.getByTestId('softphone-answer').click();
  await untilSipp(p.getByTestId('softphone-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 }));
  assert.equal(await p.getByTestId('softphone-number').textContent(), CALLER);
  assert.equal(await p.getByTestId('offer').count(), 0, 'the offer is gone once answered');

  // The talk clock runs.
  const timer = p.getByTestId('softphone-timer');
  const before = await timer.textContent();
  assert.match(before, /^\d+:\d\d$/, `timer: ${before}`);
  await p.waitForTimeout(2_100);
  const later = await timer.textContent();
  assert.notEqual(later, before, `the timer runs (${before} → ${later})`);

  // The caller's voice reaches the tab and is played.
  const heard = await untilSipp(
    waitFor(async () => {
      const a = await inboundAudio(p);
      return a.packets >= 50 && a.energy > 0 ? a : null;
    }, { timeoutMs: 15_000, what: 'the caller audio on the RTCPeerConnection' })
  );
  assert.ok(heard.packets >= 50, `RTP received: ${JSON.stringify(heard)}`);
  const element = await p.getByTestId('softphone-remote-audio').evaluate((el) => ({
    tracks: el.srcObject?.getAudioTracks().map((tr) => tr.readyState) ?? [],
    paused: el.paused,
  }));
  assert.deepEqual(element.tracks, ['live'], `remote audio element: ${JSON.stringify(element)}`);
  assert.equal(element.paused, false, 'the remote audio plays');

  // The host's view: the call is mine and connected.
  const agent = await login(server.base, AGENT.email, AGENT.password);
  const { calls } = await api(server.base, agent, 'GET', '/api/v1/calls/me');
  assert.equal(calls.length, 1, JSON.stringify(calls));
  const [call] = calls;
  assert.equal(call.state, 'connected');
  assert.equal(call.from, CALLER);
  assert.equal(call.direction, 'inbound');

  // The conversation opens beside the softphone.
  await p.getByTestId('timeline').waitFor({ timeout: 10_000 });
  // The pointer is still where Answer was, over Hang up now: show the bar at rest.
  await p.mouse.move(640, 700);
  await screenshot(p, 'softphone');

  // The agent hangs up; sipp gets the BYE, answers it and ends cleanly.
  await p.getByTestId('softphone-hangup').click();
  const exit = await Promise.race([
    caller.done,
    new Promise((resolve) => setTimeout(() => resolve({ timedOut: true }), 15_000)),
  ]);
  assert.deepEqual(exit, { code: 0, signal: null }, `sipp did not end cleanly:\n${await caller.output()}`);
  await p.getByTestId('softphone-state').filter({ hasText: /^(ended|idle)$/ }).waitFor({ timeout: 10_000 });

  // The call is on the open conversation's timeline, answered, with its duration.
  const row = p.locator(`[data-testid="timeline-call"][data-call="${call.id}"][data-outcome="answered"]`);
  await row.waitFor({ timeout: 15_000 });
  assert.equal(await row.getAttribute('data-direction'), 'inbound');
  const rowText = await row.textContent();
  assert.match(rowText, /Duration\s*(?!0:0[01]\b)\d+:\d\d/, `call row: ${rowText}`);
  assert.match(rowText, /Vic Agent/, `call row: ${rowText}`);

  // And on the customer's timeline through the API.
  const { events } = await api(server.base, agent, 'GET', `/api/v1/contacts/${call.contact_id}/timeline`);
  const record = events.find((e) => e.kind === 'call' && e.data?.call_id === call.id);
  assert.ok(record, `a call event on the contact's timeline: ${JSON.stringify(events.map((e) => e.kind))}`);
  assert.equal(record.data.outcome, 'answered');
  assert.equal(record.data.queue, 'voice');
  assert.ok(record.data.duration_ms >= 2_000, `duration_ms: ${record.data.duration_ms}`);
  assert.ok(call.agent_id, JSON.stringify(call));
  assert.equal(record.data.agent_id, call.agent_id);
  // Audio went both ways through the host: the caller's to the tab, the tab's fake
  // microphone back to sipp.
  const packets = record.data.packets ?? {};
  assert.ok(packets.from_caller > 0 && packets.to_agent > 0, `caller → agent: ${JSON.stringify(packets)}`);
  assert.ok(packets.from_agent > 0 && packets.to_caller > 0, `agent → caller: ${JSON.stringify(packets)}`);
  assert.equal(await p.getByTestId('timeline-call').count(), 1);

  const problems = watcher.problems();
  assert.deepEqual(problems, [], 'the page raised no errors');
  await context.close();
});
