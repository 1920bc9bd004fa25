// The user portal: sign-in, then the person's desktops. Every pool he may use is a card
// with its desktop's and session's live state (refreshed every 10 s while the page is
// visible), Connect (the full-window console, console.js), power actions when the pool
// allows them, and Log off while a session exists. #/console/<pool id> is the console of
// that pool, so the browser's Back button closes it and a reload opens it again.
import * as api from '/common/api.js';
import { startPortal } from '/common/app.js';
import { h, icon, clear, alertBox, confirmDialog, toast, setText } from '/common/ui.js';
import { openConsole } from './console.js';

const LIVE_MS = 10000;
const FAST_MS = 3000; // for a while after a power action or a log-off
const FAST_FOR_MS = 45000;
const CONSOLE_HASH = /^#\/console\/(\d+)$/;

const DESKTOP_STATE = {
  running: 'ok',
  shutoff: 'off',
  shutdown: 'busy',
  paused: 'warn',
  pmsuspended: 'warn',
  blocked: 'warn',
  crashed: 'bad',
  nostate: 'off',
};
// Phases that say more than the power state while they last.
const DESKTOP_PHASE = { pending: 'busy', provisioning: 'busy', refreshing: 'busy', resizing: 'busy', deleting: 'busy', error: 'bad' };
const SESSION_STATE = { starting: 'busy', connecting: 'busy', connected: 'ok', disconnected: 'warn' };
const POWER = {
  start: { icon: 'play', when: (s) => s === 'shutoff' || s === 'crashed' || s === 'nostate' },
  restart: { icon: 'rotate', when: (s) => s === 'running' },
  shutdown: { icon: 'power', when: (s) => s === 'running' || s === 'paused' },
};

function clockTime(d) {
  const p = (x) => String(x).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function stateChip(kind, key, text, attrs) {
  return h('span', Object.assign({ class: ['chip-state', 'chip-' + kind] }, attrs),
    h('span', { class: 'chip-state-dot', 'aria-hidden': 'true' }),
    h('span', { i18n: key, text: key ? undefined : text }));
}

function desktopChip(p) {
  const d = p.desktop;
  if (!d) return stateChip('off', p.type === 'floating' ? 'user.desktop.on_connect' : 'user.desktop.none', null, { 'data-desktop-state': 'none' });
  if (d.phase && DESKTOP_PHASE[d.phase]) {
    return stateChip(DESKTOP_PHASE[d.phase], 'user.phase.' + d.phase, null, { 'data-desktop-state': d.state || '', 'data-phase': d.phase });
  }
  const kind = DESKTOP_STATE[d.state];
  return stateChip(kind || 'off', kind ? 'user.desktop.' + d.state : null, d.state || '?', { 'data-desktop-state': d.state || '' });
}

function sessionChip(p) {
  const s = p.session;
  if (!s || !SESSION_STATE[s.state]) return stateChip('off', 'user.session.none', null, { 'data-session-state': 'none' });
  return stateChip(SESSION_STATE[s.state], 'user.session.' + s.state, null, { 'data-session-state': s.state });
}

function sessionSince(s) {
  if (!s) return null;
  const at = s.state === 'disconnected' ? s.disconnected_at : s.state === 'connected' ? s.connected_at : s.started_at;
  if (!at) return null;
  return h('span', { class: 'desk-since' }, h('span', { i18n: s.state === 'disconnected' ? 'user.session.disconnected_at' : 'user.session.since' }), ' ',
    h('time', { date: at }));
}

function mount(main, ctx) {
  const name = ctx.user.display_name || ctx.user.username;
  const alert = alertBox();
  alert.el.setAttribute('data-role', 'desktops-error');
  const liveText = h('span', { i18n: 'common.loading' });
  const live = h('span', { class: 'desk-live', 'data-role': 'live' }, h('span', { class: 'desk-live-dot', 'aria-hidden': 'true' }), liveText);
  const refreshBtn = h('button', { type: 'button', class: 'icon-btn', 'data-action': 'refresh', i18nLabel: 'user.refresh', i18nTitle: 'user.refresh', onclick: () => poll.now() }, icon('refresh'));
  const list = h('section', { class: 'desk-list', 'data-role': 'desktops', 'aria-busy': 'true', 'aria-labelledby': 'desktops-title' },
    h('div', { class: 'desk-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { i18n: 'common.loading' })));
  const page = h('div', { class: 'page', 'data-page': 'desktops' },
    h('div', { class: 'page-head' },
      h('div', null,
        h('p', { class: 'greeting', i18n: 'user.greeting', i18nArgs: { name } }),
        h('h1', { class: 'page-title', id: 'desktops-title', i18n: 'user.desktops.title' }),
        h('p', { class: 'page-subtitle', i18n: 'user.desktops.subtitle' })),
      h('div', { class: 'desk-head-tools' }, live, refreshBtn)),
    alert.el, list);
  main.append(page);

  let pools = null;
  let fastUntil = 0;
  let consoleView = null;
  let consoleFromList = false;

  // ---- the list --------------------------------------------------------------------------
  // A refresh clears only the error of an earlier refresh, never a notice the person was given.
  let loadError = false;
  async function load() {
    try {
      const all = [];
      let after = 0;
      for (;;) {
        const data = await api.get('/my/pools', { limit: 500, after: after || undefined });
        all.push(...((data && data.items) || []));
        if (!data || !data.next_after || data.next_after === after) break;
        after = data.next_after;
      }
      pools = all;
      if (loadError) alert.hide();
      loadError = false;
      setText(liveText, 'user.updated', { time: clockTime(new Date()) });
      live.classList.remove('is-stale');
      render();
    } catch (e) {
      live.classList.add('is-stale');
      alert.showError(e);
      loadError = true;
      if (!pools) {
        list.removeAttribute('aria-busy');
        clear(list);
      }
      throw e;
    }
  }

  function render() {
    list.removeAttribute('aria-busy');
    // keep the keyboard focus on the same button across a refresh
    const active = document.activeElement;
    const focusCard = active && list.contains(active) ? active.closest('[data-pool-id]') : null;
    const focusKey = focusCard ? [focusCard.getAttribute('data-pool-id'), active.getAttribute('data-action')] : null;
    if (!pools.length) {
      if (!list.querySelector('.empty')) {
        clear(list).append(h('div', { class: 'card' }, h('div', { class: 'empty' },
          h('span', { class: 'empty-icon' }, icon('monitor')),
          h('h2', { class: 'empty-title', id: 'desktops-empty-title', i18n: 'user.desktops.empty' }),
          h('p', { class: 'empty-text', i18n: 'user.desktops.empty_hint' }))));
      }
      return;
    }
    clear(list).append(h('ul', { class: 'desk-grid' }, pools.map((p) => h('li', null, card(p)))));
    if (focusKey) {
      const again = list.querySelector(`[data-pool-id="${focusKey[0]}"] [data-action="${focusKey[1]}"]`);
      if (again) again.focus();
    }
  }

  function card(p) {
    const d = p.desktop;
    const s = p.session && SESSION_STATE[p.session.state] ? p.session : null;
    const policy = p.policy || {};
    const dState = d ? (d.phase && DESKTOP_PHASE[d.phase] ? d.phase : d.state) : 'none';
    const available = p.state === undefined || p.state === 'active';
    const connectKey = s && (s.state === 'disconnected' || s.state === 'connected') ? 'user.action.resume' : 'user.action.connect';
    const connect = h('button', {
      type: 'button', class: 'btn btn-primary desk-connect', 'data-action': 'connect',
      disabled: !available && !s, onclick: () => openFor(p.id, true),
    }, icon('monitor'), h('span', { i18n: connectKey }));
    const logoff = s ? h('button', { type: 'button', class: 'btn btn-secondary', 'data-action': 'logoff', onclick: () => logoffFor(p) },
      icon('logout'), h('span', { i18n: 'user.action.logoff' })) : null;
    const power = policy.user_power && d && !(d.phase && DESKTOP_PHASE[d.phase])
      ? Object.entries(POWER).filter(([, v]) => v.when(d.state)).map(([action, v]) =>
        h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-action': 'power-' + action, onclick: () => powerFor(p, action) },
          icon(v.icon), h('span', { i18n: 'user.action.' + action })))
      : [];
    const typeKey = p.type === 'dedicated' || p.type === 'floating' ? 'user.pool.type.' + p.type : null;
    return h('article', {
      class: ['desk-card', 'card', 'is-' + (d ? (DESKTOP_PHASE[d.phase] || DESKTOP_STATE[d.state] || 'off') : 'off')],
      'data-pool-id': String(p.id), 'data-desktop-state': dState, 'data-session-state': s ? s.state : 'none',
      'aria-labelledby': 'pool-' + p.id + '-name',
    },
    h('header', { class: 'desk-card-head' },
      h('span', { class: 'desk-card-icon', 'aria-hidden': 'true' }, icon('monitor')),
      h('div', { class: 'desk-card-title' },
        h('h2', { class: 'desk-card-name', id: 'pool-' + p.id + '-name', text: p.name }),
        h('div', { class: 'desk-card-tags' },
          h('span', { class: 'desk-tag', i18n: typeKey, text: typeKey ? undefined : p.type }),
          available ? null : h('span', { class: 'desk-tag desk-tag-warn', 'data-role': 'pool-unavailable', i18n: 'user.pool.unavailable' }),
          policy.view_only ? h('span', { class: 'desk-tag', i18n: 'console.view_only' }) : null))),
    p.description ? h('p', { class: 'desk-card-desc', text: p.description }) : null,
    h('dl', { class: 'desk-facts' },
      h('div', { class: 'desk-fact' },
        h('dt', { i18n: 'user.card.desktop' }),
        h('dd', { 'data-role': 'desktop-state' }, desktopChip(p), d && d.name ? h('span', { class: 'desk-name', text: d.name }) : null)),
      h('div', { class: 'desk-fact' },
        h('dt', { i18n: 'user.card.session' }),
        h('dd', { 'data-role': 'session-state' }, sessionChip(p), sessionSince(s)))),
    h('footer', { class: 'desk-card-foot' },
      h('div', { class: 'desk-actions' }, connect, logoff),
      power.length ? h('div', { class: 'desk-power', role: 'group', i18nLabel: 'user.power' }, power) : null));
  }

  // ---- actions -----------------------------------------------------------------------------
  function nameOf(p) {
    return (p.desktop && p.desktop.name) || p.name;
  }

  function hurry() {
    fastUntil = Date.now() + FAST_FOR_MS;
    poll.now();
  }

  async function powerFor(p, action) {
    const d = p.desktop;
    const ok = await confirmDialog({
      title: 'user.confirm.' + action + '.title', titleArgs: { name: nameOf(p) },
      text: 'user.confirm.' + action + '.text',
      confirmKey: 'user.action.' + action, danger: action !== 'start', busyKey: 'user.busy.' + action,
      errors: { forbidden: 'user.error.power_forbidden', conflict: 'user.error.desktop_busy' },
      action: async () => {
        await api.post(`/desktops/${d.id}/power`, { action });
      },
    });
    if (!ok) return;
    toast('user.done.' + action, { name: nameOf(p) });
    hurry();
  }

  async function logoffFor(p) {
    const s = p.session;
    const ok = await confirmDialog({
      title: 'user.confirm.logoff.title', titleArgs: { name: nameOf(p) },
      text: p.type === 'floating' ? 'user.confirm.logoff.text_floating' : 'user.confirm.logoff.text',
      confirmKey: 'user.action.logoff', danger: true, busyKey: 'user.busy.logoff',
      action: async () => {
        await api.post(`/sessions/${s.id}/logoff`);
      },
    });
    if (!ok) return;
    toast('user.done.logoff', { name: nameOf(p) });
    hurry();
  }

  // ---- the console ------------------------------------------------------------------------
  function openFor(id, fromList) {
    if (fromList) {
      consoleFromList = true;
      location.hash = '#/console/' + id; // hashchange opens it
    } else {
      showConsole(id);
    }
  }

  function showConsole(id) {
    if (consoleView) return;
    const p = (pools || []).find((x) => x.id === id);
    if (!p) {
      // not (or no longer) one of this person's pools
      history.replaceState(null, '', location.pathname + location.search);
      if (pools) {
        alert.show('connect.error.no_pool');
        loadError = false;
      }
      return;
    }
    poll.pause = true;
    consoleView = openConsole({
      pool: p,
      onClose: (result, quiet) => {
        consoleView = null;
        poll.pause = false;
        if (quiet) return; // signed out: the frame is gone
        if (CONSOLE_HASH.test(location.hash)) {
          if (consoleFromList) history.back();
          else history.replaceState(null, '', location.pathname + location.search);
        }
        consoleFromList = false;
        const btn = list.querySelector(`[data-pool-id="${id}"] [data-action=connect]`);
        if (btn) btn.focus();
        if (result === 'logged_off') hurry();
        else poll.now();
      },
    });
  }

  function onHash() {
    if (!page.isConnected) {
      window.removeEventListener('hashchange', onHash);
      return;
    }
    const m = CONSOLE_HASH.exec(location.hash);
    if (m && !consoleView) {
      if (pools) showConsole(Number(m[1]));
    } else if (!m && consoleView) {
      consoleFromList = false;
      consoleView.close('closed');
    }
  }
  window.addEventListener('hashchange', onHash);

  // ---- live refresh: every 10 s while the page is visible and no console covers it ------
  const poll = {
    timer: null,
    pause: false,
    busy: false,
    async now() {
      clearTimeout(this.timer);
      this.timer = null;
      if (!page.isConnected) return;
      if (this.busy) return;
      this.busy = true;
      try {
        await load();
      } catch (e) {
        // shown in the alert; the next round tries again
      } finally {
        this.busy = false;
      }
      this.next();
    },
    next() {
      clearTimeout(this.timer);
      if (!page.isConnected) return;
      this.timer = setTimeout(() => {
        if (document.hidden || this.pause) this.next();
        else this.now();
      }, Date.now() < fastUntil ? FAST_MS : LIVE_MS);
    },
  };
  document.addEventListener('visibilitychange', function onVisible() {
    if (!page.isConnected) {
      document.removeEventListener('visibilitychange', onVisible);
      return;
    }
    if (!document.hidden && !poll.pause) poll.now();
  });

  poll.now().then(() => {
    const m = CONSOLE_HASH.exec(location.hash);
    if (m) showConsole(Number(m[1]));
  });
}

startPortal({ kind: 'user', mount });
