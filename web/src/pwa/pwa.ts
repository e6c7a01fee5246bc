// The installable app, page side: registers the service worker (src/sw/sw.ts, served as
// /sw.js) and forgets what this browser kept for a user when they log out.

/**
 * The service worker's API caches (src/sw/rules.ts `API_CACHE_PREFIX`; not imported from
 * there: the worker must share no module with the app, see vite.config.ts).
 */
export const API_CACHE_PREFIX = 'socket-hub-api-';

/**
 * Registers `/sw.js` for the whole origin. Production builds only: the Vite dev server
 * has no sw.js (its modules are not the precached bundle).
 */
export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return;
  const register = () =>
    navigator.serviceWorker
      .register('/sw.js', { scope: '/', updateViaCache: 'none' })
      .catch((err) => console.warn('service worker not registered:', err));
  if (document.readyState === 'complete') void register();
  else window.addEventListener('load', () => void register(), { once: true });
}

/**
 * Deletes the service worker's copies of API answers (every user's: this is a logout on
 * this device). The worker keeps them per user anyway; this is for shared devices.
 */
export async function dropApiCopies(): Promise<void> {
  if (typeof caches === 'undefined') return;
  try {
    for (const name of await caches.keys()) if (name.startsWith(API_CACHE_PREFIX)) await caches.delete(name);
  } catch {
    /* no CacheStorage (insecure context): nothing was kept */
  }
}

/** What logging out needs of the app: the session and the chat client's outbox. */
interface LogOutDeps {
  auth: { logout(): Promise<void> };
  client: { clearOutbox(): Promise<void> };
}

/**
 * Logs out and forgets what this browser kept for offline use: unsent messages (the
 * outbox) and the copies of recent history. On a shared device nothing stays behind.
 */
export async function logOut({ auth, client }: LogOutDeps): Promise<void> {
  await Promise.allSettled([client.clearOutbox(), dropApiCopies()]);
  await auth.logout();
}
