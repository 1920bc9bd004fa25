// Directories (LDAP / Active Directory; docs/directories.md): the list in the order sign-in asks
// them, add and edit with presets for OpenLDAP and Active Directory (the bind password is
// write-only: it can be replaced or removed, never shown), delete, "Test connection" (each server,
// TLS, the bind and the bases, and optionally one user with his groups, every failure in plain
// words), "Sync now", each directory's users, and its group mappings (a directory group's members
// belong to a BIC group, and so to the pools that group is entitled to).
import * as api from '/common/api.js';
import { h, icon, clear, field, dialog, confirmDialog, toast, button, alertBox, busy } from '/common/ui.js';
import { formatNumber } from '/common/i18n.js';
import { pageHead, dataTable, latest } from './lists.js';
import { groupMapsDialog } from './group-maps.js';
import './dir-i18n.js';

const ERRORS = {
  conflict: (e) => ({ key: 'dir.error.conflict', args: { detail: e.message } }),
  validation_failed: (e) => ({ key: 'error.validation_failed', args: { detail: e.message } }),
};

// What a new directory of each kind starts with; an admin changes what differs.
export const PRESETS = {
  openldap: {
    url: 'ldap://ldap.example.com', tls: 'starttls',
    user_base: 'ou=people,dc=example,dc=com', user_filter: '(&(objectClass=inetOrgPerson)(uid=%s))',
    group_base: 'ou=groups,dc=example,dc=com', group_filter: '(&(objectClass=groupOfNames)(member=%d))',
    disabled_filter: '(pwdAccountLockedTime=*)',
    attr_username: 'uid', attr_display_name: 'cn', attr_email: 'mail', attr_member_of: '',
  },
  ad: {
    url: 'ldaps://dc1.example.com', tls: 'ldaps',
    user_base: 'dc=example,dc=com', user_filter: '(&(objectCategory=person)(objectClass=user)(sAMAccountName=%s))',
    group_base: '', group_filter: '', disabled_filter: '',
    attr_username: 'sAMAccountName', attr_display_name: 'displayName', attr_email: 'mail', attr_member_of: 'memberOf',
  },
};
const TLS = ['ldaps', 'starttls', 'none'];

// PEM text as the API takes it: one line (its strict JSON refuses line breaks inside strings;
// bicd puts them back).
export function pemOneLine(text) {
  return String(text || '').trim().split(/\s+/).join(' ');
}

// bicd's explanations are clauses ("the directory refused ..."); shown as sentences.
function sentence(text) {
  const s = String(text || '').trim();
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

function tlsOf(d) {
  if (d.starttls) return 'starttls';
  return /^ldaps:\/\//i.test(String(d.url).trim()) ? 'ldaps' : 'none';
}

export function directoriesPage(page) {
  const table = dataTable([
    { key: 'dir.col.directory', class: 'col-name', noLabel: true },
    { key: 'dir.col.users', class: 'col-num' },
    { key: 'dir.col.sync', class: 'col-desc' },
    { key: 'dir.col.state', class: 'col-state' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'directories');
  const only = latest();

  page.append(
    pageHead('dir.title', 'dir.subtitle',
      button('dir.new', { variant: 'primary', icon: 'plus', action: 'new-directory', onclick: () => directoryDialog(null) })),
    h('section', { class: 'card list-card' }, table.el));

  async function load() {
    table.loading();
    table.alert.hide();
    let res;
    try {
      res = await only(() => api.get('/directories'));
    } catch (e) {
      table.done();
      table.alert.showError(e);
      return;
    }
    if (!res.current) return;
    table.done();
    const items = res.value.items || [];
    table.setRows(items.map(row));
    if (!items.length) table.empty('dir.empty', 'shield');
  }

  function syncCell(d) {
    const s = d.sync || {};
    if (s.running) return h('span', { class: 'badge badge-info', 'data-role': 'sync', i18n: 'dir.sync.running' });
    if (s.last_error) {
      return h('div', { class: 'user-cell-text', 'data-role': 'sync' },
        h('span', { class: 'badge badge-danger', i18n: 'dir.sync.failed' }),
        h('span', { class: 'user-cell-sub', text: s.last_error }));
    }
    if (!s.last_at) return h('span', { class: 'muted', 'data-role': 'sync', i18n: 'dir.sync.never' });
    return h('div', { class: 'user-cell-text', 'data-role': 'sync' },
      h('span', { class: 'muted-strong', date: s.last_at }),
      h('span', { class: 'user-cell-sub', i18n: 'dir.sync.users', i18nArgs: { n: formatNumber(s.last_users || 0) } }));
  }

  function row(d) {
    const warn = (d.warnings || []).length;
    return table.row([
      h('div', { class: 'user-cell-text' },
        h('span', { class: 'user-cell-name', text: d.name }),
        h('span', { class: 'user-cell-sub', text: d.url + (d.starttls ? ' · StartTLS' : '') }),
        warn ? h('span', { class: 'badge badge-warning', 'data-role': 'warning', title: d.warnings.join('\n') },
          icon('alert'), h('span', { i18n: 'dir.warning_count', i18nArgs: { n: warn } })) : null),
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm num', 'data-action': 'users', onclick: () => usersDialog(d) },
        h('span', { text: formatNumber(d.users) })),
      syncCell(d),
      h('span', { class: ['badge', d.enabled ? 'badge-success' : 'badge-neutral'], 'data-role': 'state', i18n: d.enabled ? 'dir.enabled' : 'dir.disabled' }),
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'test', onclick: () => testDialog(d) },
          icon('activity'), h('span', { i18n: 'dir.test' })),
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'group-maps', onclick: () => mapsDialog(d) },
          icon('group'), h('span', { i18n: 'dir.maps' })),
        h('button', { type: 'button', class: 'icon-btn', 'data-action': 'sync', i18nLabel: 'dir.sync_now', i18nTitle: 'dir.sync_now', disabled: !d.enabled, onclick: () => syncNow(d) }, icon('refresh')),
        h('button', { type: 'button', class: 'icon-btn', 'data-action': 'edit', i18nLabel: 'dir.edit', i18nTitle: 'dir.edit', onclick: () => directoryDialog(d) }, icon('edit')),
        h('button', { type: 'button', class: 'icon-btn icon-btn-danger', 'data-action': 'delete', i18nLabel: 'dir.delete', i18nTitle: 'dir.delete', onclick: () => deleteDirectory(d) }, icon('trash'))),
    ], { 'data-directory': d.name, 'data-directory-id': String(d.id) });
  }

  function directoryDialog(d) {
    const input = (name, value, attrs) => h('input', { type: 'text', name, autocomplete: 'off', spellcheck: 'false', value: value === undefined || value === null ? '' : String(value), ...(attrs || {}) });
    const start = d || { ...PRESETS.openldap, name: '', bind_dn: '', ca_cert: '', timeout: 5, sync_interval: 0, order: 100, enabled: true };
    const kind = h('select', { name: 'kind' }, ['openldap', 'ad'].map((k) => h('option', { value: k, i18n: 'dir.kind.' + k })));
    const name = input('name', start.name, { maxlength: '64', required: true });
    const url = input('url', start.url, { maxlength: '1024', required: true });
    const tls = h('select', { name: 'tls' }, TLS.map((k) => h('option', { value: k, i18n: 'dir.tls.' + k })));
    tls.value = d ? tlsOf(d) : start.tls;
    const tlsWarn = h('p', { class: 'alert alert-warning', 'data-role': 'plaintext', i18n: 'dir.tls.none_warning', hidden: tls.value !== 'none' });
    const ca = h('textarea', { name: 'ca_cert', rows: '4', spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE-----' });
    ca.value = start.ca_cert || '';
    const bindDn = input('bind_dn', start.bind_dn, { maxlength: '1024', placeholder: 'cn=bic,ou=services,dc=example,dc=com' });
    const secret = h('input', { type: 'password', name: 'bind_password', autocomplete: 'new-password', maxlength: '256', i18nPlaceholder: d && d.bind_password_set ? 'dir.field.password_keep' : undefined });
    const clearSecret = h('input', { type: 'checkbox', name: 'clear_password' });
    const userBase = input('user_base', start.user_base, { maxlength: '1024', required: true });
    const userFilter = input('user_filter', start.user_filter, { maxlength: '1024', required: true });
    const groupBase = input('group_base', start.group_base, { maxlength: '1024' });
    const groupFilter = input('group_filter', start.group_filter, { maxlength: '1024' });
    const disabledFilter = input('disabled_filter', start.disabled_filter, { maxlength: '1024' });
    const attrUser = input('attr_username', start.attr_username, { maxlength: '64', required: true });
    const attrName = input('attr_display_name', start.attr_display_name, { maxlength: '64' });
    const attrMail = input('attr_email', start.attr_email, { maxlength: '64' });
    const attrMemberOf = input('attr_member_of', start.attr_member_of, { maxlength: '64' });
    const num = (n, v, min, max) => h('input', { type: 'number', name: n, min: String(min), max: String(max), step: '1', inputmode: 'numeric', value: String(v) });
    const timeout = num('timeout', start.timeout, 1, 60);
    const syncEvery = num('sync_interval', start.sync_interval, 0, 604800);
    const order = num('order', start.order, -1000000, 1000000);
    const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: start.enabled });

    kind.addEventListener('change', () => {
      const p = PRESETS[kind.value];
      url.value = p.url;
      tls.value = p.tls;
      for (const [el, k] of [[userBase, 'user_base'], [userFilter, 'user_filter'], [groupBase, 'group_base'], [groupFilter, 'group_filter'],
        [disabledFilter, 'disabled_filter'], [attrUser, 'attr_username'], [attrName, 'attr_display_name'], [attrMail, 'attr_email'],
        [attrMemberOf, 'attr_member_of']]) el.value = p[k];
      tls.dispatchEvent(new Event('change'));
    });
    tls.addEventListener('change', () => {
      tlsWarn.hidden = tls.value !== 'none';
      const u = url.value.trim();
      if (tls.value === 'ldaps') url.value = u.replace(/(^|\s)ldap:\/\//gi, '$1ldaps://');
      else url.value = u.replace(/(^|\s)ldaps:\/\//gi, '$1ldap://');
    });

    const section = (key) => h('h3', { class: 'section-title', i18n: key });
    dialog({
      name: d ? 'edit-directory' : 'create-directory',
      wide: true,
      title: d ? 'dir.edit.title' : 'dir.create.title',
      titleArgs: d ? { name: d.name } : undefined,
      submitKey: d ? 'common.save' : 'dir.create.submit',
      errors: ERRORS,
      body: [
        d ? null : field('dir.field.kind', kind, { hint: 'dir.field.kind_hint' }),
        h('div', { class: 'field-row' }, field('dir.field.name', name), field('dir.field.order', order, { hint: 'dir.field.order_hint' })),
        section('dir.section.connection'),
        field('dir.field.url', url, { hint: 'dir.field.url_hint' }),
        h('div', { class: 'field-row' }, field('dir.field.tls', tls), field('dir.field.timeout', timeout, { hint: 'dir.field.timeout_hint' })),
        tlsWarn,
        field('dir.field.ca', ca, { hint: 'dir.field.ca_hint', optional: true }),
        h('div', { class: 'field-row' }, field('dir.field.bind_dn', bindDn, { hint: 'dir.field.bind_dn_hint', optional: true }),
          field('dir.field.bind_password', secret, { hint: d ? 'dir.field.password_hint_edit' : 'dir.field.password_hint' })),
        d && d.bind_password_set ? h('div', { class: 'field' },
          h('label', { class: 'checkbox' }, clearSecret, h('span', { i18n: 'dir.field.clear_password' }))) : null,
        // bases and filters are long: each gets the whole width, so none is cut off while typed
        section('dir.section.users'),
        field('dir.field.user_base', userBase),
        field('dir.field.user_filter', userFilter, { hint: 'dir.field.user_filter_hint' }),
        field('dir.field.disabled_filter', disabledFilter, { hint: 'dir.field.disabled_filter_hint', optional: true }),
        section('dir.section.groups'),
        field('dir.field.group_base', groupBase, { optional: true }),
        field('dir.field.group_filter', groupFilter, { hint: 'dir.field.group_filter_hint', optional: true }),
        section('dir.section.attributes'),
        h('div', { class: 'field-row' }, field('dir.field.attr_username', attrUser, { hint: 'dir.field.attr_username_hint' }),
          field('dir.field.attr_member_of', attrMemberOf, { hint: 'dir.field.attr_member_of_hint', optional: true })),
        h('div', { class: 'field-row' }, field('dir.field.attr_display_name', attrName, { optional: true }),
          field('dir.field.attr_email', attrMail, { optional: true })),
        section('dir.section.sync'),
        field('dir.field.sync_interval', syncEvery, { hint: 'dir.field.sync_interval_hint' }),
        h('div', { class: 'field' }, h('label', { class: 'checkbox' }, enabled, h('span', { i18n: 'dir.field.enabled' }))),
      ],
      onSubmit: async (form, alert) => {
        const need = [[name, 'dir.error.name'], [url, 'dir.error.url'], [userBase, 'dir.error.user_base'],
          [userFilter, 'dir.error.user_filter'], [attrUser, 'dir.error.attr_username']];
        for (const [el, key] of need) {
          if (!el.value.trim()) {
            alert.show(key);
            el.focus();
            return false;
          }
        }
        if (ca.value.trim() && !/-----BEGIN CERTIFICATE-----/.test(ca.value)) {
          alert.show('dir.error.ca');
          ca.focus();
          return false;
        }
        const int = (el) => Number.parseInt(String(el.value).trim(), 10);
        const body = {
          name: name.value.trim(), url: url.value.trim().split(/\s+/).join(' '), starttls: tls.value === 'starttls',
          ca_cert: pemOneLine(ca.value), bind_dn: bindDn.value.trim(),
          user_base: userBase.value.trim(), user_filter: userFilter.value.trim(),
          group_base: groupBase.value.trim(), group_filter: groupFilter.value.trim(),
          disabled_filter: disabledFilter.value.trim(), attr_username: attrUser.value.trim(),
          attr_display_name: attrName.value.trim(), attr_email: attrMail.value.trim(),
          attr_member_of: attrMemberOf.value.trim(), timeout: int(timeout), sync_interval: int(syncEvery),
          order: int(order), enabled: enabled.checked,
        };
        for (const k of ['timeout', 'sync_interval', 'order']) {
          if (!Number.isFinite(body[k])) {
            alert.show('dir.error.number');
            return false;
          }
        }
        if (secret.value) body.bind_password = secret.value;
        else if (clearSecret.checked) body.bind_password = '';
        if (d) await api.patch('/directories/' + d.id, body);
        else await api.post('/directories', body);
        toast(d ? 'dir.saved' : 'dir.created', { name: body.name });
        load();
        return true;
      },
    });
  }

  async function deleteDirectory(d) {
    const ok = await confirmDialog({
      title: 'dir.delete.title', titleArgs: { name: d.name },
      text: d.users ? 'dir.delete.in_use' : 'dir.delete.intro', textArgs: { n: formatNumber(d.users) },
      confirmKey: 'dir.delete.submit', danger: true, errors: ERRORS,
      action: () => api.del('/directories/' + d.id),
    });
    if (!ok) return;
    toast('dir.deleted', { name: d.name });
    load();
  }

  async function syncNow(d) {
    try {
      await api.post('/directories/' + d.id + '/sync');
    } catch (e) {
      table.alert.showError(e, ERRORS);
      return;
    }
    toast('dir.sync.requested', { name: d.name });
    load();
  }

  // Test connection: every server, then (optionally) one user as BIC would see him.
  function testDialog(d) {
    const out = h('div', { class: 'dir-test', 'data-role': 'dir-test' });
    const alert = alertBox();
    const who = h('input', { type: 'text', name: 'username', maxlength: '64', autocomplete: 'off', spellcheck: 'false' });
    const run = button('dir.test.run', { variant: 'primary', icon: 'activity', action: 'run-test' });
    dialog({
      name: 'directory-test', wide: true,
      title: 'dir.test.title', titleArgs: { name: d.name },
      intro: 'dir.test.intro',
      body: [h('div', { class: 'members-add' }, field('dir.test.username', who, { hint: 'dir.test.username_hint', optional: true }), run),
        alert.el, out],
    });

    function result(r) {
      const steps = ['connect', 'starttls', 'bind', 'search'];
      return [
        h('div', { class: ['alert', r.ok ? 'alert-success' : 'alert-error'], 'data-role': 'dir-test-result', 'data-ok': String(r.ok), 'data-step': r.step || '' },
          h('span', { class: 'alert-icon' }, icon(r.ok ? 'check' : 'alert')),
          // the verdict, why (as a sentence), then the step that failed
          h('span', { class: 'alert-text' },
            h('strong', { i18n: r.ok ? 'dir.test.ok' : 'dir.test.failed' }), ' ',
            r.ok ? null : h('span', { 'data-role': 'dir-test-message', text: sentence(r.message) }), ' ',
            !r.ok && r.step && steps.includes(r.step) ? h('span', { class: 'badge badge-danger', 'data-role': 'dir-test-step', i18n: 'dir.step.' + r.step }) : null)),
        (r.warnings || []).map((w) => h('p', { class: 'alert alert-warning', 'data-role': 'dir-warning', text: w })),
        h('h3', { class: 'section-title', i18n: 'dir.test.servers' }),
        h('ul', { class: 'member-list' }, (r.servers || []).map((s) => h('li', { class: 'member-item', 'data-server': s.url, 'data-ok': String(s.ok) },
          h('span', { class: 'user-cell-text' },
            h('span', { class: 'user-cell-name', text: s.url }),
            h('span', { class: 'user-cell-sub', text: s.ok ? (s.tls || '') : s.message === r.message ? '' : sentence(s.message) })),
          h('span', { class: ['badge', s.ok ? 'badge-success' : 'badge-danger'] }, icon(s.ok ? 'check' : 'x'),
            h('span', { i18n: s.ok ? 'dir.test.server_ok' : 'dir.step.' + s.step, i18nArgs: { ms: formatNumber(s.ms) } }))))),
        r.user ? userBlock(r.user) : null,
      ];
    }

    function userBlock(u) {
      if (!u.found) return null;
      const row = (key, value) => h('div', { class: 'prop' }, h('dt', { i18n: key }), h('dd', { text: value || '—' }));
      return h('div', { 'data-role': 'dir-test-user' },
        h('h3', { class: 'section-title', i18n: 'dir.test.user' }),
        h('dl', { class: 'props' }, row('dir.test.dn', u.dn), row('dir.test.name', u.username), row('dir.test.display_name', u.display_name),
          row('dir.test.email', u.email)),
        u.disabled ? h('p', { class: 'alert alert-warning', i18n: 'dir.test.user_disabled' }) : null,
        h('h3', { class: 'section-title', i18n: 'dir.test.groups', i18nArgs: { n: (u.groups || []).length } }),
        h('ul', { class: 'member-list', 'data-role': 'dir-test-groups' }, (u.groups || []).map((g) => h('li', { class: 'member-item', 'data-group-dn': g.dn },
          h('span', { class: 'user-cell-text' }, h('span', { class: 'user-cell-name', text: g.dn }),
            g.bic_groups.length
              ? h('span', { class: 'user-cell-sub' }, icon('arrowRight'), ' ', h('span', { text: g.bic_groups.map((b) => b.name).join(', ') }))
              : h('span', { class: 'user-cell-sub', i18n: 'dir.test.unmapped' }))))));
    }

    async function go() {
      alert.hide();
      clear(out).append(h('div', { class: 'security-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        h('span', { class: 'muted', i18n: 'dir.test.running' })));
      const done = busy(run);
      let r;
      try {
        const body = who.value.trim() ? { username: who.value.trim() } : {};
        r = await api.post('/directories/' + d.id + '/test', body);
      } catch (e) {
        clear(out);
        alert.showError(e);
        return;
      } finally {
        done();
      }
      clear(out).append(...result(r).flat().filter(Boolean));
    }
    run.addEventListener('click', go);
    who.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter') return;
      ev.preventDefault();
      go();
    });
    go();
  }

  // The users the directory's sign-ins made.
  function usersDialog(d) {
    const list = h('ul', { class: 'member-list', 'data-role': 'directory-users' });
    const alert = alertBox();
    const more = button('dir.users.more', { variant: 'ghost', class: 'btn-sm' });
    more.hidden = true;
    let after = null;
    dialog({
      name: 'directory-users', wide: true,
      title: 'dir.users.title', titleArgs: { name: d.name },
      intro: 'dir.users.intro',
      body: [alert.el, list, more],
    });
    async function page() {
      let r;
      try {
        r = await api.get('/directories/' + d.id + '/users', { limit: 100, after });
      } catch (e) {
        alert.showError(e);
        return;
      }
      for (const u of r.items || []) {
        list.append(h('li', { class: 'member-item', 'data-user': u.username },
          h('span', { class: 'user-cell-text' },
            h('span', { class: 'user-cell-name', text: u.display_name ? u.display_name + ' (' + u.username + ')' : u.username }),
            h('span', { class: 'user-cell-sub', text: u.dn })),
          u.disabled_in_directory ? h('span', { class: 'badge badge-danger', i18n: 'dir.users.disabled_there' })
            : u.disabled ? h('span', { class: 'badge badge-neutral', i18n: 'dir.users.disabled_here' })
              : h('span', { class: 'muted', date: u.synced_at || '' })));
      }
      if (!list.children.length) list.append(h('li', { class: 'member-empty', i18n: 'dir.users.empty' }));
      after = r.next_after === undefined ? null : r.next_after;
      more.hidden = after === null;
    }
    more.addEventListener('click', page);
    page();
  }

  // Group mappings: directory group (DN) -> BIC group.
  function mapsDialog(d) {
    groupMapsDialog({
      name: 'directory-group-maps', keys: 'dir.maps', titleArgs: { name: d.name },
      intro: !d.attr_member_of && !d.group_base ? 'dir.maps.no_source' : 'dir.maps.intro',
      path: '/directories/' + d.id + '/group-maps',
      input: { name: 'group_dn', maxlength: '1024', placeholder: 'cn=vdi-users,ou=groups,dc=example,dc=com', label: 'dir.maps.dn', hint: 'dir.maps.dn_hint' },
      label: (m) => m.group_dn, group: (m) => m.group.name,
      errors: ERRORS, onClose: () => load(),
    });
  }

  load();
}
