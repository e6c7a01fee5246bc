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
import { join } from 'node:path';
import {
  ARTIFACTS,
  T,
  assertNoHorizontalOverflow,
  countMessages,
  launchBrowser,
  rand,
  register as registerAt,
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

const register = (page, username, password) => registerAt(page, base, username, password);

/** The signed-in user's name is on screen, whole, inside the viewport. */
async function assertNameShown(page, username, label) {
  const me = page.getByTestId('me');
  await me.filter({ hasText: username }).waitFor({ state: 'visible', timeout: T });
  const box = await me.boundingBox();
  const width = page.viewportSize().width;
  assert.ok(box && box.width > 0 && box.x >= 0 && box.x + box.width <= width, `${label}: name box ${JSON.stringify(box)} in ${width}px`);
  const cut = await me.evaluate((el) => el.scrollWidth > el.clientWidth);
  assert.equal(cut, false, `${label}: "${username}" is cut off`);
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
    // Who is signed in shows on the phone too, not only on the desktop.
    await assertNameShown(a, userA, 'desktop');
    await assertNameShown(b, userB, 'phone');

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
    await assertNameShown(b, userB, 'phone, offline'); // the long offline state does not squeeze it out

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
    await assertNameShown(b, userB, 'phone, in a room');
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
