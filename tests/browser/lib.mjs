// Shared helpers of the browser tests: where the stack is, Debian's Chromium through
// playwright-core (never a downloaded browser), an API client with the admin's session,
// and screenshots in tests/artifacts/browser/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, request } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.resolve(HERE, '..', 'artifacts', 'browser');
export const CHROMIUM = process.env.BIC_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync'];

// The stack under test: BIC_TEST_VAR/stack.env and BIC_TEST_VAR/etc/admin-password.
export function stack() {
  const v = process.env.BIC_TEST_VAR;
  if (!v) throw new Error('BIC_TEST_VAR is not set: point it at a running stack\'s var directory');
  const env = {};
  for (const line of fs.readFileSync(path.join(v, 'stack.env'), 'utf8').split('\n')) {
    const m = /^\s*([A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^['"]|['"]$/g, '');
  }
  const port = Number(env.BIC_HTTPS_PORT);
  if (!port) throw new Error('no BIC_HTTPS_PORT in ' + path.join(v, 'stack.env'));
  return {
    var: v,
    base: `https://127.0.0.1:${port}`,
    adminPassword: fs.readFileSync(path.join(v, 'etc', 'admin-password'), 'utf8').trim(),
  };
}

// A fresh browser profile per call: {context, page, close()}. The console's errors are kept
// in `errors` (failed resource loads such as the expected 401 of /auth/me aside).
export async function openBrowser(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bic-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    ignoreHTTPSErrors: true,
    viewport: opts.viewport || { width: 1280, height: 800 },
    locale: opts.locale || 'en-US',
    deviceScaleFactor: opts.deviceScaleFactor || 1,
    isMobile: !!opts.isMobile,
    hasTouch: !!opts.isMobile,
  });
  context.setDefaultTimeout(15000);
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push('console: ' + m.text());
  });
  return {
    context,
    page,
    errors,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // no hover effects in the picture, and a settled paint after scrolling
  await page.mouse.move(0, 0).catch(() => {});
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))).catch(() => {});
  await page.screenshot({ path: path.join(ARTIFACTS, name + '.png') });
}

export function unique(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

// An API client signed in as the admin (or anyone), for creating what a test needs.
export async function apiAs(username, password) {
  const s = stack();
  const ctx = await request.newContext({ baseURL: s.base, ignoreHTTPSErrors: true, extraHTTPHeaders: { Origin: s.base } });
  const pre = await ctx.get('/api/v1/auth/csrf');
  if (!pre.ok()) throw new Error('GET /auth/csrf: ' + pre.status());
  let csrf = (await pre.json()).csrf_token;
  const r = await ctx.post('/api/v1/auth/login', { data: { username, password }, headers: { 'X-CSRF-Token': csrf } });
  if (r.status() !== 200) throw new Error(`login as ${username}: ${r.status()} ${await r.text()}`);
  csrf = (await r.json()).csrf_token;
  const call = async (method, url, data) => {
    const res = await ctx.fetch('/api/v1' + url, { method, data, headers: method === 'GET' ? {} : { 'X-CSRF-Token': csrf } });
    const text = await res.text();
    const body = text ? JSON.parse(text) : null;
    if (!res.ok()) throw new Error(`${method} ${url}: ${res.status()} ${text}`);
    return body;
  };
  return {
    get: (url) => call('GET', url),
    post: (url, data) => call('POST', url, data),
    patch: (url, data) => call('PATCH', url, data),
    put: (url, data) => call('PUT', url, data),
    del: (url) => call('DELETE', url),
    dispose: () => ctx.dispose(),
  };
}

export async function adminApi() {
  return apiAs('admin', stack().adminPassword);
}

// Creates a user through the API and returns {id, username, password, display_name}.
export async function createUser(api, opts = {}) {
  const username = opts.username || unique(opts.prefix || 'bt-');
  const password = opts.password || 'Pw-' + unique('x') + '-long-enough';
  const user = await api.post('/users', {
    username, password, role: opts.role || 'user',
    display_name: opts.display_name === undefined ? 'Test ' + username : opts.display_name,
    email: opts.email || '',
  });
  return { ...user, password };
}

// Signs in through the page's form.
export async function signIn(page, username, password) {
  await page.waitForSelector('[data-role=login-form]');
  await page.fill('#login-username', username);
  await page.fill('#login-password', password);
  await page.click('[data-role=login-form] button[type=submit]');
}

// Horizontal overflow of the page in CSS pixels (0 when nothing scrolls sideways).
// A browser signed in to the admin portal as the bootstrap admin, at hash (e.g. '#/users').
export async function adminSession(hash = '#/users', opts = {}) {
  const S = stack();
  const b = await openBrowser(opts);
  await b.page.goto(S.base + '/admin/' + hash);
  await signIn(b.page, 'admin', S.adminPassword);
  await b.page.waitForSelector('[data-view=frame]');
  return b;
}

export async function horizontalOverflow(page) {
  return page.evaluate(() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth);
}
