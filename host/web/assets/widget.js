/*
 * Switchboard webchat widget — embed it on any site with
 *
 *   <script src="https://SWITCHBOARD-HOST/widget.js" async></script>
 *
 * It adds a floating "Chat with us" button in the bottom-right corner that opens the
 * chat page (SWITCHBOARD-HOST/webchat/) in an iframe. The chat itself lives entirely in
 * that frame (its own origin, its own storage); this script only places the button and
 * the frame, and talks to the frame through postMessage (origin-checked both ways).
 *
 * Rules it follows: no markup strings (text only through textContent), no inline style attributes — the
 * elements are built with the DOM and styled through the CSSOM (element.style), which a
 * host page's Content-Security-Policy does not block.
 */
(function () {
  'use strict';

  if (window.__switchboardWidget) return; // loaded twice: keep the first
  window.__switchboardWidget = true;

  var script = document.currentScript;
  var src = (script && script.src) || '';
  if (!src) {
    // document.currentScript is null only in exotic loaders; fall back to the last
    // script whose src ends in widget.js.
    var scripts = document.getElementsByTagName('script');
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(scripts[i].src)) { src = scripts[i].src; break; }
    }
  }
  var hostUrl;
  try {
    hostUrl = new URL(src || '/widget.js', location.href);
  } catch (e) {
    return;
  }
  var HOST_ORIGIN = hostUrl.origin;
  var CHAT_URL = new URL('/webchat/', hostUrl).href;
  var Z = '2147483000';
  var ACCENT = '#1f5fd1';

  function setStyles(el, styles) {
    for (var k in styles) {
      if (Object.prototype.hasOwnProperty.call(styles, k)) el.style[k] = styles[k];
    }
  }

  var SVG_NS = 'http://www.w3.org/2000/svg';
  function icon(kind) {
    var svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '26');
    svg.setAttribute('height', '26');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    var path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('fill', 'currentColor');
    path.setAttribute(
      'd',
      kind === 'close'
        ? 'M18.3 5.7a1 1 0 0 0-1.4 0L12 10.6 7.1 5.7a1 1 0 1 0-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 1 0 1.4 1.4l4.9-4.9 4.9 4.9a1 1 0 0 0 1.4-1.4L13.4 12l4.9-4.9a1 1 0 0 0 0-1.4z'
        : 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8.4L4.7 21.3A1 1 0 0 1 3 20.6V6a2 2 0 0 1 1-2zm3 5a1.3 1.3 0 1 0 0 2.6A1.3 1.3 0 0 0 7 9zm5 0a1.3 1.3 0 1 0 0 2.6A1.3 1.3 0 0 0 12 9zm5 0a1.3 1.3 0 1 0 0 2.6A1.3 1.3 0 0 0 17 9z'
    );
    svg.appendChild(path);
    return svg;
  }

  var launcher = document.createElement('button');
  launcher.type = 'button';
  launcher.setAttribute('data-testid', 'webchat-launcher');
  launcher.setAttribute('aria-label', 'Chat with us');
  launcher.setAttribute('aria-expanded', 'false');
  var openIcon = icon('chat');
  var closeIcon = icon('close');
  closeIcon.style.display = 'none';
  launcher.appendChild(openIcon);
  launcher.appendChild(closeIcon);
  var badge = document.createElement('span');
  badge.setAttribute('aria-hidden', 'true');
  setStyles(badge, {
    position: 'absolute', top: '-2px', right: '-2px', minWidth: '18px', height: '18px',
    padding: '0 5px', boxSizing: 'border-box', borderRadius: '9px', background: '#d93025',
    color: '#fff', font: '700 11px/18px system-ui, -apple-system, "Segoe UI", sans-serif',
    textAlign: 'center', display: 'none'
  });
  launcher.appendChild(badge);
  setStyles(launcher, {
    position: 'fixed', right: '20px', bottom: '20px', width: '60px', height: '60px',
    margin: '0', padding: '0', border: '0', borderRadius: '50%', background: ACCENT,
    color: '#fff', cursor: 'pointer', zIndex: Z, display: 'flex', alignItems: 'center',
    justifyContent: 'center', boxShadow: '0 6px 20px rgba(0,0,0,.25)',
    transition: 'transform .15s ease', outlineOffset: '3px'
  });
  launcher.addEventListener('mouseenter', function () { launcher.style.transform = 'scale(1.06)'; });
  launcher.addEventListener('mouseleave', function () { launcher.style.transform = ''; });
  launcher.addEventListener('focus', function () {
    if (launcher.matches && launcher.matches(':focus-visible')) {
      launcher.style.outline = '3px solid ' + ACCENT;
    }
  });
  launcher.addEventListener('blur', function () { launcher.style.outline = ''; });

  var panel = null; // the wrapper around the iframe, created on first open
  var frame = null;
  var frameReady = false;
  var open = false;
  var unread = 0;
  var narrow = window.matchMedia ? window.matchMedia('(max-width: 480px)') : null;

  function layout() {
    if (!panel) return;
    var small = narrow && narrow.matches;
    if (small) {
      setStyles(panel, {
        top: '0', left: '0', right: '0', bottom: '0', width: '100%', height: '100%',
        maxHeight: 'none', borderRadius: '0'
      });
    } else {
      setStyles(panel, {
        top: 'auto', left: 'auto', right: '20px', bottom: '92px', width: '370px',
        height: '580px', maxHeight: 'calc(100vh - 112px)', borderRadius: '14px'
      });
    }
    // On a phone the frame covers the screen; its own header has the close button.
    launcher.style.display = small && open ? 'none' : 'flex';
  }

  function createPanel() {
    panel = document.createElement('div');
    setStyles(panel, {
      position: 'fixed', zIndex: Z, overflow: 'hidden', background: '#fff',
      boxShadow: '0 12px 40px rgba(0,0,0,.28)', display: 'none'
    });
    frame = document.createElement('iframe');
    frame.title = 'Chat with us';
    frame.setAttribute('allow', 'clipboard-write');
    // The chat page learns our origin so it can address its postMessages to us only.
    frame.src = CHAT_URL + '#parent=' + encodeURIComponent(location.origin);
    setStyles(frame, { width: '100%', height: '100%', border: '0', display: 'block' });
    frame.addEventListener('load', function () { frameReady = true; });
    panel.appendChild(frame);
    document.body.appendChild(panel);
    launcher.setAttribute('aria-controls', 'switchboard-webchat-panel');
    panel.id = 'switchboard-webchat-panel';
    layout();
  }

  function tellFrame(msg) {
    if (frame && frame.contentWindow) frame.contentWindow.postMessage(msg, HOST_ORIGIN);
  }

  function setUnread(n) {
    unread = n;
    badge.textContent = n > 9 ? '9+' : String(n);
    badge.style.display = n > 0 ? 'block' : 'none';
    launcher.title = n > 0 ? n + ' new message' + (n > 1 ? 's' : '') : '';
  }

  function show() {
    if (!panel) createPanel();
    open = true;
    panel.style.display = 'block';
    launcher.setAttribute('aria-expanded', 'true');
    openIcon.style.display = 'none';
    closeIcon.style.display = 'block';
    setUnread(0);
    layout();
    // Move the keyboard into the chat; the page inside focuses its first field.
    frame.focus();
    if (frameReady) tellFrame({ type: 'switchboard:opened' });
  }

  function hide(returnFocus) {
    if (!panel || !open) return;
    open = false;
    panel.style.display = 'none'; // the frame stays loaded: the socket keeps running
    launcher.setAttribute('aria-expanded', 'false');
    openIcon.style.display = 'block';
    closeIcon.style.display = 'none';
    layout();
    if (returnFocus) launcher.focus();
  }

  launcher.addEventListener('click', function () {
    if (open) hide(true);
    else show();
  });

  document.addEventListener('keydown', function (e) {
    if (open && (e.key === 'Escape' || e.key === 'Esc')) hide(true);
  });

  window.addEventListener('message', function (e) {
    if (e.origin !== HOST_ORIGIN || !frame || e.source !== frame.contentWindow) return;
    var data = e.data;
    if (!data || typeof data !== 'object' || typeof data.type !== 'string') return;
    if (data.type === 'switchboard:close') hide(true);
    else if (data.type === 'switchboard:ready') {
      frameReady = true;
      if (open) tellFrame({ type: 'switchboard:opened' });
    } else if (data.type === 'switchboard:unread' && !open) setUnread(unread + 1);
  });

  if (narrow) {
    if (narrow.addEventListener) narrow.addEventListener('change', layout);
    else if (narrow.addListener) narrow.addListener(layout);
  }

  function mount() { document.body.appendChild(launcher); }
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);
})();
