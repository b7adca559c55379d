// Administration: plugins (health, switch, config), queues, agents and CRM write-back. Plain forms over
// the admin API; every change reloads from the host so the page shows what is in force.

import { h, mount as replace, field, select, toast } from './dom.js';
import { get, post, put, seg } from './api.js';
import { duration } from './time.js';

const PAGES = [['plugins', 'Plugins'], ['queues', 'Queues'], ['agents', 'Agents'], ['crm', 'CRM']];

export function mount(container, { page }) {
  const body = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  replace(container, h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', { class: 'page-title' }, 'Admin')),
    h('nav', { class: 'subnav', 'aria-label': 'Admin sections' }, PAGES.map(([key, label]) =>
      h('a', { href: `#/admin/${key}`, 'aria-current': key === page ? 'page' : null }, label))),
    body));
  const render = { plugins: pluginsPage, queues: queuesPage, agents: agentsPage, crm: crmPage }[page] ?? pluginsPage;
  render(body).catch((e) => replace(body, h('p', { class: 'form-error', role: 'alert' }, `Not loaded: ${e.message}`)));
  return null;
}

/** `billing:2, sales:3` → [["billing",2],["sales",3]]; throws on a malformed pair. */
export function parseSkills(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((pair) => {
    const m = /^([^:\s]+)\s*:\s*(\d+)$/.exec(pair);
    if (!m) throw new Error(`"${pair}" is not name:level`);
    const p = Number(m[2]);
    if (p < 1 || p > 5) throw new Error(`${m[1]}: level must be 1–5`);
    return [m[1], p];
  });
}

const skillsText = (skills) => (skills ?? []).map((s) => (Array.isArray(s) ? `${s[0]}:${s[1]}` : `${s.name}:${s.proficiency}`)).join(', ');

// ------------------------------------------------------------ plugins

async function pluginsPage(body) {
  const { plugins } = await get('/plugins');
  replace(body, h('div', { class: 'cards cards-3' },
    plugins.length === 0 ? h('p', { class: 'empty' }, 'No plugins installed.') : plugins.map((p) => pluginCard(p, () => pluginsPage(body)))));
}

function pluginState(p) {
  if (p.quarantined) return ['quarantined', 'state-bad'];
  if (!p.enabled) return ['disabled', 'state-off'];
  if (!p.loaded) return ['not loaded', 'state-bad'];
  return ['running', 'state-ok'];
}

function pluginCard(p, reload) {
  const [stateText, stateCls] = pluginState(p);
  const toggle = async (action) => {
    try {
      await post(`/plugins/${seg(p.id)}/${action}`);
      toast(`${p.id} ${action}d.`);
      reload();
    } catch (e) { toast(`${p.id}: ${e.message}`, 'error'); }
  };
  const current = new Map((p.config ?? []).map((c) => [c.key, c]));
  const declared = p.declared_config?.length ? p.declared_config : (p.config ?? []).map((c) => ({ key: c.key, secret: c.secret }));
  const inputs = new Map();
  const fields = declared.filter((d) => !d.key.startsWith('switchboard.')).map((d) => {
    const cur = current.get(d.key);
    const secret = d.secret || cur?.secret;
    const input = h('input', {
      type: secret ? 'password' : 'text',
      name: d.key,
      autocomplete: secret ? 'new-password' : 'off',
      // Secrets are write-only: never prefilled, an empty field means "leave as is".
      value: secret ? '' : (cur?.value ?? ''),
      placeholder: secret ? (cur?.value === 'set' ? 'set — type to replace' : 'not set') : (d.default ?? ''),
    });
    inputs.set(d.key, { input, original: secret ? '' : (cur?.value ?? ''), secret });
    const label = `${d.key}${d.required ? ' *' : ''}`;
    return field(label, input, d.description);
  });
  const form = h('form', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        const config = {};
        for (const [key, { input, original, secret }] of inputs) {
          if (secret ? input.value !== '' : input.value !== original) config[key] = input.value;
        }
        if (Object.keys(config).length === 0) { toast('Nothing changed.'); return; }
        try {
          await put(`/plugins/${seg(p.id)}/config`, { config });
          toast(`${p.id}: configuration saved.`);
          reload();
        } catch (e) { toast(`${p.id}: ${e.message}`, 'error'); }
      },
    },
  },
  fields.length ? h('div', { class: 'config-grid' }, fields) : h('p', { class: 'muted small' }, 'No settings.'),
  fields.length ? h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Save configuration')) : null);

  const health = p.health;
  return h('section', { class: 'card plugin', 'data-plugin': p.id, 'aria-label': `Plugin ${p.id}` },
    h('div', { class: 'plugin-head' },
      h('span', { class: 'plugin-id' }, p.id),
      h('span', { class: 'badge' }, p.kind),
      h('span', { class: 'muted small' }, `v${p.version}`),
      h('span', { class: ['badge', stateCls] }, stateText),
      h('div', { class: 'plugin-actions' },
        p.enabled && !p.quarantined
          ? h('button', { type: 'button', class: 'btn btn-small', on: { click: () => toggle('disable') } }, 'Disable')
          : h('button', { type: 'button', class: 'btn btn-small btn-primary', on: { click: () => toggle('enable') } }, p.quarantined ? 'Re-enable' : 'Enable'))),
    p.quarantined ? h('div', { class: 'quarantine', role: 'note' }, `Quarantined: ${p.quarantined}`) : null,
    health ? h('div', { class: 'small muted' },
      `${health.calls ?? 0} calls · ${health.failures ?? 0} failures · ${health.consecutive_failures ?? 0} in a row`,
      health.allowed_hosts?.length ? ` · may call ${health.allowed_hosts.join(', ')}` : '') : null,
    form);
}

// ------------------------------------------------------------ queues

async function queuesPage(body) {
  const { queues } = await get('/queues');
  const name = h('input', { type: 'text', required: true, pattern: '[A-Za-z0-9._-]{1,64}', placeholder: 'billing' });
  const channels = h('input', { type: 'text', placeholder: 'sms, webchat' });
  const skills = h('input', { type: 'text', placeholder: 'billing:2, sales:3' });
  const slaSecs = h('input', { type: 'number', min: '1', value: '20' });
  const priority = h('input', { type: 'number', value: '0' });
  const form = h('form', {
    class: 'card',
    'aria-label': 'Create or replace a queue',
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        try {
          await post('/queues', {
            name: name.value.trim(),
            channels: channels.value.split(',').map((s) => s.trim()).filter(Boolean),
            required_skills: parseSkills(skills.value),
            sla_target_secs: Number(slaSecs.value) || undefined,
            priority: Number(priority.value) || 0,
          });
          toast(`Queue ${name.value.trim()} saved.`);
          queuesPage(body);
        } catch (e) { toast(`Queue not saved: ${e.message}`, 'error'); }
      },
    },
  },
  h('h2', null, 'Create or replace a queue'),
  h('div', { class: 'form-grid' },
    field('Name', name, 'letters, digits, - _ .'),
    field('Channels', channels, 'comma separated'),
    field('Required skills', skills, 'name:level, comma separated'),
    field('SLA target (seconds)', slaSecs),
    field('Priority', priority)),
  h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save queue')));

  const rows = queues.map((entry) => {
    const q = entry.queue ?? entry;
    const st = entry.stats ?? {};
    return h('tr', { 'data-queue': q.id },
      h('th', { scope: 'row' }, q.name ?? q.id),
      h('td', null, (q.channels ?? []).join(', ') || 'any'),
      h('td', null, skillsText(q.required_skills) || '—'),
      h('td', { class: 'num' }, duration(q.sla_target_ms)),
      h('td', { class: 'num' }, String(q.priority ?? 0)),
      h('td', { class: 'num' }, String(st.waiting ?? 0)),
      h('td', { class: 'num' }, st.waiting ? duration(st.longest_wait_ms) : '—'),
      h('td', { class: 'num' }, String(st.assigned ?? 0)),
      h('td', { class: 'num' }, `${st.completed_within_sla ?? 0}/${st.completed ?? 0}`),
      h('td', { class: 'num' }, String(st.abandoned ?? 0)));
  });
  const surveys = await surveysCard(queues.map((entry) => (entry.queue ?? entry).id), () => queuesPage(body));
  replace(body, h('div', { class: 'cards' },
    h('section', { class: 'card card-wide', 'aria-label': 'Queues' }, h('h2', null, 'Queues'),
      h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, ['Queue', 'Channels', 'Skills', 'SLA', 'Priority', 'Waiting', 'Longest', 'Assigned', 'In SLA', 'Abandoned']
          .map((t, i) => h('th', { scope: 'col', class: i >= 3 ? 'num' : null }, t)))),
        h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '10', class: 'empty' }, 'No queues yet.')))))),
    form,
    surveys));
}

const SURVEY_KINDS = [['csat', 'CSAT (1–5)'], ['ces', 'CES (1–7)'], ['nps', 'NPS (0–10)']];

/** What each queue asks after a resolve (PUT /queues/{id}/survey), and the form to change it. */
async function surveysCard(queueIds, reload) {
  const { queues: settings } = await get('/surveys/settings');
  const byQueue = new Map(settings.map((s) => [s.queue_id, s]));
  const ids = [...new Set([...queueIds, ...settings.map((s) => s.queue_id)])].sort();
  const queue = ids.length
    ? select({ 'data-testid': 'survey-queue' }, ids.map((id) => [id, id]), ids[0])
    : h('input', { type: 'text', required: true, pattern: '[A-Za-z0-9._-]{1,64}', placeholder: 'chat', 'data-testid': 'survey-queue' });
  const boxes = SURVEY_KINDS.map(([kind, label]) => {
    const box = h('input', { type: 'checkbox', value: kind, 'data-testid': `survey-kind-${kind}` });
    return [box, h('label', { class: 'check' }, box, ` ${label}`)];
  });
  const reminder = h('input', { type: 'number', min: '1', max: '10080', placeholder: 'none', 'data-testid': 'survey-reminder' });
  const expire = h('input', { type: 'number', min: '1', max: '720', value: '72', 'data-testid': 'survey-expire' });
  const template = h('input', { type: 'text', placeholder: 'csat_survey', 'data-testid': 'survey-template' });
  const language = h('input', { type: 'text', placeholder: 'en_US', 'data-testid': 'survey-language' });
  const voice = h('input', { type: 'checkbox', 'data-testid': 'survey-voice' });
  const fill = () => {
    const s = byQueue.get(queue.value);
    for (const [box] of boxes) box.checked = Boolean(s?.surveys.includes(box.value));
    reminder.value = s?.reminder_secs ? String(Math.round(s.reminder_secs / 60)) : '';
    expire.value = String(Math.round((s?.expire_secs ?? 259200) / 3600));
    template.value = s?.template?.name ?? '';
    language.value = s?.template?.language ?? '';
    voice.checked = Boolean(s?.voice);
  };
  queue.addEventListener('change', fill);
  fill();
  const form = h('form', {
    class: 'card',
    'aria-label': 'Surveys after a resolve',
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        const id = queue.value.trim();
        try {
          await put(`/queues/${seg(id)}/survey`, {
            surveys: boxes.filter(([box]) => box.checked).map(([box]) => box.value),
            reminder_secs: reminder.value ? Number(reminder.value) * 60 : null,
            expire_secs: Number(expire.value) * 3600,
            template: template.value.trim() ? { name: template.value.trim(), language: language.value.trim() } : null,
            voice: voice.checked,
          });
          toast(`Surveys of ${id} saved.`);
          reload();
        } catch (e) { toast(`Surveys not saved: ${e.message}`, 'error'); }
      },
    },
  },
  h('h2', null, 'Surveys after a resolve'),
  h('p', { class: 'hint' }, 'Asked on the channel the customer used last. A template is sent where a messaging window has closed; without one the survey is recorded as not sent. Calls are asked only where offered to callers: one key per question once the agent hangs up.'),
  h('div', { class: 'form-grid' },
    field('Queue', queue),
    h('fieldset', { class: 'field check-group' }, h('legend', null, 'Ask'), boxes.map(([, label]) => label)),
    field('Reminder after (minutes)', reminder, 'empty: no reminder'),
    field('Open for (hours)', expire),
    field('Template name', template, 'for a closed window'),
    field('Template language', language),
    h('label', { class: 'check' }, voice, ' Offer to callers when the agent hangs up (phone keypad)')),
  h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save surveys')));
  const rows = settings.filter((s) => s.surveys.length).map((s) => h('tr', { 'data-survey-queue': s.queue_id },
    h('th', { scope: 'row' }, s.queue_id),
    h('td', null, s.surveys.map((k) => k.toUpperCase()).join(', ')),
    h('td', { class: 'num' }, s.reminder_secs ? duration(s.reminder_secs * 1000) : '—'),
    h('td', { class: 'num' }, duration(s.expire_secs * 1000)),
    h('td', null, s.template ? `${s.template.name} (${s.template.language})` : '—'),
    h('td', null, s.voice ? 'Keypad after the call' : '—')));
  return h('section', { class: 'card card-wide', 'aria-label': 'Surveys' }, h('h2', null, 'Surveys'),
    h('div', { class: 'table-wrap' }, h('table', null,
      h('thead', null, h('tr', null, ['Queue', 'Asks', 'Reminder', 'Open for', 'Template', 'Calls']
        .map((t, i) => h('th', { scope: 'col', class: i === 2 || i === 3 ? 'num' : null }, t)))),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '6', class: 'empty' }, 'No queue asks a survey yet.'))))),
    form);
}

// ------------------------------------------------------------ agents

async function agentsPage(body) {
  const [{ agents }, me] = await Promise.all([get('/agents'), get('/auth/me')]);
  const email = h('input', { type: 'email', required: true, autocomplete: 'off' });
  const password = h('input', { type: 'password', required: true, minlength: '8', autocomplete: 'new-password' });
  const name = h('input', { type: 'text', required: true });
  const role = select(null, [['agent', 'Agent'], ['supervisor', 'Supervisor'], ['admin', 'Admin']], 'agent');
  const skills = h('input', { type: 'text', placeholder: 'billing:3, sales:2' });
  const form = h('form', {
    class: 'card',
    'aria-label': 'Create an agent',
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        try {
          await post('/agents', {
            email: email.value.trim(),
            password: password.value,
            name: name.value.trim(),
            role: role.value,
            skills: parseSkills(skills.value),
          });
          toast(`${name.value.trim()} created.`);
          agentsPage(body);
        } catch (e) { toast(`Agent not created: ${e.message}`, 'error'); }
      },
    },
  },
  h('h2', null, 'Create an agent'),
  h('div', { class: 'form-grid' },
    field('Name', name), field('E-mail', email), field('Password', password),
    field('Role', role), field('Skills', skills, 'name:level (1–5), comma separated')),
  h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create agent')));

  const rows = agents.map((a) => {
    const input = h('input', { type: 'text', value: skillsText(a.skills), 'aria-label': `Skills of ${a.name}` });
    const save = h('button', {
      type: 'submit', class: 'btn btn-small',
    }, 'Save');
    const edit = h('form', {
      class: 'skills-edit',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          try {
            await put(`/agents/${seg(a.id)}/routing`, { skills: parseSkills(input.value) });
            toast(`Skills of ${a.name} saved.`);
          } catch (e) { toast(`Skills not saved: ${e.message}`, 'error'); }
        },
      },
    }, input, save);
    const action = a.disabled ? 'enable' : 'disable';
    const toggle = h('button', {
      type: 'button',
      class: ['btn', 'btn-small', a.disabled ? null : 'btn-danger'],
      'data-testid': `agent-${action}`,
      on: {
        click: async () => {
          try {
            await post(`/agents/${seg(a.id)}/${action}`);
            toast(a.disabled ? `${a.name} can sign in again.` : `${a.name} is disabled and signed out everywhere.`);
            agentsPage(body);
          } catch (e) { toast(`Not changed: ${e.message}`, 'error'); }
        },
      },
    }, a.disabled ? 'Enable' : 'Disable');
    return h('tr', { 'data-agent': a.id, 'data-testid': 'admin-agent', class: a.disabled ? 'row-disabled' : null },
      h('th', { scope: 'row' }, a.name),
      h('td', null, a.email),
      h('td', null, a.role),
      h('td', null, edit),
      h('td', null, h('span', { class: ['pres', `pres-${a.presence}`] }, a.presence ?? '—', a.reason ? ` — ${a.reason}` : '')),
      h('td', { class: 'num' }, a.capacity?.total != null ? String(a.capacity.total) : '—'),
      // Nobody disables themselves (the server refuses it too).
      h('td', null, h('span', { class: 'account-state', 'data-testid': 'agent-state' }, a.disabled ? 'Disabled' : 'Active'),
        a.id === me.id ? null : [' ', toggle]));
  });
  replace(body, h('div', { class: 'cards' },
    h('section', { class: 'card card-wide', 'aria-label': 'Agents' }, h('h2', null, 'Agents'),
      h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, ['Name', 'E-mail', 'Role', 'Skills', 'Presence', 'Capacity', 'Account']
          .map((t, i) => h('th', { scope: 'col', class: i === 5 ? 'num' : null }, t)))),
        h('tbody', null, rows)))),
    form));
}

// ------------------------------------------------------------ CRM

const CRM_EVENTS = [
  ['calls', 'Calls', 'when they end, abandoned and missed ones included'],
  ['summaries', 'Resolves', 'the disposition and the conversation summary'],
  ['notes', 'Notes', 'agents\' internal notes'],
  ['messages', 'Messages', 'every message in and out'],
];

async function crmPage(body) {
  const [{ crms }, { activities }] = await Promise.all([
    get('/crm/settings'),
    get('/crm/activities?status=dead'),
  ]);
  const { activities: recent } = await get('/crm/activities');
  const reload = () => crmPage(body);

  const settings = crms.length === 0
    ? h('p', { class: 'empty' }, 'No CRM plugin installed (crm-hubspot, crm-salesforce, crm-zoho).')
    : h('table', { class: 'table', 'data-testid': 'crm-settings' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'CRM'),
        CRM_EVENTS.map(([, label, hint]) => h('th', { scope: 'col', title: hint }, label)),
        h('th', { scope: 'col' }, ''))),
      h('tbody', null, crms.map((c) => {
        const boxes = Object.fromEntries(CRM_EVENTS.map(([key, label]) => [key, h('input', {
          type: 'checkbox', checked: !!c[key], 'aria-label': `${c.plugin_id}: ${label}`, 'data-event': key,
        })]));
        const save = h('button', {
          type: 'button', class: 'btn btn-small btn-primary', 'data-testid': 'crm-save',
          on: {
            click: async () => {
              try {
                await put(`/crm/settings/${seg(c.plugin_id)}`, Object.fromEntries(CRM_EVENTS.map(([key]) => [key, boxes[key].checked])));
                toast(`${c.plugin_id}: saved.`);
                reload();
              } catch (e) { toast(`${c.plugin_id}: ${e.message}`, 'error'); }
            },
          },
        }, 'Save');
        return h('tr', { 'data-crm': c.plugin_id }, h('th', { scope: 'row' }, c.plugin_id),
          CRM_EVENTS.map(([key]) => h('td', null, boxes[key])), h('td', null, save));
      })));

  const deadRows = activities.map((a) => h('tr', { 'data-activity': a.id },
    h('td', null, a.plugin_id), h('td', null, a.kind), h('td', null, String(a.attempts)),
    h('td', { class: 'small' }, a.last_error ?? ''),
    h('td', null, h('button', {
      type: 'button', class: 'btn btn-small', 'data-testid': 'crm-retry',
      on: {
        click: async () => {
          try {
            await post(`/crm/activities/${seg(a.id)}/retry`);
            toast('Queued again.');
            reload();
          } catch (e) { toast(`Not queued: ${e.message}`, 'error'); }
        },
      },
    }, 'Retry'))));
  const counts = recent.reduce((m, a) => ({ ...m, [a.status]: (m[a.status] ?? 0) + 1 }), {});

  replace(body, h('div', { class: 'stack' },
    h('section', { class: 'card' }, h('h2', null, 'What each CRM receives'), settings),
    h('section', { class: 'card' },
      h('h2', null, 'Write-back'),
      h('p', { class: 'small muted', 'data-testid': 'crm-counts' },
        `Last ${recent.length}: ${['done', 'pending', 'sending', 'dead'].map((k) => `${counts[k] ?? 0} ${k}`).join(' · ')}`),
      h('h3', null, 'Dead letters'),
      activities.length === 0
        ? h('p', { class: 'empty', 'data-testid': 'crm-no-dead' }, 'None.')
        : h('table', { class: 'table', 'data-testid': 'crm-dead' },
          h('thead', null, h('tr', null, ['CRM', 'What', 'Attempts', 'Last error', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', null, deadRows)))));
}
