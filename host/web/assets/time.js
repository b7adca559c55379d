// Durations and clock times as agents read them at a glance.

/** "45s", "3m 12s", "1h 02m". */
export function duration(ms) {
  if (ms == null || !Number.isFinite(ms)) return '—';
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (hours > 0) return `${hours}h ${String(minutes).padStart(2, '0')}m`;
  if (minutes > 0) return `${minutes}m ${String(seconds).padStart(2, '0')}s`;
  return `${seconds}s`;
}

/** "0:07", "12:03", "1:02:03": a running call's clock. */
export function stopwatch(ms) {
  if (ms == null || !Number.isFinite(ms)) return '—';
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  if (hours > 0) return `${hours}:${String(minutes).padStart(2, '0')}:${seconds}`;
  return `${minutes}:${seconds}`;
}

/** "14:05" today, "12 Mar 14:05" otherwise. */
export function clock(ms) {
  if (ms == null) return '';
  const d = new Date(ms);
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${time}`;
}

/** "12 Mar 2025". */
export function date(ms) {
  if (ms == null) return '';
  return new Date(ms).toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' });
}

/** ISO form for <time datetime>. */
export function iso(ms) {
  return ms == null ? '' : new Date(ms).toISOString();
}

// One shared ticker rather than a timer per element: countdowns and waiting times
// across the desk update together, and elements that left the page drop out.
const ticking = new Set();
let timer = null;

/** Calls `fn(now)` every `period` ms while `el` is in the document. */
export function tick(el, fn) {
  const entry = { el, fn, born: Date.now(), seen: false };
  ticking.add(entry);
  fn(Date.now());
  if (!timer) {
    timer = setInterval(() => {
      const now = Date.now();
      for (const e of ticking) {
        // An element may be built before it is attached; drop it only once it has
        // been on the page and left, or never arrived.
        if (e.el.isConnected) e.seen = true;
        else if (e.seen || now - e.born > 5000) { ticking.delete(e); continue; }
        else continue;
        e.fn(now);
      }
      if (ticking.size === 0) { clearInterval(timer); timer = null; }
    }, 250);
  }
}
