// Client of bicd's /api/v1: JSON in and out, the CSRF token on every non-GET request,
// and one silent token refresh when a signed-in call answers 401.

export class ApiError extends Error {
  constructor(status, code, message, requestId, retryAfter) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status; // 0 when the server could not be reached
    this.code = code;
    this.requestId = requestId || null;
    this.retryAfter = retryAfter; // seconds, or null
  }
}

const BASE = '/api/v1';
// These answer 401 for reasons of their own; a refresh would not help them.
const NO_REFRESH = new Set(['/auth/login', '/auth/login/mfa', '/auth/login/mfa/enroll', '/auth/refresh', '/auth/csrf',
  '/auth/me', '/auth/logout']);

const state = {
  csrf: null,
  user: null,
  expiresIn: null,
  refreshing: null,
  onSessionLost: null,
};

export function currentUser() {
  return state.user;
}

export function onSessionLost(fn) {
  state.onSessionLost = fn;
}

function takeSession(body) {
  if (body && body.csrf_token) state.csrf = body.csrf_token;
  if (body && body.user) state.user = body.user;
  if (body && body.expires_in) state.expiresIn = body.expires_in;
}

function dropSession() {
  state.user = null;
  state.csrf = null;
}

function query(params) {
  if (!params) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.append(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

function retryAfterOf(res) {
  const h = res.headers.get('Retry-After');
  if (!h) return null;
  const n = parseInt(h, 10);
  if (!isNaN(n) && String(n) === h.trim()) return Math.max(0, n);
  const d = Date.parse(h);
  return isNaN(d) ? null : Math.max(0, Math.ceil((d - Date.now()) / 1000));
}

async function send(method, path, body, params) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  let res;
  try {
    res = await fetch(BASE + path + query(params), init);
  } catch (e) {
    throw new ApiError(0, 'network', String(e && e.message ? e.message : e));
  }
  if (res.status === 204) return { res, data: null };
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
  }
  if (res.ok) return { res, data };
  const err = (data && data.error) || {};
  let code = err.code;
  if (!code) code = res.status >= 500 ? 'unavailable' : 'http_' + res.status;
  const e = new ApiError(res.status, code, err.message || res.statusText, err.request_id, retryAfterOf(res));
  e.reason = err.reason || null; // the broker's stable reason (pool_exhausted, not_entitled, ...)
  throw e;
}

// Refreshes the access token once, however many calls are waiting for it.
export function refresh() {
  if (!state.refreshing) {
    state.refreshing = send('POST', '/auth/refresh')
      .then(({ data }) => {
        takeSession(data);
        return true;
      })
      .catch(() => false)
      .finally(() => {
        state.refreshing = null;
      });
  }
  return state.refreshing;
}

// request('GET', '/users', {params: {q: 'ab'}}) -> the parsed JSON body (null for 204).
export async function request(method, path, opts = {}) {
  try {
    return (await send(method, path, opts.body, opts.params)).data;
  } catch (e) {
    const expired = e instanceof ApiError && e.status === 401 && state.user && !NO_REFRESH.has(path) &&
      e.code !== 'bad_credentials';
    if (!expired) throw e;
    if (await refresh()) {
      try {
        return (await send(method, path, opts.body, opts.params)).data;
      } catch (e2) {
        if (!(e2 instanceof ApiError && e2.status === 401 && e2.code !== 'bad_credentials')) throw e2;
      }
    }
    dropSession();
    if (state.onSessionLost) state.onSessionLost();
  throw e;
  }
}

export const get = (path, params) => request('GET', path, { params });
export const post = (path, body) => request('POST', path, { body });
export const patch = (path, body) => request('PATCH', path, { body });
export const put = (path, body) => request('PUT', path, { body });
export const del = (path, body) => request('DELETE', path, { body });

// --- sign-in and session -------------------------------------------------------------

// The signed-in user, or null when there is no session (401).
export async function me() {
  try {
    const { data } = await send('GET', '/auth/me');
    takeSession(data);
    return state.user;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) throw e;
  }
  // The access cookie lives only minutes; the refresh cookie may still be good after a reload.
  // Without a session the pre-session token is what the refresh call's CSRF check wants.
  try {
    await preSessionToken();
    const { data } = await send('POST', '/auth/refresh');
    takeSession(data);
    if (state.user) return state.user;
  } catch (e) {
    if (!(e instanceof ApiError && (e.status === 401 || e.status === 403))) throw e;
  }
  dropSession();
  return null;
}

async function preSessionToken() {
  const { data } = await send('GET', '/auth/csrf');
  state.csrf = data && data.csrf_token ? data.csrf_token : null;
}

// Signs in with the password. Resolves to the user, or, when a second factor is needed, to
// {mfa: {step: 'verify'|'enroll', token, expiresIn}} for loginMfa()/loginMfaEnroll().
export async function login(username, password) {
  dropSession();
  await preSessionToken();
  let out;
  try {
    out = await send('POST', '/auth/login', { username, password });
  } catch (e) {
    // The pre-session token may have expired while the page stood open: fetch a new one once.
    if (!(e instanceof ApiError && e.code === 'csrf_failed')) throw e;
    await preSessionToken();
    out = await send('POST', '/auth/login', { username, password });
  }
  if (out.data && out.data.mfa_required) {
    return { mfa: { step: out.data.mfa_step, token: out.data.mfa_token, expiresIn: out.data.expires_in } };
  }
  takeSession(out.data);
  return state.user;
}

// The second sign-in step: {code} or {recovery_code}. Resolves to {user, recoveryCodes
// (after an enrolment at sign-in), recoveryCodesLeft (after a recovery code)}.
export async function loginMfa(token, proof) {
  if (!state.csrf) await preSessionToken(); // after a provider sign-in this page load has none
  const { data } = await send('POST', '/auth/login/mfa', { mfa_token: token, ...proof });
  takeSession(data);
  return { user: state.user, recoveryCodes: data.recovery_codes || null, recoveryCodesLeft: data.recovery_codes_left };
}

// Enrolment during sign-in (a group requires MFA): {secret, otpauth_uri, qr_svg, ...}.
export async function loginMfaEnroll(token) {
  if (!state.csrf) await preSessionToken();
  return (await send('POST', '/auth/login/mfa/enroll', { mfa_token: token })).data;
}

export async function logout() {
  try {
    if (state.csrf) await send('POST', '/auth/logout');
  } finally {
    dropSession();
  }
}

export async function changePassword(current, next) {
  await request('POST', '/auth/password', { body: { current_password: current, new_password: next } });
  dropSession();
}
