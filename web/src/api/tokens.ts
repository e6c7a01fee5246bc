// Session storage and silent refresh scheduling.
import type { Session, User } from './types';

/**
 * What a tab keeps of a session. The refresh token is not part of it: the server keeps it
 * in an HttpOnly cookie (`X-Auth-Transport: cookie`) that no script can read, so an
 * injected script cannot carry the 30-day credential away; only the short-lived access
 * token is here, because the WebSocket's `auth` frame and REST calls need it.
 */
export interface StoredSession {
  user: User;
  accessToken: string;
  /** Unix ms when the access token expires. */
  expiresAt: number;
}

/** A session body as the cookie transport returns it: no `refresh_token`. */
export type SessionBody = Omit<Session, 'refresh_token'> & { refresh_token?: string };

export function toStored(s: SessionBody, now: number): StoredSession {
  return {
    user: s.user,
    accessToken: s.access_token,
    expiresAt: now + s.expires_in * 1000,
  };
}

/**
 * Milliseconds from `now` until the token should be refreshed: after 80% of its
 * remaining lifetime, but at least min(30 s, half of it) before expiry, never negative.
 * A 900 s token refreshes after 720 s, a 60 s one after 30 s, a 10 s one after 5 s.
 */
export function refreshDelayMs(expiresAt: number, now: number, lifetimeMs?: number): number {
  const left = expiresAt - now;
  if (left <= 0) return 0;
  const lifetime = lifetimeMs ?? left;
  const margin = Math.max(Math.min(30_000, lifetime * 0.5), lifetime * 0.2);
  return Math.max(0, Math.floor(left - margin));
}

/** Whether the token is (nearly) expired and must be refreshed before use. */
export function needsRefresh(expiresAt: number, now: number, skewMs = 5_000): boolean {
  return expiresAt - now <= skewMs;
}

export interface SessionStore {
  /** The stored session, synchronously (first render). May lag behind other tabs. */
  load(): StoredSession | null;
  /**
   * Stores the session. A returned promise resolves once `latest()` in every tab sees it;
   * a refresh waits for it before releasing the cross-tab lock.
   */
  save(s: StoredSession | null): void | Promise<void>;
  /**
   * The stored session as every tab sees it right now, read under the refresh lock.
   * Absent when `load()` is exact (stores no other tab can see).
   */
  latest?(): Promise<StoredSession | null>;
  /**
   * Calls `fn` with the stored session whenever another tab changes it (a refresh, a
   * login, a logout), so every tab uses the newest tokens. Returns an unsubscribe.
   * Absent for stores no other tab can see.
   */
  watch?(fn: (s: StoredSession | null) => void): () => void;
}

/** The localStorage key of the session; shared by every tab of the origin. */
export const SESSION_KEY = 'socket-hub.session';
const KEY = SESSION_KEY;

/** Parses a stored session; null for anything that is not one. */
export function parseStoredSession(raw: string | null | undefined): StoredSession | null {
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as StoredSession;
    if (!s || typeof s.accessToken !== 'string' || typeof s.expiresAt !== 'number' || !s.user) return null;
    // Only these fields: a refresh token an older version stored is never written back.
    return { user: s.user, accessToken: s.accessToken, expiresAt: s.expiresAt };
  } catch {
    return null;
  }
}

const IDB_NAME = 'socket-hub';
const IDB_STORE = 'session';

let idb: Promise<IDBDatabase> | null = null;

/** The app's IndexedDB database (one object store, one key), opened once per tab. */
function openIdb(): Promise<IDBDatabase> {
  idb ??= new Promise<IDBDatabase>((ok, fail) => {
    const req = globalThis.indexedDB.open(IDB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(IDB_STORE);
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(req.error);
    req.onblocked = () => fail(new Error('IndexedDB blocked'));
  });
  idb.catch(() => (idb = null));
  return idb;
}

/** Runs one request in its own transaction; resolves when the transaction has committed. */
async function idbRun<T>(mode: IDBTransactionMode, op: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openIdb();
  return new Promise<T>((ok, fail) => {
    const tx = db.transaction(IDB_STORE, mode);
    const req = op(tx.objectStore(IDB_STORE));
    tx.oncomplete = () => ok(req.result);
    tx.onerror = tx.onabort = () => fail(tx.error ?? req.error);
  });
}

/**
 * The session in localStorage (read synchronously at start; its `storage` event tells other
 * tabs at once) and mirrored in IndexedDB. The mirror is what a tab reads under the refresh
 * lock: Chrome caches localStorage per renderer process and syncs the copies
 * asynchronously, so a tab that gets the lock right after another tab refreshed can still
 * read the spent refresh token there; a committed IndexedDB write is visible to the next
 * transaction of every tab.
 */
export const localSessionStore: SessionStore = {
  load() {
    try {
      const raw = globalThis.localStorage?.getItem(KEY);
      const s = parseStoredSession(raw);
      // An older version kept the refresh token here: drop it (the session then lasts
      // until its access token expires, as the server never set the cookie for it).
      if (s && raw?.includes('"refreshToken"')) void this.save(s);
      return s;
    } catch {
      return null;
    }
  },
  save(s) {
    try {
      if (s) globalThis.localStorage?.setItem(KEY, JSON.stringify(s));
      else globalThis.localStorage?.removeItem(KEY);
    } catch {
      /* storage unavailable (private mode): the session lives in memory only */
    }
    if (!globalThis.indexedDB) return;
    return idbRun('readwrite', (store) => store.put(s ? JSON.stringify(s) : '', KEY)).then(
      () => undefined,
      () => undefined, // no IndexedDB: latest() falls back to localStorage
    );
  },
  async latest() {
    if (globalThis.indexedDB) {
      try {
        const raw = await idbRun<unknown>('readonly', (store) => store.get(KEY));
        // Written by this version of the app ('' after a logout); else not mirrored yet.
        if (typeof raw === 'string') return parseStoredSession(raw);
      } catch {
        /* fall back to localStorage */
      }
    }
    return this.load();
  },
  // The `storage` event fires in every other tab of the origin when one writes the key.
  watch(fn) {
    const target = globalThis.window;
    if (!target?.addEventListener) return () => {};
    const onStorage = (e: StorageEvent) => {
      if (e.key === KEY || e.key === null) fn(parseStoredSession(e.key === null ? null : e.newValue));
    };
    target.addEventListener('storage', onStorage);
    return () => target.removeEventListener('storage', onStorage);
  },
};

export const memorySessionStore = (): SessionStore => {
  let s: StoredSession | null = null;
  return { load: () => s, save: (v) => void (s = v) };
};
