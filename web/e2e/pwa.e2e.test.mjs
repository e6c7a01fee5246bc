// End-to-end: the installable app. The real server binary + headless Chromium.
//
// 1. Installability as Chromium (and Lighthouse) judge it: a valid manifest with PNG icons
//    of the sizes it claims (a maskable one among them), a service worker at the root
//    that is activated and controls the page, the headers the server serves them with.
// 2. Offline: B's link goes half-dead (a send reaches the server, its ack is lost), then
//    the network goes away (a link the test cuts, plus the context's offline mode); B
//    writes another message and reloads: the shell, the room and its history come from
//    the service worker, both messages from the outbox (IndexedDB), shown as waiting.
//    Back online both are sent with their client_msg_id, and each arrives exactly once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  ARTIFACTS,
  CHROMIUM,
  T,
  countMessages,
  launchBrowser,
  rand,
  register,
  sendMessage,
  startServer,
  waitConn,
  waitMessageCount,
} from './support.mjs';

let server;
let base;
let browser;

before(async () => {
  server = await startServer();
  base = server.base;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/**
 * A TCP link from a browser to the server that the test can cut like a lost network:
 * open connections (the WebSocket, keep-alive HTTP) are reset and new ones refused, for
 * the service worker's fetches as well as the page's (the context's offline mode does
 * not reach a service worker in every Chromium). `mute()` first drops only what the
 * server says: a send gets through, its ack never comes back.
 */
async function cuttableLink(upstream) {
  const { hostname, port } = new URL(upstream);
  let cut = false;
  let muted = false;
  const open = new Set();
  const link = createServer((down) => {
    if (cut) {
      down.destroy();
      return;
    }
    const up = connect(Number(port), hostname);
    for (const s of [down, up]) {
      open.add(s);
      s.on('close', () => open.delete(s));
    }
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.pipe(up);
    up.on('data', (bytes) => muted || down.write(bytes));
    up.on('end', () => down.end());
  });
  await new Promise((ok, fail) => {
    link.on('error', fail);
    link.listen(0, '127.0.0.1', ok);
  });
  return {
    url: `http://127.0.0.1:${link.address().port}`,
    mute() {
      muted = true;
    },
    cut() {
      cut = true;
      for (const s of open) s.destroy();
    },
    restore() {
      cut = muted = false;
    },
    close() {
      for (const s of open) s.destroy();
      return new Promise((ok) => link.close(ok));
    },
  };
}

/** The page is controlled by an activated service worker; its registration's facts. */
async function waitControlled(page) {
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: T });
  return page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    const worker = reg.active;
    if (worker && worker.state !== 'activated')
      await new Promise((ok) => worker.addEventListener('statechange', () => worker.state === 'activated' && ok()));
    return { scope: reg.scope, script: worker?.scriptURL, state: worker?.state };
  });
}

test('installable: a valid manifest with icons, a service worker controlling the page', { timeout: 120_000 }, async () => {
  // A browser profile on disk: Chromium never offers to install from an incognito-like
  // context (what `browser.newContext()` gives), so its verdict needs a real profile.
  const profile = mkdtempSync(join(tmpdir(), 'socket-hub-pwa-profile-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(`${base}/`);
    const sw = await waitControlled(page);
    assert.deepEqual(sw, { scope: `${base}/`, script: `${base}/sw.js`, state: 'activated' });

    // The manifest the page links, and every icon it names, fetched from the page.
    const found = await page.evaluate(async () => {
      const link = document.querySelector('link[rel=manifest]');
      const res = await fetch(link.href);
      const manifest = await res.json();
      /** Width and height from a PNG's IHDR chunk; null when it is no PNG. */
      const pngSize = async (url) => {
        const r = await fetch(url);
        const bytes = new DataView(await r.arrayBuffer());
        const png = bytes.byteLength > 24 && bytes.getUint32(0) === 0x89504e47 && bytes.getUint32(12) === 0x49484452;
        return { status: r.status, type: r.headers.get('content-type'), size: png ? `${bytes.getUint32(16)}x${bytes.getUint32(20)}` : null };
      };
      const icons = [];
      for (const icon of manifest.icons) icons.push({ ...icon, got: await pngSize(new URL(icon.src, link.href)) });
      const touch = document.querySelector('link[rel=apple-touch-icon]');
      return {
        manifest,
        manifestType: res.headers.get('content-type'),
        themeColor: document.querySelector('meta[name=theme-color]')?.content,
        icons,
        touch: touch ? await pngSize(touch.href) : null,
      };
    });
    const m = found.manifest;
    assert.match(found.manifestType ?? '', /^application\/manifest\+json/);
    assert.equal(m.name, 'Socket-Hub');
    assert.ok(m.short_name && m.short_name.length <= 12, `short_name "${m.short_name}" fits under an icon`);
    assert.equal(m.start_url, '/');
    assert.equal(m.scope, '/');
    assert.equal(m.display, 'standalone');
    assert.equal(m.theme_color, found.themeColor, 'manifest and page agree on the theme colour');
    assert.match(m.background_color, /^#[0-9a-f]{6}$/i);
    for (const icon of found.icons) {
      assert.equal(icon.got.status, 200, icon.src);
      assert.equal(icon.got.type, 'image/png', icon.src);
      assert.equal(icon.got.size, icon.sizes, `${icon.src} is as large as it says`);
    }
    const has = (sizes, purpose) => found.icons.some((i) => i.sizes === sizes && (i.purpose ?? 'any').split(' ').includes(purpose));
    assert.ok(has('192x192', 'any'), 'a 192 px icon');
    assert.ok(has('512x512', 'any'), 'a 512 px icon');
    assert.ok(has('512x512', 'maskable'), 'a maskable icon');
    assert.deepEqual(found.touch, { status: 200, type: 'image/png', size: '180x180' });

    // Chromium's own verdict, the one behind its install prompt and Lighthouse.
    const cdp = await ctx.newCDPSession(page);
    const parsed = await cdp.send('Page.getAppManifest');
    assert.deepEqual(parsed.errors, [], 'the manifest parses without errors');
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(
      installabilityErrors.map((e) => e.errorId),
      [],
      `installable: ${JSON.stringify(installabilityErrors)}`,
    );

    // How the server serves them: the worker and the manifest revalidated on every load.
    const worker = await fetch(`${base}/sw.js`);
    assert.equal(worker.status, 200);
    assert.equal(worker.headers.get('cache-control'), 'no-cache');
    assert.match(worker.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal((await fetch(`${base}/manifest.webmanifest`)).headers.get('cache-control'), 'no-cache');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test('offline: the shell and history load from the worker, the outbox sends once when back', { timeout: 240_000 }, async () => {
  const link = await cuttableLink(base);
  const ctxA = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const ctxB = await browser.newContext({ viewport: { width: 390, height: 780 }, hasTouch: true });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  const errors = [];
  a.on('pageerror', (e) => errors.push(`A: ${e.message}`));
  b.on('pageerror', (e) => errors.push(`B: ${e.message}`));
  try {
    await register(a, base, `ada_${rand()}`, 'correct horse A');
    await register(b, link.url, `bob_${rand()}`, 'correct horse B');

    const roomName = `offline-${rand()}`;
    await a.getByRole('button', { name: 'New room' }).click();
    await a.getByLabel('Room name').fill(roomName);
    await a.getByRole('button', { name: 'Create room' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    const roomId = (await a.getByTestId('room-id').textContent()).trim();
    await b.goto(`${link.url}/rooms/${roomId}`);
    await b.getByRole('button', { name: 'Join room' }).click();
    await b.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    const earlier = `before the outage ${rand()}`;
    await sendMessage(a, earlier);
    await waitMessageCount(b, earlier, 1);

    // The worker controls B's page from now on; the next visit goes through it, and it
    // keeps the answers the app starts from (room lists, this room's newest history).
    await waitControlled(b);
    await b.reload();
    await waitConn(b, 'Online');
    await waitMessageCount(b, earlier, 1);
    await b.waitForFunction(
      async (id) => {
        for (const name of await caches.keys()) {
          if (!name.startsWith('socket-hub-api-')) continue;
          const urls = (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
          if (urls.includes(`/api/v1/rooms/${id}/messages`) && urls.includes('/api/v1/rooms/joined')) return true;
        }
        return false;
      },
      roomId,
      { timeout: T, polling: 100 },
    );

    // The link goes half-dead: B's send reaches the server (A gets it), its ack does not
    // come back, so B still has it in the outbox when the network goes away for good.
    link.mute();
    const unconfirmed = `sent, never acked ${rand()}`;
    await sendMessage(b, unconfirmed);
    await waitMessageCount(a, unconfirmed, 1);
    await b.locator('[data-testid=message][data-status=sending]', { hasText: unconfirmed }).waitFor({ timeout: T });

    // The network goes away.
    link.cut();
    await ctxB.setOffline(true);
    await b.locator('[data-testid=connection-status]', { hasText: /Offline|Reconnecting/ }).waitFor({ timeout: T });
    const queued = `written offline ${rand()}`;
    await sendMessage(b, queued);
    const waiting = b.locator('[data-testid=message][data-status=sending]', { hasText: queued });
    await waiting.waitFor({ timeout: T });
    await waiting.getByText('Waiting for the network…').waitFor({ timeout: T });
    const meanwhile = `while B is away ${rand()}`;
    await sendMessage(a, meanwhile);
    await a.locator('[data-testid=message][data-status=sent]', { hasText: meanwhile }).waitFor({ timeout: T });

    // Reload, still offline: the shell, the room and its history from the worker, the
    // unsent message from the outbox.
    const reloaded = await b.reload();
    assert.ok(reloaded?.fromServiceWorker(), 'the page came from the service worker');
    await b.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    await waitMessageCount(b, earlier, 1);
    await waiting.waitFor({ timeout: T });
    await b.locator('[data-testid=message][data-status=sending]', { hasText: unconfirmed }).waitFor({ timeout: T });
    await b.locator('[data-testid=connection-status]', { hasText: /Offline|Reconnecting/ }).waitFor({ timeout: T });
    await b.screenshot({ path: join(ARTIFACTS, 'pwa-01-offline-reload-B.png') });
    assert.equal(await countMessages(a, queued), 0, 'nothing reached A while B was offline');

    // Back online: resumed, and the outbox sent with the same client_msg_id.
    link.restore();
    await ctxB.setOffline(false);
    await waitConn(b, 'Online');
    await b.locator('[data-testid=message][data-status=sent]', { hasText: queued }).waitFor({ timeout: T });
    await b.locator('[data-testid=message][data-status=sent]', { hasText: unconfirmed }).waitFor({ timeout: T });
    await waitMessageCount(a, queued, 1);
    await waitMessageCount(b, meanwhile, 1);
    // A later message proves the stream went on: a duplicate would have shown by then.
    const later = `after the outage ${rand()}`;
    await sendMessage(b, later);
    await waitMessageCount(a, later, 1);
    for (const text of [queued, unconfirmed]) {
      assert.equal(await countMessages(a, text), 1, `A sees "${text}" exactly once`);
      assert.equal(await countMessages(b, text), 1, `B sees "${text}" exactly once`);
    }
    const outboxSize = () =>
      b.evaluate(
        () =>
          new Promise((ok, fail) => {
            const req = indexedDB.open('socket-hub-outbox');
            req.onerror = () => fail(req.error);
            req.onsuccess = () => {
              const db = req.result;
              if (!db.objectStoreNames.contains('sends')) return ok(0);
              const count = db.transaction('sends').objectStore('sends').count();
              count.onsuccess = () => ok(count.result);
              count.onerror = () => fail(count.error);
            };
          }),
      );
    assert.equal(await outboxSize(), 0, 'the outbox is empty once the server confirmed');

    // The server stored it once: fresh history on both sides says so.
    for (const page of [a, b]) {
      await page.reload();
      await waitMessageCount(page, later, 1);
      assert.equal(await countMessages(page, queued), 1);
      assert.equal(await countMessages(page, unconfirmed), 1);
    }
    await b.screenshot({ path: join(ARTIFACTS, 'pwa-02-back-online-B.png') });

    // Logging out forgets the copies of history this browser kept.
    await b.getByRole('button', { name: 'Log out' }).click();
    await b.getByRole('button', { name: 'Create an account' }).waitFor({ timeout: T });
    const left = await b.evaluate(async () => (await caches.keys()).filter((n) => n.startsWith('socket-hub-api-')));
    assert.deepEqual(left, []);
    assert.deepEqual(errors, []);
  } catch (err) {
    await a.screenshot({ path: join(ARTIFACTS, 'pwa-failure-A.png') }).catch(() => {});
    await b.screenshot({ path: join(ARTIFACTS, 'pwa-failure-B.png') }).catch(() => {});
    throw err;
  } finally {
    await ctxA.close();
    await ctxB.close();
    await link.close();
  }
});
