// OpenID Connect on the sign-in page (both portals; docs/oidc.md):
//  - oidcSignIn(kind, errorBox): one button per enabled provider (GET /auth/oidc/providers). A
//    button is a plain link to GET /auth/oidc/{id}/start, which answers with a redirect to the
//    provider; the provider sends the browser back to bicd's callback, and bicd back here.
//  - oidcReturn(): what came back. bicd appends ?oidc_error=<code> when it refused the sign-in,
//    or ?oidc=mfa when a second factor is due; the second step's token then waits in a
//    short-lived HttpOnly cookie, handed over once by GET /auth/oidc/mfa, so it never appears in
//    an address, the history or a log. Both are removed from the address at once.
import * as api from './api.js';
import './oidc-i18n.js';
import { h, icon } from './ui.js';

const ERRORS = new Set(['state', 'denied', 'provider', 'token', 'account', 'disabled', 'locked', 'unavailable',
  'rate_limited']);
let pendingError = null;

// Reads the provider's return from the address and removes it. Resolves to null (nothing came
// back), {error: code} (shown by the next oidcSignIn) or {mfa: {step, token, expiresIn}, username}
// for the portal's second-step screens.
export async function oidcReturn() {
  const params = new URLSearchParams(window.location.search);
  const err = params.get('oidc_error');
  const mfa = params.get('oidc') === 'mfa';
  if (!err && !mfa) return null;
  params.delete('oidc_error');
  params.delete('oidc');
  const rest = params.toString();
  window.history.replaceState(window.history.state, '', window.location.pathname + (rest ? '?' + rest : '') + window.location.hash);
  if (err) {
    pendingError = ERRORS.has(err) ? err : 'unavailable';
    return { error: pendingError };
  }
  try {
    const d = await api.get('/auth/oidc/mfa');
    return { mfa: { step: d.mfa_step, token: d.mfa_token, expiresIn: d.expires_in }, username: d.username };
  } catch (e) {
    pendingError = e instanceof api.ApiError && e.status === 401 ? 'state' : 'unavailable';
    return { error: pendingError };
  }
}

// The provider buttons for the sign-in card (hidden while there are none). errorBox (an
// alertBox) shows why the last provider sign-in was refused, once.
export function oidcSignIn(kind, errorBox) {
  const wrap = h('div', { class: 'login-form oidc-signin', 'data-role': 'oidc-signin', hidden: true });
  if (pendingError && errorBox) {
    errorBox.show('oidc.error.' + pendingError);
    errorBox.el.setAttribute('data-oidc-error', pendingError);
  }
  pendingError = null;
  api.get('/auth/oidc/providers').then((d) => {
    const items = (d && d.items) || [];
    if (!items.length) return;
    // centred between the password form and the buttons, like the card's footer line (the
    // subtitle's margins left it stuck to the Sign in button)
    wrap.append(h('p', { class: 'auth-footer', 'data-role': 'oidc-or', i18n: 'oidc.or' }),
      ...items.map((p) => h('a', {
        class: 'btn btn-secondary btn-block btn-lg oidc-btn',
        href: '/api/v1/auth/oidc/' + encodeURIComponent(p.id) + '/start' + (kind === 'admin' ? '?portal=admin' : ''),
        'data-provider': p.name,
      }, icon('key'), h('span', { i18n: 'oidc.continue_with', i18nArgs: { name: p.display_name } }))));
    wrap.hidden = false;
  }).catch(() => {
    // no buttons: the password form still works
  });
  return wrap;
}
