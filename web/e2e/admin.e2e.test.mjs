// End-to-end: room settings, my profile and blocking (issue 10), two users in two
// browser contexts.
//
//   npm run test:e2e        (see chat.e2e.test.mjs; SOCKET_HUB_WEB_DIST=dist tests the
//                            current `npm run build`)
//
// A creates a public room and B joins it. In the settings panel A revokes an invite link,
// renames the room and sets a topic: B's header shows the new name live. A edits their
// profile. A opens a DM with B; B blocks A from the DM header, and A's next message there
// is refused with a visible error. A deletes the room (confirming) and B is told.
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

test('rename live, profile, block refuses DM sends, delete with confirmation', { timeout: 300_000 }, async () => {
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
    // Confirmations (block, delete) are accepted; each is recorded.
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

    const roomName = `plaza-${rand()}`;
    await a.getByRole('button', { name: 'New room' }).click();
    await a.getByLabel('Room name').fill(roomName);
    await a.getByRole('button', { name: 'Create room' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    const roomId = (await a.getByTestId('room-id').textContent()).trim();

    await b.goto(`${base}/rooms/${roomId}`);
    await b.getByRole('button', { name: 'Join room' }).click();
    await b.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    await waitConn(b, 'Online');
    // A member has no settings button.
    assert.equal(await b.getByRole('button', { name: 'Settings', exact: true }).count(), 0);

    // A makes an invite link, to revoke it from the settings below.
    await a.getByRole('button', { name: 'Invite', exact: true }).click();
    await a.getByRole('button', { name: 'Create invite link' }).click();
    await a.getByLabel('Invite link').waitFor({ timeout: T });
    await a.getByRole('button', { name: 'Close invite dialog' }).click();

    // A renames the room and sets a topic; B sees the new name live.
    const newName = `square-${rand()}`;
    await a.getByRole('button', { name: 'Settings', exact: true }).click();
    await a.getByLabel('Name', { exact: true }).fill(newName);
    await a.getByLabel('Topic', { exact: true }).fill('all things square');
    await a.getByRole('button', { name: 'Save settings' }).click();
    await a.getByRole('status').filter({ hasText: 'Settings saved.' }).waitFor({ timeout: T });
    await b.getByRole('heading', { name: newName }).waitFor({ timeout: T });
    await b.locator('[data-testid=message][data-event=room_updated]').first().waitFor({ timeout: T });
    await a.getByRole('heading', { name: newName }).waitFor({ timeout: T });
    // The link is listed, and revoked from here.
    const links = a.getByRole('region', { name: 'Invite links' });
    await links.getByTestId('invite-link').filter({ hasText: '0 uses' }).waitFor({ timeout: T });
    await links.getByRole('button', { name: /^Revoke link #\d+$/ }).click();
    await links.getByTestId('invite-link').filter({ hasText: 'revoked' }).waitFor({ timeout: T });
    assert.equal(await links.getByRole('button', { name: /^Revoke/ }).count(), 0);
    await a.getByRole('region', { name: 'Bans' }).getByText('Nobody is banned.').waitFor({ timeout: T });
    await a.screenshot({ path: join(ARTIFACTS, '21-admin-desktop-A-settings.png') });
    await a.getByRole('button', { name: 'Close room settings' }).click();

    // A edits their profile; it is there after a reload.
    await a.getByRole('button', { name: /^My profile/ }).click();
    await a.getByLabel('Display name').fill('Ada L.');
    await a.getByLabel('Status').fill('thinking about engines');
    await a.getByRole('button', { name: 'Save profile' }).click();
    await a.getByRole('status').filter({ hasText: 'Profile saved.' }).waitFor({ timeout: T });
    await a.reload();
    await a.getByLabel('Display name').and(a.locator('[value="Ada L."]')).waitFor({ timeout: T });

    // A opens a DM with B and writes; B opens it and blocks A.
    await a.getByRole('button', { name: 'New direct message' }).click();
    await a.getByLabel('Their username').fill(userB);
    await a.getByRole('button', { name: 'Start conversation' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    await a.getByRole('heading', { name: userB }).waitFor({ timeout: T });
    await sendMessage(a, 'hello B, before the block');
    await b.goto(`${base}/`);
    const dmLink = b.getByRole('link', { name: new RegExp(`^Direct message with ${userA}`) });
    await dmLink.waitFor({ timeout: T });
    await dmLink.click();
    await waitMessageCount(b, 'hello B, before the block', 1);
    await b.getByRole('button', { name: `Block ${userA}` }).click();
    await b.getByRole('button', { name: `Unblock ${userA}` }).waitFor({ timeout: T });
    await assertNoHorizontalOverflow(b, 'phone, DM blocked');
    await b.screenshot({ path: join(ARTIFACTS, '22-admin-phone-B-blocked.png') });

    // A's next message is refused, visibly, and never reaches B.
    await sendMessage(a, 'are you there?');
    const failed = a.locator('[data-testid=message][data-status=failed]', { hasText: 'are you there?' });
    await failed.waitFor({ timeout: T });
    await failed.getByRole('alert').filter({ hasText: 'one of you has blocked the other' }).waitFor({ timeout: T });
    await a.screenshot({ path: join(ARTIFACTS, '23-admin-desktop-A-refused.png') });

    // B unblocks; A's next message arrives.
    await b.getByRole('button', { name: `Unblock ${userA}` }).click();
    await b.getByRole('button', { name: `Block ${userA}` }).waitFor({ timeout: T });
    await sendMessage(a, 'after the unblock');
    await waitMessageCount(b, 'after the unblock', 1);
    assert.equal(await b.locator('[data-testid=message] .content', { hasText: 'are you there?' }).count(), 0);

    // A deletes the room (confirming); B is told and the room leaves B's list.
    await a.getByRole('link', { name: new RegExp(`^${newName}`) }).click();
    await a.getByRole('heading', { name: newName }).waitFor({ timeout: T });
    await a.getByRole('button', { name: 'Settings', exact: true }).click();
    await a.getByRole('button', { name: 'Delete room' }).click();
    await a.waitForURL(new RegExp(`${base}/$`), { timeout: T });
    await b.getByTestId('notice').filter({ hasText: `${userA} deleted the room “${newName}”` }).waitFor({ timeout: T });
    await b.getByRole('link', { name: new RegExp(`^${newName}`) }).waitFor({ state: 'detached', timeout: T });
    assert.equal(dialogs.filter((d) => d.startsWith('B: Block')).length, 1, dialogs.join('\n'));
    assert.equal(dialogs.filter((d) => d.startsWith('A: Delete')).length, 1, dialogs.join('\n'));
    assert.deepEqual(errors, [], 'no uncaught page errors');
  } catch (err) {
    await a.screenshot({ path: join(ARTIFACTS, 'admin-failure-A.png') }).catch(() => {});
    await b.screenshot({ path: join(ARTIFACTS, 'admin-failure-B.png') }).catch(() => {});
    throw err;
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
