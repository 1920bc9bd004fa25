// SR-IOV in the admin portal (issue 7) against the real API and a real bic-agent (`--fleet 1`
// on libvirt's test driver) that reads its host through a fixture sysfs root
// (BIC_AGENT_ROOT_PREFIX): an Intel X710 whose ens1f0 has 8 VFs and a link, and whose ens1f1
// has 2 VFs and no carrier (tests/fixtures/sysroot-sriov-i40e). The server page shows every
// NIC (link, PCI address, driver, speed, VFs enabled/held/free, the NIC rule's capacity) and
// every VF with the desktop holding it; an SR-IOV pool's desktops take VFs and the page links
// each holder to its desktop. The pool forms take a VLAN (checked by the page and by the
// server) and the virtio fallback. A tree written by tests/lib/sriov_tree.py with 2 x 128 VFs
// checks the VF table stays usable at that size, in Korean and on a phone.
// Everything a test uses is created by that test, with unique names.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stack, adminSession, openBrowser, screenshot, adminApi, signIn, unique, horizontalOverflow } from './lib.mjs';
import { makeHierarchy, until } from './agent.mjs';

const S = stack();
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT = path.join(REPO, 'build', 'test', 'bic-agent');
const X710 = path.join(REPO, 'tests', 'fixtures', 'sysroot-sriov-i40e');
const TREE = path.join(REPO, 'tests', 'lib', 'sriov_tree.py');
const RED = 'rgb(201, 48, 44)'; // --danger
const NO_AGENT = !fs.existsSync(AGENT) && 'build/test/bic-agent is not built (make test-build)';
let api;

test.before(async () => {
  api = await adminApi();
});
test.after(async () => {
  if (api) await api.dispose();
});

// The VFs of PF `nic` in a sysfs tree as the kernel lists them: [{index, pci}] by index.
function vfsOf(root, nic) {
  const dev = path.join(root, 'sys', 'class', 'net', nic, 'device');
  return fs.readdirSync(dev).filter((f) => /^virtfn\d+$/.test(f))
    .map((f) => ({ index: Number(f.slice(6)), pci: path.basename(fs.readlinkSync(path.join(dev, f))) }))
    .sort((a, b) => a.index - b.index);
}

function pciOf(root, nic) {
  return path.basename(fs.readlinkSync(path.join(root, 'sys', 'class', 'net', nic, 'device')));
}

/*
 * bic-agent --fleet 1 on libvirt's test driver, enrolled with token, reading its host below
 * root: {proc, log(), stop()}. The fleet member's hostname is <hostname>-0.
 */
function startAgent(token, root, hostname) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bt-sriov-agent-'));
  const logPath = path.join(dir, 'agent.log');
  const out = fs.openSync(logPath, 'a');
  const proc = spawn(AGENT, ['--fleet', '1', '--desktops', '0', 'run'], {
    env: {
      ...process.env,
      BIC_AGENT_CCC_URL: S.base,
      BIC_AGENT_CA_FILE: path.join(S.var, 'tls', 'cert.pem'),
      BIC_AGENT_TOKEN: token,
      BIC_AGENT_STATE_DIR: path.join(dir, 'state'),
      BIC_AGENT_LISTEN: '127.0.0.1:0',
      BIC_AGENT_MACHINE_ID: unique('bt-machine-'),
      BIC_AGENT_HOSTNAME: hostname,
      BIC_AGENT_ROOT_PREFIX: root,
      ASAN_OPTIONS: 'detect_leaks=0:log_path=' + path.join(dir, 'asan'),
    },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  return {
    proc,
    log: () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8').slice(-3000) : ''),
    async stop() {
      if (proc.exitCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 10000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The one server of module, online and with its NICs reported.
async function serverOf(module, agent) {
  return until(async () => {
    const s = (await api.get(`/servers?module=${module.id}`)).items;
    if (s.length !== 1 || s[0].state !== 'online') return null;
    const full = await api.get('/servers/' + s[0].id);
    return (full.nics || []).length ? full : null;
  }, 30000, 'the agent online with its NICs').catch((e) => {
    throw new Error(e.message + '\n' + agent.log());
  });
}

// A published image (a bare qcow2 header: nothing boots it on the test driver).
async function publishedImage() {
  const image = await api.post('/images', { name: unique('bt-img-'), os_type: 'linux' });
  const store = path.join(S.var, 'images');
  fs.mkdirSync(store, { recursive: true });
  const bytes = Buffer.alloc(512);
  bytes.write('QFI\xfb', 0, 'latin1');
  bytes.writeUInt32BE(3, 4);
  bytes.writeUInt32BE(16, 20);
  bytes.writeBigUInt64BE(1n << 20n, 24);
  const file = unique('bt-sriov-') + '.qcow2';
  fs.writeFileSync(path.join(store, file), bytes);
  const version = await api.post(`/images/${image.id}/versions`, { path: file });
  await api.post(`/image-versions/${version.id}/publish`);
  return image;
}

function spec(nicType) {
  return api.post('/specs', { name: unique('bt-spec-'), vcpus: 1, memory_mib: 512, disk_gib: 1, nic_type: nicType });
}

// The NIC rows' data attributes and texts, by NIC name.
async function nicRows(page) {
  return page.$$eval('[data-card=nics] li.nic', (lis) => Object.fromEntries(lis.map((li) => [li.dataset.nic, {
    link: li.dataset.link, enabled: li.dataset.vfsEnabled, held: li.dataset.vfsHeld, free: li.dataset.vfsFree, cap: li.dataset.desktopCap,
    text: li.textContent, down: li.classList.contains('is-down'),
  }])));
}

async function vfRows(page) {
  return page.$$eval('[data-table=vfs] tbody tr', (trs) => trs.map((tr) => ({
    vf: tr.dataset.vf, pci: tr.dataset.pci, state: tr.dataset.state, desktop: tr.dataset.desktopId || null,
    cells: Array.from(tr.querySelectorAll('td .cell-value')).map((c) => c.textContent.trim()),
  })));
}

test('server page: NICs with their link and SR-IOV counts, a link down as a warning, every VF and the desktop that holds it', { skip: NO_AGENT }, async () => {
  const { module, token } = await makeHierarchy(api, { maxServers: 2 });
  const agent = startAgent(token.token, X710, unique('bt-x710-'));
  let b = null;
  try {
    const server = await serverOf(module, agent);
    const f0 = vfsOf(X710, 'ens1f0');
    const f1 = vfsOf(X710, 'ens1f1');
    assert.equal(f0.length, 8, 'the fixture: 8 VFs on ens1f0');
    assert.equal(f1.length, 2, 'the fixture: 2 VFs on ens1f1');

    b = await adminSession('#/servers/' + server.id);
    const { page } = b;
    await page.waitForSelector('[data-card=nics] li.nic[data-nic=ens1f1]');
    let nics = await nicRows(page);
    // ens1f0: 10 Gb/s, link up, 8 of 64 VFs enabled, all free; 10 Gbps x 50 = 500 desktops
    assert.equal(nics.ens1f0.link, 'up');
    assert.equal(nics.ens1f0.down, false);
    assert.match(nics.ens1f0.text, /Link up/);
    assert.match(nics.ens1f0.text, /10 Gbps · i40e/);
    assert.match(nics.ens1f0.text, new RegExp(pciOf(X710, 'ens1f0').replace(/\./g, '\\.')));
    assert.match(nics.ens1f0.text, /8 of 64 VFs enabled/);
    assert.deepEqual([nics.ens1f0.enabled, nics.ens1f0.held, nics.ens1f0.free], ['8', '0', '8']);
    assert.equal(nics.ens1f0.cap, '500');
    assert.match(nics.ens1f0.text, /Carries up to 500 desktops/);
    // ens1f1: no carrier, shown as a warning on the row and in the card's head
    assert.equal(nics.ens1f1.link, 'down');
    assert.equal(nics.ens1f1.down, true);
    assert.match(nics.ens1f1.text, /Link down/);
    assert.match(nics.ens1f1.text, /2 of 64 VFs enabled/);
    assert.match(await page.textContent('[data-nic=ens1f1] [data-role=link-warning]'), /desktops on this port’s VFs have no network/);
    assert.equal(await page.locator('[data-nic=ens1f1] .nic-name').evaluate((e) => getComputedStyle(e).color), RED);
    assert.equal(await page.locator('[data-nic=ens1f0] .nic-name').evaluate((e) => getComputedStyle(e).color) === RED, false);
    assert.match(await page.textContent('[data-card=nics] [data-role=nic-warning]'), /ens1f1: link down/);
    // the on-board port has no SR-IOV
    assert.equal(await page.getAttribute('[data-nic=eno1] [data-sriov]', 'data-sriov'), 'no');
    assert.equal(await page.locator('[data-nic=eno1] [data-role=vf-counts]').count(), 0);
    assert.equal(await page.locator('[data-nic=ens1f0v0]').count(), 0, 'a VF is not listed as a NIC');

    // the VF table: all 10, in NIC and index order, with the addresses the kernel gives them
    const card = page.locator('[data-card=vfs]');
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr').length === 10);
    assert.equal(await card.locator('[data-role=vf-count]').textContent(), '10');
    let rows = await vfRows(page);
    assert.deepEqual(rows.map((r) => [r.vf, r.pci, r.state]), [
      ...f0.map((v) => [`ens1f0/${v.index}`, v.pci, 'free']),
      ...f1.map((v) => [`ens1f1/${v.index}`, v.pci, 'free']),
    ]);
    assert.deepEqual(rows[3].cells.slice(0, 3), ['ens1f0', '3', f0[3].pci]);
    assert.equal(rows[3].cells[6], 'Free');
    assert.match(await card.locator('[data-role=vf-summary]').textContent(), /10 free.*0 held.*0 missing/);
    // filter by NIC (from the NIC row's button), then by state
    await page.click('[data-nic=ens1f1] [data-action=show-vfs]');
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr').length === 2);
    assert.equal(await card.locator('select[name=vf-nic]').inputValue(), 'ens1f1');
    assert.equal(await card.locator('[data-role=vf-count]').textContent(), '2');
    assert.match(page.url(), /nic=ens1f1/);
    await card.locator('select[name=vf-state]').selectOption('held');
    await card.locator('.table-status:not([hidden])').waitFor();
    assert.match(await card.locator('.table-status').textContent(), /No VFs match these filters/);
    await card.locator('select[name=vf-state]').selectOption('');
    await card.locator('select[name=vf-nic]').selectOption('');
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr').length === 10);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.locator('[data-card=nics]').scrollIntoViewIfNeeded();
    await screenshot(page, 'sriov-server-nics');

    // an SR-IOV pool on this module: its desktops take VFs of the port with a link
    const image = await publishedImage();
    const sriov = await spec('sriov');
    const pool = await api.post('/pools', {
      name: unique('bt-sriov-pool-'), type: 'floating', image_id: image.id, spec_id: sriov.id, min_size: 2, max_size: 2,
      name_pattern: unique('bv') + '-{n}', modules: [module.id], vlan: 100,
    });
    const held = await until(async () => {
      const v = (await api.get(`/servers/${server.id}/vfs`)).items.filter((x) => x.desktop);
      return v.length === 2 ? v : null;
    }, 30000, 'two VFs held by the pool\'s desktops').catch(async (e) => {
      throw new Error(e.message + ': ' + JSON.stringify((await api.get(`/pools/${pool.id}/desktops`)).items) + '\n' + agent.log());
    });
    for (const v of held) {
      assert.equal(v.nic, 'ens1f0', 'a VF of the port whose link is up');
      assert.equal(v.desktop.pool_id, pool.id);
      assert.equal(v.vlan, 100);
    }
    // the page refreshes on its own (every 10 s)
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr[data-state=held]').length === 2, null, { timeout: 20000 });
    rows = await vfRows(page);
    for (const v of held) {
      const r = rows.find((x) => x.vf === `ens1f0/${v.index}`);
      assert.equal(r.state, 'held');
      assert.equal(r.desktop, String(v.desktop.id));
      assert.equal(r.cells[4], v.mac, 'the MAC of the desktop on the VF');
      assert.equal(r.cells[5], '100');
      const link = page.locator(`[data-table=vfs] tr[data-vf="ens1f0/${v.index}"] a[data-role=holder]`);
      assert.equal(await link.textContent(), v.desktop.name);
      assert.equal(await link.getAttribute('href'), `#/pools/${pool.id}?desktop=${v.desktop.id}`);
    }
    assert.match(await card.locator('[data-role=vf-summary]').textContent(), /8 free.*2 held.*0 missing/);
    nics = await nicRows(page);
    assert.deepEqual([nics.ens1f0.held, nics.ens1f0.free], ['2', '6']);
    assert.match(nics.ens1f0.text, /2 held.*6 free/);
    // the server's desktop list says which VF each desktop holds
    const first = held[0];
    await page.waitForSelector(`[data-table=desktops] tr[data-desktop="${first.desktop.name}"] [data-role=desktop-vf]`);
    assert.match(await page.textContent(`[data-table=desktops] tr[data-desktop="${first.desktop.name}"] [data-role=desktop-vf]`), new RegExp(`ens1f0 · VF ${first.index}`));
    // only the held ones
    await card.locator('[data-count=held]').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr').length === 2);
    await card.scrollIntoViewIfNeeded();
    await screenshot(page, 'sriov-vfs-held');
    await card.locator('[data-count=held]').click();

    // the holder link opens the desktop on its pool's page, with its NIC
    await page.click(`[data-table=vfs] tr[data-vf="ens1f0/${first.index}"] a[data-role=holder]`);
    const desk = page.locator(`[data-page=pools-detail] [data-card=desktop][data-desktop-id="${first.desktop.id}"]`);
    await desk.waitFor();
    assert.match(await desk.locator('.card-title').textContent(), new RegExp(first.desktop.name));
    assert.equal(await desk.locator('[data-role=desk-nic] [data-nic-type]').getAttribute('data-nic-type'), 'sriov');
    assert.match(await desk.locator('[data-role=desk-vf]').textContent(), new RegExp(`ens1f0 · VF ${first.index}`));
    assert.match(await desk.locator('[data-role=desk-vf-pci]').textContent(), new RegExp(first.pci.replace(/\./g, '\\.')));
    assert.match(await desk.locator('[data-role=desk-mac]').textContent(), new RegExp(first.mac));
    assert.match(await desk.locator('[data-role=desk-vlan]').textContent(), /100/);
    // ... and in the pool's desktop list, marked, with its NIC
    const drow = page.locator(`[data-table=pool-desktops] tr[data-desktop-id="${first.desktop.id}"]`);
    await drow.waitFor();
    assert.ok(await drow.evaluate((tr) => tr.classList.contains('is-selected')));
    const nicCell = drow.locator('[data-role=desktop-nic]');
    assert.equal(await nicCell.getAttribute('data-nic-type'), 'sriov');
    assert.match(await nicCell.textContent(), new RegExp(`SR-IOV VF.*ens1f0 · VF ${first.index}.*${first.mac}.*VLAN 100`));
    assert.equal(await drow.locator('[data-role=nic-note]').count(), 0, 'no note: it has the VF the spec asks for');
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'sriov-pool-desktop');
    // closing the details
    await desk.locator('[data-action=close-desktop]').click();
    await desk.waitFor({ state: 'hidden' });
    assert.doesNotMatch(page.url(), /desktop=/);

    // a pool that wants more VFs than are free, with the virtio fallback: six desktops take
    // the last VFs of ens1f0 (ens1f1 has no link), the seventh gets virtio and a note
    const fb = await api.post('/pools', {
      name: unique('bt-fallback-pool-'), type: 'floating', image_id: image.id, spec_id: sriov.id, min_size: 7, max_size: 7,
      name_pattern: unique('bf') + '-{n}', modules: [module.id], nic_fallback: true,
    });
    const fbDesks = await until(async () => {
      const d = (await api.get(`/pools/${fb.id}/desktops`)).items;
      return d.length === 7 && d.every((x) => x.nic && (x.nic.vf || x.nic.note)) ? d : null;
    }, 30000, 'seven desktops, on VFs or with a note').catch(async (e) => {
      throw new Error(e.message + ': ' + JSON.stringify((await api.get(`/pools/${fb.id}/desktops`)).items.map((x) => x.nic)) + '\n' + agent.log());
    });
    const virt = fbDesks.filter((x) => x.nic.type === 'virtio');
    assert.equal(virt.length, 1, 'one desktop without a VF');
    assert.ok(virt[0].nic.note, 'the fallback says why');
    await page.goto(S.base + '/admin/#/pools/' + fb.id);
    const vrow = page.locator(`[data-table=pool-desktops] tr[data-desktop-id="${virt[0].id}"]`);
    await vrow.waitFor();
    assert.equal(await vrow.locator('[data-role=desktop-nic]').getAttribute('data-nic-type'), 'virtio');
    assert.equal(await vrow.locator('[data-role=nic-note]').textContent(), virt[0].nic.note);
    const onVf = fbDesks.find((x) => x.nic.type === 'sriov');
    assert.equal(await page.locator(`[data-table=pool-desktops] tr[data-desktop-id="${onVf.id}"] [data-role=nic-note]`).count(), 0);
    await vrow.scrollIntoViewIfNeeded();
    await screenshot(page, 'sriov-pool-fallback');
    // its details say the same
    await vrow.locator('[data-action=open-desktop]').click();
    await page.locator(`[data-card=desktop][data-desktop-id="${virt[0].id}"] [data-role=desk-note]`).waitFor();
    assert.match(await page.textContent('[data-card=desktop] [data-role=desk-note]'), new RegExp(virt[0].nic.note.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.match(page.url(), new RegExp(`desktop=${virt[0].id}`));
    // the server: no VF of ens1f0 is free any more, and the NIC says so
    await page.goto(S.base + '/admin/#/servers/' + server.id);
    await page.waitForFunction(() => document.querySelector('[data-nic=ens1f0]')?.dataset.vfsFree === '0', null, { timeout: 20000 });
    assert.equal(await page.getAttribute('[data-nic=ens1f0]', 'data-vfs-held'), '8');
    assert.ok(await page.locator('[data-nic=ens1f0] .nic-vf-free').evaluate((e) => e.classList.contains('is-none')));
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr[data-state=held]').length === 8);
    assert.match(await page.textContent('[data-card=vfs] [data-role=vf-summary]'), /2 free.*8 held/);
    assert.deepEqual(b.errors, []);
  } finally {
    if (b) await b.close();
    await agent.stop();
  }
});

test('pool forms: the VLAN is checked by the page and by the server, the virtio fallback follows the spec, both round-trip', async () => {
  const image = await publishedImage();
  const virtio = await spec('virtio');
  const sriov = await spec('sriov');
  const bb = await api.post('/building-blocks', { name: unique('bt-bb-'), description: '' });
  const mod = await api.post(`/building-blocks/${bb.id}/modules`, { name: unique('bt-mod-'), description: '', max_servers: 2 });
  const b = await adminSession('#/pools');
  try {
    const { page } = b;
    const name = unique('bt-vlan-pool-');
    await page.click('[data-action=new-pool]');
    const dlg = page.locator('dialog[data-dialog=create-pool]');
    await dlg.waitFor();
    await dlg.locator('input[name=name]').fill(name);
    await dlg.locator(`select[name=image_id] option[value="${image.id}"]`).waitFor({ state: 'attached' });
    await dlg.locator('select[name=image_id]').selectOption(String(image.id));
    await dlg.locator(`select[name=spec_id] option[value="${virtio.id}"]`).waitFor({ state: 'attached' });
    const hint = dlg.locator('[data-role=fallback-hint]');
    assert.match(await hint.textContent(), /Only matters when the spec has an SR-IOV NIC/);
    await dlg.locator('select[name=spec_id]').selectOption(String(virtio.id));
    assert.match(await hint.textContent(), /This spec uses virtio, so this has no effect/);
    await dlg.locator('select[name=spec_id]').selectOption(String(sriov.id));
    assert.match(await hint.textContent(), /virtio NIC on the agent’s bridge instead of waiting for a VF/);
    await dlg.locator(`.module-option[data-module="${mod.name}"] input`).check();

    // out of range, not a number, zero: refused next to the field, nothing sent
    const vlan = dlg.locator('input[name=vlan]');
    const vlanErr = dlg.locator('[data-error-for=vlan]');
    let posts = 0;
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith('/api/v1/pools')) posts++;
    });
    for (const bad of ['4095', 'ten', '0', '-5', '12.5']) {
      await vlan.fill(bad);
      await dlg.locator('button[type=submit]').click();
      await vlanErr.waitFor();
      assert.equal(await vlanErr.textContent(), 'The VLAN must be a whole number from 1 to 4094, or empty for none.', bad);
      assert.equal(await vlan.getAttribute('aria-invalid'), 'true');
      assert.match(await dlg.locator('.alert').textContent(), /from 1 to 4094/);
    }
    assert.equal(posts, 0, 'nothing was sent');
    await screenshot(page, 'sriov-pool-vlan-error');
    await vlan.fill('4094');
    assert.ok(await vlanErr.isHidden(), 'typing clears the error');
    await vlan.fill(' 100 ');
    await dlg.locator('input[name=nic_fallback]').check();
    const creating = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/v1/pools'));
    await dlg.locator('button[type=submit]').click();
    const sent = JSON.parse((await creating).postData());
    assert.equal(sent.vlan, 100);
    assert.equal(sent.nic_fallback, true);
    await dlg.waitFor({ state: 'detached' });
    const made = (await api.get('/pools?q=' + encodeURIComponent(name))).items.find((p) => p.name === name);
    assert.ok(made, 'the pool exists');
    const pool = await api.get('/pools/' + made.id);
    assert.equal(pool.vlan, 100);
    assert.equal(pool.nic_fallback, true);

    // the server refuses what the page would: 4095 and 0 are not VLANs
    await assert.rejects(api.patch('/pools/' + pool.id, { vlan: 4095 }), /422/);
    await assert.rejects(api.patch('/pools/' + pool.id, { vlan: 0 }), /422/);
    await assert.rejects(api.post('/pools', {
      name: unique('bt-vlan-bad-'), type: 'floating', image_id: image.id, spec_id: sriov.id, min_size: 0, max_size: 1,
      name_pattern: unique('bx') + '-{n}', modules: [mod.id], vlan: 5000,
    }), /422/);

    // the pool's page shows them
    await page.goto(S.base + '/admin/#/pools/' + pool.id);
    const settings = page.locator('[data-card=settings]');
    await settings.locator('[data-role=pool-vlan]').waitFor();
    assert.match(await settings.locator('[data-role=pool-vlan] dd').textContent(), /^100$/);
    assert.match(await settings.locator('[data-role=pool-fallback] dd').textContent(), /Fall back to virtio/);
    assert.match(await settings.locator('[data-role=pool-nic] dd').textContent(), /SR-IOV/);
    await settings.scrollIntoViewIfNeeded();
    await screenshot(page, 'sriov-pool-settings');

    // edit: the form starts from the saved values; only what changed is sent
    await page.click('[data-action=edit-pool]');
    const edit = page.locator('dialog[data-dialog=edit-pool]');
    await edit.waitFor();
    assert.equal(await edit.locator('input[name=vlan]').inputValue(), '100');
    assert.ok(await edit.locator('input[name=nic_fallback]').isChecked());
    assert.match(await edit.locator('[data-role=fallback-hint]').textContent(), /instead of waiting for a VF/);
    await edit.locator('input[name=vlan]').fill('99999');
    await edit.locator('button[type=submit]').click();
    await edit.locator('[data-error-for=vlan]').waitFor();
    assert.match(await edit.locator('[data-error-for=vlan]').textContent(), /from 1 to 4094/);
    await edit.locator('input[name=vlan]').fill('');
    await edit.locator('input[name=nic_fallback]').uncheck();
    const saving = page.waitForRequest((r) => r.method() === 'PATCH' && r.url().endsWith('/api/v1/pools/' + pool.id));
    await edit.locator('button[type=submit]').click();
    const patch = JSON.parse((await saving).postData());
    assert.equal(patch.vlan, null, 'empty: no VLAN');
    assert.equal(patch.nic_fallback, false);
    await edit.waitFor({ state: 'detached' });
    const after = await api.get('/pools/' + pool.id);
    assert.equal(after.vlan, null);
    assert.equal(after.nic_fallback, false);
    await page.waitForFunction(() => /None/.test(document.querySelector('[data-card=settings] [data-role=pool-vlan] dd')?.textContent || ''));
    assert.match(await settings.locator('[data-role=pool-fallback] dd').textContent(), /Wait for a VF/);

    // a virtio pool: the fallback is said not to apply
    const vp = await api.post('/pools', {
      name: unique('bt-virtio-pool-'), type: 'floating', image_id: image.id, spec_id: virtio.id, min_size: 0, max_size: 1,
      name_pattern: unique('bw') + '-{n}', modules: [mod.id], vlan: 42,
    });
    await page.goto(S.base + '/admin/#/pools/' + vp.id);
    await settings.locator('[data-role=pool-vlan]').waitFor();
    assert.match(await settings.locator('[data-role=pool-vlan] dd').textContent(), /^42$/);
    assert.match(await settings.locator('[data-role=pool-fallback] dd').textContent(), /Not used \(virtio spec\)/);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('128 VFs a port: counts in the head, filters and search, the table scrolls inside its card; Korean and a phone', { skip: NO_AGENT }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bt-sriov-tree-'));
  execFileSync('python3', [TREE, root, '--pf', 'ens2f0:128:25000:up:ice', '--pf', 'ens2f1:128:25000:up:ice'], { stdio: 'ignore' });
  const { module, token } = await makeHierarchy(api, { maxServers: 2 });
  const agent = startAgent(token.token, root, unique('bt-e810-'));
  let b = null;
  try {
    const server = await serverOf(module, agent);
    const f1 = vfsOf(root, 'ens2f1');
    assert.equal(f1.length, 128);
    b = await adminSession('#/servers/' + server.id);
    let { page } = b;
    const card = page.locator('[data-card=vfs]');
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr').length === 256, null, { timeout: 20000 });
    assert.equal(await card.locator('[data-role=vf-count]').textContent(), '256');
    assert.match(await card.locator('[data-role=vf-summary]').textContent(), /256 free.*0 held.*0 missing/);
    const nics = await nicRows(page);
    assert.match(nics.ens2f0.text, /128 of 128 VFs enabled/);
    assert.equal(nics.ens2f0.cap, '1250', '25 Gbps x 50');
    // 256 rows stay inside the card: the table scrolls, its head stays in view
    const wrap = card.locator('.table-wrap');
    const box = await wrap.evaluate((w) => ({ client: w.clientHeight, scroll: w.scrollHeight }));
    assert.ok(box.client <= 560 && box.scroll > box.client * 5, JSON.stringify(box));
    await wrap.evaluate((w) => {
      w.scrollTop = w.scrollHeight;
    });
    const headTop = await card.locator('thead th').first().evaluate((th) => th.getBoundingClientRect().top);
    const wrapTop = await wrap.evaluate((w) => w.getBoundingClientRect().top);
    assert.ok(Math.abs(headTop - wrapTop) < 2, `the head sticks (${headTop} vs ${wrapTop})`);
    const rowH = await page.locator('[data-table=vfs] tbody tr').first().evaluate((tr) => tr.getBoundingClientRect().height);
    assert.ok(rowH <= 36, 'compact rows: ' + rowH);
    // one NIC, then one VF by its PCI address
    await card.locator('select[name=vf-nic]').selectOption('ens2f1');
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr').length === 128);
    assert.equal(await card.locator('[data-role=vf-count]').textContent(), '128');
    assert.match(await card.locator('[data-role=vf-summary]').textContent(), /ens2f1.*128 free/);
    await card.locator('input[name=vf-search]').fill(f1[127].pci);
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr').length === 1);
    assert.equal((await vfRows(page))[0].vf, 'ens2f1/127');
    await card.locator('input[name=vf-search]').fill('');
    await card.scrollIntoViewIfNeeded();
    await screenshot(page, 'sriov-vfs-256');

    // Korean
    await page.click('.lang-btn[data-lang=ko]');
    assert.match(await card.locator('.card-title').textContent(), /가상 함수\(VF\)/);
    assert.match(await card.locator('[data-role=vf-summary]').textContent(), /사용 가능 128/);
    assert.match(await page.textContent('[data-nic=ens2f0] [data-role=link]'), /링크 연결됨/);
    assert.match(await page.textContent('[data-nic=ens2f0] [data-role=vf-counts]'), /VF 128개 중 128개 사용 설정/);
    assert.equal(await card.locator('thead th.col-vf-state').textContent(), '상태');
    await screenshot(page, 'sriov-vfs-ko');
    assert.deepEqual(b.errors, []);
    await b.close();

    // a phone: nothing scrolls sideways, a VF is one short card
    b = await adminSession('#/servers/' + server.id + '?nic=ens2f0', { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
    page = b.page;
    await page.waitForFunction(() => document.querySelectorAll('[data-table=vfs] tbody tr').length === 128, null, { timeout: 20000 });
    assert.equal(await page.locator('[data-card=vfs] select[name=vf-nic]').inputValue(), 'ens2f0', 'the NIC filter comes from the address');
    assert.equal(await horizontalOverflow(page), 0, 'the server page fits 390 px');
    const phoneRow = await page.locator('[data-table=vfs] tbody tr').first().evaluate((tr) => tr.getBoundingClientRect().height);
    assert.ok(phoneRow <= 80, 'a VF takes little room on a phone: ' + phoneRow);
    await page.locator('[data-card=vfs]').scrollIntoViewIfNeeded();
    await screenshot(page, 'sriov-vfs-phone');
    assert.deepEqual(b.errors, []);
  } finally {
    if (b) await b.close();
    await agent.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
