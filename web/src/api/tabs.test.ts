// Two tabs of one user share one stored session: their refreshes must never spend the
// same refresh token twice. Each "tab" is an AuthManager over a shared fake localStorage
// (whose `storage` events the test delivers when it chooses) and a shared lock.
import { describe, expect, it, vi } from 'vitest';
import { AuthManager, REFRESH_LOCK, type Clock } from './rest';
import { localLock, webLock, type LockManagerLike, type TabLock } from './tabs';
import type { SessionStore, StoredSession } from './tokens';

/** A clock whose timers never fire on their own: the refresh schedule stays out of the way. */
const clock = (): Clock & { t: number } => {
  const c = { t: 1_000_000, now: () => c.t, setTimeout: () => 0, clearTimeout: () => {} };
  return c;
};

/**
 * The tabs' shared storage, modelled on Chrome: each tab reads localStorage from its own
 * copy, which learns other tabs' writes only when the test delivers them (together with
 * the `storage` event); `latest()` (IndexedDB in the app) sees every committed write.
 */
class SharedStorage {
  value: string | null = null;
  private copies = new Map<number, string | null>();
  private watchers: { tab: number; fn: (s: StoredSession | null) => void }[] = [];
  private queued: (() => void)[] = [];

  tab(id: number): SessionStore {
    this.copies.set(id, this.value);
    const parse = (v: string | null) => (v ? (JSON.parse(v) as StoredSession) : null);
    return {
      load: () => parse(this.copies.get(id) ?? null),
      latest: async () => parse(this.value),
      save: async (s) => {
        this.value = s ? JSON.stringify(s) : null;
        this.copies.set(id, this.value);
        const value = this.value;
        for (const [tab] of this.copies)
          if (tab !== id)
            this.queued.push(() => {
              this.copies.set(tab, value);
              for (const w of this.watchers) if (w.tab === tab) w.fn(parse(value));
            });
      },
      watch: (fn) => {
        const w = { tab: id, fn };
        this.watchers.push(w);
        return () => (this.watchers = this.watchers.filter((x) => x !== w));
      },
    };
  }

  /** Syncs the tabs' localStorage copies and fires their `storage` events. */
  deliver() {
    const q = this.queued;
    this.queued = [];
    for (const fn of q) fn();
  }

  /** Other tabs never hear of the writes so far (their copies stay stale). */
  dropEvents() {
    this.queued = [];
  }
}

/**
 * The server's rotation rules over the browser's cookie jar, which every tab shares: a
 * refresh token (the cookie) works once; reuse revokes the family.
 */
function fakeServer() {
  let n = 0;
  const live = new Set<string>();
  let revoked = false;
  const spent: string[] = [];
  let cookie: string | null = null;
  const issue = () => {
    const token = `refresh-${n}`;
    const s = { user: { id: 1, username: 'ada' }, access_token: `access-${n}`, expires_in: 60 };
    n++;
    live.add(token);
    cookie = token;
    return s;
  };
  const respond = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const fetchFn = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    const path = String(url);
    if ((init?.headers as Record<string, string>)['X-Auth-Transport'] !== 'cookie') throw new Error('no cookie transport');
    if (path.endsWith('/auth/login')) return respond(200, issue());
    if (path.endsWith('/auth/refresh')) {
      const token = cookie; // what the browser attaches as the request leaves
      await new Promise((r) => setTimeout(r, 1)); // a request in flight, as tabs race
      if (token === null) return respond(401, { type: 'x', title: 'Unauthorized', status: 401, detail: '', code: 'unauthorized' });
      spent.push(token);
      if (revoked || !live.has(token)) {
        revoked = true;
        return respond(401, { type: 'x', title: 'Unauthorized', status: 401, detail: 'reused', code: 'refresh_reused' });
      }
      live.delete(token);
      return respond(200, issue());
    }
    if (path.endsWith('/auth/logout')) {
      cookie = null;
      return new Response(null, { status: 204 });
    }
    throw new Error(`unexpected ${path}`);
  });
  return { fetchFn: fetchFn as unknown as typeof fetch, spent, revoked: () => revoked, cookie: () => cookie };
}

async function twoTabs(lock: TabLock = localLock()) {
  const storage = new SharedStorage();
  const server = fakeServer();
  const c = clock();
  const a = new AuthManager('/api/v1', storage.tab(1), server.fetchFn, c, lock);
  await a.login('ada', 'password1');
  const storeB = storage.tab(2);
  const b = new AuthManager('/api/v1', storeB, server.fetchFn, c, lock); // opened later: loads the session
  storage.deliver();
  return { a, b, storeB, storage, server, clock: c };
}

describe('refresh across tabs', () => {
  it('two tabs refreshing at once spend the refresh token once and both stay logged in', async () => {
    const { a, b, server } = await twoTabs();
    expect(b.session?.accessToken).toBe('access-0');
    const [sa, sb] = await Promise.all([a.refresh(), b.refresh()]);
    expect(server.spent).toEqual(['refresh-0']);
    expect(server.revoked()).toBe(false);
    expect(sa?.accessToken).toBe('access-1');
    expect(sb?.accessToken).toBe('access-1');
    expect(a.session?.accessToken).toBe('access-1');
    expect(b.session?.accessToken).toBe('access-1');
    a.dispose();
    b.dispose();
  });

  it('several rounds in turn: every refresh token is spent exactly once', async () => {
    const { a, b, server, storage } = await twoTabs();
    for (let round = 0; round < 4; round++) {
      await Promise.all([b.refresh(), a.refresh(), b.refresh()]);
      if (round % 2) storage.deliver();
      else storage.dropEvents(); // events late or lost: the lock + re-read still holds
    }
    expect(server.spent).toEqual(['refresh-0', 'refresh-1', 'refresh-2', 'refresh-3']);
    expect(new Set(server.spent).size).toBe(server.spent.length);
    expect(server.revoked()).toBe(false);
    expect(a.session).not.toBeNull();
    expect(b.session).not.toBeNull();
    a.dispose();
    b.dispose();
  });

  it('a tab adopts the tokens another tab stored, and tells its listeners (the socket)', async () => {
    const { a, b, storage, server } = await twoTabs();
    const seenByB: (string | null)[] = [];
    b.subscribe((s) => seenByB.push(s?.accessToken ?? null));
    await a.refresh();
    storage.deliver(); // the `storage` event
    expect(seenByB).toEqual(['access-1']);
    expect(b.session?.accessToken).toBe('access-1');
    expect(await b.accessToken()).toBe('access-1'); // still fresh: no refresh of its own
    expect(server.spent).toEqual(['refresh-0']);
    a.dispose();
    b.dispose();
  });

  it('a tab whose localStorage copy lags reads the newest tokens under the lock instead of refreshing', async () => {
    const { a, b, storeB, storage, server } = await twoTabs();
    await a.refresh();
    storage.dropEvents();
    expect(b.session?.accessToken).toBe('access-0'); // stale in memory ...
    expect(storeB.load()?.accessToken).toBe('access-0'); // ... and in its localStorage copy
    const s = await b.refresh();
    expect(s?.accessToken).toBe('access-1');
    expect(server.spent).toEqual(['refresh-0']);
    a.dispose();
    b.dispose();
  });

  it('a nearly expired session from another tab is refreshed, not adopted', async () => {
    const { a, b, storage, server, clock: c } = await twoTabs();
    await a.refresh();
    storage.dropEvents();
    c.t += 59_500; // access-1 has half a second left
    await b.refresh();
    expect(server.spent).toEqual(['refresh-0', 'refresh-1']);
    expect(b.session?.accessToken).toBe('access-2');
    storage.deliver();
    expect(a.session?.accessToken).toBe('access-2');
    a.dispose();
    b.dispose();
  });

  it('logging out in one tab logs out the others', async () => {
    const { a, b, storage } = await twoTabs();
    const seenByB: (string | null)[] = [];
    b.subscribe((s) => seenByB.push(s?.accessToken ?? null));
    await a.logout().catch(() => {});
    storage.deliver();
    expect(b.session).toBeNull();
    expect(seenByB).toEqual([null]);
    a.dispose();
    b.dispose();
  });
});

describe('tab locks', () => {
  it('webLock runs the refresh inside navigator.locks, under the refresh lock name', async () => {
    const names: string[] = [];
    const locks: LockManagerLike = {
      request: async (name, fn) => {
        names.push(name);
        return fn();
      },
    };
    expect(await webLock(locks)(REFRESH_LOCK, async () => 42)).toBe(42);
    expect(names).toEqual([REFRESH_LOCK]);
    // Without the Web Locks API the callback still runs.
    expect(await webLock(undefined)('x', async () => 'ran')).toBe('ran');
  });

  it('localLock serializes callers, also after a failure', async () => {
    const lock = localLock();
    const order: string[] = [];
    const slow = lock('n', async () => {
      order.push('a start');
      await new Promise((r) => setTimeout(r, 5));
      order.push('a end');
      throw new Error('a failed');
    });
    const next = lock('n', async () => {
      order.push('b');
      return 'b';
    });
    await expect(slow).rejects.toThrow('a failed');
    expect(await next).toBe('b');
    expect(order).toEqual(['a start', 'a end', 'b']);
  });
});
