// The user portal after sign-in: the frame, the honest empty "My desktops", the password
// change, and a session whose access token has expired.
import test from 'node:test';
import assert from 'node:assert/strict';
import { stack, openBrowser, screenshot, adminApi, createUser, signIn, horizontalOverflow } from './lib.mjs';

const S = stack();
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
