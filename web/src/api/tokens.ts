// Session storage and silent refresh scheduling.
import type { Session, User } from './types';

export interface StoredSession {
  user: User;
  accessToken: string;
  refreshToken: string;
  /** Unix ms when the access token expires. */
  expiresAt: number;
}

export function toStored(s: Session, now: number): StoredSession {
  return {
    user: s.user,
    accessToken: s.access_token,
    refreshToken: s.refresh_token,
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
  load(): StoredSession | null;
  save(s: StoredSession | null): void;
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
    if (!s || typeof s.accessToken !== 'string' || typeof s.refreshToken !== 'string') return null;
    return s;
  } catch {
    return null;
  }
}

export const localSessionStore: SessionStore = {
  load() {
    try {
      return parseStoredSession(globalThis.localStorage?.getItem(KEY));
    } catch {
      return null;
    }
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
  save(s) {
    try {
      if (s) globalThis.localStorage?.setItem(KEY, JSON.stringify(s));
      else globalThis.localStorage?.removeItem(KEY);
    } catch {
      /* storage unavailable (private mode): the session lives in memory only */
    }
  },
};

export const memorySessionStore = (): SessionStore => {
  let s: StoredSession | null = null;
  return { load: () => s, save: (v) => void (s = v) };
};
