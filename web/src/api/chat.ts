// The chat client: REST + WebSocket + per-room bookkeeping behind one observable store
// the UI renders from. Knows nothing about React.
import { ApiError, describeError, humanizeCode, sendRefusal } from './errors';
import type { AuthManager, RestClient } from './rest';
import { HubSocket, type ConnState, type HubSocketOptions } from './socket';
import { applyPresence, mergePresence, type PresenceEntry } from './presence';
import {
  describeNotification,
  markMentionsRead,
  markReadUpTo,
  mergeNotifications,
  newestId,
  removesMembership,
  totalUnread,
  unreadNotifications,
} from './notifications';
import { RoomTimeline, newClientMsgId } from './timeline';
import { defaultOutbox, type Outbox, type OutboxEntry } from './outbox';
import { MAX_RECEIPT_MEMBERS, unreadOf, type UnreadBase } from './reading';
import { Uploader, type Attachment } from './uploads';
import type {
  Ban,
  ErrorCode,
  InviteLink,
  InvitePreview,
  Member,
  Message,
  Notification,
  Profile,
  PresenceStatus,
  ReadReceipt,
  Role,
  RoomId,
  RoomView,
  SearchResults,
  Seq,
  ServerFrame,
  UpdateProfile,
  UpdateRoom,
  User,
  UserId,
} from './types';

export const TYPING_SEND_INTERVAL_MS = 2_000;
export const TYPING_SHOW_MS = 4_000;
export const ACK_TIMEOUT_MS = 15_000;

export interface RoomState {
  room: RoomView;
  timeline: RoomTimeline;
  /** Users online in the room (fresh from room_joined, then join/leave). */
  online: Map<number, User>;
  /** Who is typing, until when (unix ms). */
  typing: Map<number, { user: User; until: number }>;
  /** Whether this connection has joined the room (room_joined received). */
  joined: boolean;
  loadingHistory: boolean;
  error?: string;
  /** Bumped by every room event (roles, kicks, settings): member lists reload on it. */
  eventCount: number;
  /** The server's unread count and the seq it was counted at (see ./reading). */
  unreadBase: UnreadBase;
}

/** Something the user must be told once (e.g. they were removed from a room). */
export interface Notice {
  id: number;
  text: string;
}

export interface ChatSnapshot {
  conn: ConnState;
  me: User | null;
  rooms: RoomState[];
  version: number;
}

type Deps = {
  auth: AuthManager;
  rest: RestClient;
  socketUrl: string;
  createSocket?: HubSocketOptions['createSocket'];
  now?: () => number;
  /** Whether the user is looking (tab visible): only then are messages marked read. */
  isVisible?: () => boolean;
  /** Where unsent messages survive a reload (./outbox); IndexedDB by default. */
  outbox?: Outbox;
};

const NOT_RETRYABLE: ErrorCode[] = ['content_too_long', 'invalid_input', 'forbidden', 'not_found', 'frame_too_large'];

export class ChatClient {
  readonly rooms = new Map<RoomId, RoomState>();
  conn: ConnState = 'stopped';
  activeRoomId: RoomId | null = null;
  version = 0;
  /** The notification stream, oldest first (see ./notifications). */
  notifications: Notification[] = [];
  /** The other person of each direct conversation. */
  readonly peers = new Map<RoomId, User>();
  notices: Notice[] = [];
  /** Rooms the user was removed from while the app ran (each is told once). */
  readonly removedFrom = new Set<RoomId>();
  /** The open room, when the user was just removed from it: its view should close. */
  closeRequested: RoomId | null = null;
  /** Presence of the people sharing a room or DM with me (docs/protocol.md §5). */
  presence: ReadonlyMap<UserId, PresenceEntry> = new Map();
  /** What this tab says about me; sent after every `ready`. */
  private ownPresence: 'online' | 'away' = 'online';
  /** Attachments: uploads and their signed links (see ./uploads). */
  readonly uploads: Uploader;
  private noticeSeq = 0;
  /** Members' read markers of small rooms, by user ("seen by"); loaded when a room opens. */
  readonly receipts = new Map<RoomId, Map<UserId, ReadReceipt>>();
  /** A message to show in context when its room opens (a search result). */
  focusRequest: { roomId: RoomId; seq: Seq } | null = null;
  /** The newest seq of each room the user has had on screen: marking read stops there. */
  private seenOnScreen = new Map<RoomId, Seq>();
  private listeners = new Set<() => void>();
  private socket: HubSocket;
  private lastTypingSent = new Map<RoomId, number>();
  private typingTrailing = new Map<RoomId, ReturnType<typeof setTimeout>>();
  private readSent = new Map<RoomId, number>();
  private resumedJoins = new Set<RoomId>();
  private ackTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private typingTimer: ReturnType<typeof setTimeout> | null = null;
  private unsubscribeAuth: () => void;
  private readonly now: () => number;
  private readonly isVisible: () => boolean;
  private readonly outbox: Outbox;
  /** client_msg_ids this client put in the outbox (or restored from it) and not removed. */
  private outboxed = new Set<string>();
  /** Restored outbox entries whose room is not known yet, by room. */
  private restored = new Map<RoomId, OutboxEntry[]>();

  constructor(private readonly deps: Deps) {
    this.uploads = new Uploader(deps.auth);
    this.now = deps.now ?? (() => Date.now());
    this.outbox = deps.outbox ?? defaultOutbox();
    this.isVisible = deps.isVisible ?? (() => typeof document === 'undefined' || document.visibilityState === 'visible');
    this.socket = new HubSocket({
      url: deps.socketUrl,
      getToken: () => deps.auth.accessToken(),
      forceRefresh: async () => (await deps.auth.refresh())?.accessToken ?? null,
      onFrame: (f) => this.onFrame(f),
      onState: (s) => {
        this.conn = s;
        this.showKeptHistory();
        this.changed();
      },
      onReady: () => this.onReady(),
      onDown: () => this.onDown(),
      createSocket: deps.createSocket,
    });
    // A refreshed token (this tab's or another's) re-authenticates the live socket; a
    // session of another user (logged in from another tab) gets a new ChatClient instead.
    const userId = deps.auth.user?.id;
    this.unsubscribeAuth = deps.auth.subscribe((s) => {
      if (s && (userId === undefined || s.user.id === userId)) this.socket.reauth(s.accessToken);
    });
  }

  // ---- observation ----------------------------------------------------------------

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getVersion = (): number => this.version;

  private changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }

  get me(): User | null {
    return this.deps.auth.user;
  }

  myRooms(): RoomState[] {
    return [...this.rooms.values()]
      .filter((r) => r.room.is_member && !r.room.is_direct)
      .sort((a, b) => a.room.name.localeCompare(b.room.name));
  }

  /** Direct conversations, newest activity first. */
  myDirects(): RoomState[] {
    return [...this.rooms.values()]
      .filter((r) => r.room.is_member && r.room.is_direct)
      .sort((a, b) => b.room.last_seq - a.room.last_seq || a.room.id - b.room.id);
  }

  /** The name a room is shown by: a DM's is the other person's. */
  displayName(roomId: RoomId): string {
    const r = this.rooms.get(roomId);
    if (!r) return '';
    return r.room.is_direct ? (this.peers.get(roomId)?.username ?? r.room.name) : r.room.name;
  }

  unreadNotifications(): number {
    return unreadNotifications(this.notifications);
  }

  /** Unread messages of every room and DM (but the open one) plus unread notifications. */
  totalUnread(): number {
    const rooms = [...this.rooms.values()]
      .filter((r) => r.room.is_member && r.room.id !== this.activeRoomId)
      .map((r) => this.unread(r.room.id));
    return totalUnread(rooms, this.unreadNotifications());
  }

  /** Unread messages of others (server count, kept live: see ./reading). */
  unread(roomId: RoomId): number {
    const r = this.rooms.get(roomId);
    return r && r.room.is_member ? unreadOf(r.unreadBase, r.room.last_read_seq, r.timeline.messages, this.me?.id) : 0;
  }

  typingUsers(roomId: RoomId): User[] {
    const r = this.rooms.get(roomId);
    if (!r) return [];
    const now = this.now();
    return [...r.typing.values()].filter((t) => t.until > now).map((t) => t.user);
  }

  // ---- lifecycle ------------------------------------------------------------------

  async start(): Promise<void> {
    this.socket.start();
    await Promise.all([this.refreshRooms(), this.loadNotifications(), this.restoreOutbox()]);
  }

  // ---- the outbox (./outbox): unsent messages survive a reload ------------------------

  /** Shows the user's unsent messages again, as pending; they go out once rooms are joined. */
  private async restoreOutbox(): Promise<void> {
    const me = this.me;
    if (!me) return;
    let entries: OutboxEntry[];
    try {
      entries = await this.outbox.list(me.id);
    } catch {
      return; // no IndexedDB (private mode): nothing was kept
    }
    for (const e of entries) {
      this.outboxed.add(e.clientMsgId);
      const list = this.restored.get(e.roomId) ?? [];
      list.push(e);
      this.restored.set(e.roomId, list);
    }
    for (const roomId of [...this.restored.keys()]) {
      const r = this.rooms.get(roomId);
      if (r) this.placeRestored(r);
    }
    this.changed();
  }

  /** Puts the room's restored entries back in its timeline as pending sends. */
  private placeRestored(r: RoomState): void {
    const list = this.restored.get(r.room.id);
    if (!list || !r.room.is_member) return;
    this.restored.delete(r.room.id);
    for (const e of list) {
      if (r.timeline.findPending(e.clientMsgId)) continue;
      if (r.timeline.messages.some((m) => m.client_msg_id === e.clientMsgId)) {
        this.forget(e.clientMsgId); // confirmed by history meanwhile
        continue;
      }
      r.timeline.addPending(e.clientMsgId, e.content, e.createdAt, e.replyTo, e.attachments);
      this.transmit(r, e.clientMsgId); // waits for room_joined when not joined yet
    }
  }

  private persist(entry: OutboxEntry): void {
    this.outboxed.add(entry.clientMsgId);
    void this.outbox.put(entry).catch(() => {});
  }

  /** The message is confirmed, refused for good or discarded: it leaves the outbox. */
  private forget(clientMsgId: string): void {
    if (!this.outboxed.delete(clientMsgId)) return;
    void this.outbox.remove(clientMsgId).catch(() => {});
  }

  /** Mine among `messages` are stored: their outbox entries go. */
  private forgetConfirmed(messages: Message[]): void {
    if (!this.outboxed.size) return;
    for (const m of messages) if (m.client_msg_id) this.forget(m.client_msg_id);
  }

  /** The room's unsent messages will never go (the user left or was removed). */
  private forgetRoom(r: RoomState | undefined): void {
    if (!r) return;
    for (const p of r.timeline.pending) this.forget(p.clientMsgId);
    this.restored.delete(r.room.id);
  }

  /**
   * Without a connection no `room_joined` comes to load the open room's history: load it
   * now, so what the service worker kept of it shows (an app started offline). Once the
   * socket is back, the room resumes from the newest message loaded.
   */
  private showKeptHistory(): void {
    if (this.conn !== 'offline' && this.conn !== 'reconnecting') return;
    const r = this.activeRoomId === null ? undefined : this.rooms.get(this.activeRoomId);
    if (r && r.room.is_member && r.timeline.olderCursor === undefined) void this.loadNewest(r.room.id);
  }

  /** Empties the outbox of this browser, every user's (logout on a shared device). */
  async clearOutbox(): Promise<void> {
    this.outboxed.clear();
    this.restored.clear();
    await this.outbox.clear();
  }

  /** Reads the unread (and recent) notifications; live ones come as frames. */
  async loadNotifications(): Promise<void> {
    let after: number | undefined;
    for (let page = 0; page < 10; page++) {
      const list = await this.deps.rest.notifications(after);
      this.notifications = mergeNotifications(this.notifications, list.notifications);
      if (list.next == null || (after !== undefined && list.next <= after)) break;
      after = list.next;
    }
    this.changed();
  }

  /** Marks every notification the client has seen read. */
  async markNotificationsRead(): Promise<void> {
    const upTo = newestId(this.notifications);
    if (upTo === null) return;
    this.notifications = markReadUpTo(this.notifications, upTo);
    this.changed();
    await this.deps.rest.markNotificationsRead(upTo);
  }

  /** Marks one notification read (on the server: every one up to it the client has read). */
  markNotificationRead(id: number): void {
    this.notifications = this.notifications.map((n) => (n.id === id ? { ...n, read: true } : n));
    this.changed();
    // The server marks by prefix: only when nothing older is unread does it agree.
    if (!this.notifications.some((n) => n.id < id && !n.read)) void this.deps.rest.markNotificationsRead(id).catch(() => {});
  }

  dismissNotice(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
    this.changed();
  }

  private notice(text: string): void {
    this.notices = [...this.notices, { id: ++this.noticeSeq, text }];
  }

  stop(): void {
    this.socket.stop();
    this.unsubscribeAuth();
    for (const t of this.ackTimers.values()) clearTimeout(t);
    for (const t of this.refreshTimers.values()) clearTimeout(t);
    for (const t of this.typingTrailing.values()) clearTimeout(t);
    this.typingTrailing.clear();
    if (this.typingTimer) clearTimeout(this.typingTimer);
  }

  networkLost(): void {
    this.socket.networkLost();
  }

  networkBack(): void {
    this.socket.reconnectNow();
  }

  /** Reloads the room list (my rooms + public rooms). */
  async refreshRooms(): Promise<RoomView[]> {
    const [list] = await Promise.all([this.deps.rest.rooms(), this.refreshDirects()]);
    for (const view of list) this.upsertRoom(view);
    this.changed();
    return list;
  }

  /** Reloads the direct conversations (`GET /dms`). */
  async refreshDirects(): Promise<void> {
    const dms = await this.deps.rest.dms();
    const fresh = dms.filter((dm) => !this.presence.has(dm.peer.id)).map((dm) => dm.peer.id);
    for (const dm of dms) {
      this.peers.set(dm.room.id, dm.peer);
      this.upsertRoom(dm.room);
    }
    this.changed();
    if (fresh.length) void this.refreshPresence(fresh).catch(() => {});
  }

  /**
   * The user is no longer a member (kicked, banned, room deleted): the room leaves their
   * lists, its live state goes, and they are told why.
   */
  private dropMembership(roomId: RoomId, text: string | null): void {
    const r = this.rooms.get(roomId);
    if (this.removedFrom.has(roomId) && !r?.room.is_member) return; // told already
    this.forgetRoom(r);
    if (r) {
      if (r.room.is_private) this.rooms.delete(roomId);
      else {
        r.room = { ...r.room, is_member: false, role: null };
        r.joined = false;
        r.online.clear();
        r.typing.clear();
        r.timeline = new RoomTimeline();
      }
    }
    this.removedFrom.add(roomId);
    if (this.activeRoomId === roomId) this.closeRequested = roomId;
    if (text) this.notice(text);
    this.changed();
  }

  /** A room event about me that ends my membership, as a notice; null otherwise. */
  private removalOf(f: ServerFrame): string | null {
    if ((f.type !== 'kicked' && f.type !== 'banned') || !this.me) return null;
    const ev = f.message.event;
    if (!ev || (ev.type !== 'kicked' && ev.type !== 'banned') || ev.user.id !== this.me.id) return null;
    const name = this.displayName(f.message.room_id) || `room ${f.message.room_id}`;
    const verb = f.type === 'kicked' ? 'removed you from' : 'banned you from';
    const reason = ev.reason ? ` (${ev.reason})` : '';
    return `${f.message.user.username} ${verb} “${name}”${reason}.`;
  }

  private onNotification(n: Notification): void {
    const known = this.notifications.some((x) => x.id === n.id);
    this.notifications = mergeNotifications(this.notifications, [n]);
    if (!known && !n.read && n.room_id != null) {
      if (n.kind === 'direct_message') void this.refreshDirects().catch(() => {});
      // A removal told by a room event first is not told twice.
      if (removesMembership(n.kind) && this.rooms.get(n.room_id)?.room.is_member)
        this.dropMembership(n.room_id, `${describeNotification(n)}.`);
    }
    this.changed();
  }

  private upsertRoom(view: RoomView): RoomState {
    if (view.is_member) this.removedFrom.delete(view.id);
    const existing = this.rooms.get(view.id);
    if (existing) {
      const becameMember = view.is_member && !existing.room.is_member;
      // Never move counters backwards: live frames may be ahead of a REST snapshot.
      existing.room = {
        ...view,
        last_seq: Math.max(view.last_seq, existing.room.last_seq),
        last_read_seq: Math.max(view.last_read_seq, existing.room.last_read_seq),
      };
      if (view.last_seq >= existing.unreadBase.through) existing.unreadBase = { count: view.unread, through: view.last_seq };
      if (becameMember) this.joinOnSocket(existing);
      this.placeRestored(existing);
      return existing;
    }
    const state: RoomState = {
      room: view,
      timeline: new RoomTimeline(),
      online: new Map(),
      typing: new Map(),
      joined: false,
      loadingHistory: false,
      eventCount: 0,
      unreadBase: { count: view.unread, through: view.last_seq },
    };
    this.rooms.set(view.id, state);
    if (view.is_member) this.joinOnSocket(state);
    this.placeRestored(state);
    this.showKeptHistory();
    return state;
  }

  private joinOnSocket(r: RoomState): void {
    const since = r.timeline.resumeSeq();
    const sent = this.socket.send({
      type: 'join_room',
      room_id: r.room.id,
      ...(since !== undefined ? { since_seq: since } : {}),
    });
    if (sent) {
      if (since !== undefined) this.resumedJoins.add(r.room.id);
      else this.resumedJoins.delete(r.room.id);
    }
  }

  private onReady(): void {
    for (const r of this.rooms.values()) if (r.room.is_member) this.joinOnSocket(r);
    // Saying my presence also subscribes this connection to my contacts' changes; what
    // changed while it was down is read once.
    this.socket.send({ type: 'presence', status: this.ownPresence });
    void this.refreshPresence().catch(() => {});
    this.changed();
  }

  /** Says whether this tab is away (hidden, idle) or online; sent only when it changes. */
  setOwnPresence(status: 'online' | 'away'): void {
    if (status === this.ownPresence) return;
    this.ownPresence = status;
    this.socket.send({ type: 'presence', status });
  }

  /** The presence of one person, when they share a room or DM with me and it is known. */
  presenceOf(userId: UserId): PresenceEntry | undefined {
    return this.presence.get(userId);
  }

  /** Reads the presence of `ids` (default: my DM peers) from `GET /users/presence`. */
  async refreshPresence(ids?: readonly UserId[]): Promise<void> {
    const wanted = ids ?? [...this.peers.values()].map((u) => u.id);
    if (wanted.length === 0) return;
    this.presence = mergePresence(this.presence, await this.deps.rest.presence(wanted));
    this.changed();
  }

  private setPresence(userId: UserId, status: PresenceStatus, lastSeenAt?: string | null): void {
    this.presence = applyPresence(this.presence, userId, status, lastSeenAt);
    this.changed();
  }

  private onDown(): void {
    for (const r of this.rooms.values()) {
      r.joined = false;
      r.online.clear();
      r.typing.clear();
    }
    this.changed();
  }

  // ---- frames ---------------------------------------------------------------------

  onFrame(f: ServerFrame): void {
    switch (f.type) {
      case 'ready':
      case 'pong':
        return;
      case 'room_joined': {
        const r = this.rooms.get(f.room_id);
        if (!r) return;
        r.joined = true;
        r.error = undefined;
        r.online = new Map(f.members.map((u) => [u.id, u]));
        const resumed = this.resumedJoins.has(f.room_id);
        const hadHistory = r.timeline.olderCursor !== undefined;
        const gap = !resumed && hadHistory && r.timeline.highestSeq() < f.last_seq;
        r.timeline.joined(f.last_seq, resumed);
        // Messages stored between the room list and this join are in no count yet.
        if (!resumed && f.last_seq > r.unreadBase.through) this.refreshRoomSoon(f.room_id);
        r.room.last_seq = Math.max(r.room.last_seq, f.last_seq);
        // Pending sends of this room go (again) now, those that timed out waiting for their
        // ack too; the server dedupes by client_msg_id.
        for (const p of r.timeline.pending) {
          if (p.status === 'failed' && p.retryable) Object.assign(p, { status: 'sending', error: undefined });
          if (p.status === 'sending') this.transmit(r, p.clientMsgId);
        }
        if (this.activeRoomId === f.room_id && (!hadHistory || gap)) void this.loadNewest(f.room_id);
        this.changed();
        return;
      }
      case 'room_left': {
        const r = this.rooms.get(f.room_id);
        if (r) {
          r.joined = false;
          r.online.clear();
        }
        this.changed();
        return;
      }
      case 'chat':
      case 'message_updated':
      case 'message_deleted':
      case 'reaction':
        this.receive(f.message, true);
        return;
      case 'room_updated':
      case 'member_updated':
      case 'kicked':
      case 'banned':
      case 'unbanned': {
        const removed = this.removalOf(f);
        if (removed) {
          this.dropMembership(f.message.room_id, removed);
          return;
        }
        // A room event is a stored message of the room's stream: it moves the resume point
        // like a chat, and the room's settings or members may have changed.
        const r = this.rooms.get(f.message.room_id);
        if (r) r.eventCount++;
        this.receive(f.message, true);
        this.refreshRoomSoon(f.message.room_id);
        return;
      }
      case 'room_deleted': {
        const name = this.displayName(f.room_id);
        const wasMember = this.rooms.get(f.room_id)?.room.is_member;
        this.forgetRoom(this.rooms.get(f.room_id));
        this.rooms.delete(f.room_id);
        this.removedFrom.add(f.room_id);
        if (wasMember && f.by.id !== this.me?.id) this.notice(`${f.by.username} deleted the room “${name}”.`);
        if (this.activeRoomId === f.room_id) this.closeRequested = f.room_id;
        this.changed();
        return;
      }
      case 'notification':
        this.onNotification(f.notification);
        return;
      case 'presence':
        this.setPresence(f.user_id, f.status, f.last_seen_at);
        return;
      case 'read_marker':
        this.onReadMarker(f);
        return;
      case 'ack':
        this.clearAckTimer(f.client_msg_id);
        this.receive(f.message, false);
        return;
      case 'join': {
        const r = this.rooms.get(f.room_id);
        if (r) {
          r.online.set(f.user.id, f.user);
          this.refreshRoomSoon(f.room_id); // a new member changes member_count
        }
        this.changed();
        return;
      }
      case 'leave': {
        const r = this.rooms.get(f.room_id);
        if (r) {
          r.online.delete(f.user.id);
          r.typing.delete(f.user.id);
        }
        this.changed();
        return;
      }
      case 'typing': {
        const r = this.rooms.get(f.room_id);
        if (!r || f.user.id === this.me?.id) return;
        r.typing.set(f.user.id, { user: f.user, until: this.now() + TYPING_SHOW_MS });
        this.scheduleTypingExpiry();
        this.changed();
        return;
      }
      case 'error':
        this.onError(f.code, f.message, f.ref, f.retry_after_ms);
        return;
    }
  }

  /** A read marker moved: mine (on any device, with my new count) or another member's. */
  private onReadMarker(f: Extract<ServerFrame, { type: 'read_marker' }>): void {
    const receipts = this.receipts.get(f.room_id);
    const known = receipts?.get(f.user.id);
    if (receipts && (!known || known.last_read_seq < f.seq)) receipts.set(f.user.id, { user: f.user, last_read_seq: f.seq });
    const r = this.rooms.get(f.room_id);
    if (r && f.user.id === this.me?.id) {
      r.room.last_read_seq = Math.max(r.room.last_read_seq, f.seq);
      this.readSent.set(f.room_id, Math.max(this.readSent.get(f.room_id) ?? 0, f.seq));
      if (f.unread != null && f.last_seq != null && f.last_seq >= r.unreadBase.through)
        r.unreadBase = { count: f.unread, through: f.last_seq };
    }
    this.changed();
  }

  /** A stored message: from a `chat` frame (`delivered`) or the `ack` of my own send. */
  private receive(m: Message, delivered: boolean): void {
    const r = this.rooms.get(m.room_id);
    if (!r) return;
    if (m.client_msg_id) {
      this.clearAckTimer(m.client_msg_id);
      if (m.user.id === this.me?.id) this.forget(m.client_msg_id);
    }
    r.timeline.me = this.me?.id ?? null;
    // Only chat frames move the resume point: an ack may overtake chats in flight.
    if (delivered) r.timeline.addChat(m);
    else r.timeline.addAcked(m);
    r.room.last_seq = Math.max(r.room.last_seq, m.seq);
    r.typing.delete(m.user.id);
    if (m.user.id === this.me?.id) {
      // My own message is read by definition.
      r.room.last_read_seq = Math.max(r.room.last_read_seq, m.seq);
    }
    if (this.activeRoomId === m.room_id) this.markRead(m.room_id);
    this.changed();
  }

  private onError(
    code: ErrorCode,
    message: string,
    ref?: string | null,
    retryAfterMs?: number | null,
  ): void {
    if (ref) {
      for (const r of this.rooms.values()) {
        const p = r.timeline.findPending(ref);
        if (!p) continue;
        this.clearAckTimer(ref);
        if (code === 'rate_limited') {
          // Too fast: try the same send again when the server says a token is free
          // (same client_msg_id, so a send that did get through is not stored twice).
          p.error = humanizeCode(code);
          setTimeout(() => this.transmit(r, ref), Math.max(retryAfterMs ?? 1_500, 50));
        } else {
          const retryable = !NOT_RETRYABLE.includes(code);
          r.timeline.markFailed(ref, sendRefusal(code, message, r.room.is_direct), retryable);
          if (!retryable) this.forget(ref); // refused for good: a reload must not send it again
        }
        this.changed();
        return;
      }
      const roomId = Number(ref);
      const r = Number.isInteger(roomId) ? this.rooms.get(roomId) : undefined;
      if (r) {
        r.error = humanizeCode(code, message);
        this.changed();
      }
    }
  }

  private refreshTimers = new Map<RoomId, ReturnType<typeof setTimeout>>();

  private refreshRoomSoon(roomId: RoomId): void {
    if (this.refreshTimers.has(roomId)) return;
    this.refreshTimers.set(
      roomId,
      setTimeout(() => {
        this.refreshTimers.delete(roomId);
        this.deps.rest.room(roomId).then(
          (view) => {
            this.upsertRoom(view);
            this.changed();
          },
          () => {},
        );
      }, 1_000),
    );
  }

  private scheduleTypingExpiry(): void {
    if (this.typingTimer) return;
    const tick = () => {
      this.typingTimer = null;
      const now = this.now();
      let any = false;
      let removed = false;
      for (const r of this.rooms.values()) {
        for (const [id, t] of r.typing) {
          if (t.until <= now) {
            r.typing.delete(id);
            removed = true;
          } else any = true;
        }
      }
      if (removed) this.changed();
      if (any) this.typingTimer = setTimeout(tick, 500);
    };
    this.typingTimer = setTimeout(tick, 500);
  }

  // ---- actions ----------------------------------------------------------------------

  /** Opens a room in the chat view: loads its newest history, marks it read. */
  open(roomId: RoomId | null): void {
    this.activeRoomId = roomId;
    if (roomId === null) return;
    const r = this.rooms.get(roomId);
    if (r && r.room.is_member && r.timeline.olderCursor === undefined) void this.loadNewest(roomId);
    if (r && r.room.is_member && r.room.member_count <= MAX_RECEIPT_MEMBERS) void this.loadReceipts(roomId);
    this.markRead(roomId);
    this.changed();
  }

  private async loadNewest(roomId: RoomId): Promise<void> {
    const r = this.rooms.get(roomId);
    if (!r || r.loadingHistory) return;
    r.loadingHistory = true;
    this.changed();
    try {
      const page = await this.deps.rest.messages(roomId);
      r.timeline.addNewestPage(page.messages, page.next_before_seq, page.last_seq);
      this.forgetConfirmed(page.messages);
      const newest = page.messages[0]?.seq ?? 0;
      r.room.last_seq = Math.max(r.room.last_seq, newest);
      r.error = undefined;
      if (this.activeRoomId === roomId) this.markRead(roomId);
    } catch (err) {
      r.error = describeError(err);
    } finally {
      r.loadingHistory = false;
      this.changed();
    }
  }

  /** Pages history backwards. Returns how many older messages arrived. */
  async loadOlder(roomId: RoomId): Promise<number> {
    const r = this.rooms.get(roomId);
    if (!r || r.loadingHistory) return 0;
    const cursor = r.timeline.olderCursor;
    if (cursor === null) return 0;
    if (cursor === undefined) {
      await this.loadNewest(roomId);
      return 0;
    }
    r.loadingHistory = true;
    this.changed();
    try {
      const page = await this.deps.rest.messages(roomId, cursor);
      this.forgetConfirmed(page.messages);
      return r.timeline.addOlderPage(page.messages, page.next_before_seq, page.last_seq);
    } catch (err) {
      r.error = describeError(err);
      return 0;
    } finally {
      r.loadingHistory = false;
      this.changed();
    }
  }

  /**
   * Sends a message (text, uploaded attachments or both, answering `replyTo` when given):
   * shown at once as pending, confirmed by `ack`.
   */
  send(roomId: RoomId, content: string, extra: { replyTo?: number; attachments?: Attachment[] } = {}): string | null {
    const { replyTo, attachments = [] } = extra;
    const r = this.rooms.get(roomId);
    const text = content.trim();
    if (!r || (!text && !attachments.length)) return null;
    const id = newClientMsgId();
    // The typing that led to this message is over; a trailing notice would outlive it.
    this.cancelTrailingTyping(roomId);
    const createdAt = this.now();
    r.timeline.addPending(id, text, createdAt, replyTo, attachments);
    const me = this.me;
    if (me) this.persist({ clientMsgId: id, userId: me.id, roomId, content: text, createdAt, replyTo, attachments });
    this.transmit(r, id);
    this.changed();
    return id;
  }

  /** Edits one of my messages; the `message_updated` event updates every view. */
  async editMessage(roomId: RoomId, messageId: number, content: string): Promise<void> {
    await this.deps.rest.editMessage(roomId, messageId, content);
  }

  /** Deletes a message (mine, or as an admin); the `message_deleted` event follows. */
  async deleteMessage(roomId: RoomId, messageId: number): Promise<void> {
    await this.deps.rest.deleteMessage(roomId, messageId);
  }

  /** Adds my `emoji` reaction, or takes it back when I already made it. */
  async toggleReaction(roomId: RoomId, message: Message, emoji: string): Promise<void> {
    const mine = message.reactions?.some((r) => r.emoji === emoji && r.me) ?? false;
    await this.deps.rest.react(roomId, message.id, emoji, !mine);
  }

  /**
   * Makes sure the message `seq` is in the timeline, loading older pages until it is
   * (or the room's start). Returns whether it is there.
   */
  async reveal(roomId: RoomId, seq: number): Promise<boolean> {
    for (let pages = 0; pages < 200; pages++) {
      const r = this.rooms.get(roomId);
      if (!r) return false;
      if (r.timeline.messages.some((m) => m.seq === seq)) return true;
      if (r.timeline.olderCursor === null) return false;
      // A page already on its way (scrolling) is waited for rather than requested again.
      if (r.loadingHistory) await new Promise((done) => setTimeout(done, 100));
      else await this.loadOlder(roomId);
    }
    return false;
  }

  /** Sends a failed message again with the same client_msg_id (never duplicated). */
  retry(roomId: RoomId, clientMsgId: string): void {
    const r = this.rooms.get(roomId);
    if (!r) return;
    r.timeline.markSending(clientMsgId);
    this.transmit(r, clientMsgId);
    this.changed();
  }

  discard(roomId: RoomId, clientMsgId: string): void {
    this.rooms.get(roomId)?.timeline.dropPending(clientMsgId);
    this.forget(clientMsgId);
    this.changed();
  }

  private transmit(r: RoomState, clientMsgId: string): void {
    const p = r.timeline.findPending(clientMsgId);
    if (!p) return;
    p.status = 'sending';
    if (!r.joined) return; // goes out on room_joined
    const sent = this.socket.send({
      type: 'message_send',
      room_id: r.room.id,
      client_msg_id: clientMsgId,
      content: p.content,
      ...(p.replyTo !== undefined ? { reply_to: p.replyTo } : {}),
      ...(p.attachments?.length ? { attachments: p.attachments.map((a) => a.id) } : {}),
    });
    if (!sent) return;
    p.attempts++;
    this.clearAckTimer(clientMsgId);
    this.ackTimers.set(
      clientMsgId,
      setTimeout(() => {
        this.ackTimers.delete(clientMsgId);
        const still = r.timeline.findPending(clientMsgId);
        if (still && still.status === 'sending') {
          r.timeline.markFailed(clientMsgId, 'Not delivered yet. It will be retried when the connection is back.', true);
          this.changed();
        }
      }, ACK_TIMEOUT_MS),
    );
  }

  private clearAckTimer(id: string): void {
    const t = this.ackTimers.get(id);
    if (t) clearTimeout(t);
    this.ackTimers.delete(id);
  }

  /**
   * Call on input in the composer: sends `typing` at most every 2 s, on the leading edge
   * and on the trailing one. Without the trailing send, typing that starts right after a
   * message went out (whose `chat` clears the indicator on the other side) showed nothing
   * until the interval was over and the user typed again.
   */
  typing(roomId: RoomId): void {
    if (!this.rooms.get(roomId)?.joined) return;
    const last = this.lastTypingSent.get(roomId);
    const wait = last === undefined ? 0 : last + TYPING_SEND_INTERVAL_MS - this.now();
    if (wait <= 0) {
      this.cancelTrailingTyping(roomId);
      this.sendTyping(roomId);
      return;
    }
    if (this.typingTrailing.has(roomId)) return;
    this.typingTrailing.set(
      roomId,
      setTimeout(() => {
        this.typingTrailing.delete(roomId);
        this.sendTyping(roomId);
      }, wait),
    );
  }

  private sendTyping(roomId: RoomId): void {
    if (!this.rooms.get(roomId)?.joined) return;
    if (this.socket.send({ type: 'typing', room_id: roomId })) this.lastTypingSent.set(roomId, this.now());
  }

  /** Drops a pending trailing `typing` (its typing became a message, or the room went). */
  private cancelTrailingTyping(roomId: RoomId): void {
    const t = this.typingTrailing.get(roomId);
    if (t) clearTimeout(t);
    this.typingTrailing.delete(roomId);
  }

  /**
   * The user has had the message `seq` of the room on screen (see the chat view's
   * observer): the room is marked read up to it.
   */
  sawMessage(roomId: RoomId, seq: Seq): void {
    if (seq <= (this.seenOnScreen.get(roomId) ?? 0)) return;
    this.seenOnScreen.set(roomId, seq);
    this.markRead(roomId);
    this.changed();
  }

  /** Reloads the read markers of a small room ("seen by"). */
  async loadReceipts(roomId: RoomId): Promise<void> {
    try {
      const list = await this.deps.rest.receipts(roomId);
      const known = this.receipts.get(roomId);
      const next = new Map(list.map((r) => [r.user.id, r] as const));
      // Frames that arrived while loading are newer than the list.
      for (const [id, r] of known ?? []) if ((next.get(id)?.last_read_seq ?? -1) < r.last_read_seq) next.set(id, r);
      this.receipts.set(roomId, next);
      this.changed();
    } catch {
      // "Seen by" is a nicety: a room over the limit, or a failure, shows none.
    }
  }

  /** Full-text search over my rooms and DMs (docs/protocol.md §6 Search). */
  search(q: string, before?: string): Promise<SearchResults> {
    return this.deps.rest.search(q, before);
  }

  /** Opens `roomId` at the message `seq` (loaded with the history around it). */
  focusOn(roomId: RoomId, seq: Seq): void {
    this.focusRequest = { roomId, seq };
    this.changed();
  }

  /**
   * Marks the open room read up to the newest message the user has had on screen (and
   * only while the tab is visible).
   */
  markRead(roomId: RoomId): void {
    const r = this.rooms.get(roomId);
    if (!r || !r.room.is_member || !this.isVisible()) return;
    const seq = Math.min(Math.max(r.room.last_seq, r.timeline.highestSeq()), this.seenOnScreen.get(roomId) ?? 0);
    if (seq <= 0 || seq <= (this.readSent.get(roomId) ?? 0)) return;
    r.room.last_read_seq = Math.max(r.room.last_read_seq, seq);
    // The server marks the room's mentions up to the marker read; so does the bell here.
    this.notifications = markMentionsRead(this.notifications, roomId, seq);
    const sent = r.joined && this.socket.send({ type: 'read', room_id: roomId, seq });
    if (sent) this.readSent.set(roomId, seq);
    else
      void this.deps.rest.markRead(roomId, seq).then(
        () => this.readSent.set(roomId, Math.max(seq, this.readSent.get(roomId) ?? 0)),
        () => {},
      );
  }

  async createRoom(name: string, isPrivate: boolean, accessCode?: string): Promise<RoomView> {
    const view = await this.deps.rest.createRoom(name, isPrivate, accessCode);
    this.upsertRoom(view);
    this.changed();
    return view;
  }

  async joinRoom(roomId: RoomId, accessCode?: string): Promise<RoomView> {
    const view = await this.deps.rest.joinRoom(roomId, accessCode);
    this.upsertRoom(view);
    this.changed();
    return view;
  }

  async leaveRoom(roomId: RoomId): Promise<void> {
    await this.deps.rest.leaveRoom(roomId);
    this.socket.send({ type: 'leave_room', room_id: roomId });
    const r = this.rooms.get(roomId);
    this.forgetRoom(r);
    if (r) {
      if (r.room.is_private) this.rooms.delete(roomId);
      else {
        r.room = { ...r.room, is_member: false };
        r.joined = false;
        r.timeline = new RoomTimeline();
      }
    }
    if (this.activeRoomId === roomId) this.activeRoomId = null;
    this.changed();
  }

  /** Fetches one room (e.g. a deep link) the user may see. */
  async loadRoom(roomId: RoomId): Promise<RoomState | null> {
    try {
      const view = await this.deps.rest.room(roomId);
      const r = this.upsertRoom(view);
      this.changed();
      return r;
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'not_found' || err.code === 'forbidden')) return null;
      throw err;
    }
  }

  // ---- people ---------------------------------------------------------------------

  /** Opens (or finds) the DM with `username`. */
  async openDirect(username: string): Promise<RoomView> {
    const dm = await this.deps.rest.openDirect(username.trim());
    this.peers.set(dm.room.id, dm.peer);
    this.upsertRoom(dm.room);
    this.changed();
    // Sharing a DM makes the peer's presence mine to see: read it now, frames follow.
    void this.refreshPresence([dm.peer.id]).catch(() => {});
    return dm.room;
  }

  /** Joins the room an invite link leads to. */
  async acceptInviteLink(token: string): Promise<RoomView> {
    const view = await this.deps.rest.acceptInviteLink(token);
    this.removedFrom.delete(view.id);
    this.upsertRoom(view);
    this.changed();
    return view;
  }

  /** A room's members; their presence (listed when I am a member) is kept too. */
  async members(roomId: RoomId): Promise<Member[]> {
    const members = await this.deps.rest.members(roomId);
    let book = this.presence;
    for (const m of members) if (m.presence) book = applyPresence(book, m.user.id, m.presence);
    if (book !== this.presence) {
      this.presence = book;
      this.changed();
    }
    return members;
  }

  // ---- people and account ---------------------------------------------------------

  searchUsers(query: string): Promise<Profile[]> {
    return this.deps.rest.searchUsers(query.trim());
  }

  profile(userId: UserId): Promise<Profile> {
    return this.deps.rest.profile(userId);
  }

  changePassword(current: string, next: string): Promise<void> {
    return this.deps.rest.changePassword(current, next);
  }

  /** Deletes my account, then signs this browser out. */
  async deleteAccount(password: string): Promise<void> {
    await this.deps.rest.deleteAccount(password);
    await this.deps.auth.logout();
  }

  exportAccount(): Promise<unknown> {
    return this.deps.rest.exportAccount();
  }

  inviteUser(roomId: RoomId, username: string): Promise<unknown> {
    return this.deps.rest.inviteUser(roomId, username.trim());
  }

  createInviteLink(roomId: RoomId): Promise<InviteLink> {
    return this.deps.rest.createInviteLink(roomId);
  }

  invitePreview(token: string): Promise<InvitePreview> {
    return this.deps.rest.invitePreview(token);
  }

  /**
   * Answers the pending invitation to `roomId` (from an `invited` notification): accepting
   * joins the room (private ones too, without the access code). Null when there is none.
   */
  async answerInvitation(roomId: RoomId, accept: boolean): Promise<RoomView | null> {
    const inv = (await this.deps.rest.invitations()).find((i) => i.room_id === roomId);
    if (!inv) return null;
    if (!accept) {
      await this.deps.rest.declineInvitation(inv.id);
      return null;
    }
    const view = await this.deps.rest.acceptInvitation(inv.id);
    this.upsertRoom(view);
    this.changed();
    return view;
  }

  async setRole(roomId: RoomId, userId: UserId, role: Role): Promise<void> {
    await this.deps.rest.setRole(roomId, userId, role);
  }

  async kick(roomId: RoomId, userId: UserId): Promise<void> {
    await this.deps.rest.kick(roomId, userId);
  }

  async ban(roomId: RoomId, userId: UserId): Promise<void> {
    await this.deps.rest.ban(roomId, userId);
  }

  async mute(roomId: RoomId, userId: UserId, muted: boolean): Promise<void> {
    if (muted) await this.deps.rest.mute(roomId, userId);
    else await this.deps.rest.unmute(roomId, userId);
  }

  // ---- room settings --------------------------------------------------------------

  /** Saves changed settings; the view updates at once (the `room_updated` event follows). */
  async updateRoom(roomId: RoomId, patch: UpdateRoom): Promise<RoomView> {
    const view = await this.deps.rest.updateRoom(roomId, patch);
    this.upsertRoom(view);
    this.changed();
    return view;
  }

  /** Deletes the room (owner); it leaves the lists here without waiting for `room_deleted`. */
  async deleteRoom(roomId: RoomId): Promise<void> {
    await this.deps.rest.deleteRoom(roomId);
    this.forgetRoom(this.rooms.get(roomId));
    this.rooms.delete(roomId);
    this.removedFrom.add(roomId);
    if (this.activeRoomId === roomId) this.activeRoomId = null;
    this.changed();
  }

  async transfer(roomId: RoomId, userId: UserId): Promise<void> {
    await this.deps.rest.transfer(roomId, userId);
  }

  inviteLinks(roomId: RoomId): Promise<InviteLink[]> {
    return this.deps.rest.inviteLinks(roomId);
  }

  revokeInviteLink(roomId: RoomId, inviteId: number): Promise<void> {
    return this.deps.rest.revokeInviteLink(roomId, inviteId);
  }

  bans(roomId: RoomId): Promise<Ban[]> {
    return this.deps.rest.bans(roomId);
  }

  async unban(roomId: RoomId, userId: UserId): Promise<void> {
    await this.deps.rest.unban(roomId, userId);
  }

  // ---- my profile, blocking -------------------------------------------------------

  myProfile(): Promise<Profile | null> {
    const me = this.me;
    return me ? this.deps.rest.profile(me.id) : Promise.resolve(null);
  }

  updateProfile(patch: UpdateProfile): Promise<Profile> {
    return this.deps.rest.updateProfile(patch);
  }

  block(userId: UserId): Promise<void> {
    return this.deps.rest.block(userId);
  }

  unblock(userId: UserId): Promise<void> {
    return this.deps.rest.unblock(userId);
  }
}
