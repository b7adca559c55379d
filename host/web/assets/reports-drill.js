// The reports page's two ways out: the conversations behind a number (a dialog listing
// `/reports/drill`, each linked to the desk) and CSV downloads. Downloads need the
// bearer token, which a plain link cannot send, so the file is fetched, held as a Blob
// and saved through an object URL (`blob:` is in the policy for the desk's files).

import { h, toast } from './dom.js';
import { get, blob } from './api.js';
import { openDialog } from './dialog.js';
import { channelName } from './channels.js';

const LIMIT = 500;

/**
 * Opens the list of conversations behind a counted number. `what` names the cell
 * ("Abandoned · Mon 1 Dec · SMS"); `q` is the drill query (metric, dates, group, key,
 * filters, thresholds); `expected` the number clicked; `names` and `queues` map ids to
 * names; `zone` is the operator's time zone for the times.
 */
export async function openDrill({ what, q, expected, names, queues, zone }) {
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const list = h('div', { class: 'table-wrap drill-list' });
  const dialog = openDialog({
    title: what,
    body: [status, list],
    confirmLabel: 'Close',
    cancel: false,
    wide: true,
    testid: 'report-drill',
  });
  let res;
  try {
    res = await get(`/reports/drill?${q}&limit=${LIMIT}`);
  } catch (e) {
    status.textContent = `Not loaded: ${e.message}`;
    return dialog;
  }
  const rows = res.conversations ?? [];
  const more = rows.length >= LIMIT && expected > rows.length;
  status.textContent = rows.length === 0
    ? 'No conversations.'
    : `${rows.length} ${rows.length === 1 ? 'conversation' : 'conversations'}${more ? ` (the first ${LIMIT} of ${expected})` : ''}`;
  status.dataset.count = String(rows.length);
  const when = new Intl.DateTimeFormat('en-GB', {
    timeZone: zone || undefined, day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  });
  list.append(h('table', null,
    h('caption', { class: 'sr-only' }, what),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Conversation'),
      h('th', { scope: 'col' }, 'Channel'),
      h('th', { scope: 'col' }, 'Queue'),
      h('th', { scope: 'col' }, 'Agent'),
      h('th', { scope: 'col' }, 'When'))),
    h('tbody', null, rows.map((r) => h('tr', { 'data-testid': 'report-drill-row', 'data-conversation': r.conversation_id },
      h('th', { scope: 'row' }, r.conversation_id
        ? h('a', {
          href: `#/desk?conversation=${encodeURIComponent(r.conversation_id)}`,
          'data-testid': 'report-drill-open',
          'aria-label': `Open conversation #${r.display_id ?? ''} in the desk`,
          // The dialog is on the body, not in the view: close it before the desk mounts.
          on: { click: () => dialog.close() },
        }, `#${r.display_id ?? r.conversation_id}`)
        : '—'),
      h('td', null, r.channel ? channelName(r.channel) : '—'),
      h('td', null, r.queue ? (queues.get(r.queue) ?? r.queue) : '—'),
      h('td', null, r.agent ? (names.get(r.agent) ?? r.agent) : '—'),
      h('td', null, r.at != null ? when.format(new Date(r.at)) : '—'))))));
  return dialog;
}

/** Fetches `path` (under /api/v1) with the token and saves it as `filename`. */
export async function download(path, filename, button) {
  if (button) button.disabled = true;
  try {
    const file = await blob(`/api/v1${path}`);
    const url = URL.createObjectURL(file);
    const a = h('a', { href: url, download: filename, class: 'sr-only' }, filename);
    document.body.append(a);
    a.click();
    a.remove();
    // The browser has taken the file once the click is handled; free it soon after.
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
  } catch (e) {
    toast(`Not downloaded: ${e.message}`, 'error');
  } finally {
    if (button) button.disabled = false;
  }
}
