// The shell: sign-in, the top bar (who I am, my presence, the connection badge, the
// navigation), the hash router that mounts one view at a time, and the session's
// softphone (started at sign-in for agents, on first opening the desk for others).

import { h, mount, field, select, toast } from './dom.js';
import { api, get, post, put, token, setUnauthorizedHandler } from './api.js';
import { Realtime, STATE_TEXT } from './realtime.js';
import { Softphone } from './softphone.js';
import { openDialog } from './dialog.js';

const PRESENCE = [['available', 'Available'], ['away', 'Away'], ['offline', 'Offline']];
const REASONS = [['break', 'Break'], ['lunch', 'Lunch'], ['meeting', 'Meeting'], ['training', 'Training'], ['other', 'Other']];

const ROUTES = {
  '#/desk': { title: 'Desk', load: () => import('./desk.js'), roles: ['agent', 'supervisor', 'admin'] },
  '#/wallboard': { title: 'Wallboard', load: () => import('./wallboard.js'), roles: ['supervisor', 'admin'] },
  '#/reports': { title: 'Reports', load: () => import('./reports.js'), roles: ['supervisor', 'admin'] },
  '#/admin/plugins': { title: 'Plugins', load: () => import('./admin.js'), roles: ['admin'], page: 'plugins' },
  '#/admin/queues': { title: 'Queues', load: () => import('./admin.js'), roles: ['admin'], page: 'queues' },
  '#/admin/agents': { title: 'Agents', load: () => import('./admin.js'), roles: ['admin'], page: 'agents' },
  '#/admin/crm': { title: 'CRM', load: () => import('./admin.js'), roles: ['admin'], page: 'crm' },
};

const root = document.getElementById('app');

/** The route of a hash and its parameters: `#/desk?conversation=c1` → ['#/desk', {conversation}]. */
function parseHash(hash) {
  const at = hash.indexOf('?');
  return at < 0 ? [hash, new URLSearchParams()] : [hash.slice(0, at), new URLSearchParams(hash.slice(at + 1))];
}

let session = null; // {me, rt, unmount, presence, softphone}

setUnauthorizedHandler(() => {
  if (!session) return;
  signOut(false);
  toast('Your session ended; please sign in again.', 'error');
});

// ---------------------------------------------------------------- sign-in

function showLogin(message) {
  document.title = 'Sign in — Switchboard';
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, 'data-testid': 'login-email' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
  const error = h('div', { class: 'form-error', role: 'alert' }, message ?? '');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'login-submit' }, 'Sign in');
  const form = h('form', {
    class: 'login-card',
    'data-testid': 'login-form',
    'aria-labelledby': 'login-title',
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        error.textContent = '';
        submit.disabled = true;
        try {
          const res = await api('POST', '/auth/login', { email: email.value.trim(), password: password.value });
          token.set(res.token);
          await start(res.agent);
        } catch (e) {
          error.textContent = e.status === 401 ? 'Wrong e-mail or password.' : (e.message || 'Sign-in failed.');
          submit.disabled = false;
          password.select();
        }
      },
    },
  },
  h('div', { class: 'brand brand-large' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '◆'), 'Switchboard'),
  h('h1', { id: 'login-title', class: 'login-title' }, 'Sign in to the desk'),
  field('E-mail', email),
  field('Password', password),
  error,
  submit);
  mount(root, h('main', { class: 'login-page' }, form));
  email.focus();
}

// ---------------------------------------------------------------- signed in

async function start(me) {
  const rt = new Realtime(() => token.get());
  session = { me, rt, unmount: null, presence: { status: 'offline', reason: null }, softphone: null };
  rt.on('unauthorized', () => signOut(false));
  rt.on('check-session', () => { get('/auth/me').catch(() => {}); });
  rt.on('agent.presence', (d) => {
    if (d?.agent_id !== me.id) return;
    setPresenceUi(d.status, d.reason);
    if (d.status === 'away' && d.reason === 'missed_offers') toast('You were set away after missed offers.', 'error');
  });
  buildShell();
  // An agent's phone is ready before the first call rings; supervisors and admins,
  // who may never take one, are asked for the microphone only when they open the desk.
  if (me.role === 'agent') phone();
  rt.start();
  loadMyPresence();
  if (!ROUTES[parseHash(location.hash)[0]]) location.hash = '#/desk';
  else route();
}

/** The session's softphone, started on first use; one audio connection per tab. */
function phone() {
  if (!session) return null;
  if (!session.softphone) {
    session.softphone = new Softphone({ me: session.me, rt: session.rt });
    session.softphone.start();
  }
  return session.softphone;
}

function signOut(callServer = true) {
  const s = session;
  if (!s) return;
  session = null;
  s.unmount?.();
  s.softphone?.stop();
  s.rt.stop();
  if (callServer) post('/auth/logout').catch(() => {});
  token.clear();
  showLogin();
}

// ---------------------------------------------------------------- account

// My password, and signing out on every device. A new password ends my other
// sessions (their tabs return to sign-in); this one stays.
function accountDialog() {
  const current = h('input', { type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'account-current' });
  const next = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: '8', 'data-testid': 'account-new' });
  const everywhere = h('button', {
    type: 'button',
    class: 'btn btn-danger',
    'data-testid': 'account-logout-all',
    on: {
      click: async () => {
        try {
          await post('/auth/logout-all');
        } catch (e) { toast(`Not signed out: ${e.message}`, 'error'); return; }
        dialog.close();
        signOut(false);
        showLogin('You were signed out on every device.');
      },
    },
  }, 'Sign out everywhere');
  const dialog = openDialog({
    title: 'My account',
    body: [
      h('p', { class: 'muted' }, `${session.me.name} · ${session.me.email}`),
      h('h3', null, 'Change my password'),
      field('Current password', current),
      field('New password', next, 'At least 8 characters; not a common password or your e-mail. Your other sessions end.'),
      h('h3', null, 'Other devices'),
      h('p', null, everywhere),
    ],
    confirmLabel: 'Change password',
    confirmTestId: 'account-change',
    onConfirm: async () => {
      await post('/auth/password', { current_password: current.value, new_password: next.value });
      toast('Password changed; your other sessions have ended.');
    },
  });
}

let presenceSelect; let reasonSelect; let badge; let navEl; let mainEl;

function buildShell() {
  const { me, rt } = session;
  presenceSelect = select({
    'data-testid': 'presence-select',
    'aria-label': 'My presence',
    class: 'presence-select',
    on: { change: () => changePresence() },
  }, PRESENCE, 'offline');
  reasonSelect = select({
    'data-testid': 'presence-reason',
    'aria-label': 'Away reason',
    class: 'reason-select',
    on: { change: () => { if (presenceSelect.value === 'away') changePresence(); } },
  }, REASONS, 'break');
  badge = h('span', {
    class: 'conn conn-offline',
    'data-testid': 'connection-state',
    'aria-live': 'polite',
    role: 'status',
  }, STATE_TEXT.offline);
  rt.on('state', (state) => {
    badge.textContent = STATE_TEXT[state];
    badge.className = `conn conn-${state}`;
  });
  navEl = h('nav', { class: 'nav', 'aria-label': 'Main' });
  renderNav();
  const top = h('header', { class: 'topbar' },
    h('div', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '◆'), 'Switchboard'),
    navEl,
    h('div', { class: 'topbar-right' },
      badge,
      h('div', { class: 'presence' },
        h('span', { class: ['presence-dot'], 'aria-hidden': 'true' }),
        presenceSelect, reasonSelect),
      h('span', { class: 'me', title: `${me.email} · ${me.role}` },
        h('span', { class: 'me-name' }, me.name),
        h('span', { class: 'me-role' }, me.role)),
      h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'account-open', on: { click: () => accountDialog() } }, 'Account'),
      h('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => signOut(true) } }, 'Sign out')));
  mainEl = h('main', { id: 'main', class: 'main', tabindex: '-1' });
  mount(root, h('a', { class: 'skip', href: '#main', on: { click: (e) => { e.preventDefault(); mainEl.focus(); } } }, 'Skip to content'), top, mainEl);
  setPresenceUi('offline', null);
}

function renderNav() {
  const role = session.me.role;
  const links = [['#/desk', 'Desk']];
  if (role === 'supervisor' || role === 'admin') links.push(['#/wallboard', 'Wallboard'], ['#/reports', 'Reports']);
  if (role === 'admin') links.push(['#/admin/plugins', 'Admin']);
  const [path] = parseHash(location.hash);
  mount(navEl, links.map(([href, label]) => {
    const current = href.startsWith('#/admin') ? path.startsWith('#/admin') : path === href;
    return h('a', { href, class: 'nav-link', 'aria-current': current ? 'page' : null }, label);
  }));
}

async function loadMyPresence() {
  // /auth/me does not carry presence; supervisors and admins can read it from the
  // agents list. Agents start from what they last set in this tab (offline at sign-in).
  if (session.me.role === 'agent') return;
  try {
    const { agents } = await get('/agents');
    const mine = agents.find((a) => a.id === session?.me.id);
    if (mine) setPresenceUi(mine.presence, mine.reason);
  } catch { /* keep the default */ }
}

function setPresenceUi(status, reason) {
  if (!presenceSelect) return;
  session.presence = { status, reason };
  presenceSelect.value = status ?? 'offline';
  if (reason && REASONS.some(([v]) => v === reason)) reasonSelect.value = reason;
  const away = status === 'away';
  reasonSelect.classList.toggle('dim', !away);
  presenceSelect.className = `presence-select p-${status ?? 'offline'}`;
  presenceSelect.parentElement?.setAttribute('data-presence', status ?? 'offline');
}

async function changePresence() {
  const status = presenceSelect.value;
  const body = status === 'away' ? { status, reason: reasonSelect.value } : { status };
  const before = session.presence;
  try {
    await put('/agents/me/presence', body);
    setPresenceUi(status, body.reason ?? null);
  } catch (e) {
    setPresenceUi(before.status, before.reason);
    toast(`Presence not changed: ${e.message}`, 'error');
  }
}

// ---------------------------------------------------------------- router

let routeToken = 0;
async function route() {
  if (!session) return;
  const [path, params] = parseHash(location.hash);
  let def = ROUTES[path];
  if (location.hash === '#/admin') { location.hash = '#/admin/plugins'; return; }
  if (!def || !def.roles.includes(session.me.role)) {
    if (location.hash !== '#/desk') { location.hash = '#/desk'; return; }
    def = ROUTES['#/desk'];
  }
  renderNav();
  const mine = ++routeToken;
  session.unmount?.();
  session.unmount = null;
  document.title = `${def.title} — Switchboard`;
  mount(mainEl, h('div', { class: 'loading' }, 'Loading…'));
  mainEl.className = `main main-${def.title.toLowerCase()}`;
  try {
    const mod = await def.load();
    if (mine !== routeToken || !session) return;
    const container = h('div', { class: 'view' });
    mount(mainEl, container);
    session.unmount = mod.mount(container, { me: session.me, rt: session.rt, page: def.page, params, phone }) ?? null;
  } catch (e) {
    console.error(e);
    mount(mainEl, h('div', { class: 'empty', role: 'alert' }, `This page failed to load: ${e.message}`));
  }
}

window.addEventListener('hashchange', route);

// ---------------------------------------------------------------- boot

(async function boot() {
  if (!token.get()) { showLogin(); return; }
  try {
    const me = await get('/auth/me');
    await start(me);
  } catch {
    token.clear();
    showLogin();
  }
})();
