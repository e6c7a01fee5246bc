// The REST half of the protocol: auth with silent refresh, rooms, history.
import { ApiError } from './errors';
import {
  localSessionStore,
  needsRefresh,
  refreshDelayMs,
  toStored,
  type SessionBody,
  type SessionStore,
  type StoredSession,
} from './tokens';
import { webLock, type TabLock } from './tabs';
import type {
  AccountExport,
  PresenceList,
  UserPage,
  UserPresence,
  Ban,
  BanList,
  DirectList,
  DirectView,
  Invitation,
  InvitationList,
  InviteLink,
  InviteLinkList,
  InvitePreview,
  Member,
  Message,
  MessagePage,
  NotificationList,
  ReadReceipt,
  ReadReceipts,
  Role,
  RoomId,
  RoomList,
  Profile,
  RoomView,
  SearchResults,
  Seq,
  UpdateProfile,
  UpdateRoom,
  User,
  UserId,
} from './types';

type FetchFn = typeof fetch;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

async function call<T>(fetchFn: FetchFn, url: string, init: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetchFn(url, init);
  } catch {
    throw new ApiError(0, 'network', '');
  }
  const body = await readBody(res);
  if (!res.ok) throw ApiError.fromProblem(res.status, body);
  return body as T;
}

const json = (method: string, body?: unknown, token?: string, extra: Record<string, string> = {}): RequestInit => ({
  method,
  headers: {
    ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
    Accept: 'application/json',
    ...extra,
  },
  body: body !== undefined ? JSON.stringify(body) : undefined,
});

/**
 * Asks the auth endpoints for the cookie transport: the refresh token travels only in an
 * HttpOnly, SameSite=Strict cookie scoped to `/api/v1/auth`, never in a body this code
 * sees. Being a custom header, it also proves the request comes from this origin's own
 * script (a cross-site page cannot send it without a CORS preflight the server refuses).
 */
export const COOKIE_TRANSPORT = { 'X-Auth-Transport': 'cookie' } as const;

/** An auth call with the cookie transport; `fetch` sends same-origin cookies by default. */
const authCall = (body?: unknown): RequestInit => ({
  ...json('POST', body, undefined, COOKIE_TRANSPORT),
  credentials: 'same-origin',
});

/** Name of the cross-tab lock held around every refresh. */
export const REFRESH_LOCK = 'socket-hub.refresh';

/** A stored token this close to expiry is refreshed rather than adopted from another tab. */
const MIN_ADOPT_LIFE_MS = 1_000;

/** The server refused the refresh token itself (not: unreachable, overloaded, too fast). */
const isRejection = (err: unknown) =>
  err instanceof ApiError && err.code !== 'network' && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;

/** The same issue of a session: two access tokens issued in one second can be equal. */
const sameSession = (a: StoredSession | null, b: StoredSession | null) =>
  a === b || (!!a && !!b && a.accessToken === b.accessToken && a.expiresAt === b.expiresAt);

/**
 * Owns the token pair: logs in, refreshes silently before expiry and tells listeners
 * about every new access token — the WebSocket re-authenticates with it.
 *
 * The refresh token is an HttpOnly cookie this code never sees (see {@link COOKIE_TRANSPORT});
 * every tab of the browser sends the same one, and it is single-use. So a refresh is single
 * flight within the tab, and across tabs it runs under one lock ({@link REFRESH_LOCK}):
 * inside it the stored session (user and access token) is read again, and when another tab
 * has refreshed meanwhile its access token is adopted instead of rotating the cookie again.
 * Tabs also adopt each other's access tokens as soon as they are stored
 * (`SessionStore.watch`). A reload keeps the session: an expired stored access token is
 * refreshed through the cookie.
 */
export class AuthManager {
  private current: StoredSession | null;
  private timer: unknown = null;
  private inflight: Promise<StoredSession | null> | null = null;
  private listeners = new Set<(s: StoredSession | null) => void>();
  private unwatch: (() => void) | null;

  constructor(
    private readonly base = '/api/v1',
    private readonly store: SessionStore = localSessionStore,
    private readonly fetchFn: FetchFn = (...a) => globalThis.fetch(...a),
    private readonly clock: Clock = realClock,
    private readonly lock: TabLock = webLock(),
  ) {
    this.current = store.load();
    this.unwatch = store.watch?.((s) => this.adopt(s)) ?? null;
    if (this.current) this.schedule();
  }

  get session(): StoredSession | null {
    return this.current;
  }

  get user(): User | null {
    return this.current?.user ?? null;
  }

  subscribe(fn: (s: StoredSession | null) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async register(username: string, password: string): Promise<User> {
    return this.start('register', username, password);
  }

  async login(username: string, password: string): Promise<User> {
    return this.start('login', username, password);
  }

  private async start(kind: 'register' | 'login', username: string, password: string): Promise<User> {
    const s = await call<SessionBody>(this.fetchFn, `${this.base}/auth/${kind}`, authCall({ username, password }));
    void this.set(toStored(s, this.clock.now()));
    return s.user;
  }

  async logout(): Promise<void> {
    const s = this.current;
    void this.set(null);
    if (s) {
      try {
        // Revokes the session and clears the cookie.
        await call<void>(this.fetchFn, `${this.base}/auth/logout`, authCall());
      } catch {
        /* logged out locally either way */
      }
    }
  }

  /** A valid access token, refreshing first when it is about to expire. */
  async accessToken(): Promise<string | null> {
    const s = this.current;
    if (!s) return null;
    if (needsRefresh(s.expiresAt, this.clock.now())) {
      const fresh = await this.refresh();
      return fresh?.accessToken ?? null;
    }
    return s.accessToken;
  }

  /**
   * Exchanges the refresh token for a new pair. Concurrent calls share one request, and
   * across tabs one refresh runs at a time (see the class comment). A rejected refresh
   * (spent/revoked/expired) logs out; a network failure keeps the session and retries later.
   */
  refresh(): Promise<StoredSession | null> {
    if (this.inflight) return this.inflight;
    const s = this.current;
    if (!s) return Promise.resolve(null);
    const flight: Promise<StoredSession | null> = this.lock(REFRESH_LOCK, () => this.refreshLocked(s)).finally(() => {
      if (this.inflight === flight) this.inflight = null;
    });
    this.inflight = flight;
    return flight;
  }

  /** The refresh proper, holding the cross-tab lock; `seen` is the session it replaces. */
  private async refreshLocked(seen: StoredSession): Promise<StoredSession | null> {
    // While this tab waited for the lock, another may have refreshed (its tokens may have
    // reached us already, or be only in the store so far) or logged out.
    if (!sameSession(this.current, seen)) return this.current;
    const stored = this.store.latest ? await this.store.latest() : this.store.load();
    if (!sameSession(this.current, seen)) return this.current; // adopted while reading
    // Another tab refreshed meanwhile (the cookie already holds its successor): use its
    // access token unless it is about to expire too.
    if (stored && !sameSession(stored, seen) && stored.expiresAt - this.clock.now() > MIN_ADOPT_LIFE_MS) {
      this.adopt(stored);
      return stored;
    }
    try {
      // The refresh token is the cookie, which the browser attaches; nothing in the body.
      const next = await call<SessionBody>(this.fetchFn, `${this.base}/auth/refresh`, authCall());
      if (!this.current) return null; // logged out meanwhile
      const fresh = toStored(next, this.clock.now());
      // Other tabs must be able to read the new tokens before this one releases the lock.
      await this.set(fresh);
      return fresh;
    } catch (err) {
      if (isRejection(err)) {
        if (sameSession(this.current, seen) || sameSession(this.current, stored)) await this.set(null);
        return this.current;
      }
      this.retryLater();
      throw err;
    }
  }

  /** A session another tab stored: use it (no store write, no refresh). */
  private adopt(s: StoredSession | null) {
    if (sameSession(s, this.current)) return;
    this.current = s;
    this.schedule();
    for (const fn of this.listeners) fn(s);
  }

  /** Uses and stores `s`; resolves once every tab can read it (see `SessionStore.save`). */
  private set(s: StoredSession | null): Promise<void> {
    this.current = s;
    const saved = this.store.save(s);
    this.schedule();
    for (const fn of this.listeners) fn(s);
    return Promise.resolve(saved);
  }

  private schedule() {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const s = this.current;
    if (!s) return;
    const delay = refreshDelayMs(s.expiresAt, this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.refresh().catch(() => {});
    }, delay);
  }

  private retryLater() {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.refresh().catch(() => {});
    }, 5_000);
  }

  /** Stops timers and stops following other tabs (tests, teardown). */
  dispose() {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.listeners.clear();
    this.unwatch?.();
    this.unwatch = null;
  }
}

/** Typed REST calls; retries once after a refresh when the access token was stale. */
export class RestClient {
  constructor(
    private readonly auth: AuthManager,
    private readonly base = '/api/v1',
    private readonly fetchFn: FetchFn = (...a) => globalThis.fetch(...a),
  ) {}

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = await this.tokenFor(method);
    if (!token) throw new ApiError(401, 'unauthorized', '');
    try {
      return await call<T>(this.fetchFn, `${this.base}${path}`, json(method, body, token));
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'token_expired' || err.code === 'unauthorized')) {
        const fresh = await this.auth.refresh();
        if (!fresh) throw err;
        return call<T>(this.fetchFn, `${this.base}${path}`, json(method, body, fresh.accessToken));
      }
      throw err;
    }
  }

  /**
   * The access token for a call. Offline, an expired one cannot be refreshed; a GET still
   * goes out with it, so the service worker can answer from its copy of recent history
   * (`src/sw/`) and the app starts offline. Online, the server refuses it and the call
   * refreshes as usual.
   */
  private async tokenFor(method: string): Promise<string | null> {
    try {
      return await this.auth.accessToken();
    } catch (err) {
      if (method === 'GET' && err instanceof ApiError && err.code === 'network') return this.auth.session?.accessToken ?? null;
      throw err;
    }
  }

  me(): Promise<User> {
    return this.request('GET', '/users/me');
  }

  /**
   * The caller's rooms first, from their own endpoint (so no number of other people's
   * rooms can push them out of the list), then the rest of the public directory.
   */
  async rooms(): Promise<RoomView[]> {
    const mine = await this.allRooms('/rooms/joined');
    const seen = new Set(mine.map((r) => r.id));
    const others = (await this.allRooms('/rooms')).filter((r) => !seen.has(r.id));
    return [...mine, ...others];
  }

  /** Every page of a cursor-paginated room list, following `next`. */
  private async allRooms(path: string): Promise<RoomView[]> {
    const out: RoomView[] = [];
    let after: RoomId | undefined;
    for (;;) {
      const url = after === undefined ? path : `${path}?after=${after}`;
      const page = await this.request<RoomList>('GET', url);
      out.push(...page.rooms);
      // A cursor must move forward; anything else would loop forever.
      if (page.next == null || (after !== undefined && page.next <= after)) return out;
      after = page.next;
    }
  }

  room(id: RoomId): Promise<RoomView> {
    return this.request('GET', `/rooms/${id}`);
  }

  createRoom(name: string, isPrivate: boolean, accessCode?: string): Promise<RoomView> {
    return this.request('POST', '/rooms', {
      name,
      is_private: isPrivate,
      ...(isPrivate && accessCode ? { access_code: accessCode } : {}),
    });
  }

  joinRoom(id: RoomId, accessCode?: string): Promise<RoomView> {
    return this.request('POST', `/rooms/${id}/join`, accessCode ? { access_code: accessCode } : {});
  }

  leaveRoom(id: RoomId): Promise<void> {
    return this.request('POST', `/rooms/${id}/leave`);
  }

  async members(id: RoomId): Promise<Member[]> {
    return (await this.request<{ members: Member[] }>('GET', `/rooms/${id}/members`)).members;
  }

  messages(id: RoomId, beforeSeq?: Seq, limit = 50): Promise<MessagePage> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (beforeSeq !== undefined) q.set('before_seq', String(beforeSeq));
    return this.request('GET', `/rooms/${id}/messages?${q}`);
  }

  sendMessage(id: RoomId, content: string, clientMsgId?: string): Promise<Message> {
    return this.request('POST', `/rooms/${id}/messages`, {
      content,
      ...(clientMsgId ? { client_msg_id: clientMsgId } : {}),
    });
  }

  markRead(id: RoomId, seq: Seq): Promise<void> {
    return this.request('POST', `/rooms/${id}/read`, { seq });
  }

  /** Every member's read marker (rooms of at most 50 members). */
  async receipts(id: RoomId): Promise<ReadReceipt[]> {
    return (await this.request<ReadReceipts>('GET', `/rooms/${id}/receipts`)).receipts;
  }

  /** Full-text search over my rooms and DMs, best first; `before` is a previous page's `next`. */
  search(q: string, before?: string, roomId?: RoomId): Promise<SearchResults> {
    const params = new URLSearchParams({ q });
    if (before) params.set('before', before);
    if (roomId !== undefined) params.set('room_id', String(roomId));
    return this.request('GET', `/search?${params}`);
  }

  // ---- people: invitations, moderation, direct messages, notifications ------------

  inviteUser(id: RoomId, username: string): Promise<unknown> {
    return this.request('POST', `/rooms/${id}/invitations`, { username });
  }

  async invitations(): Promise<Invitation[]> {
    return (await this.request<InvitationList>('GET', '/invitations')).invitations;
  }

  acceptInvitation(id: number): Promise<RoomView> {
    return this.request('POST', `/invitations/${id}/accept`);
  }

  declineInvitation(id: number): Promise<void> {
    return this.request('POST', `/invitations/${id}/decline`);
  }

  createInviteLink(id: RoomId): Promise<InviteLink> {
    return this.request('POST', `/rooms/${id}/invites`, {});
  }

  invitePreview(token: string): Promise<InvitePreview> {
    return this.request('GET', `/invites/${encodeURIComponent(token)}`);
  }

  acceptInviteLink(token: string): Promise<RoomView> {
    return this.request('POST', `/invites/${encodeURIComponent(token)}/accept`);
  }

  setRole(id: RoomId, userId: UserId, role: Role): Promise<Message> {
    return this.request('PUT', `/rooms/${id}/members/${userId}/role`, { role });
  }

  kick(id: RoomId, userId: UserId): Promise<Message> {
    return this.request('POST', `/rooms/${id}/members/${userId}/kick`, {});
  }

  ban(id: RoomId, userId: UserId): Promise<Message> {
    return this.request('POST', `/rooms/${id}/bans`, { user_id: userId });
  }

  mute(id: RoomId, userId: UserId): Promise<Message> {
    return this.request('POST', `/rooms/${id}/members/${userId}/mute`, {});
  }

  unmute(id: RoomId, userId: UserId): Promise<Message> {
    return this.request('DELETE', `/rooms/${id}/members/${userId}/mute`);
  }

  async dms(): Promise<DirectView[]> {
    return (await this.request<DirectList>('GET', '/dms')).dms;
  }

  openDirect(username: string): Promise<DirectView> {
    return this.request('POST', '/dms', { username });
  }

  notifications(after?: number, limit = 200): Promise<NotificationList> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after !== undefined) q.set('after', String(after));
    return this.request('GET', `/notifications?${q}`);
  }

  markNotificationsRead(upTo: number): Promise<void> {
    return this.request('POST', '/notifications/read', { up_to: upTo });
  }

  // ---- room settings and people ---------------------------------------------------

  updateRoom(id: RoomId, patch: UpdateRoom): Promise<RoomView> {
    return this.request('PATCH', `/rooms/${id}`, patch);
  }

  deleteRoom(id: RoomId): Promise<void> {
    return this.request('DELETE', `/rooms/${id}`);
  }

  transfer(id: RoomId, userId: UserId): Promise<Message> {
    return this.request('POST', `/rooms/${id}/transfer`, { user_id: userId });
  }

  async inviteLinks(id: RoomId): Promise<InviteLink[]> {
    return (await this.request<InviteLinkList>('GET', `/rooms/${id}/invites`)).links;
  }

  revokeInviteLink(id: RoomId, inviteId: number): Promise<void> {
    return this.request('DELETE', `/rooms/${id}/invites/${inviteId}`);
  }

  async bans(id: RoomId): Promise<Ban[]> {
    return (await this.request<BanList>('GET', `/rooms/${id}/bans`)).bans;
  }

  unban(id: RoomId, userId: UserId): Promise<Message> {
    return this.request('DELETE', `/rooms/${id}/bans/${userId}`);
  }

  profile(id: UserId): Promise<Profile> {
    return this.request('GET', `/users/${id}`);
  }

  updateProfile(patch: UpdateProfile): Promise<Profile> {
    return this.request('PATCH', '/users/me', patch);
  }

  /** The presence of those of `ids` who share a room or DM with me (others left out). */
  async presence(ids: readonly UserId[]): Promise<UserPresence[]> {
    if (ids.length === 0) return [];
    const list = await this.request<PresenceList>('GET', `/users/presence?ids=${ids.slice(0, 200).join(',')}`);
    return list.users;
  }

  /** People whose username starts with `query` (one page). */
  async searchUsers(query: string, limit = 20): Promise<Profile[]> {
    const page = await this.request<UserPage>('GET', `/users?query=${encodeURIComponent(query)}&limit=${limit}`);
    return page.users;
  }

  /** Changes my password; every other login session of mine is signed out. */
  changePassword(current: string, next: string): Promise<void> {
    return this.request('POST', '/users/me/password', { current_password: current, new_password: next });
  }

  /** Deletes my account (the password again, as the server asks). */
  deleteAccount(password: string): Promise<void> {
    return this.request('DELETE', '/users/me', { password });
  }

  /** Everything the server keeps that is mine, as one JSON document. */
  exportAccount(): Promise<AccountExport> {
    return this.request('GET', '/users/me/export');
  }

  block(userId: UserId): Promise<void> {
    return this.request('POST', `/users/${userId}/block`);
  }

  unblock(userId: UserId): Promise<void> {
    return this.request('DELETE', `/users/${userId}/block`);
  }

  editMessage(id: RoomId, messageId: number, content: string): Promise<Message> {
    return this.request('PATCH', `/rooms/${id}/messages/${messageId}`, { content });
  }

  deleteMessage(id: RoomId, messageId: number): Promise<void> {
    return this.request('DELETE', `/rooms/${id}/messages/${messageId}`);
  }

  /** Adds (`on`) or takes back the caller's `emoji` reaction. */
  react(id: RoomId, messageId: number, emoji: string, on: boolean): Promise<void> {
    return this.request(on ? 'PUT' : 'DELETE', `/rooms/${id}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
  }
}
