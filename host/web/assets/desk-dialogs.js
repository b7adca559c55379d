// Warm transfer and resolve: the two ways a conversation leaves my desk, each asking
// for what the next person (or the report) needs.

import { h, field, select, mount } from './dom.js';
import { get, post, seg } from './api.js';
import { openDialog } from './dialog.js';

const lines = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);

/** Transfer targets: agents when I may list them, queues always. */
export async function transferTargets(meId) {
  const [agents, queues] = await Promise.all([
    get('/agents').then((r) => r.agents).catch(() => null),
    get('/queues').then((r) => r.queues).catch(() => []),
  ]);
  return {
    agents: (agents ?? []).filter((a) => a.id !== meId),
    queues: queues.map((q) => q.queue ?? q),
  };
}

export async function openTransfer(pane, { me, onDone }) {
  const task = pane.item?.task;
  if (!task?.id) return;
  const target = h('select', { 'data-testid': 'transfer-target', required: true },
    h('option', { value: '' }, 'Loading…'));
  const reason = h('input', { type: 'text', 'data-testid': 'transfer-reason' });
  const steps = h('textarea', { rows: '3', 'data-testid': 'transfer-steps' });
  const commitments = h('textarea', { rows: '2', 'data-testid': 'transfer-commitments' });
  const sentiment = select({ 'data-testid': 'transfer-sentiment' },
    [['negative', 'Negative'], ['neutral', 'Neutral'], ['positive', 'Positive']], 'neutral');
  const summary = h('textarea', { rows: '3' });

  const dlg = openDialog({
    title: `Transfer ${pane.data ? `#${pane.data.display_id}` : 'conversation'}`,
    confirmLabel: 'Transfer',
    confirmTestId: 'transfer-confirm',
    body: [
      field('Transfer to', target),
      field('Reason', reason),
      field('Steps taken', steps, 'One per line'),
      field('Commitments made', commitments, 'One per line'),
      field('Customer sentiment', sentiment),
      field('Summary for the receiver', summary),
    ],
    onConfirm: async () => {
      const [kind, id] = splitTarget(target.value);
      if (!kind) throw new Error('Choose who receives the conversation.');
      const body = {
        context: {
          reason: reason.value.trim(),
          steps: lines(steps.value),
          commitments: lines(commitments.value),
          sentiment: sentiment.value,
          summary: summary.value.trim(),
        },
      };
      if (kind === 'agent') body.agent_id = id; else body.queue = id;
      await post(`/tasks/${seg(task.id)}/transfer`, body);
      onDone?.();
    },
  });

  const conversationId = pane.id;
  const [t, draft] = await Promise.all([
    transferTargets(me.id),
    get(`/conversations/${seg(conversationId)}/handoff-draft`).catch(() => null),
  ]);
  if (!dlg.el.isConnected) return;
  const options = [h('option', { value: '' }, 'Choose…')];
  if (t.agents.length) {
    options.push(h('optgroup', { label: 'Agents' }, t.agents.map((a) =>
      h('option', { value: `agent:${a.id}` }, `${a.name}${a.presence ? ` (${a.presence})` : ''}`))));
  }
  if (t.queues.length) {
    options.push(h('optgroup', { label: 'Queues' }, t.queues.map((q) =>
      h('option', { value: `queue:${q.id}` }, q.name ?? q.id))));
  }
  mount(target, options);
  // Prefill only what the agent has not typed over while the draft loaded.
  if (draft) {
    if (!reason.value) reason.value = draft.reason ?? '';
    if (!steps.value) steps.value = (draft.steps ?? []).join('\n');
    if (!commitments.value) commitments.value = (draft.commitments ?? []).join('\n');
    if (draft.sentiment) sentiment.value = draft.sentiment;
    if (!summary.value) summary.value = draft.summary ?? '';
  }
}

function splitTarget(value) {
  const i = value.indexOf(':');
  if (i < 0) return [null, null];
  return [value.slice(0, i), value.slice(i + 1)];
}

export async function openResolve(pane, { onDone }) {
  const disposition = h('select', { 'data-testid': 'disposition-select', required: true },
    h('option', { value: '' }, 'Loading…'));
  const note = h('textarea', { rows: '3' });
  const dlg = openDialog({
    title: `Resolve ${pane.data ? `#${pane.data.display_id}` : 'conversation'}`,
    confirmLabel: 'Resolve',
    confirmTestId: 'resolve-confirm',
    body: [field('Outcome', disposition), field('Note (optional)', note)],
    onConfirm: async () => {
      if (!disposition.value) throw new Error('Choose an outcome.');
      const body = { disposition: disposition.value };
      if (note.value.trim()) body.note = note.value.trim();
      await post(`/conversations/${seg(pane.id)}/resolve`, body);
      onDone?.();
    },
  });
  try {
    const { dispositions } = await get('/dispositions');
    if (!dlg.el.isConnected) return;
    mount(disposition, h('option', { value: '' }, 'Choose…'),
      dispositions.map((d) => h('option', { value: d.code }, d.label)));
  } catch (e) {
    dlg.setError(`Outcomes not loaded: ${e.message}`);
  }
}
