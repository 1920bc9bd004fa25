// Groups: paged list with search, create, rename, delete, the role a group gives its members
// (operator or administrator; with a directory's or provider's group mapping this maps a
// directory group to a role), the MFA policy (members must use two-step verification), and a
// members dialog that adds and removes users.
import * as api from '/common/api.js';
import { h, icon, clear, field, dialog, confirmDialog, toast, button, alertBox, busy, setText } from '/common/ui.js';
import { pageHead, dataTable, Pager, searchBox, latest, loadPage, select } from './lists.js';
import { userCell, roleBadge } from './users.js';

const GROUP_ROLES = [['', 'groups.role.none'], ['operator', 'role.operator'], ['admin', 'role.admin']];

const PAGE_SIZE = 20;
const GROUP_ERRORS = { conflict: 'groups.error.exists' };

export function groupsPage(page) {
  let q = '';
  const table = dataTable([
    { key: 'groups.col.name', class: 'col-name', noLabel: true },
    { key: 'groups.col.description', class: 'col-desc' },
    { key: 'groups.col.members', class: 'col-members' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'groups');
  const pager = new Pager(PAGE_SIZE, () => load());
  const only = latest();
  let mfaRequired = new Set(); // ids of groups whose members must use two-step verification
  const search = searchBox('groups.search', (v) => {
    q = v;
    pager.reset();
    load();
  });

  page.append(
    pageHead('groups.title', 'groups.subtitle',
      button('groups.new', { variant: 'primary', icon: 'plus', action: 'new-group', onclick: () => groupDialog(null) })),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar' }, search.el),
      table.el,
      pager.el));

  function load() {
    return loadPage({
      table, pager, only,
      fetch: async () => {
        const [list, policy] = await Promise.all([api.get('/groups', { ...pager.params(), q }), api.get('/mfa/policy')]);
        mfaRequired = new Set((policy.items || []).map((x) => x.id));
        return list;
      },
      row: groupRow,
      emptyKey: q ? 'groups.none_match' : 'groups.empty',
      emptyIcon: 'group',
    });
  }

  function groupRow(g) {
    return table.row([
      h('div', { class: 'group-cell' },
        h('span', { class: 'group-icon', 'aria-hidden': 'true' }, icon('group')),
        h('span', { class: 'group-name', text: g.name }),
        g.role ? h('span', { 'data-role': 'group-role', i18nTitle: 'groups.role.badge_title' }, roleBadge(g.role)) : null,
        mfaRequired.has(g.id) ? h('span', { class: 'badge badge-admin badge-mfa', 'data-role': 'mfa-required', i18nTitle: 'groups.mfa.badge_title' },
          icon('lock'), h('span', { i18n: 'groups.mfa.badge' })) : null),
      g.description ? h('span', { class: 'muted-strong', text: g.description }) : h('span', { class: 'muted', text: '—' }),
      h('span', { class: 'badge badge-neutral', i18n: 'groups.members_count', i18nArgs: { n: g.members } }),
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'members', onclick: () => membersDialog(g) },
          icon('users'), h('span', { i18n: 'groups.members' })),
        h('button', { type: 'button', class: 'icon-btn', 'data-action': 'edit', i18nLabel: 'groups.edit', i18nTitle: 'groups.edit', onclick: () => groupDialog(g) }, icon('edit')),
        h('button', { type: 'button', class: 'icon-btn icon-btn-danger', 'data-action': 'delete', i18nLabel: 'groups.delete', i18nTitle: 'groups.delete', onclick: () => deleteGroup(g) }, icon('trash'))),
    ], { 'data-group': g.name, 'data-group-id': String(g.id) });
  }

  function groupDialog(g) {
    const name = h('input', { type: 'text', name: 'name', maxlength: '64', autocomplete: 'off', required: true, value: g ? g.name : '' });
    const desc = h('textarea', { name: 'description', maxlength: '255', rows: '3' });
    desc.value = g ? g.description || '' : '';
    const role = select('role', GROUP_ROLES, 'groups.field.role');
    role.value = g && g.role ? g.role : '';
    role.setAttribute('aria-describedby', 'group-role-hint');
    const wasRequired = !!(g && mfaRequired.has(g.id));
    const mfa = h('input', { type: 'checkbox', name: 'mfa_required', checked: wasRequired, 'aria-describedby': 'group-mfa-hint' });
    dialog({
      name: g ? 'edit-group' : 'create-group',
      title: g ? 'groups.edit.title' : 'groups.create.title',
      titleArgs: g ? { name: g.name } : undefined,
      submitKey: g ? 'common.save' : 'groups.create.submit',
      errors: GROUP_ERRORS,
      body: [field('groups.field.name', name), field('groups.field.description', desc, { optional: true }),
        field('groups.field.role', role),
        h('p', { class: 'field-hint', id: 'group-role-hint', i18n: 'groups.role.hint' }),
        h('div', { class: 'field' },
          h('label', { class: 'checkbox' }, mfa, h('span', { i18n: 'groups.mfa.field' })),
          h('p', { class: 'field-hint', id: 'group-mfa-hint', i18n: 'groups.mfa.hint' }))],
      onSubmit: async (form, alert) => {
        const n = name.value.trim();
        if (!n) {
          alert.show('groups.error.name');
          name.focus();
          return false;
        }
        const body = { name: n, description: desc.value.trim(), role: role.value || null };
        let id;
        if (g) {
          await api.patch('/groups/' + g.id, body);
          id = g.id;
        } else {
          id = (await api.post('/groups', body)).id;
          pager.reset();
        }
        if (mfa.checked !== wasRequired) await api.put('/groups/' + id + '/mfa', { mfa_required: mfa.checked });
        toast(g ? 'groups.saved' : 'groups.created', { name: n });
        load();
        return true;
      },
    });
  }

  async function deleteGroup(g) {
    const ok = await confirmDialog({
      title: 'groups.delete.title', titleArgs: { name: g.name },
      text: 'groups.delete.intro', confirmKey: 'groups.delete.submit', danger: true,
      action: () => api.del('/groups/' + g.id),
    });
    if (!ok) return;
    toast('groups.deleted', { name: g.name });
    load();
  }

  function membersDialog(g) {
    const memberIds = new Set();
    const list = h('ul', { class: 'member-list', 'data-role': 'members' });
    const count = h('h3', { class: 'section-title', i18n: 'groups.members.current', i18nArgs: { n: 0 } });
    const more = button('groups.members.more', { variant: 'ghost', class: 'btn-sm' });
    more.hidden = true;
    const results = h('ul', { class: 'member-list member-results', 'data-role': 'member-results' });
    const alert = alertBox();
    let nextAfter = null;
    let changed = false;
    const only = latest();

    const finder = searchBox('groups.members.search', (v) => find(v), 'member-search');

    const d = dialog({
      name: 'members',
      wide: true,
      title: 'groups.members.title',
      titleArgs: { name: g.name },
      body: [
        h('div', { class: 'members-add' },
          h('h3', { class: 'section-title', i18n: 'groups.members.add' }), finder.el, results),
        alert.el,
        h('div', { class: 'members-current' }, count, list, more),
      ],
      onClose: () => {
        if (changed) load();
      },
    });
    more.addEventListener('click', () => loadMembers(false));

    function setCount() {
      setText(count, 'groups.members.current', { n: memberIds.size + (nextAfter !== null ? '+' : '') });
    }

    async function loadMembers(first) {
      try {
        const data = await api.get('/groups/' + g.id + '/members', { limit: 100, after: first ? null : nextAfter });
        if (first) {
          clear(list);
          memberIds.clear();
        }
        for (const u of data.items || []) {
          memberIds.add(u.id);
          list.append(memberItem(u));
        }
        nextAfter = data.next_after === undefined ? null : data.next_after;
        more.hidden = nextAfter === null;
        renderEmpty();
        setCount();
      } catch (e) {
        alert.showError(e);
      }
    }

    function renderEmpty() {
      const empty = list.querySelector('.member-empty');
      if (!list.querySelector('[data-member]')) {
        if (!empty) list.append(h('li', { class: 'member-empty', i18n: 'groups.members.empty' }));
      } else if (empty) empty.remove();
    }

    function memberItem(u) {
      const name = u.display_name || u.username;
      const rm = h('button', { type: 'button', class: 'btn btn-danger-ghost btn-sm', 'data-action': 'remove-member' },
        icon('x'), h('span', { i18n: 'groups.members.remove' }));
      const li = h('li', { class: 'member-item', 'data-member': u.username }, userCell(u), rm);
      rm.addEventListener('click', async () => {
        alert.hide();
        const done = busy(rm);
        try {
          await api.del('/groups/' + g.id + '/members/' + u.id);
        } catch (e) {
          done();
          alert.showError(e);
          return;
        }
        changed = true;
        memberIds.delete(u.id);
        li.remove();
        renderEmpty();
        setCount();
        markResult(u.id, false);
        toast('groups.members.removed', { name });
      });
      return li;
    }

    function markResult(id, isMember) {
      const li = results.querySelector(`[data-user-id="${id}"]`);
      if (!li) return;
      li.replaceWith(resultItem(JSON.parse(li.getAttribute('data-json')), isMember));
    }

    function resultItem(u, isMember) {
      const name = u.display_name || u.username;
      const li = h('li', { class: 'member-item', 'data-result': u.username, 'data-user-id': String(u.id), 'data-json': JSON.stringify({ id: u.id, username: u.username, display_name: u.display_name }) }, userCell(u));
      if (isMember) {
        li.append(h('span', { class: 'badge badge-success' }, icon('check'), h('span', { i18n: 'groups.members.already' })));
        return li;
      }
      const add = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'add-member' },
        icon('plus'), h('span', { i18n: 'groups.members.add_btn' }));
      add.addEventListener('click', async () => {
        alert.hide();
        const done = busy(add);
        try {
          await api.put('/groups/' + g.id + '/members/' + u.id);
        } catch (e) {
          done();
          alert.showError(e);
          return;
        }
        changed = true;
        if (!memberIds.has(u.id)) {
          memberIds.add(u.id);
          list.prepend(memberItem(u));
        }
        renderEmpty();
        setCount();
        li.replaceWith(resultItem(u, true));
        toast('groups.members.added', { name });
      });
      li.append(add);
      return li;
    }

    async function find(v) {
      if (!v) {
        clear(results);
        return;
      }
      let res;
      try {
        res = await only(() => api.get('/users', { q: v, limit: 8 }));
      } catch (e) {
        alert.showError(e);
        return;
      }
      if (!res.current) return;
      clear(results);
      const items = res.value.items || [];
      if (!items.length) results.append(h('li', { class: 'member-empty', i18n: 'groups.members.no_results' }));
      for (const u of items) results.append(resultItem(u, memberIds.has(u.id)));
    }

    loadMembers(true);
    finder.input.focus();
    return d;
  }

  load();
}
