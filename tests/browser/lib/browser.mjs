// Headless Chromium for the tests: Debian's /usr/bin/chromium driven by playwright-core
// (never playwright's own browser download).

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** Where screenshots go (kept out of git; chosen ones are copied to docs/screenshots). */
export const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

/** Launches Chromium. Close it with `await browser.close()`. */
export async function launch(options = {}) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    headless: true,
    ...options,
  });
}

/** Saves a full-page PNG as artifacts/<name>.png and returns its path. */
export async function screenshot(page, name, options = {}) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  // Finished animations: a card caught fading in would look disabled.
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled', ...options });
  return file;
}

/**
 * Records what a page complains about: uncaught errors, console errors (a CSP
 * violation shows up as one) and failed requests. `problems()` returns them as text.
 */
export function watch(page) {
  const seen = [];
  page.on('pageerror', (err) => seen.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A failed response is reported below, with its URL.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      seen.push(`console: ${msg.text()}`);
    }
  });
  page.on('response', (res) => {
    if (res.status() >= 400 && !res.url().endsWith('/favicon.ico')) seen.push(`http ${res.status()}: ${res.url()}`);
  });
  page.on('requestfailed', (req) => {
    const failure = req.failure();
    // Navigations away abort in-flight requests; that is not a problem.
    if (failure && failure.errorText !== 'net::ERR_ABORTED') seen.push(`requestfailed: ${req.url()} ${failure.errorText}`);
  });
  return { problems: () => seen.slice() };
}

/** Names every visible control must have, computed the way assistive tech would. */
export async function unnamedControls(p) {
  return p.evaluate(() => {
    const controls = document.querySelectorAll(
      'button, input:not([type=hidden]), select, textarea, a[href], [role=button], [tabindex]:not([tabindex="-1"])'
    );
    const missing = [];
    for (const el of controls) {
      const style = getComputedStyle(el);
      if (style.display === 'none' || style.visibility === 'hidden' || el.closest('[hidden]')) continue;
      const labelledBy = (el.getAttribute('aria-labelledby') || '')
        .split(/\s+/)
        .map((id) => document.getElementById(id)?.textContent || '')
        .join(' ');
      const labels = el.labels ? [...el.labels].map((l) => l.textContent).join(' ') : '';
      const name = [el.getAttribute('aria-label'), labelledBy, labels, el.getAttribute('title'),
        ['button', 'a'].includes(el.tagName.toLowerCase()) || el.getAttribute('role') === 'button' ? el.textContent : '']
        .join(' ')
        .trim();
      if (!name) missing.push(el.outerHTML.slice(0, 120));
    }
    return missing;
  });
}
