// Specs: the sizes desktops are made in (vCPUs, memory, disk, NIC type). A paged list with
// search, and create, edit and delete in dialogs.
import * as api from '/common/api.js';
import { h, icon, field, dialog, confirmDialog, toast, button } from '/common/ui.js';
import { formatNumber } from '/common/i18n.js';
import { pageHead, dataTable, Pager, searchBox, latest, loadPage } from './lists.js';
import { fmtMiB, fmtGiB } from './inventory.js';
import { SHOW_MESSAGE, nextCursor, intOf } from './images.js';

const PAGE_SIZE = 20;
export const NIC_TYPES = ['virtio', 'sriov'];
export const LIMITS = { vcpus: [1, 64], memory_mib: [256, 1048576], disk_gib: [1, 4096] };

export function nicBadge(type) {
  return h('span', { class: ['badge', type === 'sriov' ? 'badge-info' : 'badge-neutral'], 'data-nic-type': type, i18n: NIC_TYPES.includes(type) ? 'nic_type.' + type : undefined, text: NIC_TYPES.includes(type) ? undefined : type });
}

// "2 vCPU · 4 GiB · 40 GiB disk"
export function specSummary(s) {
  return h('span', { class: 'spec-summary', i18n: 'specs.summary', i18nArgs: { vcpus: formatNumber(s.vcpus), mem: fmtMiB(s.memory_mib), disk: fmtGiB(s.disk_gib) } });
}

export function specsPage(page) {
  let q = '';
  const table = dataTable([
    { key: 'specs.col.name', class: 'col-name', noLabel: true },
    { key: 'specs.col.vcpus', class: 'col-num' },
    { key: 'specs.col.memory', class: 'col-num' },
    { key: 'specs.col.disk', class: 'col-num' },
    { key: 'specs.col.nic', class: 'col-nic' },
    { key: 'specs.col.pools', class: 'col-num' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'specs');
  const pager = new Pager(PAGE_SIZE, () => load());
  const only = latest();
  const search = searchBox('specs.search', (v) => {
    q = v;
    pager.reset();
    load();
  });

  page.append(
    pageHead('specs.title', 'specs.subtitle',
      button('specs.new', { variant: 'primary', icon: 'plus', action: 'new-spec', onclick: () => specDialog(null) })),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar' }, search.el),
      table.el,
      pager.el));

  function load() {
    return loadPage({
      table, pager, only,
      fetch: async () => {
        const d = await api.get('/specs', { ...pager.params(), q });
        return { ...d, next_after: nextCursor(d) };
      },
      row: specRow,
      emptyKey: q ? 'specs.none_match' : 'specs.empty',
      emptyIcon: 'cpu',
      infoKey: 'list.page',
    });
  }

  function specRow(s) {
    return table.row([
      h('div', { class: 'image-cell' },
        h('span', { class: 'image-icon spec-icon', 'aria-hidden': 'true' }, icon('cpu')),
        h('div', { class: 'user-cell-text' },
          h('span', { class: 'user-cell-name', text: s.name }),
          s.description ? h('span', { class: 'user-cell-sub', text: s.description }) : null)),
      h('span', { class: 'num', 'data-role': 'vcpus', text: formatNumber(s.vcpus) }),
      h('span', { class: 'num', 'data-role': 'memory', text: fmtMiB(s.memory_mib) }),
      h('span', { class: 'num', 'data-role': 'disk', text: fmtGiB(s.disk_gib) }),
      nicBadge(s.nic_type),
      s.pools ? h('a', { class: 'badge badge-neutral', href: '#/pools', i18n: 'specs.pools_count', i18nArgs: { n: formatNumber(s.pools) } }) : h('span', { class: 'muted', text: '—' }),
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'icon-btn', 'data-action': 'edit', i18nLabel: 'specs.edit', i18nTitle: 'specs.edit', onclick: () => specDialog(s) }, icon('edit')),
        h('button', { type: 'button', class: 'icon-btn icon-btn-danger', 'data-action': 'delete', i18nLabel: 'specs.delete', i18nTitle: 'specs.delete', onclick: () => deleteSpec(s) }, icon('trash'))),
    ], { 'data-spec': s.name, 'data-spec-id': String(s.id) });
  }

  function specDialog(s) {
    const name = h('input', { type: 'text', name: 'name', maxlength: '64', autocomplete: 'off', required: true, value: s ? s.name : '' });
    const desc = h('input', { type: 'text', name: 'description', maxlength: '255', autocomplete: 'off', value: s ? s.description || '' : '' });
    const vcpus = h('input', { type: 'number', name: 'vcpus', min: '1', max: '64', step: '1', inputmode: 'numeric', value: s ? String(s.vcpus) : '2' });
    // memory in GiB or MiB, as the person prefers; sent as MiB
    const inGiB = !s || s.memory_mib % 1024 === 0;
    const memory = h('input', { type: 'number', name: 'memory', min: '0', step: 'any', inputmode: 'decimal', value: s ? String(inGiB ? s.memory_mib / 1024 : s.memory_mib) : '4' });
    const unit = h('select', { name: 'memory_unit', class: 'unit-select', i18nLabel: 'specs.field.memory_unit' },
      h('option', { value: 'GiB', text: 'GiB' }), h('option', { value: 'MiB', text: 'MiB' }));
    unit.value = inGiB ? 'GiB' : 'MiB';
    const disk = h('input', { type: 'number', name: 'disk_gib', min: '1', max: '4096', step: '1', inputmode: 'numeric', value: s ? String(s.disk_gib) : '40' });
    const nic = h('select', { name: 'nic_type' }, NIC_TYPES.map((t) => h('option', { value: t, i18n: 'nic_type.' + t })));
    nic.value = s ? s.nic_type : 'virtio';
    const memField = field('specs.field.memory', memory, { hint: 'specs.field.memory_hint' });
    const slot = h('div', { class: 'input-unit' });
    memory.replaceWith(slot);
    slot.append(memory, unit);
    dialog({
      name: s ? 'edit-spec' : 'create-spec',
      title: s ? 'specs.edit.title' : 'specs.create.title',
      titleArgs: s ? { name: s.name } : undefined,
      intro: s && s.pools ? 'specs.edit.in_use' : undefined,
      introArgs: s ? { n: formatNumber(s.pools || 0) } : undefined,
      submitKey: s ? 'common.save' : 'specs.create.submit',
      errors: { ...SHOW_MESSAGE, conflict: 'specs.error.exists' },
      body: [
        field('specs.field.name', name),
        h('div', { class: 'field-row' },
          field('specs.field.vcpus', vcpus, { hint: 'specs.field.vcpus_hint' }),
          memField),
        h('div', { class: 'field-row' },
          field('specs.field.disk', disk, { hint: 'specs.field.disk_hint' }),
          field('specs.field.nic', nic, { hint: 'specs.field.nic_hint' })),
        field('specs.field.description', desc, { optional: true }),
      ],
      onSubmit: async (form, alert) => {
        const n = name.value.trim();
        if (!n) {
          alert.show('specs.error.name');
          name.focus();
          return false;
        }
        const cpu = intOf(vcpus);
        if (!(cpu >= LIMITS.vcpus[0] && cpu <= LIMITS.vcpus[1])) {
          alert.show('specs.error.vcpus');
          vcpus.focus();
          return false;
        }
        const m = Number(String(memory.value).trim());
        const mib = Math.round(unit.value === 'GiB' ? m * 1024 : m);
        if (!String(memory.value).trim() || !Number.isFinite(m) || !(mib >= LIMITS.memory_mib[0] && mib <= LIMITS.memory_mib[1])) {
          alert.show('specs.error.memory');
          memory.focus();
          return false;
        }
        const dg = intOf(disk);
        if (!(dg >= LIMITS.disk_gib[0] && dg <= LIMITS.disk_gib[1])) {
          alert.show('specs.error.disk');
          disk.focus();
          return false;
        }
        const body = { name: n, description: desc.value.trim(), vcpus: cpu, memory_mib: mib, disk_gib: dg, nic_type: nic.value };
        if (s) {
          await api.patch('/specs/' + s.id, body);
          toast('specs.saved', { name: n });
        } else {
          await api.post('/specs', body);
          toast('specs.created', { name: n });
          pager.reset();
        }
        load();
        return true;
      },
    });
  }

  async function deleteSpec(s) {
    const ok = await confirmDialog({
      title: 'specs.delete.title', titleArgs: { name: s.name },
      text: 'specs.delete.text', confirmKey: 'specs.delete', danger: true, errors: SHOW_MESSAGE,
      action: () => api.del('/specs/' + s.id),
    });
    if (!ok) return;
    toast('specs.deleted', { name: s.name });
    load();
  }

  load();
}
