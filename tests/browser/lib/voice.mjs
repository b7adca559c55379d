// What the softphone's browser tests share: sipp as the trunk's caller (Debian's
// sip-tester, the scenario in tests/browser/sipp/caller.xml), and the tab's WebRTC
// reception read from its RTCPeerConnections' stats.

import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SIPP = process.env.SIPP_PATH || '/usr/bin/sipp';
const SCENARIO = fileURLToPath(new URL('../sipp/caller.xml', import.meta.url));
/** The From user of the scenario's INVITE. */
export const CALLER = '+15557770001';

/**
 * Keeps a reference to every RTCPeerConnection the pages of `context` make (the app
 * keeps its own private), for `inboundAudio`.
 */
export async function recordPeerConnections(context) {
  await context.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.__peerConnections = [];
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        window.__peerConnections.push(this);
      }
    };
  });
}

/** A UDP port free on loopback right now (and the next `span` after it). */
export async function freeUdpPort(span = 0) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const ports = [];
    const sockets = [];
    try {
      const first = createSocket('udp4');
      sockets.push(first);
      await new Promise((resolve, reject) => first.once('error', reject).bind(0, '127.0.0.1', resolve));
      ports.push(first.address().port);
      for (let i = 1; i <= span; i++) {
        const s = createSocket('udp4');
        sockets.push(s);
        await new Promise((resolve, reject) => s.once('error', reject).bind(ports[0] + i, '127.0.0.1', resolve));
      }
      return ports[0];
    } catch {
      /* taken: try another */
    } finally {
      for (const s of sockets) s.close();
    }
  }
  throw new Error('no free UDP port');
}

/**
 * Starts sipp as the trunk's caller, calling the SIP address `sip` once, its files in
 * `dir`. `done` resolves with {code, signal} when it exits; `output()` has its
 * stdout, stderr and error log for diagnostics; `until(promise)` waits for `promise`
 * but fails as soon as sipp ends.
 */
export async function startCaller(sip, dir) {
  const sipPort = await freeUdpPort();
  // sipp binds the audio port and the ones after it (RTCP, video).
  const mediaPort = await freeUdpPort(3);
  const args = [
    sip,
    '-sf', SCENARIO,
    '-m', '1',
    '-l', '1',
    '-i', '127.0.0.1',
    '-p', String(sipPort),
    '-mp', String(mediaPort),
    '-timeout', '60s',
    '-trace_err',
    '-nostdin',
  ];
  const child = spawn(SIPP, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    out = (out + chunk).slice(-200_000);
  });
  child.stderr.on('data', (chunk) => {
    out = (out + chunk).slice(-200_000);
  });
  const done = new Promise((resolve) => {
    child.on('error', (err) => resolve({ code: null, signal: null, error: err.message }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const output = async () => {
    let errors = '';
    for (const f of await readdir(dir).catch(() => [])) {
      if (f.endsWith('_errors.log')) errors += `\n--- ${f}\n${await readFile(path.join(dir, f), 'utf8')}`;
    }
    return `sipp ${args.join(' ')}\n${out}${errors}`;
  };
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  // Waits for `promise`, failing at once (with sipp's output) if sipp ends first.
  const failed = done.then(async (r) => {
    throw new Error(`sipp ended before the hang-up (${JSON.stringify(r)}):\n${await output()}`);
  });
  failed.catch(() => {});
  const until = (promise) => Promise.race([promise, failed]);
  return { done, output, stop, until };
}

/** The tab's audio reception: RTP packets and energy of the inbound audio, summed. */
export async function inboundAudio(p) {
  return p.evaluate(async () => {
    let packets = 0;
    let energy = 0;
    for (const pc of window.__peerConnections ?? []) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          packets += s.packetsReceived ?? 0;
          energy += s.totalAudioEnergy ?? 0;
        }
      });
    }
    return { packets, energy };
  });
}

/**
 * Signs `agent` ({email, password}) in on the page `p` at `base`, sets them available
 * and waits for the softphone's audio link to come up.
 */
export async function signInAvailable(p, base, agent) {
  await p.goto(`${base}/`);
  await p.getByTestId('login-email').fill(agent.email);
  await p.getByTestId('login-password').fill(agent.password);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
  await p.getByTestId('presence-select').selectOption('available');
  await p.locator('[data-testid="softphone-webrtc"][data-state="connected"]').waitFor({ timeout: 20_000 });
}
