// End-to-end: a message's life after it is sent (issue 11), two users in two browser
// contexts (B on a phone-sized screen).
//
//   npm run test:e2e -- e2e/messages.e2e.test.mjs   (see chat.e2e.test.mjs)
//
// A creates a public room and B joins it. B replies to A's message (the quote shows on
// both sides); A edits it inline (B sees the new text, "(edited)", and the quote follow);
// B reacts from the picker and A toggles the same emoji from the chip (counts live on
// both sides); A deletes a message after confirming (B sees a tombstone). Then, with a
// page of newer messages in between, B clicks a quote and the app loads older pages
// until the original is on screen.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ARTIFACTS, T, launchBrowser, rand, register as registerAt, sendMessage, startServer, waitConn, waitMessageCount } from './support.mjs';

let server;
let base;
let browser;

before(async () => {
  // The filler messages below go out faster than the default per-user send quota.
  server = await startServer(['--user-send-burst', '200']);
  base = server.base;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

const register = (page, username, password) => registerAt(page, base, username, password);

/** The `<li>` of the chat message whose content is exactly `text`. */
const bubble = (page, text) =>
  page.locator('li[data-testid=message]').filter({ has: page.locator('.content', { hasText: new RegExp(`^${text}$`) }) });

/** A REST call as `token`'s user. */
async function api(method, path, token, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
  return res.status === 204 ? null : res.json();
}

test('edit, delete, reply and react are seen live on the other side', { timeout: 300_000 }, async () => {
  const ctxA = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const ctxB = await browser.newContext({ viewport: { width: 390, height: 780 }, hasTouch: true });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  const errors = [];
  const dialogs = [];
  for (const [name, p] of [
    ['A', a],
    ['B', b],
  ]) {
    p.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
    p.on('dialog', (d) => {
      dialogs.push(`${name}: ${d.message()}`);
      void d.accept();
    });
  }
  try {
    const userA = `ada_${rand()}`;
    const userB = `bob_${rand()}`;
    await register(a, userA, 'correct horse A');
    await register(b, userB, 'correct horse B');

    const roomName = `lifecycle-${rand()}`;
    await a.getByRole('button', { name: 'New room' }).click();
    await a.getByLabel('Room name').fill(roomName);
    await a.getByRole('button', { name: 'Create room' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    const roomId = (await a.getByTestId('room-id').textContent()).trim();
    await b.goto(`${base}/rooms/${roomId}`);
    await b.getByRole('button', { name: 'Join room' }).click();
    await b.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    await waitConn(b, 'Online');

    await sendMessage(a, 'first from A');
    await sendMessage(a, 'oops, wrong room');
    await waitMessageCount(b, 'first from A', 1);
    await waitMessageCount(b, 'oops, wrong room', 1);

    // Reply: the quote shows above the composer, then on the message on both sides.
    await bubble(b, 'first from A').getByRole('button', { name: 'Reply' }).click();
    await b.getByTestId('reply-bar').filter({ hasText: 'first from A' }).waitFor({ timeout: T });
    await sendMessage(b, 'reply from B');
    await b.getByTestId('reply-bar').waitFor({ state: 'detached', timeout: T });
    for (const p of [a, b]) {
      await bubble(p, 'reply from B').getByTestId('reply-quote').filter({ hasText: 'first from A' }).waitFor({ timeout: T });
    }

    // Edit inline: B sees the new text, the mark, and the quote of the reply follow.
    await bubble(a, 'first from A').getByRole('button', { name: 'Edit' }).click();
    await a.getByLabel('Edit message').fill('first from A, edited');
    await a.getByLabel('Edit message').press('Enter');
    await waitMessageCount(b, 'first from A, edited', 1);
    await waitMessageCount(b, 'first from A', 0);
    await bubble(b, 'first from A, edited').getByTestId('edited').waitFor({ timeout: T });
    await bubble(b, 'reply from B').getByTestId('reply-quote').filter({ hasText: 'first from A, edited' }).waitFor({ timeout: T });

    // React: B picks 👍; A sees it and adds theirs from the chip; B sees the count.
    const onB = bubble(b, 'first from A, edited');
    await onB.getByRole('button', { name: 'React', exact: true }).click();
    await onB.getByRole('button', { name: 'React 👍' }).click();
    await bubble(a, 'first from A, edited').getByTestId('reaction').filter({ hasText: '👍 1' }).waitFor({ timeout: T });
    await bubble(a, 'first from A, edited').getByTestId('reaction').filter({ hasText: '👍' }).click();
    await onB.getByTestId('reaction').filter({ hasText: '👍 2' }).waitFor({ timeout: T });
    assert.equal(await onB.getByTestId('reaction').getAttribute('aria-pressed'), 'true');
    // B takes theirs back.
    await onB.getByTestId('reaction').click();
    await bubble(a, 'first from A, edited').getByTestId('reaction').filter({ hasText: '👍 1' }).waitFor({ timeout: T });
    await a.screenshot({ path: join(ARTIFACTS, '31-messages-desktop-A.png') });

    // Delete with confirmation: a tombstone on both sides.
    await bubble(a, 'oops, wrong room').getByRole('button', { name: 'Delete' }).click();
    await waitMessageCount(b, 'oops, wrong room', 0);
    await b.getByTestId('tombstone').first().waitFor({ timeout: T });
    await waitMessageCount(a, 'oops, wrong room', 0);
    assert.equal(dialogs.filter((d) => d.startsWith('A: Delete')).length, 1, dialogs.join('\n'));
    await b.screenshot({ path: join(ARTIFACTS, '32-messages-phone-B.png') });

    // Jump to an original that is pages away: 60 newer messages, then a reply to the first.
    const login = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: userA, password: 'correct horse A' }),
    });
    const { access_token: token } = await login.json();
    const history = await api('GET', `/rooms/${roomId}/messages?limit=200`, token);
    const first = history.messages.find((m) => m.content === 'first from A, edited');
    assert.ok(first, 'the first message is in history');
    for (let i = 0; i < 60; i++) await api('POST', `/rooms/${roomId}/messages`, token, { content: `filler ${i}` });
    const reply = await api('POST', `/rooms/${roomId}/messages`, token, { content: 'back to the start', reply_to: first.id });
    // B has read everything, so the reload opens at the newest page: with an unread
    // divider near its top it would scroll there and load older pages by itself, and
    // whether B's client had marked the fillers read before the reload is a race.
    const loginB = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: userB, password: 'correct horse B' }),
    });
    const { access_token: tokenB } = await loginB.json();
    await api('POST', `/rooms/${roomId}/read`, tokenB, { seq: reply.seq });
    await b.reload();
    await waitMessageCount(b, 'back to the start', 1);
    assert.equal(await b.locator(`li[data-seq="${first.seq}"]`).count(), 0, 'the original is not loaded yet');
    await bubble(b, 'back to the start').getByTestId('reply-quote').click();
    const original = b.locator(`li[data-seq="${first.seq}"]`);
    await original.waitFor({ timeout: T });
    await b.waitForFunction(
      (seq) => {
        const el = document.querySelector(`li[data-seq="${seq}"]`);
        const list = el?.closest('ol');
        if (!el || !list) return false;
        const r = el.getBoundingClientRect();
        const l = list.getBoundingClientRect();
        return r.bottom > l.top && r.top < l.bottom;
      },
      first.seq,
      { timeout: T },
    );
    assert.deepEqual(errors, [], 'no uncaught page errors');
  } catch (err) {
    await a.screenshot({ path: join(ARTIFACTS, 'messages-failure-A.png') }).catch(() => {});
    await b.screenshot({ path: join(ARTIFACTS, 'messages-failure-B.png') }).catch(() => {});
    throw err;
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
