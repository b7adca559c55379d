// The composer under the open conversation: the reply channel, its messaging window,
// the free-text reply with attached files — or, while the window is closed, the
// template picker in its place — the composer's error line, and internal notes.
// Built once per conversation, so a half-written reply and its files survive the
// timeline reloading above it and a detour through the template picker.

import { h, mount, nextId } from './dom.js';
import { get, post, seg } from './api.js';
import { channelName } from './channels.js';
import { clock } from './time.js';
import { readableBytes } from './files.js';
import { ReplyFiles } from './desk-reply-files.js';
import { TemplatePicker } from './desk-templates.js';
import { EmailComposer } from './desk-email-composer.js';
import { describeWindow, loadWindow, windowClosed } from './desk-window.js';

const TYPING_SEND_MS = 2000;
const WINDOW_REFRESH_MS = 60_000;

function reasonText(reason) {
  if (reason === 'opted_out') return 'opted out';
  if (!reason) return 'unavailable';
  return String(reason).replace(/_/g, ' ');
}

function ctrlEnter(fn) {
  return (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); fn(); }
  };
}

export class Composer {
  /**
   * For conversation `id`. `conversation()` is what the pane loaded (or null),
   * `fallbackChannel()` the list entry's channel; `onSent()` runs after a reply or
   * note was accepted.
   */
  constructor(id, { conversation, fallbackChannel, onSent }) {
    this.id = id;
    this.conversation = conversation;
    this.fallbackChannel = fallbackChannel;
    this.onSent = onSent;
    this.window = null;
    this.windowSeq = 0;
    this.mode = 'text';
    this.lastTypingSent = 0;
    this.sending = false;
    this.files = new ReplyFiles({ onError: (t) => this.showError(t), onChange: () => this.updateSend() });
    this.email = new EmailComposer({ conversation });
    this.picker = new TemplatePicker({
      contactName: () => this.conversation()?.contact?.display_name ?? '',
      onSend: (template) => this.sendTemplate(template),
    });
    this.el = this.build();
    this.timer = setInterval(() => this.refreshWindow(), WINDOW_REFRESH_MS);
  }

  build() {
    const replyId = nextId('reply');
    const noteId = nextId('note');
    this.channelSelect = h('select', {
      'data-testid': 'reply-channel', 'aria-label': 'Reply channel', class: 'reply-channel',
      on: { change: () => { this.picked = true; this.clearError(); this.channelMode(); this.refreshWindow(); } },
    });
    this.channelNotes = h('div', { class: 'channel-notes small' });
    this.windowLine = h('div', { class: 'reply-window', 'data-testid': 'reply-window', hidden: true });
    this.replyBody = h('textarea', {
      id: replyId, 'data-testid': 'reply-body', rows: '3', class: 'reply-body',
      placeholder: 'Write a reply… (Ctrl+Enter to send)',
      on: { keydown: ctrlEnter(() => this.send()), input: () => { this.clearError(); this.typed(); } },
    });
    this.sendBtn = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'reply-send' }, 'Send');
    this.error = h('div', { class: 'form-error composer-error', 'data-testid': 'reply-error', role: 'alert' });
    this.freeText = h('div', { class: 'composer-free' },
      this.email.fields,
      this.replyBody,
      this.email.extras,
      this.files.chips,
      h('div', { class: 'composer-actions' }, this.files.controls(), h('span', { class: 'composer-spacer' }), this.sendBtn));
    this.noteBody = h('textarea', {
      id: noteId, 'data-testid': 'note-body', rows: '2', class: 'note-body',
      placeholder: 'Only your team sees notes',
      on: { keydown: ctrlEnter(() => this.addNote()) },
    });
    this.noteBtn = h('button', { type: 'button', class: 'btn btn-note', 'data-testid': 'note-add', on: { click: () => this.addNote() } }, 'Add note');
    const reply = h('form', {
      class: 'composer-reply',
      on: { submit: (ev) => { ev.preventDefault(); if (this.mode === 'template') this.picker.send(); else this.send(); } },
    },
    h('div', { class: 'composer-row' },
      h('label', { for: replyId, class: 'composer-label' }, 'Reply'),
      h('span', { class: 'composer-via' }, 'via'),
      this.channelSelect,
      this.windowLine),
    this.channelNotes,
    this.freeText,
    this.picker.el,
    this.error);
    const notes = h('div', { class: 'composer-note' },
      h('label', { for: noteId, class: 'composer-label' }, 'Internal note'),
      h('div', { class: 'composer-inline' }, this.noteBody, this.noteBtn));
    return h('div', { class: 'composer' }, reply, notes);
  }

  dispose() {
    clearInterval(this.timer);
    this.files.clear();
  }

  // ------------------------------------------------------------ channels and window

  async loadChannels() {
    let res;
    try {
      res = await get(`/conversations/${seg(this.id)}/reply-channels`);
    } catch {
      res = null;
    }
    const previous = this.channelSelect.value;
    const channels = res?.channels ?? [];
    const allowed = channels.filter((c) => c.allowed);
    const refused = channels.filter((c) => !c.allowed);
    mount(this.channelSelect, allowed.map((c) => h('option', {
      value: c.plugin_id,
      'data-channel': c.channel,
      'data-identity': c.identity ?? '',
    }, `${c.display_name}${c.identity ? ` · ${c.identity}` : ''}`)));
    if (!res) {
      // Without the list, offer the conversation's current channel so replying still works.
      const d = this.conversation();
      const fallback = this.fallbackChannel();
      const last = d?.last_plugin_id ?? d?.last_channel ?? fallback?.last_plugin_id;
      const ch = d?.last_channel ?? fallback?.last_channel;
      if (last) this.channelSelect.append(h('option', { value: last, 'data-channel': ch ?? '' }, channelName(ch)));
    }
    // The conversation's current channel (the server's default) until the agent
    // picks one: a customer who moves from SMS to e-mail is answered by e-mail.
    const keep = this.picked && allowed.some((c) => c.plugin_id === previous);
    const want = keep ? previous : (res?.default ?? allowed[0]?.plugin_id);
    if (want) this.channelSelect.value = want;
    mount(this.channelNotes, refused.map((c) => h('span', { class: 'channel-refused' },
      `${c.display_name} not offered: ${reasonText(c.reason)}`)));
    if (this.channelSelect.options.length === 0) {
      this.channelNotes.prepend(h('span', { class: 'channel-refused' }, 'No channel can reach this customer right now.'));
    }
    this.updateSend();
    this.channelMode();
    if (this.channelSelect.value !== previous || !this.window) await this.refreshWindow();
  }

  /** E-mail gets its own fields (desk-email-composer.js); other channels do not. */
  channelMode() {
    const email = this.selectedChannel() === 'email';
    this.email.show(email, this.channelSelect.selectedOptions[0]?.dataset.identity ?? '');
    this.replyBody.placeholder = email
      ? 'Write your e-mail… (Ctrl+Enter to send)'
      : 'Write a reply… (Ctrl+Enter to send)';
    this.replyBody.rows = email ? 4 : 3;
  }

  /** The pane reloaded the conversation. */
  conversationChanged() {
    if (this.email.on) this.email.refresh();
  }

  /** Asks the host where the reply channel's window stands, and shows it. */
  async refreshWindow() {
    const pluginId = this.channelSelect.value;
    const mine = ++this.windowSeq;
    let w = null;
    if (pluginId) {
      try { w = await loadWindow(this.id, pluginId); } catch { w = null; }
    }
    if (mine !== this.windowSeq) return;
    this.applyWindow(w);
  }

  applyWindow(w) {
    this.window = w;
    const shown = describeWindow(w);
    this.windowLine.hidden = !shown;
    this.windowLine.dataset.state = shown?.state ?? '';
    let text = shown?.text ?? '';
    if (windowClosed(w) && !w.templates) text += ' — this channel has no templates, so nothing can be sent now';
    this.windowLine.textContent = text;
    this.setMode(windowClosed(w) && w.templates ? 'template' : 'text');
  }

  setMode(mode) {
    this.mode = mode;
    this.freeText.hidden = mode !== 'text';
    if (mode === 'template') this.picker.show(this.channelSelect.value);
    else this.picker.hide();
  }

  // ------------------------------------------------------------ sending

  showError(text) { this.error.textContent = readableBytes(text); }

  clearError() { this.error.textContent = ''; }

  updateSend() {
    this.sendBtn.disabled = this.channelSelect.options.length === 0 || this.files.busy() || this.sending;
  }

  selectedChannel() {
    const opt = this.channelSelect.selectedOptions[0];
    return opt?.dataset.channel || this.conversation()?.last_channel || '';
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
    const attachments = this.files.ids();
    if ((!body && attachments.length === 0) || this.sendBtn.disabled) return;
    const emailMode = this.email.on;
    let email = null;
    if (emailMode) {
      try {
        email = this.email.payload();
      } catch (e) {
        this.showError(e.message);
        return;
      }
    }
    this.sending = true;
    this.updateSend();
    try {
      const payload = { body, attachments };
      if (this.channelSelect.value) payload.channel = this.channelSelect.value;
      if (email) payload.email = email;
      await post(`/conversations/${seg(this.id)}/messages`, payload);
      this.replyBody.value = '';
      this.files.clear();
      if (emailMode) this.email.reset();
      this.clearError();
      this.lastTypingSent = 0;
      await this.onSent();
    } catch (e) {
      this.sendFailed(e);
    } finally {
      this.sending = false;
      this.updateSend();
      if (this.mode === 'text') this.replyBody.focus();
    }
  }

  sendFailed(e) {
    if (e.code === 'window_closed') {
      // The host is the judge: switch to templates now, then ask it for the details.
      const closed = Date.parse(e.details?.closed_at ?? '');
      this.showError(Number.isFinite(closed)
        ? `Not sent: the messaging window closed at ${clock(closed)}. Send an approved template instead.`
        : `Not sent: ${e.message}`);
      this.applyWindow({
        ...(this.window ?? {}), has_window: true, open: false, human_agent: false,
        closed_at: e.details?.closed_at ?? this.window?.closed_at ?? null,
        templates: this.window?.templates ?? true,
      });
      this.refreshWindow();
    } else if (e.code === 'opted_out') {
      this.showError('Not sent: the customer opted out of this channel.');
      this.loadChannels();
    } else {
      this.showError(`Not sent: ${e.message}`);
    }
  }

  /** Sends an approved template; true when the host took it. */
  async sendTemplate(template) {
    try {
      const payload = { template };
      if (this.channelSelect.value) payload.channel = this.channelSelect.value;
      await post(`/conversations/${seg(this.id)}/messages`, payload);
      this.clearError();
      await this.onSent();
      return true;
    } catch (e) {
      this.showError(e.code === 'templates_unsupported'
        ? `Not sent: ${e.message}.`
        : `Template not sent: ${e.message}`);
      return false;
    }
  }

  async addNote() {
    const body = this.noteBody.value.trim();
    if (!body) return;
    this.noteBtn.disabled = true;
    try {
      await post(`/conversations/${seg(this.id)}/notes`, { body });
      this.noteBody.value = '';
      await this.onSent({ note: true });
    } catch (e) {
      this.showError(`Note not saved: ${e.message}`);
    } finally {
      this.noteBtn.disabled = false;
    }
  }
}
