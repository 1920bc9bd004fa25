// OpenID Connect in the portals against the small provider of tests/lib/oidc_provider.py (run by
// fixtures.py; HTTPS with its own CA, RS256 ID tokens, PKCE checked at its token endpoint): the
// admin adds a provider through "Sign-in providers" with its CA pasted, "Test connection" explains
// a provider that lies about itself and then succeeds, a groups-claim value is mapped to a group
// entitled to a pool; a user signs in through the "Sign in with …" button with the whole code +
// PKCE redirect flow in Chromium and lands in the user portal with that pool; a refusal at the
// provider and an ID token that fails verification come back as clear messages. Layout on a
// phone and in Korean. Screenshots also go to build/screens/.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stack, openBrowser, screenshot, adminApi, adminSession, unique, horizontalOverflow, ARTIFACTS } from './lib.mjs';
import { fixtures } from './fixtures.mjs';

const S = stack();
const SCREENS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'screens');
const CALLBACK = '/api/v1/auth/oidc/callback';
let api;
let fx;
let op; // {issuer, client_id, client_secret, ca_pem}
let provider = null; // the provider the first test makes through the page
let pool = null;
let group = null;
const made = { providers: [] };

async function shot(page, name) {
  await screenshot(page, name);
  fs.mkdirSync(SCREENS, { recursive: true });
  fs.copyFileSync(path.join(ARTIFACTS, name + '.png'), path.join(SCREENS, name + '.png'));
}

test.before(async () => {
  api = await adminApi();
  fx = fixtures();
  op = await fx.call('oidc.start', {});
});
test.after(async () => {
  // the sign-in page shows every enabled provider: none may outlive these tests. One with users
  // cannot be deleted, so it is switched off.
  for (const id of made.providers) {
    await api.del('/oidc-providers/' + id).catch(() => api.patch('/oidc-providers/' + id, { enabled: false }).catch(() => {}));
  }
  if (api) await api.dispose();
  if (fx) await fx.close();
});

// The provider's next user: claims with a fresh name.
async function nextUser(extra = {}) {
  const name = unique('oidc');
  const claims = { sub: 'sub-' + name, preferred_username: name, name: 'Jo ' + name.slice(-6), email: name + '@example.test', groups: [], ...extra };
  await fx.call('oidc.set', { user: claims, misbehave: [] });
  return claims;
}

// A pool entitled to g (no agent behind it: listed, never given a desktop).
async function poolForGroup(g, name) {
  const store = path.join(S.var, 'images');
  fs.mkdirSync(store, { recursive: true });
  const file = unique('bt-oidc-') + '.qcow2';
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(store, file), '1M'], { stdio: 'ignore' });
  const image = await api.post('/images', { name: unique('bt-oimg-') });
  const version = await api.post(`/images/${image.id}/versions`, { path: file });
  await api.post(`/image-versions/${version.id}/publish`);
  const spec = await api.post('/specs', { name: unique('bt-ospec-'), vcpus: 1, memory_mib: 1024, disk_gib: 10, nic_type: 'virtio' });
  const bb = await api.post('/building-blocks', { name: unique('bt-obb-'), description: '' });
  const mod = await api.post(`/building-blocks/${bb.id}/modules`, { name: unique('bt-omod-'), description: '', max_servers: 2 });
  const p = await api.post('/pools', {
    name, description: 'Signed in through the identity provider', type: 'floating', image_id: image.id, spec_id: spec.id,
    min_size: 0, max_size: 1, name_pattern: unique('o').slice(0, 12) + '-{n:2}', modules: [mod.id],
  });
  await api.put(`/pools/${p.id}/entitlements/groups/${g.id}`);
  return p;
}

function s256(verifier) {
  return crypto.createHash('sha256').update(verifier).digest('base64url');
}

test('sign-in providers: add one with its CA, test connection (a lying provider, then a working one), map a groups claim', async () => {
  group = await api.post('/groups', { name: unique('bt-oidcgrp-') });
  pool = await poolForGroup(group, unique('Staff desktops '));
  const name = unique('staff-sso-');
  const display = 'Staff SSO ' + name.slice(-4);
  const b = await adminSession('#/oidc');
  try {
    const { page } = b;
    await page.waitForSelector('[data-page=oidc]');
    assert.equal(await page.getAttribute('a[data-nav=oidc]', 'aria-current'), 'page');
    assert.equal(await page.textContent('[data-page=oidc] .page-title'), 'Sign-in providers');
    await page.click('[data-action=new-provider]');
    const dlg = page.locator('dialog[data-dialog=create-provider]');
    await dlg.waitFor();
    // the usual claims are filled in
    assert.equal(await dlg.locator('input[name=username_claim]').inputValue(), 'preferred_username');
    assert.equal(await dlg.locator('input[name=scopes]').inputValue(), 'openid profile email');
    // nothing is sent without an issuer
    await dlg.locator('input[name=name]').fill(name);
    await dlg.locator('button[type=submit]').click();
    assert.match(await dlg.locator('.alert-error').first().textContent(), /issuer/i);
    await dlg.locator('input[name=display_name]').fill(display);
    await dlg.locator('input[name=issuer]').fill(op.issuer);
    await dlg.locator('input[name=client_id]').fill(op.client_id);
    await dlg.locator('input[name=client_secret]').fill(op.client_secret);
    await dlg.locator('input[name=scopes]').fill('openid profile email groups');
    await dlg.locator('textarea[name=ca_certs]').fill(op.ca_pem);
    await shot(page, 'oidc-create');
    await dlg.locator('button[type=submit]').click();
    await dlg.waitFor({ state: 'detached' });
    const row = page.locator(`tr[data-provider="${name}"]`);
    await row.waitFor();
    provider = await api.get('/oidc-providers/' + Number(await row.getAttribute('data-provider-id')));
    made.providers.push(provider.id);
    assert.equal(provider.issuer, op.issuer);
    assert.equal(provider.client_secret_set, true);
    assert.equal(provider.client_secret, undefined, 'the secret is never answered');
    assert.equal(provider.ca_certs.length, 1);
    assert.equal(await row.locator('[data-role=state]').textContent(), 'On the sign-in page');
    await shot(page, 'oidc-list');

    // ---- test connection: a provider whose discovery names another issuer ----
    await fx.call('oidc.set', { misbehave: ['discovery_wrong_issuer'] });
    await row.locator('[data-action=test]').click();
    const tdlg = page.locator('dialog[data-dialog=oidc-test]');
    await tdlg.waitFor();
    const result = tdlg.locator('[data-role=oidc-test-result]');
    await result.waitFor();
    assert.equal(await result.getAttribute('data-ok'), 'false');
    assert.match(await tdlg.locator('[data-role=oidc-test-message]').textContent(), /^The provider calls itself '.*\/elsewhere'/);
    assert.equal(await tdlg.locator('[data-step=issuer]').getAttribute('data-ok'), 'false');
    assert.equal(await tdlg.locator('[data-step=discovery]').getAttribute('data-ok'), 'true');
    assert.doesNotMatch(await tdlg.textContent(), /null|undefined|\[object/);
    await shot(page, 'oidc-test-failed');
    // ---- and once it tells the truth ----
    await fx.call('oidc.set', { misbehave: [] });
    await tdlg.locator('[data-action=test-again]').click();
    await page.waitForSelector('dialog[data-dialog=oidc-test] [data-role=oidc-test-result][data-ok=true]');
    for (const s of ['discovery', 'issuer', 'keys']) assert.equal(await tdlg.locator(`[data-step=${s}]`).getAttribute('data-ok'), 'true', s);
    assert.equal(await tdlg.locator('[data-role=oidc-callback] code').textContent(), S.base + CALLBACK,
      'the address to register at the provider is shown');
    await shot(page, 'oidc-test-ok');
    await tdlg.locator('.dialog-foot button').click();
    await tdlg.waitFor({ state: 'detached' });

    // ---- a groups-claim value makes members of the group ----
    await row.locator('[data-action=group-maps]').click();
    const mdlg = page.locator('dialog[data-dialog=group-maps]');
    await mdlg.waitFor();
    await mdlg.locator('[data-role=group-maps] .member-empty').waitFor();
    // no group is chosen for the admin
    assert.equal(await mdlg.locator('select[name=group_id]').inputValue(), '');
    await mdlg.locator('input[name=claim_value]').fill('vdi-staff');
    await mdlg.locator('[data-action=add-map]').click();
    assert.match(await mdlg.locator('.alert-error').first().textContent(), /choose a group/);
    await mdlg.locator('select[name=group_id]').selectOption(String(group.id));
    await mdlg.locator('input[name=claim_value]').press('Enter');
    const m = mdlg.locator('[data-role=group-maps] [data-map="vdi-staff"]');
    await m.waitFor();
    assert.match(await m.textContent(), new RegExp(group.name));
    await shot(page, 'oidc-group-maps');
    await mdlg.locator('.dialog-foot button').click();
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('user portal: "Sign in with …" runs the code + PKCE flow in the browser and lands in the portal with the pool', async (t) => {
  if (!provider) return t.skip('the provider of the first test was not made');
  const who = await nextUser({ groups: ['vdi-staff', 'someone-else'] });
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await page.waitForSelector('[data-view=login]');
    const btn = page.locator(`[data-role=oidc-signin] a[data-provider="${provider.name}"]`);
    await btn.waitFor();
    assert.equal((await btn.textContent()).trim(), `Sign in with ${provider.display_name}`);
    await shot(page, 'oidc-login');
    const before = (await fx.call('oidc.requests')).authorize.length;
    // every address the browser went through, in order
    const visited = [];
    page.on('request', (r) => { if (r.isNavigationRequest() && r.frame() === page.mainFrame()) visited.push(r.url()); });
    await btn.click();
    await page.waitForSelector('[data-view=frame]');
    assert.equal(await page.locator('[data-role=topbar] .user-name').textContent(), who.name);
    // the way: bicd's start, the provider, bicd's callback, the portal
    const kinds = visited.map((u) => (u.startsWith(op.issuer + '/authorize?') ? 'provider' : u.startsWith(S.base + '/api/v1/auth/oidc/' + provider.id + '/start') ? 'start'
      : u.startsWith(S.base + CALLBACK + '?') ? 'callback' : u === S.base + '/' ? 'portal' : u));
    assert.deepEqual(kinds, ['start', 'provider', 'callback', 'portal']);
    assert.equal(await page.evaluate(() => location.search), '', 'nothing of the flow stays in the address');
    // what the provider saw: a code request with PKCE S256, then the verifier that matches it
    const seen = await fx.call('oidc.requests');
    assert.equal(seen.authorize.length, before + 1);
    const az = seen.authorize[seen.authorize.length - 1];
    assert.equal(az.response_type, 'code');
    assert.equal(az.code_challenge_method, 'S256');
    assert.equal(az.redirect_uri, S.base + CALLBACK);
    assert.equal(az.scope, 'openid profile email groups');
    const tok = seen.token[seen.token.length - 1];
    assert.equal(tok.grant_type, 'authorization_code');
    assert.equal(s256(tok.code_verifier), az.code_challenge);
    // the mapped groups claim gives the pool
    const card = page.locator(`[data-pool-id="${pool.id}"]`);
    await card.waitFor();
    assert.equal(await card.locator('.desk-card-name').textContent(), pool.name);
    await shot(page, 'oidc-user-pool');
    const me = await (await page.request.get(S.base + '/api/v1/auth/me')).json();
    assert.equal(me.user.username, who.preferred_username);
    const full = await api.get('/users/' + me.user.id);
    assert.deepEqual(full.groups.map((g) => g.name), [group.name]);
    // log out and back in: the same account, straight through
    await page.click('[data-action=logout]');
    await page.waitForSelector('[data-view=login]');
    await btn.click();
    await page.waitForSelector('[data-view=frame]');
    const again = await (await page.request.get(S.base + '/api/v1/auth/me')).json();
    assert.equal(again.user.id, me.user.id);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('user portal: a refusal at the provider and an unverifiable ID token come back as clear messages', async (t) => {
  if (!provider) return t.skip('the provider of the first test was not made');
  const b = await openBrowser();
  try {
    const { page } = b;
    const btn = page.locator(`[data-role=oidc-signin] a[data-provider="${provider.name}"]`);
    const err = page.locator('[data-role=login-error]');
    // the user says no at the provider
    await fx.call('oidc.set', { user: null, misbehave: [] });
    await page.goto(S.base + '/');
    await btn.click();
    await page.waitForSelector('[data-view=login]');
    await err.waitFor({ state: 'visible' });
    assert.equal(await err.getAttribute('data-oidc-error'), 'denied');
    assert.match(await err.textContent(), /cancelled at the identity provider/);
    assert.equal(await page.evaluate(() => location.search), '', 'the error code left the address');
    assert.equal((await page.request.get(S.base + '/api/v1/auth/me')).status(), 401);
    await shot(page, 'oidc-denied');
    // shown once: a reload is a fresh sign-in page
    await page.reload();
    await page.waitForSelector('[data-view=login]');
    await btn.waitFor();
    assert.ok(await err.isHidden());
    // an ID token for another nonce: refused by bicd, in words a user understands, in Korean too
    await nextUser();
    await fx.call('oidc.set', { misbehave: ['wrong_nonce'] });
    await page.click('.lang-btn[data-lang=ko]');
    await btn.click();
    await page.waitForSelector('[data-view=login]');
    await err.waitFor({ state: 'visible' });
    assert.equal(await err.getAttribute('data-oidc-error'), 'token');
    assert.match(await err.textContent(), /인증 제공자의 응답을 검증할 수 없어/);
    assert.equal((await page.request.get(S.base + '/api/v1/auth/me')).status(), 401);
    await shot(page, 'oidc-token-refused-ko');
    await page.click('.lang-btn[data-lang=en]');
    assert.match(await err.textContent(), /could not be verified/);
    assert.deepEqual(b.errors, []);
  } finally {
    await fx.call('oidc.set', { misbehave: [] });
    await b.close();
  }
});

test('sign-in providers and the provider button: phone size and Korean', async (t) => {
  if (!provider) return t.skip('the provider of the first test was not made');
  for (const [label, opts] of [['desktop-ko', { locale: 'ko-KR' }],
    ['phone', { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 }],
    ['phone-ko', { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2, locale: 'ko-KR' }]]) {
    const ko = label.endsWith('ko');
    // the user's sign-in page with the button
    const u = await openBrowser(opts);
    try {
      await u.page.goto(S.base + '/');
      await u.page.waitForSelector('[data-view=login]');
      if (ko && (await u.page.getAttribute('html', 'lang')) !== 'ko') await u.page.click('.lang-btn[data-lang=ko]');
      const btn = u.page.locator(`[data-role=oidc-signin] a[data-provider="${provider.name}"]`);
      await btn.waitFor();
      if (ko) assert.equal((await btn.textContent()).trim(), `${provider.display_name}(으)로 로그인`);
      assert.equal(await horizontalOverflow(u.page), 0, label + ': no sideways scroll on the sign-in page');
      const box = await btn.boundingBox();
      assert.ok(box.height >= 40, label + ': a button big enough to tap');
      await shot(u.page, 'oidc-login-' + label);
      assert.deepEqual(u.errors, []);
    } finally {
      await u.close();
    }
    // the admin's page and dialogs
    const b = await adminSession('#/oidc', opts);
    try {
      const { page } = b;
      if (ko && (await page.getAttribute('html', 'lang')) !== 'ko') await page.click('.lang-btn[data-lang=ko]');
      const row = page.locator(`tr[data-provider="${provider.name}"]`);
      await row.waitFor();
      if (ko) assert.equal(await page.textContent('[data-page=oidc] .page-title'), '로그인 제공자');
      assert.equal(await horizontalOverflow(page), 0, label + ': no sideways scroll on the list');
      await shot(page, 'oidc-list-' + label);
      await row.locator('[data-action=test]').click();
      const tdlg = page.locator('dialog[data-dialog=oidc-test]');
      await page.waitForSelector('dialog[data-dialog=oidc-test] [data-role=oidc-test-result][data-ok=true]');
      assert.equal(await horizontalOverflow(page), 0, label + ': no sideways scroll with the test');
      await shot(page, 'oidc-test-' + label);
      await tdlg.locator('.dialog-foot button').click();
      await tdlg.waitFor({ state: 'detached' });
      await row.locator('[data-action=edit]').click();
      const edlg = page.locator('dialog[data-dialog=edit-provider]');
      await edlg.waitFor();
      assert.equal(await edlg.locator('input[name=client_secret]').inputValue(), '');
      assert.equal(await horizontalOverflow(page), 0, label + ': no sideways scroll in the form');
      await shot(page, 'oidc-edit-' + label);
      await edlg.locator('.dialog-foot button').first().click();
      assert.deepEqual(b.errors, []);
    } finally {
      await b.close();
    }
  }
});
