// The open conversation: header with actions, the pinned hand-off, the timeline, the
// typing hint and the composer. The composer is built once per conversation so a
// half-written reply survives the timeline reloading under it.

import { h, mount, toast, nextId } from './dom.js';
import { get, post, seg } from './api.js';
import { channelBadge, channelName } from './channels.js';
import { timelineItems } from './desk-timeline.js';
import { handoffCard, latestHandoff } from './handoff.js';

const TYPING_SHOW_MS = 4000;
const TYPING_SEND_MS = 2000;

export class ConversationPane {
  constructor(el, { names, onTransfer, onResolve, onSent }) {
    this.el = el;
    this.names = names;
    this.onTransfer = onTransfer;
    this.onResolve = onResolve;
    this.onSent = onSent;
    this.id = null;
    this.item = null;
    this.data = null;
    this.loadSeq = 0;
    this.typingTimer = null;
    this.lastTypingSent = 0;
    this.empty();
  }

  empty(text = 'Select a conversation, or accept an offer.') {
    this.id = null;
    this.data = null;
    mount(this.el, h('div', { class: 'empty pane-empty' }, text));
  }

  /** Opens conversation `id`; `item` is its entry in my list (carries the task). */
  async open(id, item) {
    if (this.id !== id) {
      this.id = id;
      this.item = item ?? null;
      this.build();
    } else if (item) {
      this.setItem(item);
    }
    await Promise.all([this.reload(), this.loadChannels()]);
  }

  setItem(item) {
    this.item = item ?? null;
    const hasTask = Boolean(this.item?.task?.id);
    if (this.transferBtn) this.transferBtn.disabled = !hasTask;
    if (this.resolveBtn) this.resolveBtn.disabled = false;
  }

  build() {
    this.title = h('h2', { class: 'conv-title', id: nextId('conv-title') }, 'Loading…');
    this.headerMeta = h('div', { class: 'conv-head-meta' });
    this.transferBtn = h('button', {
      type: 'button', class: 'btn', 'data-testid': 'transfer-open',
      on: { click: () => this.onTransfer(this) },
    }, 'Transfer');
    this.resolveBtn = h('button', {
      type: 'button', class: 'btn btn-primary', 'data-testid': 'resolve-open',
      on: { click: () => this.onResolve(this) },
    }, 'Resolve');
    this.pinned = h('div', { class: 'pinned-slot' });
    this.timeline = h('ol', {
      class: 'timeline', 'data-testid': 'timeline', role: 'log',
      'aria-label': 'Conversation timeline', tabindex: '0',
    });
    this.typing = h('div', { class: 'typing', 'aria-live': 'polite' });
    this.composer = this.buildComposer();
    mount(this.el,
      h('section', { class: 'conv-pane', 'aria-labelledby': this.title.id },
        h('header', { class: 'conv-head' },
          h('div', { class: 'conv-head-main' }, this.title, this.headerMeta),
          h('div', { class: 'conv-actions' }, this.transferBtn, this.resolveBtn)),
        this.pinned,
        this.timeline,
        this.typing,
        this.composer));
    this.setItem(this.item);
  }

  buildComposer() {
    const replyId = nextId('reply');
    const noteId = nextId('note');
    this.channelSelect = h('select', { 'data-testid': 'reply-channel', 'aria-label': 'Reply channel', class: 'reply-channel' });
    this.channelNotes = h('div', { class: 'channel-notes small' });
    this.replyBody = h('textarea', {
      id: replyId, 'data-testid': 'reply-body', rows: '3', class: 'reply-body',
      placeholder: 'Write a reply… (Ctrl+Enter to send)',
      on: {
        keydown: (ev) => {
          if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); this.send(); }
        },
        input: () => this.typed(),
      },
    });
    this.sendBtn = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'reply-send' }, 'Send');
    this.noteBody = h('textarea', {
      id: noteId, 'data-testid': 'note-body', rows: '2', class: 'note-body',
      placeholder: 'Only your team sees notes',
      on: { keydown: (ev) => { if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); this.addNote(); } } },
    });
    this.noteBtn = h('button', { type: 'button', class: 'btn btn-note', 'data-testid': 'note-add', on: { click: () => this.addNote() } }, 'Add note');
    const reply = h('form', {
      class: 'composer-reply',
      on: { submit: (ev) => { ev.preventDefault(); this.send(); } },
    },
    h('div', { class: 'composer-row' },
      h('label', { for: replyId, class: 'composer-label' }, 'Reply'),
      h('span', { class: 'composer-via' }, 'via'),
      this.channelSelect),
    this.channelNotes,
    this.replyBody,
    h('div', { class: 'composer-actions' }, this.sendBtn));
    const notes = h('div', { class: 'composer-note' },
      h('label', { for: noteId, class: 'composer-label' }, 'Internal note'),
      h('div', { class: 'composer-inline' }, this.noteBody, this.noteBtn));
    return h('div', { class: 'composer' }, reply, notes);
  }

  async reload() {
    const id = this.id;
    if (!id) return;
    const mine = ++this.loadSeq;
    let data;
    try {
      data = await get(`/conversations/${seg(id)}`);
    } catch (e) {
      if (mine === this.loadSeq && this.id === id) toast(`Conversation not loaded: ${e.message}`, 'error');
      return;
    }
    if (mine !== this.loadSeq || this.id !== id) return;
    this.data = data;
    this.render();
  }

  async loadChannels() {
    const id = this.id;
    let res;
    try {
      res = await get(`/conversations/${seg(id)}/reply-channels`);
    } catch {
      res = null;
    }
    if (this.id !== id) return;
    const previous = this.channelSelect.value;
    const channels = res?.channels ?? [];
    const allowed = channels.filter((c) => c.allowed);
    const refused = channels.filter((c) => !c.allowed);
    mount(this.channelSelect, allowed.map((c) => h('option', {
      value: c.plugin_id,
      'data-channel': c.channel,
    }, `${c.display_name}${c.identity ? ` · ${c.identity}` : ''}`)));
    if (!res) {
      // Without the list, offer the conversation's current channel so replying still works.
      const last = this.data?.last_plugin_id ?? this.data?.last_channel ?? this.item?.conversation?.last_plugin_id;
      const ch = this.data?.last_channel ?? this.item?.conversation?.last_channel;
      if (last) this.channelSelect.append(h('option', { value: last, 'data-channel': ch ?? '' }, channelName(ch)));
    }
    const want = allowed.some((c) => c.plugin_id === previous) ? previous : (res?.default ?? allowed[0]?.plugin_id);
    if (want) this.channelSelect.value = want;
    mount(this.channelNotes, refused.map((c) => h('span', { class: 'channel-refused' },
      `${c.display_name} not offered: ${reasonText(c.reason)}`)));
    const none = this.channelSelect.options.length === 0;
    this.sendBtn.disabled = none;
    if (none) this.channelNotes.prepend(h('span', { class: 'channel-refused' }, 'No channel can reach this customer right now.'));
  }

  render() {
    const d = this.data;
    const contact = d.contact ?? {};
    this.title.textContent = contact.display_name || 'Unknown customer';
    const channels = this.item?.channels ?? [...new Set((d.timeline ?? []).map((e) => e.channel).filter(Boolean))];
    mount(this.headerMeta,
      h('span', { class: 'conv-display' }, `#${d.display_id}`),
      h('span', { class: ['badge', 'badge-status', `status-${d.status}`] }, d.status),
      channels.map(channelBadge));

    const ho = latestHandoff(d.timeline);
    mount(this.pinned, ho ? handoffCard(ho.data.context, {
      title: 'Hand-off (pinned)',
      from: this.names.get(ho.data.from_agent?.id ?? ho.data.from_agent) ?? ho.data.from_agent?.name,
      at: ho.occurred_at,
    }, { 'data-testid': 'handoff-pinned' }) : null);

    const atBottom = this.timeline.scrollHeight - this.timeline.scrollTop - this.timeline.clientHeight < 60;
    const first = this.timeline.childElementCount === 0;
    mount(this.timeline, (d.timeline ?? []).length === 0
      ? h('li', { class: 'empty small' }, 'Nothing here yet.')
      : timelineItems(d.timeline, this.names));
    if (first || atBottom) this.timeline.scrollTop = this.timeline.scrollHeight;
  }

  showTyping() {
    this.typing.textContent = 'customer is typing…';
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => { this.typing.textContent = ''; }, TYPING_SHOW_MS);
  }

  selectedChannel() {
    const opt = this.channelSelect.selectedOptions[0];
    return opt?.dataset.channel || this.data?.last_channel || '';
  }

  typed() {
    if (this.selectedChannel() !== 'webchat') return;
    const now = Date.now();
    if (now - this.lastTypingSent < TYPING_SEND_MS || !this.replyBody.value.trim()) return;
    this.lastTypingSent = now;
    post(`/conversations/${seg(this.id)}/typing`).catch(() => {});
  }

  async send() {
    const body = this.replyBody.value.trim();
    if (!body || this.sendBtn.disabled) return;
    const id = this.id;
    this.sendBtn.disabled = true;
    try {
      const payload = { body };
      if (this.channelSelect.value) payload.channel = this.channelSelect.value;
      await post(`/conversations/${seg(id)}/messages`, payload);
      if (this.id === id) this.replyBody.value = '';
      this.clearTypingLine();
      this.onSent?.();
      await this.reload();
    } catch (e) {
      toast(e.code === 'opted_out' ? 'Not sent: the customer opted out of this channel.' : `Not sent: ${e.message}`, 'error');
      if (e.code === 'opted_out') this.loadChannels();
    } finally {
      this.sendBtn.disabled = this.channelSelect.options.length === 0;
      this.replyBody.focus();
    }
  }

  clearTypingLine() { this.lastTypingSent = 0; }

  async addNote() {
    const body = this.noteBody.value.trim();
    if (!body) return;
    this.noteBtn.disabled = true;
    try {
      await post(`/conversations/${seg(this.id)}/notes`, { body });
      this.noteBody.value = '';
      await this.reload();
    } catch (e) {
      toast(`Note not saved: ${e.message}`, 'error');
    } finally {
      this.noteBtn.disabled = false;
    }
  }
}

function reasonText(reason) {
  if (reason === 'opted_out') return 'opted out';
  if (!reason) return 'unavailable';
  return String(reason).replace(/_/g, ' ');
}
