// Shared by the end-to-end tests: starts the real server binary on a free port with its
// own data directory, launches Debian's Chromium through playwright-core, and drives the
// app the way a person does.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, '..');
export const BIN = resolve(webDir, process.env.SOCKET_HUB_BIN ?? '../target/debug/socket-hub');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = join(webDir, 'test-results');
export const T = 30_000; // generous: a busy 2-core machine

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

/**
 * Starts the server with `extraArgs`; resolves once `/readyz` answers. `log()` is what it
 * printed so far (RUST_LOG=warn unless set), `stop()` ends it and removes its data.
 */
/** This environment without the developer's server settings: a test names all it uses. */
function serverEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith('SOCKET_HUB_') || name === 'DATABASE_URL' || name === 'REDIS_URL') delete env[name];
  }
  return env;
}

export async function startServer(extraArgs = []) {
  assert.ok(existsSync(BIN), `server binary not found at ${BIN}; run \`cargo build -p socket-hub\` first`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'socket-hub-e2e-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let log = '';
  const child = spawn(BIN, ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir, ...extraArgs], {
    env: { ...serverEnv(), RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitReady(base, child, () => log, 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, log: () => log, stop };
}

async function waitReady(url, child, log, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}):\n${log()}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100)); // polling interval, not a wait for an event
  }
  throw new Error(`server not ready: ${last}\n${log()}`);
}

/** Headless Debian Chromium with the flags this machine needs. */
export async function launchBrowser() {
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}; apt-get install -y chromium`);
  return chromium.launch({
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
}

export const rand = () => Math.random().toString(36).slice(2, 8);

/** The page must fit the viewport's width: nothing pushed off to the side. */
export async function assertNoHorizontalOverflow(page, label) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  assert.ok(scroll <= width, `${label}: page is ${scroll}px wide in a ${width}px viewport`);
}

export async function register(page, base, username, password) {
  await page.goto(base + '/');
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T });
  await waitConn(page, 'Online');
}

export async function waitConn(page, text) {
  await page.locator('[data-testid=connection-status]', { hasText: text }).waitFor({ timeout: T });
}

/** Waits until exactly `n` messages in the DOM have this exact content. */
export async function waitMessageCount(page, content, n) {
  await page.waitForFunction(
    ([c, count]) =>
      [...document.querySelectorAll('[data-testid=message] .content')].filter((e) => e.textContent === c).length ===
      count,
    [content, n],
    { timeout: T },
  );
}

export async function countMessages(page, content) {
  return page.$$eval('[data-testid=message] .content', (els, c) => els.filter((e) => e.textContent === c).length, content);
}

export async function sendMessage(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}
