// Desktop pools (platform groups): a live list with state and desktop counts, a create
// dialog (image, spec, sizes, naming pattern with a preview, placement, modules), and one
// pool's page: provisioning progress, pause reason and last error, pause/resume, sizes and
// settings, a new spec for every desktop, entitlements, where the next desktop would be
// placed (or why it cannot be), the session policy (clipboard, view-only, time limits,
// client networks, sessions per user, power actions, refresh on log-off), the network (VLAN,
// virtio fallback of SR-IOV pools), and its desktops with their NIC (virtio or the SR-IOV VF
// they hold, MAC, VLAN, why it differs from the spec), refresh and delete; #/pools/3?desktop=12
// opens one desktop's details on the pool's page.
import * as api from '/common/api.js';
import { ApiError } from '/common/api.js';
import { h, icon, clear, field, dialog, confirmDialog, toast, button, alertBox, busy, setText } from '/common/ui.js';
import { formatNumber } from '/common/i18n.js';
import { pageHead, dataTable, Pager, searchBox, select, latest, loadPage } from './lists.js';
import { Poller, liveBadge, ago, desktopStateBadge, fmtMiB, fmtGiB, hashQuery, setHashQuery } from './inventory.js';
import { loadBuildingBlocks, loadModules } from './servers.js';
import { initials } from '/common/app.js';
import { SHOW_MESSAGE, nextCursor, loadAll, cardHead, crumbs, notFoundCard, intOf } from './images.js';
import { specSummary, nicBadge } from './specs.js';

const PAGE_SIZE = 20;
const DESKTOPS_PAGE = 20;
const LIVE_MS = 3000;
const IDLE_MS = 15000;
const DETAIL_IDLE_MS = 10000;
export const POOL_TYPES = ['dedicated', 'floating'];
export const PLACEMENTS = ['spread', 'pack'];
const MAX_POOL_SIZE = 10000;
export const VLAN_MAX = 4094;

// ---- naming patterns --------------------------------------------------------------------------

const HOSTNAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;

/*
 * "sales-{n:3}" -> {name(n)} making sales-001, sales-002…, or {error: i18n key}. Exactly one
 * {n} or {n:W} (W 1..6); the rest letters, digits and '-'; every name a host name of at most
 * 63 characters up to number `max`.
 */
export function parsePattern(p, max) {
  const text = String(p || '').trim();
  if (!text) return { error: 'pools.pattern.empty' };
  const marks = [...text.matchAll(/\{([^}]*)\}/g)];
  if (marks.length === 0) return { error: 'pools.pattern.none' };
  if (marks.length > 1) return { error: 'pools.pattern.many' };
  const m = /^n(?::(\d+))?$/.exec(marks[0][1]);
  if (!m) return { error: 'pools.pattern.none' };
  const width = m[1] === undefined ? 0 : Number(m[1]);
  if (m[1] !== undefined && !(width >= 1 && width <= 6)) return { error: 'pools.pattern.width' };
  const prefix = text.slice(0, marks[0].index);
  const suffix = text.slice(marks[0].index + marks[0][0].length);
  if (!/^[A-Za-z0-9-]*$/.test(prefix + suffix)) return { error: 'pools.pattern.chars' };
  const name = (n) => prefix + String(n).padStart(width, '0') + suffix;
  if (!HOSTNAME_RE.test(name(1))) return { error: 'pools.pattern.edge' };
  if (name(Math.max(1, max || 1)).length > 63) return { error: 'pools.pattern.long' };
  return { name };
}

function slug(name) {
  const s = String(name || '').toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return s || 'desktop';
}

// The live preview under the pattern field: "sales-001  sales-002  sales-003  …  sales-010".
function patternPreview(input, maxInput) {
  const el = h('div', { class: 'pattern-preview', 'data-role': 'pattern-preview', 'aria-live': 'polite' });
  const update = () => {
    const max = intOf(maxInput);
    const res = parsePattern(input.value, Number.isFinite(max) ? max : 1);
    clear(el);
    el.classList.toggle('is-error', !!res.error);
    if (res.error) {
      el.append(icon('alert'), h('span', { i18n: res.error }));
      return;
    }
    const last = Number.isFinite(max) && max > 0 ? max : 3;
    const nums = [1, 2, 3].filter((n) => n <= last);
    el.append(...[h('span', { class: 'pattern-label', i18n: 'pools.pattern.first' }),
      ...nums.map((n) => h('code', { class: 'pattern-name', text: res.name(n) })),
      last > 4 ? h('span', { class: 'muted', text: '…' }) : null,
      last > 3 ? h('code', { class: 'pattern-name', text: res.name(last) }) : null].filter(Boolean));
  };
  input.addEventListener('input', update);
  maxInput.addEventListener('input', update);
  update();
  return { el, update };
}

// ---- badges and counts ------------------------------------------------------------------------

const POOL_STATE = { active: 'badge-success', paused: 'badge-warning', deleting: 'badge-danger' };

export function poolStateBadge(state) {
  const known = state in POOL_STATE;
  return h('span', {
    class: ['badge', known ? POOL_STATE[state] : 'badge-neutral', state === 'deleting' ? 'badge-live' : 'badge-dot'],
    'data-pool-state': state, i18n: known ? 'pool.state.' + state : undefined, text: known ? undefined : state,
  });
}

function typeBadge(type) {
  return h('span', { class: 'badge badge-neutral', 'data-pool-type': type, i18n: POOL_TYPES.includes(type) ? 'pool.type.' + type : undefined, text: POOL_TYPES.includes(type) ? undefined : type });
}

const PHASE = {
  pending: ['badge-neutral', true],
  provisioning: ['badge-info', true],
  ready: ['badge-success', false],
  refreshing: ['badge-info', true],
  resizing: ['badge-info', true],
  deleting: ['badge-warning', true],
  error: ['badge-danger', false],
};

export function phaseBadge(phase) {
  if (!phase) return h('span', { class: 'badge badge-neutral', i18n: 'phase.unmanaged' });
  const known = phase in PHASE;
  return h('span', {
    class: ['badge', known ? PHASE[phase][0] : 'badge-neutral', known && PHASE[phase][1] ? 'badge-live' : 'badge-dot'],
    'data-phase': phase, i18n: known ? 'phase.' + phase : undefined, text: known ? undefined : phase,
  });
}

function counts(p) {
  const c = p.counts || {};
  const n = (k) => Number(c[k]) || 0;
  return {
    total: n('total'), pending: n('pending'), provisioning: n('provisioning'), ready: n('ready'), refreshing: n('refreshing'),
    resizing: n('resizing'), deleting: n('deleting'), error: n('error'), running: n('running'), assigned: n('assigned'),
  };
}

// How many desktops the pool is working towards: at least min, enough for the assigned ones
// plus the spares, never more than max.
export function poolTarget(p) {
  if (Number.isInteger(p.target)) return p.target; // what the reconciler works towards
  const c = counts(p);
  return Math.max(0, Math.min(p.max_size || 0, Math.max(p.min_size || 0, c.assigned + (p.spare || 0))));
}

function busyCount(p) {
  const c = counts(p);
  return c.pending + c.provisioning + c.refreshing + c.resizing + c.deleting;
}

function isWorking(p) {
  return p.state === 'deleting' || busyCount(p) > 0;
}

function progressBar(ready, target, cls) {
  const max = Math.max(target, 1);
  return h('progress', { class: ['pool-progress', cls], max: String(max), value: String(Math.min(ready, max)), i18nLabel: 'pools.progress', i18nArgs: { ready: formatNumber(ready), target: formatNumber(target) } });
}

function chip(kind, key, n, role) {
  return h('span', { class: ['chip', 'chip-' + kind], 'data-count': role }, h('span', { class: 'chip-dot' }), h('span', { i18n: key, i18nArgs: { n: formatNumber(n) } }));
}

// ---- routes -------------------------------------------------------------------------------------

export function poolsRoute(page, ctx, rest) {
  const id = /^\d+$/.test(rest || '') ? Number(rest) : null;
  if (id) return poolPage(page, id, ctx);
  return poolsList(page);
}

// ---- the list -----------------------------------------------------------------------------------

function poolsList(page) {
  const q0 = hashQuery();
  const filters = { q: q0.get('q') || '', state: q0.get('state') || '' };
  const table = dataTable([
    { key: 'pools.col.pool', class: 'col-name', noLabel: true },
    { key: 'pools.col.state', class: 'col-state' },
    { key: 'pools.col.desktops', class: 'col-desktops' },
    { key: 'pools.col.size', class: 'col-size' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'pools');
  const pager = new Pager(PAGE_SIZE, () => {
    quiet = false;
    poller.now();
  });
  const only = latest();
  const live = liveBadge();
  let quiet = false;
  let working = false;

  const search = searchBox('pools.search', (v) => {
    filters.q = v;
    changed();
  });
  search.input.value = filters.q;
  const stateSel = select('state', [['', 'pools.filter.state_any'], ['active', 'pool.state.active'], ['paused', 'pool.state.paused'], ['deleting', 'pool.state.deleting']], 'pools.filter.state');
  stateSel.value = filters.state;
  stateSel.addEventListener('change', () => {
    filters.state = stateSel.value;
    changed();
  });

  function changed() {
    setHashQuery(filters);
    pager.reset();
    quiet = false;
    poller.now();
  }

  page.append(
    pageHead('pools.title', 'pools.subtitle', live.el,
      button('pools.new', { variant: 'primary', icon: 'plus', action: 'new-pool', onclick: () => createPoolDialog(() => {
        pager.reset();
        quiet = false;
        poller.now();
      }) })),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar' }, search.el, h('div', { class: 'toolbar-filters' }, stateSel)),
      table.el,
      pager.el));

  const poller = new Poller(page, load, () => (working ? LIVE_MS : IDLE_MS));
  poller.now();
  return () => poller.stop();

  async function load() {
    const data = await loadPage({
      table, pager, only, quiet,
      fetch: async () => {
        const d = await api.get('/pools', { ...pager.params(), q: filters.q, state: filters.state });
        return { ...d, next_after: nextCursor(d) };
      },
      row: poolRow,
      keyed: { key: (p) => p.id, sig: (p) => JSON.stringify([p.name, p.state, p.counts, p.min_size, p.max_size, p.spare, p.pause_reason, p.last_error, p.image_name, p.spec_name]) },
      emptyKey: filters.q || filters.state ? 'pools.none_match' : 'pools.empty',
      emptyIcon: 'monitor',
      infoKey: 'list.page',
    });
    quiet = true;
    if (data) {
      working = (data.items || []).some(isWorking);
      live.mark();
    } else {
      live.stale();
    }
  }

  function poolRow(p) {
    const c = counts(p);
    const target = poolTarget(p);
    const starting = c.pending + c.provisioning;
    return table.row([
      h('div', { class: 'image-cell' },
        h('span', { class: ['image-icon', 'pool-icon', 'pool-icon-' + p.state], 'aria-hidden': 'true' }, icon('monitor')),
        h('div', { class: 'user-cell-text' },
          h('a', { class: 'user-cell-name image-link', href: '#/pools/' + p.id, text: p.name }),
          h('span', { class: 'user-cell-sub pool-sub' },
            h('span', { i18n: 'pool.type.' + p.type }), h('span', { class: 'topo-sep', 'aria-hidden': 'true', text: '·' }),
            h('span', { text: p.image_name || '#' + p.image_id }), h('span', { class: 'topo-sep', 'aria-hidden': 'true', text: '·' }),
            h('span', { text: p.spec_name || '#' + p.spec_id })))),
      h('div', { class: 'state-cell' }, poolStateBadge(p.state),
        p.state === 'paused' && p.pause_reason ? h('span', { class: 'user-cell-sub clamp-1', title: p.pause_reason, text: p.pause_reason }) : null,
        p.last_error ? h('span', { class: 'pool-error-mini', title: p.last_error }, icon('alert'), h('span', { i18n: 'pools.has_error' })) : null),
      h('div', { class: 'pool-count-cell' },
        h('div', { class: 'pool-count-head' },
          h('span', { class: 'pool-ready', 'data-role': 'ready-total' },
            h('strong', { text: formatNumber(c.ready) }), h('span', { class: 'cap-of', text: ' / ' + formatNumber(c.total) })),
          h('span', { class: 'cap-unit', i18n: 'pools.ready_word' })),
        progressBar(c.ready, target, 'pool-progress-sm'),
        starting || c.error ? h('div', { class: 'pool-chips' },
          starting ? chip('maint', 'pools.count.provisioning', starting, 'provisioning') : null,
          c.error ? chip('bad', 'pools.count.error', c.error, 'error') : null) : null),
      h('span', { class: 'pool-size', i18n: 'pools.size', i18nArgs: { min: formatNumber(p.min_size), max: formatNumber(p.max_size), spare: formatNumber(p.spare || 0) } }),
      h('a', { class: 'icon-btn', href: '#/pools/' + p.id, 'data-action': 'open', i18nLabel: 'pools.open', i18nTitle: 'pools.open' }, icon('chevronRight')),
    ], { 'data-pool': p.name, 'data-pool-id': String(p.id), 'data-state': p.state, 'data-ready': String(c.ready), 'data-total': String(c.total) });
  }
}

// ---- pickers ------------------------------------------------------------------------------------

/*
 * Modules grouped by building block, as checkboxes: {el, ready (a promise), ids()}.
 * selected: module ids checked at the start.
 */
function modulePicker(selected) {
  const want = new Set((selected || []).map(Number));
  const box = h('div', { class: 'module-picker', 'data-role': 'module-picker' }, h('p', { class: 'muted', i18n: 'list.loading' }));
  const ready = (async () => {
    let groups;
    try {
      const bbs = await loadBuildingBlocks();
      groups = await Promise.all(bbs.map(async (bb) => ({ bb, modules: await loadModules(bb.id) })));
    } catch (e) {
      const a = alertBox();
      a.showError(e, SHOW_MESSAGE);
      clear(box).append(a.el);
      return;
    }
    groups = groups.filter((g) => g.modules.length);
    clear(box);
    if (!groups.length) {
      box.append(h('p', { class: 'module-none' }, h('span', { i18n: 'pools.modules.none' }), ' ', h('a', { href: '#/topology', i18n: 'pools.modules.none_link' })));
      return;
    }
    for (const g of groups) {
      box.append(h('fieldset', { class: 'module-group', 'data-building-block': g.bb.name },
        h('legend', { class: 'module-bb' }, icon('layers'), h('span', { text: g.bb.name })),
        h('div', { class: 'module-options' }, g.modules.map((m) => h('label', { class: 'module-option', 'data-module': m.name },
          h('input', { type: 'checkbox', name: 'module', value: String(m.id), checked: want.has(Number(m.id)) }),
          h('span', { class: 'module-name', text: m.name }))))));
    }
  })();
  return {
    el: box,
    ready,
    ids: () => Array.from(box.querySelectorAll('input[name=module]:checked')).map((i) => Number(i.value)),
  };
}

// Image and spec <select>s filled from the API. Images without a published version can't be chosen.
function imageSelect(value) {
  const sel = h('select', { name: 'image_id', required: true }, h('option', { value: '', i18n: 'list.loading' }));
  const ready = loadAll('/images').then((items) => {
    clear(sel).append(h('option', { value: '', i18n: 'pools.field.image_pick' }),
      ...items.map((img) => {
        const pub = img.published_version !== null && img.published_version !== undefined;
        const o = h('option', { value: String(img.id), disabled: !pub, 'data-image': img.name });
        setText(o, pub ? 'pools.image_option' : 'pools.image_option_unpublished', { name: img.name, n: pub ? img.published_version : '' });
        return o;
      }));
    if (value) sel.value = String(value);
    return items;
  });
  return { el: sel, ready };
}

function specSelect(value) {
  const sel = h('select', { name: 'spec_id', required: true }, h('option', { value: '', i18n: 'list.loading' }));
  const ready = loadAll('/specs').then((items) => {
    clear(sel).append(h('option', { value: '', i18n: 'pools.field.spec_pick' }),
      ...items.map((s) => {
        const o = h('option', { value: String(s.id), 'data-spec': s.name });
        setText(o, 'pools.spec_option', { name: s.name, vcpus: formatNumber(s.vcpus), mem: fmtMiB(s.memory_mib), disk: formatNumber(s.disk_gib) });
        return o;
      }));
    if (value) sel.value = String(value);
    return items;
  });
  return { el: sel, ready };
}

function numberInput(name, value, min, max) {
  return h('input', { type: 'number', name, min: String(min), max: String(max), step: '1', inputmode: 'numeric', value: String(value) });
}

// Checks min, max and spare; shows the problem and returns null, or returns the numbers.
function readSizes(alert, minI, maxI, spareI) {
  const min = intOf(minI);
  const max = intOf(maxI);
  const spare = intOf(spareI);
  for (const [v, input, key] of [[min, minI, 'pools.error.min'], [max, maxI, 'pools.error.max'], [spare, spareI, 'pools.error.spare']]) {
    if (!Number.isFinite(v) || v > MAX_POOL_SIZE) {
      alert.show(key);
      input.focus();
      return null;
    }
  }
  if (min > max) {
    alert.show('pools.error.min_max');
    minI.focus();
    return null;
  }
  if (spare > max) {
    alert.show('pools.error.spare_max');
    spareI.focus();
    return null;
  }
  return { min_size: min, max_size: max, spare };
}

// ---- network: VLAN and the virtio fallback ---------------------------------------------------------

// '' -> {value: null} (untagged), ' 100 ' -> {value: 100}; {error: true} unless a whole number 1..4094.
export function parseVlan(text) {
  const v = String(text === undefined || text === null ? '' : text).trim();
  if (v === '') return { value: null };
  if (!/^\d{1,4}$/.test(v)) return { error: true };
  const n = Number(v);
  return n >= 1 && n <= VLAN_MAX ? { value: n } : { error: true };
}

function vlanOf(p) {
  return p && p.vlan !== undefined && p.vlan !== null ? Number(p.vlan) : null;
}

/*
 * The pool's network settings as form fields: the VLAN (empty = none, checked here before
 * anything is sent; the server checks again) and "fall back to virtio when no VF is free",
 * whose hint says whether the chosen spec makes it matter (only SR-IOV specs do).
 * Returns {el, setNicType(type|null), read(alert) -> {vlan, nic_fallback} or null}.
 */
function networkFields(p, prefix) {
  const vlan = h('input', {
    type: 'text', name: 'vlan', id: prefix + '-vlan', inputmode: 'numeric', maxlength: '6', autocomplete: 'off', spellcheck: 'false',
    class: 'vlan-input', i18nPlaceholder: 'pools.field.vlan_none', value: vlanOf(p) === null ? '' : String(vlanOf(p)),
    'aria-describedby': `${prefix}-vlan-hint ${prefix}-vlan-err`,
  });
  const vlanErr = h('p', { class: 'field-error', id: prefix + '-vlan-err', 'data-error-for': 'vlan', role: 'alert', hidden: true });
  const vlanBox = h('div', { class: 'field', 'data-field': 'vlan' },
    h('label', { for: prefix + '-vlan' }, h('span', { i18n: 'pools.field.vlan' }), h('span', { class: 'field-optional', i18n: 'common.optional' })),
    vlan, h('p', { class: 'field-hint', id: prefix + '-vlan-hint', i18n: 'pools.field.vlan_hint', i18nArgs: { max: String(VLAN_MAX) } }), vlanErr);
  const fallback = h('input', { type: 'checkbox', name: 'nic_fallback', checked: !!(p && p.nic_fallback), 'aria-describedby': prefix + '-fallback-hint' });
  const hint = h('p', { class: 'field-hint', id: prefix + '-fallback-hint', 'data-role': 'fallback-hint', i18n: 'pools.field.fallback_hint_any' });
  const fbBox = h('div', { class: 'field nic-fallback', 'data-field': 'nic_fallback' },
    h('span', { class: 'field-label', i18n: 'pools.field.fallback_label' }),
    h('label', { class: 'checkbox check-block' }, fallback, h('span', { i18n: 'pools.field.fallback' })),
    hint);
  vlan.addEventListener('input', () => {
    vlanErr.hidden = true;
    vlanBox.classList.remove('has-error');
    vlan.removeAttribute('aria-invalid');
  });
  return {
    el: h('div', { class: 'field-row pool-network', 'data-role': 'pool-network' }, vlanBox, fbBox),
    setNicType(type) {
      fbBox.setAttribute('data-nic-type', type || '');
      fbBox.classList.toggle('is-moot', type === 'virtio');
      setText(hint, type === 'sriov' ? 'pools.field.fallback_hint_sriov' : type === 'virtio' ? 'pools.field.fallback_hint_virtio' : 'pools.field.fallback_hint_any');
    },
    read(alert) {
      const v = parseVlan(vlan.value);
      if (v.error) {
        setText(vlanErr, 'pools.error.vlan', { max: String(VLAN_MAX) });
        vlanErr.hidden = false;
        vlanBox.classList.add('has-error');
        vlan.setAttribute('aria-invalid', 'true');
        alert.show('pools.error.vlan', { max: String(VLAN_MAX) });
        vlan.focus();
        vlanBox.scrollIntoView({ block: 'nearest' });
        return null;
      }
      return { vlan: v.value, nic_fallback: fallback.checked };
    },
  };
}

// ---- a desktop's NIC -------------------------------------------------------------------------------

const NIC_OF_DESKTOP = ['virtio', 'sriov'];

// "ens1f0 · VF 3"
function vfName(vf) {
  return h('span', { class: 'mono', 'data-role': 'vf', title: vf.pci || null, i18n: 'vf.name', i18nArgs: { nic: vf.nic, n: formatNumber(vf.index) } });
}

/*
 * A desktop's NIC on one line under its name: virtio or the SR-IOV VF it holds, its MAC and
 * VLAN; then the note that says why it is not what the spec asked for (a fallback to virtio,
 * a VF gone). Desktops from before SR-IOV have no nic: the spec's NIC type is shown then.
 */
export function desktopNic(d) {
  const n = d.nic;
  const type = n && NIC_OF_DESKTOP.includes(n.type) ? n.type : d.nic_type;
  if (!type) return null;
  const hasVlan = n && n.vlan !== null && n.vlan !== undefined;
  return [
    h('span', { class: 'nic-line-desk', 'data-role': 'desktop-nic', 'data-nic-type': type },
      h('span', { class: ['nic-kind', 'nic-kind-' + type], i18n: NIC_OF_DESKTOP.includes(type) ? 'nic_type.' + type : undefined, text: NIC_OF_DESKTOP.includes(type) ? undefined : type }),
      n && n.type === 'sriov' && n.vf ? vfName(n.vf) : null,
      n && (n.mac || hasVlan) ? h('span', { class: 'nic-addr' },
        n.mac ? h('span', { class: 'mono', 'data-role': 'mac', text: n.mac }) : null,
        hasVlan ? h('span', { class: 'vlan-chip', 'data-role': 'vlan', i18n: 'nic.vlan', i18nArgs: { n: String(n.vlan) } }) : null) : null),
    n && n.note ? h('span', { class: 'nic-note', 'data-role': 'nic-note', title: n.note }, icon('alert'), h('span', { text: n.note })) : null,
  ];
}

// ---- create -------------------------------------------------------------------------------------

function createPoolDialog(done) {
  const name = h('input', { type: 'text', name: 'name', maxlength: '64', autocomplete: 'off', required: true });
  const desc = h('input', { type: 'text', name: 'description', maxlength: '255', autocomplete: 'off' });
  const type = h('select', { name: 'type' }, POOL_TYPES.map((t) => h('option', { value: t, i18n: 'pool.type.' + t })));
  const image = imageSelect(null);
  const spec = specSelect(null);
  const minI = numberInput('min_size', 1, 0, MAX_POOL_SIZE);
  const maxI = numberInput('max_size', 10, 0, MAX_POOL_SIZE);
  const spareI = numberInput('spare', 1, 0, MAX_POOL_SIZE);
  const pattern = h('input', { type: 'text', name: 'name_pattern', maxlength: '64', autocomplete: 'off', spellcheck: 'false', class: 'mono-input', value: 'desktop-{n:3}' });
  const placement = h('select', { name: 'placement' }, PLACEMENTS.map((p) => h('option', { value: p, i18n: 'placement.' + p })));
  const modules = modulePicker([]);
  const preview = patternPreview(pattern, maxI);
  const net = networkFields(null, 'pool');
  let specItems = [];
  const specNic = () => {
    const chosen = specItems.find((x) => String(x.id) === spec.el.value);
    net.setNicType(chosen ? chosen.nic_type : null);
  };
  spec.el.addEventListener('change', specNic);
  let patternTouched = false;
  pattern.addEventListener('input', () => {
    patternTouched = true;
  });
  name.addEventListener('input', () => {
    if (patternTouched) return;
    pattern.value = slug(name.value) + '-{n:3}';
    preview.update();
  });
  const typeHint = h('p', { class: 'field-hint', 'data-role': 'type-hint', i18n: 'pool.type.dedicated.hint' });
  type.addEventListener('change', () => setText(typeHint, 'pool.type.' + type.value + '.hint'));
  const placeHint = h('p', { class: 'field-hint', i18n: 'placement.spread.hint' });
  placement.addEventListener('change', () => setText(placeHint, 'placement.' + placement.value + '.hint'));
  const imageHint = h('p', { class: 'field-hint', 'data-role': 'image-hint', hidden: true },
    h('span', { i18n: 'pools.field.image_none' }), ' ', h('a', { href: '#/images', i18n: 'pools.field.image_none_link' }));
  const specHint = h('p', { class: 'field-hint', 'data-role': 'spec-hint', hidden: true },
    h('span', { i18n: 'pools.field.spec_none' }), ' ', h('a', { href: '#/specs', i18n: 'pools.field.spec_none_link' }));
  image.ready.then((items) => {
    imageHint.hidden = items.some((i) => i.published_version !== null && i.published_version !== undefined);
  }).catch(() => {});
  spec.ready.then((items) => {
    specHint.hidden = items.length > 0;
    specItems = items;
    specNic();
  }).catch(() => {});

  const d = dialog({
    name: 'create-pool',
    wide: true,
    title: 'pools.create.title',
    intro: 'pools.create.intro',
    submitKey: 'pools.create.submit',
    busyKey: 'common.creating',
    errors: { ...SHOW_MESSAGE, conflict: 'pools.error.exists' },
    body: [
      h('div', { class: 'field-row' },
        field('pools.field.name', name),
        h('div', { class: 'field' }, h('label', { for: 'pool-type' }, h('span', { i18n: 'pools.field.type' })), Object.assign(type, { id: 'pool-type' }), typeHint)),
      h('div', { class: 'field-row' },
        h('div', { class: 'field' }, h('label', { for: 'pool-image' }, h('span', { i18n: 'pools.field.image' })), Object.assign(image.el, { id: 'pool-image' }), imageHint),
        h('div', { class: 'field' }, h('label', { for: 'pool-spec' }, h('span', { i18n: 'pools.field.spec' })), Object.assign(spec.el, { id: 'pool-spec' }), specHint)),
      net.el,
      h('div', { class: 'field-row field-row-3' },
        field('pools.field.min', minI, { hint: 'pools.field.min_hint' }),
        field('pools.field.max', maxI, { hint: 'pools.field.max_hint' }),
        field('pools.field.spare', spareI, { hint: 'pools.field.spare_hint' })),
      h('div', { class: 'field' }, h('label', { for: 'pool-pattern' }, h('span', { i18n: 'pools.field.pattern' })),
        Object.assign(pattern, { id: 'pool-pattern' }), h('p', { class: 'field-hint', i18n: 'pools.field.pattern_hint' }), preview.el),
      h('div', { class: 'field' }, h('label', { for: 'pool-placement' }, h('span', { i18n: 'pools.field.placement' })), Object.assign(placement, { id: 'pool-placement' }), placeHint),
      h('div', { class: 'field' }, h('span', { class: 'field-label', i18n: 'pools.field.modules' }), h('p', { class: 'field-hint', i18n: 'pools.field.modules_hint' }), modules.el),
      field('pools.field.description', desc, { optional: true }),
    ],
    onSubmit: async (form, alert) => {
      const n = name.value.trim();
      if (!n) {
        alert.show('pools.error.name');
        name.focus();
        return false;
      }
      if (!image.el.value) {
        alert.show('pools.error.image');
        image.el.focus();
        return false;
      }
      if (!spec.el.value) {
        alert.show('pools.error.spec');
        spec.el.focus();
        return false;
      }
      const network = net.read(alert);
      if (!network) return false;
      const sizes = readSizes(alert, minI, maxI, spareI);
      if (!sizes) return false;
      const pat = parsePattern(pattern.value, sizes.max_size);
      if (pat.error) {
        alert.show(pat.error);
        pattern.focus();
        return false;
      }
      const mods = modules.ids();
      if (!mods.length) {
        alert.show('pools.error.modules');
        return false;
      }
      const body = {
        name: n, description: desc.value.trim(), type: type.value, image_id: Number(image.el.value), spec_id: Number(spec.el.value),
        ...sizes, name_pattern: pattern.value.trim(), placement: placement.value, modules: mods,
      };
      // the defaults (untagged, no fallback) are left out
      if (network.vlan !== null) body.vlan = network.vlan;
      if (network.nic_fallback) body.nic_fallback = true;
      const p = await api.post('/pools', body);
      toast('pools.created', { name: p.name || n });
      if (done) done(p);
      return true;
    },
  });
  return d;
}

// ---- session policy -----------------------------------------------------------------------------

export const CLIPBOARD = ['off', 'in', 'out', 'both'];
const CLIPBOARD_ICON = { off: 'x', in: 'arrowRight', out: 'arrowRight', both: 'copy' };
// the time limits: API field (seconds) -> form field (minutes); 0 = none
const DURATIONS = [
  ['max_session_s', 'max_session_min', 'pool.policy.max_session', 'pool.policy.max_session_hint'],
  ['idle_timeout_s', 'idle_timeout_min', 'pool.policy.idle_timeout', 'pool.policy.idle_timeout_hint'],
  ['disconnect_timeout_s', 'disconnect_timeout_min', 'pool.policy.disconnect_timeout', 'pool.policy.disconnect_timeout_hint'],
];
const POLICY_FIELDS = ['clipboard', 'view_only', 'max_session_s', 'idle_timeout_s', 'disconnect_timeout_s', 'allowed_networks',
  'max_sessions_per_user', 'user_power', 'refresh_on_logoff'];
// what the API takes: time limits up to 30 days, up to 1000 sessions a user, 32 networks
const MAX_MINUTES = 30 * 24 * 60;
const MAX_SESSIONS = 1000;
const MAX_NETWORKS = 32;
// the shape of an address with an optional prefix length; the server checks the numbers
const CIDR_SHAPE = /^[0-9A-Fa-f:.]+(\/\d{1,3})?$/;

// "10.0.0.0/8\n 192.168.0.0/16,," -> ['10.0.0.0/8', '192.168.0.0/16']
export function splitNetworks(text) {
  return String(text || '').split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

function minutesText(seconds) {
  const s = Number(seconds) || 0;
  const m = s / 60;
  return Number.isInteger(m) ? String(m) : String(Math.round(m * 100) / 100);
}

// The form value of a policy, or {error: [field, key, args]}.
function readPolicy(inputs) {
  const out = {};
  const clip = inputs.form.querySelector('input[name=clipboard]:checked');
  out.clipboard = clip ? clip.value : 'both';
  out.view_only = inputs.view_only.checked;
  for (const [prop, name] of DURATIONS) {
    const input = inputs[name];
    const text = String(input.value).trim();
    const bad = (input.validity && input.validity.badInput) || (text !== '' && (!/^\d+(\.\d+)?$/.test(text) || Number(text) > MAX_MINUTES));
    if (bad) return { error: [prop, 'pool.policy.error.minutes', { max: formatNumber(MAX_MINUTES) }] };
    out[prop] = text === '' ? 0 : Math.round(Number(text) * 60);
  }
  const nets = splitNetworks(inputs.allowed_networks.value);
  const bad = nets.find((n) => !CIDR_SHAPE.test(n));
  if (bad !== undefined) return { error: ['allowed_networks', 'pool.policy.error.cidr', { value: bad }] };
  if (nets.length > MAX_NETWORKS) return { error: ['allowed_networks', 'pool.policy.error.networks', { max: formatNumber(MAX_NETWORKS) }] };
  out.allowed_networks = nets;
  const max = String(inputs.max_sessions_per_user.value).trim();
  const badMax = inputs.max_sessions_per_user.validity && inputs.max_sessions_per_user.validity.badInput;
  if (badMax || (max !== '' && (!/^\d+$/.test(max) || Number(max) > MAX_SESSIONS))) return { error: ['max_sessions_per_user', 'pool.policy.error.count', { max: formatNumber(MAX_SESSIONS) }] };
  out.max_sessions_per_user = max === '' ? 0 : Number(max);
  out.user_power = inputs.user_power.checked;
  out.refresh_on_logoff = inputs.refresh_on_logoff.checked;
  return { value: out };
}

function samePolicyValue(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) return JSON.stringify(a || []) === JSON.stringify(b || []);
  return a === b;
}

// The API keeps networks as a list; an older answer may give the comma-separated text.
function networksOf(p) {
  const v = p && p.allowed_networks;
  if (Array.isArray(v)) return v;
  return splitNetworks(v);
}

/*
 * The pool's session policy as a form: clipboard, view-only, time limits (in minutes; the API
 * counts seconds), allowed client networks (one CIDR a line), sessions per user, power actions
 * and refresh on log-off. Administrators save it (only what changed is sent); operators see it
 * read-only. Errors are shown by the field they belong to, the API's 422 included.
 * Returns {el, load(), sync(pool)}: sync takes the policy of a refreshed pool (or asks for it)
 * while nothing has been typed.
 */
function policyPanel(id, canEdit) {
  const alert = alertBox();
  const form = h('form', { class: 'policy-form', 'data-role': 'policy-form', novalidate: true });
  const inputs = { form };
  const errors = {};
  let policy = null;
  let baseline = '';
  let saving = false;
  let poolType = null;

  function errorSlot(name) {
    errors[name] = h('p', { class: 'field-error', id: 'policy-err-' + name, 'data-error-for': name, role: 'alert', hidden: true });
    return errors[name];
  }

  // clipboard: a segmented choice with a hint that follows it
  const clipHint = h('p', { class: 'field-hint', 'data-role': 'clipboard-hint' });
  const clipGroup = h('div', { class: 'seg', role: 'radiogroup', 'aria-labelledby': 'policy-clipboard-label' },
    CLIPBOARD.map((v) => h('label', { class: 'seg-option', 'data-clipboard': v },
      h('input', { type: 'radio', name: 'clipboard', value: v, disabled: !canEdit }),
      icon(CLIPBOARD_ICON[v], v === 'out' ? 'rot-flip' : null),
      h('span', { i18n: 'pool.policy.clipboard.' + v }))));
  const showClipHint = () => {
    const c = form.querySelector('input[name=clipboard]:checked');
    setText(clipHint, 'pool.policy.clipboard.' + (c ? c.value : 'both') + '.hint');
  };
  clipGroup.addEventListener('change', showClipHint);

  const check = (name, key, hintKey) => {
    inputs[name] = h('input', { type: 'checkbox', name, disabled: !canEdit });
    return h('div', { class: 'policy-check' },
      h('label', { class: 'checkbox check-block' }, inputs[name], h('span', { i18n: key })),
      hintKey ? h('p', { class: 'field-hint', 'data-role': name + '-hint', i18n: hintKey }) : null,
      errorSlot(name));
  };

  const durationFields = DURATIONS.map(([prop, name, key, hint]) => {
    inputs[name] = h('input', {
      type: 'number', name, id: 'policy-' + name, min: '0', step: '1', inputmode: 'decimal', readonly: !canEdit,
      'aria-describedby': 'policy-' + name + '-hint policy-err-' + prop,
    });
    return h('div', { class: 'field', 'data-field': prop },
      h('label', { for: 'policy-' + name }, h('span', { i18n: key })),
      h('div', { class: 'input-unit' }, inputs[name], h('span', { class: 'unit-label', i18n: 'pool.policy.minutes' })),
      h('p', { class: 'field-hint', id: 'policy-' + name + '-hint', i18n: hint }),
      errorSlot(prop));
  });

  inputs.allowed_networks = h('textarea', {
    name: 'allowed_networks', id: 'policy-networks', rows: '4', class: 'mono-input', spellcheck: 'false', autocomplete: 'off',
    readonly: !canEdit, i18nPlaceholder: 'pool.policy.networks_placeholder', 'aria-describedby': 'policy-networks-hint policy-err-allowed_networks',
  });
  inputs.max_sessions_per_user = h('input', {
    type: 'number', name: 'max_sessions_per_user', id: 'policy-max-sessions', min: '0', step: '1', inputmode: 'numeric', readonly: !canEdit,
    'aria-describedby': 'policy-max-sessions-hint policy-err-max_sessions_per_user',
  });

  const saveBtn = button('pool.policy.save', { type: 'submit', variant: 'primary', icon: 'check', action: 'save-policy' });
  const resetBtn = button('pool.policy.reset', { action: 'reset-policy', onclick: () => fill(policy) });
  const dirtyNote = h('span', { class: 'policy-dirty', 'data-role': 'policy-dirty', i18n: 'pool.policy.unsaved', hidden: true });

  form.append(alert.el,
    h('div', { class: 'policy-grid' }, h('div', { class: 'policy-col' },
      h('fieldset', { class: 'policy-group', 'data-group': 'console' },
        h('legend', { class: 'policy-legend' }, icon('monitor'), h('span', { i18n: 'pool.policy.group.console' })),
        h('div', { class: 'field', 'data-field': 'clipboard' },
          h('span', { class: 'field-label', id: 'policy-clipboard-label', i18n: 'pool.policy.clipboard' }),
          clipGroup, clipHint, errorSlot('clipboard')),
        check('view_only', 'pool.policy.view_only', 'pool.policy.view_only_hint')),
      h('fieldset', { class: 'policy-group', 'data-group': 'access' },
        h('legend', { class: 'policy-legend' }, icon('shield'), h('span', { i18n: 'pool.policy.group.access' })),
        h('div', { class: 'field', 'data-field': 'allowed_networks' },
          h('label', { for: 'policy-networks' }, h('span', { i18n: 'pool.policy.networks' })),
          inputs.allowed_networks,
          h('p', { class: 'field-hint', id: 'policy-networks-hint', i18n: 'pool.policy.networks_hint' }),
          errorSlot('allowed_networks')),
        h('div', { class: 'field', 'data-field': 'max_sessions_per_user' },
          h('label', { for: 'policy-max-sessions' }, h('span', { i18n: 'pool.policy.max_sessions' })),
          inputs.max_sessions_per_user,
          h('p', { class: 'field-hint', id: 'policy-max-sessions-hint', i18n: 'pool.policy.max_sessions_hint' }),
          errorSlot('max_sessions_per_user')))),
    h('div', { class: 'policy-col' },
      h('fieldset', { class: 'policy-group', 'data-group': 'time' },
        h('legend', { class: 'policy-legend' }, icon('clock'), h('span', { i18n: 'pool.policy.group.time' })),
        durationFields),
      h('fieldset', { class: 'policy-group', 'data-group': 'desktop' },
        h('legend', { class: 'policy-legend' }, icon('power'), h('span', { i18n: 'pool.policy.group.desktop' })),
        check('user_power', 'pool.policy.user_power', 'pool.policy.user_power_hint'),
        check('refresh_on_logoff', 'pool.policy.refresh_on_logoff', 'pool.policy.refresh_on_logoff_hint')))),
    canEdit
      ? h('div', { class: 'policy-actions' }, dirtyNote, resetBtn, saveBtn)
      : h('p', { class: 'policy-readonly', 'data-role': 'policy-readonly' }, icon('lock'), h('span', { i18n: 'pool.policy.read_only' })));

  const el = h('section', { class: 'card detail-card pool-policy', 'data-card': 'policy' },
    cardHead('pool.policy.title', 'shield'),
    h('p', { class: 'field-hint policy-intro', i18n: 'pool.policy.intro' }),
    form);

  const raw = () => JSON.stringify(Array.from(form.elements).map((e) => (e.type === 'checkbox' || e.type === 'radio' ? e.checked : e.value)));
  const dirty = () => policy !== null && raw() !== baseline;
  const showDirty = () => {
    const d = dirty();
    dirtyNote.hidden = !d;
    saveBtn.disabled = !d || saving;
    resetBtn.disabled = !d || saving;
    el.classList.toggle('is-dirty', d);
  };
  form.addEventListener('input', () => {
    clearErrors();
    showDirty();
  });
  form.addEventListener('change', showDirty);

  function clearErrors() {
    for (const [name, p] of Object.entries(errors)) {
      p.hidden = true;
      const box = form.querySelector(`[data-field="${name}"]`);
      if (box) box.classList.remove('has-error');
    }
    form.querySelectorAll('[aria-invalid]').forEach((x) => x.removeAttribute('aria-invalid'));
    alert.hide();
  }

  function inputOf(name) {
    if (name === 'clipboard') return form.querySelector('input[name=clipboard]:checked') || form.querySelector('input[name=clipboard]');
    const d = DURATIONS.find(([prop]) => prop === name);
    return inputs[d ? d[1] : name];
  }

  function fieldError(name, key, args) {
    const p = errors[name];
    setText(p, key, args);
    p.hidden = false;
    const box = form.querySelector(`[data-field="${name}"]`) || p.parentElement;
    box.classList.add('has-error');
    const input = inputOf(name);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  }

  function fill(p) {
    if (!p) return;
    policy = p;
    for (const r of form.querySelectorAll('input[name=clipboard]')) r.checked = r.value === (p.clipboard || 'both');
    inputs.view_only.checked = !!p.view_only;
    for (const [prop, name] of DURATIONS) inputs[name].value = minutesText(p[prop]);
    inputs.allowed_networks.value = networksOf(p).join('\n');
    inputs.max_sessions_per_user.value = String(Number(p.max_sessions_per_user) || 0);
    inputs.user_power.checked = !!p.user_power;
    inputs.refresh_on_logoff.checked = !!p.refresh_on_logoff;
    showClipHint();
    clearErrors();
    baseline = raw();
    el.setAttribute('data-loaded', 'true');
    showDirty();
  }

  // which policy field an API message names ("field 'allowed_networks' ...")
  function fieldOfMessage(msg) {
    const m = /'([a-z_]+)'/.exec(msg || '');
    if (m && POLICY_FIELDS.includes(m[1])) return m[1];
    const named = POLICY_FIELDS.find((f) => new RegExp('\\b' + f + '\\b').test(msg || ''));
    if (named) return named;
    return /\bcidr|\bnetwork/i.test(msg || '') ? 'allowed_networks' : null;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!canEdit || saving || !policy) return;
    clearErrors();
    const read = readPolicy(inputs);
    if (read.error) {
      fieldError(...read.error);
      alert.show('pool.policy.error.fix');
      return;
    }
    const body = {};
    for (const f of POLICY_FIELDS) {
      const before = f === 'allowed_networks' ? networksOf(policy) : policy[f];
      if (!samePolicyValue(read.value[f], before)) body[f] = read.value[f];
    }
    if (!Object.keys(body).length) {
      fill(policy);
      return;
    }
    saving = true;
    const done = busy(saveBtn, 'common.saving');
    try {
      const saved = await api.patch(`/pools/${id}/policy`, body);
      fill(saved && saved.policy ? saved.policy : saved);
      toast('pool.policy.saved');
    } catch (e) {
      const f = e instanceof ApiError && e.status === 422 ? fieldOfMessage(e.message) : null;
      // "allowed_networks[1] is not ...": name the network itself
      const at = /allowed_networks\[(\d+)\]/.exec(e.message || '');
      if (f === 'allowed_networks' && at && body.allowed_networks && body.allowed_networks[Number(at[1])] !== undefined) {
        fieldError(f, 'pool.policy.error.cidr', { value: body.allowed_networks[Number(at[1])] });
        alert.show('pool.policy.error.fix');
      } else if (f) {
        fieldError(f, 'pool.policy.error.server', { detail: e.message });
        alert.show('pool.policy.error.fix');
      } else {
        alert.showError(e, SHOW_MESSAGE);
      }
    } finally {
      saving = false;
      done();
      showDirty();
    }
  });

  async function load() {
    try {
      fill(await api.get(`/pools/${id}/policy`));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return; // the pool is gone: the page says so
      alert.showError(e, SHOW_MESSAGE);
    }
  }

  return {
    el,
    load,
    // a refreshed pool: its type, and its policy while nothing has been typed here
    sync(pool) {
      if (pool.type !== poolType) {
        poolType = pool.type;
        const floating = pool.type === 'floating';
        inputs.refresh_on_logoff.disabled = !canEdit || !floating;
        setText(form.querySelector('[data-role=refresh_on_logoff-hint]'), floating ? 'pool.policy.refresh_on_logoff_hint' : 'pool.policy.refresh_on_logoff_dedicated');
      }
      if (!policy || saving || dirty()) return;
      if (pool.policy) {
        if (JSON.stringify(pool.policy) !== JSON.stringify(policy)) fill(pool.policy);
        return;
      }
      // a pool answer without its policy: ask for it (kept only if nothing was typed meanwhile)
      const seen = raw();
      api.get(`/pools/${id}/policy`).then((p) => {
        if (!saving && raw() === seen && JSON.stringify(p) !== JSON.stringify(policy)) fill(p);
      }).catch(() => {});
    },
  };
}

// ---- one pool -----------------------------------------------------------------------------------

function poolPage(page, id, ctx) {
  const alert = alertBox();
  const live = liveBadge();
  const crumbBox = h('div');
  const head = h('div', { class: 'page-head pool-head' });
  const banners = h('div', { class: 'pool-banners', 'data-role': 'banners' });
  const progress = h('section', { class: 'card pool-progress-card', 'data-card': 'progress' });
  const placementBox = h('div', { class: 'placement', 'data-role': 'placement' }, h('p', { class: 'muted', i18n: 'list.loading' }));
  const placementAlert = alertBox();
  const props = h('dl', { class: 'props', 'data-role': 'settings' });
  const entList = h('ul', { class: 'member-list ent-list', 'data-role': 'entitlements' });
  const entAlert = alertBox();
  const entResults = h('ul', { class: 'member-list member-results', 'data-role': 'ent-results' });
  const entCount = h('span', { class: 'card-count', 'data-role': 'ent-count' });
  const deskCount = h('span', { class: 'card-count', 'data-role': 'desktop-count' });
  const deskTable = dataTable([
    { key: 'pool.desktops.col.name', class: 'col-name', noLabel: true },
    { key: 'pool.desktops.col.server', class: 'col-server' },
    { key: 'pool.desktops.col.phase', class: 'col-state' },
    { key: 'pool.desktops.col.state', class: 'col-hvstate' },
    { key: 'pool.desktops.col.error', class: 'col-error' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'pool-desktops');
  const deskPager = new Pager(DESKTOPS_PAGE, () => {
    deskQuiet = false;
    poller.now();
  });
  const deskOnly = latest();
  let deskQuiet = false;
  let pool = null;
  let entitlements = [];
  const entOnly = latest();
  let lastResults = [];
  const finder = searchBox('pool.ent.search', (v) => findPrincipals(v), 'ent-search');
  const policy = policyPanel(id, !!(ctx && ctx.user && ctx.user.role === 'admin'));
  // the spec of the pool (for its NIC type), loaded again when the pool gets another spec
  let spec = null;
  // one desktop's details (#/pools/3?desktop=12): its id, and whether to scroll to them
  const deskCard = h('section', { class: 'card detail-card desk-detail', 'data-card': 'desktop', hidden: true });
  let focusId = Number(hashQuery().get('desktop')) || null;
  let focusScroll = !!focusId;

  page.append(crumbBox, head, alert.el, banners, deskCard, progress,
    h('div', { class: 'pool-grid' },
      h('section', { class: 'card detail-card', 'data-card': 'placement' },
        cardHead('pool.placement.title', 'server',
          h('button', { type: 'button', class: 'icon-btn', 'data-action': 'placement-refresh', i18nLabel: 'pool.placement.refresh', i18nTitle: 'pool.placement.refresh', onclick: () => loadPlacement() }, icon('refresh'))),
        placementAlert.el, placementBox),
      h('section', { class: 'card detail-card', 'data-card': 'entitlements' },
        cardHead('pool.ent.title', 'users', null, entCount),
        h('div', { class: 'ent-body' },
          h('p', { class: 'field-hint', i18n: 'pool.ent.hint' }),
          entAlert.el, finder.el, entResults, entList)),
      h('section', { class: 'card detail-card', 'data-card': 'settings' },
        cardHead('pool.settings.title', 'wrench'), props)),
    policy.el,
    h('section', { class: 'card detail-card pool-desktops', 'data-card': 'desktops' },
      cardHead('pool.desktops.title', 'monitor', null, deskCount),
      deskTable.el, deskPager.el));

  const poller = new Poller(page, refresh, () => (pool && isWorking(pool) ? LIVE_MS : DETAIL_IDLE_MS));
  poller.now();
  loadEntitlements();
  policy.load();
  return () => poller.stop();

  async function refresh() {
    try {
      pool = await api.get('/pools/' + id);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        poller.stop();
        notFoundCard(page, 'pool.missing.title', 'pool.missing.text', '#/pools', 'pool.back', 'monitor');
        return;
      }
      alert.showError(e, SHOW_MESSAGE);
      live.stale();
      return;
    }
    alert.hide();
    renderHead();
    renderBanners();
    renderProgress();
    await loadSpec();
    renderSettings();
    policy.sync(pool);
    await Promise.all([loadDesktops(), loadPlacement(), loadFocus()]);
    live.mark();
  }

  async function loadSpec() {
    if (spec && spec.id === pool.spec_id) return;
    try {
      spec = await api.get('/specs/' + pool.spec_id);
    } catch (e) {
      spec = null; // the settings show the spec's name without its NIC type
    }
  }

  // ---- head, banners, progress, settings ----
  function renderHead() {
    const p = pool;
    clear(crumbBox).append(crumbs('#/pools', 'nav.pools', p.name));
    const focused = document.activeElement && head.contains(document.activeElement) ? document.activeElement.getAttribute('data-action') : null;
    const deleting = p.state === 'deleting';
    const pauseBtn = p.state === 'paused'
      ? button('pool.resume', { variant: 'primary', icon: 'play', action: 'resume', onclick: () => resume() })
      : button('pool.pause', { variant: 'warning', icon: 'power', action: 'pause', onclick: () => pause() });
    const editBtn = button('pool.edit', { icon: 'edit', action: 'edit-pool', onclick: () => editDialog() });
    const specBtn = button('pool.change_spec', { icon: 'cpu', action: 'change-spec', onclick: () => specDialog() });
    const delBtn = button('pool.delete', { icon: 'trash', variant: 'danger-ghost', action: 'delete-pool', onclick: () => deletePool() });
    for (const b of [pauseBtn, editBtn, specBtn, delBtn]) b.disabled = deleting;
    clear(head).append(
      h('div', { class: 'server-title' },
        h('span', { class: ['server-title-icon', 'image-icon', 'image-icon-lg', 'pool-icon', 'pool-icon-' + p.state] }, icon('monitor')),
        h('div', { class: 'title-text' },
          h('h1', { class: 'page-title', 'data-role': 'pool-name', text: p.name }),
          h('p', { class: 'page-subtitle' }, poolStateBadge(p.state), typeBadge(p.type),
            p.description ? h('span', { class: 'muted', text: p.description }) : null))),
      h('div', { class: 'page-actions' }, live.el, pauseBtn, editBtn, specBtn, delBtn));
    if (focused) {
      const again = head.querySelector(`[data-action="${focused}"]`);
      if (again) again.focus();
    }
  }

  function renderBanners() {
    const p = pool;
    clear(banners);
    if (p.state === 'deleting') {
      banners.append(h('div', { class: 'alert alert-warning pool-banner', 'data-role': 'deleting-banner' },
        h('span', { class: 'alert-icon' }, icon('trash')), h('span', { class: 'alert-text', i18n: 'pool.banner.deleting' })));
    }
    if (p.state === 'paused') {
      banners.append(h('div', { class: 'alert alert-warning pool-banner', role: 'status', 'data-role': 'pause-banner' },
        h('span', { class: 'alert-icon' }, icon('power')),
        h('div', { class: 'alert-text' },
          h('strong', { class: 'banner-title', i18n: 'pool.banner.paused' }),
          h('span', { class: 'banner-detail', 'data-role': 'pause-reason', text: p.pause_reason || '' }, p.pause_reason ? null : h('span', { i18n: 'pool.banner.no_reason' }))),
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'resume-banner', onclick: () => resume() }, icon('play'), h('span', { i18n: 'pool.resume' }))));
    }
    if (p.last_error) {
      banners.append(h('div', { class: 'alert alert-error pool-banner', role: 'alert', 'data-role': 'error-banner' },
        h('span', { class: 'alert-icon' }, icon('alert')),
        h('div', { class: 'alert-text' },
          h('strong', { class: 'banner-title', i18n: p.failures ? 'pool.banner.error_n' : 'pool.banner.error', i18nArgs: { n: formatNumber(p.failures || 0) } }),
          h('span', { class: 'banner-detail', 'data-role': 'last-error', text: p.last_error }))));
    }
  }

  function renderProgress() {
    const p = pool;
    const c = counts(p);
    const target = poolTarget(p);
    const starting = c.pending + c.provisioning;
    const legend = [
      chip('ok', 'pools.count.ready', c.ready, 'ready'),
      starting ? chip('maint', 'pools.count.provisioning', starting, 'provisioning') : null,
      c.refreshing ? chip('idle', 'pools.count.refreshing', c.refreshing, 'refreshing') : null,
      c.resizing ? chip('idle', 'pools.count.resizing', c.resizing, 'resizing') : null,
      c.deleting ? chip('idle', 'pools.count.deleting', c.deleting, 'deleting') : null,
      c.error ? chip('bad', 'pools.count.error', c.error, 'error') : null,
    ];
    const done = target > 0 && c.ready >= target;
    clear(progress).append(
      h('div', { class: 'pool-progress-head' },
        h('div', { class: 'pool-progress-title' },
          h('span', { class: 'tile-label', i18n: 'pool.progress.title' }),
          h('span', { class: 'pool-progress-value', 'data-role': 'progress-text' },
            h('strong', { text: formatNumber(c.ready) }), h('span', { class: 'cap-of', text: ' / ' + formatNumber(target) }),
            h('span', { class: 'cap-unit', i18n: 'pool.progress.ready_of_target' }))),
        h('div', { class: 'pool-progress-side' },
          h('span', { class: 'muted', i18n: 'pool.progress.sizes', i18nArgs: { total: formatNumber(c.total), min: formatNumber(p.min_size), max: formatNumber(p.max_size), spare: formatNumber(p.spare || 0) } }),
          h('span', { class: 'muted', i18n: 'pool.progress.usage', i18nArgs: { running: formatNumber(c.running), assigned: formatNumber(c.assigned) } }))),
      progressBar(c.ready, target, done ? 'is-done' : null),
      h('div', { class: 'pool-chips' }, legend),
      h('p', { class: 'field-hint pool-reconciled' },
        h('span', { i18n: 'pool.progress.reconciled' }), ' ', ago(p.reconciled_at)));
    progress.setAttribute('data-ready', String(c.ready));
    progress.setAttribute('data-target', String(target));
  }

  function renderSettings() {
    const p = pool;
    clear(props).append(...[
      ['pool.prop.type', h('span', { i18n: 'pool.type.' + p.type })],
      ['pool.prop.image', h('a', { href: '#/images/' + p.image_id, text: p.image_name || '#' + p.image_id })],
      ['pool.prop.spec', h('a', { href: '#/specs', text: p.spec_name || '#' + p.spec_id })],
      ['pool.prop.sizes', h('span', { i18n: 'pools.size', i18nArgs: { min: formatNumber(p.min_size), max: formatNumber(p.max_size), spare: formatNumber(p.spare || 0) } })],
      ['pool.prop.pattern', h('code', { class: 'mono', text: p.name_pattern })],
      ['pool.prop.placement', h('span', { i18n: 'placement.' + p.placement })],
      ['pool.prop.nic', spec ? nicBadge(spec.nic_type) : h('span', { class: 'muted', text: '—' }), 'pool-nic'],
      ['pool.prop.vlan', vlanOf(p) === null ? h('span', { class: 'muted', i18n: 'pool.prop.vlan_none' }) : h('span', { class: 'mono', text: String(vlanOf(p)) }), 'pool-vlan'],
      ['pool.prop.fallback', h('span', {
        class: spec && spec.nic_type !== 'sriov' ? 'muted' : null,
        i18n: spec && spec.nic_type !== 'sriov' ? 'pool.prop.fallback_moot' : p.nic_fallback ? 'pool.prop.fallback_on' : 'pool.prop.fallback_off',
      }), 'pool-fallback'],
      ['pool.prop.modules', h('span', { class: 'module-chips', 'data-role': 'pool-modules' },
        (p.modules || []).length ? p.modules.map((m) => h('a', { class: 'chip', href: '#/servers?module=' + m.id, 'data-module': m.name, text: m.name })) : h('span', { class: 'muted', i18n: 'pool.prop.no_modules' }))],
      ['pool.prop.created', h('span', { date: p.created_at })],
    ].map(([k, v, role]) => h('div', { class: 'prop', 'data-role': role || null }, h('dt', { i18n: k }), h('dd', null, v))));
  }

  // ---- placement preview ----
  async function loadPlacement() {
    let pl;
    try {
      pl = await api.get(`/pools/${id}/placement`);
    } catch (e) {
      placementAlert.showError(e, SHOW_MESSAGE);
      return;
    }
    placementAlert.hide();
    placementBox.setAttribute('data-fits', String(!!pl.fits));
    clear(placementBox).append(pl.fits
      ? h('div', { class: 'placement-row is-ok' },
        h('span', { class: 'placement-icon' }, icon('check')),
        h('div', { class: 'user-cell-text' },
          h('span', { class: 'placement-title', i18n: 'pool.placement.fits' }),
          h('a', { class: 'user-cell-name', href: '#/servers/' + pl.server_id, 'data-role': 'placement-server', text: pl.hostname || '#' + pl.server_id }),
          pl.reason ? h('span', { class: 'user-cell-sub', 'data-role': 'placement-reason', text: pl.reason }) : null))
      : h('div', { class: 'placement-row is-blocked' },
        h('span', { class: 'placement-icon' }, icon('alert')),
        h('div', { class: 'user-cell-text' },
          h('span', { class: 'placement-title', i18n: 'pool.placement.blocked' }),
          h('span', { class: 'placement-reason', 'data-role': 'placement-reason', text: pl.reason || '' }))));
  }

  // ---- desktops ----
  async function loadDesktops() {
    const data = await loadPage({
      table: deskTable, pager: deskPager, only: deskOnly, quiet: deskQuiet,
      fetch: async () => {
        const d = await api.get(`/pools/${id}/desktops`, deskPager.params());
        return { ...d, next_after: nextCursor(d) };
      },
      row: desktopRow,
      keyed: { key: (d) => d.id, sig: (d) => JSON.stringify([d.name, d.phase, d.state, d.phase_error, d.hostname, d.present, d.vcpus, d.memory_mib, d.assigned_user_id, d.nic, d.nic_type, d.id === focusId]) },
      emptyKey: 'pool.desktops.empty',
      emptyIcon: 'monitor',
      infoKey: 'list.page',
    });
    deskQuiet = true;
    if (pool) deskCount.textContent = formatNumber(counts(pool).total);
    return data;
  }

  function desktopRow(d) {
    const moving = ['pending', 'provisioning', 'refreshing', 'resizing', 'deleting'].includes(d.phase);
    const refreshBtn = h('button', {
      type: 'button', class: 'icon-btn', 'data-action': 'refresh-desktop', i18nLabel: 'pool.desktop.refresh', i18nTitle: 'pool.desktop.refresh',
      disabled: moving, onclick: () => refreshDesktop(d),
    }, icon('refresh'));
    const delBtn = h('button', {
      type: 'button', class: 'icon-btn icon-btn-danger', 'data-action': 'delete-desktop', i18nLabel: 'pool.desktop.delete', i18nTitle: 'pool.desktop.delete',
      disabled: d.phase === 'deleting', onclick: () => deleteDesktop(d),
    }, icon('trash'));
    const size = d.vcpus ? h('span', { i18n: 'desktop.size', i18nArgs: { vcpus: formatNumber(d.vcpus), mem: fmtMiB(d.memory_mib) } }) : null;
    const resizePending = d.spec_vcpus && d.vcpus && (d.spec_vcpus !== d.vcpus || d.spec_memory_mib !== d.memory_mib);
    return deskTable.row([
      h('div', { class: 'desk-cell' },
        h('span', { class: 'desk-icon', 'aria-hidden': 'true' }, icon('monitor')),
        h('div', { class: 'user-cell-text' },
          h('a', { class: 'user-cell-name desk-link', href: `#/pools/${id}?desktop=${d.id}`, 'data-action': 'open-desktop', text: d.name, onclick: (ev) => openDesktop(ev, d.id) }),
          h('span', { class: 'user-cell-sub' }, size,
            resizePending ? h('span', { class: 'muted', i18n: 'pool.desktop.spec_to', i18nArgs: { vcpus: formatNumber(d.spec_vcpus), mem: fmtMiB(d.spec_memory_mib) } }) : null,
            d.uuid ? h('span', { class: 'mono', title: d.uuid, text: (size ? ' · ' : '') + d.uuid.slice(0, 8) }) : null),
          desktopNic(d))),
      d.server_id ? h('a', { class: 'strong', href: '#/servers/' + d.server_id, text: d.hostname || '#' + d.server_id }) : h('span', { class: 'muted', i18n: 'pool.desktop.unplaced' }),
      phaseBadge(d.phase),
      d.state && d.present !== false ? desktopStateBadge(d.state) : h('span', { class: 'muted', i18n: 'pool.desktop.not_present' }),
      d.phase_error ? h('span', { class: 'task-error-text is-failed', 'data-role': 'phase-error', title: d.phase_error, text: d.phase_error }) : h('span', { class: 'muted no-value', text: '—' }),
      h('div', { class: 'row-actions' }, refreshBtn, delBtn),
    ], { 'data-desktop': d.name, 'data-desktop-id': String(d.id), 'data-phase': d.phase || '', 'data-state': d.state || '', class: d.id === focusId ? 'is-selected' : null });
  }

  // ---- one desktop's details ----
  function openDesktop(ev, did) {
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return; // a new tab
    ev.preventDefault();
    focusId = did;
    focusScroll = true;
    setHashQuery({ desktop: did });
    markSelected();
    loadFocus();
  }

  function closeDesktop() {
    focusId = null;
    setHashQuery({});
    deskCard.hidden = true;
    clear(deskCard);
    markSelected();
  }

  function markSelected() {
    for (const tr of deskTable.body.children) tr.classList.toggle('is-selected', tr.bicKey === focusId);
  }

  async function loadFocus() {
    if (!focusId) return;
    const want = focusId;
    let d = null;
    try {
      d = await api.get('/desktops/' + want);
    } catch (e) {
      if (want !== focusId) return;
      if (e instanceof ApiError && e.status === 404) renderFocusMissing();
      else {
        const a = alertBox();
        a.showError(e, SHOW_MESSAGE);
        clear(deskCard).append(deskHead(null), a.el);
        deskCard.hidden = false;
      }
      return;
    }
    if (want !== focusId) return;
    renderFocus(d);
  }

  function deskHead(d) {
    return h('header', { class: 'card-head' },
      h('h2', { class: 'card-title' }, icon('monitor'),
        d ? h('span', { i18n: 'pool.desk.title', i18nArgs: { name: d.name } }) : h('span', { i18n: 'pool.desk.title_unknown' })),
      h('button', { type: 'button', class: 'icon-btn', 'data-action': 'close-desktop', i18nLabel: 'common.close', i18nTitle: 'common.close', onclick: () => closeDesktop() }, icon('x')));
  }

  function renderFocusMissing() {
    clear(deskCard).append(deskHead(null),
      h('p', { class: 'task-empty', 'data-role': 'desktop-missing', i18n: 'pool.desk.missing' }));
    deskCard.hidden = false;
    deskCard.removeAttribute('data-desktop-id');
  }

  function renderFocus(d) {
    const n = d.nic || null;
    const vf = n && n.type === 'sriov' ? n.vf : null;
    const hasVlan = n && n.vlan !== null && n.vlan !== undefined;
    const other = d.pool_id !== null && d.pool_id !== undefined && d.pool_id !== id;
    const rows = [
      ['pool.desk.server', d.server_id ? h('a', { href: '#/servers/' + d.server_id, text: d.hostname || '#' + d.server_id }) : h('span', { class: 'muted', i18n: 'pool.desktop.unplaced' })],
      ['pool.desk.phase', phaseBadge(d.phase)],
      ['pool.desk.power', d.state && d.present !== false ? desktopStateBadge(d.state) : h('span', { class: 'muted', i18n: 'pool.desktop.not_present' })],
      ['pool.desk.size', d.vcpus ? h('span', null, h('span', { i18n: 'desktop.size', i18nArgs: { vcpus: formatNumber(d.vcpus), mem: fmtMiB(d.memory_mib) } }),
        d.spec_disk_gib ? h('span', { class: 'muted', text: ' · ' + fmtGiB(d.spec_disk_gib) }) : null) : h('span', { class: 'muted', text: '—' })],
      ['pool.desk.nic', n ? nicBadge(n.type) : d.nic_type ? nicBadge(d.nic_type) : h('span', { class: 'muted', text: '—' }), 'desk-nic'],
      vf ? ['pool.desk.vf', vfName(vf), 'desk-vf'] : null,
      vf ? ['pool.desk.vf_pci', h('span', { class: 'mono', text: vf.pci || '—' }), 'desk-vf-pci'] : null,
      ['pool.desk.mac', n && n.mac ? h('span', { class: 'mono', text: n.mac }) : h('span', { class: 'muted', text: '—' }), 'desk-mac'],
      ['pool.desk.vlan', hasVlan ? h('span', { class: 'mono', text: String(n.vlan) }) : h('span', { class: 'muted', i18n: 'pool.prop.vlan_none' }), 'desk-vlan'],
      ['pool.desk.uuid', d.uuid ? h('span', { class: 'mono', text: d.uuid }) : h('span', { class: 'muted', text: '—' })],
      ['pool.desk.created', h('span', { date: d.created_at || '' })],
    ].filter(Boolean);
    clear(deskCard).append(...[deskHead(d),
      other ? h('p', { class: 'field-hint desk-other' }, h('span', { i18n: 'pool.desk.other_pool' }), ' ',
        h('a', { href: `#/pools/${d.pool_id}?desktop=${d.id}`, text: d.pool_name || '#' + d.pool_id })) : null,
      n && n.note ? h('div', { class: 'alert alert-warning desk-note', role: 'status', 'data-role': 'desk-note' },
        h('span', { class: 'alert-icon' }, icon('alert')),
        h('div', { class: 'alert-text' }, h('strong', { class: 'banner-title', i18n: 'pool.desk.note' }), h('span', { class: 'banner-detail', text: n.note }))) : null,
      d.phase_error ? h('p', { class: 'task-error desk-error', 'data-role': 'desk-error' }, icon('alert'), h('span', { text: d.phase_error })) : null,
      h('dl', { class: 'props desk-props', 'data-role': 'desktop-props' },
        rows.map(([k, v, role]) => h('div', { class: 'prop', 'data-role': role || null }, h('dt', { i18n: k }), h('dd', null, v))))].filter(Boolean));
    deskCard.setAttribute('data-desktop-id', String(d.id));
    deskCard.hidden = false;
    if (focusScroll) {
      focusScroll = false;
      deskCard.scrollIntoView({ block: 'start' });
    }
  }

  async function refreshDesktop(d) {
    const ok = await confirmDialog({
      title: 'pool.desktop.refresh.title', titleArgs: { name: d.name },
      text: 'pool.desktop.refresh.text', textArgs: { name: d.name, image: pool.image_name || '' },
      confirmKey: 'pool.desktop.refresh', danger: true, busyKey: 'common.sending', errors: SHOW_MESSAGE,
      action: () => api.post(`/desktops/${d.id}/refresh`),
    });
    if (!ok) return;
    toast('pool.desktop.refreshing', { name: d.name });
    poller.now();
  }

  async function deleteDesktop(d) {
    const ok = await confirmDialog({
      title: 'pool.desktop.delete.title', titleArgs: { name: d.name },
      text: 'pool.desktop.delete.text', textArgs: { name: d.name },
      confirmKey: 'pool.desktop.delete', danger: true, busyKey: 'common.sending', errors: SHOW_MESSAGE,
      action: () => api.del(`/desktops/${d.id}`),
    });
    if (!ok) return;
    toast('pool.desktop.deleting', { name: d.name });
    poller.now();
  }

  // ---- pause, resume, edit, spec, delete ----
  function pause() {
    const reason = h('textarea', { name: 'reason', maxlength: '255', rows: '3' });
    dialog({
      name: 'pause-pool',
      title: 'pool.pause.title', titleArgs: { name: pool.name },
      intro: 'pool.pause.text',
      submitKey: 'pool.pause', busyKey: 'common.sending', errors: SHOW_MESSAGE,
      body: [field('pool.pause.reason', reason, { optional: true, hint: 'pool.pause.reason_hint' })],
      onSubmit: async () => {
        const r = reason.value.trim();
        pool = await api.post(`/pools/${id}/pause`, r ? { reason: r } : {});
        toast('pool.paused', { name: pool.name });
        poller.now();
        return true;
      },
    });
  }

  async function resume() {
    const ok = await confirmDialog({
      title: 'pool.resume.title', titleArgs: { name: pool.name },
      text: 'pool.resume.text', confirmKey: 'pool.resume', busyKey: 'common.sending', errors: SHOW_MESSAGE,
      action: async () => {
        pool = await api.post(`/pools/${id}/resume`);
      },
    });
    if (!ok) return;
    toast('pool.resumed', { name: pool.name });
    poller.now();
  }

  function editDialog() {
    const p = pool;
    const desc = h('input', { type: 'text', name: 'description', maxlength: '255', autocomplete: 'off', value: p.description || '' });
    const minI = numberInput('min_size', p.min_size, 0, MAX_POOL_SIZE);
    const maxI = numberInput('max_size', p.max_size, 0, MAX_POOL_SIZE);
    const spareI = numberInput('spare', p.spare || 0, 0, MAX_POOL_SIZE);
    const placement = h('select', { name: 'placement' }, PLACEMENTS.map((x) => h('option', { value: x, i18n: 'placement.' + x })));
    placement.value = p.placement;
    const image = imageSelect(p.image_id);
    const modules = modulePicker((p.modules || []).map((m) => m.id));
    const net = networkFields(p, 'edit-pool');
    net.setNicType(spec && spec.id === p.spec_id ? spec.nic_type : null);
    dialog({
      name: 'edit-pool',
      wide: true,
      title: 'pool.edit.title', titleArgs: { name: p.name },
      submitKey: 'common.save', errors: SHOW_MESSAGE,
      body: [
        h('div', { class: 'field-row field-row-3' },
          field('pools.field.min', minI, { hint: 'pools.field.min_hint' }),
          field('pools.field.max', maxI, { hint: 'pools.field.max_hint' }),
          field('pools.field.spare', spareI, { hint: 'pools.field.spare_hint' })),
        h('div', { class: 'field-row' },
          field('pools.field.placement', placement),
          h('div', { class: 'field' }, h('label', { for: 'edit-pool-image' }, h('span', { i18n: 'pools.field.image' })), Object.assign(image.el, { id: 'edit-pool-image' }),
            h('p', { class: 'field-hint', i18n: 'pool.edit.image_hint' }))),
        net.el,
        h('div', { class: 'field' }, h('span', { class: 'field-label', i18n: 'pools.field.modules' }), modules.el),
        field('pools.field.description', desc, { optional: true }),
      ],
      onSubmit: async (form, alert) => {
        const sizes = readSizes(alert, minI, maxI, spareI);
        if (!sizes) return false;
        const network = net.read(alert);
        if (!network) return false;
        const mods = modules.ids();
        if (!mods.length) {
          alert.show('pools.error.modules');
          return false;
        }
        const body = { description: desc.value.trim(), ...sizes, placement: placement.value, modules: mods };
        if (image.el.value && Number(image.el.value) !== p.image_id) body.image_id = Number(image.el.value);
        if (network.vlan !== vlanOf(p)) body.vlan = network.vlan;
        if (network.nic_fallback !== !!p.nic_fallback) body.nic_fallback = network.nic_fallback;
        pool = await api.patch('/pools/' + id, body);
        toast('pool.saved', { name: p.name });
        poller.now();
        return true;
      },
    });
  }

  function specDialog() {
    const p = pool;
    const spec = specSelect(p.spec_id);
    const total = counts(p).total;
    const resize = h('input', { type: 'checkbox', name: 'resize_now', checked: total > 0, disabled: total === 0 });
    const detail = h('div', { class: 'spec-detail', 'data-role': 'spec-detail' });
    let specs = [];
    const show = () => {
      const s = specs.find((x) => String(x.id) === spec.el.value);
      clear(detail);
      if (s) detail.append(specSummary(s), nicBadge(s.nic_type));
    };
    spec.ready.then((items) => {
      specs = items;
      show();
    }).catch(() => {});
    spec.el.addEventListener('change', show);
    dialog({
      name: 'pool-spec',
      title: 'pool.spec.title', titleArgs: { name: p.name },
      intro: 'pool.spec.intro',
      submitKey: 'pool.spec.submit', busyKey: 'common.sending', errors: SHOW_MESSAGE,
      body: [
        field('pools.field.spec', spec.el),
        detail,
        h('label', { class: 'checkbox check-block' }, resize,
          h('span', { i18n: 'pool.spec.resize_now', i18nArgs: { n: formatNumber(total) } })),
        h('p', { class: 'field-hint', i18n: 'pool.spec.hint' }),
      ],
      onSubmit: async (form, alert) => {
        const s = specs.find((x) => String(x.id) === spec.el.value);
        if (!s) {
          alert.show('pools.error.spec');
          return false;
        }
        if (s.id !== p.spec_id) pool = await api.patch('/pools/' + id, { spec_id: s.id });
        if (resize.checked && !resize.disabled) {
          const out = await api.post(`/pools/${id}/spec`, { vcpus: s.vcpus, memory_mib: s.memory_mib });
          toast('pool.spec.resizing', { n: formatNumber(out && out.desktops !== undefined ? out.desktops : 0), name: p.name });
        } else {
          toast('pool.spec.saved', { name: p.name, spec: s.name });
        }
        poller.now();
        return true;
      },
    });
  }

  function deletePool() {
    const p = pool;
    const confirmName = h('input', { type: 'text', name: 'confirm_name', autocomplete: 'off', spellcheck: 'false' });
    const nameField = field('pool.delete.type_name', confirmName);
    nameField.append(h('p', { class: 'field-hint', i18n: 'pool.delete.type_hint', i18nArgs: { name: p.name } }));
    dialog({
      name: 'delete-pool',
      title: 'pool.delete.title', titleArgs: { name: p.name },
      intro: 'pool.delete.text', introArgs: { name: p.name, n: formatNumber(counts(p).total) },
      submitKey: 'pool.delete', danger: true, busyKey: 'common.sending', errors: SHOW_MESSAGE,
      body: [nameField],
      onSubmit: async (form, alert) => {
        if (confirmName.value.trim() !== p.name) {
          alert.show('pool.delete.mismatch', { name: p.name });
          confirmName.focus();
          return false;
        }
        pool = (await api.del('/pools/' + id)) || pool;
        toast('pool.deleting', { name: p.name });
        poller.now();
        return true;
      },
    });
  }

  // ---- entitlements ----
  async function loadEntitlements() {
    try {
      const data = await api.get(`/pools/${id}/entitlements`);
      entitlements = data.items || [];
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) entAlert.showError(e, SHOW_MESSAGE);
      return;
    }
    renderEntitlements();
  }

  function entKey(kind, name) {
    return kind + ':' + name;
  }

  function isEntitled(kind, pid) {
    return entitlements.some((e) => (kind === 'user' ? e.user_id === pid : e.group_id === pid));
  }

  function renderEntitlements() {
    entCount.textContent = formatNumber(entitlements.length);
    clear(entList).append(...entitlements.map((e) => {
      const kind = e.user_id ? 'user' : 'group';
      const name = kind === 'user' ? e.username : e.group_name;
      const rm = h('button', { type: 'button', class: 'btn btn-danger-ghost btn-sm', 'data-action': 'remove-entitlement' },
        icon('x'), h('span', { i18n: 'pool.ent.remove' }));
      rm.addEventListener('click', () => removeEntitlement(e, kind, name));
      return h('li', { class: 'member-item', 'data-entitlement': entKey(kind, name) },
        principalCell(kind, name, null), rm);
    }));
    if (!entitlements.length) entList.append(h('li', { class: 'member-empty', i18n: 'pool.ent.empty' }));
    refreshResults();
  }

  // A user (avatar, name, username) or a group (icon, name, "Group").
  function principalCell(kind, name, display) {
    if (kind === 'user') {
      return h('div', { class: 'user-cell' },
        h('span', { class: 'avatar avatar-sm', 'aria-hidden': 'true', text: initials(display || name) }),
        h('div', { class: 'user-cell-text' },
          h('span', { class: 'user-cell-name', text: display || name }),
          display ? h('span', { class: 'user-cell-sub', text: name }) : h('span', { class: 'user-cell-sub', i18n: 'pool.ent.user' })));
    }
    return h('div', { class: 'group-cell' },
      h('span', { class: 'group-icon', 'aria-hidden': 'true' }, icon('group')),
      h('div', { class: 'user-cell-text' },
        h('span', { class: 'group-name', text: name }),
        h('span', { class: 'user-cell-sub', i18n: 'pool.ent.group' })));
  }

  async function removeEntitlement(e, kind, name) {
    const ok = await confirmDialog({
      title: 'pool.ent.remove.title', titleArgs: { name },
      text: kind === 'user' ? 'pool.ent.remove.user_text' : 'pool.ent.remove.group_text', textArgs: { name, pool: pool ? pool.name : '' },
      confirmKey: 'pool.ent.remove', danger: true, busyKey: 'common.sending', errors: SHOW_MESSAGE,
      action: () => api.del(`/pools/${id}/entitlements/${kind === 'user' ? 'users' : 'groups'}/${kind === 'user' ? e.user_id : e.group_id}`),
    });
    if (!ok) return;
    toast('pool.ent.removed', { name });
    await loadEntitlements();
  }

  async function findPrincipals(v) {
    entAlert.hide();
    if (!v) {
      lastResults = [];
      clear(entResults);
      return;
    }
    let res;
    try {
      res = await entOnly(() => Promise.all([api.get('/users', { q: v, limit: 6 }), api.get('/groups', { q: v, limit: 6 })]));
    } catch (e) {
      entAlert.showError(e, SHOW_MESSAGE);
      return;
    }
    if (!res.current) return;
    const [users, groups] = res.value;
    lastResults = [
      ...(groups.items || []).map((g) => ({ kind: 'group', id: g.id, name: g.name })),
      ...(users.items || []).map((u) => ({ kind: 'user', id: u.id, name: u.username, display: u.display_name })),
    ];
    refreshResults();
  }

  function refreshResults() {
    clear(entResults);
    if (!finder.input.value.trim()) return;
    if (!lastResults.length) {
      entResults.append(h('li', { class: 'member-empty', i18n: 'pool.ent.no_results' }));
      return;
    }
    for (const r of lastResults) {
      const li = h('li', { class: 'member-item', 'data-result': entKey(r.kind, r.name) }, principalCell(r.kind, r.name, r.display));
      if (isEntitled(r.kind, r.id)) {
        li.append(h('span', { class: 'badge badge-success' }, icon('check'), h('span', { i18n: 'pool.ent.already' })));
      } else {
        const add = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'add-entitlement' },
          icon('plus'), h('span', { i18n: 'pool.ent.add' }));
        add.addEventListener('click', async () => {
          entAlert.hide();
          const done = busy(add);
          try {
            await api.put(`/pools/${id}/entitlements/${r.kind === 'user' ? 'users' : 'groups'}/${r.id}`);
          } catch (e) {
            done();
            entAlert.showError(e, SHOW_MESSAGE);
            return;
          }
          toast('pool.ent.added', { name: r.name });
          await loadEntitlements();
        });
        li.append(add);
      }
      entResults.append(li);
    }
  }
}
