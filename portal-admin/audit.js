// Audit log: newest first, filtered by action, actor, target and time, paged with `before`.
import * as api from '/common/api.js';
import { h, field, button } from '/common/ui.js';
import { has } from '/common/i18n.js';
import { pageHead, dataTable, Pager, select, latest } from './lists.js';
import { AUDIT_ACTIONS, AUDIT_TARGETS } from './admin-i18n.js';

const PAGE_SIZE = 50;

// A local calendar day as the UTC instant it starts at, in the form bicd takes.
function dayStart(value, plusDays) {
  const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(value || '');
  if (!m) return '';
  const d = new Date(+m[1], +m[2] - 1, +m[3] + (plusDays || 0));
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function summaryParts(summary) {
  if (summary === null || summary === undefined || summary === '') return [];
  if (typeof summary !== 'object') return [String(summary)];
  const out = [];
  for (const [k, v] of Object.entries(summary)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      if ('from' in v && 'to' in v) out.push(`${k}: ${v.from === '' ? '∅' : v.from} → ${v.to === '' ? '∅' : v.to}`);
      else if (k === 'changes') out.push(...summaryParts(v));
      else out.push(`${k}: ${JSON.stringify(v)}`);
    } else {
      out.push(`${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
    }
  }
  return out;
}

export function auditPage(page) {
  const table = dataTable([
    { key: 'audit.col.time', class: 'col-date' },
    { key: 'audit.col.actor', class: 'col-actor' },
    { key: 'audit.col.action', class: 'col-action' },
    { key: 'audit.col.target', class: 'col-target' },
    { key: 'audit.col.result', class: 'col-result' },
    { key: 'audit.col.details', class: 'col-details' },
    { key: 'audit.col.source', class: 'col-source' },
  ], 'audit');
  const pager = new Pager(PAGE_SIZE, () => load(), 'before');
  const only = latest();

  const action = select('action', [['', 'audit.filter.action_any'], ...AUDIT_ACTIONS.map((a) => [a, 'audit.action.' + a])], 'audit.filter.action');
  const actor = h('input', { type: 'text', name: 'actor', i18nPlaceholder: 'audit.filter.actor_ph', autocomplete: 'off', spellcheck: 'false' });
  const targetType = select('target_type', [['', 'audit.filter.target_any'], ...AUDIT_TARGETS.map((k) => [k, 'audit.target.' + k])], 'audit.filter.target_type');
  const targetId = h('input', { type: 'text', name: 'target_id', autocomplete: 'off', spellcheck: 'false' });
  const since = h('input', { type: 'date', name: 'since' });
  const until = h('input', { type: 'date', name: 'until' });
  let filters = {};

  const form = h('form', { class: 'filters', novalidate: true, 'data-role': 'audit-filters' },
    field('audit.filter.action', action),
    field('audit.filter.actor', actor),
    field('audit.filter.target_type', targetType),
    field('audit.filter.target_id', targetId),
    field('audit.filter.since', since),
    field('audit.filter.until', until),
    h('div', { class: 'filters-actions' },
      button('audit.filter.apply', { type: 'submit', variant: 'primary', icon: 'search' }),
      button('audit.filter.reset', {
        variant: 'ghost', onclick: () => {
          form.reset();
          apply();
        },
      })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    apply();
  });
  for (const el of [action, targetType]) el.addEventListener('change', () => apply());

  function apply() {
    filters = {
      action: action.value,
      actor: actor.value.trim(),
      target_type: targetType.value,
      target_id: targetId.value.trim(),
      since: dayStart(since.value),
      until: dayStart(until.value, 1), // "to" includes that whole day
    };
    pager.reset();
    load();
  }

  page.append(
    pageHead('audit.title', 'audit.subtitle',
      button('audit.refresh', { variant: 'secondary', icon: 'refresh', action: 'reload', onclick: () => load() })),
    h('section', { class: 'card list-card' }, form, table.el, pager.el));

  async function load() {
    table.loading();
    table.alert.hide();
    let res;
    try {
      res = await only(() => api.get('/audit', { ...filters, ...pager.params() }));
    } catch (e) {
      table.done();
      table.alert.showError(e);
      return;
    }
    if (!res.current) return;
    table.done();
    const items = res.value.items || [];
    table.setRows(items.map(auditRow));
    if (!items.length) table.empty('audit.empty', 'audit');
    pager.update(items.length, res.value.next_before, undefined, 'audit.page');
    if (items.length === 0 && pager.index > 0) pager.el.hidden = false;
  }

  function auditRow(a) {
    const key = 'audit.action.' + a.action;
    const parts = summaryParts(a.summary);
    const targetKey = 'audit.target.' + a.target_type;
    return table.row([
      h('span', { class: 'nowrap', date: a.at }),
      h('span', { class: 'strong', text: a.actor_name || '—' }),
      h('div', { class: 'action-cell' },
        has(key) ? h('span', { i18n: key }) : null,
        h('code', { class: 'code', text: a.action })),
      a.target_type || a.target_id
        ? h('span', null, a.target_type ? h('span', { class: 'muted', i18n: has(targetKey) ? targetKey : undefined, text: has(targetKey) ? undefined : a.target_type }) : null,
          ' ', h('span', { class: 'strong', text: a.target_id || '' }))
        : h('span', { class: 'muted', text: '—' }),
      h('span', { class: ['badge', 'badge-dot', a.success ? 'badge-success' : 'badge-danger'], i18n: a.success ? 'audit.result.ok' : 'audit.result.fail' }),
      parts.length ? h('ul', { class: 'kv' }, parts.map((p) => h('li', { text: p }))) : h('span', { class: 'muted', text: '—' }),
      h('span', { class: 'mono muted', text: a.source_ip || '—' }),
    ], { 'data-audit-id': String(a.id), 'data-action-name': a.action });
  }

  load();
}
