// End-to-end: one user in two tabs of one browser (one context: shared localStorage and cookies),
// against a server whose access tokens live 2 s, so the tabs refresh every second or so.
// Refresh tokens are single-use; before the tabs coordinated, both spent the same one,
// the server took that for theft, revoked the family and both tabs were logged out.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ARTIFACTS, T, launchBrowser, rand, register, sendMessage, startServer, waitConn, waitMessageCount } from './support.mjs';

const ROUNDS = 6;

let server;
let browser;

before(async () => {
  server = await startServer(['--access-ttl-secs', '2']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/**
 * Rejects as soon as `page` shows the login screen, so a logout fails the test at once
 * and says so (instead of as a timeout of whatever step was waiting). Settles quietly
 * when the page closes.
 */
function failOnLogout(page, label) {
  return page
    .getByRole('button', { name: 'Log in' })
    .waitFor({ state: 'visible', timeout: 0 })
    .then(
      () => Promise.reject(new Error(`${label} was logged out`)),
      () => new Promise(() => {}), // page closed: never settles, never fails
    );
}

/**
 * Which issue of the session the tabs share (access token and expiry, from
 * localStorage; the refresh token itself is an HttpOnly cookie), or null when logged out.
 */
const storedVersion = (page) =>
  page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('socket-hub.session') ?? 'null');
    return s ? `${s.accessToken}@${s.expiresAt}` : null;
  });

test('two tabs of one user stay logged in across many token refreshes', { timeout: 180_000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  // Every refresh request either tab makes, and how the server answered it.
  const spent = [];
  const answers = [];
  ctx.on('request', async (req) => {
    if (req.method() === 'POST' && req.url().endsWith('/api/v1/auth/refresh')) {
      // The refresh token is the cookie the browser attached. A refresh still in flight
      // when the context closes has no headers to read any more (and counts for nothing).
      const headers = await req.allHeaders().catch(() => null);
      if (!headers) return;
      const cookie = headers.cookie ?? '';
      spent.push(/socket_hub_refresh=([^;]+)/.exec(cookie)?.[1] ?? 'none');
    }
  });
  ctx.on('response', (res) => {
    if (res.request().method() === 'POST' && res.url().endsWith('/api/v1/auth/refresh')) answers.push(res.status());
  });
  const one = await ctx.newPage();
  const errors = [];
  one.on('pageerror', (e) => errors.push(`tab 1: ${e.message}`));
  let two;
  try {
    const user = `tabs_${rand()}`;
    await register(one, server.base, user, 'correct horse tabs');
    const roomName = `tabs-${rand()}`;
    await one.getByRole('button', { name: 'New room' }).click();
    await one.getByLabel('Room name').fill(roomName);
    await one.getByRole('button', { name: 'Create room' }).click();
    await one.waitForURL(/\/rooms\/\d+$/, { timeout: T });

    // The second tab opens the same room, signed in by the stored session.
    two = await ctx.newPage();
    two.on('pageerror', (e) => errors.push(`tab 2: ${e.message}`));
    await two.goto(one.url());
    await two.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    await waitConn(two, 'Online');

    const loggedOut = Promise.race([failOnLogout(one, 'tab 1'), failOnLogout(two, 'tab 2')]);
    loggedOut.catch(() => {}); // observed through `step`
    const step = (promise) => Promise.race([promise, loggedOut]);

    const seenTokens = new Set();
    for (let round = 0; round < ROUNDS; round++) {
      const before = await storedVersion(one);
      assert.ok(before, `round ${round}: still logged in`);
      seenTokens.add(before);
      await step(sendMessage(one, `tab one, round ${round}`));
      await step(waitMessageCount(two, `tab one, round ${round}`, 1));
      await step(sendMessage(two, `tab two, round ${round}`));
      await step(waitMessageCount(one, `tab two, round ${round}`, 1));
      // Wait for the next refresh (by either tab) before the next round.
      await step(
        one.waitForFunction(
          (prev) => {
            const s = JSON.parse(localStorage.getItem('socket-hub.session') ?? 'null');
            return s !== null && `${s.accessToken}@${s.expiresAt}` !== prev;
          },
          before,
          { timeout: T },
        ),
      );
    }
    seenTokens.add(await storedVersion(one));

    // Both tabs are still signed in and connected, and can still talk.
    for (const [label, page] of [
      ['tab 1', one],
      ['tab 2', two],
    ]) {
      await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T });
      await waitConn(page, 'Online');
      assert.equal(await page.getByRole('button', { name: 'Create an account' }).count(), 0, `${label} was logged out`);
    }
    await sendMessage(two, 'still here');
    await waitMessageCount(one, 'still here', 1);

    assert.ok(seenTokens.size > ROUNDS, `the session was refreshed at least ${ROUNDS} times (${seenTokens.size - 1})`);
    assert.ok(!spent.includes('none'), 'every refresh carried the cookie');
    assert.equal(new Set(spent).size, spent.length, `no refresh token was spent twice: ${spent.length} refreshes`);
    assert.deepEqual(
      answers.filter((s) => s !== 200),
      [],
      'every refresh succeeded',
    );
    assert.doesNotMatch(server.log(), /reused/, 'the server saw no refresh token reuse');
    assert.deepEqual(errors, [], 'no uncaught page errors');
    await one.screenshot({ path: join(ARTIFACTS, '06-tabs-one.png') });
    await two.screenshot({ path: join(ARTIFACTS, '07-tabs-two.png') });
  } catch (err) {
    await one.screenshot({ path: join(ARTIFACTS, 'failure-tabs-one.png') }).catch(() => {});
    await two?.screenshot({ path: join(ARTIFACTS, 'failure-tabs-two.png') }).catch(() => {});
    throw err;
  } finally {
    await ctx.close();
  }
});
