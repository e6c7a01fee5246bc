// End-to-end: reading state and search (issue 11) in headless Chromium against the real
// server. Alice is driven over REST (fast seeding); Bob uses the web client:
// - an unread badge from the server's count, updated live; the "new messages" divider;
//   the room marked read only as far as Bob has actually scrolled; "seen by";
// - search finds an old message (beyond the first history page), shows the match
//   highlighted (markup in it stays text), and opens the room at that message.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ARTIFACTS, T, launchBrowser, rand, sendMessage, startServer, waitConn } from './support.mjs';

let server;
let base;
let browser;

before(async () => {
  // Seeding sends many messages at once: lift the per-user send quota.
  server = await startServer(['--user-send-burst', '1000', '--user-search-burst', '100']);
  base = server.base;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/** One REST call as `token`; the parsed JSON body (or null for 204). */
async function api(token, method, path, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function registerApi(username) {
  const session = await api(null, 'POST', '/auth/register', { username, password: 'correct horse battery' });
  return { token: session.access_token, user: session.user };
}

async function login(page, username) {
  await page.goto(base + '/');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T });
  await waitConn(page, 'Online');
}

/** Bob's read marker in the room, as the server has it. */
async function markerOf(token, roomId) {
  return (await api(token, 'GET', `/rooms/${roomId}`)).last_read_seq;
}

/** Polls the server until `check(marker)` holds (the browser marks read asynchronously). */
async function waitMarker(token, roomId, check, what) {
  const deadline = Date.now() + T;
  let marker;
  while (Date.now() < deadline) {
    marker = await markerOf(token, roomId);
    if (check(marker)) return marker;
    await new Promise((r) => setTimeout(r, 100)); // polling interval, not a wait for an event
  }
  assert.fail(`${what}: marker stayed at ${marker}`);
}

test('unread badge, new-messages divider, read as far as scrolled, seen by', { timeout: 180_000 }, async () => {
  const alice = await registerApi(`alice_${rand()}`);
  const bobName = `bob_${rand()}`;
  const bob = await registerApi(bobName);
  const room = (await api(alice.token, 'POST', '/rooms', { name: `reading-${rand()}` })).id;
  await api(bob.token, 'POST', `/rooms/${room}/join`, {});
  for (let i = 1; i <= 30; i++) await api(alice.token, 'POST', `/rooms/${room}/messages`, { content: `older news ${i}` });

  const ctx = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await login(page, bobName);
    const link = page.locator(`a[href="/rooms/${room}"]`);
    // The server's count, then live: one more from Alice.
    await link.getByTestId('unread').filter({ hasText: /^30$/ }).waitFor({ timeout: T });
    await api(alice.token, 'POST', `/rooms/${room}/messages`, { content: 'one more thing' });
    await link.getByTestId('unread').filter({ hasText: /^31$/ }).waitFor({ timeout: T });

    // Opening the room shows the divider above the first unread message, scrolled to it.
    await link.click();
    // The live message is in the timeline before the history page: until the page is
    // in, the divider stands above it. Await the divider above the first unread.
    await page.locator('[data-testid=unread-divider] + li[data-seq="1"]').waitFor({ timeout: T });
    assert.equal(await page.getByTestId('unread-divider').count(), 1);
    await page.screenshot({ path: join(ARTIFACTS, 'reading-01-divider.png') });
    // Only what is on screen is read: the top of the backlog, not its end.
    const marker = await waitMarker(bob.token, room, (m) => m >= 1, 'top of the backlog read');
    assert.ok(marker < 31, `marked ${marker} of 31 without scrolling`);
    // Scrolling to the end reads the rest.
    await page.getByRole('log', { name: 'Messages' }).evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    await waitMarker(bob.token, room, (m) => m === 31, 'read after scrolling');

    // Seen by: Bob writes, Alice reads it (on her own device), Bob sees it live.
    await sendMessage(page, 'did you see this?');
    await page.locator('[data-testid=message][data-status=sent]', { hasText: 'did you see this?' }).waitFor({ timeout: T });
    const latest = (await api(bob.token, 'GET', `/rooms/${room}/messages?limit=1`)).messages[0];
    assert.equal(latest.content, 'did you see this?');
    await api(alice.token, 'POST', `/rooms/${room}/read`, { seq: latest.seq });
    await page.getByTestId('seen-by').filter({ hasText: `Seen by ${alice.user.username}` }).waitFor({ timeout: T });

    // Away from the room, a new message of Alice's shows as one unread.
    await page.getByRole('button', { name: 'Browse rooms' }).click();
    await api(alice.token, 'POST', `/rooms/${room}/messages`, { content: 'while you were away' });
    await link.getByTestId('unread').filter({ hasText: /^1$/ }).waitFor({ timeout: T });
    await page.screenshot({ path: join(ARTIFACTS, 'reading-02-badge.png') });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('search finds an old message, highlights it safely and opens it in context', { timeout: 180_000 }, async () => {
  const alice = await registerApi(`alice_${rand()}`);
  const bobName = `bob_${rand()}`;
  const bob = await registerApi(bobName);
  const roomName = `archive-${rand()}`;
  const room = (await api(alice.token, 'POST', '/rooms', { name: roomName })).id;
  await api(bob.token, 'POST', `/rooms/${room}/join`, {});
  const word = `xylophone${rand()}`;
  const needle = await api(alice.token, 'POST', `/rooms/${room}/messages`, {
    content: `the <b>${word}</b> is in the attic`,
  });
  // More than a page of history after it, so opening it must load older pages.
  for (let i = 1; i <= 70; i++) await api(alice.token, 'POST', `/rooms/${room}/messages`, { content: `later chatter ${i}` });
  // A room Bob is not in has the word too: it must not show.
  const other = (await api(alice.token, 'POST', '/rooms', { name: `other-${rand()}` })).id;
  await api(alice.token, 'POST', `/rooms/${other}/messages`, { content: `another ${word} elsewhere` });

  const ctx = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await login(page, bobName);
    const box = page.getByRole('searchbox', { name: 'Search messages' });
    await box.fill(word.toUpperCase());
    await box.press('Enter');
    const hits = page.getByTestId('search-hit');
    await hits.first().waitFor({ timeout: T });
    assert.equal(await hits.count(), 1, 'only rooms Bob is in');
    const hit = hits.first();
    assert.equal(await hit.locator('mark').textContent(), word);
    // The message's markup is shown as text, never rendered.
    assert.equal(await hit.locator('b').count(), 0);
    assert.match(await hit.textContent(), new RegExp(`<b>${word}</b> is in the attic`));
    assert.match(await hit.textContent(), new RegExp(roomName));
    await page.screenshot({ path: join(ARTIFACTS, 'reading-03-search.png') });

    await hit.click();
    await page.waitForURL(new RegExp(`/rooms/${room}$`), { timeout: T });
    const target = page.locator(`li.msg.focused[data-seq="${needle.seq}"]`);
    await target.waitFor({ timeout: T });
    await page.screenshot({ path: join(ARTIFACTS, 'reading-04-in-context.png') });
    await page.waitForFunction(
      (seq) => {
        const el = document.querySelector(`li[data-seq="${seq}"]`);
        const list = el?.closest('ol');
        if (!el || !list) return false;
        const a = el.getBoundingClientRect();
        const b = list.getBoundingClientRect();
        return a.top >= b.top && a.bottom <= b.bottom;
      },
      needle.seq,
      { timeout: T },
    );
    await page.screenshot({ path: join(ARTIFACTS, 'reading-04-in-context.png') });

    // A query of punctuation only is explained, not a crash.
    await box.fill('!!!');
    await box.press('Enter');
    await page.getByRole('alert').filter({ hasText: /word/ }).waitFor({ timeout: T });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
