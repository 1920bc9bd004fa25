// The console: a desktop's screen in the whole window through noVNC, with a slim toolbar
// (desktop name, clipboard, Ctrl+Alt+Del, full screen, disconnect, log off).
//
//   openConsole({pool, onClose(result)}) -> {close()}
//
// It asks the broker for a one-time ticket (POST /pools/{id}/connect, repeated while the
// answer is 202 "not ready yet"), opens wss://<this site>/console/<ticket> with the ticket's
// VNC password, and when the connection drops without the person asking, asks for a new
// ticket and reconnects by itself, waiting longer after each failure. While the screen is
// open it reports the seconds since the last keyboard or pointer input every 30 s
// (POST /sessions/{id}/activity). It stops for good when the person closes the view, logs
// off, or signs out of the portal (the frame goes away).
import * as api from '/common/api.js';
import '/common/recovery-notice.js';
import { ApiError } from '/common/api.js';
import { h, icon, clear, setText, confirmDialog, toast, errorText } from '/common/ui.js';

const NOVNC = '/novnc/core/rfb.js';
const ACTIVITY_MS = 30000;
// Waits before reconnecting, in seconds; after the last one the console gives up and offers
// a button. A connection that stayed up this long counts as good and starts the list over.
const BACKOFF_S = [1, 2, 4, 8, 15, 30, 30, 30];
const STABLE_MS = 20000;
const PROGRESS_MIN_MS = 250;
const PROGRESS_MAX_MS = 10000;

// Broker refusals (the error's `reason`) the console explains in its own words.
export const REASONS = ['not_entitled', 'network_forbidden', 'pool_exhausted', 'module_full',
  'pool_unavailable', 'session_limit', 'console_unavailable', 'desktop_unavailable', 'desktop_taken',
  'session_elsewhere'];
// Refusals that waiting does not fix: no automatic retry.
const FINAL_REASONS = ['not_entitled', 'network_forbidden', 'session_limit', 'desktop_unavailable', 'session_elsewhere'];

function reasonOf(e) {
  return e.reason || (e.details && e.details.reason) || (REASONS.includes(e.code) ? e.code : null);
}

export function refusalText(e) {
  if (!(e instanceof ApiError)) return errorText(e);
  const reason = reasonOf(e);
  if (REASONS.includes(reason)) return { key: 'connect.reason.' + reason };
  if (e.status === 404) return { key: 'connect.error.no_pool' };
  if (e.status === 403 && e.code !== 'csrf_failed') return { key: 'connect.error.forbidden' };
  if (e.status === 409) return { key: 'connect.error.conflict' };
  return errorText(e);
}

// A refusal the person cannot fix by waiting: no automatic retry.
function isFinalRefusal(e) {
  return e instanceof ApiError && (FINAL_REASONS.includes(reasonOf(e)) ||
    e.status === 403 || e.status === 404 || e.status === 401 || e.status === 422);
}

// Icons of our own (the shared set has no full-screen or clipboard pictures).
const PATHS = {
  expand: ['M8 3H5a2 2 0 0 0-2 2v3', 'M21 8V5a2 2 0 0 0-2-2h-3', 'M3 16v3a2 2 0 0 0 2 2h3', 'M16 21h3a2 2 0 0 0 2-2v-3'],
  shrink: ['M8 3v3a2 2 0 0 1-2 2H3', 'M21 8h-3a2 2 0 0 1-2-2V3', 'M3 16h3a2 2 0 0 1 2 2v3', 'M16 21v-3a2 2 0 0 1 2-2h3'],
  clipboard: ['M16 4h2a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2h2', 'M9 2h6v4H9z'],
  keyboard: ['M3 6h18a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1z', 'M6 10h.01', 'M10 10h.01', 'M14 10h.01', 'M18 10h.01', 'M7 14h10'],
  unplug: ['M18 6L6 18', 'M7 7l-2.5 2.5a4.95 4.95 0 0 0 7 7L14 14', 'M17 17l2.5-2.5a4.95 4.95 0 0 0-7-7L10 10'],
};

function glyph(name) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of PATHS[name]) {
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

function toolButton(key, pic, action, onclick) {
  return h('button', {
    type: 'button', class: 'console-btn', 'data-action': action, i18nLabel: key, i18nTitle: key, onclick,
  }, typeof pic === 'string' ? (PATHS[pic] ? glyph(pic) : icon(pic)) : pic, h('span', { class: 'console-btn-text', i18n: key }));
}

let loader = null;
function loadRFB() {
  if (!loader) {
    loader = import(NOVNC).then((m) => m.default).catch((e) => {
      loader = null;
      throw e;
    });
  }
  return loader;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Stopped extends Error {}

export function openConsole(opts) {
  const pool = opts.pool;
  const appRoot = document.getElementById('app');
  let rfb = null;
  let stopped = false;
  let session = pool.session || null;
  let desktop = pool.desktop || null;
  let policy = Object.assign({ clipboard: 'off', view_only: false }, pool.policy || {});
  let password = '';
  let credentialsSent = false;
  let closing = false; // we asked noVNC to disconnect
  let attempt = 0; // failed attempts in a row
  let connectedAt = 0;
  let everConnected = false;
  let lastInput = Date.now();
  let activityTimer = null;
  let countdownTimer = null;
  let wake = null; // resolves the current wait early ("Reconnect now")
  let runId = 0;
  let serverClipboard = '';

  // ---- the view --------------------------------------------------------------------------
  const title = h('span', { class: 'console-name', text: (desktop && desktop.name) || pool.name, title: pool.name });
  const stateDot = h('span', { class: 'console-dot', 'aria-hidden': 'true' });
  const viewOnlyBadge = h('span', { class: 'console-badge', i18n: 'console.view_only', hidden: true });
  const fsBtn = toolButton('console.fullscreen', 'expand', 'fullscreen', () => toggleFullscreen());
  const clipBtn = toolButton('console.clipboard', 'clipboard', 'clipboard', () => toggleClipboard());
  clipBtn.setAttribute('aria-expanded', 'false');
  clipBtn.setAttribute('aria-controls', 'console-clipboard');
  const cadBtn = toolButton('console.cad', 'keyboard', 'ctrl-alt-del', () => {
    if (rfb && !policy.view_only) rfb.sendCtrlAltDel();
    if (rfb) rfb.focus();
  });
  const disconnectBtn = toolButton('console.disconnect', 'unplug', 'disconnect', () => finish('disconnected'));
  const logoffBtn = toolButton('console.logoff', 'logout', 'logoff', () => logoff());
  logoffBtn.classList.add('console-btn-danger');

  const clipText = h('textarea', { class: 'console-clip-text', rows: '4', spellcheck: 'false', 'data-role': 'clipboard-text', i18nLabel: 'console.clipboard' });
  const clipHint = h('p', { class: 'console-clip-hint' });
  const clipSend = h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-action': 'clipboard-send' },
    h('span', { i18n: 'console.clipboard.send' }));
  clipSend.addEventListener('click', () => {
    if (rfb && allowsIn()) rfb.clipboardPasteFrom(clipText.value);
    toggleClipboard(false);
    if (rfb) rfb.focus();
  });
  const clipPanel = h('div', { class: 'console-clip', id: 'console-clipboard', hidden: true, 'data-role': 'clipboard' },
    clipHint, clipText, h('div', { class: 'console-clip-actions' },
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: () => toggleClipboard(false) }, h('span', { i18n: 'common.close' })),
      clipSend));

  const toolbar = h('div', { class: 'console-bar', role: 'toolbar', 'data-role': 'console-toolbar', i18nLabel: 'console.toolbar' },
    h('div', { class: 'console-title' }, stateDot, title, viewOnlyBadge),
    h('div', { class: 'console-tools' }, clipBtn, cadBtn, fsBtn, disconnectBtn, logoffBtn));

  const statusIcon = h('div', { class: 'console-status-icon' });
  const statusTitle = h('p', { class: 'console-status-title' });
  const statusText = h('p', { class: 'console-status-text' });
  // the countdown is not read out every second
  const statusCount = h('p', { class: 'console-status-count', 'aria-hidden': 'true', hidden: true });
  const statusActions = h('div', { class: 'console-status-actions' });
  const status = h('div', { class: 'console-status', role: 'status', 'aria-live': 'polite', 'data-role': 'console-status' },
    h('div', { class: 'console-status-card' }, statusIcon, statusTitle, statusText, statusCount, statusActions));
  const screen = h('div', { class: 'console-screen', 'data-role': 'console-screen' });
  const stage = h('div', { class: 'console-stage' }, screen, status, clipPanel);
  const el = h('div', {
    class: 'console', 'data-view': 'console', 'data-state': 'connecting', 'data-pool-id': String(pool.id),
    role: 'dialog', 'aria-modal': 'true', i18nLabel: 'console.label', 'aria-describedby': 'console-keys-hint',
  }, toolbar, stage, h('p', { class: 'console-sr', id: 'console-keys-hint', i18n: 'console.keys_hint' }));

  document.documentElement.classList.add('console-open');
  if (appRoot) appRoot.inert = true;
  document.body.append(el);

  // The portal's frame is replaced by the sign-in screen on log-out or a lost session:
  // the console ends with it.
  const watch = new MutationObserver(() => {
    if (!stopped && appRoot && !appRoot.querySelector('[data-view=frame]')) finish('signed_out', true);
  });
  if (appRoot) watch.observe(appRoot, { childList: true });

  // ---- input: the idle time, and the way out of the screen for keyboard users ----------
  const markInput = () => {
    lastInput = Date.now();
  };
  for (const type of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart']) {
    screen.addEventListener(type, markInput, { capture: true, passive: true });
  }
  // Tab and Escape belong to the desktop while its screen has the focus; Ctrl+Alt+Shift
  // brings the focus to the toolbar instead.
  el.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey && ev.altKey && ev.shiftKey && ['Control', 'Alt', 'Shift'].includes(ev.key)) {
      ev.preventDefault();
      ev.stopPropagation();
      const first = toolbar.querySelector('button:not([hidden]):not(:disabled)');
      if (first) first.focus();
    }
  }, { capture: true });
  el.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !clipPanel.hidden && clipPanel.contains(ev.target)) {
      ev.preventDefault();
      toggleClipboard(false);
      clipBtn.focus();
    }
  });

  // ---- status overlay ----------------------------------------------------------------------
  function setState(state) {
    el.setAttribute('data-state', state);
    cadBtn.disabled = state !== 'connected';
    clipSend.disabled = state !== 'connected';
    logoffBtn.hidden = !(session && session.id);
    status.hidden = state === 'connected';
    screen.classList.toggle('is-dim', state !== 'connected');
  }

  function showStatus(state, { key, args, text, textArgs, spin, kind, actions }) {
    setState(state);
    clear(statusIcon);
    statusIcon.className = 'console-status-icon' + (kind ? ' is-' + kind : '');
    if (spin) statusIcon.append(h('span', { class: 'spinner', 'aria-hidden': 'true' }));
    else statusIcon.append(icon(kind === 'error' ? 'alert' : kind === 'ended' ? 'info' : 'monitor'));
    setText(statusTitle, key, args);
    if (text) {
      setText(statusText, text, textArgs);
      statusText.hidden = false;
    } else {
      statusText.hidden = true;
    }
    statusCount.hidden = true;
    clear(statusActions).append(...(actions || []));
    // keyboard users land on the first choice when the screen is gone (not while the
    // person is in the toolbar or the clipboard panel)
    const at = document.activeElement;
    if (!spin && actions && actions.length && (!at || at === document.body || screen.contains(at) || statusActions.contains(at) || !el.contains(at))) {
      statusActions.querySelector('button').focus();
    }
  }

  function showCount(n) {
    setText(statusCount, 'console.next_try', { n });
    statusCount.hidden = false;
  }

  const backBtn = () => h('button', { type: 'button', class: 'btn btn-secondary', 'data-action': 'console-back', onclick: () => finish('closed') },
    icon('chevronLeft'), h('span', { i18n: 'console.back' }));
  const retryBtn = (key) => h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'console-retry', onclick: () => restart() },
    icon('refresh'), h('span', { i18n: key || 'console.retry' }));

  // ---- the connect loop ------------------------------------------------------------------
  function check(id) {
    if (stopped || id !== runId) throw new Stopped();
  }

  // Asks the broker until it answers with a ticket; 202 answers show their progress.
  async function ticket(id) {
    for (;;) {
      check(id);
      const r = await api.post(`/pools/${pool.id}/connect`, {});
      check(id);
      if (r && r.session) session = r.session;
      if (r && r.desktop) {
        desktop = r.desktop;
        title.textContent = desktop.name || pool.name;
      }
      if (r && r.ticket && r.console_path) return r;
      const step = r && r.progress && r.progress.step;
      const known = ['starting', 'provisioning', 'refreshing', 'waiting', 'recovering'].includes(step);
      showStatus('progress', {
        key: known ? 'connect.step.' + step : 'connect.step.waiting',
        text: 'connect.step.hint', spin: true, actions: [backBtn()],
      });
      const wait = Math.min(PROGRESS_MAX_MS, Math.max(PROGRESS_MIN_MS, Number(r && r.retry_after_ms) || 1000));
      await sleep(wait);
    }
  }

  async function connectOnce(id) {
    showStatus('connecting', { key: attempt ? 'console.reconnecting_now' : 'connect.requesting', args: { name: pool.name }, spin: true, actions: [backBtn()] });
    let RFB;
    try {
      RFB = await loadRFB();
    } catch (e) {
      check(id);
      showStatus('failed', { key: 'console.no_viewer', text: 'console.no_viewer_hint', kind: 'error', actions: [retryBtn(), backBtn()] });
      return;
    }
    let t;
    try {
      t = await ticket(id);
    } catch (e) {
      if (e instanceof Stopped) return;
      if (isFinalRefusal(e)) {
        const m = refusalText(e);
        showStatus('failed', { key: 'connect.refused', text: m.key, textArgs: m.args, kind: 'error', actions: [retryBtn(), backBtn()] });
        el.setAttribute('data-reason', reasonOf(e) || e.code || '');
        return;
      }
      // busy pools, an unreachable server: wait and ask again, like a dropped connection
      const m = refusalText(e);
      el.setAttribute('data-reason', reasonOf(e) || e.code || '');
      lost(id, m);
      return;
    }
    check(id);
    policy = Object.assign(policy, t.policy || {});
    applyPolicy();
    password = t.password || '';
    credentialsSent = false;
    closing = false;
    showStatus('opening', { key: 'connect.opening', spin: true, actions: [backBtn()] });
    const proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
    let r;
    try {
      r = new RFB(screen, proto + location.host + t.console_path, { credentials: { password }, wsProtocols: ['binary'] });
    } catch (e) {
      lost(id, { key: 'error.generic', args: { detail: String(e && e.message ? e.message : e) } });
      return;
    }
    rfb = r;
    r.scaleViewport = true;
    r.resizeSession = false;
    r.clipViewport = false;
    r.viewOnly = !!policy.view_only;
    r.background = '#0b0f19';
    let authFailed = false;
    r.addEventListener('connect', () => {
      if (rfb !== r || stopped) return;
      connectedAt = Date.now();
      everConnected = true;
      el.removeAttribute('data-reason');
      setState('connected');
      r.focus();
      lastInput = Date.now();
      reportActivity();
      clearInterval(activityTimer);
      activityTimer = setInterval(reportActivity, ACTIVITY_MS);
    });
    r.addEventListener('credentialsrequired', () => {
      if (rfb !== r) return;
      if (credentialsSent || !password) {
        authFailed = true;
        r.disconnect();
        return;
      }
      credentialsSent = true;
      r.sendCredentials({ password });
    });
    r.addEventListener('securityfailure', () => {
      authFailed = true;
    });
    r.addEventListener('clipboard', (ev) => {
      if (rfb !== r || !allowsOut()) return;
      serverClipboard = String(ev.detail && ev.detail.text || '');
      clipText.value = serverClipboard;
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(serverClipboard).catch(() => {});
    });
    r.addEventListener('desktopname', (ev) => {
      if (ev.detail && ev.detail.name && !(desktop && desktop.name)) title.textContent = ev.detail.name;
    });
    r.addEventListener('disconnect', () => {
      if (rfb !== r) return;
      rfb = null;
      clearInterval(activityTimer);
      activityTimer = null;
      if (stopped || closing) return;
      if (connectedAt && Date.now() - connectedAt >= STABLE_MS) attempt = 0;
      connectedAt = 0;
      lost(id, authFailed ? { key: 'console.auth_failed' } : { key: 'console.lost' });
    });
  }

  // The connection dropped (or could not be made): unless the session ended, wait and try
  // again, longer each time, and give up with a button after the last wait.
  async function lost(id, why) {
    if (stopped || id !== runId) return;
    if (session && session.id) {
      try {
        const s = await api.get(`/sessions/${session.id}`);
        check(id);
        if (s && s.state === 'logged_off') {
          ended();
          return;
        }
        // an operator's disconnect is not undone by reconnecting by itself
        if (s && s.state === 'disconnected' && s.end_reason === 'admin_disconnect') {
          showStatus('ended', { key: 'console.admin_disconnected', text: 'console.admin_disconnected_hint', kind: 'ended', actions: [retryBtn('console.connect_again'), backBtn()] });
          return;
        }
      } catch (e) {
        if (e instanceof Stopped) return;
        // unknown: try to reconnect anyway
      }
    }
    if (attempt >= BACKOFF_S.length) {
      showStatus('failed', { key: 'console.gave_up', text: why.key, textArgs: why.args, kind: 'error', actions: [retryBtn('console.reconnect_now'), backBtn()] });
      return;
    }
    let left = BACKOFF_S[attempt];
    attempt += 1;
    const now = h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'console-reconnect', onclick: () => wake && wake() },
      icon('refresh'), h('span', { i18n: 'console.reconnect_now' }));
    showStatus('waiting', {
      key: everConnected ? 'console.reconnecting' : 'console.retrying', text: why.key, textArgs: why.args, spin: true, actions: [now, backBtn()],
    });
    showCount(left);
    await new Promise((resolve) => {
      wake = resolve;
      countdownTimer = setInterval(() => {
        left -= 1;
        if (left <= 0) resolve();
        else if (!stopped && id === runId) showCount(left);
      }, 1000);
    });
    clearInterval(countdownTimer);
    countdownTimer = null;
    wake = null;
    if (stopped || id !== runId) return;
    connectOnce(id);
  }

  function ended() {
    session = null;
    showStatus('ended', { key: 'console.ended', text: 'console.ended_hint', kind: 'ended', actions: [retryBtn('console.connect_again'), backBtn()] });
  }

  function restart() {
    runId += 1;
    attempt = 0;
    teardownRfb();
    connectOnce(runId);
  }

  function teardownRfb() {
    clearInterval(activityTimer);
    activityTimer = null;
    clearInterval(countdownTimer);
    countdownTimer = null;
    if (wake) wake();
    wake = null;
    if (rfb) {
      closing = true;
      const r = rfb;
      rfb = null;
      try {
        r.disconnect();
      } catch (e) {
        // already closed
      }
    }
  }

  async function reportActivity() {
    if (!session || !session.id || stopped) return;
    const idle = Math.max(0, Math.floor((Date.now() - lastInput) / 1000));
    try {
      await api.post(`/sessions/${session.id}/activity`, { idle_s: idle });
    } catch (e) {
      // the next report tries again; a lost sign-in ends the console through the frame
    }
  }

  // ---- toolbar actions -------------------------------------------------------------------
  function allowsIn() {
    return policy.clipboard === 'in' || policy.clipboard === 'both';
  }
  function allowsOut() {
    return policy.clipboard === 'out' || policy.clipboard === 'both';
  }

  function applyPolicy() {
    clipBtn.hidden = !(allowsIn() || allowsOut());
    if (clipBtn.hidden) toggleClipboard(false);
    cadBtn.hidden = !!policy.view_only;
    viewOnlyBadge.hidden = !policy.view_only;
    clipSend.hidden = !allowsIn() || !!policy.view_only;
    clipText.readOnly = !allowsIn() || !!policy.view_only;
    const hint = allowsIn() && !policy.view_only ? (allowsOut() ? 'console.clipboard.both' : 'console.clipboard.in') : 'console.clipboard.out';
    setText(clipHint, hint);
  }

  function toggleClipboard(force) {
    const open = force === undefined ? clipPanel.hidden : force;
    clipPanel.hidden = !open;
    clipBtn.setAttribute('aria-expanded', String(open));
    if (open) {
      if (allowsOut()) clipText.value = serverClipboard;
      clipText.focus();
    }
  }

  const fsSupported = !!(document.fullscreenEnabled && el.requestFullscreen);
  fsBtn.hidden = !fsSupported;
  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else el.requestFullscreen({ navigationUI: 'hide' }).catch(() => {});
  }
  const onFullscreen = () => {
    const on = document.fullscreenElement === el;
    const key = on ? 'console.exit_fullscreen' : 'console.fullscreen';
    fsBtn.setAttribute('data-i18n-label', key);
    fsBtn.setAttribute('data-i18n-title', key);
    setText(fsBtn.querySelector('.console-btn-text'), key);
    fsBtn.replaceChild(glyph(on ? 'shrink' : 'expand'), fsBtn.querySelector('svg'));
    fsBtn.setAttribute('aria-pressed', String(on));
    if (rfb) rfb.focus();
  };
  document.addEventListener('fullscreenchange', onFullscreen);
  fsBtn.setAttribute('aria-pressed', 'false');

  async function logoff() {
    if (!session || !session.id) {
      finish('closed');
      return;
    }
    const sid = session.id;
    const ok = await confirmDialog({
      title: 'user.confirm.logoff.title', titleArgs: { name: (desktop && desktop.name) || pool.name },
      text: pool.type === 'floating' ? 'user.confirm.logoff.text_floating' : 'user.confirm.logoff.text',
      confirmKey: 'user.action.logoff', danger: true, busyKey: 'user.busy.logoff',
      action: async () => {
        await api.post(`/sessions/${sid}/logoff`);
      },
    });
    if (!ok) {
      if (rfb) rfb.focus();
      return;
    }
    toast('user.done.logoff', { name: (desktop && desktop.name) || pool.name });
    finish('logged_off');
  }

  // Ends the console for good: result 'closed' | 'disconnected' | 'logged_off' | 'signed_out'.
  function finish(result, quiet) {
    if (stopped) return;
    const sid = session && session.id;
    stopped = true;
    runId += 1;
    teardownRfb();
    watch.disconnect();
    document.removeEventListener('fullscreenchange', onFullscreen);
    if (document.fullscreenElement === el) document.exitFullscreen().catch(() => {});
    el.remove();
    document.documentElement.classList.remove('console-open');
    if (appRoot) appRoot.inert = false;
    // the person closed the view: the broker hears of it at once, not only from QEMU
    if ((result === 'disconnected' || result === 'closed') && sid && everConnected) api.post(`/sessions/${sid}/disconnect`).catch(() => {});
    if (opts.onClose) opts.onClose(result, quiet);
  }

  applyPolicy();
  connectOnce(runId);
  return { el, close: (result) => finish(result || 'closed') };
}
