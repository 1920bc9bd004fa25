// Sign-in providers (OpenID Connect; docs/oidc.md): the list, add and edit (the client secret is
// write-only: it can be replaced or removed, never shown), delete, "Test connection" (bicd fetches
// the discovery document and the keys and says in plain words what fails), and each provider's
// group mappings (a value of the groups claim makes its users members of a group).
import * as api from '/common/api.js';
import { h, icon, clear, field, dialog, confirmDialog, toast, button, alertBox, busy } from '/common/ui.js';
import { pageHead, dataTable, latest } from './lists.js';
import { groupMapsDialog } from './group-maps.js';
import './oidc-i18n.js';

const ERRORS = {
  conflict: (e) => ({ key: 'oidc.error.conflict', args: { detail: e.message } }),
  validation_failed: (e) => ({ key: 'error.validation_failed', args: { detail: e.message } }),
};
const TOKEN_AUTH = ['client_secret_basic', 'client_secret_post', 'none'];

// bicd's explanations are clauses ("the provider calls itself ..."); shown as sentences.
export function sentence(text) {
  const s = String(text || '').trim();
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

// The PEM certificates in a pasted bundle, one string each.
export function splitPem(text) {
  return (String(text || '').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) || [])
    .map((c) => c.trim() + '\n');
}

export function oidcPage(page) {
  const table = dataTable([
    { key: 'oidc.col.provider', class: 'col-name', noLabel: true },
    { key: 'oidc.col.users', class: 'col-num' },
    { key: 'oidc.col.state', class: 'col-state' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'oidc-providers');
  const only = latest();

  page.append(
    pageHead('oidc.title', 'oidc.subtitle',
      button('oidc.new', { variant: 'primary', icon: 'plus', action: 'new-provider', onclick: () => providerDialog(null) })),
    h('section', { class: 'card list-card' }, table.el));

  async function load() {
    table.loading();
    table.alert.hide();
    let res;
    try {
      res = await only(() => api.get('/oidc-providers', { limit: 500 }));
    } catch (e) {
      table.done();
      table.alert.showError(e);
      return;
    }
    if (!res.current) return;
    table.done();
    const items = res.value.items || [];
    table.setRows(items.map(row));
    if (!items.length) table.empty('oidc.empty', 'key');
  }

  function row(p) {
    return table.row([
      // the issuer under the name: a column of its own left it too narrow for an address
      h('div', { class: 'user-cell-text' },
        h('span', { class: 'user-cell-name', text: p.display_name || p.name }),
        h('span', { class: 'muted-strong', 'data-role': 'issuer', text: p.issuer }),
        h('span', { class: 'user-cell-sub', text: p.name + ' · ' + p.client_id })),
      h('span', { class: 'num', 'data-role': 'users', text: String(p.users) }),
      h('span', { class: ['badge', p.enabled ? 'badge-success' : 'badge-neutral'], 'data-role': 'state', i18n: p.enabled ? 'oidc.enabled' : 'oidc.disabled' }),
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'test', onclick: () => testDialog(p) },
          icon('activity'), h('span', { i18n: 'oidc.test' })),
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'group-maps', onclick: () => mapsDialog(p) },
          icon('group'), h('span', { i18n: 'oidc.maps' })),
        h('button', { type: 'button', class: 'icon-btn', 'data-action': 'edit', i18nLabel: 'oidc.edit', i18nTitle: 'oidc.edit', onclick: () => providerDialog(p) }, icon('edit')),
        h('button', { type: 'button', class: 'icon-btn icon-btn-danger', 'data-action': 'delete', i18nLabel: 'oidc.delete', i18nTitle: 'oidc.delete', onclick: () => deleteProvider(p) }, icon('trash'))),
    ], { 'data-provider': p.name, 'data-provider-id': String(p.id) });
  }

  function providerDialog(p) {
    const input = (name, value, attrs) => h('input', { type: 'text', name, autocomplete: 'off', spellcheck: 'false', value: value || '', ...(attrs || {}) });
    const name = input('name', p && p.name, { maxlength: '64', required: true });
    const shown = input('display_name', p && p.display_name, { maxlength: '128' });
    const issuer = input('issuer', p && p.issuer, { maxlength: '512', required: true, placeholder: 'https://login.example.com/realms/staff' });
    const clientId = input('client_id', p && p.client_id, { maxlength: '255', required: true });
    const secret = h('input', { type: 'password', name: 'client_secret', autocomplete: 'new-password', maxlength: '512', i18nPlaceholder: p && p.client_secret_set ? 'oidc.field.secret_keep' : undefined });
    const clearSecret = h('input', { type: 'checkbox', name: 'clear_secret' });
    const auth = h('select', { name: 'token_auth' }, TOKEN_AUTH.map((a) => h('option', { value: a, i18n: 'oidc.auth.' + a })));
    auth.value = p ? p.token_auth : 'client_secret_basic';
    const scopes = input('scopes', p ? p.scopes : 'openid profile email', { maxlength: '255' });
    const userClaim = input('username_claim', p ? p.username_claim : 'preferred_username', { maxlength: '64' });
    const nameClaim = input('display_name_claim', p ? p.display_name_claim : 'name', { maxlength: '64' });
    const mailClaim = input('email_claim', p ? p.email_claim : 'email', { maxlength: '64' });
    const groupsClaim = input('groups_claim', p ? p.groups_claim : 'groups', { maxlength: '64' });
    const redirect = input('redirect_uri', p && p.redirect_uri, { maxlength: '512', placeholder: p && p.callback_uri ? p.callback_uri : '' });
    const ca = h('textarea', { name: 'ca_certs', rows: '4', spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE-----' });
    ca.value = p && p.ca_certs ? p.ca_certs.join('') : '';
    const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: p ? p.enabled : true });
    dialog({
      name: p ? 'edit-provider' : 'create-provider',
      wide: true,
      title: p ? 'oidc.edit.title' : 'oidc.create.title',
      titleArgs: p ? { name: p.display_name || p.name } : undefined,
      submitKey: p ? 'common.save' : 'oidc.create.submit',
      errors: ERRORS,
      body: [
        h('div', { class: 'field-row' }, field('oidc.field.name', name, { hint: 'oidc.field.name_hint' }),
          field('oidc.field.display_name', shown, { hint: 'oidc.field.display_name_hint', optional: true })),
        field('oidc.field.issuer', issuer, { hint: 'oidc.field.issuer_hint' }),
        h('div', { class: 'field-row' }, field('oidc.field.client_id', clientId),
          field('oidc.field.client_secret', secret, { hint: p ? 'oidc.field.secret_hint_edit' : 'oidc.field.secret_hint' })),
        p && p.client_secret_set ? h('div', { class: 'field' },
          h('label', { class: 'checkbox' }, clearSecret, h('span', { i18n: 'oidc.field.clear_secret' }))) : null,
        h('div', { class: 'field-row' }, field('oidc.field.token_auth', auth),
          field('oidc.field.scopes', scopes, { hint: 'oidc.field.scopes_hint' })),
        h('div', { class: 'field-row' }, field('oidc.field.username_claim', userClaim, { hint: 'oidc.field.username_claim_hint' }),
          field('oidc.field.groups_claim', groupsClaim, { hint: 'oidc.field.groups_claim_hint', optional: true })),
        h('div', { class: 'field-row' }, field('oidc.field.display_name_claim', nameClaim, { optional: true }),
          field('oidc.field.email_claim', mailClaim, { optional: true })),
        field('oidc.field.redirect_uri', redirect, { hint: 'oidc.field.redirect_uri_hint', optional: true }),
        field('oidc.field.ca', ca, { hint: 'oidc.field.ca_hint', optional: true }),
        h('div', { class: 'field' }, h('label', { class: 'checkbox' }, enabled, h('span', { i18n: 'oidc.field.enabled' }))),
      ],
      onSubmit: async (form, alert) => {
        const need = [[name, 'oidc.error.name'], [issuer, 'oidc.error.issuer'], [clientId, 'oidc.error.client_id']];
        for (const [el, key] of need) {
          if (!el.value.trim()) {
            alert.show(key);
            el.focus();
            return false;
          }
        }
        const certs = splitPem(ca.value);
        if (ca.value.trim() && !certs.length) {
          alert.show('oidc.error.ca');
          ca.focus();
          return false;
        }
        const body = {
          name: name.value.trim(), display_name: shown.value.trim(), issuer: issuer.value.trim(),
          client_id: clientId.value.trim(), token_auth: auth.value, scopes: scopes.value.trim().replace(/\s+/g, ' '),
          username_claim: userClaim.value.trim(), display_name_claim: nameClaim.value.trim(),
          email_claim: mailClaim.value.trim(), groups_claim: groupsClaim.value.trim(),
          redirect_uri: redirect.value.trim(), ca_certs: certs.length ? certs : null, enabled: enabled.checked,
        };
        if (secret.value) body.client_secret = secret.value;
        else if (clearSecret.checked) body.client_secret = null;
        if (p) await api.patch('/oidc-providers/' + p.id, body);
        else await api.post('/oidc-providers', body);
        toast(p ? 'oidc.saved' : 'oidc.created', { name: body.display_name || body.name });
        load();
        return true;
      },
    });
  }

  async function deleteProvider(p) {
    const ok = await confirmDialog({
      title: 'oidc.delete.title', titleArgs: { name: p.display_name || p.name },
      text: p.users ? 'oidc.delete.in_use' : 'oidc.delete.intro', textArgs: { n: p.users },
      confirmKey: 'oidc.delete.submit', danger: true, errors: ERRORS,
      action: () => api.del('/oidc-providers/' + p.id),
    });
    if (!ok) return;
    toast('oidc.deleted', { name: p.display_name || p.name });
    load();
  }

  // Test connection: the steps bicd took and, for the first that failed, why.
  function testDialog(p) {
    const out = h('div', { class: 'oidc-test', 'data-role': 'oidc-test' });
    const alert = alertBox();
    const again = button('oidc.test.again', { icon: 'refresh', action: 'test-again' });
    // the button stays where it is however long the answer
    dialog({
      name: 'oidc-test', wide: true,
      title: 'oidc.test.title', titleArgs: { name: p.display_name || p.name },
      intro: 'oidc.test.intro',
      body: [h('div', { class: 'field' }, h('div', {}, again)), alert.el, out],
    });
    async function run() {
      alert.hide();
      clear(out).append(h('div', { class: 'security-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        h('span', { class: 'muted', i18n: 'oidc.test.running' })));
      const done = busy(again);
      let r;
      try {
        r = await api.post('/oidc-providers/' + p.id + '/test');
      } catch (e) {
        clear(out);
        alert.showError(e);
        return;
      } finally {
        done();
      }
      clear(out).append(
        h('div', { class: ['alert', r.ok ? 'alert-success' : 'alert-error'], 'data-role': 'oidc-test-result', 'data-ok': String(r.ok) },
          h('span', { class: 'alert-icon' }, icon(r.ok ? 'check' : 'alert')),
          h('span', { class: 'alert-text' }, h('strong', { i18n: r.ok ? 'oidc.test.ok' : 'oidc.test.failed' }), ' ',
            h('span', { 'data-role': 'oidc-test-message', text: sentence(r.message) }))),
        // each step: its name, then what bicd found, left-aligned under it (a phone has no room beside)
        h('ul', { class: 'member-list' }, (r.steps || []).map((s) => h('li', { class: 'member-item', 'data-step': s.step, 'data-ok': String(s.ok) },
          h('span', { class: 'user-cell-text' },
            h('span', { class: 'user-cell-name' },
              h('span', { class: ['badge', s.ok ? 'badge-success' : 'badge-danger'] }, icon(s.ok ? 'check' : 'x'), h('span', { i18n: 'oidc.step.' + s.step }))),
            h('span', { class: 'muted-strong', text: sentence(s.message) }))))),
        r.callback_uri ? h('div', { class: 'field', 'data-role': 'oidc-callback' }, h('span', { class: 'field-hint', i18n: 'oidc.test.callback' }),
          h('code', { class: 'mono', text: r.callback_uri })) : null);
    }
    again.addEventListener('click', run);
    run();
  }

  // Group mappings: claim value -> group.
  function mapsDialog(p) {
    groupMapsDialog({
      name: 'group-maps', keys: 'oidc.maps', titleArgs: { name: p.display_name || p.name },
      intro: p.groups_claim ? 'oidc.maps.intro' : 'oidc.maps.no_claim', introArgs: { claim: p.groups_claim },
      path: '/oidc-providers/' + p.id + '/group-maps',
      input: { name: 'claim_value', maxlength: '255', label: 'oidc.maps.value', hint: 'oidc.maps.value_hint' },
      label: (m) => m.claim_value, group: (m) => m.group_name,
      errors: ERRORS, onClose: () => load(),
    });
  }

  load();
}
