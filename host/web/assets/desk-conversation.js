// The open conversation: header with actions, the pinned hand-off, the timeline, the
// typing hint and the composer (desk-composer.js). The composer is built once per
// conversation so a half-written reply survives the timeline reloading under it. The
// pane owns the object URLs of the timeline's pictures (a FileShelf) and lets them go
// when the conversation closes.

import { h, mount, toast, nextId } from './dom.js';
import { get, seg } from './api.js';
import { channelBadge } from './channels.js';
import { timelineItems } from './desk-timeline.js';
import { FileShelf } from './desk-files.js';
import { EmailShelf } from './desk-email.js';
import { Composer } from './desk-composer.js';
import { handoffCard, latestHandoff } from './handoff.js';

const TYPING_SHOW_MS = 4000;
// Agents get no push when the outbox hands a reply over or a provider reports on it
// later (delivery receipts go to supervisors), so the pane looks again: shortly after
// each send, then every minute while a recent reply has no final status.
const FOLLOW_UP_MS = [2000, 6000, 20000];
const RECHECK_MS = 60_000;
const RECENT_MS = 15 * 60_000;
const FINAL = new Set(['delivered', 'read', 'failed', 'undelivered']);

function lastInbound(timeline) {
  for (let i = (timeline?.length ?? 0) - 1; i >= 0; i -= 1) {
    const e = timeline[i];
    if (e.kind === 'message' && e.direction === 'in') return e.id;
  }
  return null;
}

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
    this.files = new FileShelf();
    this.emails = new EmailShelf();
    this.composer = null;
    this.followUps = [];
    this.recheck = null;
    this.empty();
  }

  empty(text = 'Select a conversation, or accept an offer.') {
    this.release();
    this.id = null;
    this.data = null;
    mount(this.el, h('div', { class: 'empty pane-empty' }, text));
  }

  /** Lets go of what the open conversation holds: picture URLs, the window timer. */
  release() {
    this.files.clear();
    this.emails.clear();
    this.composer?.dispose();
    this.composer = null;
    this.followUps.forEach(clearTimeout);
    this.followUps = [];
    clearInterval(this.recheck);
    this.recheck = null;
  }

  /** Reloads a few times after a send, to show what became of it. */
  followDelivery() {
    this.followUps.forEach(clearTimeout);
    this.followUps = FOLLOW_UP_MS.map((ms) => setTimeout(() => this.reload(), ms));
  }

  /** Whether a reply of the last minutes still waits for its final status. */
  unsettled(now = Date.now()) {
    return (this.data?.timeline ?? []).some((e) => e.kind === 'message' && e.direction === 'out'
      && e.delivery_status && !FINAL.has(e.delivery_status) && now - e.occurred_at < RECENT_MS);
  }

  /** Opens conversation `id`; `item` is its entry in my list (carries the task). */
  async open(id, item) {
    if (this.id !== id) {
      this.release();
      this.id = id;
      this.data = null;
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
    this.lastInboundId = undefined;
    this.composer = new Composer(this.id, {
      conversation: () => this.data,
      fallbackChannel: () => this.item?.conversation ?? null,
      onSent: async ({ note = false } = {}) => {
        if (!note) {
          this.onSent?.();
          this.followDelivery();
        }
        await this.reload();
      },
    });
    this.recheck = setInterval(() => { if (this.unsettled()) this.reload(); }, RECHECK_MS);
    mount(this.el,
      h('section', { class: 'conv-pane', 'aria-labelledby': this.title.id },
        h('header', { class: 'conv-head' },
          h('div', { class: 'conv-head-main' }, this.title, this.headerMeta),
          h('div', { class: 'conv-actions' }, this.transferBtn, this.resolveBtn)),
        this.pinned,
        this.timeline,
        this.typing,
        this.composer.el));
    this.setItem(this.item);
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

  /** Reloads the reply channels (and with them the messaging window). */
  async loadChannels() {
    await this.composer?.loadChannels();
  }

  /** Whether event `eventId` is on the open timeline. */
  shows(eventId) {
    return Boolean(eventId && this.data?.timeline?.some((e) => e.id === eventId));
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
    this.files.begin();
    this.emails.begin();
    mount(this.timeline, (d.timeline ?? []).length === 0
      ? h('li', { class: 'empty small' }, 'Nothing here yet.')
      : timelineItems(d.timeline, { names: this.names, files: this.files, emails: this.emails }));
    this.files.sweep();
    this.emails.sweep();
    this.composer?.conversationChanged();
    if (first || atBottom) this.timeline.scrollTop = this.timeline.scrollHeight;

    // A new message from the customer reopens (or restarts) the messaging window.
    const inbound = lastInbound(d.timeline);
    if (this.lastInboundId !== undefined && inbound !== this.lastInboundId) this.composer?.refreshWindow();
    this.lastInboundId = inbound;
  }

  showTyping() {
    this.typing.textContent = 'customer is typing…';
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => { this.typing.textContent = ''; }, TYPING_SHOW_MS);
  }
}
