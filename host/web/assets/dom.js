// Element construction for the whole client. Customer text reaches the page only as
// text nodes built here, so a message containing markup shows as characters; nothing
// in the client parses HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Properties rather than attributes for these, so a re-render reflects live state
// (an attribute `value` only sets the default of an input, not what it shows).
const PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'indeterminate']);

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'on') {
      for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    } else if (key === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) if (v != null) el.dataset[k] = String(v);
    } else if (key === 'ref') {
      value(el);
    } else if (key === 'style') {
      // CSSOM, never a style attribute string: the CSP forbids inline style attributes.
      for (const [k, v] of Object.entries(value)) el.style.setProperty(k, v);
    } else if (PROPS.has(key) && !(el instanceof SVGElement)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === true) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Builds an HTML element; strings among the children become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Builds an SVG element (namespaced, so it renders inside an <svg>). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Replaces every child of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A fresh id for pairing <label for> with its control. */
export function nextId(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field: the label is a real <label for>, so the control has a name. */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId('fld');
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hint ? h('div', { class: 'hint' }, hint) : null);
}

/** A <select> from [value, label] pairs. */
export function select(attrs, options, current) {
  return h('select', attrs, options.map(([value, label]) =>
    h('option', { value, selected: String(value) === String(current ?? '') }, label)));
}

/** Shows a transient status message in the app's polite live region. */
export function toast(text, kind = 'info') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', { class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : 'status' }, text);
  region.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 7000 : 4000);
}
