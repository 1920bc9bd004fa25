// Servers (bServers): a filtered, keyset-paged list and one server's page with hardware,
// NICs, load, capacity, desktops with power actions, its tasks (live until they end), events,
// maintenance and an inventory refresh.
import * as api from '/common/api.js';
import { h, icon, clear, confirmDialog, toast, button, alertBox, setText } from '/common/ui.js';
import { formatNumber, has, t as tr } from '/common/i18n.js';
import { pageHead, dataTable, Pager, searchBox, select, latest, loadPage } from './lists.js';
import {
  Poller, liveBadge, capacityMeter, capacityLimits, limitList, serverBadges, serverHealth, statusDot,
  desktopStateBadge, taskStateBadge, taskTypeLabel, taskFinished, ago, loadMeter, fmtMiB, fmtGiB,
  fmtMbps, fmtRate, pct, hashQuery, setHashQuery,
} from './inventory.js';

const PAGE_SIZE = 25;
const REFRESH_MS = 10000;
const TASK_POLL_MS = 1500;
const DESKTOPS_SHOWN = 20;

export function serversRoute(page, ctx, rest) {
  const id = /^\d+$/.test(rest || '') ? Number(rest) : null;
  if (id) return serverPage(page, ctx, id);
  return serversList(page);
}

// ---- building block and module pickers (also used by the tokens page) ----------------------

export async function loadBuildingBlocks() {
  const out = [];
  let after = null;
  for (let i = 0; i < 10; i++) {
    const data = await api.get('/building-blocks', { limit: 500, after });
    out.push(...(data.items || []));
    if (data.next_after === null || data.next_after === undefined) break;
    after = data.next_after;
  }
  return out;
}

export async function loadModules(bbId) {
  const data = await api.get(`/building-blocks/${bbId}/modules`, { limit: 500 });
  return data.items || [];
}

export function fillSelect(sel, anyKey, items, value) {
  clear(sel).append(h('option', { value: '', i18n: anyKey }),
    ...items.map((it) => h('option', { value: String(it.id), text: it.name })));
  sel.value = value && items.some((it) => String(it.id) === String(value)) ? String(value) : '';
}

// ---- the list ------------------------------------------------------------------------------

function serversList(page) {
  const q0 = hashQuery();
  const filters = { q: q0.get('q') || '', state: q0.get('state') || '', building_block: q0.get('building_block') || '', module: q0.get('module') || '' };
  const table = dataTable([
    { key: 'servers.col.server', class: 'col-user col-server-main', noLabel: true },
    { key: 'servers.col.state', class: 'col-state' },
    { key: 'servers.col.cpu', class: 'col-load' },
    { key: 'servers.col.memory', class: 'col-load' },
    { key: 'servers.col.desktops', class: 'col-cap' },
    { key: 'servers.col.heartbeat', class: 'col-date' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'servers');
  const pager = new Pager(PAGE_SIZE, () => poller.now());
  const only = latest();
  const live = liveBadge();
  let quiet = false;

  const search = searchBox('servers.search', (v) => {
    filters.q = v;
    changed();
  });
  search.input.value = filters.q;
  const stateSel = select('state', [['', 'servers.filter.state_any'], ['online', 'server.state.online'], ['offline', 'server.state.offline'], ['enrolling', 'server.state.enrolling']], 'servers.filter.state');
  stateSel.value = filters.state;
  const bbSel = select('building_block', [['', 'servers.filter.bb_any']], 'servers.filter.bb');
  const modSel = select('module', [['', 'servers.filter.module_any']], 'servers.filter.module');
  modSel.disabled = true;
  stateSel.addEventListener('change', () => {
    filters.state = stateSel.value;
    changed();
  });
  bbSel.addEventListener('change', async () => {
    filters.building_block = bbSel.value;
    filters.module = '';
    await modules();
    changed();
  });
  modSel.addEventListener('change', () => {
    filters.module = modSel.value;
    changed();
  });

  function changed() {
    setHashQuery(filters);
    pager.reset();
    quiet = false;
    poller.now();
  }

  async function modules() {
    if (!filters.building_block) {
      fillSelect(modSel, 'servers.filter.module_any', [], '');
      modSel.disabled = true;
      return;
    }
    try {
      fillSelect(modSel, 'servers.filter.module_any', await loadModules(filters.building_block), filters.module);
      modSel.disabled = false;
    } catch (e) {
      table.alert.showError(e);
    }
  }

  page.append(
    pageHead('servers.title', 'servers.subtitle', live.el,
      h('a', { class: 'btn btn-secondary', href: '#/tokens', 'data-action': 'to-tokens' }, icon('ticket'), h('span', { i18n: 'servers.enroll' }))),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar' }, search.el, h('div', { class: 'toolbar-filters' }, stateSel, bbSel, modSel)),
      table.el,
      pager.el));

  (async () => {
    try {
      const bbs = await loadBuildingBlocks();
      fillSelect(bbSel, 'servers.filter.bb_any', bbs, filters.building_block);
      if (filters.module && !filters.building_block) {
        // a link from the topology names only the module: find its building block
        const m = await api.get('/modules/' + filters.module);
        filters.building_block = String(m.building_block_id);
        bbSel.value = filters.building_block;
      }
      await modules();
    } catch (e) {
      table.alert.showError(e);
    }
  })();

  const poller = new Poller(page, load, REFRESH_MS);
  poller.now();
  return () => poller.stop();

  async function load() {
    const data = await loadPage({
      table, pager, only, quiet,
      fetch: () => api.get('/servers', { ...pager.params(), q: filters.q, state: filters.state, building_block: filters.building_block, module: filters.module }),
      row: serverRow,
      keyed: { key: (s) => s.id, sig: (s) => JSON.stringify([s.hostname, s.state, s.maintenance, s.module, s.building_block, Math.round(s.load.cpu_pct), s.load.mem_used_mib, s.desktops, s.capacity, s.last_heartbeat_at]) },
      emptyKey: filters.q || filters.state || filters.building_block || filters.module ? 'servers.none_match' : 'servers.empty',
      emptyIcon: 'server',
      infoKey: 'list.page',
    });
    quiet = true;
    if (data) live.mark();
    else live.stale();
  }

  function serverRow(s) {
    const hl = serverHealth(s);
    const cpuPct = Math.round(s.load.cpu_pct || 0);
    const memPct = pct(s.load.mem_used_mib, s.hardware.memory_mib);
    return table.row([
      h('div', { class: 'server-cell' },
        h('span', { class: 'topo-icon topo-icon-server' }, icon('server'), statusDot(hl)),
        h('div', { class: 'user-cell-text' },
          h('a', { class: 'user-cell-name server-link', href: '#/servers/' + s.id, text: s.hostname }),
          h('span', { class: 'user-cell-sub', text: `${s.building_block} › ${s.module}` }))),
      serverBadges(s),
      h('div', { class: 'load-cell' }, h('span', { class: 'load-num', text: cpuPct + '%' }), loadMeter(cpuPct, 100, 'server.cpu')),
      h('div', { class: 'load-cell' }, h('span', { class: 'load-num', text: memPct + '%' }), loadMeter(memPct, 100, 'server.memory')),
      capacityMeter(s.desktops.total, s.capacity, { compact: true, noLimit: true }),
      ago(s.last_heartbeat_at),
      h('a', { class: 'icon-btn', href: '#/servers/' + s.id, 'data-action': 'open', i18nLabel: 'servers.open', i18nTitle: 'servers.open' }, icon('chevronRight')),
    ], { 'data-server': s.hostname, 'data-server-id': String(s.id), 'data-state': s.state, 'data-health': hl });
  }
}

// ---- one server ----------------------------------------------------------------------------

const POWER = [
  { type: 'domain.start', icon: 'play', key: 'desktop.action.start', when: ['shutoff', 'crashed', 'nostate', 'pmsuspended'] },
  { type: 'domain.shutdown', icon: 'power', key: 'desktop.action.shutdown', confirm: true, when: ['running', 'paused', 'blocked'] },
  { type: 'domain.reboot', icon: 'rotate', key: 'desktop.action.reboot', confirm: true, when: ['running', 'blocked'] },
  { type: 'domain.destroy', icon: 'zap', key: 'desktop.action.destroy', confirm: true, danger: true, when: ['running', 'paused', 'blocked', 'shutdown', 'crashed', 'pmsuspended'] },
];

function serverPage(page, ctx, id) {
  const alert = alertBox();
  const live = liveBadge();
  const head = h('div', { class: 'page-head server-head' });
  const tiles = h('div', { class: 'tiles server-tiles' });
  const hw = h('dl', { class: 'props', 'data-role': 'hardware' });
  const capBox = h('div', { class: 'cap-box', 'data-role': 'capacity-card' });
  const nicList = h('ul', { class: 'nic-list', 'data-role': 'nics' });
  const deskTable = dataTable([
    { key: 'desktop.col.name', class: 'col-name', noLabel: true },
    { key: 'desktop.col.state', class: 'col-state' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'desktops');
  const deskFilter = h('input', { type: 'search', name: 'desktop-filter', class: 'card-search', i18nPlaceholder: 'server.desktops.filter', i18nLabel: 'server.desktops.filter', autocomplete: 'off', spellcheck: 'false' });
  const deskAll = button('server.desktops.all', { variant: 'ghost', class: 'btn-sm', action: 'all-desktops' });
  deskAll.hidden = true;
  let showAll = false;
  deskFilter.addEventListener('input', () => renderDesktops());
  deskAll.addEventListener('click', () => {
    showAll = true;
    renderDesktops();
  });
  const taskList = h('ul', { class: 'task-list', 'data-role': 'server-tasks' });
  const taskAlert = alertBox();
  const eventList = h('ol', { class: 'event-list', 'data-role': 'events' });
  const eventMore = button('events.more', { variant: 'ghost', class: 'btn-sm', action: 'more-events' });
  eventMore.hidden = true;

  let server = null;
  let desktops = [];
  let tasks = [];
  let events = [];
  let eventsNext = null;
  let lastFull = 0;
  let unfinished = false;

  page.append(
    h('nav', { class: 'crumbs', i18nLabel: 'crumbs.label', 'data-role': 'crumbs' }),
    head, alert.el, tiles,
    h('div', { class: 'detail-grid' },
      h('div', { class: 'detail-main' },
        h('section', { class: 'card detail-card', 'data-card': 'desktops' },
          cardHead('server.desktops.title', 'monitor', h('div', { class: 'card-tools' },
            h('div', { class: 'input-search input-search-sm' }, icon('search'), deskFilter)), h('span', { class: 'card-count', 'data-role': 'desktop-count' })),
          deskTable.el, h('div', { class: 'card-foot' }, deskAll)),
        h('section', { class: 'card detail-card', 'data-card': 'events' },
          cardHead('server.events.title', 'activity'), eventList, h('div', { class: 'card-foot' }, eventMore))),
      h('div', { class: 'detail-side' },
        h('section', { class: 'card detail-card', 'data-card': 'tasks' },
          cardHead('server.tasks.title', 'tasks', h('a', { class: 'btn btn-ghost btn-sm', href: '#/tasks?server=' + id, 'data-action': 'all-tasks' }, h('span', { i18n: 'server.tasks.all' }), icon('arrowRight'))),
          taskAlert.el, taskList),
        h('section', { class: 'card detail-card', 'data-card': 'capacity' }, cardHead('server.capacity.title', 'activity'), capBox),
        h('section', { class: 'card detail-card', 'data-card': 'hardware' }, cardHead('server.hardware.title', 'cpu'), hw),
        h('section', { class: 'card detail-card', 'data-card': 'nics' }, cardHead('server.nics.title', 'port'), nicList))));

  eventMore.addEventListener('click', () => loadEvents(true));

  const poller = new Poller(page, refresh, () => (unfinished ? TASK_POLL_MS : REFRESH_MS));
  poller.now();
  return () => poller.stop();

  function cardHead(key, iconName, extra, count) {
    return h('header', { class: 'card-head' },
      h('h2', { class: 'card-title' }, icon(iconName), h('span', { i18n: key }), count || null), extra || null);
  }

  async function refresh() {
    const full = Date.now() - lastFull >= REFRESH_MS - 200 || !server;
    const wasUnfinished = unfinished;
    try {
      await loadTasks();
      // a task that just ended may have changed the desktops: load everything then too
      if (full || (wasUnfinished && !unfinished)) {
        const [s, d] = await Promise.all([
          api.get('/servers/' + id),
          api.get(`/servers/${id}/desktops`, { limit: 1000 }),
        ]);
        server = s;
        desktops = d.items || [];
        await loadEvents(false);
        lastFull = Date.now();
        renderServer();
        renderDesktops();
      }
      alert.hide();
      live.mark();
    } catch (e) {
      if (e.status === 404) {
        poller.stop();
        notFound();
        return;
      }
      alert.showError(e);
      live.stale();
    }
  }

  function notFound() {
    clear(page).append(h('div', { class: 'card notice-card notice-inline', 'data-role': 'server-missing' },
      h('span', { class: 'empty-icon' }, icon('server')),
      h('h1', { class: 'notice-title', i18n: 'server.missing.title' }),
      h('p', { class: 'notice-text', i18n: 'server.missing.text' }),
      h('div', { class: 'notice-actions' }, h('a', { class: 'btn btn-primary', href: '#/servers' }, h('span', { i18n: 'server.back' })))));
  }

  async function loadTasks() {
    const data = await api.get('/tasks', { server: id, limit: 8 });
    tasks = data.items || [];
    unfinished = tasks.some((t) => !taskFinished(t));
    renderTasks();
    if (server) renderDesktops();
  }

  async function loadEvents(more) {
    const limit = more ? 20 : Math.max(15, events.length);
    const data = await api.get(`/servers/${id}/events`, { limit, before: more ? eventsNext : undefined });
    const items = data.items || [];
    events = more ? events.concat(items) : items;
    eventsNext = data.next_before === undefined ? null : data.next_before;
    eventMore.hidden = eventsNext === null;
    renderEvents();
  }

  // ---- head, tiles, hardware, capacity, NICs ----
  function renderServer() {
    const s = server;
    clear(page.querySelector('[data-role=crumbs]')).append(
      h('a', { href: '#/topology', i18n: 'nav.topology' }), h('span', { class: 'crumb-sep', 'aria-hidden': 'true', text: '/' }),
      h('a', { href: '#/servers?building_block=' + s.building_block_id, text: s.building_block }), h('span', { class: 'crumb-sep', 'aria-hidden': 'true', text: '/' }),
      h('a', { href: '#/servers?module=' + s.module_id, text: s.module }), h('span', { class: 'crumb-sep', 'aria-hidden': 'true', text: '/' }),
      h('span', { 'aria-current': 'page', text: s.hostname }));

    const maintBtn = h('button', {
      type: 'button', class: ['btn', s.maintenance ? 'btn-warning' : 'btn-secondary'], 'data-action': 'maintenance',
      'aria-pressed': String(!!s.maintenance),
    }, icon('wrench'), h('span', { i18n: s.maintenance ? 'server.maintenance.leave' : 'server.maintenance.enter' }));
    maintBtn.addEventListener('click', () => toggleMaintenance());
    const invBtn = button('server.refresh_inventory', { variant: 'secondary', icon: 'refresh', action: 'inventory-refresh', onclick: () => runTask({ type: 'inventory.refresh' }, invBtn) });
    const focused = document.activeElement && head.contains(document.activeElement) ? document.activeElement.getAttribute('data-action') : null;
    clear(head).append(
      h('div', { class: 'server-title' },
        h('span', { class: 'server-title-icon topo-icon topo-icon-server' }, icon('server'), statusDot(serverHealth(s))),
        h('div', null,
          h('h1', { class: 'page-title', 'data-role': 'hostname', text: s.hostname }),
          h('p', { class: 'page-subtitle' }, serverBadges(s), h('span', { class: 'muted', i18n: 'server.location', i18nArgs: { module: s.module, bb: s.building_block } })))),
      h('div', { class: 'page-actions' }, live.el, invBtn, maintBtn));
    if (focused) {
      const again = head.querySelector(`[data-action="${focused}"]`);
      if (again) again.focus();
    }

    const cpuPct = Math.round(s.load.cpu_pct || 0);
    const memPct = pct(s.load.mem_used_mib, s.hardware.memory_mib);
    const tile = (name, iconName, label, value, sub, extra) => h('div', { class: 'tile', 'data-tile': name },
      h('div', { class: 'tile-head' }, h('span', { class: 'tile-icon tile-icon-' + name }, icon(iconName)), h('span', { class: 'tile-label', i18n: label })),
      h('span', { class: 'tile-value' }, value), h('span', { class: 'tile-sub' }, sub), extra || null);
    clear(tiles).append(
      tile('cpu', 'cpu', 'server.cpu', h('strong', { text: cpuPct + '%' }),
        h('span', { i18n: 'server.cpu_sub', i18nArgs: { cpus: formatNumber(s.hardware.cpus), cores: formatNumber(s.hardware.cores) } }),
        h('div', { class: 'tile-meter' }, loadMeter(cpuPct, 100, 'server.cpu'))),
      tile('memory', 'box', 'server.memory', h('strong', { text: memPct + '%' }),
        h('span', { text: `${fmtMiB(s.load.mem_used_mib)} / ${fmtMiB(s.hardware.memory_mib)}` }),
        h('div', { class: 'tile-meter' }, loadMeter(memPct, 100, 'server.memory'))),
      tile('desktops', 'monitor', 'server.desktops', h('strong', { text: formatNumber(s.desktops.total) }),
        h('span', { i18n: 'topo.tile.running', i18nArgs: { n: formatNumber(s.desktops.running) } })),
      tile('network', 'port', 'server.network', h('strong', { class: 'tile-small', text: fmtMbps(s.hardware.nic_mbps) }),
        h('span', { text: `↓ ${fmtRate(s.load.net_rx_bps)}  ↑ ${fmtRate(s.load.net_tx_bps)}` })),
      tile('heartbeat', 'clock', 'server.heartbeat', h('strong', { class: 'tile-small' }, ago(s.last_heartbeat_at)),
        h('span', { date: s.last_heartbeat_at || '' })));

    clear(hw).append(...[
      ['hw.cpus', formatNumber(s.hardware.cpus)],
      ['hw.cores', formatNumber(s.hardware.cores)],
      ['hw.memory', fmtMiB(s.hardware.memory_mib)],
      ['hw.storage', fmtGiB(s.hardware.storage_gib)],
      ['hw.network', fmtMbps(s.hardware.nic_mbps)],
      ['hw.hypervisor', s.hypervisor || '—'],
      ['hw.agent', s.agent_version || '—'],
      ['hw.listen', s.listen_url || '—', 'mono'],
      ['hw.enrolled', h('span', { date: s.created_at })],
    ].map(([k, v, cls]) => h('div', { class: 'prop' }, h('dt', { i18n: k }), h('dd', { class: cls || null }, v))));

    const info = capacityLimits(s.capacity);
    clear(capBox).append(
      capacityMeter(s.desktops.total, s.capacity),
      h('div', { class: 'cap-rules' }, limitList(info)),
      h('p', { class: 'field-hint', i18n: 'cap.rules' }));

    clear(nicList).append(...(s.nics || []).map((n) => h('li', { class: 'nic', 'data-nic': n.name },
      h('span', { class: 'nic-icon', 'aria-hidden': 'true' }, icon('port')),
      h('div', { class: 'nic-text' },
        h('span', { class: 'nic-name mono', text: n.name }),
        h('span', { class: 'nic-sub', text: [fmtMbps(n.speed_mbps), n.driver].filter(Boolean).join(' · ') })),
      n.sriov_capable
        ? h('span', { class: 'badge badge-success', 'data-sriov': 'yes', 'data-vfs': String(n.sriov_total_vfs) }, icon('check'),
          h('span', { i18n: 'nic.sriov.vfs', i18nArgs: { n: formatNumber(n.sriov_total_vfs) } }))
        : h('span', { class: 'badge badge-neutral', 'data-sriov': 'no', i18n: 'nic.sriov.none' }))));
    if (!(s.nics || []).length) nicList.append(h('li', { class: 'task-empty', i18n: 'nic.none' }));
  }

  // ---- desktops and their power actions ----
  function latestTaskFor(uuid) {
    return tasks.find((t) => t.params && t.params.uuid === uuid) || null;
  }

  function renderDesktops() {
    const count = page.querySelector('[data-role=desktop-count]');
    if (count) count.textContent = formatNumber(desktops.length);
    const q = deskFilter.value.trim().toLowerCase();
    const match = q ? desktops.filter((d) => d.name.toLowerCase().includes(q) || d.uuid.startsWith(q)) : desktops;
    const shown = showAll || q ? match : match.slice(0, DESKTOPS_SHOWN);
    deskAll.hidden = shown.length === match.length;
    setText(deskAll.querySelector('[data-i18n]'), 'server.desktops.all', { n: formatNumber(match.length) });
    deskTable.sync(shown, (d) => d.uuid, (d) => {
      const t = latestTaskFor(d.uuid);
      return JSON.stringify([d.name, d.state, d.vcpus, d.memory_mib, d.state_changed_at, Math.floor(Date.now() / 30000), t && [t.id, t.state, t.attempts, t.last_error]]);
    }, desktopRow);
    if (!desktops.length) deskTable.empty('server.desktops.empty', 'monitor');
    else if (!match.length) deskTable.empty('server.desktops.none_match', 'search');
  }

  function desktopRow(d) {
    const t = latestTaskFor(d.uuid);
    const pending = t && !taskFinished(t);
    const actions = h('div', { class: 'row-actions' }, POWER.map((p) => {
      const b = h('button', {
        type: 'button', class: ['icon-btn', p.danger ? 'icon-btn-danger' : null], 'data-action': p.type,
        i18nLabel: p.key, i18nTitle: p.key, disabled: pending || !p.when.includes(d.state),
      }, icon(p.icon));
      b.addEventListener('click', () => powerAction(d, p, b));
      return b;
    }));
    return deskTable.row([
      h('div', { class: 'desk-cell' },
        h('span', { class: 'desk-icon', 'aria-hidden': 'true' }, icon('monitor')),
        h('div', { class: 'user-cell-text' },
          h('span', { class: 'user-cell-name', text: d.name }),
          h('span', { class: 'user-cell-sub' },
            h('span', { i18n: 'desktop.size', i18nArgs: { vcpus: formatNumber(d.vcpus), mem: fmtMiB(d.memory_mib) } }),
            h('span', { class: 'topo-sep', 'aria-hidden': 'true', text: ' · ' }),
            h('span', { class: 'mono', title: d.uuid, text: d.uuid.slice(0, 8) })),
          t ? taskLine(t) : null)),
      h('div', { class: 'state-cell' }, desktopStateBadge(d.state), h('span', { class: 'user-cell-sub' }, ago(d.state_changed_at))),
      actions,
    ], { 'data-desktop': d.name, 'data-uuid': d.uuid, 'data-state': d.state });
  }

  // The last task of a desktop, under its name: "Start · Failed: agent unreachable…"
  function taskLine(t) {
    return h('span', { class: ['task-line', 'task-line-' + t.state], 'data-role': 'desktop-task', 'data-task-id': String(t.id) },
      taskTypeLabel(t.type), h('span', { 'aria-hidden': 'true', text: '·' }), taskStateBadge(t.state),
      t.state === 'failed' && t.last_error ? h('span', { class: 'task-line-error', title: t.last_error, text: t.last_error }) : null);
  }

  async function powerAction(d, p, btn) {
    const body = { type: p.type, params: { uuid: d.uuid } };
    if (p.confirm) {
      let task = null;
      const ok = await confirmDialog({
        title: 'desktop.confirm.' + p.type + '.title', titleArgs: { name: d.name },
        text: 'desktop.confirm.' + p.type + '.text', textArgs: { name: d.name, host: server.hostname },
        confirmKey: p.key, danger: !!p.danger, busyKey: 'common.sending',
        action: async () => {
          task = await api.post(`/servers/${id}/tasks`, body);
        },
      });
      if (!ok || !task) return;
      queued(task, d.name);
    } else {
      await runTask(body, btn, d.name);
    }
  }

  async function runTask(body, btn, name) {
    const done = btn ? busyButton(btn) : () => {};
    try {
      const task = await api.post(`/servers/${id}/tasks`, body);
      queued(task, name || server.hostname);
    } catch (e) {
      alert.showError(e);
    } finally {
      done();
    }
  }

  function busyButton(b) {
    b.disabled = true;
    b.classList.add('is-busy');
    return () => {
      b.disabled = false;
      b.classList.remove('is-busy');
    };
  }

  function queued(task, name) {
    toast('task.queued', { type: taskTypeText(task.type), name, id: task.id });
    tasks = [task, ...tasks.filter((t) => t.id !== task.id)];
    unfinished = true;
    renderTasks();
    renderDesktops();
    poller.now();
  }

  // ---- tasks of this server ----
  function renderTasks() {
    const keep = new Map(Array.from(taskList.children).filter((li) => li.bicSig).map((li) => [li.bicKey, li]));
    const items = tasks.map((t) => {
      const sig = JSON.stringify([t.state, t.attempts, t.last_error, t.finished_at, t.next_attempt_at]);
      const old = keep.get(t.id);
      if (old && old.bicSig === sig) return old;
      const li = taskItem(t);
      li.bicKey = t.id;
      li.bicSig = sig;
      return li;
    });
    clear(taskList).append(...items);
    if (!items.length) taskList.append(h('li', { class: 'task-empty', i18n: 'server.tasks.empty' }));
  }

  function taskItem(t) {
    const desk = t.params && t.params.uuid ? desktops.find((d) => d.uuid === t.params.uuid) : null;
    return h('li', { class: ['task-item', 'task-' + t.state], 'data-task-id': String(t.id), 'data-task-state': t.state, 'data-task-type': t.type },
      h('div', { class: 'task-main' },
        h('span', { class: 'task-title' }, taskTypeLabel(t.type),
          desk ? h('span', { class: 'muted', text: ' · ' + desk.name }) : null,
          h('span', { class: 'task-id', text: '#' + t.id })),
        taskStateBadge(t.state)),
      h('div', { class: 'task-meta' },
        h('span', { i18n: 'task.attempts', i18nArgs: { n: formatNumber(t.attempts), max: formatNumber(t.max_attempts) } }),
        h('span', { i18n: 'task.by', i18nArgs: { who: t.created_by || '—' } }),
        ago(t.created_at)),
      t.last_error ? h('p', { class: ['task-error', t.state === 'failed' ? null : 'task-error-soft'], 'data-role': 'task-error' },
        icon(t.state === 'failed' ? 'alert' : 'info'), h('span', { text: t.last_error })) : null);
  }

  function taskTypeText(type) {
    return has('task.type.' + type) ? tr('task.type.' + type) : type;
  }

  // ---- events ----
  function renderEvents() {
    clear(eventList).append(...events.map((ev) => h('li', { class: 'event', 'data-event': ev.kind },
      h('span', { class: ['event-dot', 'event-' + eventTone(ev.kind)], 'aria-hidden': 'true' }),
      h('div', { class: 'event-body' },
        has('event.' + ev.kind) ? h('span', { class: 'event-kind', i18n: 'event.' + ev.kind }) : h('span', { class: 'event-kind', text: ev.kind }),
        ev.detail ? h('span', { class: 'event-detail', text: ev.detail }) : null,
        ev.desktop_uuid ? h('span', { class: 'event-detail mono', text: deskName(ev.desktop_uuid) }) : null),
      h('span', { class: 'event-time', date: ev.at }))));
    if (!events.length) eventList.append(h('li', { class: 'task-empty', i18n: 'server.events.empty' }));
  }

  function deskName(uuid) {
    const d = desktops.find((x) => x.uuid === uuid);
    return d ? d.name : uuid;
  }

  function eventTone(kind) {
    if (/offline|crash|fail|stopped|destroy/.test(kind)) return 'bad';
    if (/maintenance/.test(kind)) return 'maint';
    if (/online|enrolled|started|resumed/.test(kind)) return 'ok';
    return 'idle';
  }

  // ---- maintenance ----
  async function toggleMaintenance() {
    const on = !server.maintenance;
    const ok = await confirmDialog({
      title: on ? 'server.maintenance.on.title' : 'server.maintenance.off.title', titleArgs: { name: server.hostname },
      text: on ? 'server.maintenance.on.text' : 'server.maintenance.off.text', textArgs: { name: server.hostname },
      confirmKey: on ? 'server.maintenance.enter' : 'server.maintenance.leave',
      action: async () => {
        server = await api.patch('/servers/' + id, { maintenance: on });
      },
    });
    if (!ok) return;
    toast(on ? 'server.maintenance.on.done' : 'server.maintenance.off.done', { name: server.hostname });
    lastFull = 0;
    poller.now();
  }
}

export { serverPage };
