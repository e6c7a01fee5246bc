// What the service worker (./sw.ts) does with each request, and what its caches are
// called. Pure functions, unit-tested in rules.test.ts; no DOM or worker API here.
//
// - `shell`: a file of the build (precached at install, or a hashed `/assets/` file):
//   cache first. The app starts without the network.
// - `page`: a navigation to a route of the single-page app: the precached `index.html`,
//   so a deep link (`/rooms/5`) opens offline too.
// - `api`: a GET the app needs to start (room lists, a room, the newest page of a room's
//   history, DMs, notifications, me): network first, the last good answer when the
//   network fails. Kept per user (the JWT's `sub`), stored under the bare URL (the
//   request's `Authorization` header is not kept).
// - `pass`: everything else goes to the network untouched: auth endpoints (tokens and
//   cookies are never cached), invite links (their token is in the path), writes, older
//   history pages, the WebSocket, ops endpoints, other origins.

/** Every cache of the app starts with this; others of the origin are left alone. */
export const CACHE_PREFIX = 'socket-hub-';
/** Cache names of the API copies, one per user. */
export const API_CACHE_PREFIX = `${CACHE_PREFIX}api-`;

/** The app shell of one build: a new build gets a new cache, the old one is deleted. */
export const shellCacheName = (version: string) => `${CACHE_PREFIX}shell-${version}`;

/** The API copies of one user. */
export const apiCacheName = (userId: string) => `${API_CACHE_PREFIX}${userId}`;

/** Caches an activating worker of shell `version` deletes: older shells (API copies stay). */
export function staleCaches(names: string[], version: string): string[] {
  const keep = shellCacheName(version);
  return names.filter((n) => n.startsWith(CACHE_PREFIX) && !n.startsWith(API_CACHE_PREFIX) && n !== keep);
}

/** What the precache of a build holds (injected into sw.js at build time). */
export interface ShellManifest {
  /** Content hash of every precached file: changes whenever any of them does. */
  version: string;
  /** Absolute paths, `/index.html` among them. */
  files: string[];
}

/** The path a navigation is answered with. */
export const SHELL_PAGE = '/index.html';

export type Route = 'shell' | 'page' | 'api' | 'pass';

/** Paths the server owns (crates/server/src/web.rs `RESERVED`): never the app shell. */
const RESERVED = ['/api', '/ws', '/v1', '/socket.io', '/healthz', '/readyz', '/metrics'];

/** API GETs whose last answer is kept for an offline start. */
const API_KEPT = [
  /^\/api\/v1\/rooms$/,
  /^\/api\/v1\/rooms\/joined$/,
  /^\/api\/v1\/rooms\/\d+$/,
  /^\/api\/v1\/rooms\/\d+\/messages$/,
  /^\/api\/v1\/dms$/,
  /^\/api\/v1\/notifications$/,
  /^\/api\/v1\/users\/me$/,
];

const isReserved = (path: string) => RESERVED.some((p) => path === p || path.startsWith(`${p}/`));

export interface RequestInfo {
  method: string;
  url: string;
  /** `Request.mode`: `navigate` for page loads. */
  mode?: string;
}

/** The route of a request from a page of `origin`; `precached` holds the shell's paths. */
export function routeOf(req: RequestInfo, origin: string, precached: ReadonlySet<string>): Route {
  if (req.method !== 'GET') return 'pass';
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return 'pass';
  }
  if (url.origin !== origin) return 'pass';
  const path = url.pathname;
  if (path.startsWith('/api/')) {
    if (!API_KEPT.some((re) => re.test(path))) return 'pass';
    // Only the newest page of a room's history: one copy per room, never the whole past.
    if (path.endsWith('/messages') && url.searchParams.has('before_seq')) return 'pass';
    return 'api';
  }
  if (isReserved(path)) return 'pass';
  if (precached.has(path) || path.startsWith('/assets/')) return 'shell';
  if (req.mode === 'navigate') return 'page';
  return 'pass';
}

/**
 * The user a bearer token was issued to: the JWT's `sub`, read without checking the
 * signature (the server checks it; this only keeps one user's copies apart from another's
 * on a shared browser). Null when there is no readable token.
 */
export function userOfBearer(authorization: string | null | undefined): string | null {
  const m = /^Bearer\s+([\w-]+)\.([\w-]+)\.[\w-]*$/.exec(authorization ?? '');
  if (!m) return null;
  try {
    const b64 = m[2].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4))) as { sub?: unknown };
    const sub = claims?.sub;
    return typeof sub === 'string' && /^[\w-]{1,64}$/.test(sub) ? sub : null;
  } catch {
    return null;
  }
}
