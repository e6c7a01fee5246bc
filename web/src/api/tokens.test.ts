import { describe, expect, it, vi } from 'vitest';
import { AuthManager, RestClient, type Clock } from './rest';
import { memorySessionStore, needsRefresh, refreshDelayMs } from './tokens';

describe('refresh scheduling', () => {
  it('refreshes well before expiry', () => {
    expect(refreshDelayMs(900_000, 0)).toBe(720_000);
    expect(refreshDelayMs(60_000, 0)).toBe(30_000);
    expect(refreshDelayMs(10_000, 0)).toBe(5_000);
    expect(refreshDelayMs(1_000, 5_000)).toBe(0);
  });
  it('knows when a token is too old to use', () => {
    expect(needsRefresh(10_000, 0)).toBe(false);
    expect(needsRefresh(10_000, 6_000)).toBe(true);
  });
});

class FakeClock implements Clock {
  t = 0;
  timers: { at: number; fn: () => void; id: number }[] = [];
  private next = 1;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.next++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== id);
  };
  advance(ms: number) {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.clearTimeout(due.id);
      due.fn();
    }
  }
}

const session = (n: number, expiresIn = 60) => ({
  user: { id: 1, username: 'ada' },
  access_token: `access-${n}`,
  refresh_token: `refresh-${n}`,
  expires_in: expiresIn,
});

/** What the cookie transport answers: the refresh token went into the cookie. */
const cookieSession = (n: number, expiresIn = 60) => {
  const { refresh_token: _inCookie, ...body } = session(n, expiresIn);
  return body;
};

const jsonResponse = (status: number, body: unknown) =>
  new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });

describe('AuthManager', () => {
  it('logs in, refreshes silently on schedule and notifies listeners', async () => {
    const clock = new FakeClock();
    let n = 0;
    const fetchFn = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
      // Every auth call asks for the cookie transport; the refresh token is never in a body.
      expect((init?.headers as Record<string, string>)['X-Auth-Transport']).toBe('cookie');
      if (String(url).endsWith('/auth/login')) return jsonResponse(200, cookieSession(n++));
      if (String(url).endsWith('/auth/refresh')) {
        expect(init?.body).toBeUndefined();
        return jsonResponse(200, cookieSession(n++));
      }
      throw new Error(`unexpected ${url}`);
    });
    const auth = new AuthManager('/api/v1', memorySessionStore(), fetchFn as typeof fetch, clock);
    const seen: string[] = [];
    auth.subscribe((s) => s && seen.push(s.accessToken));
    await auth.login('ada', 'password1');
    expect(seen).toEqual(['access-0']);
    clock.advance(29_000);
    expect(fetchFn).toHaveBeenCalledTimes(1);
    clock.advance(1_000); // 30 s into a 60 s token
    await vi.waitFor(() => expect(seen).toEqual(['access-0', 'access-1']));
    expect(auth.session?.accessToken).toBe('access-1');
    expect(JSON.stringify(auth.session)).not.toContain('refresh');
    auth.dispose();
  });

  it('never spends the same refresh token twice (single flight)', async () => {
    const clock = new FakeClock();
    let refreshes = 0;
    const fetchFn = vi.fn(async (url: string | URL | Request) => {
      if (String(url).endsWith('/auth/login')) return jsonResponse(200, session(0));
      refreshes++;
      await new Promise((r) => setTimeout(r, 5));
      return jsonResponse(200, session(1));
    });
    const auth = new AuthManager('/api/v1', memorySessionStore(), fetchFn as typeof fetch, clock);
    await auth.login('ada', 'password1');
    const [a, b] = await Promise.all([auth.refresh(), auth.refresh()]);
    expect(refreshes).toBe(1);
    expect(a?.accessToken).toBe('access-1');
    expect(b?.accessToken).toBe('access-1');
    auth.dispose();
  });

  it('logs out when the refresh token is rejected', async () => {
    const clock = new FakeClock();
    const fetchFn = vi.fn(async (url: string | URL | Request) => {
      if (String(url).endsWith('/auth/login')) return jsonResponse(200, session(0));
      return jsonResponse(401, { type: 'x', title: 'Unauthorized', status: 401, detail: 'reused', code: 'refresh_reused' });
    });
    const auth = new AuthManager('/api/v1', memorySessionStore(), fetchFn as typeof fetch, clock);
    await auth.login('ada', 'password1');
    expect(await auth.refresh()).toBeNull();
    expect(auth.session).toBeNull();
  });

  it('keeps the session when the refresh is only refused for now (429)', async () => {
    const clock = new FakeClock();
    const fetchFn = vi.fn(async (url: string | URL | Request) => {
      if (String(url).endsWith('/auth/login')) return jsonResponse(200, session(0));
      return jsonResponse(429, { type: 'x', title: 'Too Many Requests', status: 429, detail: 'slow down', code: 'rate_limited' });
    });
    const auth = new AuthManager('/api/v1', memorySessionStore(), fetchFn as typeof fetch, clock);
    await auth.login('ada', 'password1');
    await expect(auth.refresh()).rejects.toMatchObject({ code: 'rate_limited' });
    expect(auth.session?.accessToken).toBe('access-0');
    auth.dispose();
  });

  it('turns problem documents into words a person understands', async () => {
    const fetchFn = vi.fn(async () =>
      jsonResponse(401, { type: 'x', title: 'Unauthorized', status: 401, detail: 'wrong', code: 'invalid_credentials' }),
    );
    const auth = new AuthManager('/api/v1', memorySessionStore(), fetchFn as typeof fetch, new FakeClock());
    await expect(auth.login('ada', 'nope-nope')).rejects.toThrow('Wrong username or password.');
  });

  it('RestClient refreshes and retries once on token_expired', async () => {
    const clock = new FakeClock();
    const calls: string[] = [];
    const fetchFn = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
      const u = String(url);
      const authz = (init?.headers as Record<string, string> | undefined)?.Authorization ?? '';
      calls.push(`${u} ${authz}`);
      if (u.endsWith('/auth/login')) return jsonResponse(200, session(0, 900));
      if (u.endsWith('/auth/refresh')) return jsonResponse(200, session(1, 900));
      if (authz === 'Bearer access-0')
        return jsonResponse(401, { type: 'x', title: 'Unauthorized', status: 401, detail: '', code: 'token_expired' });
      return jsonResponse(200, { rooms: [] });
    });
    const auth = new AuthManager('/api/v1', memorySessionStore(), fetchFn as typeof fetch, clock);
    await auth.login('ada', 'password1');
    const rest = new RestClient(auth, '/api/v1', fetchFn as typeof fetch);
    expect(await rest.rooms()).toEqual([]);
    expect(calls.slice(1)).toEqual([
      '/api/v1/rooms/joined Bearer access-0',
      '/api/v1/auth/refresh ',
      '/api/v1/rooms/joined Bearer access-1',
      '/api/v1/rooms Bearer access-1',
    ]);
    auth.dispose();
  });

  it('RestClient lists the caller\'s rooms first and follows next on every list', async () => {
    const clock = new FakeClock();
    const calls: string[] = [];
    const room = (id: number, is_member: boolean) => ({
      id, name: `r${id}`, is_private: false, owner_id: 1, last_seq: 0, created_at: '', member_count: 1, is_member, last_read_seq: 0,
    });
    const fetchFn = vi.fn(async (url: string | URL | Request) => {
      const u = String(url);
      if (u.endsWith('/auth/login')) return jsonResponse(200, session(0, 900));
      calls.push(u);
      if (u.endsWith('/rooms/joined')) return jsonResponse(200, { rooms: [room(9, true)] });
      if (u.endsWith('/rooms')) return jsonResponse(200, { rooms: [room(1, false), room(2, false)], next: 2 });
      if (u.endsWith('/rooms?after=2')) return jsonResponse(200, { rooms: [room(9, true)] });
      return jsonResponse(404, { type: 'x', title: 'Not Found', status: 404, detail: '', code: 'not_found' });
    });
    const auth = new AuthManager('/api/v1', memorySessionStore(), fetchFn as typeof fetch, clock);
    await auth.login('ada', 'password1');
    const rest = new RestClient(auth, '/api/v1', fetchFn as typeof fetch);
    expect((await rest.rooms()).map((r) => r.id)).toEqual([9, 1, 2]);
    expect(calls).toEqual(['/api/v1/rooms/joined', '/api/v1/rooms', '/api/v1/rooms?after=2']);
    auth.dispose();
  });
});
