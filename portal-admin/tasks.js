// Tasks: commands queued for agents, newest first, filtered by server and state and paged
// with `before`. Refreshes every 2 s while a task on the page is unfinished.
import * as api from '/common/api.js';
import { h, icon, clear } from '/common/ui.js';
import { formatNumber } from '/common/i18n.js';
import { pageHead, dataTable, Pager, select, latest, loadPage } from './lists.js';
import { Poller, liveBadge, taskStateBadge, taskTypeLabel, taskFinished, ago, hashQuery, setHashQuery } from './inventory.js';

const PAGE_SIZE = 30;
const LIVE_MS = 2000;
const IDLE_MS = 15000;
const STATES = ['queued', 'sent', 'running', 'succeeded', 'failed'];

export function tasksPage(page) {
  const q0 = hashQuery();
  const filters = { server: q0.get('server') || '', state: q0.get('state') || '' };
  const servers = new Map();
  const table = dataTable([
    { key: 'tasks.col.task', class: 'col-name', noLabel: true },
    { key: 'tasks.col.server', class: 'col-server' },
    { key: 'tasks.col.state', class: 'col-state' },
    { key: 'tasks.col.error', class: 'col-details' },
    { key: 'tasks.col.time', class: 'col-date' },
  ], 'tasks');
  const pager = new Pager(PAGE_SIZE, () => {
    quiet = false;
    poller.now();
  }, 'before');
  const only = latest();
  const live = liveBadge();
  let quiet = false;
  let unfinished = false;

  const serverSel = select('server', [['', 'tasks.filter.server_any']], 'tasks.filter.server');
  const stateSel = select('state', [['', 'tasks.filter.state_any'], ...STATES.map((s) => [s, 'task.state.' + s])], 'tasks.filter.state');
  stateSel.value = filters.state;
  for (const [sel, key] of [[serverSel, 'server'], [stateSel, 'state']]) {
    sel.addEventListener('change', () => {
      filters[key] = sel.value;
      setHashQuery(filters);
      pager.reset();
      quiet = false;
      poller.now();
    });
  }

  page.append(
    pageHead('tasks.title', 'tasks.subtitle', live.el),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar toolbar-end' },
        h('p', { class: 'toolbar-hint' }, icon('info'), h('span', { i18n: 'tasks.hint' })),
        h('div', { class: 'toolbar-filters' }, serverSel, stateSel)),
      table.el,
      pager.el));

  const ready = (async () => {
    try {
      let after = null;
      for (let i = 0; i < 5; i++) {
        const data = await api.get('/servers', { limit: 1000, after });
        for (const s of data.items || []) servers.set(s.id, s.hostname);
        if (data.next_after === null || data.next_after === undefined) break;
        after = data.next_after;
      }
    } catch (e) {
      // the list still works with server numbers
    }
    const ids = [...servers.keys()];
    if (filters.server && !servers.has(Number(filters.server))) ids.push(Number(filters.server));
    clear(serverSel).append(h('option', { value: '', i18n: 'tasks.filter.server_any' }),
      ...ids.sort((a, b) => (servers.get(a) || '').localeCompare(servers.get(b) || '')).map((id) =>
        h('option', { value: String(id), text: servers.get(id) || '#' + id })));
    serverSel.value = filters.server;
  })();

  const poller = new Poller(page, load, () => (unfinished ? LIVE_MS : IDLE_MS));
  poller.now();
  return () => poller.stop();

  async function load() {
    await ready;
    const data = await loadPage({
      table, pager, only, quiet,
      fetch: () => api.get('/tasks', { ...pager.params(), server: filters.server, state: filters.state }),
      row: taskRow,
      keyed: { key: (t) => t.id, sig: (t) => JSON.stringify([t.state, t.attempts, t.last_error, t.finished_at, t.next_attempt_at, Math.floor(Date.now() / 30000)]) },
      emptyKey: filters.server || filters.state ? 'tasks.none_match' : 'tasks.empty',
      emptyIcon: 'tasks',
      nextKey: 'next_before',
      infoKey: 'list.page',
    });
    quiet = true;
    if (data) {
      unfinished = (data.items || []).some((t) => !taskFinished(t));
      live.mark();
    } else {
      live.stale();
    }
  }

  function target(t) {
    if (t.params && t.params.uuid) {
      return h('span', { class: 'user-cell-sub' }, h('span', { i18n: 'tasks.desktop' }), ' ',
        h('span', { class: 'mono', title: t.params.uuid, 'data-uuid': t.params.uuid, text: t.params.uuid.slice(0, 8) }));
    }
    return null;
  }

  function taskRow(t) {
    const host = servers.get(t.server_id);
    let finished = null;
    if (t.finished_at) finished = h('span', { class: 'user-cell-sub' }, h('span', { i18n: 'tasks.finished' }), ' ', h('span', { date: t.finished_at }));
    else if (t.state === 'queued' && t.attempts > 0) finished = h('span', { class: 'user-cell-sub', i18n: 'tasks.retrying' });
    return table.row([
      h('div', { class: 'task-cell' },
        h('span', { class: ['task-icon', 'task-icon-' + t.state], 'aria-hidden': 'true' }, icon(t.type === 'inventory.refresh' ? 'refresh' : 'monitor')),
        h('div', { class: 'user-cell-text' },
          h('span', { class: 'user-cell-name' }, taskTypeLabel(t.type), h('span', { class: 'task-id', text: '#' + t.id })),
          target(t))),
      h('a', { class: 'strong', href: '#/servers/' + t.server_id, text: host || '#' + t.server_id }),
      h('div', { class: 'state-cell' }, taskStateBadge(t.state),
        h('span', { class: 'user-cell-sub nowrap', 'data-role': 'attempts', i18n: 'task.attempts', i18nArgs: { n: formatNumber(t.attempts), max: formatNumber(t.max_attempts) } })),
      t.last_error
        ? h('span', { class: ['task-error-text', t.state === 'failed' ? 'is-failed' : null], 'data-role': 'task-error', text: t.last_error })
        : h('span', { class: 'muted', text: '—' }),
      h('div', { class: 'user-cell-text' },
        h('span', null, ago(t.created_at), h('span', { class: 'muted', text: ' · ' + (t.created_by || '') })),
        finished),
    ], { 'data-task-id': String(t.id), 'data-task-state': t.state, 'data-task-type': t.type });
  }
}
