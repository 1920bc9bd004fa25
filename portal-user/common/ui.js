// Small DOM helpers shared by both portals. Text always goes in through textContent or
// i18n keys, never as HTML.

import { t, applyI18n, onLangChange, formatNumber } from './i18n.js';
import { ApiError } from './api.js';

// h('button', {class: 'btn', i18n: 'login.submit', onclick: fn}, child, ...)
//   i18n / i18nArgs / i18nPlaceholder / i18nLabel / i18nTitle: translated text
//   text: literal text; class; dataset: {...}; on<event>: listener; anything else: attribute
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs || {});
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'i18n') el.setAttribute('data-i18n', v);
    else if (k === 'i18nArgs') el.setAttribute('data-i18n-args', JSON.stringify(v));
    else if (k === 'i18nPlaceholder') el.setAttribute('data-i18n-placeholder', v);
    else if (k === 'i18nLabel') el.setAttribute('data-i18n-label', v);
    else if (k === 'i18nTitle') el.setAttribute('data-i18n-title', v);
    else if (k === 'date') el.setAttribute('data-date', v === '' ? '' : String(v));
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  if (attrs.i18n || attrs.i18nPlaceholder || attrs.i18nLabel || attrs.i18nTitle || attrs.date !== undefined) {
    applyI18n(el);
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Re-labels an element: setText(el, 'key', {n: 1}).
export function setText(el, key, args) {
  el.setAttribute('data-i18n', key);
  if (args) el.setAttribute('data-i18n-args', JSON.stringify(args));
  else el.removeAttribute('data-i18n-args');
  applyI18n(el);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// --- icons (inline SVG, drawn with currentColor) -------------------------------------
const ICONS = {
  logo: ['M4 5a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2z', 'M9 20h6', 'M12 16v4', 'M8.5 9.5l2 2 4-4'],
  monitor: ['M3 5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z', 'M8 21h8', 'M12 17v4'],
  user: ['M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2', 'M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z'],
  users: ['M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2', 'M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M23 21v-2a4 4 0 0 0-3-3.87', 'M16 3.13a4 4 0 0 1 0 7.75'],
  group: ['M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z'],
  audit: ['M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z', 'M14 3v6h6', 'M8 13h8', 'M8 17h5'],
  logout: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4', 'M16 17l5-5-5-5', 'M21 12H9'],
  key: ['M21 2l-2 2', 'M15.5 7.5l3 3L22 7l-3-3', 'M11.4 12.6a5.5 5.5 0 1 1-7.78 7.78 5.5 5.5 0 0 1 7.78-7.78z', 'M11.4 12.6L19 5'],
  globe: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M2 12h20', 'M12 2a15.3 15.3 0 0 1 4 10 15.3 15.3 0 0 1-4 10 15.3 15.3 0 0 1-4-10 15.3 15.3 0 0 1 4-10z'],
  alert: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M12 8v4', 'M12 16h.01'],
  info: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M12 16v-4', 'M12 8h.01'],
  check: ['M20 6L9 17l-5-5'],
  eye: ['M1 12s4-8 11-8 11 8 11 8-4 8-11 8-11-8-11-8z', 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z'],
  eyeOff: ['M17.94 17.94A10.07 10.07 0 0 1 12 20c-7 0-11-8-11-8a18.45 18.45 0 0 1 5.06-5.94', 'M9.9 4.24A9.12 9.12 0 0 1 12 4c7 0 11 8 11 8a18.5 18.5 0 0 1-2.16 3.19', 'M14.12 14.12a3 3 0 1 1-4.24-4.24', 'M1 1l22 22'],
  search: ['M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16z', 'M21 21l-4.35-4.35'],
  plus: ['M12 5v14', 'M5 12h14'],
  x: ['M18 6L6 18', 'M6 6l12 12'],
  chevronLeft: ['M15 18l-6-6 6-6'],
  chevronRight: ['M9 18l6-6-6-6'],
  shield: ['M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z'],
  lock: ['M5 11h14v10H5z', 'M8 11V7a4 4 0 0 1 8 0v4'],
  edit: ['M12 20h9', 'M16.5 3.5a2.12 2.12 0 0 1 3 3L7 19l-4 1 1-4z'],
  trash: ['M3 6h18', 'M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6', 'M10 11v6', 'M14 11v6', 'M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2'],
  refresh: ['M23 4v6h-6', 'M1 20v-6h6', 'M3.51 9a9 9 0 0 1 14.85-3.36L23 10', 'M1 14l4.64 4.36A9 9 0 0 0 20.49 15'],
  menu: ['M3 6h18', 'M3 12h18', 'M3 18h18'],
  // infrastructure (admin portal)
  topology: ['M9 2h6v5H9z', 'M2 17h6v5H2z', 'M16 17h6v5h-6z', 'M12 7v5', 'M5 17v-5h14v5'],
  cloud: ['M18 10h-1.26A8 8 0 1 0 9 20h9a5 5 0 0 0 0-10z'],
  layers: ['M12 2L2 7l10 5 10-5-10-5z', 'M2 17l10 5 10-5', 'M2 12l10 5 10-5'],
  box: ['M21 16V8a2 2 0 0 0-1-1.73l-7-4a2 2 0 0 0-2 0l-7 4A2 2 0 0 0 3 8v8a2 2 0 0 0 1 1.73l7 4a2 2 0 0 0 2 0l7-4A2 2 0 0 0 21 16z', 'M3.27 6.96L12 12.01l8.73-5.05', 'M12 22.08V12'],
  server: ['M4 2h16a2 2 0 0 1 2 2v4a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2z', 'M4 14h16a2 2 0 0 1 2 2v4a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2v-4a2 2 0 0 1 2-2z', 'M6 6h.01', 'M6 18h.01'],
  tasks: ['M9 11l3 3L22 4', 'M21 12v7a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h11'],
  ticket: ['M3 7a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v3a2 2 0 0 0 0 4v3a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-3a2 2 0 0 0 0-4z', 'M14 5v2', 'M14 11v2', 'M14 17v2'],
  play: ['M6 3l14 9-14 9V3z'],
  power: ['M18.36 6.64a9 9 0 1 1-12.73 0', 'M12 2v10'],
  rotate: ['M23 4v6h-6', 'M20.49 15a9 9 0 1 1-2.12-9.36L23 10'],
  zap: ['M13 2L3 14h9l-1 8 10-12h-9l1-8z'],
  copy: ['M9 9h11a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-9a2 2 0 0 1-2-2z', 'M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1'],
  wrench: ['M14.7 6.3a1 1 0 0 0 0 1.4l1.6 1.6a1 1 0 0 0 1.4 0l3.77-3.77a6 6 0 0 1-7.94 7.94l-6.91 6.91a2.12 2.12 0 0 1-3-3l6.91-6.91a6 6 0 0 1 7.94-7.94l-3.76 3.76z'],
  cpu: ['M6 4h12a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z', 'M9 9h6v6H9z', 'M9 1v3', 'M15 1v3', 'M9 20v3', 'M15 20v3', 'M20 9h3', 'M20 14h3', 'M1 9h3', 'M1 14h3'],
  port: ['M3 6h18v12H3z', 'M7 10v4', 'M10.5 10v4', 'M14 10v4', 'M17.5 10v4'],
  activity: ['M22 12h-4l-3 9L9 3l-3 9H2'],
  clock: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M12 6v6l4 2'],
  terminal: ['M4 17l6-6-6-6', 'M12 19h8'],
  chevronDown: ['M6 9l6 6 6-6'],
  arrowRight: ['M5 12h14', 'M12 5l7 7-7 7'],
};

export function icon(name, cls) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon' + (cls ? ' ' + cls : ''));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

// --- language switch -----------------------------------------------------------------
export function langSwitch(current, onPick) {
  const wrap = h('div', { class: 'lang-switch', role: 'group', i18nLabel: 'lang.switch' });
  const buttons = [
    ['ko', '한국어'],
    ['en', 'English'],
  ].map(([code, label]) =>
    h('button', {
      type: 'button', class: 'lang-btn', lang: code, 'data-lang': code, 'aria-pressed': String(code === current),
      text: label, onclick: () => onPick(code),
    }));
  wrap.append(...buttons);
  onLangChange((l) => {
    for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.lang === l));
  });
  return wrap;
}

// --- messages from API errors ---------------------------------------------------------
// Turns an error into {key, args} in the current language's terms.
export function errorText(e, overrides) {
  const o = overrides || {};
  if (!(e instanceof ApiError)) return { key: 'error.generic', args: { detail: String(e && e.message ? e.message : e) } };
  if (o[e.code]) return typeof o[e.code] === 'function' ? o[e.code](e) : { key: o[e.code] };
  if (e.status === 0) return { key: 'error.network' };
  if (e.status >= 500 || e.code === 'unavailable') return { key: 'error.unavailable' };
  if (e.status === 403) return { key: 'error.forbidden' };
  if (e.status === 404) return { key: 'error.not_found' };
  if (e.status === 409) return { key: 'error.conflict' };
  if (e.status === 422) return { key: 'error.validation_failed', args: { detail: e.message } };
  return { key: 'error.generic', args: { detail: e.message } };
}

// An alert box that shows translated messages: box.show('key', args, 'error'|'info'|'success').
export function alertBox() {
  const text = h('span', { class: 'alert-text' });
  const ic = h('span', { class: 'alert-icon' });
  const el = h('div', { class: 'alert', role: 'alert', hidden: true }, ic, text);
  return {
    el,
    show(key, args, kind) {
      el.className = 'alert alert-' + (kind || 'error');
      clear(ic).append(icon(kind === 'info' ? 'info' : kind === 'success' ? 'check' : 'alert'));
      setText(text, key, args);
      el.hidden = false;
    },
    showError(e, overrides) {
      const m = errorText(e, overrides);
      this.show(m.key, m.args, 'error');
    },
    hide() {
      el.hidden = true;
    },
  };
}

// --- forms ----------------------------------------------------------------------------
let idSeq = 0;
export function field(labelKey, input, opts = {}) {
  const id = input.id || 'f' + ++idSeq;
  input.id = id;
  const hint = opts.hint ? h('p', { class: 'field-hint', id: id + '-hint', i18n: opts.hint }) : null;
  if (hint) input.setAttribute('aria-describedby', id + '-hint');
  return h('div', { class: ['field', opts.class] },
    h('label', { for: id },
      h('span', { i18n: labelKey }),
      opts.optional ? h('span', { class: 'field-optional', i18n: 'common.optional' }) : null),
    input,
    hint);
}

export function busy(button, busyKey) {
  const label = button.querySelector('[data-i18n]') || button;
  const before = label.getAttribute('data-i18n');
  button.disabled = true;
  button.classList.add('is-busy');
  button.setAttribute('aria-busy', 'true');
  if (busyKey) setText(label, busyKey);
  return () => {
    button.disabled = false;
    button.classList.remove('is-busy');
    button.removeAttribute('aria-busy');
    if (busyKey && before) setText(label, before);
  };
}

export function button(key, opts = {}) {
  return h('button', {
    type: opts.type || 'button',
    class: ['btn', opts.variant ? 'btn-' + opts.variant : 'btn-secondary', opts.class],
    onclick: opts.onclick,
    'data-action': opts.action,
    i18nLabel: opts.iconOnly ? key : undefined,
    i18nTitle: opts.iconOnly ? key : undefined,
  }, opts.icon ? icon(opts.icon) : null, opts.iconOnly ? null : h('span', { i18n: key }));
}

// --- dialogs (native <dialog>) ----------------------------------------------------------
// dialog({title, body: [nodes], submitKey, onSubmit: async (form) => true to close})
export function dialog(opts) {
  const alert = alertBox();
  const submit = opts.submitKey ? button(opts.submitKey, { type: 'submit', variant: opts.danger ? 'danger' : 'primary' }) : null;
  const cancel = button(opts.submitKey ? 'common.cancel' : 'common.close', { onclick: () => close() });
  const form = h('form', { class: 'dialog-form', method: 'dialog', novalidate: true },
    h('header', { class: 'dialog-head' },
      h('h2', { class: 'dialog-title', i18n: opts.title, i18nArgs: opts.titleArgs }),
      h('button', { type: 'button', class: 'icon-btn', i18nLabel: 'common.close', onclick: () => close() }, icon('x'))),
    h('div', { class: 'dialog-body' }, opts.intro ? h('p', { class: 'dialog-intro', i18n: opts.intro, i18nArgs: opts.introArgs }) : null,
      alert.el, opts.body || []),
    h('footer', { class: 'dialog-foot' }, cancel, submit));
  const dlg = h('dialog', { class: ['dialog', opts.wide ? 'dialog-wide' : null], 'data-dialog': opts.name }, form);
  function close() {
    if (dlg.open) dlg.close();
  }
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (opts.onClose) opts.onClose();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!opts.onSubmit || !submit) return;
    alert.hide();
    const done = busy(submit, opts.busyKey || 'common.saving');
    let ok = false;
    try {
      ok = await opts.onSubmit(form, alert);
    } catch (e) {
      alert.showError(e, opts.errors);
    } finally {
      done();
    }
    if (ok) close();
  });
  document.body.append(dlg);
  dlg.showModal();
  const first = form.querySelector('.dialog-body input, .dialog-body select, .dialog-body textarea');
  if (first) first.focus();
  return { dlg, form, alert, close };
}

// Confirmation: resolves true when the person confirms.
export function confirmDialog(opts) {
  return new Promise((resolve) => {
    let yes = false;
    dialog({
      name: 'confirm',
      title: opts.title,
      titleArgs: opts.titleArgs,
      intro: opts.text,
      introArgs: opts.textArgs,
      submitKey: opts.confirmKey,
      danger: opts.danger,
      busyKey: opts.busyKey,
      errors: opts.errors,
      onSubmit: async (form, alert) => {
        if (opts.action) await opts.action(alert);
        yes = true;
        return true;
      },
      onClose: () => resolve(yes),
    });
  });
}

// --- toasts -------------------------------------------------------------------------------
let toastHost = null;
export function toast(key, args, kind) {
  if (!toastHost) {
    toastHost = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastHost);
  }
  const el = h('div', { class: 'toast toast-' + (kind || 'success') }, icon(kind === 'error' ? 'alert' : 'check'),
    h('span', { i18n: key, i18nArgs: args }));
  toastHost.append(el);
  setTimeout(() => el.classList.add('toast-out'), 3500);
  setTimeout(() => el.remove(), 4000);
}

export function num(n) {
  return formatNumber(n);
}
