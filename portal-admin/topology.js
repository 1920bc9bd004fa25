// Topology: CCC -> building blocks (xCenter) -> modules (bCenter) -> servers (bServer), with
// health colours and capacity. Building blocks come a page at a time from /topology; a
// module's servers load when it is opened. Everything refreshes every 10 s while the page
// is shown (never two refreshes at once) and updates in place, so focus and open branches stay.
import * as api from '/common/api.js';
import { h, icon, clear, field, dialog, toast, button, alertBox } from '/common/ui.js';
import { formatNumber } from '/common/i18n.js';
import { pageHead, Pager, latest } from './lists.js';
import {
  Poller, liveBadge, capacityMeter, serverBadges, serverHealth, statusDot, ago, loadMeter,
  fmtMiB, pct, count,
} from './inventory.js';

const REFRESH_MS = 10000;
const BB_PAGE = 20;
const SERVERS_PER_MODULE = 100;

const BB_ERRORS = { conflict: 'topo.error.bb_exists' };
const MODULE_ERRORS = { conflict: 'topo.error.module_exists' };

function chip(kind, key, n) {
  return h('span', { class: ['chip', 'chip-' + kind], 'data-chip': kind },
    h('span', { class: 'chip-dot', 'aria-hidden': 'true' }), h('span', { i18n: key, i18nArgs: { n: formatNumber(n) } }));
}

// Colour of a branch from its server counts: any offline -> bad, all online -> ok.
function health(online, offline, total, maintenance) {
  if (!total) return 'idle';
  if (offline) return 'bad';
  if (maintenance) return 'maint';
  if (online === total) return 'ok';
  return 'idle';
}

// "Building block · 3 modules · 5 servers"
function subLine(el, ...parts) {
  return fill(el, parts.filter(Boolean).map((p) => h('span', { class: 'topo-part' }, p)));
}

function fill(el, ...children) {
  clear(el).append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function topologyPage(page) {
  const alert = alertBox();
  const live = liveBadge();
  const collapsedBBs = new Set();
  const openModules = new Set();
  const bbNodes = new Map();
  const pager = new Pager(BB_PAGE, () => poller.now(), 'after');

  const refreshBtn = button('topo.refresh', { variant: 'secondary', icon: 'refresh', action: 'refresh', onclick: () => poller.now() });
  const summary = summaryTiles();
  const tree = h('ul', { class: 'topo-tree', 'data-role': 'topology' });
  const root = rootRow();
  const empty = h('div', { class: 'empty', 'data-role': 'topology-empty', hidden: true },
    h('span', { class: 'empty-icon' }, icon('topology')),
    h('p', { class: 'empty-title', i18n: 'topo.empty.title' }),
    h('p', { class: 'empty-text', i18n: 'topo.empty.text' }),
    h('div', { class: 'empty-actions' },
      button('topo.new_bb', { variant: 'primary', icon: 'plus', action: 'new-bb-empty', onclick: () => bbDialog() })));
  const loading = h('div', { class: 'topo-loading' }, h('div', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { i18n: 'common.loading' }));

  page.append(
    pageHead('topo.title', 'topo.subtitle',
      live.el, refreshBtn,
      button('topo.new_bb', { variant: 'primary', icon: 'plus', action: 'new-bb', onclick: () => bbDialog() })),
    alert.el,
    summary.el,
    h('section', { class: 'card topo-card', 'aria-busy': 'true' }, root.el, loading, tree, empty, pager.el));

  const poller = new Poller(page, refresh, REFRESH_MS);
  poller.now();
  return () => poller.stop();

  async function refresh() {
    let data;
    try {
      data = await api.get('/topology', pager.params());
    } catch (e) {
      alert.showError(e);
      live.stale();
      return;
    }
    const items = data.items || [];
    if (!items.length && pager.index > 0) {
      pager.prev();
      return;
    }
    alert.hide();
    loading.remove();
    page.querySelector('.topo-card').removeAttribute('aria-busy');
    renderTree(items);
    pager.update(items.length, data.next_after, undefined, 'topo.page');
    pager.el.hidden = pager.index === 0 && (data.next_after === null || data.next_after === undefined);
    summary.update(items, !pager.el.hidden);
    root.update(items);
    empty.hidden = items.length > 0;
    tree.hidden = items.length === 0;
    const open = [];
    for (const b of bbNodes.values()) for (const m of b.modules.values()) if (m.open) open.push(m.loadServers());
    await Promise.all(open);
    live.mark();
  }

  function renderTree(items) {
    const seen = new Set();
    items.forEach((bb, i) => {
      let node = bbNodes.get(bb.id);
      if (!node) {
        node = bbNode(bb.id);
        bbNodes.set(bb.id, node);
      }
      node.update(bb);
      seen.add(bb.id);
      if (tree.children[i] !== node.el) tree.insertBefore(node.el, tree.children[i] || null);
    });
    for (const [id, node] of bbNodes) {
      if (!seen.has(id)) {
        node.el.remove();
        bbNodes.delete(id);
      }
    }
  }

  // ---- the CCC itself ----
  function rootRow() {
    const meta = h('span', { class: 'topo-sub' });
    const chips = h('div', { class: 'topo-health' });
    const dot = statusDot('idle');
    const el = h('div', { class: 'topo-root', 'data-role': 'ccc' },
      h('span', { class: 'topo-icon topo-icon-ccc' }, icon('cloud'), dot),
      h('div', { class: 'topo-name' },
        h('span', { class: 'topo-title' }, h('span', { i18n: 'topo.ccc' })),
        meta),
      chips);
    return {
      el,
      update(items) {
        let modules = 0;
        let servers = 0;
        let online = 0;
        let offline = 0;
        for (const bb of items) {
          modules += (bb.modules || []).length;
          servers += bb.totals.servers;
          online += bb.totals.online;
          offline += bb.totals.offline;
        }
        subLine(meta, h('span', { class: 'topo-kind', i18n: 'topo.kind.ccc' }), h('span', { text: window.location.host }),
          count('count.bbs', items.length), count('count.modules', modules));
        dot.className = 'status-dot status-' + health(online, offline, servers, 0);
        fill(chips, healthChips(online, offline, servers - online - offline, 0, servers));
      },
    };
  }

  function healthChips(online, offline, enrolling, maintenance, total) {
    if (!total) return [h('span', { class: 'chip chip-idle' }, h('span', { i18n: 'topo.no_servers' }))];
    return [
      online ? chip('ok', 'topo.chip.online', online) : null,
      offline ? chip('bad', 'topo.chip.offline', offline) : null,
      enrolling > 0 ? chip('idle', 'topo.chip.enrolling', enrolling) : null,
      maintenance ? chip('maint', 'topo.chip.maintenance', maintenance) : null,
    ];
  }

  // ---- summary tiles ----
  function summaryTiles() {
    const v = {};
    const tile = (name, iconName, labelKey) => {
      v[name] = { value: h('span', { class: 'tile-value' }), sub: h('span', { class: 'tile-sub' }) };
      return h('div', { class: 'tile', 'data-tile': name },
        h('div', { class: 'tile-head' }, h('span', { class: 'tile-icon tile-icon-' + name }, icon(iconName)), h('span', { class: 'tile-label', i18n: labelKey })),
        v[name].value, v[name].sub);
    };
    const capMeter = h('div', { class: 'tile-meter' });
    const note = h('p', { class: 'tiles-note', i18n: 'topo.this_page', hidden: true });
    const el = h('div', { class: 'tiles-wrap' },
      h('div', { class: 'tiles' },
        tile('servers', 'server', 'topo.tile.servers'),
        tile('desktops', 'monitor', 'topo.tile.desktops'),
        (() => {
          const t = tile('capacity', 'activity', 'topo.tile.capacity');
          t.append(capMeter);
          return t;
        })(),
        tile('blocks', 'layers', 'topo.tile.blocks')),
      note);
    return {
      el,
      update(items, paged) {
        let servers = 0;
        let online = 0;
        let offline = 0;
        let desktops = 0;
        let running = 0;
        let capacity = 0;
        let modules = 0;
        for (const bb of items) {
          servers += bb.totals.servers;
          online += bb.totals.online;
          offline += bb.totals.offline;
          desktops += bb.totals.desktops;
          capacity += bb.totals.capacity;
          for (const m of bb.modules || []) {
            modules++;
            running += (m.desktops && m.desktops.running) || 0;
          }
        }
        fill(v.servers.value, h('strong', { text: formatNumber(online) }), h('span', { class: 'tile-of', text: ' / ' + formatNumber(servers) }));
        fill(v.servers.sub, offline
          ? h('span', { class: 'tile-bad', i18n: 'topo.tile.offline', i18nArgs: { n: formatNumber(offline) } })
          : h('span', { i18n: servers ? 'topo.tile.all_online' : 'topo.no_servers' }));
        fill(v.desktops.value, h('strong', { text: formatNumber(desktops) }));
        fill(v.desktops.sub, h('span', { i18n: 'topo.tile.running', i18nArgs: { n: formatNumber(running) } }));
        fill(v.capacity.value, h('strong', { text: capacity ? pct(desktops, capacity) + '%' : '—' }));
        fill(v.capacity.sub, h('span', { i18n: 'topo.tile.capacity_sub', i18nArgs: { used: formatNumber(desktops), total: formatNumber(capacity) } }));
        fill(capMeter, h('meter', {
          class: 'cap-meter', min: '0', max: String(Math.max(capacity, 1)), value: String(Math.min(desktops, Math.max(capacity, 1))),
          low: String(Math.max(capacity, 1) * 0.7), high: String(Math.max(capacity, 1) * 0.9), optimum: '0', i18nLabel: 'topo.tile.capacity',
        }));
        fill(v.blocks.value, h('strong', { text: formatNumber(items.length) }));
        fill(v.blocks.sub, count('topo.tile.modules', modules));
        note.hidden = !paged;
      },
    };
  }

  // ---- building blocks ----
  function bbNode(id) {
    const childrenId = 'topo-bb-' + id;
    const chevron = h('span', { class: 'topo-chevron' }, icon('chevronDown'));
    const name = h('span', { class: 'topo-title-text' });
    const dot = statusDot('idle');
    const toggle = h('button', { type: 'button', class: 'topo-toggle', 'aria-expanded': 'true', 'aria-controls': childrenId, 'data-action': 'toggle-bb' },
      chevron,
      h('span', { class: 'topo-icon topo-icon-bb' }, icon('layers'), dot),
      h('span', { class: 'topo-name' },
        h('span', { class: 'topo-title' }, name),
        h('span', { class: 'topo-sub', 'data-role': 'bb-sub' })));
    const chips = h('div', { class: 'topo-health' });
    const cap = h('div', { class: 'topo-cap' });
    const addBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-action': 'new-module' },
      icon('plus'), h('span', { i18n: 'topo.new_module' }));
    const children = h('ul', { class: 'topo-children', id: childrenId });
    const el = h('li', { class: 'topo-node topo-bb', 'data-bb-id': String(id) },
      h('div', { class: 'topo-row topo-row-bb' }, toggle, chips, cap, h('div', { class: 'topo-actions' }, addBtn)),
      children);
    const node = { el, modules: new Map(), data: null };
    toggle.addEventListener('click', () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      if (open) collapsedBBs.delete(id);
      else collapsedBBs.add(id);
      toggle.setAttribute('aria-expanded', String(open));
      children.hidden = !open;
      el.classList.toggle('is-collapsed', !open);
    });
    addBtn.addEventListener('click', () => moduleDialog(node.data));

    node.update = (bb) => {
      node.data = bb;
      el.setAttribute('data-bb', bb.name);
      name.textContent = bb.name;
      const t = bb.totals;
      const mods = bb.modules || [];
      let maint = 0;
      let enrolling = 0;
      for (const m of mods) {
        maint += m.servers.maintenance || 0;
        enrolling += m.servers.enrolling || 0;
      }
      const hl = health(t.online, t.offline, t.servers, maint);
      dot.className = 'status-dot status-' + hl;
      el.setAttribute('data-health', hl);
      subLine(toggle.querySelector('[data-role=bb-sub]'), h('span', { class: 'topo-kind', i18n: 'topo.kind.bb' }),
        count('count.modules', mods.length), count('count.servers', t.servers));
      fill(chips, healthChips(t.online, t.offline, enrolling, maint, t.servers));
      fill(cap, capacityMeter(t.desktops, { desktops: t.capacity }, { noLimit: true }));
      const open = !collapsedBBs.has(bb.id);
      toggle.setAttribute('aria-expanded', String(open));
      children.hidden = !open;
      el.classList.toggle('is-collapsed', !open);

      const seen = new Set();
      mods.forEach((m, i) => {
        let mn = node.modules.get(m.id);
        if (!mn) {
          mn = moduleNode(m.id);
          node.modules.set(m.id, mn);
        }
        mn.update(m, bb);
        seen.add(m.id);
        if (children.children[i] !== mn.el) children.insertBefore(mn.el, children.children[i] || null);
      });
      for (const [mid, mn] of node.modules) {
        if (!seen.has(mid)) {
          mn.el.remove();
          node.modules.delete(mid);
        }
      }
      let none = children.querySelector(':scope > .topo-none');
      if (!mods.length && !none) {
        none = h('li', { class: 'topo-none' }, h('span', { i18n: 'topo.bb.no_modules' }),
          h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'new-module-empty', onclick: () => moduleDialog(node.data) },
            icon('plus'), h('span', { i18n: 'topo.new_module' })));
        children.append(none);
      } else if (mods.length && none) {
        none.remove();
      }
    };
    return node;
  }

  // ---- modules ----
  function moduleNode(id) {
    const serversId = 'topo-module-' + id;
    const name = h('span', { class: 'topo-title-text' });
    const dot = statusDot('idle');
    const toggle = h('button', { type: 'button', class: 'topo-toggle', 'aria-expanded': 'false', 'aria-controls': serversId, 'data-action': 'toggle-module' },
      h('span', { class: 'topo-chevron' }, icon('chevronDown')),
      h('span', { class: 'topo-icon topo-icon-module' }, icon('box'), dot),
      h('span', { class: 'topo-name' },
        h('span', { class: 'topo-title' }, name),
        h('span', { class: 'topo-sub', 'data-role': 'module-sub' })));
    const chips = h('div', { class: 'topo-health' });
    const cap = h('div', { class: 'topo-cap' });
    const link = h('a', { class: 'btn btn-ghost btn-sm', 'data-action': 'module-servers', href: '#/servers?module=' + id },
      h('span', { i18n: 'topo.module.list' }), icon('arrowRight'));
    const list = h('div', { class: 'topo-servers', role: 'list', 'data-role': 'servers' });
    const more = h('p', { class: 'topo-more', hidden: true },
      h('a', { href: '#/servers?module=' + id, i18n: 'topo.module.more' }));
    const listAlert = alertBox();
    const panel = h('div', { class: 'topo-panel', id: serversId, hidden: true }, listAlert.el, list, more);
    const el = h('li', { class: 'topo-node topo-module', 'data-module-id': String(id) },
      h('div', { class: 'topo-row topo-row-module' }, toggle, chips, cap, h('div', { class: 'topo-actions' }, link)),
      panel);
    const only = latest();
    const rows = new Map();
    const node = { el, open: openModules.has(id), loaded: false, data: null };

    const setOpen = (open) => {
      node.open = open;
      if (open) openModules.add(id);
      else openModules.delete(id);
      toggle.setAttribute('aria-expanded', String(open));
      panel.hidden = !open;
      el.classList.toggle('is-open', open);
    };
    toggle.addEventListener('click', () => {
      setOpen(!node.open);
      if (node.open) {
        if (!node.loaded) fill(list, h('div', { class: 'topo-none' }, h('span', { class: 'spinner spinner-sm', 'aria-hidden': 'true' }), h('span', { i18n: 'common.loading' })));
        node.loadServers();
      }
    });
    setOpen(node.open);

    node.update = (m) => {
      node.data = m;
      el.setAttribute('data-module', m.name);
      name.textContent = m.name;
      const s = m.servers;
      const hl = health(s.online, s.offline, s.total, s.maintenance);
      dot.className = 'status-dot status-' + hl;
      el.setAttribute('data-health', hl);
      subLine(toggle.querySelector('[data-role=module-sub]'), h('span', { class: 'topo-kind', i18n: 'topo.kind.module' }),
        h('span', { i18n: 'topo.module.slots', i18nArgs: { n: formatNumber(s.total), max: formatNumber(m.max_servers) } }));
      fill(chips, healthChips(s.online, s.offline, s.enrolling, s.maintenance, s.total));
      const used = (m.desktops && m.desktops.total) || 0;
      fill(cap, capacityMeter(used, m.capacity));
    };

    node.loadServers = async () => {
      let res;
      try {
        res = await only(() => api.get('/servers', { module: id, limit: SERVERS_PER_MODULE }));
      } catch (e) {
        listAlert.showError(e);
        return;
      }
      if (!res.current) return;
      listAlert.hide();
      node.loaded = true;
      const items = res.value.items || [];
      more.hidden = res.value.next_after === null || res.value.next_after === undefined;
      if (!items.length) {
        rows.clear();
        fill(list, h('div', { class: 'topo-none', 'data-role': 'no-servers' },
          h('span', { i18n: 'topo.module.no_servers' }),
          h('a', { class: 'btn btn-secondary btn-sm', href: '#/tokens' }, icon('ticket'), h('span', { i18n: 'topo.module.enroll' }))));
        return;
      }
      for (const n of Array.from(list.children)) if (!n.bicServer) n.remove();
      const seen = new Set();
      items.forEach((s, i) => {
        let r = rows.get(s.id);
        if (!r) {
          r = serverRow(s.id);
          rows.set(s.id, r);
        }
        r.update(s);
        seen.add(s.id);
        if (list.children[i] !== r.el) list.insertBefore(r.el, list.children[i] || null);
      });
      for (const [sid, r] of rows) {
        if (!seen.has(sid)) {
          r.el.remove();
          rows.delete(sid);
        }
      }
    };
    return node;
  }

  // ---- servers ----
  function serverRow(id) {
    const dot = statusDot('idle');
    const link = h('a', { class: 'topo-server-name', href: '#/servers/' + id });
    const sub = h('span', { class: 'topo-sub' });
    const badges = h('div', { class: 'topo-server-state' });
    const cpu = h('div', { class: 'topo-server-load' });
    const mem = h('div', { class: 'topo-server-load' });
    const desk = h('div', { class: 'topo-server-cap' });
    const seen = h('div', { class: 'topo-server-seen' });
    const el = h('div', { class: 'topo-server', role: 'listitem', 'data-server-id': String(id) },
      h('div', { class: 'topo-server-id' }, h('span', { class: 'topo-icon topo-icon-server' }, icon('server'), dot),
        h('div', { class: 'topo-name' }, link, sub)),
      badges, cpu, mem, desk, seen);
    el.bicServer = true;
    return {
      el,
      update(s) {
        const hl = serverHealth(s);
        dot.className = 'status-dot status-' + hl;
        el.setAttribute('data-hostname', s.hostname);
        el.setAttribute('data-state', s.state);
        el.setAttribute('data-health', hl);
        el.classList.toggle('is-maintenance', !!s.maintenance);
        if (link.textContent !== s.hostname) link.textContent = s.hostname;
        sub.textContent = [s.hypervisor, s.hardware.cores ? s.hardware.cores + 'C' : '', fmtMiB(s.hardware.memory_mib)].filter(Boolean).join(' · ');
        fill(badges, serverBadges(s));
        const cpuPct = Math.round(s.load.cpu_pct || 0);
        fill(cpu, h('span', { class: 'load-label' }, h('span', { i18n: 'server.cpu' }), h('strong', { text: cpuPct + '%' })),
          loadMeter(cpuPct, 100, 'server.cpu'));
        const memPct = pct(s.load.mem_used_mib, s.hardware.memory_mib);
        fill(mem, h('span', { class: 'load-label' }, h('span', { i18n: 'server.memory' }), h('strong', { text: memPct + '%' })),
          loadMeter(memPct, 100, 'server.memory'));
        fill(desk, capacityMeter(s.desktops.total, s.capacity, { compact: true, noLimit: true }));
        fill(seen, icon('clock'), ago(s.last_heartbeat_at));
      },
    };
  }

  // ---- dialogs ----
  function bbDialog() {
    const name = h('input', { type: 'text', name: 'name', maxlength: '64', autocomplete: 'off', required: true });
    const desc = h('input', { type: 'text', name: 'description', maxlength: '255', autocomplete: 'off' });
    dialog({
      name: 'create-bb',
      title: 'topo.bb.create.title',
      intro: 'topo.bb.create.intro',
      submitKey: 'topo.bb.create.submit',
      errors: BB_ERRORS,
      body: [field('topo.field.name', name, { hint: 'topo.bb.name_hint' }), field('topo.field.description', desc, { optional: true })],
      onSubmit: async (form, a) => {
        const n = name.value.trim();
        if (!n) {
          a.show('topo.error.name');
          name.focus();
          return false;
        }
        const bb = await api.post('/building-blocks', { name: n, description: desc.value.trim() });
        toast('topo.bb.created', { name: bb.name });
        poller.now();
        return true;
      },
    });
  }

  function moduleDialog(bb) {
    if (!bb) return;
    const name = h('input', { type: 'text', name: 'name', maxlength: '64', autocomplete: 'off', required: true });
    const desc = h('input', { type: 'text', name: 'description', maxlength: '255', autocomplete: 'off' });
    const max = h('input', { type: 'number', name: 'max_servers', min: '1', max: '1000', step: '1', value: '10', inputmode: 'numeric', required: true });
    dialog({
      name: 'create-module',
      title: 'topo.module.create.title',
      titleArgs: { name: bb.name },
      intro: 'topo.module.create.intro',
      submitKey: 'topo.module.create.submit',
      errors: MODULE_ERRORS,
      body: [
        h('div', { class: 'field-row' },
          field('topo.field.name', name),
          field('topo.field.max_servers', max, { hint: 'topo.field.max_servers_hint' })),
        field('topo.field.description', desc, { optional: true }),
      ],
      onSubmit: async (form, a) => {
        const n = name.value.trim();
        if (!n) {
          a.show('topo.error.name');
          name.focus();
          return false;
        }
        const m = Number(max.value);
        if (!Number.isInteger(m) || m < 1 || m > 1000) {
          a.show('topo.error.max_servers');
          max.focus();
          return false;
        }
        const mod = await api.post(`/building-blocks/${bb.id}/modules`, { name: n, description: desc.value.trim(), max_servers: m });
        collapsedBBs.delete(bb.id);
        toast('topo.module.created', { name: mod.name, bb: bb.name });
        poller.now();
        return true;
      },
    });
  }
}
