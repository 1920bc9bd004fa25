// Sessions: who is using which desktop right now (user, desktop, server, client address, since
// when, connected or disconnected), filtered by state, pool and user and paged with `after`.
// Refreshes every 5 s while the page is visible. An operator can disconnect a session (the
// console closes, the session stays) or log it off (the session ends; a floating desktop is
// released and refreshed).
import * as api from '/common/api.js';
import { h, icon, clear, confirmDialog, toast } from '/common/ui.js';
import { has } from '/common/i18n.js';
import { initials } from '/common/app.js';
import { pageHead, dataTable, Pager, searchBox, select, latest, loadPage } from './lists.js';
import { Poller, liveBadge, ago, hashQuery, setHashQuery } from './inventory.js';
import { SHOW_MESSAGE, loadAll } from './images.js';

const PAGE_SIZE = 30;
const LIVE_MS = 5000;
export const SESSION_STATES = ['starting', 'connecting', 'connected', 'disconnected', 'logged_off'];
const FILTER_STATES = ['live', 'connected', 'disconnected', 'logged_off', 'all'];

const STATE_BADGE = {
  starting: ['badge-info', true],
  connecting: ['badge-info', true],
  connected: ['badge-success', false],
  disconnected: ['badge-warning', false],
  logged_off: ['badge-neutral', false],
};

export function sessionStateBadge(state) {
  const known = state in STATE_BADGE;
  return h('span', {
    class: ['badge', known ? STATE_BADGE[state][0] : 'badge-neutral', known && STATE_BADGE[state][1] ? 'badge-live' : 'badge-dot'],
    'data-session-state': state, i18n: known ? 'session.state.' + state : undefined, text: known ? undefined : state,
  });
}

// Why a session ended or was disconnected, in words when BIC names the reason, else as the
// server said it.
function endReason(s) {
  if (!s.end_reason) return null;
  const key = 'session.end.' + s.end_reason;
  const known = has(key);
  return h('span', {
    class: 'session-reason', 'data-role': 'end-reason', 'data-reason': s.end_reason,
    i18n: known ? key : undefined, i18nArgs: known ? { by: s.ended_by || '' } : undefined, text: known ? undefined : s.end_reason,
  });
}

// A screen with a cross (the console closes), drawn like the icons of /common/ui.js.
function disconnectIcon() {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of ['M3 5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z', 'M8 21h8', 'M12 17v4', 'M9.5 7.5l5 5', 'M14.5 7.5l-5 5']) {
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

const isLive = (s) => s.state !== 'logged_off';
const canDisconnect = (s) => s.state === 'connecting' || s.state === 'connected';

export function sessionsPage(page) {
  const q0 = hashQuery();
  const filters = { state: FILTER_STATES.includes(q0.get('state')) ? q0.get('state') : 'live', pool: q0.get('pool') || '', user: q0.get('user') || '' };
  // the user filter: the username typed, and the user id it stands for
  let userName = q0.get('username') || '';
  let userMissing = false;
  const table = dataTable([
    { key: 'sessions.col.user', class: 'col-user', noLabel: true },
    { key: 'sessions.col.desktop', class: 'col-desktop' },
    { key: 'sessions.col.server', class: 'col-server' },
    { key: 'sessions.col.client', class: 'col-client' },
    { key: 'sessions.col.state', class: 'col-state' },
    { key: 'sessions.col.since', class: 'col-since' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'sessions');
  const pager = new Pager(PAGE_SIZE, () => {
    quiet = false;
    poller.now();
  });
  const only = latest();
  const live = liveBadge();
  let quiet = false;

  const stateSel = select('state', FILTER_STATES.map((s) => [s, 'sessions.filter.' + s]), 'sessions.filter.state');
  stateSel.value = filters.state;
  stateSel.addEventListener('change', () => {
    filters.state = stateSel.value;
    changed();
  });
  const poolSel = select('pool', [['', 'sessions.filter.pool_any']], 'sessions.filter.pool');
  poolSel.addEventListener('change', () => {
    filters.pool = poolSel.value;
    changed();
  });
  const search = searchBox('sessions.filter.user', (v) => setUser(v), 'user');
  search.input.value = userName;

  function changed() {
    setHashQuery({ state: filters.state === 'live' ? '' : filters.state, pool: filters.pool, user: filters.user, username: filters.user ? userName : '' });
    pager.reset();
    quiet = false;
    poller.now();
  }

  // A username -> that user's id (an exact match, or the only user the text finds).
  async function setUser(v) {
    userName = v;
    userMissing = false;
    if (!v) {
      filters.user = '';
      changed();
      return;
    }
    let found = null;
    try {
      const data = await api.get('/users', { q: v, limit: 20 });
      const items = data.items || [];
      found = items.find((u) => u.username.toLowerCase() === v.toLowerCase()) || (items.length === 1 ? items[0] : null);
    } catch (e) {
      table.alert.showError(e, SHOW_MESSAGE);
      return;
    }
    if (search.input.value.trim() !== v) return; // typed on meanwhile
    if (found) {
      filters.user = String(found.id);
      userName = found.username;
    } else {
      filters.user = '';
      userMissing = true;
    }
    changed();
  }

  page.append(
    pageHead('sessions.title', 'sessions.subtitle', live.el),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar' }, search.el, h('div', { class: 'toolbar-filters' }, stateSel, poolSel)),
      table.el,
      pager.el));

  const ready = loadAll('/pools').then((pools) => {
    const ids = pools.map((p) => [String(p.id), p.name]);
    if (filters.pool && !ids.some(([id]) => id === filters.pool)) ids.push([filters.pool, '#' + filters.pool]);
    clear(poolSel).append(h('option', { value: '', i18n: 'sessions.filter.pool_any' }),
      ...ids.sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => h('option', { value: id, text: name })));
    poolSel.value = filters.pool;
  }).catch(() => {
    // the list still works without pool names
  });

  const poller = new Poller(page, load, LIVE_MS);
  poller.now();
  return () => poller.stop();

  async function load() {
    await ready;
    if (userMissing) {
      table.empty('sessions.no_user', 'users');
      pager.update(0, null);
      live.mark();
      return;
    }
    const filtered = filters.pool || filters.user;
    const data = await loadPage({
      table, pager, only, quiet,
      fetch: () => api.get('/sessions', { ...pager.params(), state: filters.state, pool: filters.pool, user: filters.user }),
      row: sessionRow,
      keyed: {
        key: (s) => s.id,
        sig: (s) => JSON.stringify([s.state, s.client_ip, s.connected_at, s.disconnected_at, s.ended_at, s.end_reason, s.ended_by,
          s.server && s.server.hostname, s.desktop && s.desktop.name, Math.floor(Date.now() / 30000)]),
      },
      emptyKey: emptyKey(filtered),
      emptyIcon: filters.state === 'live' && !filtered ? 'monitor' : 'search',
      infoKey: 'list.page',
    });
    quiet = true;
    if (data) live.mark();
    else live.stale();
  }

  function emptyKey(filtered) {
    if (filtered) return 'sessions.none_match';
    if (filters.state === 'live') return 'sessions.empty';
    return 'sessions.empty_' + filters.state;
  }

  function userCell(s) {
    const u = s.user || {};
    const name = u.username || '#' + u.id;
    const pick = h('button', {
      type: 'button', class: 'link-btn user-cell-name', 'data-action': 'filter-user', text: name,
      i18nTitle: 'sessions.filter.by_user', i18nArgs: { name },
      onclick: () => {
        search.input.value = name;
        setUser(name);
      },
    });
    return h('div', { class: 'user-cell' },
      h('span', { class: 'avatar avatar-sm', 'aria-hidden': 'true', text: initials(name) }),
      h('div', { class: 'user-cell-text' }, pick, h('span', { class: 'user-cell-sub mono', text: '#' + s.id })));
  }

  function desktopCell(s) {
    const d = s.desktop;
    const p = s.pool;
    return h('div', { class: 'user-cell-text' },
      d ? h('span', { class: 'strong', 'data-role': 'desktop', text: d.name }) : h('span', { class: 'muted', i18n: 'sessions.no_desktop' }),
      p ? h('a', { class: 'user-cell-sub', href: '#/pools/' + p.id, 'data-role': 'pool', text: p.name }) : null);
  }

  // When it started, then what happened last (connected, disconnected or ended) and when.
  function sinceCell(s) {
    const started = ago(s.started_at);
    if (s.started_at && !started.getAttribute('title')) started.setAttribute('title', new Date(s.started_at).toLocaleString());
    let key = null;
    let at = null;
    if (s.state === 'logged_off') [key, at] = ['sessions.ended', s.ended_at];
    else if (s.state === 'disconnected') [key, at] = ['sessions.disconnected', s.disconnected_at];
    else if (s.state === 'connected') [key, at] = ['sessions.connected', s.connected_at];
    return h('div', { class: 'user-cell-text' },
      h('span', { class: 'nowrap', 'data-role': 'since' }, started),
      key ? h('span', { class: 'user-cell-sub', 'data-role': 'last-change' }, h('span', { i18n: key }), ' ', at ? ago(at) : '—') : null,
      s.state === 'logged_off' || s.state === 'disconnected' ? endReason(s) : null);
  }

  function sessionRow(s) {
    const who = (s.user && s.user.username) || '#' + s.id;
    const disc = h('button', {
      type: 'button', class: 'icon-btn', 'data-action': 'disconnect', disabled: !canDisconnect(s),
      i18nLabel: 'sessions.disconnect', i18nTitle: 'sessions.disconnect.hint', onclick: () => disconnect(s, who),
    }, disconnectIcon());
    const off = h('button', {
      type: 'button', class: 'icon-btn icon-btn-danger', 'data-action': 'logoff', disabled: !isLive(s),
      i18nLabel: 'sessions.logoff', i18nTitle: 'sessions.logoff.hint', onclick: () => logoff(s, who),
    }, icon('logout'));
    return table.row([
      userCell(s),
      desktopCell(s),
      s.server ? h('a', { class: 'strong', href: '#/servers/' + s.server.id, 'data-role': 'server', text: s.server.hostname || '#' + s.server.id }) : h('span', { class: 'muted', text: '—' }),
      s.client_ip ? h('span', { class: 'mono', 'data-role': 'client-ip', text: s.client_ip }) : h('span', { class: 'muted', text: '—' }),
      sessionStateBadge(s.state),
      sinceCell(s),
      isLive(s) ? h('div', { class: 'row-actions' }, disc, off) : h('span', { class: 'muted no-value', text: '' }),
    ], { 'data-session-id': String(s.id), 'data-state': s.state, 'data-user': who, 'data-desktop': s.desktop ? s.desktop.name : '' });
  }

  async function disconnect(s, who) {
    const desk = s.desktop ? s.desktop.name : '';
    const ok = await confirmDialog({
      title: 'sessions.disconnect.title', titleArgs: { user: who },
      text: 'sessions.disconnect.text', textArgs: { user: who, desktop: desk },
      confirmKey: 'sessions.disconnect', busyKey: 'common.sending', errors: SHOW_MESSAGE,
      action: () => api.post(`/sessions/${s.id}/disconnect`),
    });
    if (!ok) return;
    toast('sessions.disconnected_toast', { user: who });
    quiet = true;
    poller.now();
  }

  async function logoff(s, who) {
    const desk = s.desktop ? s.desktop.name : '';
    const ok = await confirmDialog({
      title: 'sessions.logoff.title', titleArgs: { user: who },
      text: 'sessions.logoff.text', textArgs: { user: who, desktop: desk },
      confirmKey: 'sessions.logoff', danger: true, busyKey: 'common.sending', errors: SHOW_MESSAGE,
      action: () => api.post(`/sessions/${s.id}/logoff`),
    });
    if (!ok) return;
    toast('sessions.logged_off_toast', { user: who });
    quiet = true;
    poller.now();
  }
}
