// The admin portal's Automation page against the real API: a module with two enrolled (fake)
// agents is picked, the Power tab shows its servers and the plan, its settings are changed in
// the page (a bad schedule is refused with the API's sentence, a good one round-trips), the
// Balancing tab shows the loads, the Action log lists what the loops recorded, and the page
// works in Korean and at phone width.
import test from 'node:test';
import assert from 'node:assert/strict';
import { adminSession, screenshot, adminApi, horizontalOverflow } from './lib.mjs';
import { makeHierarchy, onlineAgent, until } from './agent.mjs';

let api;
test.before(async () => {
  api = await adminApi();
});
test.after(async () => {
  if (api) await api.dispose();
});

test('automation: module picker, power and balancing tabs, settings round-trip, action log', async () => {
  const { module, token } = await makeHierarchy(api);
  await onlineAgent(token.token);
  await onlineAgent(token.token);
  const b = await adminSession('#/automation?module=' + module.id);
  try {
    const { page } = b;
    await page.waitForSelector('[data-role=module-picker] option', { state: 'attached' });
    assert.equal(await page.locator('[data-role=module-picker]').inputValue(), String(module.id));
    // Power tab (the default): the two servers, on, and the plan in words
    await page.waitForSelector('[data-table=power-servers] tr[data-server-id]');
    assert.equal(await page.locator('[data-table=power-servers] tr[data-server-id]').count(), 2);
    assert.equal(await page.locator('[data-table=power-servers] [data-role=power-state]').first().textContent(), 'On');
    assert.equal(await page.locator('[data-role=power-mode]').textContent(), 'Off');
    await page.waitForSelector('form[data-role=power-settings]');
    await screenshot(page, 'automation-power');

    // a bad schedule: the API's sentence is shown, nothing is stored
    const form = page.locator('form[data-role=power-settings]');
    await form.locator('input[name=schedule]').fill('weekdays 8:30 4');
    await form.locator('button[type=submit]').click();
    await until(async () => /DAYS HH:MM/.test(await page.locator('[data-role=power-tab]').textContent()), 10000, 'the error');
    assert.equal((await api.get(`/modules/${module.id}/automation/power`)).configured, false);

    // a good change: dry run on, a schedule; it round-trips and the summary says so
    await form.locator('input[name=enabled]').check();
    await form.locator('input[name=dry_run]').check();
    await form.locator('input[name=schedule]').fill('mon-fri 08:30 2');
    await form.locator('input[name=empty_hold_s]').fill('600');
    await form.locator('button[type=submit]').click();
    await until(async () => (await api.get(`/modules/${module.id}/automation/power`)).configured, 10000, 'the save');
    const s = await api.get(`/modules/${module.id}/automation/power`);
    assert.deepEqual([s.enabled, s.dry_run, s.schedule, s.empty_hold_s], [true, true, 'mon-fri 08:30 2', 600]);
    await until(async () => (await page.locator('[data-role=power-mode]').textContent()) === 'Dry run: only records', 10000, 'the mode');
    assert.match(await page.locator('[data-role=power-summary]').textContent(), /Next peak/);

    // Balancing: loads of both servers and the spread
    await page.click('[data-tab=balance]');
    await page.waitForSelector('[data-table=balance-servers] tr[data-server-id]');
    assert.equal(await page.locator('[data-table=balance-servers] tr[data-server-id]').count(), 2);
    assert.match(await page.locator('[data-role=spread]').textContent(), /Spread between/);
    const bform = page.locator('form[data-role=balance-settings]');
    await bform.locator('input[name=mem_high_pct]').fill('70');
    await bform.locator('button[type=submit]').click();
    await until(async () => (await api.get(`/modules/${module.id}/automation/balance`)).mem_high_pct === 70, 10000, 'the balance save');
    await screenshot(page, 'automation-balance');

    // Recovery: R's tab is mounted
    await page.click('[data-tab=recovery]');
    await page.waitForSelector('[data-role=recovery-tab]');

    // Action log: the settings changes are audited; the loops' actions are listed (none yet for this module)
    await page.click('[data-tab=log]');
    // the table is in the page either way; with no actions yet it is hidden behind its empty note
    await page.waitForSelector('[data-table=automation-actions]', { state: 'attached' });
    // (the table is there before its first page arrives: wait for rows or the empty mark)
    await page.waitForFunction(() => {
      const t = document.querySelector('[data-table=automation-actions]');
      return t && (t.querySelectorAll('tbody tr').length > 0 || t.classList.contains('is-empty'));
    }, null, { timeout: 10000 });
    const shown = await page.locator('[data-table=automation-actions] tbody tr').count();
    const empty = await page.locator('[data-table=automation-actions].is-empty').count();
    assert.ok(shown > 0 || empty === 1, 'the log lists actions or says there are none');
    await screenshot(page, 'automation-log');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('automation: Korean and phone width', async () => {
  const { module, token } = await makeHierarchy(api);
  await onlineAgent(token.token);
  const b = await adminSession('#/automation?module=' + module.id, { locale: 'ko-KR', viewport: { width: 390, height: 844 }, isMobile: true });
  try {
    const { page } = b;
    await page.waitForSelector('[data-table=power-servers] tr[data-server-id]');
    const lang = await page.evaluate(() => document.documentElement.lang);
    if (lang === 'ko') assert.equal(await page.locator('[data-tab=power]').textContent(), '전원');
    assert.ok(await horizontalOverflow(page) <= 1, 'no sideways scrolling at 390 px');
    await screenshot(page, 'automation-phone');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
