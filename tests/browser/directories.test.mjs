// Directories (LDAP / Active Directory) in the admin portal against a real slapd (tests/lib/slapd.py
// through fixtures.py): the admin adds a directory with the OpenLDAP preset, "Test connection"
// explains a wrong bind password in plain words and then succeeds, looks a user up with his
// groups, maps a directory group to a BIC group that is entitled to a pool, and the directory
// user signs in to the user portal and sees that pool. Then the directory goes down: the user's
// sign-in is refused with a clear message while the local admin still signs in. Layout on a
// phone and in Korean. Screenshots also go to build/screens/.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stack, openBrowser, screenshot, adminApi, adminSession, signIn, unique, horizontalOverflow, ARTIFACTS } from './lib.mjs';
import { fixtures } from './fixtures.mjs';

const S = stack();
const SCREENS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'screens');
let api;
let fx;
let ldap; // {url, ca_pem, suffix, reader_dn, reader_pw, ...} or null when slapd cannot run
let why = null;
const made = { directories: [] };

async function shot(page, name) {
  await screenshot(page, name);
  fs.mkdirSync(SCREENS, { recursive: true });
  fs.copyFileSync(path.join(ARTIFACTS, name + '.png'), path.join(SCREENS, name + '.png'));
}

test.before(async () => {
  api = await adminApi();
  fx = fixtures();
  why = await fx.call('slapd.unavailable');
  if (!why) ldap = await fx.call('slapd.start');
});
test.after(async () => {
  // sign-in asks every enabled directory about unknown names: none may outlive these tests
  for (const id of made.directories) await api.del('/directories/' + id).catch(() => {});
  if (api) await api.dispose();
  if (fx) await fx.close();
});

// A pool entitled to group (no agent behind it: it never gets a desktop, but it is listed).
async function poolForGroup(group, name) {
  const store = path.join(S.var, 'images');
  fs.mkdirSync(store, { recursive: true });
  const file = unique('bt-dir-') + '.qcow2';
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(store, file), '1M'], { stdio: 'ignore' });
  const image = await api.post('/images', { name: unique('bt-dimg-') });
  const version = await api.post(`/images/${image.id}/versions`, { path: file });
  await api.post(`/image-versions/${version.id}/publish`);
  const spec = await api.post('/specs', { name: unique('bt-dspec-'), vcpus: 1, memory_mib: 1024, disk_gib: 10, nic_type: 'virtio' });
  const bb = await api.post('/building-blocks', { name: unique('bt-dbb-'), description: '' });
  const mod = await api.post(`/building-blocks/${bb.id}/modules`, { name: unique('bt-dmod-'), description: '', max_servers: 2 });
  const pool = await api.post('/pools', {
    name, description: 'For the directory’s people', type: 'floating', image_id: image.id, spec_id: spec.id,
    min_size: 0, max_size: 1, name_pattern: unique('d').slice(0, 12) + '-{n:2}', modules: [mod.id],
  });
  await api.put(`/pools/${pool.id}/entitlements/groups/${group.id}`);
  return pool;
}

// The CA as an admin pastes it: PEM with its line breaks.
function caText() {
  return ldap.ca_pem.trim() + '\n';
}

test('directories: add with the preset, test connection (wrong password, then right), map a group, a directory user signs in and sees the pool', async (t) => {
  if (why) return t.skip(why);
  const uid = unique('ann');
  const password = 'Dir-pw-' + unique('x');
  const personDn = (await fx.call('slapd.add_person', { uid, password, cn: 'Ann Directory', mail: uid + '@example.test' })).dn;
  const groupCn = unique('vdi-');
  const groupDn = (await fx.call('slapd.add_group', { cn: groupCn, members: [personDn] })).dn;
  const bicGroup = await api.post('/groups', { name: unique('bt-dirgrp-') });
  const pool = await poolForGroup(bicGroup, unique('Directory pool '));
  const name = unique('Staff LDAP ');

  const b = await adminSession('#/directories');
  try {
    const { page } = b;
    await page.waitForSelector('[data-page=directories]');
    assert.equal(await page.getAttribute('a[data-nav=directories]', 'aria-current'), 'page');
    assert.equal(await page.textContent('[data-page=directories] .page-title'), 'Directories');

    // ---- add, with a wrong bind password first ----
    await page.click('[data-action=new-directory]');
    const dlg = page.locator('dialog[data-dialog=create-directory]');
    await dlg.waitFor();
    // the OpenLDAP preset fills the usual settings; Active Directory's replaces them
    assert.equal(await dlg.locator('input[name=user_filter]').inputValue(), '(&(objectClass=inetOrgPerson)(uid=%s))');
    await dlg.locator('select[name=kind]').selectOption('ad');
    assert.equal(await dlg.locator('input[name=attr_username]').inputValue(), 'sAMAccountName');
    assert.equal(await dlg.locator('select[name=tls]').inputValue(), 'ldaps');
    assert.match(await dlg.locator('input[name=url]').inputValue(), /^ldaps:\/\//);
    await dlg.locator('select[name=kind]').selectOption('openldap');
    assert.equal(await dlg.locator('input[name=attr_username]').inputValue(), 'uid');
    assert.equal(await dlg.locator('select[name=tls]').inputValue(), 'starttls');
    // no encryption is warned about
    await dlg.locator('select[name=tls]').selectOption('none');
    assert.ok(await dlg.locator('[data-role=plaintext]').isVisible());
    await dlg.locator('select[name=tls]').selectOption('starttls');
    assert.ok(await dlg.locator('[data-role=plaintext]').isHidden());
    // a missing name is caught before anything is sent
    await dlg.locator('button[type=submit]').click();
    assert.match(await dlg.locator('.alert-error').first().textContent(), /Give the directory a name/);

    await dlg.locator('input[name=name]').fill(name);
    await dlg.locator('input[name=url]').fill(ldap.url);
    await dlg.locator('textarea[name=ca_cert]').fill(caText());
    await dlg.locator('input[name=bind_dn]').fill(ldap.reader_dn);
    await dlg.locator('input[name=bind_password]').fill('not-the-reader-password');
    await dlg.locator('input[name=user_base]').fill('ou=people,' + ldap.suffix);
    await dlg.locator('input[name=group_base]').fill('ou=groups,' + ldap.suffix);
    await dlg.locator('input[name=disabled_filter]').fill('(employeeType=disabled)');
    await shot(page, 'dir-create');
    await dlg.locator('button[type=submit]').click();
    await dlg.waitFor({ state: 'detached' });
    const row = page.locator(`tr[data-directory="${name}"]`);
    await row.waitFor();
    const dirId = Number(await row.getAttribute('data-directory-id'));
    made.directories.push(dirId);
    const stored = await api.get('/directories/' + dirId);
    assert.equal(stored.url, ldap.url);
    assert.equal(stored.starttls, true);
    assert.equal(stored.bind_password_set, true);
    assert.equal(stored.ca.subject, 'CN=BIC test directory CA', 'the pasted PEM arrived whole');
    assert.equal(await row.locator('[data-role=state]').textContent(), 'In use');
    assert.equal(await row.locator('[data-role=warning]').count(), 0, 'StartTLS with a CA: nothing to warn about');
    await shot(page, 'dir-list');

    // ---- test connection: the wrong password, in plain words ----
    await row.locator('[data-action=test]').click();
    const tdlg = page.locator('dialog[data-dialog=directory-test]');
    await tdlg.waitFor();
    const result = tdlg.locator('[data-role=dir-test-result]');
    await result.waitFor();
    assert.equal(await result.getAttribute('data-ok'), 'false');
    assert.equal(await result.getAttribute('data-step'), 'bind');
    const words = await tdlg.locator('[data-role=dir-test-message]').textContent();
    assert.match(words, new RegExp(`^The directory refused the bind DN '${ldap.reader_dn}' or its password`));
    assert.equal(await tdlg.locator('[data-role=dir-test-step]').textContent(), 'Bind');
    assert.doesNotMatch(await tdlg.textContent(), /null|undefined|\[object|LDAP_|rc=/);
    await shot(page, 'dir-test-wrong-password');
    await tdlg.locator('.dialog-foot button').click();
    await tdlg.waitFor({ state: 'detached' });

    // ---- edit: the right password; the stored one is never shown ----
    await row.locator('[data-action=edit]').click();
    const edlg = page.locator('dialog[data-dialog=edit-directory]');
    await edlg.waitFor();
    assert.equal(await edlg.locator('input[name=bind_password]').inputValue(), '');
    assert.equal(await edlg.locator('input[name=bind_password]').getAttribute('placeholder'), '(unchanged)');
    assert.equal(await edlg.locator('select[name=tls]').inputValue(), 'starttls');
    await edlg.locator('input[name=bind_password]').fill(ldap.reader_pw);
    await edlg.locator('button[type=submit]').click();
    await edlg.waitFor({ state: 'detached' });

    // ---- test connection: works, and looks the user up ----
    await row.locator('[data-action=test]').click();
    await tdlg.waitFor();
    await result.waitFor();
    assert.equal(await result.getAttribute('data-ok'), 'true');
    assert.equal((await result.textContent()).trim(), 'Everything works.');
    const server = tdlg.locator(`[data-server="${ldap.url}"]`);
    assert.equal(await server.getAttribute('data-ok'), 'true');
    assert.match(await server.textContent(), /OK · \d+ ms/);
    await tdlg.locator('input[name=username]').fill(uid);
    await tdlg.locator('[data-action=run-test]').click();
    const who = tdlg.locator('[data-role=dir-test-user]');
    await who.waitFor();
    assert.match(await who.textContent(), new RegExp(personDn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.match(await who.textContent(), /Ann Directory/);
    const g = tdlg.locator(`[data-group-dn="${groupDn}"]`);
    assert.match(await g.textContent(), /not mapped/);
    await shot(page, 'dir-test-ok-user');
    await tdlg.locator('.dialog-foot button').click();
    await tdlg.waitFor({ state: 'detached' });

    // ---- map the directory group to the BIC group ----
    await row.locator('[data-action=group-maps]').click();
    const mdlg = page.locator('dialog[data-dialog=directory-group-maps]');
    await mdlg.waitFor();
    await mdlg.locator('[data-role=group-maps] .member-empty').waitFor();
    // no BIC group is chosen for the admin
    assert.equal(await mdlg.locator('select[name=group_id]').inputValue(), '');
    await mdlg.locator('input[name=group_dn]').fill(groupDn);
    await mdlg.locator('[data-action=add-map]').click();
    assert.match(await mdlg.locator('.alert-error').first().textContent(), /Give a group DN and choose a BIC group/);
    assert.equal((await api.get(`/directories/${dirId}/group-maps`)).items.length, 0);
    // another spelling of the same DN (case, spaces after commas) is the same group
    await mdlg.locator('input[name=group_dn]').fill(groupDn.replace(/,/g, ', ').toUpperCase().replace(/^CN=/, 'cn='));
    await mdlg.locator('select[name=group_id]').selectOption(String(bicGroup.id));
    await mdlg.locator('[data-action=add-map]').click();
    const mapped = mdlg.locator('[data-role=group-maps] [data-map]');
    await mapped.waitFor();
    assert.match(await mapped.textContent(), new RegExp(bicGroup.name));
    await shot(page, 'dir-group-maps');
    await mdlg.locator('.dialog-foot button').click();
    await mdlg.waitFor({ state: 'detached' });
    // the lookup now shows where the group leads
    await row.locator('[data-action=test]').click();
    await tdlg.waitFor();
    await result.waitFor();
    await tdlg.locator('input[name=username]').fill(uid);
    await tdlg.locator('input[name=username]').press('Enter');
    await g.waitFor();
    await page.waitForFunction((sel) => /→|\S/.test(document.querySelector(sel)?.textContent || '') &&
      !/not mapped/.test(document.querySelector(sel).textContent), `[data-group-dn="${groupDn}"]`);
    assert.match(await g.textContent(), new RegExp(bicGroup.name));
    await tdlg.locator('.dialog-foot button').click();
    await tdlg.waitFor({ state: 'detached' });

    // ---- the directory user signs in to the user portal and sees the pool ----
    const u = await openBrowser();
    try {
      await u.page.goto(S.base + '/');
      await signIn(u.page, uid, password);
      await u.page.waitForSelector('[data-view=frame]');
      assert.equal(await u.page.locator('[data-role=topbar] .user-name').textContent(), 'Ann Directory');
      const card = u.page.locator(`[data-pool-id="${pool.id}"]`);
      await card.waitFor();
      assert.equal(await card.locator('.desk-card-name').textContent(), pool.name);
      await shot(u.page, 'dir-user-pool');
      assert.deepEqual(u.errors, []);
    } finally {
      await u.close();
    }
    // the account the sign-in made, and its group from the directory
    const users = await api.get(`/directories/${dirId}/users?limit=100`);
    const made1 = users.items.find((x) => x.username === uid);
    assert.ok(made1, 'the directory user was made at sign-in');
    const full = await api.get('/users/' + made1.id);
    assert.deepEqual(full.groups.map((x) => x.name), [bicGroup.name]);
    // the admin sees him in the directory's users
    await page.reload();
    await row.waitFor();
    assert.equal((await row.locator('[data-action=users]').textContent()).trim(), '1');
    await row.locator('[data-action=users]').click();
    const udlg = page.locator('dialog[data-dialog=directory-users]');
    await udlg.waitFor();
    await udlg.locator(`[data-user="${uid}"]`).waitFor();
    assert.match(await udlg.locator(`[data-user="${uid}"]`).textContent(), /Ann Directory/);
    await shot(page, 'dir-users');
    await udlg.locator('.dialog-foot button').click();
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }

  // ---- the directory goes down: the local admin still signs in and "Test connection" says why;
  // the directory user is refused with a clear message ----
  await fx.call('slapd.stop');
  try {
    const a = await adminSession('#/directories');
    try {
      const row = a.page.locator(`tr[data-directory="${name}"]`);
      await row.waitFor();
      await row.locator('[data-action=test]').click();
      const result = a.page.locator('dialog[data-dialog=directory-test] [data-role=dir-test-result]');
      await result.waitFor();
      assert.equal(await result.getAttribute('data-ok'), 'false');
      assert.equal(await result.getAttribute('data-step'), 'connect');
      assert.match(await result.textContent(), new RegExp(`Nothing listens on port ${new URL(ldap.url).port} of 127.0.0.1`));
      await shot(a.page, 'dir-test-down');
      assert.deepEqual(a.errors, []);
    } finally {
      await a.close();
    }
    const u = await openBrowser();
    try {
      await u.page.goto(S.base + '/');
      const answer = u.page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/login'));
      await signIn(u.page, uid, password);
      const res = await answer;
      assert.equal(res.status(), 503);
      assert.equal((await res.json()).error.reason, 'directory_unavailable');
      const err = u.page.locator('[data-role=login-error]');
      await err.waitFor({ state: 'visible' });
      await shot(u.page, 'dir-down-user-login');
      assert.equal((await u.page.request.get(S.base + '/api/v1/auth/me')).status(), 401);
      // needs portal-user/common/app.js to map the reason (LOGIN_ERRORS.unavailable); the text is
      // in common/oidc-i18n.js, loaded by both portals
      assert.equal(await err.textContent(), 'The sign-in directory cannot be reached right now. Try again in a moment; ' +
        'administrators can still sign in with their BIC password.', 'the refusal says the directory is the problem');
    } finally {
      await u.close();
    }
  } finally {
    await fx.call('slapd.restart');
  }
});

test('directories: phone size and Korean', async (t) => {
  if (why) return t.skip(why);
  const d = await api.post('/directories', {
    name: unique('본사 LDAP '), url: ldap.url, starttls: true, ca_cert: ldap.ca_pem.trim().split(/\s+/).join(' '),
    bind_dn: ldap.reader_dn, bind_password: ldap.reader_pw, user_base: 'ou=people,' + ldap.suffix,
    user_filter: '(&(objectClass=inetOrgPerson)(uid=%s))', group_base: 'ou=groups,' + ldap.suffix,
    group_filter: '(&(objectClass=groupOfNames)(member=%d))', attr_username: 'uid', attr_display_name: 'cn',
    attr_email: 'mail', timeout: 3,
  });
  made.directories.push(d.id);
  for (const [label, opts] of [['desktop-ko', { locale: 'ko-KR' }],
    ['phone', { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 }],
    ['phone-ko', { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2, locale: 'ko-KR' }]]) {
    const b = await adminSession('#/directories', opts);
    try {
      const { page } = b;
      const ko = label.endsWith('ko');
      if (ko && (await page.getAttribute('html', 'lang')) !== 'ko') await page.click('.lang-btn[data-lang=ko]');
      const row = page.locator(`tr[data-directory="${d.name}"]`);
      await row.waitFor();
      assert.equal(await horizontalOverflow(page), 0, label + ': no sideways scroll on the list');
      if (ko) assert.equal(await page.textContent('[data-page=directories] .page-title'), '디렉터리');
      await shot(page, 'dir-list-' + label);
      await row.locator('[data-action=test]').click();
      const tdlg = page.locator('dialog[data-dialog=directory-test]');
      await tdlg.locator('[data-role=dir-test-result]').waitFor();
      assert.equal(await tdlg.locator('[data-role=dir-test-result]').getAttribute('data-ok'), 'true');
      assert.equal(await horizontalOverflow(page), 0, label + ': no sideways scroll with the test');
      await shot(page, 'dir-test-' + label);
      await tdlg.locator('.dialog-foot button').click();
      await tdlg.waitFor({ state: 'detached' });
      await row.locator('[data-action=edit]').click();
      const edlg = page.locator('dialog[data-dialog=edit-directory]');
      await edlg.waitFor();
      assert.equal(await horizontalOverflow(page), 0, label + ': no sideways scroll in the form');
      await shot(page, 'dir-edit-' + label);
      await edlg.locator('.dialog-foot button').first().click();
      await row.locator('[data-action=group-maps]').click();
      const mdlg = page.locator('dialog[data-dialog=directory-group-maps]');
      await mdlg.locator('[data-role=group-maps] li').first().waitFor();
      await shot(page, 'dir-maps-' + label);
      await mdlg.locator('.dialog-foot button').click();
      assert.deepEqual(b.errors, []);
    } finally {
      await b.close();
    }
  }
});
