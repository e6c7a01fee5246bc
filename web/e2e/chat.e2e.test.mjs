// End-to-end: the real server binary + the embedded web client in headless Chromium.
//
//   npm run test:e2e        (SOCKET_HUB_BIN overrides ../target/debug/socket-hub,
//                            CHROMIUM_PATH overrides /usr/bin/chromium)
//
// Two users in two browser contexts (B on a phone-sized screen): register, private room
// with an access code, messages both ways, presence, typing, then B loses the network
// while A keeps writing; back online, B sees every message exactly once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, '..');
const BIN = resolve(webDir, process.env.SOCKET_HUB_BIN ?? '../target/debug/socket-hub');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(webDir, 'test-results');
const T = 30_000; // generous: a busy 2-core machine

let server;
let serverLog = '';
let dataDir;
let base;
let browser;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** The page must fit the viewport's width: nothing pushed off to the side. */
async function assertNoHorizontalOverflow(page, label) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  assert.ok(scroll <= width, `${label}: page is ${scroll}px wide in a ${width}px viewport`);
}

async function waitReady(url, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`server exited (${server.exitCode}):\n${serverLog}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100)); // polling interval, not a wait for an event
  }
  throw new Error(`server not ready: ${last}\n${serverLog}`);
}

before(async () => {
  assert.ok(existsSync(BIN), `server binary not found at ${BIN}; run \`cargo build -p socket-hub\` first`);
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}; apt-get install -y chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'socket-hub-e2e-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
  await waitReady(base, 60_000);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const rand = () => Math.random().toString(36).slice(2, 8);

async function register(page, username, password) {
  await page.goto(base + '/');
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T });
  await waitConn(page, 'Online');
}

async function waitConn(page, text) {
  await page.locator('[data-testid=connection-status]', { hasText: text }).waitFor({ timeout: T });
}

/** Waits until exactly `n` messages in the DOM have this exact content. */
async function waitMessageCount(page, content, n) {
  await page.waitForFunction(
    ([c, count]) =>
      [...document.querySelectorAll('[data-testid=message] .content')].filter((e) => e.textContent === c).length ===
      count,
    [content, n],
    { timeout: T },
  );
}

async function countMessages(page, content) {
  return page.$$eval('[data-testid=message] .content', (els, c) => els.filter((e) => e.textContent === c).length, content);
}

async function sendMessage(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

test('two users chat in a private room, with presence, typing and an offline gap', { timeout: 240_000 }, async () => {
  const ctxA = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const ctxB = await browser.newContext({ viewport: { width: 390, height: 780 }, hasTouch: true });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  const errors = [];
  for (const [name, p] of [
    ['A', a],
    ['B', b],
  ]) {
    p.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  }
  try {
    const userA = `alice_${rand()}`;
    const userB = `bob_${rand()}`;
    await register(a, userA, 'correct horse A');
    await register(b, userB, 'correct horse B');

    // A creates a private room with an access code.
    const roomName = `secret-${rand()}`;
    await a.getByRole('button', { name: 'New room' }).click();
    await a.getByLabel('Room name').fill(roomName);
    await a.getByLabel('Private room', { exact: true }).check();
    await a.getByLabel('Access code', { exact: true }).fill('open-sesame');
    await a.getByRole('button', { name: 'Create room' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    const roomId = (await a.getByTestId('room-id').textContent()).trim();
    assert.match(roomId, /^\d+$/);

    // B joins it by id + code; a wrong code is explained in words.
    await b.getByRole('button', { name: 'Join private room' }).click();
    await b.getByLabel('Room ID').fill(roomId);
    await b.getByLabel('Access code', { exact: true }).fill('wrong-code');
    await b.getByRole('button', { name: 'Join room' }).click();
    await b.getByRole('alert').filter({ hasText: 'access code is wrong' }).waitFor({ timeout: T });
    await b.getByLabel('Access code', { exact: true }).fill('open-sesame');
    await b.getByRole('button', { name: 'Join room' }).click();
    await b.waitForURL(new RegExp(`/rooms/${roomId}$`), { timeout: T });
    await b.getByRole('heading', { name: roomName }).waitFor({ timeout: T });

    // Presence: each sees the other online.
    await a.getByTestId('online-user').filter({ hasText: userB }).waitFor({ timeout: T });
    await b.getByTestId('online-user').filter({ hasText: userA }).waitFor({ timeout: T });

    // Messages both ways.
    await sendMessage(a, 'Hello Bob, this is Alice');
    await waitMessageCount(b, 'Hello Bob, this is Alice', 1);
    await sendMessage(b, 'Hi Alice! Bob here.');
    await waitMessageCount(a, 'Hi Alice! Bob here.', 1);
    await a.locator('[data-testid=message][data-status=sent]', { hasText: 'Hello Bob, this is Alice' }).waitFor({ timeout: T });

    // Typing, both ways.
    await a.getByLabel('Message', { exact: true }).pressSequentially('let me think about that one', { delay: 100 });
    await b.getByTestId('typing').filter({ hasText: `${userA} is typing` }).waitFor({ timeout: T });
    await b.getByLabel('Message', { exact: true }).pressSequentially('me too, thinking out loud', { delay: 100 });
    await a.getByTestId('typing').filter({ hasText: `${userB} is typing` }).waitFor({ timeout: T });
    await a.getByLabel('Message', { exact: true }).fill('');
    await b.getByLabel('Message', { exact: true }).fill('');
    await a.screenshot({ path: join(ARTIFACTS, '01-chat-desktop-A.png') });
    await b.screenshot({ path: join(ARTIFACTS, '02-chat-phone-B.png') });

    // B loses the network; the app notices and says so.
    await ctxB.setOffline(true);
    await b.locator('[data-testid=connection-status]', { hasText: /Offline|Reconnecting/ }).waitFor({ timeout: T });

    // Meanwhile A writes; B writes too (stays pending until the network is back).
    const missed = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
    for (const text of missed) {
      await sendMessage(a, text);
      await a.locator('[data-testid=message][data-status=sent]', { hasText: text }).waitFor({ timeout: T });
    }
    await sendMessage(b, 'written offline by Bob');
    await b.locator('[data-testid=message][data-status=sending]', { hasText: 'written offline by Bob' }).waitFor({ timeout: T });
    await b.screenshot({ path: join(ARTIFACTS, '03-phone-B-offline.png') });
    await assertNoHorizontalOverflow(b, 'phone, offline');

    // Back online: resume from the last seen seq; nothing missed, nothing doubled.
    await ctxB.setOffline(false);
    await waitConn(b, 'Online');
    for (const text of missed) await waitMessageCount(b, text, 1);
    await b.locator('[data-testid=message][data-status=sent]', { hasText: 'written offline by Bob' }).waitFor({ timeout: T });
    await waitMessageCount(a, 'written offline by Bob', 1);
    await a.getByTestId('online-user').filter({ hasText: userB }).waitFor({ timeout: T });

    // A final live message after the reconnect proves the stream continues; by the
    // time it shows, any duplicate replay would have been rendered too.
    await sendMessage(a, 'welcome back');
    await waitMessageCount(b, 'welcome back', 1);
    for (const text of missed) assert.equal(await countMessages(b, text), 1, `"${text}" shown exactly once`);
    assert.equal(await countMessages(b, 'written offline by Bob'), 1);
    assert.equal(await countMessages(a, 'written offline by Bob'), 1);
    const seqs = await b.$$eval('[data-testid=message][data-seq]', (els) => els.map((e) => e.getAttribute('data-seq')));
    assert.equal(new Set(seqs).size, seqs.length, 'no seq rendered twice');
    assert.equal(seqs.length, 7, `B shows 7 messages, got ${seqs.join(',')}`);

    await a.screenshot({ path: join(ARTIFACTS, '04-chat-desktop-A-final.png') });
    await b.screenshot({ path: join(ARTIFACTS, '05-chat-phone-B-final.png') });
    await assertNoHorizontalOverflow(b, 'phone, online');
    assert.deepEqual(errors, [], 'no uncaught page errors');
  } catch (err) {
    await a.screenshot({ path: join(ARTIFACTS, 'failure-A.png') }).catch(() => {});
    await b.screenshot({ path: join(ARTIFACTS, 'failure-B.png') }).catch(() => {});
    throw err;
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('deep links serve the app; API paths stay JSON', { timeout: 60_000 }, async () => {
  const deep = await fetch(`${base}/rooms/12345`);
  assert.equal(deep.status, 200);
  assert.match(await deep.text(), /<div id="root">/);
  const api = await fetch(`${base}/api/v1/nope`);
  assert.equal(api.status, 404);
  assert.match(api.headers.get('content-type') ?? '', /problem\+json/);
  const html = await (await fetch(`${base}/`)).text();
  const asset = /\/assets\/[^"]+\.js/.exec(html)?.[0];
  assert.ok(asset, 'index.html references a hashed bundle');
  const res = await fetch(base + asset);
  assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
});
