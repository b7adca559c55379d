// The agent desk: the softphone, offers, my conversations, the open conversation and
// its customer on one screen. REST is the source of truth; realtime messages only say
// "something changed, reload that part", which keeps a missed or reordered message
// harmless. The softphone belongs to the session (calls outlive this view); the desk
// places its bar, feeds it the voice offers and answers through the offer flow.

import { h, mount as replace, toast } from './dom.js';
import { get, post, seg } from './api.js';
import { renderOffers, offerChannel } from './desk-offers.js';
import { renderList } from './desk-list.js';
import { ConversationPane } from './desk-conversation.js';
import { CustomerPanel } from './desk-customer.js';
import { openTransfer, openResolve } from './desk-dialogs.js';

const TABS = [
  ['offers', 'Offers'],
  ['list', 'Conversations'],
  ['conversation', 'Conversation'],
  ['customer', 'Customer'],
];

// The last conversation open survives switching to the wallboard and back.
let lastOpenId = null;

function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

export function mount(container, { me, rt, phone, params }) {
  const softphone = phone?.() ?? null;
  const offers = new Map();
  let items = [];
  let openId = null;
  let destroyed = false;
  const names = new Map([[me.id, me.name]]);

  const offersEl = h('div', { class: 'offers', 'aria-live': 'assertive', 'aria-relevant': 'additions', 'aria-label': 'Incoming offers' });
  const listEl = h('ul', { class: 'conv-list', 'data-testid': 'conversation-list', 'aria-label': 'My conversations' });
  const convEl = h('div', { class: 'conv-slot' });
  const custEl = h('div', { class: 'cust-slot' });
  const tabButtons = new Map();
  const tabbar = h('nav', { class: 'tabbar', 'aria-label': 'Desk sections' },
    TABS.map(([key, label]) => {
      const count = h('span', { class: 'tab-count' });
      const b = h('button', { type: 'button', class: 'tab', 'data-tab': key, on: { click: () => setTab(key) } }, label, count);
      tabButtons.set(key, { b, count });
      return b;
    }));

  const phoneEl = softphone ? softphone.attach({
    onAnswer: (offer) => accept(offer),
    onDialed: (call) => followCall(call),
    onCalls: () => drawOffers(),
  }) : null;

  const root = h('div', { class: 'desk', 'data-tab': 'list' },
    phoneEl ? h('div', { class: 'desk-phone' }, phoneEl) : null,
    h('section', { class: 'desk-col desk-left', 'aria-label': 'Offers and conversations' },
      h('div', { class: 'desk-offers', 'data-section': 'offers' },
        h('h2', { class: 'col-title' }, 'Offers'), offersEl),
      h('div', { class: 'desk-list', 'data-section': 'list' },
        h('h2', { class: 'col-title' }, 'My conversations'), listEl)),
    h('section', { class: 'desk-col desk-center', 'data-section': 'conversation', 'aria-label': 'Conversation' }, convEl),
    h('aside', { class: 'desk-col desk-right', 'data-section': 'customer', 'aria-label': 'Customer details' }, custEl),
    tabbar);
  replace(container, root);

  const pane = new ConversationPane(convEl, {
    names,
    onTransfer: (p) => openTransfer(p, { me, onDone: () => { toast('Transferred.'); closeConversation(); loadList(); } }),
    onResolve: (p) => openResolve(p, { onDone: () => { toast('Resolved.'); closeConversation(); loadList(); } }),
    onSent: () => loadList(),
  });
  const customer = new CustomerPanel(custEl, {
    onCall: softphone ? (number, contactId) => softphone.dial(number, contactId) : null,
  });

  function setTab(key) {
    root.dataset.tab = key;
    for (const [k, { b }] of tabButtons) b.setAttribute('aria-current', k === key ? 'page' : 'false');
  }
  setTab('list');

  function updateCounts() {
    tabButtons.get('offers').count.textContent = offers.size ? ` ${offers.size}` : '';
    const unread = items.reduce((n, i) => n + (i.unread ?? 0), 0);
    tabButtons.get('list').count.textContent = unread ? ` ${unread}` : '';
    root.classList.toggle('has-offers', offers.size > 0);
  }

  // ------------------------------------------------------------ offers

  function drawOffers() {
    if (destroyed) return;
    softphone?.setOffers([...offers.values()].filter((o) => offerChannel(o) === 'voice'));
    renderOffers(offersEl, offers, {
      onAccept: accept,
      onReject: reject,
      callNumber: (o) => softphone?.numberFor(o) ?? null,
    });
    updateCounts();
  }

  async function loadOffers() {
    try {
      const res = await get('/agents/me/offers');
      if (destroyed) return;
      offers.clear();
      for (const o of res.offers ?? []) offers.set(o.reservation.id, o);
      drawOffers();
    } catch (e) {
      if (!destroyed) console.warn('offers', e);
    }
  }

  async function accept(offer) {
    const id = offer.reservation.id;
    // Answering a call is a click: the moment the browser lets the far end play.
    if (offerChannel(offer) === 'voice') softphone?.unlock();
    try {
      await post(`/reservations/${seg(id)}/accept`);
      offers.delete(id);
      drawOffers();
      await loadList();
      const convId = offer.conversation_id ?? offer.conversation?.id;
      if (convId) open(convId);
    } catch (e) {
      offers.delete(id);
      drawOffers();
      toast(e.status === 404 || e.status === 409 ? 'That offer is no longer available.' : `Not accepted: ${e.message}`, 'error');
      loadOffers();
    }
  }

  async function reject(offer) {
    const id = offer.reservation.id;
    try {
      await post(`/reservations/${seg(id)}/reject`);
    } catch (e) {
      if (e.status !== 404 && e.status !== 409) toast(`Not rejected: ${e.message}`, 'error');
    }
    offers.delete(id);
    drawOffers();
  }

  // ------------------------------------------------------------ conversations

  let listSeq = 0;
  async function loadListNow() {
    const mine = ++listSeq;
    try {
      const res = await get('/agents/me/conversations');
      if (destroyed || mine !== listSeq) return;
      items = res.conversations ?? [];
      drawList();
      const current = items.find((i) => i.conversation.id === openId);
      if (current) pane.setItem(current);
    } catch (e) {
      if (!destroyed) console.warn('conversations', e);
    }
  }
  const loadList = debounce(loadListNow, 120);

  function drawList() {
    renderList(listEl, items, openId, (item) => open(item.conversation.id));
    updateCounts();
  }

  async function open(id) {
    openId = id;
    lastOpenId = id;
    const item = items.find((i) => i.conversation.id === id);
    drawList();
    setTab('conversation');
    const contactId = item?.contact?.id;
    if (contactId) customer.load(contactId);
    markRead(id);
    await pane.open(id, item);
    if (!contactId && pane.data?.contact?.id && openId === id) customer.load(pane.data.contact.id);
  }

  function markRead(id) {
    const item = items.find((i) => i.conversation.id === id);
    if (item && item.unread) { item.unread = 0; drawList(); }
    post(`/conversations/${seg(id)}/read`).catch(() => {});
  }

  // A call I placed opens its conversation, so the customer's history is on screen
  // while it rings.
  async function followCall(call) {
    const convId = call?.conversation_id;
    if (!convId || convId === openId) return;
    await loadListNow();
    if (!destroyed) open(convId);
  }

  function closeConversation() {
    openId = null;
    lastOpenId = null;
    pane.empty();
    customer.empty();
    setTab('list');
    drawList();
  }

  // ------------------------------------------------------------ realtime

  // A new event can bring a new channel, identity or consent change (an SMS from a
  // just-linked number, a STOP), so the reply channels and the customer reload too.
  const refreshOpen = debounce(() => {
    if (!openId) return;
    pane.reload();
    pane.loadChannels();
    const contactId = pane.data?.contact?.id ?? items.find((i) => i.conversation.id === openId)?.contact?.id;
    if (contactId) customer.load(contactId);
    if (document.visibilityState === 'visible') markRead(openId);
  }, 150);

  const reloadTimeline = debounce(() => { if (openId) pane.reload(); }, 150);

  const offs = [
    rt.on('offer.created', (d) => {
      if (d?.reservation?.id) {
        offers.set(d.reservation.id, d);
        drawOffers();
        if (root.dataset.tab === 'list') setTab('offers');
      }
      // The pushed offer may lack the enriched fields; the REST list has them.
      loadOffers();
    }),
    rt.on('offer.expired', (d) => { offers.delete(d?.reservation?.id ?? d?.reservation_id); drawOffers(); }),
    rt.on('offer.canceled', (d) => { offers.delete(d?.reservation?.id ?? d?.reservation_id); drawOffers(); }),
    rt.on('task.updated', () => loadList()),
    rt.on('conversation.updated', (d) => {
      loadList();
      if (d?.conversation_id === openId || d?.id === openId || d?.conversation?.id === openId) refreshOpen();
    }),
    rt.on('timeline.created', (d) => {
      loadList();
      if (d?.conversation_id && d.conversation_id === openId) refreshOpen();
    }),
    // A file finished copying from the provider (stored or failed): the timeline
    // redraws it; pictures already shown are kept, not fetched again.
    rt.on('timeline.updated', (d) => {
      if (d?.conversation_id && d.conversation_id === openId) reloadTimeline();
    }),
    // A delivery receipt (sent, delivered, failed with the provider's reason).
    rt.on('timeline.delivery', (d) => { if (pane.shows(d?.event_id)) reloadTimeline(); }),
    rt.on('webchat.typing', (d) => { if (d?.conversation_id === openId) pane.showTyping(); }),
    rt.on('resync', () => resync()),
    // Reconnecting may have missed pushes without a resync (e.g. the host restarted).
    rt.on('state', (s) => { if (s === 'connected') resync(); }),
  ];

  function resync() {
    loadOffers();
    loadList();
    if (openId) {
      pane.reload();
      pane.loadChannels();
      const item = items.find((i) => i.conversation.id === openId);
      const contactId = item?.contact?.id ?? pane.data?.contact?.id;
      if (contactId) customer.load(contactId);
    }
  }

  // Agent names for timeline authors; agents may not list colleagues (403), which is fine.
  get('/agents').then((r) => {
    for (const a of r.agents ?? []) names.set(a.id, a.name);
    if (pane.data) pane.render();
  }).catch(() => {});

  drawOffers();
  loadOffers();
  // `#/desk?conversation=<id>` (a report's drill-down links here) opens that one,
  // whoever holds it: supervisors read any conversation.
  const asked = params?.get('conversation');
  loadListNow().then(() => {
    if (destroyed) return;
    if (asked) open(asked);
    else if (lastOpenId) open(lastOpenId);
    else setTab('list');
  });

  return () => {
    destroyed = true;
    offs.forEach((off) => off());
    pane.release();
    softphone?.detach();
  };
}
