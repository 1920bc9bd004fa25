// Users: server-side paged list with search and filters, create, edit (role), enable and
// disable, password reset, and a user's two-step verification (status, reset).
import * as api from '/common/api.js';
import { h, icon, clear, field, dialog, confirmDialog, toast, button, alertBox } from '/common/ui.js';
import { roleKey, initials } from '/common/app.js';
import { pageHead, dataTable, Pager, searchBox, select, latest, loadPage } from './lists.js';

const PAGE_SIZE = 20;
const ROLES = [['user', 'role.user'], ['operator', 'role.operator'], ['admin', 'role.admin']];
const USERNAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

export function roleBadge(role) {
  const k = roleKey(role);
  return h('span', { class: ['badge', role === 'admin' ? 'badge-admin' : 'badge-neutral'], i18n: k || undefined, text: k ? undefined : role });
}

export function statusBadge(disabled) {
  return h('span', { class: ['badge', 'badge-dot', disabled ? 'badge-danger' : 'badge-success'], i18n: disabled ? 'users.status.disabled' : 'users.status.active' });
}

export function userCell(u, me) {
  const name = u.display_name || u.username;
  return h('div', { class: 'user-cell' },
    h('span', { class: 'avatar avatar-sm', 'aria-hidden': 'true', text: initials(name) }),
    h('div', { class: 'user-cell-text' },
      h('span', { class: 'user-cell-name' }, h('span', { text: name }),
        me ? h('span', { class: 'badge badge-neutral badge-you', i18n: 'users.you' }) : null),
      h('span', { class: 'user-cell-sub', text: u.username })));
}

const CREATE_ERRORS = { conflict: 'users.error.exists' };
const SELF_ERRORS = { conflict: 'users.error.self' };

export function usersPage(page, ctx) {
  const filters = { q: '', role: '', disabled: '' };
  const table = dataTable([
    { key: 'users.col.user', class: 'col-user', noLabel: true },
    { key: 'users.col.email', class: 'col-email' },
    { key: 'users.col.role', class: 'col-role' },
    { key: 'users.col.status', class: 'col-status' },
    { key: 'users.col.last_login', class: 'col-date' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'users');
  const pager = new Pager(PAGE_SIZE, () => load());
  const only = latest();

  const search = searchBox('users.search', (v) => {
    filters.q = v;
    pager.reset();
    load();
  });
  const roleSel = select('role', [['', 'users.filter.role_any'], ...ROLES], 'users.filter.role');
  const statusSel = select('disabled', [['', 'users.filter.status_any'], ['false', 'users.status.active'], ['true', 'users.status.disabled']], 'users.filter.status');
  for (const [sel, key] of [[roleSel, 'role'], [statusSel, 'disabled']]) {
    sel.addEventListener('change', () => {
      filters[key] = sel.value;
      pager.reset();
      load();
    });
  }

  page.append(
    pageHead('users.title', 'users.subtitle',
      button('users.new', { variant: 'primary', icon: 'plus', action: 'new-user', onclick: () => createDialog() })),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar' }, search.el, h('div', { class: 'toolbar-filters' }, roleSel, statusSel)),
      table.el,
      pager.el));

  function load() {
    return loadPage({
      table, pager, only,
      fetch: () => api.get('/users', { ...pager.params(), q: filters.q, role: filters.role, disabled: filters.disabled }),
      row: (u) => userRow(u),
      emptyKey: filters.q || filters.role || filters.disabled ? 'users.empty' : 'list.none',
      emptyIcon: 'users',
    });
  }

  function userRow(u) {
    const me = u.id === ctx.user.id;
    const name = u.display_name || u.username;
    const toggle = h('button', {
      type: 'button', class: ['btn', 'btn-sm', u.disabled ? 'btn-secondary' : 'btn-danger-ghost'],
      'data-action': u.disabled ? 'enable' : 'disable', disabled: me,
      i18nTitle: me ? 'users.error.self' : undefined,
    }, icon(u.disabled ? 'check' : 'lock'), h('span', { i18n: u.disabled ? 'users.enable' : 'users.disable' }));
    toggle.addEventListener('click', () => setDisabled(u, !u.disabled));
    return table.row([
      userCell(u, me),
      u.email ? h('span', { class: 'muted-strong', text: u.email }) : h('span', { class: 'muted', text: '—' }),
      h('span', { class: 'role-cell' }, roleBadge(u.role),
        u.effective_role && u.effective_role !== u.role
          ? h('span', { class: ['badge', 'badge-admin'], 'data-role': 'effective-role', i18n: 'users.effective_role.' + u.effective_role })
          : null,
        u.source && u.source !== 'local' ? h('span', { class: ['badge', 'badge-neutral'], 'data-role': 'source', i18n: 'users.source.' + u.source }) : null),
      statusBadge(u.disabled),
      h('span', { class: 'muted', date: u.last_login_at || '' }),
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'icon-btn', 'data-action': 'edit', i18nLabel: 'users.edit', i18nTitle: 'users.edit', onclick: () => editDialog(u) }, icon('edit')),
        // a directory's or provider's user has no BIC password (the API refuses one)
        h('button', { type: 'button', class: 'icon-btn', 'data-action': 'reset-password', i18nLabel: 'users.reset_password', disabled: !!u.source && u.source !== 'local',
          i18nTitle: u.source && u.source !== 'local' ? 'users.reset.external' : 'users.reset_password', onclick: () => resetDialog(u) }, icon('key')),
        h('button', { type: 'button', class: 'icon-btn', 'data-action': 'mfa', i18nLabel: 'users.mfa', i18nTitle: 'users.mfa', onclick: () => mfaDialog(u) }, icon('shield')),
        toggle),
    ], { 'data-user': u.username, 'data-user-id': String(u.id), class: u.disabled ? 'is-disabled' : null });
  }

  function createDialog() {
    const username = h('input', { type: 'text', name: 'username', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: '64', required: true });
    const display = h('input', { type: 'text', name: 'display_name', autocomplete: 'off', maxlength: '128' });
    const email = h('input', { type: 'email', name: 'email', autocomplete: 'off', maxlength: '254' });
    const role = select('role', ROLES, 'users.field.role');
    const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', minlength: '12', required: true });
    dialog({
      name: 'create-user',
      title: 'users.create.title',
      submitKey: 'users.create.submit',
      errors: CREATE_ERRORS,
      body: [
        h('div', { class: 'field-row' },
          field('users.field.username', username, { hint: 'users.field.username_hint' }),
          field('users.field.display_name', display, { optional: true })),
        h('div', { class: 'field-row' },
          field('users.field.email', email, { optional: true }),
          field('users.field.role', role)),
        field('users.field.password', password, { hint: 'users.field.password_hint' }),
      ],
      onSubmit: async (form, alert) => {
        const u = username.value.trim();
        if (!USERNAME_RE.test(u)) return invalid(alert, 'users.error.username', username);
        if (email.value.trim() && !EMAIL_RE.test(email.value.trim())) return invalid(alert, 'users.error.email', email);
        if (Array.from(password.value).length < 12) return invalid(alert, 'users.error.password', password);
        const body = { username: u, display_name: display.value.trim(), email: email.value.trim(), role: role.value, password: password.value };
        const created = await api.post('/users', body);
        toast('users.created', { name: (created && created.username) || u });
        pager.reset();
        load();
        return true;
      },
    });
  }

  function editDialog(u) {
    const me = u.id === ctx.user.id;
    const name = u.display_name || u.username;
    const display = h('input', { type: 'text', name: 'display_name', maxlength: '128', value: u.display_name || '' });
    const email = h('input', { type: 'email', name: 'email', maxlength: '254', value: u.email || '' });
    const role = select('role', ROLES, 'users.field.role');
    role.value = u.role;
    if (me) role.disabled = true;
    dialog({
      name: 'edit-user',
      title: 'users.edit.title',
      titleArgs: { name },
      submitKey: 'common.save',
      errors: SELF_ERRORS,
      body: [
        field('users.field.display_name', display),
        field('users.field.email', email, { optional: true }),
        field('users.field.role', role, { hint: me ? 'users.edit.self_hint' : undefined }),
      ],
      onSubmit: async (form, alert) => {
        if (email.value.trim() && !EMAIL_RE.test(email.value.trim())) return invalid(alert, 'users.error.email', email);
        const body = {};
        if (display.value.trim() !== (u.display_name || '')) body.display_name = display.value.trim();
        if (email.value.trim() !== (u.email || '')) body.email = email.value.trim();
        if (!me && role.value !== u.role) body.role = role.value;
        if (Object.keys(body).length) {
          await api.patch('/users/' + u.id, body);
          toast('users.saved', { name: body.display_name || name });
          load();
        }
        return true;
      },
    });
  }

  function resetDialog(u) {
    const name = u.display_name || u.username;
    const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', minlength: '12', required: true });
    dialog({
      name: 'reset-password',
      title: 'users.reset.title',
      titleArgs: { name },
      intro: 'users.reset.intro',
      introArgs: { name },
      submitKey: 'users.reset.submit',
      body: [field('users.field.new_password', password, { hint: 'password.hint' })],
      onSubmit: async (form, alert) => {
        if (Array.from(password.value).length < 12) return invalid(alert, 'users.error.password', password);
        await api.post('/users/' + u.id + '/password', { password: password.value });
        toast('users.reset.done', { name });
        return true;
      },
    });
  }

  // A user's two-step verification: what is set up, which groups require it, and a reset for
  // a lost phone (the user then signs in with the password and, if required, enrols again).
  function mfaDialog(u) {
    const name = u.display_name || u.username;
    const body = h('div', { class: 'user-mfa', 'data-role': 'user-mfa' });
    const alert = alertBox();
    dialog({ name: 'user-mfa', title: 'users.mfa.title', titleArgs: { name }, body: [alert.el, body] });

    async function show() {
      let s;
      try {
        s = await api.get('/users/' + u.id + '/mfa');
      } catch (e) {
        alert.showError(e);
        return;
      }
      const state = s.totp.enabled ? 'on' : s.totp.pending ? 'pending' : 'off';
      const groups = (s.required_by || []).map((g) => g.name).join(', ');
      const reset = button('users.mfa.reset', { variant: 'danger', icon: 'x', action: 'mfa-reset', onclick: () => doReset() });
      clear(body).append(
        h('dl', { class: 'props user-mfa-list' },
          h('div', { class: 'prop' }, h('dt', { i18n: 'users.mfa.state' }),
            h('dd', null, h('span', {
              class: ['badge', 'badge-dot', state === 'on' ? 'badge-success' : state === 'pending' ? 'badge-warning' : 'badge-neutral'],
              'data-role': 'mfa-state', 'data-state': state, i18n: 'users.mfa.state.' + state,
            }))),
          s.totp.enabled ? h('div', { class: 'prop' }, h('dt', { i18n: 'users.mfa.since' }), h('dd', { date: s.totp.confirmed_at || '' })) : null,
          s.totp.enabled ? h('div', { class: 'prop' }, h('dt', { i18n: 'users.mfa.last_used' }), h('dd', { date: s.totp.last_used_at || '' })) : null,
          s.totp.enabled ? h('div', { class: 'prop' }, h('dt', { i18n: 'users.mfa.codes_left' }), h('dd', { 'data-role': 'codes-left', text: String(s.recovery_codes_left) })) : null,
          h('div', { class: 'prop' }, h('dt', { i18n: 'users.mfa.required' }),
            h('dd', { 'data-role': 'mfa-required' }, s.required ? h('span', { text: groups }) : h('span', { class: 'muted', i18n: 'users.mfa.not_required' })))),
        state === 'off' ? h('p', { class: 'muted', i18n: 'users.mfa.none' }) : h('div', { class: 'user-mfa-actions' },
          h('p', { class: 'field-hint', i18n: 'users.mfa.reset_hint' }), reset));
    }

    async function doReset() {
      const ok = await confirmDialog({
        title: 'users.mfa.reset.title', titleArgs: { name },
        text: 'users.mfa.reset.intro', textArgs: { name },
        confirmKey: 'users.mfa.reset.submit', danger: true,
        action: () => api.del('/users/' + u.id + '/mfa'),
      });
      if (!ok) return;
      toast('users.mfa.reset.done', { name });
      show();
    }

    show();
  }

  async function setDisabled(u, disabled) {
    const name = u.display_name || u.username;
    if (disabled) {
      const ok = await confirmDialog({
        title: 'users.disable.title', titleArgs: { name },
        text: 'users.disable.intro', textArgs: { name },
        confirmKey: 'users.disable.submit', danger: true, errors: SELF_ERRORS,
        action: () => api.patch('/users/' + u.id, { disabled: true }),
      });
      if (!ok) return;
      toast('users.disabled_done', { name });
    } else {
      try {
        await api.patch('/users/' + u.id, { disabled: false });
      } catch (e) {
        table.alert.showError(e, SELF_ERRORS);
        return;
      }
      toast('users.enabled_done', { name });
    }
    load();
  }

  load();
}

function invalid(alert, key, input) {
  alert.show(key);
  input.focus();
  return false;
}
