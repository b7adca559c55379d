// Modal dialogs: native <dialog> opened with showModal() (which makes the rest of the
// page inert and gives Escape), plus an explicit Tab wrap so focus never leaves the
// dialog for the browser chrome mid-task, and focus goes back where it was on close.

import { h, nextId } from './dom.js';

const FOCUSABLE = 'button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])';

/**
 * Opens a dialog. `body` is a node or list of nodes; `onConfirm` may be async and
 * returns false (or throws) to keep the dialog open. `cancel: false` leaves out the
 * Cancel button (a dialog that only shows something); `wide` makes room for a table.
 * Returns `{close, el}`.
 */
export function openDialog({ title, body, confirmLabel = 'Confirm', confirmTestId, onConfirm, danger = false, cancel: withCancel = true, wide = false, testid }) {
  const previous = document.activeElement;
  const titleId = nextId('dlg-title');
  const errorBox = h('div', { class: 'dialog-error', role: 'alert' });
  const confirm = h('button', {
    type: 'submit',
    class: ['btn', danger ? 'btn-danger' : 'btn-primary'],
    'data-testid': confirmTestId,
  }, confirmLabel);
  const cancel = h('button', { type: 'button', class: 'btn', on: { click: () => close() } }, 'Cancel');
  const form = h('form', {
    class: 'dialog-form',
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        errorBox.textContent = '';
        confirm.disabled = true;
        try {
          const keep = await onConfirm?.(form);
          if (keep !== false) close();
        } catch (e) {
          errorBox.textContent = e.message || String(e);
        } finally {
          confirm.disabled = false;
        }
      },
    },
  },
  h('h2', { id: titleId, class: 'dialog-title' }, title),
  h('div', { class: 'dialog-body' }, body),
  errorBox,
  h('div', { class: 'dialog-actions' }, withCancel ? cancel : null, confirm));

  const dlg = h('dialog', { class: ['dialog', wide && 'dialog-wide'], 'aria-labelledby': titleId, 'data-testid': testid }, form);

  dlg.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Tab') return;
    const items = [...dlg.querySelectorAll(FOCUSABLE)].filter((el) => !el.disabled && el.offsetParent !== null);
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
  });
  // Escape fires `cancel`; route it through close() so cleanup is the same.
  dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); close(); });

  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    if (dlg.open) dlg.close();
    dlg.remove();
    if (previous && previous.isConnected) previous.focus();
  }

  document.body.append(dlg);
  dlg.showModal();
  const firstField = dlg.querySelector('input, select, textarea');
  (firstField ?? confirm).focus();
  return { close, el: dlg, form, setError: (t) => { errorBox.textContent = t; } };
}
