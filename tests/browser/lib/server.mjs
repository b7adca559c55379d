// Starts the real `switchboard serve --demo` for a test, and small HTTP helpers.
//
// The binary is SWITCHBOARD_BIN, else ${CARGO_TARGET_DIR}/debug/switchboard, else
// <repo>/target/debug/switchboard. Build it first (`cargo build -p switchboard` and
// `bash plugins/build.sh`); this harness never builds anything.

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is tests/browser/lib/server.mjs). */
export const REPO = fileURLToPath(new URL('../../..', import.meta.url));

/** The Twilio auth token of the demo configuration. */
export const DEMO_TWILIO_AUTH_TOKEN = 'demo-auth-token';
export const DEMO_TWILIO_ACCOUNT_SID = 'ACdemo0000000000000000000000000000';
export const DEMO_TWILIO_NUMBER = '+15005550006';

/** Where the switchboard binary is. */
export function binaryPath() {
  if (process.env.SWITCHBOARD_BIN) return path.resolve(REPO, process.env.SWITCHBOARD_BIN);
  if (process.env.CARGO_TARGET_DIR) {
    return path.join(path.resolve(REPO, process.env.CARGO_TARGET_DIR), 'debug', 'switchboard');
  }
  return path.join(REPO, 'target', 'debug', 'switchboard');
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

const STARTUP_TIMEOUT_MS = 30_000;

/**
 * Starts a fresh server: its own temporary data folder (SQLite), the demo plugins,
 * a random port. `env` adds or overrides environment variables (inherited
 * SWITCHBOARD_* variables are dropped, except SWITCHBOARD_WEB_DIR, so a developer's
 * shell cannot point the test at their own database). `setup` is a list of CLI
 * invocations (argument arrays, e.g. `['trunk', 'add', …]`) run on that data folder,
 * in order, before `serve`; any that fails fails the start. `expectAdmin: false` is for
 * a node joining a cluster's database, where the demo admin exists already (its
 * `adminPassword` is then null).
 *
 * @returns {Promise<{base: string, sip: string|null, adminEmail: string,
 *   adminPassword: string, dataDir: string, output: () => string,
 *   stop: () => Promise<void>}>}
 */
export async function startServer({ env = {}, args = [], setup = [], expectAdmin = true } = {}) {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(
      `switchboard binary not found at ${bin}: build it (cargo build -p switchboard) or set SWITCHBOARD_BIN`
    );
  }
  const pluginsDir = path.join(REPO, 'plugins', 'dist');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'switchboard-browser-'));

  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('SWITCHBOARD_') && k !== 'SWITCHBOARD_WEB_DIR') continue;
    childEnv[k] = v;
  }
  Object.assign(
    childEnv,
    {
      SWITCHBOARD_DATA_DIR: dataDir,
      SWITCHBOARD_HTTP_ADDR: '127.0.0.1:0',
      SWITCHBOARD_SIP_ADDR: '127.0.0.1:0',
      SWITCHBOARD_WEBRTC_ADDR: '127.0.0.1:0',
      SWITCHBOARD_LOG: 'info',
      SWITCHBOARD_ACCEPT_TIMEOUT_MS: '60000',
    },
    env
  );

  for (const cliArgs of setup) {
    try {
      await runCli(bin, cliArgs, { cwd: dataDir, env: childEnv });
    } catch (err) {
      await rm(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  const child = spawn(bin, ['serve', '--demo', '--plugins-dir', pluginsDir, ...args], {
    cwd: dataDir,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);

  let out = '';
  let stdoutBuf = '';
  let base = null;
  let sip = null;
  let adminPassword = null;
  const adminEmail = 'admin@switchboard.local';
  let exited = null;

  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`switchboard did not start within ${STARTUP_TIMEOUT_MS} ms; output:\n${out}`));
    }, STARTUP_TIMEOUT_MS);
    const check = () => {
      // A second node of a cluster finds the admin its first node created.
      if (base && (adminPassword || !expectAdmin)) {
        clearTimeout(timer);
        resolve();
      }
    };
    const scan = (line) => {
      const pw = /demo: admin account\s+email:\s*(\S+)\s+password:\s*(\S+)/.exec(line);
      if (pw) adminPassword = pw[2];
      const voice = /^voice: SIP on (\S+)/.exec(line);
      if (voice) sip = voice[1];
      const listen = /switchboard listening on (https?:\/\/[^\s(]+)/.exec(line);
      if (listen) base = listen[1].replace(/\/$/, '');
      check();
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      stdoutBuf += chunk;
      let nl;
      while ((nl = stdoutBuf.indexOf('\n')) >= 0) {
        scan(stdoutBuf.slice(0, nl));
        stdoutBuf = stdoutBuf.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      out += chunk;
      if (out.length > 2_000_000) out = out.slice(-1_000_000);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${bin}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      running.delete(child);
      exited = { code, signal };
      clearTimeout(timer);
      reject(new Error(`switchboard exited (code ${code}, signal ${signal}) before it was ready; output:\n${out}`));
    });
  });

  const stop = async () => {
    if (!exited) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timeout = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timeout);
    }
    running.delete(child);
    if (!process.env.SWITCHBOARD_TEST_KEEP_DATA) {
      await rm(dataDir, { recursive: true, force: true });
    }
  };

  try {
    await ready;
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
  return { base, sip, adminEmail, adminPassword, dataDir, output: () => out, stop };
}

/** Runs one `switchboard` CLI command to completion; throws with its output unless it exits 0. */
function runCli(bin, cliArgs, { cwd, env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, cliArgs, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => { out += chunk; });
    child.stderr.on('data', (chunk) => { out += chunk; });
    child.on('error', (err) => reject(new Error(`could not run ${bin}: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`switchboard ${cliArgs.join(' ')} failed (code ${code}, signal ${signal}):\n${out}`));
    });
  });
}

/** An HTTP error with the status and the parsed (or raw) body. */
export class ApiError extends Error {
  constructor(method, path, status, body) {
    super(`${method} ${path} → ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * Calls the JSON API. Returns the parsed body (null when empty); throws ApiError
 * with the status and body on anything but 2xx.
 */
export async function api(base, token, method, path, body) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  if (!res.ok) throw new ApiError(method, path, res.status, data);
  return data;
}

/** Logs in and returns the bearer token. */
export async function login(base, email, password) {
  const data = await api(base, null, 'POST', '/api/v1/auth/login', { email, password });
  return data.token;
}

/**
 * Creates an agent (admin only). `skills` as [[name, proficiency], …].
 * Returns the agent.
 */
export async function createAgent(base, adminToken, { email, password, name, role = 'agent', skills = [] }) {
  const data = await api(base, adminToken, 'POST', '/api/v1/agents', { email, password, name, role, skills });
  return data.agent ?? data;
}

/** Twilio's request signature: base64(HMAC-SHA1(token, url + sorted key+value pairs)). */
export function twilioSignature(authToken, url, params) {
  const pairs = Object.entries(params).sort(([ak, av], [bk, bv]) =>
    ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0
  );
  let data = url;
  for (const [k, v] of pairs) data += k + v;
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/**
 * Delivers an inbound SMS the way Twilio would, signed with the demo auth token.
 * Returns {status, text}; throws on non-2xx.
 */
export async function signedTwilioSms(base, { from, body, sid = `SM${randomBytes(16).toString('hex')}`, to = DEMO_TWILIO_NUMBER }) {
  const url = `${base}/hooks/sms-twilio/inbound`;
  const params = {
    MessageSid: sid,
    AccountSid: DEMO_TWILIO_ACCOUNT_SID,
    From: from,
    To: to,
    Body: body,
    NumMedia: '0',
  };
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilioSignature(DEMO_TWILIO_AUTH_TOKEN, url, params),
    },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  if (!res.ok) throw new ApiError('POST', '/hooks/sms-twilio/inbound', res.status, text);
  return { status: res.status, text, sid };
}

/** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes. */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
