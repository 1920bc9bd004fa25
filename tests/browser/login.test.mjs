// The sign-in screen: wrong password, the explained error codes, the busy button,
// the language switch before sign-in, and phone-size layout.
import test from 'node:test';
import assert from 'node:assert/strict';
import { stack, openBrowser, screenshot, adminApi, createUser, signIn, horizontalOverflow } from './lib.mjs';

const S = stack();
let api;
let user;

test.before(async () => {
  api = await adminApi();
  user = await createUser(api, { prefix: 'bt-login-' });
});
test.after(async () => {
  if (api) await api.dispose();
});

test('user portal: a wrong password shows an error and stays on the sign-in screen', async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await page.waitForSelector('[data-view=login]');
    assert.equal(await page.textContent('h1.auth-title'), 'Sign in');
    // hold the answer back a little so the busy state can be seen
    await page.route('**/api/v1/auth/login', async (route) => {
      await new Promise((r) => setTimeout(r, 600));
      await route.continue();
    });
    await signIn(page, user.username, user.password + '-wrong');
    const submit = page.locator('[data-role=login-form] button[type=submit]');
    await page.waitForSelector('[data-role=login-form] button[type=submit][disabled]');
    assert.match(await submit.textContent(), /Signing in/);
    const err = page.locator('[data-role=login-error]');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /username or password is incorrect/);
    assert.equal(await submit.isDisabled(), false, 'the button is enabled again');
    assert.equal(await page.locator('[data-view=login]').count(), 1, 'still on the sign-in screen');
    assert.equal(await page.locator('[data-view=frame]').count(), 0);
    assert.equal(await page.inputValue('#login-username'), user.username, 'the username is kept');
    assert.equal(await page.inputValue('#login-password'), '', 'the password is cleared');
    await screenshot(page, 'login-wrong-password');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('an account locked by the server after failed sign-ins says so, with the wait', async () => {
  const victim = await createUser(api, { prefix: 'bt-lock-' });
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    const err = page.locator('[data-role=login-error]');
    let text = '';
    for (let i = 0; i < 8 && !/locked/.test(text); i++) {
      await signIn(page, victim.username, 'wrong-password-' + i);
      await page.waitForFunction(() => !document.querySelector('[data-role=login-form] button[type=submit]').disabled);
      text = await err.textContent();
    }
    assert.match(text, /account is locked.*Try again in \d+ (seconds|minutes)/);
    assert.equal(await page.locator('[data-view=login]').count(), 1);
    await page.click('.lang-btn[data-lang=ko]');
    assert.match(await err.textContent(), /계정이 잠겼습니다.*\d+(초|분) 후/);
    await screenshot(page, 'login-locked-real-ko');
  } finally {
    await b.close();
  }
});

test('sign-in errors name the reason: locked with its wait, rate limited, server unavailable, empty fields', async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await page.waitForSelector('[data-view=login]');
    const err = page.locator('[data-role=login-error]');

    await page.click('[data-role=login-form] button[type=submit]');
    assert.match(await err.textContent(), /Enter your username and password/);

    const answers = [
      [423, { 'Retry-After': '300' }, 'account_locked', /account is locked.*5 minutes/],
      [423, { 'Retry-After': '45' }, 'account_locked', /account is locked.*45 seconds/],
      [429, { 'Retry-After': '7' }, 'rate_limited', /Too many sign-in attempts.*7 seconds/],
      [503, { 'Retry-After': '2' }, 'unavailable', /server is not available/],
    ];
    for (const [status, headers, code, want] of answers) {
      await page.unroute('**/api/v1/auth/login');
      await page.route('**/api/v1/auth/login', (route) => route.fulfill({
        status, headers: { ...headers, 'Content-Type': 'application/json' },
        body: JSON.stringify({ error: { code, message: 'x', request_id: 'test' } }),
      }));
      await signIn(page, 'someone', 'some password');
      await page.waitForFunction(() => !document.querySelector('[data-role=login-form] button[type=submit]').disabled);
      assert.match(await err.textContent(), want, `${status} ${code}`);
      if (status === 423) await screenshot(page, 'login-locked');
    }
    // a server that is down altogether (nginx answers an HTML 502)
    await page.unroute('**/api/v1/auth/login');
    await page.route('**/api/v1/auth/login', (route) => route.fulfill({ status: 502, contentType: 'text/html', body: '<html>bad gateway</html>' }));
    await signIn(page, 'someone', 'some password');
    await page.waitForFunction(() => !document.querySelector('[data-role=login-form] button[type=submit]').disabled);
    assert.match(await err.textContent(), /server is not available/);
    // the same in Korean, switched on the sign-in screen
    await page.click('.lang-btn[data-lang=ko]');
    assert.match(await err.textContent(), /서버를 사용할 수 없습니다/);
    assert.equal(await page.textContent('h1.auth-title'), '로그인');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('language: Korean browsers start in Korean, the choice is remembered across reloads', async () => {
  const b = await openBrowser({ locale: 'ko-KR' });
  try {
    const { page } = b;
    await page.goto(S.base + '/');
    await page.waitForSelector('[data-view=login]');
    assert.equal(await page.textContent('h1.auth-title'), '로그인');
    assert.equal(await page.getAttribute('html', 'lang'), 'ko');
    assert.equal(await page.getAttribute('.lang-btn[data-lang=ko]', 'aria-pressed'), 'true');
    await page.fill('#login-username', 'kept');
    await page.click('.lang-btn[data-lang=en]');
    assert.equal(await page.textContent('h1.auth-title'), 'Sign in');
    assert.equal(await page.inputValue('#login-username'), 'kept', 'switching keeps what was typed');
    await page.reload();
    await page.waitForSelector('[data-view=login]');
    assert.equal(await page.textContent('h1.auth-title'), 'Sign in');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
  } finally {
    await b.close();
  }
});

test('phone size (390x844): the sign-in screens of both portals have no horizontal scroll', async () => {
  const b = await openBrowser({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
  try {
    const { page } = b;
    for (const [url, shot] of [['/', 'phone-login-user'], ['/admin/', 'phone-login-admin']]) {
      await page.goto(S.base + url);
      await page.waitForSelector('[data-view=login]');
      assert.equal(await horizontalOverflow(page), 0, url + ' scrolls sideways');
      const box = await page.locator('[data-role=login-form] button[type=submit]').boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 390, 'the sign-in button fits the screen');
      assert.ok(await page.locator('#login-username').isVisible());
      await screenshot(page, shot);
    }
    await page.click('.lang-btn[data-lang=ko]');
    assert.equal(await horizontalOverflow(page), 0, 'Korean text fits too');
    await screenshot(page, 'phone-login-admin-ko');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
