// The admin portal's session pages against the real API: a pool's session policy edited in
// the pool page (field errors from the page and from the API, values that round-trip), and
// the Sessions page with a real session: a floating pool gets a ready desktop on a bic-agent
// fleet member (libvirt's test driver, no hypervisor needed), a user connects through the API,
// the session is listed and filtered, then disconnected and logged off from the page.
// Everything a test uses is created by that test, with unique names.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stack, adminSession, openBrowser, screenshot, adminApi, apiAs, createUser, signIn, unique, horizontalOverflow } from './lib.mjs';
import { makeHierarchy, until } from './agent.mjs';

const S = stack();
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT = path.join(REPO, 'build', 'test', 'bic-agent');
const SYSROOT = path.join(REPO, 'tests', 'fixtures', 'sysroot-2socket');
let api;

test.before(async () => {
  api = await adminApi();
});
test.after(async () => {
  if (api) await api.dispose();
});

// A published image (a bare qcow2 header: nothing boots it on the test driver) and a spec.
async function imageAndSpec() {
  const spec = await api.post('/specs', { name: unique('bt-spec-'), vcpus: 1, memory_mib: 512, disk_gib: 1, nic_type: 'virtio' });
  const image = await api.post('/images', { name: unique('bt-img-'), os_type: 'linux' });
  const store = path.join(S.var, 'images');
  fs.mkdirSync(store, { recursive: true });
  const bytes = Buffer.alloc(512);
  bytes.write('QFI\xfb', 0, 'latin1');
  bytes.writeUInt32BE(3, 4);
  bytes.writeUInt32BE(16, 20);
  bytes.writeBigUInt64BE(1n << 20n, 24);
  const file = unique('bt-sess-') + '.qcow2';
  fs.writeFileSync(path.join(store, file), bytes);
  const version = await api.post(`/images/${image.id}/versions`, { path: file });
  await api.post(`/image-versions/${version.id}/publish`);
  return { spec, image };
}

const confirm = (page) => page.locator('dialog[data-dialog=confirm]');

async function confirmIt(page) {
  const c = confirm(page);
  await c.locator('button[type=submit]').click();
  await c.waitFor({ state: 'detached' });
}

test('pool policy: edited in the pool page, bad networks shown by the field (page and API), values round-trip', async () => {
  const { spec, image } = await imageAndSpec();
  const bb = await api.post('/building-blocks', { name: unique('bt-bb-'), description: '' });
  const mod = await api.post(`/building-blocks/${bb.id}/modules`, { name: unique('bt-mod-'), description: '', max_servers: 2 });
  const pool = await api.post('/pools', { name: unique('bt-pool-'), type: 'floating', image_id: image.id, spec_id: spec.id, min_size: 0, max_size: 1, name_pattern: unique('bt') + '-{n}', modules: [mod.id] });
  const before = await api.get(`/pools/${pool.id}/policy`);
  assert.equal(before.clipboard, 'both');
  assert.equal(before.idle_timeout_s, 0);
  assert.deepEqual(before.allowed_networks, []);
  const b = await adminSession('#/pools/' + pool.id);
  try {
    const { page } = b;
    const card = page.locator('[data-card=policy][data-loaded=true]');
    await card.waitFor();
    await card.scrollIntoViewIfNeeded();
    // the form shows what the API has
    assert.ok(await card.locator('input[name=clipboard][value=both]').isChecked());
    assert.equal(await card.locator('input[name=idle_timeout_min]').inputValue(), '0');
    assert.equal(await card.locator('textarea[name=allowed_networks]').inputValue(), '');
    assert.equal(await card.locator('input[name=user_power]').isChecked(), before.user_power);
    assert.equal(await card.locator('input[name=refresh_on_logoff]').isChecked(), before.refresh_on_logoff);
    assert.ok(await card.locator('[data-action=save-policy]').isDisabled(), 'nothing to save before a change');
    await screenshot(page, 'sessions-policy-defaults');

    await card.locator('input[name=idle_timeout_min]').fill('15');
    await card.locator('label[data-clipboard=in]').click();
    assert.match(await card.locator('[data-role=clipboard-hint]').textContent(), /pasted into the desktop, but nothing can be copied out/);
    await card.locator('[data-role=policy-dirty]').waitFor();
    // something that is not an address at all: refused by the page, next to the field
    const nets = card.locator('textarea[name=allowed_networks]');
    const netError = card.locator('[data-error-for=allowed_networks]');
    await nets.fill('10.0.0.0/8\nnot-a-network');
    await card.locator('[data-action=save-policy]').click();
    await netError.waitFor();
    assert.match(await netError.textContent(), /"not-a-network" is not a network/);
    assert.equal(await nets.getAttribute('aria-invalid'), 'true');
    assert.ok(await card.locator('[data-error-for=idle_timeout_s]').isHidden(), 'only the bad field is marked');
    assert.equal((await api.get(`/pools/${pool.id}/policy`)).idle_timeout_s, 0, 'nothing was sent');
    // looks like an address but is not one: the API refuses it (422) and the page puts its
    // answer next to the field, naming the network
    await nets.fill('10.0.0.0/8\n10.0.0.300/8');
    assert.ok(await netError.isHidden(), 'typing clears the error');
    const refused = page.waitForResponse((r) => r.url().endsWith(`/api/v1/pools/${pool.id}/policy`) && r.request().method() === 'PATCH');
    await card.locator('[data-action=save-policy]').click();
    assert.equal((await refused).status(), 422);
    await netError.waitFor();
    assert.match(await netError.textContent(), /"10\.0\.0\.300\/8" is not a network/);
    assert.match(await card.locator('.alert').textContent(), /see the marked fields/);
    await screenshot(page, 'sessions-policy-error');
    const unchanged = await api.get(`/pools/${pool.id}/policy`);
    assert.deepEqual([unchanged.idle_timeout_s, unchanged.clipboard, unchanged.allowed_networks], [0, 'both', []]);
    // minutes out of the API's range are refused by the page
    await card.locator('input[name=max_session_min]').fill('50000');
    await card.locator('[data-action=save-policy]').click();
    await card.locator('[data-error-for=max_session_s]').waitFor();
    assert.match(await card.locator('[data-error-for=max_session_s]').textContent(), /43,200/);
    await card.locator('input[name=max_session_min]').fill('0');

    // good values: saved, and only what changed was sent
    await nets.fill('10.0.0.0/8\n127.0.0.0/8');
    const saving = page.waitForRequest((r) => r.url().endsWith(`/api/v1/pools/${pool.id}/policy`) && r.method() === 'PATCH');
    await card.locator('[data-action=save-policy]').click();
    const sent = JSON.parse((await saving).postData());
    assert.deepEqual(sent, { clipboard: 'in', idle_timeout_s: 900, allowed_networks: ['10.0.0.0/8', '127.0.0.0/8'] });
    await card.locator('[data-role=policy-dirty]').waitFor({ state: 'hidden' });
    const after = await api.get(`/pools/${pool.id}/policy`);
    assert.equal(after.idle_timeout_s, 900);
    assert.equal(after.clipboard, 'in');
    assert.deepEqual(after.allowed_networks, ['10.0.0.0/8', '127.0.0.0/8']);
    for (const k of ['view_only', 'max_session_s', 'disconnect_timeout_s', 'max_sessions_per_user', 'user_power', 'refresh_on_logoff']) {
      assert.deepEqual(after[k], before[k], k + ' is unchanged');
    }
    const audit = (await api.get(`/audit?action=pool.policy&target_id=${pool.id}`)).items;
    assert.equal(audit.length, 1, 'one audit entry for the one save');
    assert.deepEqual(Object.keys(audit[0].summary.changed).sort(), ['allowed_networks', 'clipboard', 'idle_timeout_s']);
    await screenshot(page, 'sessions-policy-saved');

    // after a reload the form shows the saved values
    await page.reload();
    await card.waitFor();
    assert.equal(await card.locator('input[name=idle_timeout_min]').inputValue(), '15');
    assert.ok(await card.locator('input[name=clipboard][value=in]').isChecked());
    assert.equal(await nets.inputValue(), '10.0.0.0/8\n127.0.0.0/8');
    // a change made elsewhere shows up while nothing is typed here
    await api.patch(`/pools/${pool.id}/policy`, { view_only: true, max_sessions_per_user: 3 });
    await page.waitForFunction(() => document.querySelector('[data-card=policy] input[name=view_only]')?.checked === true, null, { timeout: 20000 });
    assert.equal(await card.locator('input[name=max_sessions_per_user]').inputValue(), '3');
    assert.ok(await card.locator('[data-action=save-policy]').isDisabled());
    // undo puts the form back
    await card.locator('input[name=disconnect_timeout_min]').fill('30');
    await card.locator('[data-action=reset-policy]').click();
    assert.equal(await card.locator('input[name=disconnect_timeout_min]').inputValue(), '0');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

// bic-agent --fleet 1 on libvirt's test driver, enrolled with token: {proc, dir, log()}.
function startFleetAgent(token) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bt-sess-agent-'));
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
      BIC_AGENT_HOSTNAME: unique('bt-sess-'),
      BIC_AGENT_ROOT_PREFIX: SYSROOT,
      ASAN_OPTIONS: 'detect_leaks=0:log_path=' + path.join(dir, 'asan'),
    },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  return {
    proc,
    log: () => fs.readFileSync(logPath, 'utf8').slice(-3000),
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

test('sessions: a live session is listed and filtered, then disconnected and logged off from the page', { skip: !fs.existsSync(AGENT) && 'build/test/bic-agent is not built (make test-build)' }, async () => {
  const { spec, image } = await imageAndSpec();
  const { module, token } = await makeHierarchy(api, { maxServers: 2 });
  const agent = startFleetAgent(token.token);
  let b = null;
  let ua = null;
  let alive = null;
  try {
    const server = await until(async () => {
      const s = (await api.get(`/servers?module=${module.id}`)).items;
      return s.length === 1 && s[0].state === 'online' ? s[0] : null;
    }, 30000, 'the fleet agent online').catch((e) => {
      throw new Error(e.message + '\n' + agent.log());
    });
    const pool = await api.post('/pools', { name: unique('bt-spool-'), type: 'floating', image_id: image.id, spec_id: spec.id, min_size: 1, max_size: 1, name_pattern: unique('bs') + '-{n}', modules: [module.id] });
    const other = await api.post('/pools', { name: unique('bt-spool-'), type: 'floating', image_id: image.id, spec_id: spec.id, min_size: 0, max_size: 1, name_pattern: unique('bo') + '-{n}', modules: [module.id] });
    const desk = await until(async () => {
      const d = (await api.get(`/pools/${pool.id}/desktops`)).items;
      return d.length === 1 && d[0].phase === 'ready' && d[0].present && d[0].state === 'running' ? d[0] : null;
    }, 60000, 'a ready desktop').catch(async (e) => {
      throw new Error(e.message + ': ' + JSON.stringify((await api.get(`/pools/${pool.id}/desktops`)).items) + '\n' + agent.log());
    });
    const user = await createUser(api, { prefix: 'bt-sess-' });
    await api.put(`/pools/${pool.id}/entitlements/users/${user.id}`);
    ua = await apiAs(user.username, user.password);
    // the broker answers 202 while it prepares, then 200 with a ticket; either way the
    // session exists from the first answer
    const first = await ua.post(`/pools/${pool.id}/connect`, {});
    const session = first.session;
    assert.ok(session && session.id, 'connect returns the session');
    await until(async () => {
      const c = await ua.post(`/pools/${pool.id}/connect`, {});
      assert.equal(c.session.id, session.id, 'connecting again returns the same session');
      return c.ticket ? c : null;
    }, 30000, 'a console ticket');
    // what the console page does while it is open: report that the client is alive (the
    // test stack counts a console gone after a few seconds of silence)
    const report = () => ua.post(`/sessions/${session.id}/activity`, { idle_s: 0 }).catch(() => {});
    await report();
    alive = setInterval(report, 1500);
    const live = await api.get(`/sessions/${session.id}`);
    assert.ok(['connecting', 'connected'].includes(live.state), 'a ticket was issued: ' + live.state);

    b = await adminSession('#/sessions');
    const { page } = b;
    await page.waitForSelector('[data-page=sessions] .page-title');
    assert.equal(await page.getAttribute('a[data-nav=sessions]', 'aria-current'), 'page');
    assert.equal(await page.locator('select[name=state]').inputValue(), 'live');
    const row = page.locator(`[data-table=sessions] tr[data-session-id="${session.id}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-user'), user.username);
    assert.equal(await row.getAttribute('data-state'), live.state);
    assert.equal(await row.locator('[data-role=desktop]').textContent(), desk.name);
    assert.equal(await row.locator('[data-role=pool]').textContent(), pool.name);
    assert.equal(await row.locator('[data-role=server]').textContent(), server.hostname);
    assert.equal(await row.locator('[data-role=client-ip]').textContent(), live.client_ip);
    assert.match(live.client_ip, /^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/);
    assert.match(await row.locator('[data-session-state]').textContent(), /^(Connecting|Connected)$/);
    assert.match(await row.locator('[data-role=since]').textContent(), /just now|s ago|min ago/);
    assert.ok(await row.locator('[data-role=since] [title]').getAttribute('title'), 'the start time in full as a title');
    assert.ok(await page.evaluate(() => {
      const w = document.querySelector('[data-page=sessions] .table-wrap');
      return w.scrollWidth <= w.clientWidth;
    }), 'the sessions table fits 1280 px, actions included');
    await screenshot(page, 'sessions-live');

    // filters: another pool has none; this pool and this user have it; an unknown user none
    await page.locator(`select[name=pool] option[value="${other.id}"]`).waitFor({ state: 'attached' });
    await page.selectOption('select[name=pool]', String(other.id));
    await row.waitFor({ state: 'detached' });
    await page.waitForSelector('.table-status:not([hidden])');
    assert.match(await page.textContent('.table-status'), /No session matches these filters/);
    await screenshot(page, 'sessions-none-match');
    await page.selectOption('select[name=pool]', String(pool.id));
    await row.waitFor();
    assert.match(page.url(), new RegExp('pool=' + pool.id));
    await page.fill('input[name=user]', 'no-such-user-' + unique('x'));
    await row.waitFor({ state: 'detached' });
    assert.match(await page.textContent('.table-status'), /No user has this username/);
    await page.fill('input[name=user]', user.username);
    await row.waitFor();
    assert.equal(await page.locator('[data-table=sessions] tbody tr').count(), 1, 'only this user\'s session');
    await page.selectOption('select[name=state]', 'logged_off');
    await row.waitFor({ state: 'detached' });
    assert.match(await page.textContent('.table-status'), /No session matches these filters/);
    await page.selectOption('select[name=state]', 'live');
    await row.waitFor();

    // disconnect (the session has a console ticket): the row stays, disconnected, with why
    assert.ok(['connecting', 'connected'].includes((await api.get(`/sessions/${session.id}`)).state), 'still live before the disconnect');
    await row.locator('[data-action=disconnect]').click();
    assert.match(await confirm(page).textContent(), new RegExp(`Disconnect ${user.username}\\?`));
    await confirmIt(page);
    await page.waitForFunction((id) => document.querySelector(`tr[data-session-id="${id}"]`)?.getAttribute('data-state') === 'disconnected', session.id);
    clearInterval(alive);
    alive = null;
    assert.match(await row.locator('[data-role=end-reason]').textContent(), /Disconnected by an operator/);
    assert.match(await row.locator('[data-role=last-change]').textContent(), /Disconnected/);
    assert.ok(await row.locator('[data-action=disconnect]').isDisabled(), 'a disconnected session cannot be disconnected again');
    const d = await api.get(`/sessions/${session.id}`);
    assert.equal(d.state, 'disconnected');
    assert.equal(d.end_reason, 'admin_disconnect');
    assert.equal((await api.get(`/audit?action=session.disconnect&target_id=${session.id}`)).items.length, 1);
    await screenshot(page, 'sessions-disconnected');

    // force log-off: confirmed, then the row leaves the live list within a refresh
    await row.locator('[data-action=logoff]').click();
    const dlg = confirm(page);
    assert.match(await dlg.textContent(), new RegExp(`Log off ${user.username}\\?`));
    assert.match(await dlg.textContent(), new RegExp(desk.name));
    await screenshot(page, 'sessions-logoff-confirm');
    await confirmIt(page);
    await row.waitFor({ state: 'detached', timeout: 8000 });
    const ended = await api.get(`/sessions/${session.id}`);
    assert.equal(ended.state, 'logged_off');
    assert.equal(ended.end_reason, 'admin_logoff');
    assert.equal(ended.ended_by, 'admin');
    assert.equal((await api.get(`/audit?action=session.logoff&target_id=${session.id}`)).items.length, 1);
    // ... and is listed with the logged-off ones, with why and when
    await page.selectOption('select[name=state]', 'logged_off');
    await row.waitFor();
    assert.equal(await row.getAttribute('data-state'), 'logged_off');
    assert.match(await row.locator('[data-role=end-reason]').textContent(), /Logged off by admin/);
    assert.match(await row.locator('[data-role=last-change]').textContent(), /Ended/);
    assert.equal(await row.locator('[data-action=logoff]').count(), 0, 'no actions on an ended session');
    await screenshot(page, 'sessions-logged-off');

    // Korean on a phone: labels translated, nothing scrolls sideways
    await b.close();
    b = await adminSession(`#/sessions?state=all&pool=${pool.id}`, { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
    await b.page.waitForSelector(`tr[data-session-id="${session.id}"]`);
    await b.page.click('.topbar-menu-btn');
    await b.page.click('.lang-btn[data-lang=ko]');
    await b.page.click('.topbar-menu-btn');
    await b.page.waitForSelector('.topbar-menu', { state: 'hidden' });
    assert.equal((await b.page.textContent('a[data-nav=sessions]')).trim(), '세션');
    assert.match(await b.page.textContent(`tr[data-session-id="${session.id}"] [data-session-state]`), /로그오프됨/);
    assert.equal(await horizontalOverflow(b.page), 0, 'the sessions page fits 390 px');
    await screenshot(b.page, 'sessions-phone-ko');
    assert.deepEqual(b.errors, []);
  } finally {
    if (alive) clearInterval(alive);
    if (ua) await ua.dispose();
    if (b) await b.close();
    await agent.stop();
  }
});
