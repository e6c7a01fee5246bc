import { describe, expect, it } from 'vitest';
import { API_CACHE_PREFIX as PAGE_API_CACHE_PREFIX } from '../pwa/pwa';
import { API_CACHE_PREFIX, apiCacheName, routeOf, shellCacheName, staleCaches, userOfBearer } from './rules';

const ORIGIN = 'https://chat.example';
const SHELL = new Set(['/index.html', '/assets/index-abc.js', '/manifest.webmanifest', '/icons/icon-192.png']);
const get = (path: string, mode = 'cors') => routeOf({ method: 'GET', url: ORIGIN + path, mode }, ORIGIN, SHELL);

/** A JWT with these claims (unsigned: the worker never checks the signature). */
const jwt = (claims: unknown) =>
  `${btoa('{"alg":"HS256"}')}.${btoa(JSON.stringify(claims)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')}.sig`;

describe('routeOf', () => {
  it('serves the shell from the precache, navigations with the app page', () => {
    expect(get('/assets/index-abc.js')).toBe('shell');
    expect(get('/assets/from-an-older-build.js')).toBe('shell');
    expect(get('/manifest.webmanifest')).toBe('shell');
    expect(get('/icons/icon-192.png')).toBe('shell');
    expect(get('/', 'navigate')).toBe('page');
    expect(get('/rooms/5', 'navigate')).toBe('page');
    expect(get('/invite/some-token', 'navigate')).toBe('page');
  });

  it('keeps the API answers an offline start needs', () => {
    for (const path of [
      '/api/v1/rooms',
      '/api/v1/rooms?after=20',
      '/api/v1/rooms/joined',
      '/api/v1/rooms/joined?after=3',
      '/api/v1/rooms/5',
      '/api/v1/rooms/5/messages?limit=50',
      '/api/v1/dms',
      '/api/v1/notifications?limit=200',
      '/api/v1/users/me',
    ])
      expect(get(path), path).toBe('api');
  });

  it('never touches auth, invite tokens, writes, older pages, the socket, ops or other origins', () => {
    for (const path of [
      '/api/v1/auth/refresh',
      '/api/v1/auth/login',
      '/api/v1/auth/logout',
      '/api/v1/invites/secret-token',
      '/api/v1/rooms/5/messages?limit=50&before_seq=10',
      '/api/v1/rooms/5/members',
      '/api/v1/rooms/5/bans',
      '/api/openapi.json',
      '/ws',
      '/healthz',
      '/readyz',
      '/metrics',
      '/socket.io/?EIO=4',
    ])
      expect(get(path, path.startsWith('/api') ? 'cors' : 'navigate'), path).toBe('pass');
    expect(routeOf({ method: 'POST', url: `${ORIGIN}/api/v1/rooms/5/messages` }, ORIGIN, SHELL)).toBe('pass');
    expect(routeOf({ method: 'POST', url: `${ORIGIN}/api/v1/auth/refresh` }, ORIGIN, SHELL)).toBe('pass');
    expect(routeOf({ method: 'GET', url: 'https://elsewhere.example/assets/index-abc.js' }, ORIGIN, SHELL)).toBe('pass');
    expect(routeOf({ method: 'GET', url: 'not a url' }, ORIGIN, SHELL)).toBe('pass');
    // A plain fetch of an unknown top-level file is not a navigation: it goes to the server.
    expect(get('/robots.txt')).toBe('pass');
  });
});

describe('userOfBearer', () => {
  it('reads the user id of a bearer JWT', () => {
    expect(userOfBearer(`Bearer ${jwt({ sub: '42', exp: 1 })}`)).toBe('42');
  });

  it('is null for anything else', () => {
    for (const h of [
      null,
      undefined,
      '',
      'Basic abc',
      'Bearer not-a-jwt',
      `Bearer ${jwt({ exp: 1 })}`,
      `Bearer ${jwt({ sub: 42 })}`,
      `Bearer ${jwt({ sub: '../../etc' })}`,
      'Bearer a.%%%.c',
    ])
      expect(userOfBearer(h), String(h)).toBeNull();
  });
});

describe('cache names', () => {
  it('an activating worker deletes older shells only', () => {
    const names = [shellCacheName('v1'), shellCacheName('v2'), apiCacheName('42'), 'someone-elses-cache'];
    expect(staleCaches(names, 'v2')).toEqual([shellCacheName('v1')]);
  });

  it('the page drops the caches the worker fills', () => {
    expect(PAGE_API_CACHE_PREFIX).toBe(API_CACHE_PREFIX);
    expect(apiCacheName('42').startsWith(PAGE_API_CACHE_PREFIX)).toBe(true);
  });
});
