// Automation (docs/automation.md): per module, what the CCC loops did and plan to do, with their
// switches and thresholds. Tabs: Recovery (automation-recovery.js), Power (power control: the
// settings, the servers' power states, the plan now; power a server on or off by hand), Balancing
// (resource balancing: the loads the balancer sees, the spread, the moves it would make) and the
// Action log (every loop's actions, newest first). The plan refreshes every 5 s while visible.
import * as api from '/common/api.js';
import { h, icon, clear, field, confirmDialog, toast, button, alertBox, busy } from '/common/ui.js';
import { pageHead, dataTable } from './lists.js';
import { recoveryTab } from './automation-recovery.js';
import './automation-i18n.js';

const REFRESH_MS = 5000;
const TABS = ['recovery', 'power', 'balance', 'log'];
const POWER_BADGE = { on: 'badge-success', off: 'badge-neutral', waking: 'badge-info', powering_off: 'badge-warning' };
const ACTION_BADGE = { planned: 'badge-info', running: 'badge-info', done: 'badge-success', failed: 'badge-danger', skipped: 'badge-neutral' };

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function stateBadge(state) {
  return h('span', { class: ['badge', ACTION_BADGE[state] || 'badge-neutral'], 'data-action-state': state, i18n: 'auto.state.' + state });
}

function actionRow(table, a, hosts) {
  const host = (id) => (id ? (hosts[id] || '#' + id) : '');
  return table.row([
    h('span', { class: 'muted-strong', text: when(a.created_at) }),
    h('span', { class: 'badge badge-neutral', text: (a.loop ? a.loop + ' · ' : '') + a.action }),
    stateBadge(a.state),
    h('span', { text: host(a.server_id) + (a.target_server_id ? ' → ' + host(a.target_server_id) : '') + (a.desktop_id ? ' · #' + a.desktop_id : '') }),
    h('span', { class: 'muted', text: (a.dry_run ? '[dry run] ' : '') + (a.reason || '') }),
  ], { 'data-action-id': String(a.id), 'data-action': a.action });
}

// A settings form from a list of [name, kind, min, max] (kind: bool, int, text, choice:<a|b>).
function settingsForm(role, fields, values, admin, onSave) {
  const form = h('form', { class: 'card form-card', 'data-role': role, novalidate: true });
  const inputs = {};
  const rows = fields.map(([name, kind, min, max]) => {
    let input;
    if (kind === 'bool') {
      input = h('input', { type: 'checkbox', name, checked: !!values[name], disabled: !admin });
      inputs[name] = input;
      return h('label', { class: 'check-block' }, input, h('span', { i18n: 'auto.field.' + name }));
    }
    if (kind.startsWith('choice:')) {
      input = h('select', { name, disabled: !admin },
        kind.slice(7).split('|').map((v) => h('option', { value: v, selected: values[name] === v, text: v })));
    } else if (kind === 'text') {
      input = h('input', { type: 'text', name, value: values[name] ?? '', maxlength: String(max), disabled: !admin, autocomplete: 'off' });
    } else {
      input = h('input', { type: 'number', name, min: String(min), max: String(max), value: String(values[name] ?? ''), disabled: !admin });
    }
    inputs[name] = input;
    return field('auto.field.' + name, input, { hint: kind === 'text' && name === 'schedule' ? 'auto.hint.schedule' : undefined });
  });
  const save = admin ? button('common.save', { type: 'submit', variant: 'primary', action: 'save-' + role }) : null;
  form.append(...[h('div', { class: 'form-grid' }, rows),
    values.configured ? null : h('p', { class: 'field-hint', i18n: 'auto.defaults' }),
    save ? h('div', { class: 'form-actions' }, save) : null].filter(Boolean));
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const [name, kind] of fields) {
      const el = inputs[name];
      body[name] = kind === 'bool' ? el.checked : (kind === 'text' || kind.startsWith('choice:')) ? el.value : Number(el.value);
    }
    const done = busy(save, 'common.saving');
    try {
      await onSave(body);
    } finally {
      done();
    }
  };
  return form;
}

const POWER_FIELDS = [
  ['enabled', 'bool'], ['dry_run', 'bool'], ['min_on', 'int', 0, 1000], ['spare_slots', 'int', 0, 100000],
  ['empty_hold_s', 'int', 0, 604800], ['wake_timeout_s', 'int', 10, 86400], ['max_parallel', 'int', 1, 100],
  ['schedule', 'text', 0, 1024], ['tz_offset_min', 'int', -840, 840], ['peak_lead_s', 'int', 0, 86400],
  ['peak_hold_s', 'int', 0, 86400], ['wake_method', 'choice:auto|wol|bmc'], ['wol_broadcast', 'text', 7, 15],
  ['wol_port', 'int', 1, 65535],
];
const BALANCE_FIELDS = [
  ['enabled', 'bool'], ['dry_run', 'bool'], ['cpu_high_pct', 'int', 1, 100], ['mem_high_pct', 'int', 1, 100],
  ['hold_s', 'int', 0, 86400], ['min_gain_pct', 'int', 1, 100], ['max_concurrent', 'int', 1, 64],
  ['move_hold_s', 'int', 0, 604800],
];

// A native <meter> (no inline style: the portal's CSP forbids it), red past the threshold.
function loadBar(pct, over) {
  const v = Math.max(0, Math.min(100, pct || 0));
  return h('span', { class: 'auto-load', title: v.toFixed(0) + '%' },
    h('meter', { min: '0', max: '100', low: '60', high: over ? '1' : '90', optimum: '0', value: v.toFixed(1) }),
    ' ', h('span', { class: 'num', text: v.toFixed(0) + '%' }));
}

function powerTab(moduleId, admin) {
  const base = '/modules/' + moduleId + '/automation/power';
  const alert = alertBox();
  const formBox = h('div');
  const summary = h('div', { class: 'auto-summary', 'data-role': 'power-summary' });
  const servers = dataTable([
    { key: 'auto.col.server', class: 'col-name', noLabel: true }, { key: 'auto.col.power', class: 'col-state' },
    { key: 'auto.col.free', class: 'col-num' }, { key: 'auto.col.sessions', class: 'col-num' },
    { key: 'auto.col.empty', class: 'col-num' }, { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'power-servers');
  const plan = h('ul', { class: 'auto-plan', 'data-role': 'power-plan' });
  const el = h('div', { 'data-role': 'power-tab' }, alert.el,
    h('section', null, h('h2', { class: 'section-title', i18n: 'auto.power.now' }), summary, plan),
    h('section', { class: 'card list-card' }, h('h2', { class: 'section-title', i18n: 'auto.power.servers' }), servers.el),
    h('section', null, h('h2', { class: 'section-title', i18n: 'auto.settings' }), formBox));

  async function loadSettings() {
    const s = await api.get(base);
    clear(formBox).append(settingsForm('power-settings', POWER_FIELDS, s, admin, async (body) => {
      try {
        await api.put(base, body);
        toast('auto.saved');
        loadSettings();
        refresh();
      } catch (e) {
        alert.showError(e);
      }
    }));
  }

  function render(p) {
    const pw = p.power;
    clear(summary).append(...[
      h('span', { class: 'badge ' + (pw.enabled ? (pw.dry_run ? 'badge-info' : 'badge-success') : 'badge-neutral'), 'data-role': 'power-mode',
        i18n: pw.enabled ? (pw.dry_run ? 'auto.mode.dry_run' : 'auto.mode.on') : 'auto.mode.off' }),
      h('span', { i18n: 'auto.power.summary', i18nArgs: { on: pw.on, min: pw.min_on, free: pw.free_slots, need: pw.need_slots } }),
      pw.scheduled_min ? h('span', { class: 'badge badge-info', i18n: 'auto.power.peak_now', i18nArgs: { n: pw.scheduled_min } }) : null,
      pw.next_peak ? h('span', { class: 'muted', i18n: 'auto.power.next_peak', i18nArgs: { at: when(pw.next_peak) } }) : null,
    ].filter(Boolean).flatMap((x) => [x, ' ']));
    clear(plan).append(...(pw.actions.length ? pw.actions.map((a) => h('li', { 'data-plan-action': a.action },
      h('span', { class: 'badge badge-warning', i18n: 'auto.plan.' + a.action }), ' ', h('strong', { text: a.hostname }), ' — ', h('span', { text: a.reason })))
      : [h('li', { class: 'muted', i18n: 'auto.plan.nothing' })]));
    servers.setRows(pw.servers.map((s) => servers.row([
      h('div', { class: 'user-cell-text' }, h('span', { class: 'user-cell-name', text: s.hostname }),
        h('span', { class: 'user-cell-sub', text: s.state + (s.maintenance ? ' · maintenance' : '') })),
      h('span', { class: ['badge', POWER_BADGE[s.power_state] || 'badge-neutral'], 'data-role': 'power-state', i18n: 'auto.power_state.' + s.power_state }),
      h('span', { class: 'num', text: String(s.free_slots) }),
      h('span', { class: 'num', text: String(s.sessions) }),
      h('span', { class: 'num', text: s.empty_for_s >= 0 ? s.empty_for_s + ' s' : '—' }),
      h('div', { class: 'row-actions' }, admin ? powerButton(s) : null),
    ], { 'data-server-id': String(s.id), 'data-power-state': s.power_state })));
    if (!pw.servers.length) servers.empty('auto.no_servers', 'server');
  }

  function powerButton(s) {
    const off = s.power_state === 'on';
    return h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': off ? 'power-off' : 'power-on',
      onclick: async () => {
        const yes = await confirmDialog({
          title: off ? 'auto.confirm.off' : 'auto.confirm.on', titleArgs: { name: s.hostname },
          text: off ? 'auto.confirm.off_text' : 'auto.confirm.on_text', textArgs: { name: s.hostname },
          confirmKey: off ? 'auto.power_off' : 'auto.power_on', danger: off,
          action: () => api.put('/servers/' + s.id + '/power', { action: off ? 'off' : 'on' }),
        });
        if (yes) toast(off ? 'auto.off_sent' : 'auto.on_sent', { name: s.hostname });
        refresh();
      } }, icon('power'), h('span', { i18n: off ? 'auto.power_off' : 'auto.power_on' }));
  }

  let refresh = () => {};
  return { el, loadSettings, render, setRefresh(fn) { refresh = fn; }, alert };
}

function balanceTab(moduleId, admin) {
  const base = '/modules/' + moduleId + '/automation/balance';
  const alert = alertBox();
  const formBox = h('div');
  const summary = h('div', { class: 'auto-summary', 'data-role': 'balance-summary' });
  const servers = dataTable([
    { key: 'auto.col.server', class: 'col-name', noLabel: true }, { key: 'auto.col.cpu', class: 'col-desc' },
    { key: 'auto.col.mem', class: 'col-desc' }, { key: 'auto.col.running', class: 'col-num' },
  ], 'balance-servers');
  const plan = h('ul', { class: 'auto-plan', 'data-role': 'balance-plan' });
  const el = h('div', { 'data-role': 'balance-tab' }, alert.el,
    h('section', null, h('h2', { class: 'section-title', i18n: 'auto.balance.now' }), summary, plan),
    h('section', { class: 'card list-card' }, h('h2', { class: 'section-title', i18n: 'auto.balance.loads' }), servers.el),
    h('section', null, h('h2', { class: 'section-title', i18n: 'auto.settings' }), formBox));
  let refresh = () => {};

  async function loadSettings() {
    const s = await api.get(base);
    clear(formBox).append(settingsForm('balance-settings', BALANCE_FIELDS, s, admin, async (body) => {
      try {
        await api.put(base, body);
        toast('auto.saved');
        loadSettings();
        refresh();
      } catch (e) {
        alert.showError(e);
      }
    }));
  }

  function render(p) {
    const b = p.balance;
    clear(summary).append(
      h('span', { class: 'badge ' + (b.enabled ? (b.dry_run ? 'badge-info' : 'badge-success') : 'badge-neutral'), 'data-role': 'balance-mode',
        i18n: b.enabled ? (b.dry_run ? 'auto.mode.dry_run' : 'auto.mode.on') : 'auto.mode.off' }),
      h('span', { 'data-role': 'spread', i18n: 'auto.balance.summary', i18nArgs: { spread: b.spread_pct.toFixed(0), moving: b.in_flight } }));
    const moves = b.actions.filter((a) => a.action === 'migrate' || a.action === 'skip');
    clear(plan).append(...(moves.length ? moves.map((a) => h('li', { 'data-plan-action': a.action },
      h('span', { class: 'badge ' + (a.action === 'skip' ? 'badge-neutral' : 'badge-warning'), i18n: 'auto.plan.' + a.action }), ' ',
      h('strong', { text: a.desktop || '' }), ' ', h('span', { text: a.reason })))
      : [h('li', { class: 'muted', i18n: 'auto.plan.nothing' })]));
    servers.setRows(b.servers.map((s) => servers.row([
      h('div', { class: 'user-cell-text' }, h('span', { class: 'user-cell-name', text: s.hostname }),
        h('span', { class: 'user-cell-sub', text: s.over ? 'over' + (s.over_for_s != null ? ' ' + s.over_for_s + ' s' : '') : '' })),
      loadBar(s.cpu_pct, s.over && s.cpu_pct >= s.mem_pct),
      loadBar(s.mem_pct, s.over && s.mem_pct >= s.cpu_pct),
      h('span', { class: 'num', text: String(s.running) }),
    ], { 'data-server-id': String(s.id), 'data-load': s.load_pct.toFixed(1) })));
    if (!b.servers.length) servers.empty('auto.no_servers', 'server');
  }
  return { el, loadSettings, render, setRefresh(fn) { refresh = fn; }, alert };
}

function logTab(moduleId) {
  const loopSel = h('select', { name: 'loop', 'data-role': 'log-loop' },
    ['', 'recovery', 'power', 'balance'].map((v) => h('option', { value: v, i18n: 'auto.loop.' + (v || 'all') })));
  const table = dataTable([
    { key: 'auto.col.when', class: 'col-date' }, { key: 'auto.col.action', class: 'col-state' },
    { key: 'auto.col.state', class: 'col-state' }, { key: 'auto.col.target', class: 'col-name' },
    { key: 'auto.col.reason', class: 'col-desc' },
  ], 'automation-actions');
  const el = h('div', { 'data-role': 'log-tab' }, h('div', { class: 'toolbar' }, loopSel), h('section', { class: 'card list-card' }, table.el));
  let hosts = {};
  async function load() {
    const q = new URLSearchParams({ limit: '100' });
    if (loopSel.value) q.set('loop', loopSel.value);
    let r;
    try {
      r = await api.get('/modules/' + moduleId + '/automation/actions?' + q);
    } catch (e) {
      table.alert.showError(e);
      return;
    }
    const items = r.items || [];
    table.setRows(items.map((a) => actionRow(table, a, hosts)));
    if (!items.length) table.empty('auto.log.empty', 'audit');
  }
  loopSel.onchange = load;
  return { el, load, setHosts(m) { hosts = m; } };
}

export function automationPage(root, ctx) {
  const admin = ctx.user.role === 'admin';
  const picker = h('select', { name: 'module', 'data-role': 'module-picker', i18nLabel: 'auto.module', i18nTitle: 'auto.module' });
  const tabBar = h('div', { class: 'toolbar', role: 'tablist' });
  const body = h('div', { class: 'auto-body' });
  const alert = alertBox();
  root.append(pageHead('auto.title', 'auto.subtitle', picker), alert.el, tabBar, body);
  let tab = 'power';
  let timer = null;
  let stopped = false;
  let views = null;

  const tabs = {};
  for (const t of TABS) {
    tabs[t] = h('button', { type: 'button', role: 'tab', class: 'btn btn-secondary btn-sm', 'data-tab': t, i18n: 'auto.tab.' + t, onclick: () => show(t) });
    tabBar.append(tabs[t]);
  }

  async function refresh() {
    if (!views || stopped) return;
    try {
      const p = await api.get('/modules/' + views.moduleId + '/automation/plan');
      const hosts = {};
      for (const s of p.power.servers) hosts[s.id] = s.hostname;
      views.log.setHosts(hosts);
      views.power.render(p);
      views.balance.render(p);
    } catch (e) {
      alert.showError(e);
    }
  }

  function show(t) {
    tab = t;
    for (const [k, b] of Object.entries(tabs)) {
      b.setAttribute('aria-selected', String(k === t));
      b.className = 'btn btn-sm ' + (k === t ? 'btn-primary' : 'btn-secondary');
    }
    if (!views) return;
    clear(body).append(views[t === 'log' ? 'log' : t].el);
    if (t === 'log') views.log.load();
  }

  function openModule(id) {
    views = {
      moduleId: id,
      recovery: { el: recoveryTab(id, { can: { admin } }) },
      power: powerTab(id, admin),
      balance: balanceTab(id, admin),
      log: logTab(id),
    };
    views.power.setRefresh(refresh);
    views.balance.setRefresh(refresh);
    Promise.all([views.power.loadSettings(), views.balance.loadSettings()]).catch((e) => alert.showError(e));
    refresh();
    show(tab);
  }

  (async () => {
    let mods = [];
    try {
      const bbs = (await api.get('/building-blocks?limit=200')).items || [];
      for (const bb of bbs) {
        const ms = (await api.get('/building-blocks/' + bb.id + '/modules?limit=500')).items || [];
        for (const m of ms) mods.push({ id: m.id, label: bb.name + ' / ' + m.name });
      }
    } catch (e) {
      alert.showError(e);
      return;
    }
    if (!mods.length) {
      body.append(h('p', { class: 'muted', i18n: 'auto.no_modules' }));
      return;
    }
    const want = Number(new URLSearchParams((window.location.hash.split('?')[1]) || '').get('module'));
    picker.append(...mods.map((m) => h('option', { value: String(m.id), selected: m.id === want, text: m.label })));
    picker.onchange = () => openModule(Number(picker.value));
    openModule(Number(picker.value));
    timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  })();

  return () => {
    stopped = true;
    if (timer) clearInterval(timer);
  };
}
