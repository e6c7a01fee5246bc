// End-to-end: presence, people search, invitation-only rooms and the account page
// (issue 10), with real browsers against the real server.
//
//   npm run test:e2e -- e2e/account.e2e.test.mjs
//
// A creates a private room without an access code; B finds A by name and opens a DM
// from the search; B watches A's presence dot go online, offline when A's page closes
// (with when A was last seen), and online again; A invites B to the room from the people search and B
// accepts from the bell; A sets the room's topic and both see it in the header; A
// changes the password and A's other browser is signed out; A downloads the data
// export; C deletes their account and cannot sign in again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
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

async function login(page, username, password) {
  await page.goto(base + '/');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Waits until the presence dot of B's DM with `peer` in the sidebar says `status`. */
async function waitDmPresence(page, peer, status) {
  await page
    .getByRole('link', { name: new RegExp(`^Direct message with ${peer}`) })
    .locator(`[data-testid=presence][data-status=${status}]`)
    .waitFor({ timeout: T });
}

test('presence dots, people search, invitation-only rooms, password change and account deletion', { timeout: 300_000 }, async () => {
  const ctxA = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const ctxA2 = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  const ctxB = await browser.newContext({ viewport: { width: 1100, height: 780 } });
  const ctxC = await browser.newContext({ viewport: { width: 390, height: 780 }, hasTouch: true });
  let a = await ctxA.newPage();
  const a2 = await ctxA2.newPage();
  const b = await ctxB.newPage();
  const c = await ctxC.newPage();
  const errors = [];
  for (const [name, p] of [
    ['A', a],
    ['A2', a2],
    ['B', b],
    ['C', c],
  ]) {
    p.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  }
  try {
    const userA = `ada_${rand()}`;
    const userB = `bo_${rand()}`;
    const userC = `cy_${rand()}`;
    const passA = 'correct horse A';
    await register(a, userA, passA);
    await register(b, userB, 'correct horse B');

    // A creates a private room with no access code: invitation-only.
    const roomName = `hideout-${rand()}`;
    await a.getByRole('button', { name: 'New room' }).click();
    await a.getByLabel('Room name').fill(roomName);
    await a.getByLabel('Private room', { exact: true }).check();
    await a.getByRole('button', { name: 'Create room' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    await a.getByRole('heading', { name: roomName }).waitFor({ timeout: T });

    // B finds A by name and opens a DM from the search.
    await b.getByRole('button', { name: 'Find people' }).click();
    await b.getByPlaceholder('Username starts with…').fill(userA.slice(0, 6));
    await b.getByRole('button', { name: 'Search', exact: true }).click();
    const found = b.getByTestId('person').filter({ hasText: userA });
    await found.waitFor({ timeout: T });
    await found.getByTestId('avatar').waitFor({ timeout: T });
    await b.screenshot({ path: join(ARTIFACTS, '31-account-desktop-B-search.png') });
    await found.getByRole('button', { name: `Message ${userA}` }).click();
    await b.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    await b.getByRole('heading', { name: userA }).waitFor({ timeout: T });
    await sendMessage(b, 'hi A, found you');
    await waitMessageCount(b, 'hi A, found you', 1);

    // Now they share a DM: B sees A online, offline when A's page closes, online again.
    await waitDmPresence(b, userA, 'online');
    await b.getByTestId('peer-presence').filter({ hasText: 'Online' }).waitFor({ timeout: T });
    await a.close();
    await waitDmPresence(b, userA, 'offline');
    await b.getByTestId('peer-presence').filter({ hasText: /Last seen/ }).waitFor({ timeout: T });
    a = await ctxA.newPage();
    a.on('pageerror', (e) => errors.push(`A: ${e.message}`));
    await a.goto(base + '/');
    await waitConn(a, 'Online');
    await waitDmPresence(b, userA, 'online');

    // A invites B to the invitation-only room from the people search; B accepts.
    await a.getByRole('button', { name: 'Find people' }).click();
    await a.getByPlaceholder('Username starts with…').fill(userB);
    await a.getByRole('button', { name: 'Search', exact: true }).click();
    const bob = a.getByTestId('person').filter({ hasText: userB });
    await bob.waitFor({ timeout: T });
    await bob.locator('[data-testid=presence][data-status=online]').waitFor({ timeout: T });
    await bob.getByLabel(`Room to invite ${userB} to`).selectOption({ label: roomName });
    await bob.getByRole('button', { name: `Invite ${userB} to room` }).click();
    await bob.getByRole('status').filter({ hasText: `Invited ${userB}` }).waitFor({ timeout: T });
    await b.getByRole('button', { name: /^Notifications/ }).click();
    const invitation = b.locator('[data-testid=notification][data-kind=invited]', { hasText: roomName });
    await invitation.waitFor({ timeout: T });
    await invitation.getByRole('button', { name: 'Accept' }).click();
    await b.getByRole('heading', { name: roomName }).waitFor({ timeout: T });

    // A sets the room's topic: both headers show it.
    await a.getByRole('link', { name: new RegExp(`^${roomName}`) }).click();
    await a.getByRole('button', { name: 'Settings', exact: true }).click();
    await a.getByLabel('Topic', { exact: true }).fill('plans nobody else may read');
    await a.getByRole('button', { name: 'Save settings' }).click();
    await a.getByRole('status').filter({ hasText: 'Settings saved.' }).waitFor({ timeout: T });
    await a.getByRole('button', { name: 'Close room settings' }).click();
    await a.getByTestId('room-topic').filter({ hasText: 'plans nobody else may read' }).waitFor({ timeout: T });
    await b.getByTestId('room-topic').filter({ hasText: 'plans nobody else may read' }).waitFor({ timeout: T });
    // The member list shows who is online.
    await b.getByRole('button', { name: 'Members', exact: true }).click();
    await b
      .locator('[data-testid=member]', { hasText: userA })
      .locator('[data-testid=presence][data-status=online]')
      .waitFor({ timeout: T });
    await b.screenshot({ path: join(ARTIFACTS, '32-account-desktop-B-room.png') });

    // A is also signed in in another browser; changing the password signs that one out.
    await login(a2, userA, passA);
    await waitConn(a2, 'Online');
    await a.getByRole('button', { name: /^My profile/ }).click();
    await a.getByTestId('avatar').first().waitFor({ timeout: T });
    await a.getByRole('button', { name: /^Account/ }).click();
    await a.getByLabel('Current password').fill(passA);
    await a.getByLabel('New password').fill('a brand new horse');
    await a.getByRole('button', { name: 'Change password' }).click();
    await a.getByRole('status').filter({ hasText: 'Password changed' }).waitFor({ timeout: T });
    await a2.getByRole('button', { name: 'Log in' }).waitFor({ timeout: T });
    await waitConn(a, 'Online'); // this browser stays signed in

    // A downloads the data export.
    const [download] = await Promise.all([
      a.waitForEvent('download', { timeout: T }),
      a.getByRole('button', { name: 'Download my data' }).click(),
    ]);
    const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
    assert.equal(exported.profile.username, userA);
    assert.equal(exported.direct_messages.length, 1, 'the DM with B');
    await a.screenshot({ path: join(ARTIFACTS, '33-account-desktop-A-account.png') });

    // C deletes their account (with confirmation) and cannot sign in again.
    await register(c, userC, 'correct horse C');
    await c.goto(base + '/account');
    await c.getByRole('heading', { name: 'Account', exact: true }).waitFor({ timeout: T });
    await assertNoHorizontalOverflow(c, 'phone, account page');
    await c.screenshot({ path: join(ARTIFACTS, '34-account-phone-C-account.png') });
    await c.getByLabel('Password', { exact: true }).fill('correct horse C');
    await c.getByLabel('Type your username to confirm').fill(userC);
    c.once('dialog', (d) => void d.accept());
    await c.getByRole('button', { name: 'Delete my account' }).click();
    await c.getByRole('button', { name: 'Log in' }).waitFor({ timeout: T });
    await login(c, userC, 'correct horse C');
    await c.getByRole('alert').waitFor({ timeout: T });
    assert.deepEqual(errors, [], 'no uncaught page errors');
  } catch (err) {
    for (const [name, p] of [
      ['A', a],
      ['A2', a2],
      ['B', b],
      ['C', c],
    ]) {
      await p.screenshot({ path: join(ARTIFACTS, `account-failure-${name}.png`) }).catch(() => {});
    }
    throw err;
  } finally {
    await ctxA.close();
    await ctxA2.close();
    await ctxB.close();
    await ctxC.close();
  }
});
