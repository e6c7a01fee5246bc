// Shared by the Socket.IO tests: starts the real socket-hub binary (SOCKET_HUB_BIN) on a
// free port with its own data directory (and, for a cluster, its own PostgreSQL database
// and redis-server), and drives it with the official socket.io-client, a plain `ws`
// client on /ws, and fetch for REST. Every wait is for an event, bounded by T.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
export const BIN = resolve(repo, process.env.SOCKET_HUB_BIN ?? 'target/debug/socket-hub');
export const T = 30_000; // generous: a busy 2-core machine

export const rand = () => randomBytes(4).toString('hex');

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** This environment without the developer's server settings: a test names all it uses. */
function serverEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith('SOCKET_HUB_') || name === 'DATABASE_URL' || name === 'REDIS_URL') delete env[name];
  }
  return env;
}

/** A random JWT secret, so a test can sign tokens (an expired one) itself. */
export const newSecret = () => randomBytes(32).toString('hex');

/**
 * Starts the server with `args` (and `env`); resolves once `/readyz` answers.
 * `stop()` ends it (SIGTERM) and removes its data directory.
 */
export async function startServer({ args = [], env = {} } = {}) {
  assert.ok(existsSync(BIN), `server binary not found at ${BIN}; run \`cargo build -p socket-hub\` first`);
  const dataDir = mkdtempSync(join(tmpdir(), 'socket-hub-sio-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let log = '';
  const child = spawn(BIN, ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir, ...args], {
    env: { ...serverEnv(), RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
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

/** PostgreSQL admin URL the tests create their databases on. */
const pgAdmin = () => process.env.SOCKET_HUB_TEST_PG ?? 'postgres://root@127.0.0.1:5432/postgres';

/** A database of the test's own; `drop()` removes it. Fails (never skips) without PostgreSQL. */
export function createDatabase() {
  const name = `sockethub_sio_${rand()}${rand()}`;
  const admin = pgAdmin();
  try {
    execFileSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${name}`], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`PostgreSQL is required at ${admin} (start it, or set SOCKET_HUB_TEST_PG): ${err.stderr ?? err}`);
  }
  const [base, query] = admin.split('?');
  const url = `${base.slice(0, base.lastIndexOf('/'))}/${name}${query ? `?${query}` : ''}`;
  const drop = () => {
    try {
      execFileSync('psql', [admin, '-q', '-c', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: 'pipe' });
    } catch {
      // best effort
    }
  };
  return { url, drop };
}

/** A redis-server of the test's own on a free port; `stop()` kills it. Fails without redis-server. */
export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const failed = new Promise((_, fail) =>
    child.once('error', (err) => fail(new Error(`redis-server is required on PATH (Debian package redis-server): ${err}`))),
  );
  const deadline = Date.now() + 10_000;
  const ping = () =>
    new Promise((ok) => {
      const socket = tcpConnect(port, '127.0.0.1');
      let reply = '';
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (d) => {
        reply += d;
        if (reply.includes('\r\n')) {
          socket.destroy();
          ok(reply.startsWith('+PONG'));
        }
      });
      socket.on('error', () => ok(false));
    });
  const ready = (async () => {
    while (Date.now() < deadline) {
      if (await ping()) return;
      await new Promise((r) => setTimeout(r, 20)); // redis needs a moment to bind; no event to wait on
    }
    throw new Error('redis-server did not answer PING');
  })();
  await Promise.race([ready, failed]);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', r);
        child.kill('SIGKILL');
      }),
  };
}

/** POST/GET JSON with an optional bearer token; returns { status, body }. */
export async function api(base, method, path, { token, body, headers = {} } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Registers a fresh user; resolves to { token, user }. */
export async function register(base, prefix = 'u') {
  const username = `${prefix}${rand()}`;
  const { status, body } = await api(base, 'POST', '/api/v1/auth/register', {
    body: { username, password: 'correct horse battery' },
  });
  assert.equal(status, 201, JSON.stringify(body));
  return { token: body.access_token, refresh: body.refresh_token, user: body.user };
}

/** An HS256 JWT for `user` signed with `secret`, expiring at `exp` (Unix seconds). */
export function signToken(secret, user, exp) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const now = Math.floor(Date.now() / 1000);
  const body = b64({ sub: String(user.id), name: user.username, iat: now - 120, exp });
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/**
 * A Socket.IO client; resolves once connected (rejects with the connect_error).
 * Records every `chatMessage`, `chat-history` and `notification` it receives.
 */
export async function connectIo(base, { auth, transports = ['websocket'], query, ...opts } = {}) {
  const socket = io(base, {
    transports,
    auth,
    query,
    reconnection: false,
    forceNew: true,
    timeout: T,
    ...opts,
  });
  const inbox = recorder(socket, ['chatMessage', 'chat-history', 'notification', 'typing', 'error', 'closing']);
  await new Promise((ok, fail) => {
    socket.once('connect', ok);
    socket.once('connect_error', fail);
  });
  return { socket, inbox };
}

/** The connect_error a handshake with `auth` gets (fails if it connects). */
export function connectError(base, auth, transports = ['websocket']) {
  const socket = io(base, { transports, auth, reconnection: false, forceNew: true, timeout: T });
  return new Promise((ok, fail) => {
    socket.once('connect', () => {
      socket.close();
      fail(new Error('connected, expected a connect_error'));
    });
    socket.once('connect_error', (err) => {
      socket.close();
      ok(err);
    });
  });
}

/** Records events by name and lets a test await the nth that matches. */
function recorder(emitter, events) {
  const seen = new Map(events.map((e) => [e, []]));
  const waiters = [];
  for (const event of events) {
    const on = emitter.on.bind(emitter);
    on(event, (payload) => {
      seen.get(event).push(payload);
      for (const w of [...waiters]) w();
    });
  }
  return {
    all: (event) => seen.get(event),
    /** Resolves with the events of that name matching `pred` once there are `n` of them. */
    until(event, pred = () => true, n = 1) {
      return new Promise((ok, fail) => {
        const check = () => {
          const hits = seen.get(event).filter(pred);
          if (hits.length >= n) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            ok(hits);
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          fail(new Error(`timed out waiting for ${n} ${event} (have ${JSON.stringify(seen.get(event))})`));
        }, T);
        waiters.push(check);
        check();
      });
    },
  };
}

/** Emits with an acknowledgement; resolves with the ack payload. */
export async function request(socket, event, data) {
  try {
    return await socket.timeout(T).emitWithAck(event, data);
  } catch (err) {
    throw new Error(`no acknowledgement of ${event} ${JSON.stringify(data)}: ${err.message}`);
  }
}

/** A native /ws client: resolves once `ready`; records frames by type. */
export async function connectWs(base, token) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?token=${encodeURIComponent(token)}`);
  const frames = [];
  const waiters = [];
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)));
    for (const w of [...waiters]) w();
  });
  const client = {
    ws,
    send: (frame) => ws.send(JSON.stringify(frame)),
    frames,
    until(pred, n = 1) {
      return new Promise((ok, fail) => {
        const check = () => {
          const hits = frames.filter(pred);
          if (hits.length >= n) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            ok(hits);
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          fail(new Error(`timed out waiting for ${n} frames (have ${JSON.stringify(frames)})`));
        }, T);
        waiters.push(check);
        check();
      });
    },
    close: () => ws.close(),
  };
  await client.until((f) => f.type === 'ready');
  return client;
}
