// The service worker, served as `/sw.js` (scope `/`). Built by vite.config.ts as its
// own entry; the `shellManifest()` plugin there replaces `self.__SHELL_MANIFEST` with the
// build's file list and version. Routing rules: ./rules.ts.
//
// Install precaches the shell of this build; activate deletes the shells of older builds
// and takes over open pages at once (a new build's worker never waits for every tab to
// close: the shell it serves is complete and consistent by itself).
/// <reference lib="webworker" />
import {
  SHELL_PAGE,
  apiCacheName,
  routeOf,
  shellCacheName,
  staleCaches,
  userOfBearer,
  type ShellManifest,
} from './rules';

declare const self: ServiceWorkerGlobalScope & { __SHELL_MANIFEST: ShellManifest };

const manifest = self.__SHELL_MANIFEST;
const SHELL = shellCacheName(manifest.version);
const precached = new Set(manifest.files);

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL);
      // `no-cache`: revalidate with the server, never take a stale HTTP-cached index.html.
      await cache.addAll(manifest.files.map((f) => new Request(f, { cache: 'no-cache' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of staleCaches(await caches.keys(), manifest.version)) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  switch (routeOf(request, self.location.origin, precached)) {
    case 'shell':
      event.respondWith(shellFirst(request));
      return;
    case 'page':
      event.respondWith(page(request));
      return;
    case 'api':
      event.respondWith(apiNetworkFirst(event));
      return;
    case 'pass':
      return; // the browser fetches it as if there were no worker
  }
});

async function shellFirst(request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  const hit = await caches.match(path, { cacheName: SHELL });
  return hit ?? fetch(request);
}

/** Navigations get the precached page (instant, offline too); the network if it is missing. */
async function page(request: Request): Promise<Response> {
  const hit = await caches.match(SHELL_PAGE, { cacheName: SHELL });
  return hit ?? fetch(request);
}

/**
 * The network's answer, kept when it is a success; when the network fails, the last kept
 * answer for this user and URL (or the failure).
 */
async function apiNetworkFirst(event: FetchEvent): Promise<Response> {
  const { request } = event;
  const user = userOfBearer(request.headers.get('Authorization'));
  if (!user) return fetch(request);
  const key = request.url; // the bare URL: the token in the request is not stored
  try {
    const response = await fetch(request);
    if (response.status === 200) {
      const copy = response.clone();
      event.waitUntil(caches.open(apiCacheName(user)).then((c) => c.put(key, copy)));
    }
    return response;
  } catch (err) {
    const cache = await caches.open(apiCacheName(user));
    const hit = await cache.match(key, { ignoreVary: true });
    if (hit) return hit;
    throw err;
  }
}
