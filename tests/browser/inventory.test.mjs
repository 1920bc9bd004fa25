// The admin portal's infrastructure pages against the real API, with stand-in agents
// (agent.mjs) enrolling and heartbeating over HTTPS: the topology (health colours, capacity,
// live refresh), creating building blocks and modules, a server's page (NICs, desktops,
// maintenance, power actions and their tasks), the task list, enrollment tokens, Korean and
// phone size. Every building block, module, token and server here is made here.
import test from 'node:test';
import assert from 'node:assert/strict';
import { stack, openBrowser, screenshot, adminApi, signIn, unique, horizontalOverflow } from './lib.mjs';
import { FakeAgent, makeHierarchy, onlineAgent } from './agent.mjs';

const S = stack();
const RED = 'rgb(201, 48, 44)'; // --danger
let api;
const agents = [];

test.before(async () => {
  api = await adminApi();
});
test.after(async () => {
  for (const a of agents) a.stop();
  if (api) await api.dispose();
});

async function adminAt(hash, opts) {
  const b = await openBrowser(opts);
  await b.page.goto(S.base + '/admin/' + hash);
  await signIn(b.page, 'admin', S.adminPassword);
  await b.page.waitForSelector('[data-view=frame]');
  return b;
}

// A server that keeps heartbeating (so it stays online) until the tests end.
async function liveAgent(token, opts) {
  const a = await onlineAgent(token, opts);
  agents.push(a.keepAlive(500));
  return a;
}

// The topology shows 20 building blocks a page, oldest first: page on until ours shows.
async function findBuildingBlock(page, name) {
  const node = page.locator(`.topo-bb[data-bb="${name}"]`);
  await page.waitForSelector('.topo-card:not([aria-busy])');
  for (let i = 0; i < 50; i++) {
    if (await node.count()) return node;
    const next = page.locator('[data-page=topology] [data-action=next-page]');
    if (!(await next.isVisible()) || (await next.isDisabled())) break;
    const before = await page.textContent('[data-page=topology] [data-role=pager-info]');
    await next.click();
    await page.waitForFunction((b) => document.querySelector('[data-page=topology] [data-role=pager-info]').textContent !== b, before);
  }
  await node.waitFor({ timeout: 2000 });
  return node;
}

test('topology: building block, module, an online server with its capacity bar, an offline one in red, refreshed live', async () => {
  const h = await makeHierarchy(api);
  const up = await liveAgent(h.token.token);
  const down = await liveAgent(h.token.token); // silenced below: offline ~3 s later
  const b = await adminAt('');
  try {
    const { page } = b;
    // every /topology request, to see refreshes never overlap
    let inFlight = 0;
    let maxInFlight = 0;
    let topologyCalls = 0;
    const isLive = (r) => /\/api\/v1\/(topology|servers\?module=)/.test(r.url());
    page.on('request', (r) => {
      if (!isLive(r)) return;
      if (r.url().includes('/topology')) topologyCalls++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
    });
    const settle = (r) => {
      if (isLive(r)) inFlight--;
    };
    page.on('requestfinished', settle);
    page.on('requestfailed', settle);

    await page.waitForSelector('[data-page=topology]');
    assert.equal(await page.getAttribute('a[data-nav=topology]', 'aria-current'), 'page');
    const bb = await findBuildingBlock(page, h.bb.name);
    const mod = bb.locator(`.topo-module[data-module="${h.module.name}"]`);
    await mod.waitFor();
    assert.match(await mod.locator('.topo-sub').textContent(), /2 of 10 server slots/);
    // two servers of 8 cores and 1 Gbps: 96 by cores, 100 by NICs, 200 by servers -> cores bind
    const modCap = mod.locator('.topo-row [data-role=capacity]');
    assert.equal(await modCap.getAttribute('data-capacity'), '96');
    assert.equal(await modCap.getAttribute('data-used'), '2');
    assert.equal(await modCap.locator('.cap-limit').getAttribute('data-binding'), 'cores');
    assert.match(await modCap.textContent(), /Limited by CPU cores/);

    // servers load when the module is opened
    await mod.locator('[data-action=toggle-module]').click();
    const upRow = mod.locator(`.topo-server[data-hostname="${up.hostname}"]`);
    const downRow = mod.locator(`.topo-server[data-hostname="${down.hostname}"]`);
    await upRow.waitFor();
    await downRow.waitFor();
    assert.equal(await upRow.getAttribute('data-state'), 'online');
    assert.match(await upRow.locator('.badge').first().textContent(), /Online/);
    const upCap = upRow.locator('[data-role=capacity]');
    assert.equal(await upCap.getAttribute('data-used'), '1');
    assert.equal(await upCap.getAttribute('data-capacity'), '48', '8 cores x 6 binds before 1 Gbps x 50');
    assert.equal(await upCap.locator('meter').getAttribute('value'), '1');
    assert.equal(await upCap.locator('meter').getAttribute('max'), '48');
    assert.equal(await upRow.locator('.status-dot').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(31, 164, 99)');

    assert.equal(await downRow.getAttribute('data-state'), 'online');
    // one agent stops heartbeating: it turns red without a reload (the page refreshes every 10 s)
    const callsBefore = topologyCalls;
    down.stop();
    await page.waitForSelector(`.topo-server[data-hostname="${down.hostname}"][data-state=offline]`, { timeout: 30000 });
    assert.match(await downRow.locator('.badge').first().textContent(), /Offline/);
    assert.equal(await downRow.locator('.topo-server-name').evaluate((e) => getComputedStyle(e).color), RED);
    assert.equal(await downRow.locator('.status-dot').evaluate((e) => getComputedStyle(e).backgroundColor), RED);
    await page.waitForFunction((n) => document.querySelector(`.topo-module[data-module="${n}"]`)?.getAttribute('data-health') === 'bad', h.module.name);
    assert.match(await mod.locator('.topo-row .topo-health').textContent(), /1 online.*1 offline/);
    assert.equal(await upRow.getAttribute('data-state'), 'online', 'the heartbeating one stays green');
    assert.ok(topologyCalls > callsBefore, `refreshed on its own (${topologyCalls} calls)`);
    assert.equal(maxInFlight, 1, 'never two refreshes at once');
    assert.match(await page.textContent('[data-role=live]'), /Live · updated \d\d:\d\d:\d\d/);
    await page.evaluate(() => window.scrollTo(0, 0));
    await bb.scrollIntoViewIfNeeded();
    await screenshot(page, 'admin-topology');

    // leaving the page stops the refreshes
    await page.click('a[data-nav=users]');
    await page.waitForSelector('[data-page=users]');
    const calls = topologyCalls;
    await page.waitForTimeout(11000);
    assert.equal(topologyCalls, calls, 'no topology requests after leaving the page');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('topology: admins create a building block and a module from the page', async () => {
  const b = await adminAt('#/topology');
  try {
    const { page } = b;
    const bbName = unique('bt-newbb-');
    const modName = unique('bt-newmod-');
    await page.waitForSelector('.topo-card:not([aria-busy])');
    await page.click('[data-action=new-bb]');
    const dlg = page.locator('dialog[data-dialog=create-bb]');
    await dlg.locator('button[type=submit]').click();
    assert.match(await dlg.locator('.alert').textContent(), /Enter a name/);
    await dlg.locator('input[name=name]').fill(bbName);
    await dlg.locator('input[name=description]').fill('made by the browser tests');
    await screenshot(page, 'admin-topology-new-bb');
    await dlg.locator('button[type=submit]').click();
    await dlg.waitFor({ state: 'detached' });
    const bb = await findBuildingBlock(page, bbName);
    assert.match(await bb.textContent(), /No modules in this building block yet/);

    await bb.locator('[data-action=new-module]').click();
    const md = page.locator('dialog[data-dialog=create-module]');
    assert.match(await md.locator('.dialog-title').textContent(), new RegExp(bbName));
    await md.locator('input[name=name]').fill(modName);
    await md.locator('input[name=max_servers]').fill('0');
    await md.locator('button[type=submit]').click();
    assert.match(await md.locator('.alert').textContent(), /from 1 to 1000/);
    await md.locator('input[name=max_servers]').fill('4');
    await md.locator('button[type=submit]').click();
    await md.waitFor({ state: 'detached' });
    const mod = bb.locator(`.topo-module[data-module="${modName}"]`);
    await mod.waitFor();
    assert.match(await mod.textContent(), /0 of 4 server slots/);
    assert.match(await mod.textContent(), /No servers/);
    // the same module name again in that building block is refused clearly
    await bb.locator('[data-action=new-module]').click();
    await md.locator('input[name=name]').fill(modName);
    await md.locator('button[type=submit]').click();
    await md.locator('.alert:not([hidden])').waitFor();
    assert.match(await md.locator('.alert').textContent(), /already has a module with this name/);
    await md.locator('.dialog-foot .btn-secondary').click();

    const made = (await api.get('/building-blocks?limit=500')).items.find((x) => x.name === bbName);
    assert.ok(made, 'the building block exists');
    const mods = (await api.get(`/building-blocks/${made.id}/modules`)).items;
    assert.deepEqual(mods.map((m) => [m.name, m.max_servers]), [[modName, 4]]);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('server page: NICs and desktops, maintenance on and off, a power action whose task ends failed with the reason', async () => {
  const h = await makeHierarchy(api);
  const a = await liveAgent(h.token.token);
  const desk = a.desktops[0];
  const b = await adminAt('#/servers');
  try {
    const { page } = b;
    // find it through the server list's search
    await page.fill('[data-page=servers] input[type=search]', a.hostname);
    const row = page.locator(`[data-table=servers] tr[data-server="${a.hostname}"]`);
    await row.waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-table=servers] tbody tr').length === 1);
    assert.match(await row.textContent(), /Online/);
    assert.match(await row.textContent(), new RegExp(`${h.bb.name} › ${h.module.name}`));
    await screenshot(page, 'admin-servers');
    await row.locator('.server-link').click();
    await page.waitForSelector(`[data-page=servers-detail] [data-role=hostname]:text("${a.hostname}")`);
    assert.equal(await page.getAttribute('a[data-nav=servers]', 'aria-current'), 'page');

    // hardware and NICs as the agent reported them
    const nic = page.locator('[data-nic=ens1f0]');
    await nic.waitFor();
    assert.match(await nic.textContent(), /1 Gbps · ixgbe/);
    assert.equal(await nic.locator('.badge').getAttribute('data-sriov'), 'yes');
    assert.match(await nic.locator('.badge').textContent(), /SR-IOV · 63 VFs/);
    const hw = await page.textContent('[data-role=hardware]');
    assert.match(hw, /CPU threads\s*16/);
    assert.match(hw, /CPU cores\s*8/);
    assert.match(hw, /62.5 GiB/);
    assert.match(hw, /QEMU/);
    const cap = page.locator('[data-card=capacity] [data-role=capacity]');
    assert.equal(await cap.getAttribute('data-capacity'), '48');
    assert.equal(await cap.locator('.cap-limit').getAttribute('data-binding'), 'cores');
    assert.match(await page.textContent('[data-card=capacity]'), /Servers\s*100.*Cores\s*48.*NICs\s*50/s);

    // the desktop the heartbeat reported
    const drow = page.locator(`[data-table=desktops] tr[data-uuid="${desk.uuid}"]`);
    await drow.waitFor();
    assert.match(await drow.textContent(), /desk-1/);
    assert.match(await drow.textContent(), /Running/);
    assert.match(await drow.textContent(), /2 vCPU · 2 GiB/);
    assert.equal(await drow.locator('[data-action="domain.start"]').isDisabled(), true, 'a running desktop cannot be started');
    await screenshot(page, 'admin-server');

    // maintenance, with confirmation, both ways
    await page.click('[data-action=maintenance]');
    const confirm = page.locator('dialog[data-dialog=confirm]');
    assert.match(await confirm.textContent(), /No new desktops are placed/);
    await confirm.locator('button[type=submit]').click();
    await confirm.waitFor({ state: 'detached' });
    await page.waitForSelector('.server-head [data-role=maintenance-badge]');
    assert.equal((await api.get('/servers/' + a.serverId)).maintenance, true);
    assert.match(await page.textContent('[data-action=maintenance]'), /Leave maintenance/);
    await page.waitForSelector('[data-event=maintenance_on]');
    await page.click('[data-action=maintenance]');
    await confirm.locator('button[type=submit]').click();
    await confirm.waitFor({ state: 'detached' });
    await page.waitForSelector('.server-head [data-role=maintenance-badge]', { state: 'detached' });
    assert.equal((await api.get('/servers/' + a.serverId)).maintenance, false);

    // the server's desktop limit: 40 is below the per-core rule's 48, so it binds
    await page.click('[data-action=desktop-limit]');
    const lim = page.locator('dialog[data-dialog=desktop-limit]');
    assert.equal(await lim.locator('input[name=max_desktops]').inputValue(), '100');
    await lim.locator('input[name=max_desktops]').fill('0');
    await lim.locator('button[type=submit]').click();
    await lim.locator('.alert').waitFor();
    assert.match(await lim.locator('.alert').textContent(), /max_desktops/);
    await lim.locator('input[name=max_desktops]').fill('40');
    await lim.locator('button[type=submit]').click();
    await lim.waitFor({ state: 'detached' });
    await page.waitForFunction(() => document.querySelector('[data-card=capacity] [data-role=capacity]')?.getAttribute('data-capacity') === '40');
    assert.equal(await cap.locator('.cap-limit').getAttribute('data-binding'), 'servers');
    assert.equal((await api.get('/servers/' + a.serverId)).capacity.by_servers, 40);

    // a power action: confirmed, queued, then failed because the agent cannot be reached
    await drow.locator('[data-action="domain.reboot"]').click();
    assert.match(await confirm.locator('.dialog-title').textContent(), /Reboot desk-1\?/);
    await confirm.locator('button[type=submit]').click();
    await confirm.waitFor({ state: 'detached' });
    const task = page.locator('[data-card=tasks] .task-item[data-task-type="domain.reboot"]').first();
    await task.waitFor();
    assert.match(await task.getAttribute('data-task-state'), /queued|sent|running/);
    assert.match(await drow.locator('[data-role=desktop-task]').textContent(), /Reboot/);
    // the inventory refresh goes the same way
    await page.click('[data-action=inventory-refresh]');
    await page.locator('[data-card=tasks] .task-item[data-task-type="inventory.refresh"]').waitFor();
    await page.waitForSelector('[data-card=tasks] .task-item[data-task-type="domain.reboot"][data-task-state=failed]', { timeout: 40000 });
    assert.match(await task.locator('[data-role=task-error]').textContent(), /agent unreachable/);
    assert.match(await task.textContent(), /Attempt 3 of 3/);
    await page.waitForFunction((u) => /Failed/.test(document.querySelector(`[data-table=desktops] tr[data-uuid="${u}"] [data-role=desktop-task]`)?.textContent || ''), desk.uuid);
    assert.match(await drow.locator('[data-role=desktop-task]').textContent(), /agent unreachable/);
    const tasks = (await api.get('/tasks?server=' + a.serverId)).items;
    const reboot = tasks.find((t) => t.type === 'domain.reboot');
    assert.equal(reboot.state, 'failed');
    assert.deepEqual(reboot.params, { uuid: desk.uuid });
    await page.waitForSelector('[data-card=tasks] .task-item[data-task-type="inventory.refresh"][data-task-state=failed]', { timeout: 40000 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'admin-server-task-failed');

    // the task list, filtered to this server
    await page.click('[data-card=tasks] [data-action=all-tasks]');
    await page.waitForSelector('[data-page=tasks]');
    const trow = page.locator(`[data-table=tasks] tr[data-task-id="${reboot.id}"]`);
    await trow.waitFor();
    assert.equal(await page.inputValue('[data-page=tasks] select[name=server]'), String(a.serverId));
    assert.equal(await page.locator('[data-table=tasks] tbody tr').count(), 2, 'only the two tasks of this server');
    assert.equal(await trow.getAttribute('data-task-state'), 'failed');
    assert.match(await trow.textContent(), /Reboot/);
    assert.match(await trow.locator('[data-role=task-error]').textContent(), /agent unreachable/);
    assert.match(await trow.locator('[data-role=attempts]').textContent(), /Attempt 3 of 3/);
    assert.match(await trow.textContent(), new RegExp(a.hostname));
    await page.selectOption('[data-page=tasks] select[name=state]', 'succeeded');
    await page.waitForSelector('[data-page=tasks] .table-status:not([hidden])');
    assert.match(await page.textContent('[data-page=tasks] .table-status'), /No tasks match/);
    await page.selectOption('[data-page=tasks] select[name=state]', 'failed');
    await trow.waitFor();
    await screenshot(page, 'admin-tasks');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('enrollment tokens: the token is shown once with the agent configuration, listed by its hint, and revoked', async () => {
  const bb = await api.post('/building-blocks', { name: unique('bt-tokbb-'), description: '' });
  const mod = await api.post(`/building-blocks/${bb.id}/modules`, { name: unique('bt-tokmod-'), max_servers: 5 });
  const b = await adminAt('#/tokens');
  try {
    const { page, context } = b;
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: S.base });
    await page.waitForSelector('[data-page=tokens] .table-block:not([aria-busy])');
    await page.click('[data-action=new-token]');
    const dlg = page.locator('dialog[data-dialog=create-token]');
    await dlg.locator(`select[name=building_block_id] option[value="${bb.id}"]`).waitFor({ state: 'attached' });
    await dlg.locator('select[name=building_block_id]').selectOption(String(bb.id));
    await dlg.locator(`select[name=module_id] option[value="${mod.id}"]`).waitFor({ state: 'attached' });
    await dlg.locator('select[name=module_id]').selectOption(String(mod.id));
    await dlg.locator('select[name=ttl]').selectOption(String(7 * 86400));
    await dlg.locator('input[name=description]').fill('rack 7');
    await dlg.locator('button[type=submit]').click();

    const once = page.locator('dialog[data-dialog=token-once]');
    await once.waitFor();
    const token = await once.locator('[data-role=token-value]').inputValue();
    assert.equal(token.length, 43, 'a 43-character token: ' + token);
    assert.match(await once.textContent(), /shown only this once/);
    assert.match(await once.textContent(), new RegExp(`${bb.name}.*${mod.name}`));
    const conf = await once.locator('[data-role=agent-config]').textContent();
    assert.equal(conf, `[agent]\nccc_url = ${S.base}\ntoken = ${token}\n`);
    assert.equal(await once.locator('[data-role=agent-command]').textContent(), 'bic-agent -c /etc/bic/agent.ini run');
    await once.locator('[data-action=copy-token]').click();
    await page.waitForSelector('.toast:has-text("Copied")');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
    await screenshot(page, 'admin-token-once');
    await once.locator('.dialog-foot .btn').click();
    await once.waitFor({ state: 'detached' });
    assert.equal((await page.content()).includes(token), false, 'the token is gone once the dialog closes');

    const hint = token.slice(0, 8);
    const row = page.locator(`[data-table=tokens] tr[data-hint="${hint}"]`);
    await row.waitFor();
    assert.equal(await row.locator('[data-role=hint]').textContent(), hint + '…');
    assert.match(await row.textContent(), /Valid/);
    assert.match(await row.textContent(), new RegExp(`${bb.name}.*${mod.name}`));
    assert.match(await row.textContent(), /rack 7/);

    // the token really works: a server enrolls with it, and the list counts the use
    const agent = new FakeAgent(token);
    await agent.enroll();
    await page.reload();
    await row.waitFor();
    assert.equal(await row.locator('td.col-num .cell-value').textContent(), '1', 'one use');
    await screenshot(page, 'admin-tokens');

    // revoke, with confirmation
    await row.locator('[data-action=revoke]').click();
    const confirm = page.locator('dialog[data-dialog=confirm]');
    assert.match(await confirm.locator('.dialog-title').textContent(), new RegExp(`Revoke token ${hint}`));
    await confirm.locator('button[type=submit]').click();
    await confirm.waitFor({ state: 'detached' });
    await page.waitForFunction((hn) => /Revoked/.test(document.querySelector(`tr[data-hint="${hn}"]`)?.textContent || ''), hint);
    assert.equal(await row.locator('[data-action=revoke]').isDisabled(), true);
    const listed = (await api.get(`/enrollment-tokens?building_block=${bb.id}`)).items.find((t) => t.hint === hint);
    assert.equal(listed.valid, false);
    assert.ok(listed.revoked_at);
    await assert.rejects(new FakeAgent(token).enroll(), /401/, 'a revoked token no longer enrolls');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('Korean: the infrastructure pages are labelled in Korean after switching the language', async () => {
  const h = await makeHierarchy(api);
  const a = await liveAgent(h.token.token);
  const b = await adminAt('#/topology');
  try {
    const { page } = b;
    const bb = await findBuildingBlock(page, h.bb.name);
    const mod = bb.locator(`.topo-module[data-module="${h.module.name}"]`);
    await mod.locator('[data-action=toggle-module]').click();
    await mod.locator(`.topo-server[data-hostname="${a.hostname}"]`).waitFor();
    await page.click('.lang-btn[data-lang=ko]');
    assert.equal(await page.getAttribute('html', 'lang'), 'ko');
    assert.equal((await page.textContent('a[data-nav=topology]')).trim(), '토폴로지');
    assert.equal((await page.textContent('a[data-nav=servers]')).trim(), '서버');
    assert.equal((await page.textContent('a[data-nav=tasks]')).trim(), '작업');
    assert.equal((await page.textContent('a[data-nav=tokens]')).trim(), '등록 토큰');
    assert.equal(await page.textContent('[data-page=topology] .page-title'), '토폴로지');
    assert.match(await page.textContent('[data-action=new-bb]'), /새 빌딩 블록/);
    assert.match(await mod.locator('.topo-server .badge').first().textContent(), /온라인/);
    assert.match(await mod.locator('.topo-row .cap-limit').textContent(), /CPU 코어가 한도/);
    assert.match(await mod.textContent(), /서버 자리 10개 중 1개 사용/);
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'admin-topology-ko');

    await mod.locator(`.topo-server[data-hostname="${a.hostname}"] .topo-server-name`).click();
    await page.waitForSelector('[data-page=servers-detail] [data-nic=ens1f0]');
    assert.match(await page.textContent('[data-action=maintenance]'), /유지 보수 시작/);
    assert.match(await page.textContent('[data-card=nics]'), /네트워크 인터페이스/);
    assert.match(await page.textContent('[data-card=tasks]'), /최근 작업/);
    await page.click('a[data-nav=tokens]');
    await page.waitForSelector('[data-page=tokens] .page-title');
    assert.equal(await page.textContent('[data-page=tokens] .page-title'), '등록 토큰');
    await page.click('a[data-nav=tasks]');
    assert.equal(await page.textContent('[data-page=tasks] .page-title'), '작업');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('phone size: topology, a server and the tokens fit without sideways scrolling', async () => {
  const h = await makeHierarchy(api);
  const a = await liveAgent(h.token.token);
  const b = await adminAt('#/topology', { viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
  try {
    const { page } = b;
    const bb = await findBuildingBlock(page, h.bb.name);
    const mod = bb.locator(`.topo-module[data-module="${h.module.name}"]`);
    await mod.locator('[data-action=toggle-module]').click();
    await mod.locator(`.topo-server[data-hostname="${a.hostname}"]`).waitFor();
    assert.equal(await horizontalOverflow(page), 0);
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'phone-admin-topology');
    await bb.scrollIntoViewIfNeeded();
    await screenshot(page, 'phone-admin-topology-tree');

    await page.goto(S.base + '/admin/#/servers/' + a.serverId);
    await page.waitForSelector('[data-page=servers-detail] [data-table=desktops] tbody tr');
    assert.equal(await horizontalOverflow(page), 0, 'the server page fits');
    await screenshot(page, 'phone-admin-server');
    await page.click('a[data-nav=tokens]');
    await page.waitForSelector('[data-table=tokens] tbody tr');
    assert.equal(await horizontalOverflow(page), 0, 'the tokens fit');
    await screenshot(page, 'phone-admin-tokens');
    await page.click('a[data-nav=tasks]');
    await page.waitForSelector('[data-page=tasks] .table-block:not([aria-busy])');
    assert.equal(await horizontalOverflow(page), 0, 'the tasks fit');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
