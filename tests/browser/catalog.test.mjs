// The admin portal's Desktops pages against the real API: specs, images with versions
// (registered from the image store and uploaded through nginx), publishing, and desktop pools
// (create bound to a module, counts, detail, pause/resume, entitlements, placement preview).
// The stack has no agents here, so a pool never gets desktops and its placement preview says
// why. Everything a test uses is created by that test, with unique names.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { stack, adminSession, openBrowser, screenshot, adminApi, createUser, signIn, unique, horizontalOverflow } from './lib.mjs';

const S = stack();
const STORE = path.join(S.var, 'images');
let api;

test.before(async () => {
  api = await adminApi();
});
test.after(async () => {
  if (api) await api.dispose();
});

// A small qcow2 file of `mib` MiB virtual size (so files of different sizes differ): qemu-img's
// when it is installed, else a bare version-3 header (bicd only reads the magic; nothing here
// boots it). padding: bytes of zeros appended, to make a file that takes a while to upload.
function qcow2Bytes(mib = 1, padding = 0) {
  const tmp = fs.mkdtempSync(path.join(S.var, 'bt-qcow2-'));
  const f = path.join(tmp, 'disk.qcow2');
  let bytes;
  try {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, mib + 'M'], { stdio: 'ignore' });
    bytes = fs.readFileSync(f);
  } catch (e) {
    bytes = Buffer.alloc(512);
    bytes.write('QFI\xfb', 0, 'latin1');
    bytes.writeUInt32BE(3, 4);
    bytes.writeUInt32BE(16, 20); // cluster bits
    bytes.writeBigUInt64BE(BigInt(mib) << 20n, 24); // virtual size
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return padding ? Buffer.concat([bytes, Buffer.alloc(padding)]) : bytes;
}

// Puts a qcow2 into the stack's image store; returns {rel, sha256}.
function storeFile(name) {
  const bytes = qcow2Bytes();
  fs.mkdirSync(STORE, { recursive: true });
  fs.writeFileSync(path.join(STORE, name), bytes);
  return { rel: name, sha256: crypto.createHash('sha256').update(bytes).digest('hex'), bytes };
}

// A published image, a spec, a building block with one module: what a pool needs.
async function poolPrereqs() {
  const spec = await api.post('/specs', { name: unique('bt-spec-'), vcpus: 2, memory_mib: 2048, disk_gib: 20, nic_type: 'virtio' });
  const image = await api.post('/images', { name: unique('bt-img-'), os_type: 'linux' });
  const file = storeFile(unique('bt-pool-') + '.qcow2');
  const version = await api.post(`/images/${image.id}/versions`, { path: file.rel });
  await api.post(`/image-versions/${version.id}/publish`);
  const bb = await api.post('/building-blocks', { name: unique('bt-bb-'), description: '' });
  const mod = await api.post(`/building-blocks/${bb.id}/modules`, { name: unique('bt-mod-'), description: '', max_servers: 4 });
  return { spec, image, version, bb, mod };
}

const confirm = (page) => page.locator('dialog[data-dialog=confirm]');

async function confirmIt(page) {
  const c = confirm(page);
  await c.locator('button[type=submit]').click();
  await c.waitFor({ state: 'detached' });
}

test('specs: create through the dialog with checked values, a taken name is refused, in-use delete shows the reason', async () => {
  const b = await adminSession('#/specs');
  try {
    const { page } = b;
    await page.waitForSelector('[data-page=specs] .page-title');
    assert.equal(await page.getAttribute('a[data-nav=specs]', 'aria-current'), 'page');
    const name = unique('bt-spec-');
    await page.click('[data-action=new-spec]');
    const dlg = page.locator('dialog[data-dialog=create-spec]');
    await dlg.locator('input[name=name]').fill(name);
    await dlg.locator('input[name=vcpus]').fill('100');
    await dlg.locator('button[type=submit]').click();
    await dlg.locator('.alert:not([hidden])').waitFor();
    assert.match(await dlg.locator('.alert').textContent(), /vCPUs must be a whole number from 1 to 64/);
    await dlg.locator('input[name=vcpus]').fill('4');
    await dlg.locator('input[name=memory]').fill('6');
    await dlg.locator('select[name=memory_unit]').selectOption('GiB');
    await dlg.locator('input[name=disk_gib]').fill('60');
    await dlg.locator('select[name=nic_type]').selectOption('sriov');
    await screenshot(page, 'catalog-spec-create');
    await dlg.locator('button[type=submit]').click();
    await dlg.waitFor({ state: 'detached' });
    const row = page.locator(`[data-table=specs] tr[data-spec="${name}"]`);
    await row.waitFor();
    assert.equal((await row.locator('[data-role=vcpus]').textContent()).trim(), '4');
    assert.equal((await row.locator('[data-role=memory]').textContent()).trim(), '6 GiB');
    assert.equal((await row.locator('[data-role=disk]').textContent()).trim(), '60 GiB');
    assert.match(await row.textContent(), /SR-IOV VF/);
    const saved = (await api.get('/specs?q=' + encodeURIComponent(name))).items.find((s) => s.name === name);
    assert.equal(saved.memory_mib, 6144);
    assert.equal(saved.nic_type, 'sriov');

    // the same name again: the API's conflict, in words
    await page.click('[data-action=new-spec]');
    await dlg.locator('input[name=name]').fill(name);
    await dlg.locator('button[type=submit]').click();
    await dlg.locator('.alert:not([hidden])').waitFor();
    assert.match(await dlg.locator('.alert').textContent(), /already exists/);
    await dlg.locator('.dialog-foot .btn-secondary').click();
    await dlg.waitFor({ state: 'detached' });

    // a spec a pool uses cannot be deleted: the API's reason names the pool
    const pre = await poolPrereqs();
    const poolName = unique('bt-pool-');
    await api.post('/pools', { name: poolName, type: 'floating', image_id: pre.image.id, spec_id: pre.spec.id, min_size: 0, max_size: 1, name_pattern: unique('bt') + '-{n}', modules: [pre.mod.id] });
    await page.fill('[data-page=specs] input[type=search]', pre.spec.name);
    const used = page.locator(`[data-table=specs] tr[data-spec="${pre.spec.name}"]`);
    await used.waitFor();
    await used.locator('[data-action=delete]').click();
    await confirm(page).locator('button[type=submit]').click();
    await confirm(page).locator('.alert:not([hidden])').waitFor();
    assert.match(await confirm(page).locator('.alert').textContent(), new RegExp('used by pool ' + poolName));
    await confirm(page).locator('.dialog-foot .btn-secondary').click();
    await confirm(page).waitFor({ state: 'detached' });

    // an unused one is deleted after the confirmation
    await page.fill('[data-page=specs] input[type=search]', name);
    await row.locator('[data-action=delete]').click();
    await confirmIt(page);
    await row.waitFor({ state: 'detached' });
    assert.equal((await api.get('/specs?q=' + encodeURIComponent(name))).items.filter((s) => s.name === name).length, 0);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('images: create, a bad path is refused with the API\'s reason, register and upload versions, publish, delete', async () => {
  const b = await adminSession('#/images');
  try {
    const { page } = b;
    await page.waitForSelector('[data-page=images] .page-title');
    const name = unique('bt-img-');
    await page.click('[data-action=new-image]');
    const dlg = page.locator('dialog[data-dialog=create-image]');
    await dlg.locator('input[name=name]').fill(name);
    await dlg.locator('select[name=os_type]').selectOption('windows');
    await dlg.locator('button[type=submit]').click();
    await dlg.waitFor({ state: 'detached' });
    // a new image opens on its own page, with nothing published yet
    await page.waitForSelector('[data-page=images-detail] [data-role=image-name]');
    assert.equal(await page.textContent('[data-role=image-name]'), name);
    const image = (await api.get('/images?q=' + encodeURIComponent(name))).items.find((i) => i.name === name);
    assert.ok(image, 'the image exists in the API');
    assert.equal(image.os_type, 'windows');
    assert.match(await page.textContent('.image-head [data-role=published]'), /Not published/);
    await page.waitForSelector('[data-table=versions].is-empty', { state: 'attached' });

    // the API's validation of the path is shown with its message
    const reg = page.locator('[data-role=register-panel]');
    await reg.locator('input[name=path]').fill('../etc/passwd');
    await reg.locator('[data-action=register]').click();
    await reg.locator('.alert:not([hidden])').waitFor();
    const regError = await reg.locator('.alert').textContent();
    assert.match(regError, /Some values are not valid/);
    assert.match(regError, /may not contain empty, '\.', '\.\.' or hidden/);

    // register a file that is in the image store
    const file = storeFile(unique('bt-reg-') + '.qcow2');
    await reg.locator('input[name=path]').fill(file.rel);
    await reg.locator('input[name=register-notes]').fill('first build');
    await reg.locator('[data-action=register]').click();
    const v1 = page.locator('[data-table=versions] tr[data-version="1"]');
    await v1.waitFor();
    assert.equal(await v1.getAttribute('data-state'), 'ready');
    assert.match(await v1.textContent(), /Registered/);
    assert.match(await v1.textContent(), /first build/);
    assert.equal(await v1.locator('[data-role=sha256]').textContent(), file.sha256.slice(0, 12));
    assert.equal(await v1.locator('[data-role=sha256]').getAttribute('title'), file.sha256);
    assert.equal(await reg.locator('input[name=path]').inputValue(), '', 'the form is cleared after success');

    // upload: a file that is not a qcow2 is refused with the API's reason, a qcow2 becomes v2
    const up = page.locator('[data-role=upload-panel]');
    await up.locator('input[type=file]').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('this is not a disk image\n'.repeat(64)) });
    await up.locator('[data-action=upload]').click();
    await up.locator('.alert:not([hidden])').waitFor();
    assert.match(await up.locator('.alert').textContent(), /not a qcow2 image/);
    // a slow link (1 MB/s up) so the progress can be seen: 2 MiB take about two seconds
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
    const uploaded = qcow2Bytes(2, 2 << 20);
    await up.locator('input[type=file]').setInputFiles({ name: 'golden.qcow2', mimeType: 'application/octet-stream', buffer: uploaded });
    await up.locator('input[name=upload-notes]').fill('uploaded from the browser');
    await up.locator('[data-action=upload]').click();
    // progress from XMLHttpRequest.upload: part of the bytes, a percentage, a bar in between
    await page.waitForFunction(() => {
      const bar = document.querySelector('[data-role=upload-progress] progress');
      return bar && bar.value > 0 && bar.value < 100;
    });
    const total = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 }).format(uploaded.length / 1048576) + ' MiB';
    assert.match(await up.locator('[data-role=upload-text]').textContent(), new RegExp('^[\\d.]+ [KM]iB of ' + total.replace('.', '\\.') + ' · \\d+%$'));
    assert.ok(await up.locator('[data-action=upload]').isDisabled(), 'no second upload while one runs');
    await screenshot(page, 'catalog-image-uploading');
    const v2 = page.locator('[data-table=versions] tr[data-version="2"]');
    await v2.waitFor({ timeout: 30000 });
    assert.match(await v2.textContent(), /Uploaded/);
    assert.match(await v2.textContent(), /uploaded from the browser/);
    assert.equal(await v2.locator('[data-role=sha256]').getAttribute('title'), crypto.createHash('sha256').update(uploaded).digest('hex'));
    assert.ok(await up.locator('[data-role=upload-progress]').isHidden(), 'the progress bar goes away when the upload is done');
    // an upload can be cancelled while it runs: nothing is added
    await up.locator('input[type=file]').setInputFiles({ name: 'other.qcow2', mimeType: 'application/octet-stream', buffer: qcow2Bytes(3, 4 << 20) });
    await up.locator('[data-action=upload]').click();
    await page.waitForFunction(() => document.querySelector('[data-role=upload-progress] progress')?.value > 0);
    await up.locator('[data-action=cancel-upload]').click();
    await up.locator('.alert-info:not([hidden])').waitFor();
    assert.match(await up.locator('.alert').textContent(), /cancelled/);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    assert.deepEqual((await api.get(`/images/${image.id}/versions`)).items.map((v) => v.version), [2, 1]);
    await screenshot(page, 'catalog-image-versions');

    // publish v1 after a confirmation: marked in the table and the head, and in the API
    await v1.locator('[data-action=publish]').click();
    await confirmIt(page);
    await page.waitForFunction(() => document.querySelector('[data-table=versions] tr[data-version="1"]')?.getAttribute('data-published') === 'true');
    assert.match(await v1.locator('[data-role=published-badge]').textContent(), /Published/);
    await page.waitForFunction(() => /Version 1/.test(document.querySelector('.image-head [data-role=published]')?.textContent || ''));
    assert.equal((await api.get('/images/' + image.id)).published_version, 1);
    // the published version cannot be deleted from here; v2 can
    assert.ok(await v1.locator('[data-action=delete-version]').isDisabled());
    assert.equal(await v2.locator('[data-action=publish]').count(), 1);
    await v2.locator('[data-action=delete-version]').click();
    await confirmIt(page);
    await v2.waitFor({ state: 'detached' });
    const left = (await api.get(`/images/${image.id}/versions`)).items.map((v) => v.version);
    assert.deepEqual(left, [1]);

    // the list shows the published version and the count
    await page.click('a[data-nav=images]');
    await page.fill('[data-page=images] input[type=search]', name);
    const row = page.locator(`[data-table=images] tr[data-image="${name}"]`);
    await row.waitFor();
    await page.waitForFunction((n) => document.querySelectorAll('[data-table=images] tbody tr').length === 1 &&
      document.querySelector('[data-table=images] tbody tr').getAttribute('data-image') === n, name);
    assert.match(await row.locator('[data-role=published]').textContent(), /Version 1/);
    assert.equal((await row.locator('[data-role=versions]').textContent()).trim(), '1');
    assert.match(await row.textContent(), /Windows/);
    await screenshot(page, 'catalog-images');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('pools: create bound to a module, listed with counts, detail with placement reason, pause/resume, entitlements', async () => {
  const pre = await poolPrereqs();
  const user = await createUser(api, { prefix: 'bt-ent-' });
  const group = await api.post('/groups', { name: unique('bt-entg-'), description: '' });
  const b = await adminSession('#/pools');
  try {
    const { page } = b;
    await page.waitForSelector('[data-page=pools] .page-title');
    const name = unique('bt-pool-');
    const prefix = unique('bt');
    await page.click('[data-action=new-pool]');
    const dlg = page.locator('dialog[data-dialog=create-pool]');
    await dlg.waitFor();
    await dlg.locator('input[name=name]').fill(name);
    await dlg.locator('select[name=type]').selectOption('dedicated');
    await dlg.locator(`select[name=image_id] option[value="${pre.image.id}"]`).waitFor({ state: 'attached' });
    await dlg.locator('select[name=image_id]').selectOption(String(pre.image.id));
    await dlg.locator(`select[name=spec_id] option[value="${pre.spec.id}"]`).waitFor({ state: 'attached' });
    await dlg.locator('select[name=spec_id]').selectOption(String(pre.spec.id));
    await dlg.locator('input[name=min_size]').fill('2');
    await dlg.locator('input[name=max_size]').fill('12');
    await dlg.locator('input[name=spare]').fill('1');
    // the naming pattern: the preview follows what is typed, and says what is wrong
    const preview = dlg.locator('[data-role=pattern-preview]');
    await dlg.locator('input[name=name_pattern]').fill(prefix + '-{n}-{n}');
    assert.match(await preview.textContent(), /Use \{n\} only once/);
    assert.ok(await preview.evaluate((el) => el.classList.contains('is-error')));
    await dlg.locator('input[name=name_pattern]').fill(prefix + '-{n:2}');
    const names = await preview.locator('.pattern-name').allTextContents();
    assert.deepEqual(names, [prefix + '-01', prefix + '-02', prefix + '-03', prefix + '-12']);
    // a pool needs a module: refused until one is ticked
    await dlg.locator('button[type=submit]').click();
    await dlg.locator('.alert:not([hidden])').waitFor();
    assert.match(await dlg.locator('.alert').textContent(), /Choose at least one module/);
    const modBox = dlg.locator(`.module-option[data-module="${pre.mod.name}"] input`);
    await modBox.check();
    await screenshot(page, 'catalog-pool-create');
    await dlg.locator('button[type=submit]').click();
    await dlg.waitFor({ state: 'detached' });

    const created = (await api.get('/pools?q=' + encodeURIComponent(name))).items.find((p) => p.name === name);
    assert.ok(created, 'the pool exists in the API');
    assert.deepEqual(created.modules.map((m) => m.id), [pre.mod.id]);
    assert.equal(created.name_pattern, prefix + '-{n:2}');
    assert.equal(created.min_size, 2);
    assert.equal(created.max_size, 12);
    assert.equal(created.type, 'dedicated');

    // listed with its state and its counts (no agents here: nothing becomes ready)
    await page.fill('[data-page=pools] input[type=search]', name);
    const row = page.locator(`[data-table=pools] tr[data-pool="${name}"]`);
    await row.waitFor();
    const now = await api.get('/pools/' + created.id);
    assert.equal(await row.getAttribute('data-ready'), '0');
    assert.equal(await row.getAttribute('data-total'), String(now.counts.total));
    assert.match(await row.locator('[data-role=ready-total]').textContent(), new RegExp('^0\\s*/\\s*' + now.counts.total + '$'));
    assert.match(await row.textContent(), /Active/);
    assert.match(await row.textContent(), new RegExp(pre.image.name));
    assert.match(await row.textContent(), /min 2 · max 12 · spare 1/);
    await screenshot(page, 'catalog-pools');

    // the pool's page
    await row.locator('a.image-link').click();
    await page.waitForSelector('[data-page=pools-detail] [data-role=pool-name]');
    assert.equal(await page.textContent('[data-role=pool-name]'), name);
    const progress = page.locator('[data-card=progress]');
    assert.equal(await progress.getAttribute('data-ready'), '0');
    assert.equal(await progress.getAttribute('data-target'), '2', 'min 2 with nothing assigned: the target is the minimum');
    // where the next desktop would go: nowhere, and why
    const placement = page.locator('[data-role=placement][data-fits=false]');
    await placement.waitFor();
    const why = await api.get(`/pools/${created.id}/placement`);
    assert.equal(why.fits, false);
    assert.equal(await placement.locator('[data-role=placement-reason]').textContent(), why.reason);
    assert.match(why.reason, new RegExp('module ' + pre.mod.name + ': no servers'));
    assert.match(await placement.textContent(), /No server can take the next desktop/);
    assert.match(await page.textContent('[data-role=pool-modules]'), new RegExp(pre.mod.name));
    await screenshot(page, 'catalog-pool-detail');

    // pause with a reason: shown prominently, and in the API
    await page.click('[data-action=pause]');
    const pause = page.locator('dialog[data-dialog=pause-pool]');
    await pause.locator('textarea[name=reason]').fill('golden image being fixed');
    await pause.locator('button[type=submit]').click();
    await pause.waitFor({ state: 'detached' });
    await page.waitForSelector('[data-role=pause-banner]');
    assert.equal(await page.textContent('[data-role=pause-reason]'), 'golden image being fixed');
    assert.match(await page.textContent('.pool-head'), /Paused/);
    let p = await api.get('/pools/' + created.id);
    assert.equal(p.state, 'paused');
    assert.equal(p.pause_reason, 'golden image being fixed');
    await screenshot(page, 'catalog-pool-paused');
    // resume, after a confirmation
    await page.click('.pool-head [data-action=resume]');
    await confirmIt(page);
    await page.waitForSelector('[data-role=pause-banner]', { state: 'detached' });
    assert.equal((await api.get('/pools/' + created.id)).state, 'active');

    // entitlements: find a user and a group, add both, remove the user
    const ent = page.locator('[data-card=entitlements]');
    await ent.locator('input[type=search]').fill(user.username);
    const userResult = ent.locator(`[data-result="user:${user.username}"]`);
    await userResult.waitFor();
    await userResult.locator('[data-action=add-entitlement]').click();
    await ent.locator(`[data-entitlement="user:${user.username}"]`).waitFor();
    await userResult.locator('.badge').waitFor();
    assert.match(await userResult.textContent(), /Entitled/);
    await ent.locator('input[type=search]').fill(group.name);
    const groupResult = ent.locator(`[data-result="group:${group.name}"]`);
    await groupResult.waitFor();
    await groupResult.locator('[data-action=add-entitlement]').click();
    await ent.locator(`[data-entitlement="group:${group.name}"]`).waitFor();
    let ents = (await api.get(`/pools/${created.id}/entitlements`)).items;
    assert.ok(ents.some((e) => e.user_id === user.id), 'the user is entitled in the API');
    assert.ok(ents.some((e) => e.group_id === group.id), 'the group is entitled in the API');
    assert.equal(await ent.locator('[data-role=ent-count]').textContent(), '2');
    await ent.scrollIntoViewIfNeeded();
    await screenshot(page, 'catalog-pool-entitlements');
    await ent.locator(`[data-entitlement="user:${user.username}"] [data-action=remove-entitlement]`).click();
    assert.match(await confirm(page).textContent(), new RegExp(user.username));
    await confirmIt(page);
    await ent.locator(`[data-entitlement="user:${user.username}"]`).waitFor({ state: 'detached' });
    ents = (await api.get(`/pools/${created.id}/entitlements`)).items;
    assert.ok(!ents.some((e) => e.user_id === user.id), 'the user is no longer entitled');
    assert.ok(ents.some((e) => e.group_id === group.id), 'the group still is');

    // sizes: a minimum above the maximum is refused before it is sent; a good change is saved
    await page.click('[data-action=edit-pool]');
    const edit = page.locator('dialog[data-dialog=edit-pool]');
    await edit.locator('input[name=max_size]').fill('1');
    await edit.locator('button[type=submit]').click();
    await edit.locator('.alert:not([hidden])').waitFor();
    assert.match(await edit.locator('.alert').textContent(), /minimum cannot be larger than the maximum/);
    await edit.locator('input[name=min_size]').fill('1');
    await edit.locator('input[name=max_size]').fill('3');
    await edit.locator('input[name=spare]').fill('0');
    await edit.locator('button[type=submit]').click();
    await edit.waitFor({ state: 'detached' });
    p = await api.get('/pools/' + created.id);
    assert.deepEqual([p.min_size, p.max_size, p.spare], [1, 3, 0]);
    await page.waitForFunction(() => document.querySelector('[data-card=progress]')?.getAttribute('data-target') === '1');

    // a new spec for the whole pool: saved on the pool (it has no desktops to resize yet)
    const bigger = await api.post('/specs', { name: unique('bt-spec-'), vcpus: 4, memory_mib: 8192, disk_gib: 40, nic_type: 'virtio' });
    await page.click('[data-action=change-spec]');
    const sp = page.locator('dialog[data-dialog=pool-spec]');
    await sp.locator(`select[name=spec_id] option[value="${bigger.id}"]`).waitFor({ state: 'attached' });
    await sp.locator('select[name=spec_id]').selectOption(String(bigger.id));
    assert.match(await sp.locator('[data-role=spec-detail]').textContent(), /4 vCPU · 8 GiB · 40 GiB disk/);
    assert.ok(await sp.locator('input[name=resize_now]').isDisabled(), 'nothing to resize in an empty pool');
    await sp.locator('button[type=submit]').click();
    await sp.waitFor({ state: 'detached' });
    assert.equal((await api.get('/pools/' + created.id)).spec_id, bigger.id);
    await page.waitForFunction((n) => (document.querySelector('[data-role=settings]')?.textContent || '').includes(n), bigger.name);

    // delete needs the name typed; the pool then shows it is being deleted (or is gone)
    await page.click('[data-action=delete-pool]');
    const del = page.locator('dialog[data-dialog=delete-pool]');
    await del.locator('input[name=confirm_name]').fill('not-the-name');
    await del.locator('button[type=submit]').click();
    await del.locator('.alert:not([hidden])').waitFor();
    assert.match(await del.locator('.alert').textContent(), new RegExp('Type the pool name ' + name));
    await del.locator('input[name=confirm_name]').fill(name);
    await del.locator('button[type=submit]').click();
    await del.waitFor({ state: 'detached' });
    await page.waitForSelector('[data-role=deleting-banner], [data-role=missing]');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('Korean and phone size: the pool and image pages are in Korean and fit 390 px without sideways scrolling', async () => {
  const pre = await poolPrereqs();
  const pool = await api.post('/pools', { name: unique('bt-pool-'), type: 'floating', image_id: pre.image.id, spec_id: pre.spec.id, min_size: 1, max_size: 4, spare: 1, name_pattern: unique('bt') + '-{n:3}', placement: 'pack', modules: [pre.mod.id] });
  await api.post(`/pools/${pool.id}/pause`, { reason: 'a long reason that has to wrap on a phone screen without pushing the page sideways' });
  const b = await adminSession('#/pools/' + pool.id, { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
  try {
    const { page } = b;
    await page.waitForSelector('[data-role=placement][data-fits=false]');
    await page.waitForSelector('[data-role=pause-banner]');
    assert.equal(await horizontalOverflow(page), 0, 'pool page fits 390 px');
    await screenshot(page, 'catalog-phone-pool');
    await page.click('.topbar-menu-btn');
    await page.click('.lang-btn[data-lang=ko]');
    assert.equal(await page.getAttribute('html', 'lang'), 'ko');
    await page.click('.topbar-menu-btn');
    await page.waitForSelector('.topbar-menu', { state: 'hidden' });
    await page.waitForFunction(() => /일시 중지/.test(document.querySelector('.pool-head')?.textContent || ''));
    assert.equal((await page.textContent('[data-card=placement] .card-title')).trim(), '다음 데스크톱');
    assert.match(await page.textContent('[data-role=pause-banner]'), /일시 중지됨/);
    assert.match(await page.textContent('[data-card=progress]'), /준비된 데스크톱/);
    assert.equal((await page.textContent('a[data-nav=pools]')).trim(), '풀');
    assert.equal(await horizontalOverflow(page), 0, 'pool page in Korean fits 390 px');
    await screenshot(page, 'catalog-phone-pool-ko');

    await page.goto(S.base + '/admin/#/pools');
    await page.waitForSelector(`[data-table=pools] tr[data-pool="${pool.name}"]`);
    assert.equal(await horizontalOverflow(page), 0, 'pool list fits 390 px');
    await screenshot(page, 'catalog-phone-pools-ko');

    await page.goto(S.base + '/admin/#/images/' + pre.image.id);
    await page.waitForSelector('[data-table=versions] tr[data-version="1"]');
    assert.match(await page.textContent('[data-card=versions] .card-title'), /버전/);
    assert.equal(await horizontalOverflow(page), 0, 'image page fits 390 px');
    await screenshot(page, 'catalog-phone-image-ko');

    await page.goto(S.base + '/admin/#/specs');
    await page.waitForSelector(`[data-table=specs] tbody tr`);
    assert.equal(await horizontalOverflow(page), 0, 'specs fit 390 px');
    await page.click('[data-action=new-spec]');
    await page.waitForSelector('dialog[data-dialog=create-spec]');
    assert.equal(await horizontalOverflow(page), 0, 'the spec dialog fits 390 px');
    await screenshot(page, 'catalog-phone-spec-dialog-ko');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
