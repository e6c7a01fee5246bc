// End-to-end: attachments in headless Chromium. A uploads an image (attach button) and
// a text file (drag & drop) in a public room; B sees the image inline as the server's
// thumbnail, opens the full image in the lightbox and closes it with Escape, and sees
// the file as a download chip. Images load through signed links under the app's CSP:
// no violation may be reported.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { ARTIFACTS, T, launchBrowser, rand, register as registerAt, startServer } from './support.mjs';

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

/** CRC-32 (IEEE), as PNG chunks need. */
function crc32(bytes) {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** A real RGB PNG of `width` × `height`: a gradient, so it is no trivial file. */
function png(width, height) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = (x * 255) / width;
      raw[row + 2 + x * 3] = (y * 255) / height;
      raw[row + 3 + x * 3] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Collects CSP violations and uncaught errors of every page of `ctx`. */
function watchProblems(ctx) {
  const problems = [];
  ctx.on('console', (msg) => {
    if (/content security policy|refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  ctx.on('page', (page) => page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`)));
  return problems;
}

/** Waits until the `<img>` matched by `locator` has loaded, and returns its natural size. */
async function loadedSize(locator) {
  await locator.waitFor({ state: 'visible', timeout: T });
  const handle = await locator.elementHandle();
  await locator.page().waitForFunction((img) => img.complete && img.naturalWidth > 0, handle, { timeout: T });
  return handle.evaluate((img) => ({ width: img.naturalWidth, height: img.naturalHeight }));
}

test('an image uploaded on one side shows inline on the other, and opens in a lightbox', { timeout: 180_000 }, async () => {
  const ctxA = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const ctxB = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const problems = [...[ctxA, ctxB].map(watchProblems)];
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  try {
    const userA = `alice_${rand()}`;
    const userB = `bob_${rand()}`;
    await register(a, userA, 'correct horse A');
    await register(b, userB, 'correct horse B');

    // A's public room; B joins it by its address.
    const roomName = `pictures-${rand()}`;
    await a.getByRole('button', { name: 'New room' }).click();
    await a.getByLabel('Room name').fill(roomName);
    await a.getByRole('button', { name: 'Create room' }).click();
    await a.waitForURL(/\/rooms\/\d+$/, { timeout: T });
    const roomId = (await a.getByTestId('room-id').textContent()).trim();
    await b.goto(`${base}/rooms/${roomId}`);
    await b.getByRole('button', { name: 'Join room' }).click();
    await b.getByRole('heading', { name: roomName }).waitFor({ timeout: T });
    await a.getByTestId('online-user').filter({ hasText: userB }).waitFor({ timeout: T });

    // A attaches an image with the attach button: uploaded (progress, then ready), sent.
    await a.getByTestId('attach-input').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: png(640, 400) });
    await a.locator('[data-testid=draft-attachment][data-status=done]', { hasText: 'sunset.png' }).waitFor({ timeout: T });
    await a.getByLabel('Message', { exact: true }).fill('the sunset yesterday');
    await a.getByRole('button', { name: 'Send message' }).click();
    await a.locator('[data-testid=message][data-status=sent]', { hasText: 'the sunset yesterday' }).waitFor({ timeout: T });
    assert.equal(await a.getByTestId('draft-attachment').count(), 0, 'the composer is cleared');

    // B sees it inline: the server's thumbnail (320 px wide for a 640 × 400 image).
    const message = b.locator('[data-testid=message]', { hasText: 'the sunset yesterday' });
    const thumb = message.locator('[data-testid=attachment-image] img');
    assert.deepEqual(await loadedSize(thumb), { width: 320, height: 200 });
    await b.screenshot({ path: join(ARTIFACTS, 'attachments-01-inline-B.png') });

    // The lightbox shows the full image; Escape closes it.
    await message.getByRole('button', { name: 'Open image sunset.png' }).click();
    const lightbox = b.getByTestId('lightbox');
    assert.deepEqual(await loadedSize(lightbox.locator('img')), { width: 640, height: 400 });
    await b.screenshot({ path: join(ARTIFACTS, 'attachments-02-lightbox-B.png') });
    await b.keyboard.press('Escape');
    await lightbox.waitFor({ state: 'detached', timeout: T });

    // A drops a text file on the composer: B gets a download chip, not an image.
    const dropped = await a.evaluateHandle(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['meeting notes\n'], 'notes.txt', { type: 'text/plain' }));
      return transfer;
    });
    await a.locator('form.composer').dispatchEvent('drop', { dataTransfer: dropped });
    await a.locator('[data-testid=draft-attachment][data-status=done]', { hasText: 'notes.txt' }).waitFor({ timeout: T });
    await a.getByRole('button', { name: 'Send message' }).click();
    const chip = b.getByTestId('attachment-file').filter({ hasText: 'notes.txt' });
    await chip.waitFor({ timeout: T });
    const download = b.waitForEvent('download', { timeout: T });
    await chip.getByRole('button', { name: 'Download notes.txt' }).click();
    assert.equal((await download).suggestedFilename(), 'notes.txt');

    assert.deepEqual(problems.flat(), [], 'no CSP violation or page error');
  } finally {
    await ctxA.close().catch(() => {});
    await ctxB.close().catch(() => {});
  }
});
