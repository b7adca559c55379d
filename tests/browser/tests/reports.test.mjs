// The supervisor's reports page, end to end in headless Chromium against the real
// binary, on activity made through the product's own paths:
// - customers write on the webchat and by SMS; an agent accepts, answers and resolves
//   with a disposition; a resolved customer comes back by SMS (a repeat contact and a
//   second channel on the same journey); the agent steps away; one chat is left waiting;
// - the reports page shows the same figures as the JSON API, tab by tab, in its
//   headline tiles and its table (every row, every column shown);
// - a headline number and a table cell drill down to exactly as many conversations
//   as they count, the same ones the API lists; a listed conversation opens in the desk;
// - each table's CSV download has the page's rows; the conversations export has one
//   row per journey of the range;
// - a filter and a split (by channel, by agent, with a row for work no agent took)
//   change the page as they change the API; dates follow the operator's zone;
// - no CSP violation, no console error, every control named, no sideways scrolling on
//   a phone.
// Screenshots go to tests/browser/artifacts/reports-*.png.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';

import { launch, screenshot, unnamedControls, watch } from '../lib/browser.mjs';
import { api, createAgent, login, signedTwilioSms, startServer, waitFor } from '../lib/server.mjs';

// The operator's zone is not the browser's (America/Los_Angeles): the page must count
// days in the host's. It is a fixed-offset zone chosen so that it is around midday there
// when the test runs, at least three hours from Los Angeles: "today" cannot change
// between the activity and the checks, whatever time CI runs.
const ZONE = middayZone(new Date().getUTCHours());

function middayZone(utcHour) {
  for (const localHour of [12, 11, 13, 10, 14, 9, 15]) {
    let offset = localHour - utcHour;
    if (offset < -12) offset += 24;
    if (offset > 14) offset -= 24;
    if (Math.abs(offset - -8) < 3) continue;
    // IANA's Etc zones have the POSIX sign: Etc/GMT-5 is five hours ahead of UTC.
    return offset === 0 ? 'Etc/UTC' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`;
  }
  throw new Error(`no midday zone for ${utcHour}h UTC`);
}
const SAM = { email: 'sam@reports.test', password: 'sam-password-1', name: 'Sam Agent' };
const SUE = { email: 'sue@reports.test', password: 'sue-password-1', name: 'Sue Supervisor', role: 'supervisor' };
const ADA_PHONE = '+15550104242';
const BOB_PHONE = '+15550105151';

let server;
let browser;
let admin;
let sam;
let sue;

before(async () => {
  server = await startServer({ env: { SWITCHBOARD_TIMEZONE: ZONE } });
  browser = await launch();
  admin = await login(server.base, server.adminEmail, server.adminPassword);
  await createAgent(server.base, admin, { ...SAM, role: 'agent' });
  await createAgent(server.base, admin, SUE);
  sam = await login(server.base, SAM.email, SAM.password);
  sue = await login(server.base, SUE.email, SUE.password);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// ---------------------------------------------------------------- activity

/** A customer starts a webchat and writes; returns nothing (routing takes it from there). */
async function webchat(name, email, body) {
  const session = await api(server.base, null, 'POST', '/webchat/v1/sessions', { name, email });
  await api(server.base, session.token, 'POST', '/webchat/v1/messages', { client_id: randomUUID(), body });
}

/** Sam accepts the offer that arrives and returns its conversation id. */
async function takeOffer() {
  const offer = await waitFor(async () => (await api(server.base, sam, 'GET', '/api/v1/agents/me/offers')).offers?.[0], {
    timeoutMs: 20_000, what: 'an offer for Sam',
  });
  await api(server.base, sam, 'POST', `/api/v1/reservations/${offer.reservation.id}/accept`);
  return offer.conversation_id ?? offer.conversation?.id;
}

async function reply(conversationId, body) {
  await api(server.base, sam, 'POST', `/api/v1/conversations/${conversationId}/messages`, { body });
}

async function resolve(conversationId) {
  const { dispositions } = await api(server.base, sam, 'GET', '/api/v1/dispositions');
  await api(server.base, sam, 'POST', `/api/v1/conversations/${conversationId}/resolve`, { disposition: dispositions[0].code });
  return dispositions[0];
}

// ---------------------------------------------------------------- page helpers

async function signIn(p, who) {
  await p.goto(`${server.base}/`);
  await p.getByTestId('login-email').fill(who.email);
  await p.getByTestId('login-password').fill(who.password);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
}

/**
 * A screenshot of the whole report: the view scrolls inside <main>, so the window is
 * made as tall as the view for the picture (charts keep their size: only the height
 * changes, and theirs is fixed).
 */
async function shot(p, name) {
  const size = p.viewportSize();
  const height = await p.evaluate(() => {
    const main = document.querySelector('main');
    return main.scrollHeight + main.getBoundingClientRect().top;
  });
  await p.setViewportSize({ width: size.width, height: Math.max(size.height, Math.min(Math.ceil(height), 5000)) });
  await screenshot(p, name);
  await p.setViewportSize(size);
}

/** Waits for the report panel to finish loading (loads start synchronously on a change). */
async function settled(p) {
  await p.locator('#report-panel[aria-labelledby]:not([aria-busy])').waitFor({ timeout: 15_000 });
  await p.getByTestId('report-table').waitFor();
  const status = (await p.getByTestId('report-status').textContent()).trim();
  assert.equal(status, '', `the page says: ${status}`);
}

/** What the page's controls ask, as an API query string. */
async function pageQuery(p, over = {}) {
  const v = async (id) => p.getByTestId(id).inputValue();
  const q = new URLSearchParams({
    from: await v('report-from'), to: await v('report-to'), group_by: await v('report-group-by'),
  });
  for (const [k, id] of [['by', 'report-by'], ['channel', 'report-channel'], ['queue', 'report-queue'], ['agent', 'report-agent']]) {
    const x = await v(id);
    if (x) q.set(k, x);
  }
  for (const [k, x] of Object.entries(over)) {
    if (x === null) q.delete(k);
    else q.set(k, x);
  }
  return q;
}

/** The table as the page shows it: rows of {period, key, cells: {column: {value, text}}}. */
function pageTable(p) {
  return p.getByTestId('report-table').evaluate((table) => [...table.querySelectorAll('[data-testid="report-row"]')].map((tr) => ({
    period: tr.dataset.period,
    key: tr.dataset.key ?? null,
    cells: Object.fromEntries([...tr.querySelectorAll('td[data-column]')].map((td) => [td.dataset.column, { value: td.dataset.value, text: td.textContent.trim() }])),
  })));
}

const raw = (v) => (v == null ? '' : String(v));
/** A CSV field and a page value agree: equal numbers (1.0 and 1), or equal text. */
function same(a, b) {
  if (a === '' || b === '') return a === b;
  const x = Number(a);
  const y = Number(b);
  return Number.isFinite(x) && Number.isFinite(y) ? x === y : a === b;
}

/** RFC 4180 CSV into rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { row.push(field); field = ''; } else if (ch === '\n') { row.push(field.replace(/\r$/, '')); rows.push(row); row = []; field = ''; } else field += ch;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

async function downloadText(p, testid) {
  const [download] = await Promise.all([p.waitForEvent('download'), p.getByTestId(testid).click()]);
  return { name: download.suggestedFilename(), text: await readFile(await download.path(), 'utf8') };
}

/** The page's tiles and table equal the JSON API's for the same query; returns the page's rows. */
async function sameAsApi(p, report) {
  const q = await pageQuery(p);
  if (report === 'agents') q.set('by', 'agent');
  const table = await api(server.base, sue, 'GET', `/api/v1/reports/${report}?${q}`);
  const totalQ = await pageQuery(p, { group_by: 'total', by: null });
  const total = (await api(server.base, sue, 'GET', `/api/v1/reports/${report}?${totalQ}`)).rows[0];
  const rows = await pageTable(p);
  assert.equal(rows.length, table.rows.length, `${report}: as many rows as the API`);
  table.rows.forEach((apiRow, i) => {
    assert.equal(rows[i].period, apiRow.period, `${report} row ${i}: period`);
    if (table.by) assert.equal(rows[i].key, raw(apiRow[table.by]), `${report} row ${i}: group`);
    for (const [col, { value }] of Object.entries(rows[i].cells)) {
      assert.equal(value, raw(apiRow[col]), `${report} ${apiRow.period} ${col}`);
    }
  });
  const tiles = await p.getByTestId('report-tile').evaluateAll((els) => els.map((el) => [el.dataset.column, el.dataset.value]));
  assert.ok(tiles.length >= 4, `${report}: headline figures shown`);
  for (const [col, value] of tiles) assert.equal(value, raw(total[col]), `${report} tile ${col}`);
  return { rows, table, total };
}

/** The table's CSV download has the page's rows, column for column. */
async function csvMatchesPage(p, report, rows, table) {
  const { name, text } = await downloadText(p, 'report-csv');
  assert.match(name, new RegExp(`^${report}-\\d{4}-\\d{2}-\\d{2}-\\d{4}-\\d{2}-\\d{2}\\.csv$`));
  const [header, ...records] = parseCsv(text);
  assert.deepEqual(header, table.columns, `${report}.csv: the API's columns`);
  assert.equal(records.length, rows.length, `${report}.csv: one line per row on the page`);
  records.forEach((rec, i) => {
    assert.equal(rec[header.indexOf('period')], rows[i].period, `${report}.csv line ${i + 1}: period`);
    for (const [col, { value }] of Object.entries(rows[i].cells)) {
      assert.ok(header.includes(col), `${report}.csv has ${col}`);
      assert.ok(same(rec[header.indexOf(col)], value), `${report}.csv line ${i + 1} ${col}: ${rec[header.indexOf(col)]} vs page ${value}`);
    }
  });
}

/** Opens the drill-down of `button`; checks it lists as many conversations as it counts. */
async function drill(p, button, apiQuery) {
  const expected = Number((await button.textContent()).replace(/,/g, ''));
  assert.ok(expected > 0, 'a number to drill into');
  await button.click();
  const dialog = p.getByTestId('report-drill');
  await dialog.locator('[role="status"][data-count]').waitFor();
  const listed = await dialog.getByTestId('report-drill-row').evaluateAll((trs) => trs.map((tr) => tr.dataset.conversation));
  assert.equal(listed.length, expected, 'the drill-down lists as many conversations as the number');
  const fromApi = await api(server.base, sue, 'GET', `/api/v1/reports/drill?${apiQuery}`);
  assert.deepEqual(listed, fromApi.conversations.map((c) => c.conversation_id), 'the same conversations as the API');
  return { dialog, listed };
}

// ---------------------------------------------------------------- the test

test('reports: figures as the API, drill-downs, CSV downloads, at laptop and phone size', async () => {
  // Sam works; Ada chats, is answered and resolved.
  await api(server.base, sam, 'PUT', '/api/v1/agents/me/presence', { status: 'available' });
  await webchat('Ada Lovelace', 'ada@example.com', 'My order 1042 never arrived');
  const adaConversation = await takeOffer();
  await reply(adaConversation, 'Sorry Ada, a new parcel leaves today.');
  const disposition = await resolve(adaConversation);

  // Bob texts; Sam answers and keeps it open.
  await signedTwilioSms(server.base, { from: BOB_PHONE, body: 'Can I change my delivery address?' });
  const bobConversation = await takeOffer();
  await reply(bobConversation, 'Yes, what is the new address?');

  // Ada comes back by SMS: her resolved journey reopens on a second channel.
  const adaConv = await api(server.base, sam, 'GET', `/api/v1/conversations/${adaConversation}`);
  await api(server.base, admin, 'POST', `/api/v1/contacts/${adaConv.contact_id}/identities`, { kind: 'phone', value: ADA_PHONE });
  await signedTwilioSms(server.base, { from: ADA_PHONE, body: 'The parcel still has not come.' });
  assert.equal(await takeOffer(), adaConversation, 'the SMS reopened the same journey');
  await reply(adaConversation, 'I am sending it by courier now.');
  await resolve(adaConversation);

  // Sam settles Bob's question and steps away, holding nothing: his time stops adding
  // up, so the agents report reads the same on the page, in the API and in its CSV.
  await reply(bobConversation, 'Done, it goes to the new address.');
  await resolve(bobConversation);
  await api(server.base, sam, 'PUT', '/api/v1/agents/me/presence', { status: 'away', reason: 'break' });
  // Grace's chat waits.
  await webchat('Grace Hopper', 'grace@example.com', 'Is anyone there?');
  await waitFor(async () => {
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: ZONE }).format(new Date());
    const r = await api(server.base, sue, 'GET', `/api/v1/reports/operations?from=${today}&to=${today}&group_by=total`);
    return r.rows[0].waiting === 1 && r.rows[0].arrived === 4;
  }, { what: 'four tasks, one waiting, in the operations report' });

  // ---- the supervisor's reports page, laptop size
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, timezoneId: 'America/Los_Angeles', acceptDownloads: true });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const p = await context.newPage();
  const watcher = watch(p);
  try {
    await signIn(p, SUE);
    await p.getByRole('link', { name: 'Reports' }).click();
    await p.getByTestId('reports').waitFor();
    await settled(p);

    // Last 7 days by day, in the operator's zone (not the browser's).
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: ZONE }).format(new Date());
    assert.equal(await p.getByTestId('report-to').inputValue(), today, "the range ends today in the operator's zone");
    // The zone by name (a plain substring: `Etc/GMT+2` is no regular expression).
    const meta = await p.getByTestId('report-meta').textContent();
    assert.ok(meta.includes(ZONE), `the zone ${ZONE} in: ${meta}`);
    assert.equal(await p.getByTestId('report-tab-operations').getAttribute('aria-selected'), 'true');
    assert.ok(await p.locator('.report-chart canvas').count() >= 3, 'trend and distribution charts drawn');
    assert.ok(await p.locator('.report-chart canvas').first().evaluate((c) => c.width > 0 && c.height > 0), 'a chart has a size');

    // Operations: the page's figures are the API's; Sue drills into "arrived".
    const ops = await sameAsApi(p, 'operations');
    assert.equal(ops.total.arrived, 4);
    const todayRow = ops.rows.find((r) => r.period === today);
    assert.equal(todayRow.cells.arrived.text, '4');
    await shot(p, 'reports-operations-laptop');
    const q = await pageQuery(p, { group_by: null, by: null, metric: 'arrived', limit: '500' });
    const { dialog } = await drill(p, p.locator('[data-testid="report-tile"][data-column="arrived"] button'), q);
    await screenshot(p, 'reports-drill-laptop', { fullPage: false });
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    await csvMatchesPage(p, 'operations', ops.rows, ops.table);

    // A filter: SMS only, on the page as in the API.
    await p.getByTestId('report-channel').selectOption('sms');
    await settled(p);
    const sms = await sameAsApi(p, 'operations');
    assert.equal(sms.total.arrived, 2, 'two SMS tasks (Bob, and Ada coming back)');
    await p.getByTestId('report-channel').selectOption('');
    await settled(p);

    // ISO weeks, and custom dates (picking a date switches the preset to custom).
    await p.getByTestId('report-group-by').selectOption('week');
    await settled(p);
    const weeks = await sameAsApi(p, 'operations');
    assert.ok(weeks.rows.every((r) => /^\d{4}-W\d{2}$/.test(r.period)), 'rows per ISO week');
    await p.getByTestId('report-group-by').selectOption('day');
    await settled(p);
    await p.getByTestId('report-from').fill(today);
    await settled(p);
    assert.equal(await p.getByTestId('report-preset').inputValue(), 'custom');
    assert.equal((await sameAsApi(p, 'operations')).rows.length, 1, 'one day, one row');
    await p.getByTestId('report-preset').selectOption('last7');
    await settled(p);

    // Split by agent: Grace's waiting chat has no agent, and its row drills down too.
    await p.getByTestId('report-by').selectOption('agent');
    await settled(p);
    const byAgent = await sameAsApi(p, 'operations');
    assert.ok(byAgent.rows.some((r) => r.key === ''), 'a row for work no agent took');
    const nobody = await drill(p, p.locator(`[data-testid="report-row"][data-period="${today}"][data-key=""] td[data-column="arrived"] button`),
      await pageQuery(p, { from: today, to: today, group_by: null, metric: 'arrived', key: '', limit: '500' }));
    assert.equal(nobody.listed.length, 1);
    await nobody.dialog.getByRole('button', { name: 'Close' }).click();
    await csvMatchesPage(p, 'operations', byAgent.rows, byAgent.table);
    await p.getByTestId('report-by').selectOption('');
    await settled(p);

    // Journeys: Ada's journey used two channels and came back (FCR no, a repeat).
    await p.getByTestId('report-tab-journeys').click();
    await settled(p);
    const journeys = await sameAsApi(p, 'journeys');
    assert.equal(journeys.total.journeys, 3);
    assert.equal(journeys.total.multi_channel, 1);
    assert.equal(journeys.total.repeat_contacts, 1);
    const row = p.locator(`[data-testid="report-row"][data-period="${today}"]`);
    const multi = await drill(p, row.locator('td[data-column="multi_channel"] button'),
      await pageQuery(p, { from: today, to: today, group_by: null, metric: 'multi_channel', limit: '500' }));
    assert.deepEqual(multi.listed, [adaConversation]);
    await screenshot(p, 'reports-journeys-drill-laptop', { fullPage: false });
    // The listed conversation opens in the desk.
    await multi.dialog.getByTestId('report-drill-open').first().click();
    await p.waitForURL(/#\/desk\?conversation=/);
    await p.getByTestId('timeline').getByText('The parcel still has not come.').waitFor({ timeout: 15_000 });
    assert.equal(await p.getByTestId('report-drill').count(), 0, 'the drill-down closed');
    await p.goBack();
    await p.getByTestId('reports').waitFor();
    await settled(p);
    assert.equal(await p.getByTestId('report-tab-journeys').getAttribute('aria-selected'), 'true', 'the page came back as it was');
    await csvMatchesPage(p, 'journeys', journeys.rows, journeys.table);
    await shot(p, 'reports-journeys-laptop');

    // Split by channel: one row per day and first channel.
    await p.getByTestId('report-by').selectOption('channel');
    await settled(p);
    const byChannel = await sameAsApi(p, 'journeys');
    assert.ok(byChannel.rows.some((r) => r.key === 'webchat') && byChannel.rows.some((r) => r.key === 'sms'));
    await csvMatchesPage(p, 'journeys', byChannel.rows, byChannel.table);
    await p.getByTestId('report-by').selectOption('');
    await settled(p);

    // Agents and experience: the same figures and CSVs.
    for (const report of ['agents', 'experience']) {
      await p.getByTestId(`report-tab-${report}`).click();
      await settled(p);
      const r = await sameAsApi(p, report);
      await csvMatchesPage(p, report, r.rows, r.table);
      await shot(p, `reports-${report}-laptop`);
    }

    // One row per conversation opened in the range.
    const { name, text } = await downloadText(p, 'report-export-conversations');
    assert.match(name, /^conversations-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
    const [header, ...lines] = parseCsv(text);
    assert.equal(lines.length, journeys.total.journeys, 'a line per journey of the range');
    const col = (line, c) => line[header.indexOf(c)];
    const ada = lines.find((l) => col(l, 'conversation_id') === adaConversation);
    assert.ok(ada, "Ada's conversation is exported");
    assert.equal(col(ada, 'contact_name'), 'Ada Lovelace');
    assert.equal(col(ada, 'channels'), 'webchat sms');
    assert.equal(col(ada, 'fcr'), 'no');
    assert.equal(col(ada, 'disposition'), disposition.code);
    assert.ok(col(ada, 'agents').length > 0, 'the agent who handled it');

    // Keyboard: the tabs move with the arrow keys.
    await p.getByTestId('report-tab-experience').focus();
    await p.keyboard.press('ArrowRight');
    await settled(p);
    assert.equal(await p.getByTestId('report-tab-operations').getAttribute('aria-selected'), 'true');

    assert.deepEqual(await unnamedControls(p), [], 'every control has a name');
    assert.deepEqual(await p.evaluate(() => window.__csp), [], 'no CSP violation');
    assert.deepEqual(watcher.problems(), [], 'no page errors');
  } catch (err) {
    await screenshot(p, 'reports-failure').catch(() => {});
    err.message += `\npage problems: ${JSON.stringify(watcher.problems(), null, 1)}`;
    throw err;
  } finally {
    await context.close();
  }

  // ---- phone size: the same page, nothing wider than the screen
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const m = await phone.newPage();
  const mWatch = watch(m);
  try {
    await signIn(m, SUE);
    await m.goto(`${server.base}/#/reports?tab=journeys&preset=last7`);
    await settled(m);
    await sameAsApi(m, 'journeys');
    const overflow = await m.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page does not scroll sideways (${overflow} px too wide)`);
    await shot(m, 'reports-journeys-phone');
    await m.getByTestId('report-tab-operations').click();
    await settled(m);
    await shot(m, 'reports-operations-phone');
    await m.locator('[data-testid="report-tile"][data-column="arrived"] button').click();
    await m.getByTestId('report-drill').locator('[role="status"][data-count]').waitFor();
    await screenshot(m, 'reports-drill-phone', { fullPage: false });
    assert.deepEqual(await m.evaluate(() => window.__csp), [], 'no CSP violation');
    assert.deepEqual(mWatch.problems(), [], 'no page errors');
  } finally {
    await phone.close();
  }
});
