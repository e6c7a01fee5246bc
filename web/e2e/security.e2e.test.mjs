// End-to-end browser hardening (issue 9 items 7 and 8), in Chromium against the real
// server: the security headers are sent, the app works under its strict CSP (Chromium
// reports no violation), the refresh token lives only in an HttpOnly cookie (never in
// localStorage, IndexedDB or a response body), a reload keeps the session through that
// cookie, and a page of another origin can neither open the WebSocket nor spend the cookie.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ARTIFACTS, T, launchBrowser, rand, register, sendMessage, startServer, waitConn, waitMessageCount } from './support.mjs';

const CSP =
  "default-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
const COOKIE = 'socket_hub_refresh';
const SESSION_KEY = 'socket-hub.session';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/**
 * A browser context that records every CSP violation its pages report, both as
 * `securitypolicyviolation` events and as console messages, plus uncaught errors.
 */
async function watchedContext() {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}`),
    );
  });
  const problems = [];
  ctx.on('console', (msg) => {
    if (/content security policy|refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  ctx.on('weberror', (e) => problems.push(`page error: ${e.error().message}`));
  const violations = async (page) => [...problems, ...(await page.evaluate(() => window.__csp))];
  return { ctx, violations };
}

/** The refresh cookie of the context, or undefined. */
async function refreshCookie(ctx) {
  return (await ctx.cookies()).find((c) => c.name === COOKIE);
}

/** Everything the page's scripts can read of the stored session: localStorage and the IndexedDB mirror. */
function scriptVisibleStorage(page) {
  return page.evaluate(async (key) => {
    const local = JSON.stringify(Object.entries(localStorage));
    const idb = await new Promise((ok) => {
      const req = indexedDB.open('socket-hub', 1);
      req.onupgradeneeded = () => req.result.createObjectStore('session');
      req.onerror = () => ok('');
      req.onsuccess = () => {
        const get = req.result.transaction('session').objectStore('session').get(key);
        get.onsuccess = () => ok(String(get.result ?? ''));
        get.onerror = () => ok('');
      };
    });
    return { local, idb, cookies: document.cookie };
  }, SESSION_KEY);
}

test('the app is sent with strict security headers and works under its CSP', { timeout: 120_000 }, async () => {
  const { ctx, violations } = await watchedContext();
  const page = await ctx.newPage();
  const sessionBodies = [];
  page.on('response', async (res) => {
    if (/\/api\/v1\/auth\/(register|login|refresh)$/.test(res.url())) {
      sessionBodies.push({ url: res.url(), body: await res.text().catch(() => ''), cache: res.headers()['cache-control'] });
    }
  });
  try {
    const res = await page.goto(server.base + '/');
    const headers = res.headers();
    assert.equal(headers['content-security-policy'], CSP);
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['referrer-policy'], 'no-referrer');
    // API responses (a problem body here) carry them too.
    const api = await fetch(`${server.base}/api/v1/users/me`);
    assert.equal(api.status, 401);
    assert.equal(api.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(api.headers.get('content-security-policy'), CSP);

    // Use the app: register, create a room, talk over the WebSocket (connect-src 'self').
    const user = `csp_${rand()}`;
    await register(page, server.base, user, 'correct horse csp');
    await page.getByRole('button', { name: 'New room' }).click();
    await page.getByLabel('Room name').fill(`csp-${rand()}`);
    await page.getByRole('button', { name: 'Create room' }).click();
    await page.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    await sendMessage(page, 'hello under a strict CSP');
    await waitMessageCount(page, 'hello under a strict CSP', 1);
    await waitConn(page, 'Online');
    assert.deepEqual(await violations(page), [], 'no CSP violation, no page error');

    // The refresh token: an HttpOnly, SameSite=Strict cookie scoped to the auth endpoints...
    const cookie = await refreshCookie(ctx);
    assert.ok(cookie, 'the refresh cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/api/v1/auth');
    assert.equal(cookie.secure, false, 'plain http here; Secure over https');
    // ...that no script can read, and that is nowhere in script-visible storage or bodies.
    const seen = await scriptVisibleStorage(page);
    assert.doesNotMatch(seen.cookies, new RegExp(COOKIE));
    for (const [where, text] of [
      ['localStorage', seen.local],
      ['IndexedDB', seen.idb],
    ]) {
      assert.ok(!text.includes(cookie.value), `${where} holds the refresh token`);
      assert.doesNotMatch(text, /refresh/i, `${where}: ${text}`);
    }
    assert.ok(seen.local.includes('accessToken'), 'the session (access token) is stored');
    assert.ok(sessionBodies.length >= 1);
    for (const { url, body, cache } of sessionBodies) {
      assert.doesNotMatch(body, /refresh_token/, `${url} shows no refresh token`);
      assert.ok(!body.includes(cookie.value), url);
      assert.equal(cache, 'no-store', url);
    }
    await page.screenshot({ path: join(ARTIFACTS, '08-csp.png') });
  } catch (err) {
    await page.screenshot({ path: join(ARTIFACTS, 'failure-csp.png') }).catch(() => {});
    throw err;
  } finally {
    await ctx.close();
  }
});

test('a reload keeps the session through the refresh cookie; logout clears it', { timeout: 120_000 }, async () => {
  const { ctx, violations } = await watchedContext();
  const page = await ctx.newPage();
  try {
    const user = `reload_${rand()}`;
    await register(page, server.base, user, 'correct horse reload');
    const before = await refreshCookie(ctx);
    assert.ok(before, 'cookie set at registration');

    // Make the stored access token useless (as after a night away): only the cookie can
    // bring the session back.
    await page.evaluate(async (key) => {
      const s = JSON.parse(localStorage.getItem(key));
      s.accessToken = 'stale.stale.stale';
      s.expiresAt = Date.now() - 60_000;
      const raw = JSON.stringify(s);
      localStorage.setItem(key, raw);
      await new Promise((ok, fail) => {
        const req = indexedDB.open('socket-hub', 1);
        req.onerror = fail;
        req.onsuccess = () => {
          const tx = req.result.transaction('session', 'readwrite');
          tx.objectStore('session').put(raw, key);
          tx.oncomplete = ok;
          tx.onerror = fail;
        };
      });
    }, SESSION_KEY);

    const refreshed = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/refresh'), { timeout: T });
    await page.reload();
    const res = await refreshed;
    assert.equal(res.status(), 200);
    const req = res.request();
    assert.equal(req.postData(), null, 'no token in the request body');
    const sent = await req.allHeaders();
    assert.equal(sent['x-auth-transport'], 'cookie');
    assert.ok((sent.cookie ?? '').includes(`${COOKIE}=${before.value}`), 'the browser sent the cookie');
    assert.doesNotMatch(await res.text(), /refresh_token/);

    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T });
    await waitConn(page, 'Online');
    assert.ok(await page.getByText(user).first().isVisible(), 'still signed in as the same user');
    const after = await refreshCookie(ctx);
    assert.ok(after && after.value !== before.value, 'the refresh rotated the cookie');
    const stored = await scriptVisibleStorage(page);
    assert.doesNotMatch(stored.local, /refresh/i);

    // Logging out revokes the session and clears the cookie; a reload shows the login screen.
    // The page signs out locally at once and tells the server after (clearing the outbox
    // and cached API answers first), so the cookie is gone once that answer is in.
    const loggedOut = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/logout'), { timeout: T });
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: T });
    await page.waitForFunction(() => localStorage.getItem('socket-hub.session') === null, null, { timeout: T });
    assert.equal((await loggedOut).status(), 204);
    assert.equal(await refreshCookie(ctx), undefined, 'logout cleared the cookie');
    await page.reload();
    await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: T });
    // The old cookie value is dead on the server too.
    const replay = await fetch(`${server.base}/api/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'X-Auth-Transport': 'cookie', Cookie: `${COOKIE}=${after.value}` },
    });
    assert.equal(replay.status, 401);
    assert.deepEqual(await violations(page), []);
  } catch (err) {
    await page.screenshot({ path: join(ARTIFACTS, 'failure-reload.png') }).catch(() => {});
    throw err;
  } finally {
    await ctx.close();
  }
});

test('a page of another origin can neither open the WebSocket nor spend the cookie', { timeout: 120_000 }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  try {
    await register(page, server.base, `victim_${rand()}`, 'correct horse victim');
    const cookie = await refreshCookie(ctx);
    assert.ok(cookie);
    const wsUrl = server.base.replace(/^http/, 'ws') + '/ws';
    const openSocket = (url) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url, ['socket-hub.v1']);
        ws.onopen = () => {
          resolve('open');
          ws.close();
        };
        ws.onerror = () => resolve('refused');
      });

    // The app's own origin may open it (no token yet: it would authenticate next).
    assert.equal(await page.evaluate(openSocket, wsUrl), 'open');

    // Another site in the same browser (so with the same cookies): `localhost` is another
    // origin and another site than `127.0.0.1`, and, being loopback too, Chromium's
    // Private Network Access rules do not get in the way: only the server refuses.
    const evilOrigin = server.base.replace('127.0.0.1', 'localhost');
    await ctx.route(`${evilOrigin}/**`, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>evil</title><p>evil</p>' }),
    );
    const evil = await ctx.newPage();
    await evil.goto(`${evilOrigin}/evil`);
    assert.equal(await evil.evaluate(openSocket, wsUrl), 'refused', 'cross-origin handshake refused (403)');

    // It cannot make the browser spend the refresh cookie either: the custom header needs
    // a CORS preflight the server never grants, and without it the cookie (SameSite=Strict)
    // is not even sent.
    const attempts = await evil.evaluate(async (base) => {
      const out = [];
      try {
        const r = await fetch(`${base}/api/v1/auth/refresh`, {
          method: 'POST',
          credentials: 'include',
          headers: { 'X-Auth-Transport': 'cookie' },
        });
        out.push(`cors ${r.status}`);
      } catch {
        out.push('cors blocked');
      }
      try {
        const r = await fetch(`${base}/api/v1/auth/refresh`, { method: 'POST', mode: 'no-cors', credentials: 'include' });
        out.push(`no-cors ${r.type}`);
      } catch {
        // Chromium's opaque-response blocking drops the (nosniff JSON) answer entirely.
        out.push('no-cors opaque');
      }
      return out;
    }, server.base);
    assert.deepEqual(attempts, ['cors blocked', 'no-cors opaque']);
    const still = await refreshCookie(ctx);
    assert.equal(still?.value, cookie.value, 'the cookie was not rotated by the other site');
    // And the victim's session still works.
    await page.reload();
    await waitConn(page, 'Online');
  } finally {
    await ctx.close();
  }
});
