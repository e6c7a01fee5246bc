// Shared by the end-to-end tests: starts the real server binary on a free port with its
// own data directory, launches Debian's Chromium through playwright-core, and drives the
// app the way a person does.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, '..');
export const BIN = resolve(webDir, process.env.SOCKET_HUB_BIN ?? '../target/debug/socket-hub');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = join(webDir, 'test-results');
export const T = 30_000; // generous: a busy 2-core machine
/**
 * With SOCKET_HUB_WEB_DIST (e.g. `dist`, after `npm run build`), the browser talks to a
 * small front that serves that web build and passes everything else (REST, WebSocket,
 * the server's headers such as its CSP) to the server: the web client can then be tested
 * against a server binary built before it, which embeds an older bundle.
 */
export const WEB_DIST = process.env.SOCKET_HUB_WEB_DIST ? resolve(webDir, process.env.SOCKET_HUB_WEB_DIST) : null;

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
  if (!WEB_DIST) return { base, log: () => log, stop };
  const front = await startWebFront(port);
  return {
    base: `http://127.0.0.1:${front.address().port}`,
    log: () => log,
    stop: async () => {
      front.closeAllConnections();
      await new Promise((r) => front.close(r));
      await stop();
    },
  };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
};

/** A file of the web build for this path, or null (API paths never are). */
function webFile(pathname) {
  if (pathname.startsWith('/api/') || pathname === '/ws') return null;
  const file = resolve(WEB_DIST, pathname === '/' ? 'index.html' : `.${decodeURIComponent(pathname)}`);
  if (!file.startsWith(WEB_DIST + sep)) return null;
  try {
    return statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

/** The front of WEB_DIST: the server answers, the web build's files replace its bundle. */
function startWebFront(upstreamPort) {
  const front = createHttpServer((req, res) => {
    const up = httpRequest(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        const { pathname } = new URL(req.url, 'http://front');
        const html = /text\/html/.test(upRes.headers['content-type'] ?? '');
        const file = req.method === 'GET' ? (webFile(pathname) ?? (html ? join(WEB_DIST, 'index.html') : null)) : null;
        if (!file) {
          res.writeHead(upRes.statusCode, upRes.headers);
          upRes.pipe(res);
          return;
        }
        upRes.resume();
        const body = readFileSync(file);
        const headers = { ...upRes.headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' };
        for (const h of ['content-length', 'transfer-encoding', 'content-encoding', 'etag', 'last-modified']) delete headers[h];
        if (pathname.startsWith('/assets/')) headers['cache-control'] = 'public, max-age=31536000, immutable';
        res.writeHead(200, { ...headers, 'content-length': body.length });
        res.end(body);
      },
    );
    up.on('error', (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(up);
  });
  // WebSocket upgrades go through as raw bytes.
  front.on('upgrade', (req, socket, head) => {
    const up = connect(upstreamPort, '127.0.0.1', () => {
      let raw = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${raw}\r\n`);
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  return new Promise((ok, fail) => {
    front.on('error', fail);
    front.listen(0, '127.0.0.1', () => ok(front));
  });
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
