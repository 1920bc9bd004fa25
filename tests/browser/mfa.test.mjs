// Two-step verification (TOTP) in the portals, against the real API: enrolment from Account
// security with the QR code, signing out and in with a code and with a recovery code, the
// enrolment that a group's policy forces at sign-in, the explained refusals of the second step,
// and the admin's group policy and reset. Codes are computed here (RFC 6238, HMAC-SHA1) from
// the key the page shows.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { request } from 'playwright-core';
import { stack, openBrowser, screenshot, adminApi, apiAs, createUser, signIn, unique, horizontalOverflow } from './lib.mjs';

const S = stack();
let api;

test.before(async () => {
  api = await adminApi();
});
test.after(async () => {
  if (api) await api.dispose();
});

// PUT with a body as the admin (lib.mjs's put() sends none): the group MFA policy.
async function setPolicy(groupId, required) {
  const ctx = await request.newContext({ baseURL: S.base, ignoreHTTPSErrors: true, extraHTTPHeaders: { Origin: S.base } });
  try {
    const pre = await (await ctx.get('/api/v1/auth/csrf')).json();
    const r = await ctx.post('/api/v1/auth/login', { data: { username: 'admin', password: S.adminPassword }, headers: { 'X-CSRF-Token': pre.csrf_token } });
    const csrf = (await r.json()).csrf_token;
    const res = await ctx.put(`/api/v1/groups/${groupId}/mfa`, { data: { mfa_required: required }, headers: { 'X-CSRF-Token': csrf } });
    if (res.status() !== 200) throw new Error(`PUT /groups/${groupId}/mfa: ${res.status()} ${await res.text()}`);
    return res.json();
  } finally {
    await ctx.dispose();
  }
}

function base32Decode(s) {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of s.replace(/[\s=]/g, '').toUpperCase()) {
    const i = A.indexOf(ch);
    if (i < 0) throw new Error('not base32: ' + ch);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32Decode(secret)).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// The current 30 s step, waiting out the end of a step so codes keep their place for a while.
async function safeStep(margin = 12) {
  const left = 30 - (Date.now() / 1000) % 30;
  if (left < margin) await new Promise((r) => setTimeout(r, (left + 0.3) * 1000));
  return Math.floor(Date.now() / 30000);
}

// Sets up two-step verification through the Account security dialog; returns {secret, codes, step}.
async function enrolInDialog(page, user, shot) {
  await page.click('[data-action=security]');
  const dlg = page.locator('dialog[data-dialog=security]');
  await dlg.waitFor();
  await dlg.locator('[data-role=mfa-state]').waitFor();
  assert.equal((await dlg.locator('[data-role=mfa-state]').textContent()).trim(), 'Off');
  await dlg.locator('[data-action=mfa-setup]').click();
  await dlg.locator('input[name=password]').fill(user.password + '-wrong');
  await dlg.locator('[data-action=mfa-password-continue]').click();
  await dlg.locator('[data-role=security-error]').waitFor({ state: 'visible' });
  assert.match(await dlg.locator('[data-role=security-error]').textContent(), /password is not right/);
  await dlg.locator('input[name=password]').fill(user.password);
  await dlg.locator('[data-action=mfa-password-continue]').click();
  const qr = dlg.locator('[data-role=mfa-qr]');
  await qr.waitFor();
  // the QR code is an image the browser could decode and draw (not markup in the page)
  await page.waitForFunction(() => {
    const img = document.querySelector('[data-role=mfa-qr]');
    return img && img.complete && img.naturalWidth > 0;
  });
  assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/);
  const box = await qr.boundingBox();
  assert.ok(box.width >= 150 && Math.abs(box.width - box.height) < 1, 'a square QR code of a scannable size');
  const secret = (await dlg.locator('[data-role=mfa-secret]').textContent()).replace(/\s/g, '');
  assert.match(secret, /^[A-Z2-7]{32}$/);
  if (shot) await screenshot(page, shot);
  const step = await safeStep();
  await dlg.locator('#security-code').fill('000000' === totp(secret, step) ? '111111' : '000000');
  await dlg.locator('[data-action=mfa-confirm]').click();
  await dlg.locator('[data-role=security-error]').waitFor({ state: 'visible' });
  assert.match(await dlg.locator('[data-role=security-error]').textContent(), /does not match/);
  await dlg.locator('#security-code').fill(totp(secret, step));
  await dlg.locator('[data-action=mfa-confirm]').click();
  await dlg.locator('[data-role=recovery-codes] li').first().waitFor();
  const codes = (await dlg.locator('[data-role=recovery-codes] code').allTextContents()).map((s) => s.trim());
  assert.equal(codes.length, 10);
  for (const c of codes) assert.match(c, /^[2-9a-hjkmnp-z]{4}(-[2-9a-hjkmnp-z]{4}){3}$/);
  return { secret, codes, step, dlg };
}

test('user portal: enrol from Account security with the QR code, then sign out and in with a code and a recovery code', async () => {
  const user = await createUser(api, { prefix: 'bt-mfa-' });
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, user.username, user.password);
    await page.waitForSelector('[data-view=frame]');
    const { secret, codes, step, dlg } = await enrolInDialog(page, user, 'mfa-enrol-qr');
    await screenshot(page, 'mfa-recovery-codes');
    await dlg.locator('[data-action=mfa-done]').click();
    await dlg.locator('[data-role=mfa-state]').waitFor();
    assert.equal((await dlg.locator('[data-role=mfa-state]').textContent()).trim(), 'On');
    assert.match(await dlg.locator('[data-role=codes-left]').textContent(), /Recovery codes left: 10/);
    assert.doesNotMatch(await dlg.textContent(), /null|undefined|\[object/, 'no stray values in the dialog');
    // the server agrees, and never shows the key again
    const status = await (await page.request.get(S.base + '/api/v1/auth/mfa')).json();
    assert.equal(status.totp.enabled, true);
    assert.ok(!JSON.stringify(status).includes(secret));
    await screenshot(page, 'mfa-security-on');
    await dlg.locator('.dialog-head button').click();

    // sign out; the password alone is not enough any more
    await page.click('[data-action=logout]');
    await page.waitForSelector('[data-view=login]');
    await signIn(page, user.username, user.password);
    await page.waitForSelector('[data-view=login-mfa]');
    assert.equal(await page.textContent('h1.auth-title'), 'Two-step verification');
    assert.match(await page.textContent('[data-role=mfa-subtitle]'), new RegExp(user.username));
    assert.equal(await page.locator('[data-view=frame]').count(), 0);
    assert.equal((await page.request.get(S.base + '/api/v1/auth/me')).status(), 401, 'no session before the code');
    // the code of the enrolment is spent: refused as reused, and explained
    await page.fill('#mfa-code', totp(secret, step));
    await page.click('[data-role=mfa-form] button[type=submit]');
    const err = page.locator('[data-role=mfa-error]');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /already used/);
    await screenshot(page, 'mfa-code-reused');
    const next = totp(secret, step + 1);
    await page.fill('#mfa-code', next.slice(0, 3) + ' ' + next.slice(3));
    await page.click('[data-role=mfa-form] button[type=submit]');
    await page.waitForSelector('[data-view=frame]');
    assert.equal((await page.request.get(S.base + '/api/v1/auth/me')).status(), 200);

    // and with a recovery code, once
    await page.click('[data-action=logout]');
    await page.waitForSelector('[data-view=login]');
    await signIn(page, user.username, user.password);
    await page.waitForSelector('[data-view=login-mfa]');
    await page.click('[data-action=mfa-toggle]');
    assert.match(await page.textContent('[data-role=mfa-subtitle]'), /recovery codes/);
    await page.fill('#mfa-recovery', codes[0]);
    await page.click('[data-role=mfa-form] button[type=submit]');
    await page.waitForSelector('[data-view=frame]');
    await page.locator('.toast').filter({ hasText: '9 codes are left' }).waitFor();
    await page.click('[data-action=logout]');
    await signIn(page, user.username, user.password);
    await page.waitForSelector('[data-view=login-mfa]');
    await page.click('[data-action=mfa-toggle]');
    await page.fill('#mfa-recovery', codes[0]);
    await page.click('[data-role=mfa-form] button[type=submit]');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /wrong or was already used/);
    // back to the password screen
    await page.click('[data-action=mfa-back]');
    await page.waitForSelector('[data-view=login]');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('Account security: new recovery codes with the password, then turn it off; wrong proofs are explained', async () => {
  const user = await createUser(api, { prefix: 'bt-mfa-manage-' });
  const own = await apiAs(user.username, user.password);
  const start = await own.post('/auth/mfa/totp', { password: user.password });
  const step = await safeStep();
  const first = (await own.post('/auth/mfa/totp/confirm', { code: totp(start.secret, step) })).recovery_codes;
  await own.dispose();
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, user.username, user.password);
    await page.waitForSelector('[data-view=login-mfa]');
    await page.click('[data-action=mfa-toggle]');
    await page.fill('#mfa-recovery', first[9]);
    await page.click('[data-role=mfa-form] button[type=submit]');
    await page.waitForSelector('[data-view=frame]');
    await page.click('[data-action=security]');
    const dlg = page.locator('dialog[data-dialog=security]');
    await dlg.locator('[data-role=codes-left]').waitFor();
    assert.match(await dlg.locator('[data-role=codes-left]').textContent(), /Recovery codes left: 9/);
    await dlg.locator('[data-action=mfa-regenerate]').click();
    await dlg.locator('input[name=proof]').fill('not the password at all');
    await dlg.locator('[data-action=mfa-regenerate-confirm]').click();
    const err = dlg.locator('[data-role=security-error]');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /password is not right/);
    await dlg.locator('input[name=proof]').fill(user.password);
    await dlg.locator('[data-action=mfa-regenerate-confirm]').click();
    await dlg.locator('[data-role=recovery-codes] li').first().waitFor();
    const fresh = (await dlg.locator('[data-role=recovery-codes] code').allTextContents()).map((x) => x.trim());
    assert.equal(fresh.length, 10);
    assert.equal(fresh.filter((c) => first.includes(c)).length, 0, 'all codes are new');
    await dlg.locator('[data-action=mfa-done]').click();
    await dlg.locator('[data-role=codes-left]').waitFor();
    assert.match(await dlg.locator('[data-role=codes-left]').textContent(), /Recovery codes left: 10/);
    await dlg.locator('[data-action=mfa-disable]').click();
    assert.match(await dlg.textContent(), /Turn off two-step verification\?/);
    const wrong = totp(start.secret, step) === '000000' ? '111111' : '000000';
    await dlg.locator('input[name=proof]').fill(wrong);
    await dlg.locator('[data-action=mfa-disable-confirm]').click();
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /neither your password nor the current code/);
    await screenshot(page, 'mfa-disable-wrong-proof');
    await dlg.locator('input[name=proof]').fill(user.password);
    await dlg.locator('[data-action=mfa-disable-confirm]').click();
    await dlg.locator('[data-role=mfa-state]').waitFor();
    assert.equal((await dlg.locator('[data-role=mfa-state]').textContent()).trim(), 'Off');
    assert.doesNotMatch(await dlg.textContent(), /null|undefined|\[object/);
    const status = await (await page.request.get(S.base + '/api/v1/auth/mfa')).json();
    assert.equal(status.totp.enabled, false);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('a group that requires two-step verification makes the next sign-in enrol first, then shows the recovery codes once', async () => {
  const user = await createUser(api, { prefix: 'bt-mfa-pol-' });
  const group = await api.post('/groups', { name: unique('bt-mfa-grp-') });
  await api.put(`/groups/${group.id}/members/${user.id}`);
  assert.deepEqual(await setPolicy(group.id, true), { group_id: group.id, mfa_required: true });
  const b = await openBrowser({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, user.username, user.password);
    await page.waitForSelector('[data-view=login-enroll]');
    assert.equal(await page.textContent('h1.auth-title'), 'Set up two-step verification');
    await page.waitForSelector('[data-role=mfa-qr]');
    await page.waitForFunction(() => document.querySelector('[data-role=mfa-qr]').naturalWidth > 0);
    assert.equal(await horizontalOverflow(page), 0, 'the enrolment fits a phone');
    await screenshot(page, 'mfa-enrol-at-sign-in-phone');
    assert.equal((await page.request.get(S.base + '/api/v1/auth/me')).status(), 401, 'no session while enrolling');
    const secret = (await page.textContent('[data-role=mfa-secret]')).replace(/\s/g, '');
    const step = await safeStep();
    await page.fill('#mfa-code', totp(secret, step + 2)); // a minute ahead: outside the window
    await page.click('[data-role=mfa-form] button[type=submit]');
    await page.locator('[data-role=mfa-error]').waitFor({ state: 'visible' });
    assert.match(await page.textContent('[data-role=mfa-error]'), /not right/);
    await page.fill('#mfa-code', totp(secret, step));
    await page.click('[data-role=mfa-form] button[type=submit]');
    await page.waitForSelector('[data-view=login-recovery]');
    assert.equal(await page.locator('[data-role=recovery-codes] li').count(), 10);
    const go = page.locator('[data-action=mfa-continue]');
    assert.equal(await go.isDisabled(), true, 'Continue waits until the codes are saved');
    assert.equal(await horizontalOverflow(page), 0);
    await screenshot(page, 'mfa-recovery-at-sign-in-phone');
    await page.check('[data-role=codes-saved]');
    await go.click();
    await page.waitForSelector('[data-view=frame]');
    const status = await (await page.request.get(S.base + '/api/v1/auth/mfa')).json();
    assert.equal(status.totp.enabled, true);
    assert.deepEqual(status.required_by, [{ id: group.id, name: group.name }]);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
    await setPolicy(group.id, false);
  }
});

test('the second step explains a locked account and an expired step, in both languages', async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.route('**/api/v1/auth/login', (route) => route.fulfill({
      status: 200, contentType: 'application/json',
      body: JSON.stringify({ mfa_required: true, mfa_step: 'verify', mfa_token: 'x'.repeat(43), expires_in: 300 }),
    }));
    let answer = null;
    await page.route('**/api/v1/auth/login/mfa', (route) => route.fulfill(answer));
    await page.goto(S.base + '/');
    await signIn(page, 'someone', 'some password long');
    await page.waitForSelector('[data-view=login-mfa]');
    const err = page.locator('[data-role=mfa-error]');
    await page.fill('#mfa-code', '12345');
    await page.click('[data-role=mfa-form] button[type=submit]');
    assert.match(await err.textContent(), /Enter the 6 digits/);
    answer = { status: 423, headers: { 'Retry-After': '120', 'Content-Type': 'application/json' }, body: JSON.stringify({ error: { code: 'account_locked', message: 'x', request_id: 't' } }) };
    await page.fill('#mfa-code', '123456');
    await page.click('[data-role=mfa-form] button[type=submit]');
    await page.waitForFunction(() => /locked/.test(document.querySelector('[data-role=mfa-error]').textContent));
    assert.match(await err.textContent(), /locked.*2 minutes/);
    await page.click('.lang-btn[data-lang=ko]');
    assert.match(await err.textContent(), /계정이 잠겼습니다/);
    assert.equal(await page.textContent('h1.auth-title'), '2단계 인증');
    await page.click('.lang-btn[data-lang=en]');
    answer = { status: 401, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unauthenticated', reason: 'mfa_expired', message: 'x', request_id: 't' } }) };
    await page.click('[data-role=mfa-form] button[type=submit]');
    await page.waitForSelector('[data-view=login]');
    assert.match(await page.textContent('[data-role=login-notice]'), /took too long/);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('admin portal: require two-step verification for a group, see a user\'s factor and reset it', async () => {
  const user = await createUser(api, { prefix: 'bt-mfa-adm-' });
  const group = await api.post('/groups', { name: unique('bt-mfa-adm-grp-') });
  await api.put(`/groups/${group.id}/members/${user.id}`);
  // the user enrols through the API of their own session (the dialog is tested above)
  const own = await apiAs(user.username, user.password);
  const start = await own.post('/auth/mfa/totp', { password: user.password });
  await own.post('/auth/mfa/totp/confirm', { code: totp(start.secret, await safeStep()) });
  await own.dispose();
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/admin/#/groups');
    await signIn(page, 'admin', S.adminPassword);
    await page.waitForSelector('[data-view=frame]');
    await page.fill('[data-page=groups] input[type=search]', group.name);
    const row = page.locator(`[data-group-id="${group.id}"]`);
    await row.waitFor();
    assert.equal(await row.locator('[data-role=mfa-required]').count(), 0);
    await row.locator('[data-action=edit]').click();
    const dlg = page.locator('dialog[data-dialog=edit-group]');
    await dlg.locator('input[name=mfa_required]').check();
    await screenshot(page, 'mfa-admin-group-policy');
    await dlg.locator('button[type=submit]').click();
    await row.locator('[data-role=mfa-required]').waitFor();
    assert.match(await row.locator('[data-role=mfa-required]').textContent(), /2-step required/);
    assert.equal((await api.get(`/groups/${group.id}/mfa`)).mfa_required, true);

    await page.click('a[data-nav=users]');
    await page.fill('[data-page=users] input[type=search]', user.username);
    const urow = page.locator(`[data-user-id="${user.id}"]`);
    await urow.waitFor();
    await urow.locator('[data-action=mfa]').click();
    const md = page.locator('dialog[data-dialog=user-mfa]');
    await md.locator('[data-role=mfa-state]').waitFor();
    assert.equal(await md.locator('[data-role=mfa-state]').getAttribute('data-state'), 'on');
    assert.equal((await md.locator('[data-role=codes-left]').textContent()).trim(), '10');
    assert.equal((await md.locator('[data-role=mfa-required]').textContent()).trim(), group.name);
    await screenshot(page, 'mfa-admin-user');
    await md.locator('[data-action=mfa-reset]').click();
    const confirm = page.locator('dialog[data-dialog=confirm]');
    await confirm.locator('button[type=submit]').click();
    await page.locator('.toast').filter({ hasText: 'was reset' }).waitFor();
    await page.waitForFunction(() => document.querySelector('dialog[data-dialog=user-mfa] [data-role=mfa-state]')?.getAttribute('data-state') === 'off');
    const st = await api.get(`/users/${user.id}/mfa`);
    assert.equal(st.totp.enabled, false);
    const audit = await api.get(`/audit?action=auth.mfa.reset&target_id=${user.id}`);
    assert.equal(audit.items.length, 1);
    assert.equal(audit.items[0].actor_name, 'admin');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
    await setPolicy(group.id, false);
  }
});
