// The console end to end on a real desktop: a real bic-agent on qemu:///system provisions a
// one-desktop pool from a bootable golden image; a user signs in, connects, and noVNC shows
// the QEMU screen (its canvas holds non-black pixels, read in the page). At 1280×800 and on a
// 390×844 phone; the console reports activity, Ctrl+Alt+Shift reaches the toolbar, a cut
// connection comes back by itself, and Log off ends the session.
//
// Needs libvirtd and QEMU: when qemu:///system cannot be reached (or started) here, every
// test is skipped with the reason. Desktops are TCG guests (domain_type=qemu) unless
// BIC_TEST_DOMAIN_TYPE says otherwise: KVM guests hang on this project's CI machines.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stack, openBrowser, screenshot, adminApi, createUser, signIn, unique, horizontalOverflow } from './lib.mjs';
import { makeHierarchy, until } from './agent.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const S = stack();

// ---- the host: libvirtd, bic-agent ------------------------------------------------------------

function py(code) {
  const r = spawnSync('python3', ['-c', `import sys, json; sys.path.insert(0, ${JSON.stringify(path.join(REPO, 'tests', 'lib'))}); import bictest\n${code}`],
    { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error('python: ' + (r.stderr || r.stdout));
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function virsh(...args) {
  return spawnSync('virsh', ['-c', 'qemu:///system', ...args], { encoding: 'utf8', timeout: 60000 });
}

// {why} when this host cannot run a real desktop (libvirtd is started if it can be), else
// {agent}: the bic-agent binary (not built is a failure of the run, not a reason to skip).
function hostProblem() {
  const agent = [path.join(REPO, 'build', 'test', 'bic-agent'), path.join(REPO, 'build', 'bic-agent')].find((p) => fs.existsSync(p));
  const [ok, , why] = py('print(json.dumps(bictest.ensure_libvirtd()))');
  if (!ok) return { why: 'qemu:///system is not available: ' + why };
  return { agent };
}

const host = hostProblem();
if (host.why) console.log('# console tests skipped: ' + host.why);

class Agent {
  constructor(token, poolName, poolDir) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bic-console-agent-'));
    this.log = path.join(this.dir, 'agent.log');
    const out = fs.openSync(this.log, 'a');
    this.proc = spawn(host.agent, ['run'], {
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        BIC_AGENT_CCC_URL: S.base,
        BIC_AGENT_CA_FILE: path.join(S.var, 'tls', 'cert.pem'),
        BIC_AGENT_TOKEN: token,
        BIC_AGENT_STATE_DIR: path.join(this.dir, 'state'),
        BIC_AGENT_LISTEN: '127.0.0.1:0',
        BIC_AGENT_LIBVIRT_URI: 'qemu:///system',
        BIC_AGENT_MACHINE_ID: unique('bc-machine-'),
        BIC_AGENT_HOSTNAME: unique('bc-'),
        BIC_AGENT_STORAGE_POOL: poolName,
        BIC_AGENT_IMAGE_DIR: poolDir,
        BIC_AGENT_DOMAIN_TYPE: process.env.BIC_TEST_DOMAIN_TYPE || 'qemu',
        ASAN_OPTIONS: 'detect_leaks=1:log_path=' + path.join(this.dir, 'asan'),
      },
    });
    fs.closeSync(out);
  }

  text() {
    try {
      return fs.readFileSync(this.log, 'utf8');
    } catch (e) {
      return '';
    }
  }

  async stop() {
    if (this.proc.exitCode === null) {
      const done = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 30000);
      await done;
      clearTimeout(t);
    }
    const reports = fs.readdirSync(this.dir).filter((n) => n.startsWith('asan')).map((n) => fs.readFileSync(path.join(this.dir, n), 'utf8').slice(0, 3000));
    return reports;
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- what the tests share: one pool with one running desktop, one user -------------------------

let api;
let env; // {agent, pool, prefix, poolName, poolDir, user}

async function publishedImage() {
  const store = path.join(S.var, 'images');
  fs.mkdirSync(store, { recursive: true });
  const file = unique('bc-golden-') + '.qcow2';
  const sha = py(`print(json.dumps(bictest.make_golden_qcow2(${JSON.stringify(path.join(store, file))})))`);
  const img = await api.post('/images', { name: unique('bc-img-') });
  const v = await api.post(`/images/${img.id}/versions`, { path: file });
  assert.equal(v.sha256, sha);
  await api.post(`/image-versions/${v.id}/publish`);
  return img.id;
}

async function setUp() {
  assert.ok(host.agent, 'bic-agent is not built (make test-build)');
  api = await adminApi();
  const { module, token } = await makeHierarchy(api);
  const poolName = unique('bicconsole').replace(/_/g, '-');
  const poolDir = path.join('/var/lib/bic', poolName);
  const prefix = 'bc-' + poolName.slice(-6) + '-';
  const agent = new Agent(token.token, poolName, poolDir);
  env = { agent, poolName, poolDir, prefix };
  const imageId = await publishedImage();
  const spec = await api.post('/specs', { name: unique('bc-spec-'), vcpus: 1, memory_mib: 256, disk_gib: 1, nic_type: 'virtio' });
  const pool = await api.post('/pools', {
    name: unique('Console pool '), description: 'A real QEMU desktop', type: 'floating', image_id: imageId, spec_id: spec.id,
    min_size: 1, max_size: 1, name_pattern: prefix + '{n:2}', modules: [module.id],
  });
  env.pool = pool;
  await api.patch(`/pools/${pool.id}/policy`, { clipboard: 'both', view_only: false, user_power: true, refresh_on_logoff: true });
  const user = await createUser(api, { prefix: 'bc-user-', display_name: 'Park Jiwoo' });
  await api.put(`/pools/${pool.id}/entitlements/users/${user.id}`);
  env.user = user;
  await until(async () => (await api.get(`/pools/${pool.id}`)).counts.ready === 1, 180000,
    'the pool\'s desktop to be ready\n' + agent.text().slice(-3000));
}

async function tearDown() {
  if (!env) return;
  if (env.pool) {
    await api.del(`/pools/${env.pool.id}`).catch(() => {});
    await until(async () => {
      try {
        await api.get(`/pools/${env.pool.id}`);
        return false;
      } catch (e) {
        return /: 404 /.test(e.message);
      }
    }, 90000, 'the pool to be deleted').catch((e) => console.log('# ' + e.message));
  }
  const reports = env.agent ? await env.agent.stop() : [];
  // leave nothing behind, even when a test failed
  for (const name of virsh('list', '--all', '--name').stdout.split('\n').map((s) => s.trim())) {
    if (name && name.startsWith(env.prefix)) {
      virsh('destroy', name);
      virsh('undefine', name);
    }
  }
  virsh('pool-destroy', env.poolName);
  virsh('pool-undefine', env.poolName);
  fs.rmSync(env.poolDir, { recursive: true, force: true });
  if (env.agent) env.agent.cleanup();
  if (api) await api.dispose();
  assert.deepEqual(reports, [], 'sanitizer reports from bic-agent');
}

test.before(async () => {
  if (!host.why) await setUp();
}, { timeout: 300000 });
test.after(async () => {
  await tearDown();
}, { timeout: 180000 });

// ---- helpers ----------------------------------------------------------------------------------

// Non-black pixels of the console's canvas, read in the page: {width, height, lit}.
function canvasPixels(page) {
  return page.evaluate(() => {
    const c = document.querySelector('[data-view=console] [data-role=console-screen] canvas');
    if (!c || !c.width || !c.height) return { width: 0, height: 0, lit: 0 };
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 96) lit += 1;
    return { width: c.width, height: c.height, lit };
  });
}

async function screenShows(page, what) {
  let last = null;
  await until(async () => {
    last = await canvasPixels(page);
    return last.lit > 500;
  }, 90000, what + ' (last canvas: ' + JSON.stringify(last) + ')').catch((e) => {
    throw new Error(e.message + ' ' + JSON.stringify(last) + '\n' + env.agent.text().slice(-2000));
  });
  return last;
}

async function signedIn(opts) {
  const b = await openBrowser(opts);
  await b.page.goto(S.base + '/');
  await signIn(b.page, env.user.username, env.user.password);
  await b.page.waitForSelector(`[data-role=desktops] [data-pool-id="${env.pool.id}"]`);
  return b;
}

// ---- the tests --------------------------------------------------------------------------------

test('console at 1280×800: connect shows the real desktop, reports activity, closes cleanly', { timeout: 240000 }, async (t) => {
  if (host.why) return t.skip(host.why);
  const b = await signedIn();
  try {
    const { page } = b;
    const card = page.locator(`[data-pool-id="${env.pool.id}"]`);
    assert.equal(await card.locator('.desk-card-name').textContent(), env.pool.name);
    assert.equal(await card.getAttribute('data-session-state'), 'none');
    await screenshot(page, 'console-list-before');
    const activity = page.waitForRequest((r) => /\/api\/v1\/sessions\/\d+\/activity$/.test(r.url()) && r.method() === 'POST', { timeout: 90000 });
    await card.locator('[data-action=connect]').click();
    await page.waitForSelector('[data-view=console]');
    assert.equal(await page.evaluate(() => location.hash), '#/console/' + env.pool.id);
    await page.waitForSelector('[data-view=console][data-state=connected]', { timeout: 90000 });
    const px = await screenShows(page, 'the QEMU screen in the canvas');
    assert.ok(px.width >= 640 && px.height >= 400, 'a VGA-sized framebuffer: ' + JSON.stringify(px));
    // the console reported itself right after connecting, with a whole number of idle seconds
    const req = await activity;
    const body = JSON.parse(req.postData());
    assert.ok(Number.isInteger(body.idle_s) && body.idle_s >= 0, req.postData());
    assert.equal((await req.response()).status(), 204);
    // scaled into the window below the toolbar, no scroll bars
    const box = await page.locator('[data-role=console-screen] canvas').boundingBox();
    const bar = await page.locator('[data-role=console-toolbar]').boundingBox();
    assert.ok(box.y >= bar.y + bar.height - 1 && box.y + box.height <= 800 + 1 && box.width <= 1280 + 1, JSON.stringify({ box, bar }));
    assert.ok(box.height > 600 || box.width > 1200, 'the screen is scaled up to the window: ' + JSON.stringify(box));
    assert.equal(await horizontalOverflow(page), 0);
    assert.equal(await page.textContent('[data-role=console-toolbar] .console-name'), (await api.get(`/pools/${env.pool.id}/desktops`)).items[0].name);
    await screenshot(page, 'console-desktop-1280');
    // a reload of #/console/<pool> opens the console again (a new ticket for the same session)
    await page.reload();
    await page.waitForSelector('[data-view=console][data-state=connected]', { timeout: 60000 });
    await screenShows(page, 'the QEMU screen after a reload');
    // the keyboard belongs to the desktop; Ctrl+Alt+Shift brings the focus to the toolbar
    await page.keyboard.down('Control');
    await page.keyboard.down('Alt');
    await page.keyboard.down('Shift');
    await page.keyboard.up('Shift');
    await page.keyboard.up('Alt');
    await page.keyboard.up('Control');
    assert.equal(await page.evaluate(() => !!document.activeElement.closest('[data-role=console-toolbar]')), true, 'focus in the toolbar');
    // the session is connected, as the desktops page says after closing
    const sessions = await api.get(`/sessions?pool=${env.pool.id}`);
    assert.equal(sessions.items.length, 1);
    assert.equal(sessions.items[0].user.username, env.user.username);
    await until(async () => (await api.get(`/sessions/${sessions.items[0].id}`)).state === 'connected', 20000, 'the session to be connected');
    // Disconnect: back on the list, the session stays (disconnected), the hash is gone
    await page.click('[data-action=disconnect]');
    await page.waitForSelector('[data-view=console]', { state: 'detached' });
    assert.equal(await page.evaluate(() => location.hash), '');
    await until(async () => (await api.get(`/sessions/${sessions.items[0].id}`)).state === 'disconnected', 20000, 'the session to be disconnected');
    await page.click('[data-action=refresh]');
    await page.waitForSelector(`[data-pool-id="${env.pool.id}"][data-session-state=disconnected]`);
    assert.match(await card.locator('[data-action=connect]').textContent(), /Reconnect/);
    await screenshot(page, 'console-list-disconnected');
    // power: the pool lets users restart their desktop; confirmed, the task is queued
    await card.locator('[data-action=power-restart]').click();
    const dlg = page.locator('dialog[data-dialog=confirm]');
    await dlg.waitFor();
    assert.match(await dlg.locator('.dialog-title').textContent(), /^Restart bc-/);
    const power = page.waitForResponse((r) => /\/api\/v1\/desktops\/\d+\/power$/.test(r.url()));
    await dlg.locator('button[type=submit]').click();
    const pr = await power;
    assert.equal(pr.status(), 202);
    assert.deepEqual(JSON.parse(pr.request().postData()), { action: 'restart' });
    await page.waitForSelector('.toast >> text=/is restarting/');
    // without user_power the buttons are gone
    await api.patch(`/pools/${env.pool.id}/policy`, { user_power: false });
    await page.click('[data-action=refresh]');
    await until(async () => (await card.locator('[data-action^=power-]').count()) === 0, 15000, 'the power buttons to go');
    await api.patch(`/pools/${env.pool.id}/policy`, { user_power: true });
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('console on a 390×844 phone (Korean): the screen fits, a cut connection comes back by itself, log off ends the session', { timeout: 300000 }, async (t) => {
  if (host.why) return t.skip(host.why);
  const b = await signedIn({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2, locale: 'ko-KR' });
  try {
    const { page } = b;
    assert.equal(await horizontalOverflow(page), 0);
    await screenshot(page, 'console-phone-list-ko');
    await page.click(`[data-pool-id="${env.pool.id}"] [data-action=connect]`);
    await page.waitForSelector('[data-view=console][data-state=connected]', { timeout: 90000 });
    await screenShows(page, 'the QEMU screen on the phone');
    const box = await page.locator('[data-role=console-screen] canvas').boundingBox();
    assert.ok(box.x >= -1 && box.x + box.width <= 391 && box.width > 380, 'scaled to the phone\'s width: ' + JSON.stringify(box));
    assert.equal(await horizontalOverflow(page), 0);
    // icons only in the phone's toolbar, each still labelled
    for (const action of ['ctrl-alt-del', 'disconnect', 'logoff']) {
      const label = await page.getAttribute(`[data-role=console-toolbar] [data-action=${action}]`, 'aria-label');
      assert.ok(label && label.length > 1, action);
    }
    assert.equal(await page.getAttribute('[data-role=console-toolbar] [data-action=logoff]', 'aria-label'), '로그오프');
    await screenshot(page, 'console-phone-390');

    // an operator cuts the connection: the console says so and does not reconnect by itself;
    // the user connects again with the button and gets the same session
    const sid = (await api.get(`/sessions?pool=${env.pool.id}`)).items[0].id;
    await api.post(`/sessions/${sid}/disconnect`);
    await page.waitForSelector('[data-view=console][data-state=ended]', { timeout: 30000 });
    await screenshot(page, 'console-phone-admin-disconnected-ko');
    const reconnect = page.waitForResponse((r) => r.url().endsWith(`/api/v1/pools/${env.pool.id}/connect`) && r.status() === 200, { timeout: 60000 });
    await page.click('[data-view=console] [data-action=console-retry]');
    await reconnect;
    await page.waitForSelector('[data-view=console][data-state=connected]', { timeout: 60000 });
    await screenShows(page, 'the QEMU screen after reconnecting');
    assert.equal((await api.get(`/sessions?pool=${env.pool.id}`)).items[0].id, sid, 'the same session');

    // Log off from the console: confirmed, the session ends, the list says so
    await page.click('[data-role=console-toolbar] [data-action=logoff]');
    const dlg = page.locator('dialog[data-dialog=confirm]');
    await dlg.waitFor();
    await screenshot(page, 'console-phone-logoff-ko');
    await dlg.locator('button[type=submit]').click();
    await page.waitForSelector('[data-view=console]', { state: 'detached' });
    await until(async () => (await api.get(`/sessions/${sid}`)).state === 'logged_off', 20000, 'the session to be logged off');
    await page.waitForSelector(`[data-pool-id="${env.pool.id}"][data-session-state=none]`, { timeout: 20000 });
    assert.equal(await horizontalOverflow(page), 0);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
