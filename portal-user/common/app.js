// The shell both portals share: boot (GET /auth/me), the sign-in screen, the frame with
// its header (product, user, language, password change, log-out) and session handling.
//
//   startPortal({kind: 'user' | 'admin', mount(main, ctx)})
// mount() fills the frame's main area once someone is signed in; ctx offers logout() and
// the user.

import * as api from './api.js';
import './mfa-i18n.js';
import { t, lang, setLang, applyI18n } from './i18n.js';
import { h, icon, clear, langSwitch, alertBox, field, busy, button, dialog, setText, toast } from './ui.js';
import { codeInput, isCode, enrolmentPanel, recoveryPanel, securityDialog } from './security.js';
import { oidcReturn, oidcSignIn } from './oidc.js';

let cfg = null;
let root = null;
let openMenu = null;
let menuListener = null;

export function roleKey(role) {
  return role === 'admin' || role === 'user' || role === 'operator' ? 'role.' + role : null;
}

function roleBadge(role) {
  const k = roleKey(role);
  return h('span', { class: ['badge', role === 'admin' ? 'badge-admin' : 'badge-neutral', 'user-role'], i18n: k || undefined, text: k ? undefined : role });
}

export function initials(name) {
  const s = String(name || '?').trim();
  if (!s) return '?';
  const parts = s.split(/\s+/).filter(Boolean);
  if (parts.length > 1 && /^[A-Za-z]/.test(parts[0])) return (parts[0][0] + parts[1][0]).toUpperCase();
  return Array.from(s)[0].toUpperCase();
}

// --- boot -----------------------------------------------------------------------------------
export async function startPortal(config) {
  cfg = config;
  root = document.getElementById('app');
  document.documentElement.setAttribute('data-title-key', cfg.kind === 'admin' ? 'portal.admin' : 'portal.user');
  applyI18n(document);
  api.onSessionLost(() => showLogin({ notice: 'login.notice.session_expired' }));
  await boot();
}

async function boot() {
  showLoading();
  const back = await oidcReturn(); // a provider sign-in coming back (oidc.js)
  let user;
  try {
    user = await api.me();
  } catch (e) {
    showBootError(e);
    return;
  }
  if (user) showFrame(user);
  else if (back && back.mfa) (back.mfa.step === 'enroll' ? showEnrolStep : showCodeStep)(back.mfa, back.username);
  else showLogin({});
}

function showLoading() {
  clear(root).append(h('div', { class: 'boot' }, h('div', { class: 'spinner', 'aria-hidden': 'true' }),
    h('p', { class: 'boot-text', i18n: 'common.loading' })));
  root.setAttribute('aria-busy', 'true');
}

function showBootError(e) {
  root.removeAttribute('aria-busy');
  const a = alertBox();
  a.showError(e);
  clear(root).append(h('div', { class: 'boot' },
    h('div', { class: 'boot-card' }, brandMark(), a.el,
      button('common.retry', { variant: 'primary', icon: 'refresh', onclick: () => boot() }))));
}

function brandMark(sub) {
  return h('div', { class: 'brand' },
    h('span', { class: 'brand-logo' }, icon('logo')),
    h('span', { class: 'brand-name', i18n: 'product.name' }),
    sub ? h('span', { class: 'brand-sub', i18n: sub }) : null);
}

function pickLang(code) {
  setLang(code);
}

// --- sign-in screen -----------------------------------------------------------------------
export function showLogin({ notice }) {
  root.removeAttribute('aria-busy');
  for (const d of document.querySelectorAll('dialog')) d.close();
  const info = alertBox();
  const error = alertBox();
  error.el.setAttribute('data-role', 'login-error');
  info.el.setAttribute('data-role', 'login-notice');
  if (notice) info.show(notice, null, notice === 'login.notice.password_changed' || notice === 'login.notice.signed_out' ? 'success' : 'info');

  const username = h('input', { name: 'username', type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, maxlength: '128' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: '1024' });
  const reveal = h('button', { type: 'button', class: 'input-addon', i18nLabel: 'login.show_password', i18nTitle: 'login.show_password', 'aria-pressed': 'false' }, icon('eye'));
  reveal.addEventListener('click', () => {
    const show = password.type === 'password';
    password.type = show ? 'text' : 'password';
    reveal.setAttribute('aria-pressed', String(show));
    reveal.setAttribute('data-i18n-label', show ? 'login.hide_password' : 'login.show_password');
    reveal.setAttribute('data-i18n-title', show ? 'login.hide_password' : 'login.show_password');
    clear(reveal).append(icon(show ? 'eyeOff' : 'eye'));
    applyI18n(reveal);
    password.focus();
  });
  const submit = button('login.submit', { type: 'submit', variant: 'primary', class: 'btn-block btn-lg' });

  const form = h('form', { class: 'login-form', novalidate: true, 'data-role': 'login-form' },
    field('login.username', username),
    field('login.password', h('div', { class: 'input-group' }, password, reveal)),
    submit);
  // the password field's label points at the input, not the wrapper
  form.querySelectorAll('label')[1].setAttribute('for', password.id = 'login-password');
  username.id = 'login-username';
  form.querySelectorAll('label')[0].setAttribute('for', 'login-username');

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    info.hide();
    error.hide();
    const u = username.value.trim();
    const p = password.value;
    if (!u || !p) {
      error.show('login.error.missing');
      (u ? password : username).focus();
      return;
    }
    const done = busy(submit, 'login.submitting');
    username.readOnly = true;
    password.readOnly = true;
    let user = null;
    let mfa = null;
    try {
      const out = await api.login(u, p);
      if (out && out.mfa) mfa = out.mfa;
      else user = out;
    } catch (e) {
      error.showError(e, LOGIN_ERRORS);
      password.value = '';
    } finally {
      done();
      username.readOnly = false;
      password.readOnly = false;
    }
    if (user) showFrame(user);
    else if (mfa && mfa.step === 'enroll') showEnrolStep(mfa, u);
    else if (mfa) showCodeStep(mfa, u);
    else password.focus();
  });

  authPage('login',
    h('h1', { class: 'auth-title', i18n: 'login.title' }),
    h('p', { class: 'auth-subtitle', i18n: cfg.kind === 'admin' ? 'login.subtitle.admin' : 'login.subtitle.user' }),
    info.el, error.el, form, oidcSignIn(cfg.kind, error));
  username.focus();
}

// The sign-in screens' page: the brand panel and one card (view: login, login-mfa, ...).
function authPage(view, ...card) {
  const sub = cfg.kind === 'admin' ? 'portal.admin' : 'portal.user';
  const page = h('div', { class: 'auth-page', 'data-view': view },
    h('aside', { class: 'auth-hero', 'aria-hidden': 'true' },
      h('div', { class: 'auth-hero-inner' },
        brandMark(sub),
        h('p', { class: 'auth-hero-title', i18n: 'product.tagline' }),
        h('p', { class: 'auth-hero-text', i18n: cfg.kind === 'admin' ? 'product.pitch.admin' : 'product.pitch' }),
        heroArt())),
    h('main', { class: 'auth-main' },
      h('div', { class: 'auth-top' }, h('div', { class: 'auth-top-brand' }, brandMark(sub)), langSwitch(lang(), pickLang)),
      h('div', { class: 'auth-card' }, ...card),
      h('p', { class: 'auth-footer', i18n: 'login.footer' })));
  clear(root).append(page);
  return page;
}

// --- the second sign-in step: a code from the authenticator app, or a recovery code ---------
function mfaErrors(recovery) {
  return {
    bad_credentials: (e) => ({ key: e.reason === 'mfa_code_reused' ? 'mfa.error.reused' : recovery() ? 'mfa.error.bad_recovery' : 'mfa.error.bad_code' }),
    validation_failed: () => ({ key: recovery() ? 'mfa.error.recovery_format' : 'mfa.error.format' }),
    account_locked: LOGIN_ERRORS.account_locked,
    rate_limited: LOGIN_ERRORS.rate_limited,
    csrf_failed: 'login.error.csrf',
    unavailable: LOGIN_ERRORS.unavailable,
  };
}

// Sends the second step; an expired or used step goes back to the password.
async function sendSecondStep(mfa, proof, error, errors) {
  try {
    return await api.loginMfa(mfa.token, proof);
  } catch (e) {
    if (e instanceof api.ApiError && e.code === 'unauthenticated') {
      showLogin({ notice: 'mfa.notice.expired' });
      return null;
    }
    error.showError(e, errors);
    return null;
  }
}

function showCodeStep(mfa, username) {
  const error = alertBox();
  error.el.setAttribute('data-role', 'mfa-error');
  let recovery = false;
  const code = codeInput('mfa-code');
  const rec = h('input', { id: 'mfa-recovery', name: 'recovery_code', type: 'text', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: '32' });
  const codeField = field('mfa.code', code, { hint: 'mfa.code_hint' });
  const recField = field('mfa.recovery_code', rec, { hint: 'mfa.recovery_hint' });
  recField.hidden = true;
  const subtitle = h('p', { class: 'auth-subtitle', 'data-role': 'mfa-subtitle', i18n: 'mfa.verify.subtitle', i18nArgs: { name: username } });
  const toggle = h('button', { type: 'button', class: 'btn-link', 'data-action': 'mfa-toggle', i18n: 'mfa.use_recovery' });
  toggle.addEventListener('click', () => {
    recovery = !recovery;
    codeField.hidden = recovery;
    recField.hidden = !recovery;
    error.hide();
    setText(toggle, recovery ? 'mfa.use_code' : 'mfa.use_recovery');
    if (recovery) setText(subtitle, 'mfa.verify.subtitle_recovery');
    else setText(subtitle, 'mfa.verify.subtitle', { name: username });
    (recovery ? rec : code).focus();
  });
  const submit = button('mfa.verify.submit', { type: 'submit', variant: 'primary', class: 'btn-block btn-lg' });
  const form = h('form', { class: 'login-form', novalidate: true, 'data-role': 'mfa-form' }, codeField, recField, submit);
  const errors = mfaErrors(() => recovery);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hide();
    const input = recovery ? rec : code;
    if (!recovery && !isCode(code.value)) {
      error.show('mfa.error.format');
      code.focus();
      return;
    }
    if (recovery && !rec.value.trim()) {
      error.show('mfa.error.recovery_format');
      rec.focus();
      return;
    }
    const done = busy(submit, 'mfa.verifying');
    input.readOnly = true;
    const out = await sendSecondStep(mfa, recovery ? { recovery_code: rec.value.trim() } : { code: code.value.replace(/\D/g, '') }, error, errors);
    done();
    input.readOnly = false;
    if (!out) {
      if (input.isConnected) input.select();
      return;
    }
    showFrame(out.user);
    if (out.recoveryCodesLeft !== undefined && out.recoveryCodesLeft !== null) toast('mfa.recovery_left', { n: out.recoveryCodesLeft }, 'error');
  });
  authPage('login-mfa',
    h('h1', { class: 'auth-title', i18n: 'mfa.verify.title' }),
    subtitle, error.el, form,
    h('div', { class: 'mfa-links' }, toggle,
      h('button', { type: 'button', class: 'btn-link', 'data-action': 'mfa-back', i18n: 'mfa.back', onclick: () => showLogin({}) })));
  code.focus();
}

// A group requires two-step verification and the person has none yet: enrol, then sign in.
async function showEnrolStep(mfa, username) {
  const error = alertBox();
  error.el.setAttribute('data-role', 'mfa-error');
  const slot = h('div', { class: 'mfa-enrol-slot' }, h('div', { class: 'security-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    h('span', { class: 'muted', i18n: 'mfa.enroll.loading' })));
  const back = h('button', { type: 'button', class: 'btn-link', 'data-action': 'mfa-back', i18n: 'mfa.back', onclick: () => showLogin({}) });
  authPage('login-enroll',
    h('h1', { class: 'auth-title', i18n: 'mfa.enroll.title' }),
    h('p', { class: 'auth-subtitle', i18n: 'mfa.enroll.subtitle' }),
    error.el, slot, h('div', { class: 'mfa-links' }, back));
  let data;
  try {
    data = await api.loginMfaEnroll(mfa.token);
  } catch (e) {
    if (e instanceof api.ApiError && e.code === 'unauthenticated') return showLogin({ notice: 'mfa.notice.expired' });
    clear(slot);
    error.showError(e);
    return undefined;
  }
  const code = codeInput('mfa-code');
  const submit = button('mfa.enroll.submit', { type: 'submit', variant: 'primary', class: 'btn-block btn-lg' });
  const form = h('form', { class: 'login-form', novalidate: true, 'data-role': 'mfa-form' }, field('mfa.code', code, { hint: 'mfa.code_hint' }), submit);
  const errors = mfaErrors(() => false);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hide();
    if (!isCode(code.value)) {
      error.show('mfa.error.format');
      code.focus();
      return;
    }
    const done = busy(submit, 'mfa.verifying');
    const out = await sendSecondStep(mfa, { code: code.value.replace(/\D/g, '') }, error, errors);
    done();
    if (!out) {
      if (code.isConnected) code.select();
      return;
    }
    showRecoveryStep(out.user, out.recoveryCodes || []);
  });
  clear(slot).append(enrolmentPanel(data), form);
  code.focus();
  return undefined;
}

// After an enrolment at sign-in: the recovery codes, once, before the portal.
function showRecoveryStep(user, codes) {
  const saved = h('input', { type: 'checkbox', name: 'saved', 'data-role': 'codes-saved' });
  const go = button('mfa.recovery.continue', { variant: 'primary', class: 'btn-block btn-lg', action: 'mfa-continue' });
  go.disabled = true;
  saved.addEventListener('change', () => {
    go.disabled = !saved.checked;
  });
  go.addEventListener('click', () => showFrame(user));
  authPage('login-recovery',
    h('h1', { class: 'auth-title', i18n: 'mfa.recovery.title' }),
    recoveryPanel(codes, user.username),
    h('label', { class: 'checkbox mfa-saved' }, saved, h('span', { i18n: 'mfa.recovery.saved' })),
    go);
  saved.focus();
}

// A small drawing of desktops in the sign-in screen's brand panel, all CSS.
function heroArt() {
  return h('div', { class: 'hero-art' },
    h('div', { class: 'hero-window hero-window-a' }, h('span'), h('span'), h('span')),
    h('div', { class: 'hero-window hero-window-b' }, h('span'), h('span'), h('span')),
    h('div', { class: 'hero-window hero-window-c' }, h('span'), h('span'), h('span')));
}

const LOGIN_ERRORS = {
  bad_credentials: 'login.error.bad_credentials',
  account_locked: (e) => {
    const s = e.retryAfter;
    if (s === null || s === undefined) return { key: 'login.error.locked' };
    if (s >= 120) return { key: 'login.error.locked_minutes', args: { n: Math.ceil(s / 60) } };
    return { key: 'login.error.locked_seconds', args: { n: Math.max(1, s) } };
  },
  rate_limited: (e) => (e.retryAfter ? { key: 'login.error.rate_limited_seconds', args: { n: e.retryAfter } } : { key: 'login.error.rate_limited' }),
  validation_failed: 'login.error.missing',
  csrf_failed: 'login.error.csrf',
  account_disabled: 'login.error.disabled',
  unavailable: (e) => ({ key: e.reason === 'directory_unavailable' ? 'login.error.directory_unavailable' : 'error.unavailable' }),
};

// --- the frame -------------------------------------------------------------------------------
function showFrame(user) {
  root.removeAttribute('aria-busy');
  const name = user.display_name || user.username;
  const ctx = { user, logout: () => doLogout(), changePassword: () => passwordDialog(), security: () => securityDialog(user) };

  const logoutBtn = button('frame.logout', { icon: 'logout', action: 'logout', variant: 'ghost', onclick: () => doLogout(logoutBtn) });
  const pwBtn = button('frame.change_password', { icon: 'key', action: 'change-password', variant: 'ghost', onclick: () => passwordDialog() });
  // an icon with its name as label on wide screens (the header is full), icon and text in the phone menu
  const securityBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-compact', 'data-action': 'security', i18nLabel: 'frame.security', i18nTitle: 'frame.security', onclick: () => securityDialog(user) },
    icon('lock'), h('span', { i18n: 'frame.security' }));
  const other = cfg.kind === 'admin'
    ? h('a', { class: 'btn btn-ghost', href: '/', 'data-action': 'to-user' }, icon('monitor'), h('span', { i18n: 'frame.to_user' }))
    : user.role === 'admin'
      ? h('a', { class: 'btn btn-ghost', href: '/admin/', 'data-action': 'to-admin' }, icon('shield'), h('span', { i18n: 'frame.to_admin' }))
      : null;

  const menuBtn = h('button', { type: 'button', class: 'icon-btn topbar-menu-btn', 'aria-expanded': 'false', 'aria-controls': 'topbar-menu', i18nLabel: 'frame.menu' },
    h('span', { class: 'avatar avatar-sm' , text: initials(name) }));
  const menu = h('div', { class: 'topbar-menu', id: 'topbar-menu' },
    langSwitch(lang(), pickLang),
    h('div', { class: 'user-chip', 'data-role': 'user-chip' },
      h('span', { class: 'avatar', 'aria-hidden': 'true', text: initials(name) }),
      h('span', { class: 'user-chip-text' },
        h('span', { class: 'user-name', text: name, title: user.username }),
        roleBadge(user.role))),
    h('div', { class: 'topbar-actions' }, other, securityBtn, pwBtn, logoutBtn));
  menuBtn.addEventListener('click', () => {
    const open = !menu.classList.contains('open');
    menu.classList.toggle('open', open);
    menuBtn.setAttribute('aria-expanded', String(open));
  });
  openMenu = { menu, menuBtn };
  if (!menuListener) {
    menuListener = (ev) => {
      if (!openMenu || openMenu.menu.contains(ev.target) || openMenu.menuBtn.contains(ev.target)) return;
      openMenu.menu.classList.remove('open');
      openMenu.menuBtn.setAttribute('aria-expanded', 'false');
    };
    document.addEventListener('click', menuListener);
    document.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || !openMenu || !openMenu.menu.classList.contains('open')) return;
      openMenu.menu.classList.remove('open');
      openMenu.menuBtn.setAttribute('aria-expanded', 'false');
      openMenu.menuBtn.focus();
    });
  }

  const header = h('header', { class: 'topbar', 'data-role': 'topbar' },
    h('a', { class: 'topbar-brand', href: cfg.kind === 'admin' ? '/admin/' : '/' }, brandMark(cfg.kind === 'admin' ? 'portal.admin' : 'portal.user')),
    menuBtn, menu);
  const main = h('div', { class: 'frame-main' });
  clear(root).append(h('div', { class: ['frame', 'frame-' + cfg.kind], 'data-view': 'frame' }, header, main));
  cfg.mount(main, ctx);
}

async function doLogout(btn) {
  const done = btn ? busy(btn, 'frame.logging_out') : () => {};
  try {
    await api.logout();
  } catch (e) {
    // signed out locally either way; the server drops stale sessions on its own
  } finally {
    done();
  }
  showLogin({ notice: 'login.notice.signed_out' });
}

// --- password change ---------------------------------------------------------------------
export function passwordDialog() {
  const cur = h('input', { type: 'password', name: 'current_password', autocomplete: 'current-password', required: true });
  const nw = h('input', { type: 'password', name: 'new_password', autocomplete: 'new-password', minlength: '12', required: true });
  const again = h('input', { type: 'password', name: 'new_password_again', autocomplete: 'new-password', minlength: '12', required: true });
  dialog({
    name: 'password',
    title: 'password.title',
    intro: 'password.intro',
    submitKey: 'password.submit',
    body: [
      field('password.current', cur),
      field('password.new', nw, { hint: 'password.hint' }),
      field('password.confirm', again),
    ],
    errors: {
      // bicd answers a wrong current password with 403 forbidden (bad_credentials would be 401)
      forbidden: 'password.error.bad_current',
      bad_credentials: 'password.error.bad_current',
      account_locked: 'login.error.locked',
    },
    onSubmit: async (form, alert) => {
      if (!cur.value) return fail(alert, 'password.error.missing_current', cur);
      if (Array.from(nw.value).length < 12) return fail(alert, 'password.error.too_short', nw);
      if (nw.value !== again.value) return fail(alert, 'password.error.mismatch', again);
      if (nw.value === cur.value) return fail(alert, 'password.error.same', nw);
      await api.changePassword(cur.value, nw.value);
      setTimeout(() => showLogin({ notice: 'login.notice.password_changed' }), 0);
      return true;
    },
  });
}

function fail(alert, key, input) {
  alert.show(key);
  if (input) input.focus();
  return false;
}

export { t, setText };
