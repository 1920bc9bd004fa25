// Enrollment tokens: the one-time secrets new servers join a building block (optionally a
// module) with. Created here and shown once with the agent's configuration; listed by hint;
// revoked with confirmation.
import * as api from '/common/api.js';
import { h, icon, field, dialog, confirmDialog, toast, button } from '/common/ui.js';
import { formatNumber } from '/common/i18n.js';
import { pageHead, dataTable, Pager, select, latest, loadPage } from './lists.js';
import { loadBuildingBlocks, loadModules, fillSelect } from './servers.js';
import { copyText, hashQuery, setHashQuery } from './inventory.js';

const PAGE_SIZE = 25;
const TTLS = [
  [3600, 'tokens.ttl.1h'],
  [86400, 'tokens.ttl.1d'],
  [7 * 86400, 'tokens.ttl.7d'],
  [30 * 86400, 'tokens.ttl.30d'],
  [90 * 86400, 'tokens.ttl.90d'],
];

export function agentConfig(token) {
  return `[agent]\nccc_url = ${window.location.origin}\ntoken = ${token}\n`;
}
export const AGENT_COMMAND = 'bic-agent -c /etc/bic/agent.ini run';

export function tokensPage(page) {
  const filters = { building_block: hashQuery().get('building_block') || '' };
  const names = { bbs: new Map(), modules: new Map() };
  let bbs = [];
  const table = dataTable([
    { key: 'tokens.col.token', class: 'col-name', noLabel: true },
    { key: 'tokens.col.scope', class: 'col-scope' },
    { key: 'tokens.col.status', class: 'col-status' },
    { key: 'tokens.col.uses', class: 'col-num' },
    { key: 'tokens.col.expires', class: 'col-date' },
    { key: 'tokens.col.created', class: 'col-date' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'tokens');
  const pager = new Pager(PAGE_SIZE, () => load());
  const only = latest();

  const bbSel = select('building_block', [['', 'servers.filter.bb_any']], 'servers.filter.bb');
  bbSel.addEventListener('change', () => {
    filters.building_block = bbSel.value;
    setHashQuery(filters);
    pager.reset();
    load();
  });

  page.append(
    pageHead('tokens.title', 'tokens.subtitle',
      button('tokens.new', { variant: 'primary', icon: 'plus', action: 'new-token', onclick: () => createDialog() })),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar toolbar-end' },
        h('p', { class: 'toolbar-hint' }, icon('info'), h('span', { i18n: 'tokens.hint' })),
        h('div', { class: 'toolbar-filters' }, bbSel)),
      table.el,
      pager.el));

  const ready = (async () => {
    try {
      bbs = await loadBuildingBlocks();
      for (const b of bbs) names.bbs.set(b.id, b.name);
      fillSelect(bbSel, 'servers.filter.bb_any', bbs, filters.building_block);
    } catch (e) {
      table.alert.showError(e);
    }
  })();

  async function moduleName(id) {
    if (!id) return null;
    if (!names.modules.has(id)) {
      try {
        names.modules.set(id, (await api.get('/modules/' + id)).name);
      } catch (e) {
        names.modules.set(id, '#' + id);
      }
    }
    return names.modules.get(id);
  }

  async function load() {
    await ready;
    return loadPage({
      table, pager, only,
      fetch: async () => {
        const data = await api.get('/enrollment-tokens', { ...pager.params(), building_block: filters.building_block });
        // names of the modules the tokens are for (once each)
        await Promise.all([...new Set((data.items || []).map((t) => t.module_id).filter(Boolean))].map(moduleName));
        return data;
      },
      row: tokenRow,
      emptyKey: filters.building_block ? 'tokens.none_match' : 'tokens.empty',
      emptyIcon: 'ticket',
      infoKey: 'list.page',
    });
  }

  function tokenStatus(t) {
    if (t.revoked_at) return h('span', { class: 'badge badge-dot badge-danger', 'data-status': 'revoked', i18n: 'tokens.status.revoked' });
    if (!t.valid) return h('span', { class: 'badge badge-dot badge-neutral', 'data-status': 'expired', i18n: 'tokens.status.expired' });
    return h('span', { class: 'badge badge-dot badge-success', 'data-status': 'valid', i18n: 'tokens.status.valid' });
  }

  function tokenRow(t) {
    const bb = names.bbs.get(t.building_block_id) || '#' + t.building_block_id;
    const mod = t.module_id ? names.modules.get(t.module_id) || '#' + t.module_id : null;
    const revoke = h('button', {
      type: 'button', class: 'btn btn-danger-ghost btn-sm', 'data-action': 'revoke', disabled: !t.valid,
    }, icon('x'), h('span', { i18n: 'tokens.revoke' }));
    revoke.addEventListener('click', () => revokeToken(t));
    return table.row([
      h('div', { class: 'token-cell' },
        h('span', { class: 'token-icon', 'aria-hidden': 'true' }, icon('ticket')),
        h('div', { class: 'user-cell-text' },
          h('span', { class: 'token-hint mono', 'data-role': 'hint', text: t.hint + '…' }),
          h('span', { class: 'user-cell-sub', text: t.description || '' }))),
      h('div', { class: 'scope-cell' },
        h('span', { class: 'strong', text: bb }),
        h('span', { class: 'user-cell-sub' }, mod ? h('span', { text: mod }) : h('span', { i18n: 'tokens.any_module' }))),
      tokenStatus(t),
      h('span', { class: 'strong', text: formatNumber(t.uses) }),
      h('span', { class: t.valid ? null : 'muted', date: t.revoked_at || t.expires_at }),
      h('div', { class: 'user-cell-text' }, h('span', { date: t.created_at }), h('span', { class: 'user-cell-sub', text: t.created_by })),
      h('div', { class: 'row-actions' }, revoke),
    ], { 'data-token-id': String(t.id), 'data-hint': t.hint, class: t.valid ? null : 'is-disabled' });
  }

  async function revokeToken(t) {
    const ok = await confirmDialog({
      title: 'tokens.revoke.title', titleArgs: { hint: t.hint },
      text: 'tokens.revoke.text', confirmKey: 'tokens.revoke.submit', danger: true,
      action: () => api.del('/enrollment-tokens/' + t.id),
    });
    if (!ok) return;
    toast('tokens.revoked', { hint: t.hint });
    load();
  }

  function createDialog() {
    const bbPick = select('building_block_id', [['', 'tokens.field.bb_pick']], 'tokens.field.bb');
    fillSelect(bbPick, 'tokens.field.bb_pick', bbs, filters.building_block || (bbs.length === 1 ? bbs[0].id : ''));
    bbPick.required = true;
    const modPick = select('module_id', [['', 'tokens.field.module_auto']], 'tokens.field.module');
    const desc = h('input', { type: 'text', name: 'description', maxlength: '255', autocomplete: 'off' });
    const ttl = select('ttl', TTLS.map(([v, k]) => [String(v), k]), 'tokens.field.ttl');
    ttl.value = '86400';
    const modulesFor = async () => {
      modPick.disabled = true;
      fillSelect(modPick, 'tokens.field.module_auto', [], '');
      if (!bbPick.value) return;
      try {
        fillSelect(modPick, 'tokens.field.module_auto', await loadModules(bbPick.value), '');
      } finally {
        modPick.disabled = false;
      }
    };
    bbPick.addEventListener('change', () => modulesFor());
    modulesFor();
    const body = bbs.length
      ? [
        h('div', { class: 'field-row' }, field('tokens.field.bb', bbPick), field('tokens.field.module', modPick, { optional: true })),
        h('div', { class: 'field-row' }, field('tokens.field.ttl', ttl, { hint: 'tokens.field.ttl_hint' }), field('tokens.field.description', desc, { optional: true })),
      ]
      : [h('div', { class: 'alert alert-info' }, icon('info'), h('span', null, h('span', { i18n: 'tokens.no_bbs' }), ' ', h('a', { href: '#/topology', i18n: 'tokens.no_bbs_link' })))];
    dialog({
      name: 'create-token',
      title: 'tokens.create.title',
      intro: 'tokens.create.intro',
      submitKey: bbs.length ? 'tokens.create.submit' : undefined,
      busyKey: 'common.creating',
      wide: true,
      body,
      onSubmit: async (form, a) => {
        if (!bbPick.value) {
          a.show('tokens.error.bb');
          bbPick.focus();
          return false;
        }
        const req = { building_block_id: Number(bbPick.value), ttl_seconds: Number(ttl.value) };
        if (modPick.value) req.module_id = Number(modPick.value);
        if (desc.value.trim()) req.description = desc.value.trim();
        const tok = await api.post('/enrollment-tokens', req);
        // shown once: after the dialog closes only the hint remains
        setTimeout(() => showOnce(tok, names.bbs.get(tok.building_block_id), modPick.value ? modPick.selectedOptions[0].textContent : null), 0);
        // the list goes oldest first: show the new token's building block so it is in view
        filters.building_block = String(tok.building_block_id);
        bbSel.value = filters.building_block;
        setHashQuery(filters);
        pager.reset();
        load();
        return true;
      },
    });
  }

  function showOnce(tok, bbName, modName) {
    const secret = h('input', { type: 'text', name: 'token', class: 'mono token-secret', readonly: true, value: tok.token, spellcheck: 'false', 'data-role': 'token-value' });
    secret.addEventListener('focus', () => secret.select());
    const conf = agentConfig(tok.token);
    const copyBtn = (what, key, action) => h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': action, onclick: () => copyText(what, 'common.copied') },
      icon('copy'), h('span', { i18n: key }));
    const d = dialog({
      name: 'token-once',
      wide: true,
      title: 'tokens.once.title',
      body: [
        h('div', { class: 'alert alert-warning token-warn', role: 'note' }, icon('alert'), h('span', { i18n: 'tokens.once.warning' })),
        h('p', { class: 'token-scope' }, h('span', { i18n: 'tokens.once.scope' }), ' ',
          h('strong', { text: bbName || '#' + tok.building_block_id }),
          modName ? h('span', { text: ' › ' + modName }) : h('span', { class: 'muted' }, ' · ', h('span', { i18n: 'tokens.any_module' })),
          h('span', { class: 'muted' }, ' · ', h('span', { i18n: 'tokens.once.expires' }), ' ', h('span', { date: tok.expires_at }))),
        h('div', { class: 'field' },
          h('label', { for: 'token-secret-' + tok.id, i18n: 'tokens.once.token' }),
          h('div', { class: 'copy-row' }, secret, copyBtn(tok.token, 'common.copy', 'copy-token'))),
        h('div', { class: 'snippet' },
          h('div', { class: 'snippet-head' },
            h('span', { class: 'snippet-title' }, icon('terminal'), h('span', { i18n: 'tokens.once.config' }), h('code', { class: 'snippet-path', text: '/etc/bic/agent.ini' })),
            copyBtn(conf, 'common.copy', 'copy-config')),
          h('pre', { class: 'snippet-code', 'data-role': 'agent-config' }, h('code', { text: conf }))),
        h('div', { class: 'snippet' },
          h('div', { class: 'snippet-head' },
            h('span', { class: 'snippet-title' }, icon('terminal'), h('span', { i18n: 'tokens.once.run' })),
            copyBtn(AGENT_COMMAND, 'common.copy', 'copy-command')),
          h('pre', { class: 'snippet-code', 'data-role': 'agent-command' }, h('code', { text: AGENT_COMMAND }))),
        h('p', { class: 'field-hint', i18n: 'tokens.once.after' }),
      ],
    });
    secret.id = 'token-secret-' + tok.id;
    secret.focus();
    return d;
  }

  load();
}
