// Servers (bServers): a filtered, keyset-paged list and one server's page with hardware,
// NICs (link state, SR-IOV VFs enabled/held/free, the NIC rule's desktop capacity), the
// virtual functions and the desktop that holds each one, load, capacity, desktops with power
// actions, its tasks (live until they end), events, maintenance and an inventory refresh.
import * as api from '/common/api.js';
import { h, icon, clear, confirmDialog, dialog, field, toast, button, alertBox, setText } from '/common/ui.js';
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
export const VF_STATES = ['free', 'held', 'missing'];

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
  const nicWarn = h('span', { class: 'nic-warn', 'data-role': 'nic-warning', hidden: true });
  const vfs = vfPanel(id);
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
        h('section', { class: 'card detail-card', 'data-card': 'nics' }, cardHead('server.nics.title', 'port', nicWarn), nicList),
        h('section', { class: 'card detail-card', 'data-card': 'events' },
          cardHead('server.events.title', 'activity'), eventList, h('div', { class: 'card-foot' }, eventMore))),
      h('div', { class: 'detail-side' },
        h('section', { class: 'card detail-card', 'data-card': 'tasks' },
          cardHead('server.tasks.title', 'tasks', h('a', { class: 'btn btn-ghost btn-sm', href: '#/tasks?server=' + id, 'data-action': 'all-tasks' }, h('span', { i18n: 'server.tasks.all' }), icon('arrowRight'))),
          taskAlert.el, taskList),
        h('section', { class: 'card detail-card', 'data-card': 'capacity' }, cardHead('server.capacity.title', 'activity'), capBox),
        h('section', { class: 'card detail-card', 'data-card': 'hardware' }, cardHead('server.hardware.title', 'cpu'), hw))),
    vfs.el);

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
        await Promise.all([loadEvents(false), vfs.load(s)]);
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
      h('p', { class: 'field-hint', i18n: 'cap.rules' }),
      button('server.limit.change', { variant: 'secondary', icon: 'edit', action: 'desktop-limit', onclick: () => changeLimit() }));

    renderNics(s.nics || []);
  }

  // ---- NICs: link, SR-IOV VFs enabled/held/free, the NIC rule's capacity ----
  function renderNics(nics) {
    clear(nicList).append(...nics.map((n) => nicItem(n, () => vfs.showNic(n.name))));
    if (!nics.length) nicList.append(h('li', { class: 'task-empty', i18n: 'nic.none' }));
    const down = nics.filter((n) => n.link === 'down');
    nicWarn.hidden = !down.length;
    clear(nicWarn);
    if (down.length) {
      nicWarn.append(icon('alert'), h('span', { i18n: down.length === 1 ? 'nic.warn.one' : 'nic.warn.many', i18nArgs: { name: down[0].name, n: formatNumber(down.length) } }));
    }
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
      return JSON.stringify([d.name, d.state, d.vcpus, d.memory_mib, d.state_changed_at, Math.floor(Date.now() / 30000), t && [t.id, t.state, t.attempts, t.last_error], vfs.sigOf(d.id)]);
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
          vfTag(vfs.heldBy(d.id)),
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

  // ---- the server's desktop limit (PATCH max_desktops) ----
  function changeLimit() {
    const input = h('input', { type: 'number', name: 'max_desktops', min: '1', max: '1000', step: '1', required: true, value: String(server.capacity.by_servers) });
    dialog({
      name: 'desktop-limit',
      title: 'server.limit.title',
      titleArgs: { name: server.hostname },
      intro: 'server.limit.text',
      body: [field('server.limit.field', input, { hint: 'server.limit.hint' })],
      submitKey: 'common.save',
      onSubmit: async () => {
        const n = Number(input.value);
        server = await api.patch('/servers/' + id, { max_desktops: Number.isInteger(n) ? n : input.value });
        toast('server.limit.done', { name: server.hostname, n: formatNumber(server.capacity.by_servers) });
        lastFull = 0;
        poller.now();
        return true;
      },
    });
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

// ---- NICs ------------------------------------------------------------------------------------

const LINK = { up: 'nic-link-up', down: 'nic-link-down', unknown: 'nic-link-unknown' };

function nicNum(v) {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/*
 * One physical NIC: name and link state; speed, driver and PCI address; for an SR-IOV port
 * the VFs enabled of the most it can have, how many desktops hold one and how many are free,
 * and the desktops the NIC rule lets the port carry. A port whose link is down is marked as a
 * warning. onVfs: shows this NIC's VFs in the VF card.
 */
export function nicItem(n, onVfs) {
  const link = n.link in LINK ? n.link : 'unknown';
  const speed = nicNum(n.speed_mbps);
  const sriov = !!n.sriov_capable;
  const enabled = nicNum(n.sriov_num_vfs);
  const present = n.vfs_present === undefined ? enabled : nicNum(n.vfs_present);
  const held = nicNum(n.vfs_held);
  const free = n.vfs_free === undefined ? Math.max(0, present - held) : nicNum(n.vfs_free);
  const cap = n.desktop_cap === undefined || n.desktop_cap === null ? null : nicNum(n.desktop_cap);
  return h('li', {
    class: ['nic', link === 'down' ? 'is-down' : null], 'data-nic': n.name, 'data-link': link,
    'data-vfs-enabled': String(enabled), 'data-vfs-held': String(held), 'data-vfs-free': String(free),
    'data-desktop-cap': cap === null ? null : String(cap),
  },
  h('span', { class: 'nic-icon', 'aria-hidden': 'true' }, icon(link === 'down' ? 'alert' : 'port')),
  h('div', { class: 'nic-text' },
    h('span', { class: 'nic-line' },
      h('span', { class: 'nic-name mono', text: n.name }),
      h('span', { class: ['nic-link', LINK[link]], 'data-role': 'link', i18n: 'nic.link.' + link })),
    h('span', { class: 'nic-sub' },
      speed ? h('span', { text: fmtMbps(speed) }) : h('span', { i18n: 'nic.speed_unknown' }),
      n.driver ? h('span', { text: ' · ' + n.driver }) : null,
      n.pci ? h('span', { class: 'mono nic-pci', 'data-role': 'pci', title: n.vendor && n.device ? `${n.vendor}:${n.device}` : null, text: ' · ' + n.pci }) : null),
    link === 'down' ? h('span', { class: 'nic-down-note', 'data-role': 'link-warning', i18n: sriov && enabled ? 'nic.down.vfs' : 'nic.down.text' }) : null,
    sriov ? h('span', { class: 'nic-vfs', 'data-role': 'vf-counts' },
      h('span', { class: 'nic-vf-num', i18n: 'nic.vfs.enabled', i18nArgs: { n: formatNumber(enabled), total: formatNumber(nicNum(n.sriov_total_vfs)) } }),
      enabled ? h('span', { class: 'nic-vf-held', i18n: 'nic.vfs.held', i18nArgs: { n: formatNumber(held) } }) : null,
      enabled ? h('span', { class: ['nic-vf-free', free ? null : 'is-none'], i18n: 'nic.vfs.free', i18nArgs: { n: formatNumber(free) } }) : null) : null,
    cap !== null ? h('span', { class: 'nic-cap', 'data-role': 'desktop-cap', i18nTitle: 'nic.cap.title', i18n: 'nic.cap', i18nArgs: { n: formatNumber(cap) } }) : null),
  h('div', { class: 'nic-side' },
    sriov && enabled && onVfs ? h('button', { type: 'button', class: 'btn btn-ghost btn-sm nic-vfs-btn', 'data-action': 'show-vfs', onclick: onVfs },
      h('span', { i18n: 'nic.vfs.show' }), icon('arrowRight')) : null,
    sriov
      ? h('span', { class: 'badge badge-success', 'data-sriov': 'yes', 'data-vfs': String(nicNum(n.sriov_total_vfs)) }, icon('check'),
        h('span', { i18n: 'nic.sriov.vfs', i18nArgs: { n: formatNumber(nicNum(n.sriov_total_vfs)) } }))
      : h('span', { class: 'badge badge-neutral', 'data-sriov': 'no', i18n: 'nic.sriov.none' })));
}

// "ens1f0 · VF 3" under a desktop that holds a VF.
function vfTag(vf) {
  if (!vf) return null;
  return h('span', { class: ['vf-tag', vf.present === false ? 'is-missing' : null], 'data-role': 'desktop-vf', title: vf.pci },
    h('span', { class: 'vf-tag-kind', text: 'SR-IOV' }),
    h('span', { class: 'mono', i18n: 'vf.name', i18nArgs: { nic: vf.nic, n: formatNumber(vf.index) } }),
    vf.present === false ? h('span', { i18n: 'vf.state.missing' }) : null);
}

// ---- virtual functions -----------------------------------------------------------------------

export function vfState(v) {
  if (v.present === false) return 'missing';
  return v.desktop ? 'held' : 'free';
}

const VF_BADGE = { free: 'badge-success', held: 'badge-info', missing: 'badge-danger' };

function vfStateBadge(state) {
  return h('span', { class: ['badge', 'badge-dot', VF_BADGE[state]], 'data-vf-state': state, i18n: 'vf.state.' + state });
}

/*
 * The "Virtual functions" card of a server: every VF of every SR-IOV port (64-128 a port are
 * normal) in a compact table that scrolls under a sticky head, with counts in the head, a
 * filter by NIC and by state, and a search by PCI address, MAC or desktop. The holder links
 * to the desktop in its pool. Hidden while the server has no SR-IOV port.
 * Returns {el, load(server), showNic(name), heldBy(desktopId), sigOf(desktopId)}; load never
 * throws (its errors show in the card).
 */
function vfPanel(serverId) {
  const q0 = hashQuery();
  const filters = { nic: q0.get('nic') || '', vf_state: VF_STATES.includes(q0.get('vf_state')) ? q0.get('vf_state') : '' };
  const table = dataTable([
    { key: 'vf.col.nic', class: 'col-vf-nic' },
    { key: 'vf.col.index', class: 'col-vf-index' },
    { key: 'vf.col.pci', class: 'col-vf-pci' },
    { key: 'vf.col.driver', class: 'col-vf-driver' },
    { key: 'vf.col.mac', class: 'col-vf-mac' },
    { key: 'vf.col.vlan', class: 'col-vf-vlan' },
    { key: 'vf.col.state', class: 'col-vf-state' },
    { key: 'vf.col.desktop', class: 'col-vf-desktop' },
  ], 'vfs');
  table.el.classList.add('vf-block');
  const nicSel = h('select', { name: 'vf-nic', i18nLabel: 'vf.filter.nic', i18nTitle: 'vf.filter.nic' });
  const stateSel = select('vf-state', [['', 'vf.filter.state_any'], ...VF_STATES.map((st) => [st, 'vf.state.' + st])], 'vf.filter.state');
  stateSel.value = filters.vf_state;
  const search = h('input', { type: 'search', name: 'vf-search', class: 'card-search', i18nPlaceholder: 'vf.filter.search', i18nLabel: 'vf.filter.search', autocomplete: 'off', spellcheck: 'false' });
  const total = h('span', { class: 'card-count', 'data-role': 'vf-count' });
  const summary = h('div', { class: 'vf-summary', 'data-role': 'vf-summary', 'aria-live': 'polite' });
  const el = h('section', { class: 'card detail-card vf-card', 'data-card': 'vfs', hidden: true },
    h('header', { class: 'card-head' },
      h('h2', { class: 'card-title' }, icon('layers'), h('span', { i18n: 'vf.title' }), total),
      h('div', { class: 'card-tools vf-tools' }, nicSel, stateSel,
        h('div', { class: 'input-search input-search-sm' }, icon('search'), search))),
    summary, table.el);
  let items = [];
  let byDesktop = new Map();
  let nicNames = [];

  nicSel.addEventListener('change', () => {
    filters.nic = nicSel.value;
    remember();
    render();
  });
  stateSel.addEventListener('change', () => {
    filters.vf_state = stateSel.value;
    remember();
    render();
  });
  search.addEventListener('input', () => render());

  function remember() {
    setHashQuery({ nic: filters.nic, vf_state: filters.vf_state });
  }

  function fillNics(names) {
    if (JSON.stringify(names) === JSON.stringify(nicNames)) return;
    nicNames = names;
    clear(nicSel).append(h('option', { value: '', i18n: 'vf.filter.nic_any' }), ...names.map((n) => h('option', { value: n, text: n })));
    if (filters.nic && !names.includes(filters.nic)) filters.nic = '';
    nicSel.value = filters.nic;
  }

  function countsOf(list) {
    const c = { total: list.length, free: 0, held: 0, missing: 0 };
    for (const v of list) c[vfState(v)]++;
    return c;
  }

  function render() {
    const ofNic = filters.nic ? items.filter((v) => v.nic === filters.nic) : items;
    const c = countsOf(ofNic);
    total.textContent = formatNumber(c.total);
    el.setAttribute('data-total', String(c.total));
    clear(summary).append(
      h('span', { class: 'vf-sum-scope', text: filters.nic || null, i18n: filters.nic ? undefined : 'vf.summary.all' }),
      ...VF_STATES.map((st) => h('button', {
        type: 'button', class: ['chip', 'vf-chip', c[st] ? 'vf-chip-' + st : 'vf-chip-zero', filters.vf_state === st ? 'is-on' : null], 'data-count': st, 'data-n': String(c[st]),
        'aria-pressed': String(filters.vf_state === st), onclick: () => {
          filters.vf_state = filters.vf_state === st ? '' : st;
          stateSel.value = filters.vf_state;
          remember();
          render();
        },
      }, h('span', { class: 'chip-dot' }), h('span', { i18n: 'vf.count.' + st, i18nArgs: { n: formatNumber(c[st]) } }))));
    const q = search.value.trim().toLowerCase();
    const match = ofNic.filter((v) => {
      if (filters.vf_state && vfState(v) !== filters.vf_state) return false;
      if (!q) return true;
      return [v.pci, v.mac, v.desktop && v.desktop.name, v.desktop && v.desktop.pool_name, v.nic + ' ' + v.index]
        .some((x) => x && String(x).toLowerCase().includes(q));
    });
    // a held VF's row says since when: rebuilt once a minute
    table.sync(match, (v) => v.id, (v) => JSON.stringify([v.nic, v.index, v.pci, v.driver, v.present, v.mac, v.vlan, v.desktop, v.reserved_at && Math.floor(Date.now() / 60000)]), row);
    if (!items.length) table.empty('vf.empty', 'layers');
    else if (!match.length) table.empty('vf.none_match', 'search');
  }

  function row(v) {
    const st = vfState(v);
    const d = v.desktop;
    return table.row([
      h('span', { class: 'mono vf-nic', text: v.nic }),
      h('span', { class: 'num', text: formatNumber(v.index) }),
      h('span', { class: 'mono', text: v.pci }),
      v.driver ? h('span', { class: 'mono vf-driver', text: v.driver }) : h('span', { class: 'muted', text: '—' }),
      v.mac ? h('span', { class: 'mono', text: v.mac }) : h('span', { class: 'muted', text: '—' }),
      v.vlan !== null && v.vlan !== undefined ? h('span', { class: 'num', text: String(v.vlan) }) : h('span', { class: 'muted', text: '—' }),
      vfStateBadge(st),
      d ? h('div', { class: 'vf-holder' },
        d.pool_id ? h('a', { class: 'vf-desk', href: `#/pools/${d.pool_id}?desktop=${d.id}`, 'data-role': 'holder', text: d.name })
          : h('span', { class: 'vf-desk', 'data-role': 'holder', text: d.name }),
        h('span', { class: 'user-cell-sub' }, h('span', { text: d.pool_name || '#' + d.pool_id }),
          v.reserved_at ? h('span', { class: 'topo-sep', 'aria-hidden': 'true', text: ' · ' }) : null,
          v.reserved_at ? ago(v.reserved_at) : null))
        : h('span', { class: 'muted', text: '—' }),
    ], { 'data-vf': `${v.nic}/${v.index}`, 'data-pci': v.pci, 'data-state': st, 'data-desktop-id': d ? String(d.id) : null });
  }

  return {
    el,
    async load(server) {
      const nics = (server.nics || []).filter((n) => n.sriov_capable || nicNum(n.sriov_num_vfs) > 0);
      el.hidden = !nics.length;
      if (!nics.length) {
        items = [];
        byDesktop = new Map();
        return;
      }
      try {
        const data = await api.get(`/servers/${serverId}/vfs`);
        items = data.items || [];
        table.alert.hide();
      } catch (e) {
        table.alert.showError(e);
        return;
      }
      byDesktop = new Map(items.filter((v) => v.desktop).map((v) => [v.desktop.id, v]));
      fillNics([...new Set([...nics.map((n) => n.name), ...items.map((v) => v.nic)])]);
      render();
    },
    showNic(name) {
      filters.nic = name;
      if (nicNames.includes(name)) nicSel.value = name;
      remember();
      render();
      el.scrollIntoView({ behavior: 'smooth', block: 'start' });
    },
    heldBy(desktopId) {
      return byDesktop.get(desktopId) || null;
    },
    sigOf(desktopId) {
      const v = byDesktop.get(desktopId);
      return v ? [v.id, v.present] : null;
    },
  };
}

export { serverPage };
