// The user portal after sign-in: the frame, the honest empty "My desktops", the password
// change, a session whose access token has expired, and the desktops page with pools but no
// agents (cards with live state, a paused pool, a refused connect explained in the console).
// The console on a real desktop is console.test.mjs.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { stack, openBrowser, screenshot, adminApi, createUser, signIn, horizontalOverflow, unique } from './lib.mjs';

const S = stack();

// A pool the user is entitled to, with no agent behind it: it never gets a desktop.
// A qcow2 header is all the catalog reads of the image.
async function entitledPool(user, opts = {}) {
  const store = path.join(S.var, 'images');
  fs.mkdirSync(store, { recursive: true });
  const file = unique('bt-user-') + '.qcow2';
  try {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(store, file), '1M'], { stdio: 'ignore' });
  } catch (e) {
    const b = Buffer.alloc(512);
    b.write('QFI\xfb', 0, 'latin1');
    b.writeUInt32BE(3, 4);
    b.writeUInt32BE(16, 20);
    b.writeBigUInt64BE(1n << 20n, 24);
    fs.writeFileSync(path.join(store, file), b);
  }
  const image = await api.post('/images', { name: unique('bt-uimg-') });
  const version = await api.post(`/images/${image.id}/versions`, { path: file });
  await api.post(`/image-versions/${version.id}/publish`);
  const spec = await api.post('/specs', { name: unique('bt-uspec-'), vcpus: 1, memory_mib: 1024, disk_gib: 10, nic_type: 'virtio' });
  const bb = await api.post('/building-blocks', { name: unique('bt-ubb-'), description: '' });
  const mod = await api.post(`/building-blocks/${bb.id}/modules`, { name: unique('bt-umod-'), description: '', max_servers: 2 });
  const pool = await api.post('/pools', {
    name: opts.name || unique('Pool '), description: opts.description || '', type: opts.type || 'floating',
    image_id: image.id, spec_id: spec.id, min_size: 0, max_size: 1, name_pattern: unique('u').slice(0, 12) + '-{n:2}', modules: [mod.id],
  });
  await api.put(`/pools/${pool.id}/entitlements/users/${user.id}`);
  return pool;
}
let api;

test.before(async () => {
  api = await adminApi();
});
test.after(async () => {
  if (api) await api.dispose();
});

test('user portal: the frame shows the user, role and an honest empty desktop list', async () => {
  const u = await createUser(api, { prefix: 'bt-user-', display_name: 'Kim Minji' });
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, u.username, u.password);
    await page.waitForSelector('[data-view=frame]');
    const header = page.locator('[data-role=topbar]');
    assert.equal(await header.locator('.user-name').textContent(), 'Kim Minji');
    assert.equal(await header.locator('.user-role').textContent(), 'User');
    assert.ok(await header.locator('[data-action=logout]').isVisible());
    assert.equal(await header.locator('[data-action=to-admin]').count(), 0, 'no admin link for users');
    assert.equal(await page.textContent('[data-page=desktops] .page-title'), 'My desktops');
    assert.equal(await page.textContent('[data-role=desktops] .empty-title'), 'No desktops are assigned to you yet');
    await screenshot(page, 'user-desktops');
    await page.click('.lang-btn[data-lang=ko]');
    assert.equal(await page.textContent('[data-role=desktops] .empty-title'), '아직 할당된 데스크톱이 없습니다');
    assert.equal(await header.locator('.user-role').textContent(), '사용자');
    await screenshot(page, 'user-desktops-ko');
    // a reload keeps the session and the language
    await page.reload();
    await page.waitForSelector('[data-view=frame]');
    assert.equal(await page.textContent('[data-page=desktops] .page-title'), '내 데스크톱');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('phone size: the user portal frame has no horizontal scroll', async () => {
  const u = await createUser(api, { prefix: 'bt-phone-', display_name: '이서연 (Seoyeon Lee, Operations)' });
  const b = await openBrowser({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2, locale: 'ko-KR' });
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, u.username, u.password);
    await page.waitForSelector('[data-view=frame]');
    assert.equal(await horizontalOverflow(page), 0);
    await screenshot(page, 'phone-user-desktops-ko');
    await page.click('.topbar-menu-btn');
    await page.locator('[data-action=logout]').waitFor({ state: 'visible' });
    assert.equal(await horizontalOverflow(page), 0);
    await screenshot(page, 'phone-user-menu-ko');
  } finally {
    await b.close();
  }
});

test('password change: checks the input, then every session ends and the new password works', async () => {
  const u = await createUser(api, { prefix: 'bt-pw-' });
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, u.username, u.password);
    await page.waitForSelector('[data-view=frame]');
    await page.click('[data-action=change-password]');
    const dlg = page.locator('dialog[data-dialog=password]');
    await dlg.waitFor();
    const alert = dlg.locator('.alert');
    await dlg.locator('input[name=current_password]').fill(u.password);
    await dlg.locator('input[name=new_password]').fill('too-short');
    await dlg.locator('input[name=new_password_again]').fill('too-short');
    await dlg.locator('button[type=submit]').click();
    assert.match(await alert.textContent(), /at least 12 characters/);
    await dlg.locator('input[name=new_password]').fill('New-password-long-1');
    await dlg.locator('input[name=new_password_again]').fill('New-password-long-2');
    await dlg.locator('button[type=submit]').click();
    assert.match(await alert.textContent(), /differ/);
    // a wrong current password is refused by the server
    await dlg.locator('input[name=current_password]').fill('not-the-password');
    await dlg.locator('input[name=new_password_again]').fill('New-password-long-1');
    await dlg.locator('button[type=submit]').click();
    await page.waitForFunction(() => /current password is incorrect/.test(document.querySelector('dialog[data-dialog=password] .alert')?.textContent || ''));
    await screenshot(page, 'user-password-wrong-current');
    await dlg.locator('input[name=current_password]').fill(u.password);
    await dlg.locator('button[type=submit]').click();
    await page.waitForSelector('[data-view=login]');
    assert.match(await page.textContent('[data-role=login-notice]'), /Password changed; sign in again/);
    await screenshot(page, 'user-password-changed');
    // the old session is gone for good
    await page.reload();
    await page.waitForSelector('[data-view=login]');
    await signIn(page, u.username, u.password);
    await page.locator('[data-role=login-error]').waitFor({ state: 'visible' });
    await signIn(page, u.username, 'New-password-long-1');
    await page.waitForSelector('[data-view=frame]');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('session: an expired access token is refreshed silently; without the refresh token it is sign-in again', async () => {
  const b = await openBrowser();
  try {
    const { page, context } = b;
    await page.goto(S.base + '/admin/#/users');
    await signIn(page, 'admin', S.adminPassword);
    await page.waitForSelector('[data-table=users] tbody tr');
    const names = async () => (await context.cookies()).map((c) => c.name).sort();
    const drop = async (suffix) => {
      const keep = (await context.cookies()).filter((c) => !c.name.endsWith(suffix));
      await context.clearCookies();
      await context.addCookies(keep);
    };
    assert.ok((await names()).some((n) => n.endsWith('session')), 'an access cookie: ' + (await names()));
    // the access token "expires": the next call answers 401, the portal refreshes and retries
    await drop('session');
    const refreshed = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/refresh') && r.status() === 200);
    await page.click('a[data-nav=groups]');
    await refreshed;
    await page.waitForSelector('[data-page=groups] input[type=search]');
    await page.waitForSelector('[data-page=groups] .table-block:not([aria-busy])');
    assert.equal(await page.locator('[data-page=groups] .alert:not([hidden])').count(), 0, 'no error shown');
    assert.equal(await page.locator('[data-view=frame]').count(), 1);
    // a reload after the access cookie ran out still finds the session
    await drop('session');
    await page.reload();
    await page.waitForSelector('[data-view=frame]');
    // both gone: the next call ends on the sign-in screen, saying why
    await drop('session');
    await drop('refresh');
    await page.click('a[data-nav=audit]');
    await page.waitForSelector('[data-view=login]');
    assert.match(await page.textContent('[data-role=login-notice]'), /session has ended/);
    await screenshot(page, 'session-ended');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('my desktops: entitled pools as cards with live state; a paused pool cannot be connected', async () => {
  const u = await createUser(api, { prefix: 'bt-pools-', display_name: 'Choi Yuna' });
  const open = await entitledPool(u, { name: unique('Design studio '), description: 'Adobe and Figma' });
  const paused = await entitledPool(u, { name: unique('Training room '), type: 'dedicated' });
  await api.post(`/pools/${paused.id}/pause`, { reason: 'maintenance' });
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, u.username, u.password);
    await page.waitForSelector('[data-role=desktops] .desk-card');
    assert.equal(await page.locator('[data-role=desktops] .desk-card').count(), 2);
    const a = page.locator(`[data-pool-id="${open.id}"]`);
    assert.equal(await a.locator('.desk-card-name').textContent(), open.name);
    assert.equal(await a.locator('.desk-card-desc').textContent(), 'Adobe and Figma');
    assert.equal(await a.locator('.desk-tag').first().textContent(), 'Shared pool');
    assert.equal(await a.locator('[data-role=desktop-state]').textContent(), 'Assigned when you connect');
    assert.equal(await a.locator('[data-role=session-state]').textContent(), 'Not connected');
    assert.equal(await a.locator('[data-action=connect]').isEnabled(), true);
    assert.equal(await a.locator('[data-action^=power-], [data-action=logoff]').count(), 0, 'no desktop, no session: no power or log off');
    const p = page.locator(`[data-pool-id="${paused.id}"]`);
    assert.equal(await p.locator('.desk-tag').first().textContent(), 'Personal desktop');
    assert.equal(await p.locator('[data-role=pool-unavailable]').textContent(), 'Unavailable for now');
    assert.equal(await p.locator('[data-action=connect]').isDisabled(), true);
    assert.equal(await p.locator('[data-role=desktop-state]').textContent(), 'Not assigned yet');
    await screenshot(page, 'user-pools');
    // live: the pool is resumed and the page notices by itself within its 10 s refresh
    await api.post(`/pools/${paused.id}/resume`);
    await page.waitForSelector(`[data-pool-id="${paused.id}"] [data-action=connect]:not([disabled])`, { timeout: 15000 });
    assert.equal(await p.locator('[data-role=pool-unavailable]').count(), 0);
    await page.click('.lang-btn[data-lang=ko]');
    assert.equal(await a.locator('[data-role=desktop-state]').textContent(), '접속하면 할당됨');
    assert.equal(await a.locator('[data-action=connect]').textContent(), '접속');
    assert.equal(await a.locator('.desk-tag').first().textContent(), '공용 풀');
    await screenshot(page, 'user-pools-ko');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('connect: a pool with no free desktop is explained and retried; Back returns to the list', async () => {
  const u = await createUser(api, { prefix: 'bt-busy-' });
  const pool = await entitledPool(u, { name: unique('Busy pool ') });
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, u.username, u.password);
    const connect = page.locator(`[data-pool-id="${pool.id}"] [data-action=connect]`);
    await connect.click();
    await page.waitForSelector('[data-view=console]');
    assert.equal(await page.evaluate(() => location.hash), '#/console/' + pool.id);
    // no agent, no desktop, no spare: 409 pool_exhausted, said plainly, and tried again later
    await page.waitForSelector('[data-view=console][data-state=waiting]');
    assert.equal(await page.getAttribute('[data-view=console]', 'data-reason'), 'pool_exhausted');
    assert.equal(await page.textContent('[data-role=console-status] .console-status-text'), 'Every desktop of this pool is in use right now.');
    assert.match(await page.textContent('[data-role=console-status] .console-status-count'), /^Next try in \d+ s$/);
    const again = page.waitForResponse((r) => r.url().endsWith(`/pools/${pool.id}/connect`) && r.status() === 409);
    await page.click('[data-action=console-reconnect]');
    await again;
    await page.waitForSelector('[data-view=console][data-state=waiting]');
    // no session: no log off in the toolbar, and nothing to send Ctrl+Alt+Del to
    assert.equal(await page.locator('[data-role=console-toolbar] [data-action=logoff]').isHidden(), true);
    assert.equal(await page.locator('[data-role=console-toolbar] [data-action=ctrl-alt-del]').isDisabled(), true);
    await screenshot(page, 'user-console-refused');
    await page.click('[data-action=console-back]');
    await page.waitForSelector('[data-view=console]', { state: 'detached' });
    assert.equal(await page.evaluate(() => location.hash), '');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-action')), 'connect');
    // the Back button of the browser closes the console too
    await connect.click();
    await page.waitForSelector('[data-view=console]');
    await page.goBack();
    await page.waitForSelector('[data-view=console]', { state: 'detached' });
    // someone else's pool, by address: not opened, said so
    await page.goto(S.base + '/#/console/999999999');
    await page.waitForSelector('[data-role=desktops-error]:not([hidden])');
    assert.match(await page.textContent('[data-role=desktops-error]'), /no longer available to you/);
    assert.equal(await page.locator('[data-view=console]').count(), 0);
    // the sign-in ends while the console waits: it closes with the frame and stops asking
    await page.click(`[data-pool-id="${pool.id}"] [data-action=connect]`);
    await page.waitForSelector('[data-view=console][data-state=waiting]');
    await b.context.clearCookies();
    await page.click('[data-action=console-reconnect]');
    await page.waitForSelector('[data-view=login]');
    assert.equal(await page.locator('[data-view=console]').count(), 0);
    assert.equal(await page.evaluate(() => document.getElementById('app').inert), false);
    let asked = 0;
    page.on('request', (r) => {
      if (r.url().includes('/connect')) asked += 1;
    });
    await page.waitForTimeout(2500);
    assert.equal(asked, 0, 'no connect after the sign-in ended');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('phone size: the pool cards and the console overlay fit 390 px', async () => {
  const u = await createUser(api, { prefix: 'bt-phpool-', display_name: '정하늘' });
  const pool = await entitledPool(u, { name: unique('현장 지원 데스크톱 '), description: '현장 점검용 공용 데스크톱입니다.' });
  const b = await openBrowser({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2, locale: 'ko-KR' });
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await signIn(page, u.username, u.password);
    await page.waitForSelector(`[data-pool-id="${pool.id}"]`);
    assert.equal(await horizontalOverflow(page), 0);
    const card = await page.locator(`[data-pool-id="${pool.id}"]`).boundingBox();
    assert.ok(card.x >= 0 && card.x + card.width <= 390, JSON.stringify(card));
    await screenshot(page, 'phone-user-pools-ko');
    await page.click(`[data-pool-id="${pool.id}"] [data-action=connect]`);
    await page.waitForSelector('[data-view=console][data-state=waiting]');
    assert.equal(await horizontalOverflow(page), 0);
    assert.equal(await page.textContent('[data-role=console-status] .console-status-text'), '이 풀의 데스크톱이 모두 사용 중입니다.');
    await screenshot(page, 'phone-user-console-refused-ko');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
