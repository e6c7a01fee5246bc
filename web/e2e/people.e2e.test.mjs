// End-to-end: invitations, roles and moderation, direct messages and notifications
// (issue 10), with three users in three browser contexts.
//
//   npm run test:e2e        (see chat.e2e.test.mjs; SOCKET_HUB_WEB_DIST=dist tests the
//                            current `npm run build` against an older server binary)
//
// A creates a private room and invites B by link; B signs up from the link and lands in
// the room; C joins by the link too. A makes B admin, B kicks C and C sees it live. A and
// B open a DM and write both ways; while B looks at the DM, A mentions @B in the room and
// B's bell, the room's unread badge and the page title count it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ARTIFACTS,
  T,
  assertNoHorizontalOverflow,
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

/** The bell's unread count (0 without a badge). */
async function bellCount(page) {
  const badge = page.getByTestId('bell-count');
  return (await badge.count()) ? Number(await badge.textContent()) : 0;
}

async function waitBellCount(page, n) {
  await page.waitForFunction(
    (count) => Number(document.querySelector('[data-testid=bell-count]')?.textContent ?? '0') === count,
    n,
    { timeout: T },
  );
}

test('invite by link, make admin, kick live, DMs, and a mention counted by the bell', { timeout: 300_000 }, async () => {
  const ctxA = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const ctxB = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const ctxC = await browser.newContext({ viewport: { width: 390, height: 780 }, hasTouch: true });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  const c = await ctxC.newPage();
  const errors = [];
  for (const [name, p] of [
    ['A', a],
    ['B', b],
    ['C', c],
  ]) {
    p.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  }
  try {
    const userA = `ann_${rand()}`;
    const userB = `ben_${rand()}`;
    const userC = `cal_${rand()}`;
    await register(a, userA, 'correct horse A');
    await register(c, userC, 'correct horse C');

    // A creates a private room; nobody is told its id or code, the link is enough.
    const roomName = `team-${rand()}`;
    await a.getByRole('button', { name: 'New room' }).click();
    await a.getByLabel('Room name').fill(roomName);
    await a.getByLabel('Private room', { exact: true }).check();
    await a.getByLabel('Access code', { exact: true }).fill(`never-shared-${rand()}`);
    await a.getByRole('button', { name: 'Create room' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    const roomId = (await a.getByTestId('room-id').textContent()).trim();

    // A creates an invite link in the invite dialog.
    await a.getByRole('button', { name: 'Invite', exact: true }).click();
    await a.getByRole('button', { name: 'Create invite link' }).click();
    const linkBox = a.getByLabel('Invite link');
    await linkBox.waitFor({ timeout: T });
    const link = await linkBox.inputValue();
    assert.match(link, /\/invite\/[A-Za-z0-9_-]+$/);
    await a.getByRole('button', { name: 'Close invite dialog' }).click();

    // B opens the link signed out, signs up there, sees where it leads and joins.
    await b.goto(link.replace(/^https?:\/\/[^/]+/, base));
    await b.getByTestId('auth-intro').waitFor({ timeout: T });
    await b.getByRole('button', { name: 'Create an account' }).click();
    await b.getByLabel('Username').fill(userB);
    await b.getByLabel('Password').fill('correct horse B');
    await b.getByRole('button', { name: 'Create an account' }).click();
    await b.getByTestId('invite-preview').filter({ hasText: roomName }).waitFor({ timeout: T });
    await b.getByRole('button', { name: 'Join room' }).click();
    await b.waitForURL(new RegExp(`/rooms/${roomId}$`), { timeout: T });
    await b.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    await waitConn(b, 'Online');

    // C, signed in, joins by the same link.
    await c.goto(link.replace(/^https?:\/\/[^/]+/, base));
    await c.getByTestId('invite-preview').filter({ hasText: roomName }).waitFor({ timeout: T });
    await c.getByRole('button', { name: 'Join room' }).click();
    await c.waitForURL(new RegExp(`/rooms/${roomId}$`), { timeout: T });
    await c.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    await sendMessage(c, 'hello from C');
    await waitMessageCount(b, 'hello from C', 1);

    // A (owner) makes B admin from the member list.
    await a.getByRole('button', { name: 'Members', exact: true }).click();
    await a.getByRole('button', { name: `Make admin ${userB}` }).click();
    await a.locator('[data-testid=member][data-role=admin]', { hasText: userB }).waitFor({ timeout: T });
    // B sees the role change live in the room's stream.
    await b.locator('[data-testid=message][data-event=member_updated]', { hasText: `${userA} made ${userB} admin` }).waitFor({ timeout: T });

    // B (admin now) kicks C; C is told at once and the room leaves C's list.
    await b.getByRole('button', { name: 'Members', exact: true }).click();
    await b.getByRole('button', { name: `Kick ${userC}` }).click();
    await c.getByTestId('notice').filter({ hasText: `${userB} removed you from “${roomName}”` }).waitFor({ timeout: T });
    await c.waitForURL(new RegExp(`${base}/$`), { timeout: T });
    assert.equal(await c.getByRole('link', { name: new RegExp(roomName) }).count(), 0, 'the room left C’s list');
    await a.locator('[data-testid=member]', { hasText: userC }).waitFor({ state: 'detached', timeout: T });
    await a.locator('[data-testid=message][data-event=kicked]', { hasText: `${userB} kicked ${userC}` }).waitFor({ timeout: T });
    await c.screenshot({ path: join(ARTIFACTS, '11-people-phone-C-kicked.png') });
    await assertNoHorizontalOverflow(c, 'phone, kicked');

    // A invites C back by name; C accepts from the bell and is in the room again.
    await a.getByRole('button', { name: 'Invite', exact: true }).click();
    await a.getByLabel('Username to invite').fill(userC);
    await a.getByRole('button', { name: 'Invite', exact: true }).last().click();
    await a.getByRole('status').filter({ hasText: `Invited ${userC}` }).waitFor({ timeout: T });
    await a.getByRole('button', { name: 'Close invite dialog' }).click();
    await c.getByRole('button', { name: /^Notifications/ }).click();
    const invitation = c.locator('[data-testid=notification][data-kind=invited]', { hasText: roomName });
    await invitation.waitFor({ timeout: T });
    await assertNoHorizontalOverflow(c, 'phone, notification list');
    await c.screenshot({ path: join(ARTIFACTS, '12-people-phone-C-invited.png') });
    await invitation.getByRole('button', { name: 'Accept' }).click();
    await c.waitForURL(new RegExp(`/rooms/${roomId}$`), { timeout: T });
    await c.getByRole('heading', { name: roomName }).waitFor({ timeout: T });

    // A opens a DM with B; B finds it listed apart from rooms; both write.
    await a.getByRole('button', { name: 'New direct message' }).click();
    await a.getByLabel('Their username').fill(userB);
    await a.getByRole('button', { name: 'Start conversation' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    await a.getByRole('heading', { name: userB }).waitFor({ timeout: T });
    await sendMessage(a, 'psst, B: a private word');
    const dmLink = b.getByRole('link', { name: new RegExp(`^Direct message with ${userA}`) });
    await dmLink.waitFor({ timeout: T });
    await dmLink.click();
    await waitMessageCount(b, 'psst, B: a private word', 1);
    await sendMessage(b, 'got it, A');
    await waitMessageCount(a, 'got it, A', 1);

    // While B looks at the DM, A mentions B in the room: B's bell counts it, the room
    // gets an unread badge and the title shows the total.
    const before = await bellCount(b);
    await a.getByRole('link', { name: new RegExp(`^${roomName}`) }).click();
    await a.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    await sendMessage(a, `@${userB} please look at this`);
    await waitBellCount(b, before + 1);
    await b.getByRole('link', { name: new RegExp(`^${roomName}.*1 unread`) }).waitFor({ timeout: T });
    await b.waitForFunction(() => /^\(\d+\) Socket-Hub$/.test(document.title), null, { timeout: T });
    await b.getByRole('heading', { name: userA }).waitFor({ timeout: T }); // still in the DM

    // B reads the list and marks it read.
    await b.getByRole('button', { name: /^Notifications/ }).click();
    await b.locator('[data-testid=notification][data-kind=mentioned]', { hasText: 'please look at this' }).waitFor({ timeout: T });
    await b.screenshot({ path: join(ARTIFACTS, '13-people-desktop-B-bell.png') });
    await b.getByRole('button', { name: 'Mark all read' }).click();
    await waitBellCount(b, 0);
    await a.screenshot({ path: join(ARTIFACTS, '14-people-desktop-A.png') });
    assert.deepEqual(errors, [], 'no uncaught page errors');
  } catch (err) {
    await a.screenshot({ path: join(ARTIFACTS, 'people-failure-A.png') }).catch(() => {});
    await b.screenshot({ path: join(ARTIFACTS, 'people-failure-B.png') }).catch(() => {});
    await c.screenshot({ path: join(ARTIFACTS, 'people-failure-C.png') }).catch(() => {});
    throw err;
  } finally {
    await ctxA.close();
    await ctxB.close();
    await ctxC.close();
  }
});
