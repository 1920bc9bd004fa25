// The admin portal: the frame, the language switch, log-out, and the Users, Groups and
// Audit pages against the real API. Every user and group used here is created here.
import test from 'node:test';
import assert from 'node:assert/strict';
import { stack, adminSession, openBrowser, screenshot, adminApi, createUser, signIn, unique, horizontalOverflow } from './lib.mjs';

const S = stack();
let api;

test.before(async () => {
  api = await adminApi();
});
test.after(async () => {
  if (api) await api.dispose();
});

// Signs the admin in at a page of the portal (the Users page unless told otherwise).
test('admin signs in, sees the header, switches to Korean, logs out', async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/admin/');
    await page.waitForSelector('[data-view=login]');
    await screenshot(page, 'admin-login');
    await signIn(page, 'admin', S.adminPassword);
    await page.waitForSelector('[data-view=frame]');
    const me = await api.get('/auth/me');
    const header = page.locator('[data-role=topbar]');
    assert.match(await header.textContent(), /BIC/);
    assert.equal(await header.locator('.user-name').textContent(), me.user.display_name || me.user.username);
    assert.equal(await header.locator('.user-role').textContent(), 'Administrator');
    const logout = header.locator('[data-action=logout]');
    assert.ok(await logout.isVisible(), 'a visible log-out button');
    assert.equal((await logout.textContent()).trim(), 'Log out');
    // the topology is the first page after sign-in, first in the navigation
    await page.waitForSelector('[data-page=topology]');
    assert.equal(await page.getAttribute('a[data-nav=topology]', 'aria-current'), 'page');
    assert.equal(await page.getAttribute('.side-nav li:first-child a', 'data-nav'), 'topology');
    await page.click('a[data-nav=users]');
    await page.waitForSelector('[data-table=users] tbody tr');
    assert.equal(await page.getAttribute('a[data-nav=users]', 'aria-current'), 'page');
    await screenshot(page, 'admin-users');

    await page.click('.lang-btn[data-lang=ko]');
    assert.equal(await page.getAttribute('html', 'lang'), 'ko');
    assert.equal((await logout.textContent()).trim(), '로그아웃');
    assert.equal(await header.locator('.user-role').textContent(), '관리자');
    assert.equal((await page.textContent('a[data-nav=users]')).trim(), '사용자');
    assert.equal((await page.textContent('a[data-nav=audit]')).trim(), '감사 로그');
    assert.equal(await page.textContent('[data-page=users] .page-title'), '사용자');
    await screenshot(page, 'admin-users-ko');

    await logout.click();
    await page.waitForSelector('[data-view=login]');
    assert.equal(await page.textContent('h1.auth-title'), '로그인', 'the sign-in screen, still in Korean');
    assert.match(await page.textContent('[data-role=login-notice]'), /로그아웃되었습니다/);
    await screenshot(page, 'admin-logged-out-ko');
    // the session is really gone: a reload stays on the sign-in screen
    await page.reload();
    await page.waitForSelector('[data-view=login]');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('users: create a user through the dialog, find it by search, change role, disable, reset password', async () => {
  const b = await adminSession();
  try {
    const { page } = b;
    const username = unique('bt-ui-');
    const display = 'Ui Created ' + username.slice(-5);
    await page.waitForSelector('[data-table=users] tbody tr');
    await page.click('[data-action=new-user]');
    const dlg = page.locator('dialog[data-dialog=create-user]');
    await dlg.waitFor();
    await dlg.locator('input[name=username]').fill(username);
    await dlg.locator('input[name=display_name]').fill(display);
    await dlg.locator('input[name=email]').fill(username + '@example.test');
    await dlg.locator('input[name=password]').fill('short');
    await dlg.locator('button[type=submit]').click();
    assert.match(await dlg.locator('.alert').textContent(), /at least 12 characters/);
    await dlg.locator('input[name=password]').fill('A-long-enough-password-1');
    await screenshot(page, 'admin-create-user');
    await dlg.locator('button[type=submit]').click();
    await dlg.waitFor({ state: 'detached' });
    await page.waitForSelector('.toast');

    // the same username again is refused with a clear message
    await page.click('[data-action=new-user]');
    await dlg.locator('input[name=username]').fill(username);
    await dlg.locator('input[name=password]').fill('A-long-enough-password-1');
    await dlg.locator('button[type=submit]').click();
    await dlg.locator('.alert:not([hidden])').waitFor();
    assert.match(await dlg.locator('.alert').textContent(), /already exists/);
    await dlg.locator('.dialog-foot .btn-secondary').click();
    await dlg.waitFor({ state: 'detached' });

    await page.fill('[data-page=users] input[type=search]', username);
    const row = page.locator(`[data-table=users] tr[data-user="${username}"]`);
    await row.waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-table=users] tbody tr').length === 1);
    assert.match(await row.textContent(), new RegExp(display));
    assert.match(await row.textContent(), /Active/);
    assert.match(await page.textContent('[data-role=pager-info]'), /1–1 of 1/);
    // search is a prefix search on the display name too
    await page.fill('[data-page=users] input[type=search]', display);
    await page.waitForFunction((u) => {
      const rows = document.querySelectorAll('[data-table=users] tbody tr');
      return rows.length === 1 && rows[0].getAttribute('data-user') === u;
    }, username);
    await screenshot(page, 'admin-users-search');

    // role change through the edit dialog
    await row.locator('[data-action=edit]').click();
    const edit = page.locator('dialog[data-dialog=edit-user]');
    await edit.locator('select[name=role]').selectOption('operator');
    await edit.locator('button[type=submit]').click();
    await edit.waitFor({ state: 'detached' });
    await page.waitForFunction((u) => /Operator/.test(document.querySelector(`tr[data-user="${u}"]`)?.textContent || ''), username);

    // disable, with confirmation
    await row.locator('[data-action=disable]').click();
    const confirm = page.locator('dialog[data-dialog=confirm]');
    await confirm.locator('button[type=submit]').click();
    await confirm.waitFor({ state: 'detached' });
    await page.waitForFunction((u) => /Disabled/.test(document.querySelector(`tr[data-user="${u}"]`)?.textContent || ''), username);
    const list = await api.get('/users?q=' + encodeURIComponent(username));
    assert.equal(list.items[0].disabled, true);
    assert.equal(list.items[0].role, 'operator');
    // and enable again
    await row.locator('[data-action=enable]').click();
    await page.waitForFunction((u) => /Active/.test(document.querySelector(`tr[data-user="${u}"]`)?.textContent || ''), username);

    // reset the password, then that password works
    await row.locator('[data-action=reset-password]').click();
    const reset = page.locator('dialog[data-dialog=reset-password]');
    await reset.locator('input[name=password]').fill('Another-long-password-2');
    await reset.locator('button[type=submit]').click();
    await reset.waitFor({ state: 'detached' });
    const other = await openBrowser();
    try {
      await other.page.goto(S.base + '/');
      await signIn(other.page, username, 'Another-long-password-2');
      await other.page.waitForSelector('[data-view=frame]');
    } finally {
      await other.close();
    }
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('users: the list pages through the server with next/previous', async () => {
  const prefix = unique('bt-page-');
  for (let i = 0; i < 23; i++) await createUser(api, { username: `${prefix}-${String(i).padStart(2, '0')}` });
  const b = await adminSession();
  try {
    const { page } = b;
    await page.fill('[data-page=users] input[type=search]', prefix);
    await page.waitForFunction(() => /of 23/.test(document.querySelector('[data-role=pager-info]')?.textContent || ''));
    assert.match(await page.textContent('[data-role=pager-info]'), /1–20 of 23/);
    assert.equal(await page.locator('[data-table=users] tbody tr').count(), 20);
    assert.equal(await page.isDisabled('[data-action=prev-page]'), true);
    await page.click('[data-action=next-page]');
    await page.waitForFunction(() => /21–23 of 23/.test(document.querySelector('[data-role=pager-info]').textContent));
    assert.equal(await page.locator('[data-table=users] tbody tr').count(), 3);
    assert.equal(await page.isDisabled('[data-action=next-page]'), true);
    await page.click('[data-action=prev-page]');
    await page.waitForFunction(() => /1–20 of 23/.test(document.querySelector('[data-role=pager-info]').textContent));
  } finally {
    await b.close();
  }
});

test('groups: create a group, add and remove members', async () => {
  const u1 = await createUser(api, { prefix: 'bt-gm-' });
  const u2 = await createUser(api, { prefix: 'bt-gm-' });
  const b = await adminSession();
  try {
    const { page } = b;
    const name = unique('bt-group-');
    await page.click('a[data-nav=groups]');
    await page.waitForSelector('[data-page=groups] input[type=search]');
    await page.click('[data-action=new-group]');
    const dlg = page.locator('dialog[data-dialog=create-group]');
    await dlg.locator('input[name=name]').fill(name);
    await dlg.locator('textarea[name=description]').fill('Made by the browser tests');
    await dlg.locator('select[name=role]').selectOption('operator');
    await dlg.locator('button[type=submit]').click();
    await dlg.waitFor({ state: 'detached' });
    await page.fill('[data-page=groups] input[type=search]', name);
    const row = page.locator(`tr[data-group="${name}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /0 members/);
    // the group gives its members the operator role: shown on the row
    assert.match(await row.locator('[data-role=group-role]').textContent(), /Operator/);

    await row.locator('[data-action=members]').click();
    const md = page.locator('dialog[data-dialog=members]');
    await md.waitFor();
    await md.locator('.member-empty').waitFor();
    for (const u of [u1, u2]) {
      await md.locator('input[name=member-search]').fill(u.username);
      const res = md.locator(`[data-result="${u.username}"]`);
      await res.locator('[data-action=add-member]').click();
      await md.locator(`[data-member="${u.username}"]`).waitFor();
    }
    await screenshot(page, 'admin-group-members');
    const gid = await row.getAttribute('data-group-id');
    const members = await api.get(`/groups/${gid}/members`);
    assert.deepEqual(members.items.map((m) => m.username).sort(), [u1.username, u2.username].sort());
    assert.equal((await api.get(`/groups/${gid}`)).role, 'operator');
    assert.equal((await api.get(`/users/${u2.id}`)).effective_role, 'operator');
    await md.locator(`[data-member="${u1.username}"] [data-action=remove-member]`).click();
    await md.locator(`[data-member="${u1.username}"]`).waitFor({ state: 'detached' });
    await md.locator('.dialog-foot .btn-secondary').click();
    await md.waitFor({ state: 'detached' });
    await page.waitForFunction((n) => /1 members/.test(document.querySelector(`tr[data-group="${n}"]`)?.textContent || ''), name);
    await screenshot(page, 'admin-groups');

    // the users list says that u2 acts as an operator through a group
    await page.click('a[data-nav=users]');
    await page.waitForSelector('[data-page=users] input[type=search]');
    await page.fill('[data-page=users] input[type=search]', u2.username);
    const urow = page.locator(`tr[data-user="${u2.username}"]`);
    await urow.waitFor();
    assert.match(await urow.locator('[data-role=effective-role]').textContent(), /Operator through a group/);
    assert.equal(await page.locator(`tr[data-user="${u1.username}"] [data-role=effective-role]`).count(), 0);
    await page.click('a[data-nav=groups]');
    await page.waitForSelector('[data-page=groups] input[type=search]');
    await page.fill('[data-page=groups] input[type=search]', name);
    await row.waitFor();

    // delete it again
    await row.locator('[data-action=delete]').click();
    const confirm = page.locator('dialog[data-dialog=confirm]');
    await confirm.locator('button[type=submit]').click();
    await row.waitFor({ state: 'detached' });
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('audit: the log shows what the admin did, filtered by action and actor', async () => {
  const u = await createUser(api, { prefix: 'bt-audit-' });
  const b = await adminSession();
  try {
    const { page } = b;
    await page.click('a[data-nav=audit]');
    await page.waitForSelector('[data-table=audit] tbody tr');
    await page.selectOption('[data-role=audit-filters] select[name=action]', 'user.create');
    await page.fill('[data-role=audit-filters] input[name=actor]', 'admin');
    await page.click('[data-role=audit-filters] button[type=submit]');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-table=audit] tbody tr')];
      return rows.length > 0 && rows.every((r) => r.getAttribute('data-action-name') === 'user.create');
    });
    const first = page.locator('[data-table=audit] tbody tr').first();
    assert.match(await first.textContent(), new RegExp(u.username), 'newest first: the user just made');
    assert.match(await first.textContent(), /User created/);
    assert.match(await first.textContent(), /Succeeded/);
    await screenshot(page, 'admin-audit');
    await page.click('.lang-btn[data-lang=ko]');
    assert.match(await first.textContent(), /사용자 생성/);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('a non-admin in the admin portal is told it is for administrators and can log out', async () => {
  const u = await createUser(api, { prefix: 'bt-nonadmin-' });
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/admin/');
    await signIn(page, u.username, u.password);
    await page.waitForSelector('[data-page=forbidden]');
    assert.match(await page.textContent('[data-page=forbidden]'), /This portal is for administrators/);
    assert.equal(await page.locator('.side-nav').count(), 0, 'no admin navigation');
    await screenshot(page, 'admin-forbidden');
    await page.click('[data-action=logout-forbidden]');
    await page.waitForSelector('[data-view=login]');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('phone size: the admin frame has no horizontal scroll and the account menu holds log-out', async () => {
  const b = await adminSession('#/users', { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
  try {
    const { page } = b;
    await page.waitForSelector('[data-table=users] tbody tr');
    assert.equal(await horizontalOverflow(page), 0);
    await screenshot(page, 'phone-admin-users');
    await page.click('.topbar-menu-btn');
    const logout = page.locator('[data-action=logout]');
    await logout.waitFor({ state: 'visible' });
    await screenshot(page, 'phone-admin-menu');
    await page.click('.topbar-menu .lang-btn[data-lang=ko]');
    await page.keyboard.press('Escape'); // closes the account menu
    await page.locator('.topbar-menu').waitFor({ state: 'hidden' });
    await page.click('a[data-nav=audit]');
    await page.waitForSelector('[data-table=audit] tbody tr');
    assert.equal(await horizontalOverflow(page), 0, 'the audit log fits too');
    await screenshot(page, 'phone-admin-audit-ko');
    await page.click('.topbar-menu-btn');
    await logout.click();
    await page.waitForSelector('[data-view=login]');
  } finally {
    await b.close();
  }
});
