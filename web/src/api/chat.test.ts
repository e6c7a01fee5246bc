import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatClient } from './chat';
import type { AuthManager, RestClient } from './rest';
import { backoffMs, type WebSocketLike } from './socket';
import type { StoredSession } from './tokens';
import type { Message, Notification, ReadReceipt, RoomView } from './types';

class FakeWS implements WebSocketLike {
  static all: FakeWS[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: WebSocketLike['onopen'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onerror: WebSocketLike['onerror'] = null;
  closedWith?: number;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeWS.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code?: number) {
    this.closedWith = code;
    this.readyState = 3;
  }
  // server side helpers
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(f: unknown) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
  sentOf(type: string) {
    return this.sent.filter((f) => f.type === type);
  }
}

const ME = { id: 1, username: 'ada' };
const BOB = { id: 2, username: 'bob' };
const room = (id: number, last_seq = 0): RoomView => ({
  id,
  name: `room${id}`,
  is_private: false,
  is_direct: false,
  has_access_code: false,
  owner_id: 1,
  last_seq,
  member_count: 2,
  is_member: true,
  created_at: '2024-05-01T10:00:00Z',
  last_read_seq: 0,
  unread: 0,
});
const msg = (seq: number, extra: Partial<Message> = {}): Message => ({
  id: seq,
  room_id: 7,
  seq,
  user: BOB,
  content: `m${seq}`,
  created_at: '2024-05-01T10:00:00Z',
  ...extra,
});

const note = (id: number, kind: Notification['kind'], extra: Partial<Notification> = {}): Notification => ({
  id,
  kind,
  room_id: 7,
  from: BOB,
  message: 'general',
  read: false,
  created_at: '2024-05-01T10:00:00Z',
  ...extra,
});

function setup() {
  let token = 'tok-1';
  const listeners = new Set<(s: StoredSession | null) => void>();
  const session = (): StoredSession => ({ user: ME, accessToken: token, expiresAt: Date.now() + 60_000 });
  const auth = {
    user: ME,
    accessToken: vi.fn(async () => token),
    refresh: vi.fn(async () => {
      token = `tok-${Number(token.slice(4)) + 1}`;
      for (const l of listeners) l(session());
      return session();
    }),
    subscribe: (fn: (s: StoredSession | null) => void) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  } as unknown as AuthManager;
  const rest = {
    rooms: vi.fn(async () => [{ ...room(7, 3), unread: 3 }]),
    room: vi.fn(async () => ({ ...room(7, 3), member_count: 3 })),
    messages: vi.fn(async () => ({ messages: [msg(3), msg(2), msg(1)] })),
    markRead: vi.fn(async () => {}),
    dms: vi.fn(async () => []),
    notifications: vi.fn(async () => ({ notifications: [note(1, 'invited')], unread: 1 })),
    markNotificationsRead: vi.fn(async () => {}),
    receipts: vi.fn(async (): Promise<ReadReceipt[]> => []),
  };
  const client = new ChatClient({
    auth,
    rest: rest as unknown as RestClient,
    socketUrl: 'ws://test/ws',
    createSocket: (url, protocols) => new FakeWS(url, protocols),
    isVisible: () => true,
  });
  return { client, auth, rest };
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};
const last = () => FakeWS.all[FakeWS.all.length - 1];

beforeEach(() => {
  FakeWS.all = [];
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

async function online(client: ChatClient) {
  await client.start();
  await flush();
  const ws = last();
  ws.open();
  ws.frame({ type: 'ready', user: ME });
  return ws;
}

describe('ChatClient over a fake socket', () => {
  it('authenticates with the bearer subprotocol and reports its state honestly', async () => {
    const { client } = setup();
    const states: string[] = [];
    client.subscribe(() => states.push(client.conn));
    const ws = await online(client);
    expect(ws.protocols).toEqual(['socket-hub.v1', 'bearer.tok-1']);
    expect(client.conn).toBe('online');
    expect(states).toContain('connecting');
    expect(ws.sentOf('join_room')).toEqual([{ type: 'join_room', room_id: 7 }]);
    ws.drop(1006);
    expect(client.conn).toBe('reconnecting');
    client.stop();
  });

  it('shows presence and typing', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    ws.frame({ type: 'join', room_id: 7, user: BOB });
    expect([...client.rooms.get(7)!.online.keys()].sort()).toEqual([1, 2]);
    ws.frame({ type: 'typing', room_id: 7, user: BOB });
    expect(client.typingUsers(7)).toEqual([BOB]);
    vi.advanceTimersByTime(4_500);
    expect(client.typingUsers(7)).toEqual([]);
    ws.frame({ type: 'leave', room_id: 7, user: BOB });
    expect([...client.rooms.get(7)!.online.keys()]).toEqual([1]);
    // A join refreshes the room (member_count) from REST.
    await vi.waitFor(() => expect(client.rooms.get(7)!.room.member_count).toBe(3));
    client.stop();
  });

  it('sends typing at most every 2 s', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    client.typing(7);
    client.typing(7);
    vi.advanceTimersByTime(1_000);
    client.typing(7);
    expect(ws.sentOf('typing')).toHaveLength(1);
    vi.advanceTimersByTime(1_100);
    client.typing(7);
    expect(ws.sentOf('typing')).toHaveLength(2);
    client.stop();
  });

  it('sends a trailing typing for input inside the interval', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    client.typing(7); // leading edge: at once
    expect(ws.sentOf('typing')).toHaveLength(1);
    client.send(7, 'first message'); // sent 0.5 s later ...
    vi.advanceTimersByTime(500);
    client.typing(7); // ... and a short burst right after it
    client.typing(7);
    expect(ws.sentOf('typing')).toHaveLength(1);
    vi.advanceTimersByTime(1_499);
    expect(ws.sentOf('typing')).toHaveLength(1);
    vi.advanceTimersByTime(1); // trailing edge: once, when the interval is over
    expect(ws.sentOf('typing')).toHaveLength(2);
    vi.advanceTimersByTime(10_000);
    expect(ws.sentOf('typing')).toHaveLength(2); // no input since: nothing more
    client.stop();
  });

  it('drops the trailing typing when the message is sent first', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    client.typing(7);
    vi.advanceTimersByTime(300);
    client.typing(7); // would trail at 2 s ...
    client.send(7, 'done typing'); // ... but the message went out
    vi.advanceTimersByTime(5_000);
    expect(ws.sentOf('typing')).toHaveLength(1);
    client.stop();
  });

  it('pending -> confirmed on ack, the echo chat does not double it', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    const id = client.send(7, 'hello')!;
    const t = client.rooms.get(7)!.timeline;
    expect(t.pending.map((p) => p.content)).toEqual(['hello']);
    expect(ws.sentOf('message_send')).toEqual([{ type: 'message_send', room_id: 7, client_msg_id: id, content: 'hello' }]);
    const stored = msg(4, { user: ME, content: 'hello', client_msg_id: id });
    ws.frame({ type: 'chat', message: stored });
    ws.frame({ type: 'ack', client_msg_id: id, message: stored });
    expect(t.pending).toEqual([]);
    expect(t.messages.filter((m) => m.content === 'hello')).toHaveLength(1);
    client.stop();
  });

  it('sends attachments by upload id, with or without text, and keeps them on the pending message', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    const photo = {
      id: 'q3Vd0Xh2kO0m2b6y9tL1aw',
      filename: 'cat.png',
      content_type: 'image/png',
      size: 1234,
      width: 64,
      height: 48,
      url: '/api/v1/uploads/q3Vd0Xh2kO0m2b6y9tL1aw',
      thumbnail_url: '/api/v1/uploads/q3Vd0Xh2kO0m2b6y9tL1aw/thumbnail',
    };
    expect(client.send(7, '   ')).toBeNull();
    const id = client.send(7, '', { attachments: [photo] })!;
    expect(ws.sentOf('message_send')).toEqual([
      { type: 'message_send', room_id: 7, client_msg_id: id, content: '', attachments: [photo.id] },
    ]);
    expect(client.rooms.get(7)!.timeline.pending[0].attachments).toEqual([photo]);
    const stored = msg(4, { user: ME, content: '', client_msg_id: id, attachments: [photo] });
    ws.frame({ type: 'ack', client_msg_id: id, message: stored });
    expect(client.rooms.get(7)!.timeline.messages.at(-1)?.attachments).toEqual([photo]);
    client.stop();
  });

  it('resends a pending message after a reconnect with the same client_msg_id', async () => {
    const { client } = setup();
    let ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    const id = client.send(7, 'lost?')!;
    ws.drop(1006);
    vi.advanceTimersByTime(backoffMs(0, () => 1) + 1);
    await flush();
    ws = last();
    ws.open();
    ws.frame({ type: 'ready', user: ME });
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    expect(ws.sentOf('message_send')).toEqual([{ type: 'message_send', room_id: 7, client_msg_id: id, content: 'lost?' }]);
    client.stop();
  });

  it('reports a rejected send in words and allows a retry', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    const id = client.send(7, 'x'.repeat(10))!;
    ws.frame({ type: 'error', code: 'content_too_long', message: 'too long', ref: id });
    const p = client.rooms.get(7)!.timeline.findPending(id)!;
    expect(p.status).toBe('failed');
    expect(p.error).toMatch(/too long/i);
    expect(p.retryable).toBe(false);
    client.stop();
  });

  it('resends a rate-limited message when the server says, with the same client_msg_id', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    const id = client.send(7, 'too fast')!;
    ws.frame({ type: 'error', code: 'rate_limited', message: 'slow down', ref: id, retry_after_ms: 4_000 });
    vi.advanceTimersByTime(3_900);
    expect(ws.sentOf('message_send')).toHaveLength(1);
    vi.advanceTimersByTime(200);
    expect(ws.sentOf('message_send')).toEqual([
      { type: 'message_send', room_id: 7, client_msg_id: id, content: 'too fast' },
      { type: 'message_send', room_id: 7, client_msg_id: id, content: 'too fast' },
    ]);
    client.stop();
  });

  it('resumes each room from its last seen seq and never doubles replayed messages', async () => {
    const { client } = setup();
    let ws = await online(client);
    client.open(7);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME, BOB], last_seq: 3 });
    await flush();
    ws.frame({ type: 'chat', message: msg(4) });
    const t = client.rooms.get(7)!.timeline;
    expect(t.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    client.networkLost();
    expect(client.conn).toBe('offline');
    expect(client.rooms.get(7)!.online.size).toBe(0);
    client.networkBack();
    await flush();
    ws = last();
    ws.open();
    ws.frame({ type: 'ready', user: ME });
    expect(ws.sentOf('join_room')).toEqual([{ type: 'join_room', room_id: 7, since_seq: 4 }]);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME, BOB], last_seq: 6 });
    ws.frame({ type: 'chat', message: msg(4) }); // overlap
    ws.frame({ type: 'chat', message: msg(5) });
    ws.frame({ type: 'chat', message: msg(6) });
    ws.frame({ type: 'chat', message: msg(6) });
    expect(t.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.resumeSeq()).toBe(6);
    // Opening the room marks nothing read: only what the user has on screen is.
    expect(ws.sentOf('read')).toEqual([]);
    client.sawMessage(7, 5);
    expect(ws.sentOf('read').at(-1)).toEqual({ type: 'read', room_id: 7, seq: 5 });
    expect(client.unread(7)).toBe(1);
    client.sawMessage(7, 6);
    expect(ws.sentOf('read').at(-1)).toEqual({ type: 'read', room_id: 7, seq: 6 });
    expect(client.unread(7)).toBe(0);
    client.stop();
  });

  it('resumes from the last delivered chat, not from an ack that overtook a chat in flight', async () => {
    const { client } = setup();
    let ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME, BOB], last_seq: 3 });
    const id = client.send(7, 'mine')!;
    // Bob's message got seq 4 and mine seq 5; the ack of mine overtakes Bob's chat 4.
    const mine = msg(5, { user: ME, content: 'mine', client_msg_id: id });
    ws.frame({ type: 'ack', client_msg_id: id, message: mine });
    const t = client.rooms.get(7)!.timeline;
    expect(t.pending).toEqual([]);
    expect(t.messages.map((m) => m.seq)).toEqual([5]);
    // The connection drops before chat 4 (and the echo chat 5) arrive.
    ws.drop(1006);
    vi.advanceTimersByTime(backoffMs(0, () => 1) + 1);
    await flush();
    ws = last();
    ws.open();
    ws.frame({ type: 'ready', user: ME });
    expect(ws.sentOf('join_room')).toEqual([{ type: 'join_room', room_id: 7, since_seq: 3 }]);
    // The replay brings 4 (and 5 again): nothing lost, nothing doubled.
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME, BOB], last_seq: 5 });
    ws.frame({ type: 'chat', message: msg(4) });
    ws.frame({ type: 'chat', message: mine });
    expect(t.messages.map((m) => m.seq)).toEqual([4, 5]);
    expect(t.resumeSeq()).toBe(5);
    client.stop();
  });

  it('counts unread messages from the server count plus others\' chats since', async () => {
    const { client, rest } = setup();
    rest.rooms.mockResolvedValue([{ ...room(7, 3), unread: 2 }]);
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    await flush();
    expect(client.unread(7)).toBe(2);
    ws.frame({ type: 'chat', message: msg(4) });
    expect(client.unread(7)).toBe(3);
    // My own messages and room events are not unread.
    ws.frame({ type: 'chat', message: msg(5, { user: ME }) });
    ws.frame({
      type: 'room_updated',
      message: msg(6, { content: 'topic', event: { type: 'room_updated', name: null, topic: 'x', is_private: null } as never }),
    });
    ws.frame({ type: 'chat', message: msg(7) });
    expect(client.unread(7)).toBe(1); // my message at 5 means I read up to it
    // Opening the room reads nothing until the messages are on screen.
    client.open(7);
    expect(client.unread(7)).toBe(1);
    client.sawMessage(7, 7);
    expect(client.unread(7)).toBe(0);
    expect(ws.sentOf('read').at(-1)).toEqual({ type: 'read', room_id: 7, seq: 7 });
    client.stop();
  });

  it('takes my read markers from other devices with their count, and others\' for seen by', async () => {
    const { client, rest } = setup();
    rest.rooms.mockResolvedValue([{ ...room(7, 4), unread: 4 }]);
    rest.receipts.mockResolvedValue([{ user: BOB, last_read_seq: 2 }, { user: ME, last_read_seq: 0 }]);
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME, BOB], last_seq: 4 });
    expect(client.unread(7)).toBe(4);
    ws.frame({ type: 'chat', message: msg(5) });
    // Read on my phone up to 3, counted when the room's newest was 4; chat 5 came after.
    ws.frame({ type: 'read_marker', room_id: 7, user: ME, seq: 3, unread: 1, last_seq: 4 });
    expect(client.unread(7)).toBe(2);
    expect(client.rooms.get(7)!.room.last_read_seq).toBe(3);
    client.open(7);
    await flush();
    expect(rest.receipts).toHaveBeenCalledWith(7);
    expect(client.receipts.get(7)!.get(BOB.id)!.last_read_seq).toBe(2);
    ws.frame({ type: 'read_marker', room_id: 7, user: BOB, seq: 5 });
    expect(client.receipts.get(7)!.get(BOB.id)!.last_read_seq).toBe(5);
    // A marker never moves back.
    ws.frame({ type: 'read_marker', room_id: 7, user: BOB, seq: 1 });
    expect(client.receipts.get(7)!.get(BOB.id)!.last_read_seq).toBe(5);
    client.stop();
  });

  it('re-authenticates the live socket when the token is refreshed', async () => {
    const { client, auth } = setup();
    const ws = await online(client);
    await auth.refresh();
    expect(ws.sentOf('auth')).toEqual([{ type: 'auth', token: 'tok-2' }]);
    ws.frame({ type: 'ready', user: ME }); // answered with ready: no re-join storm
    expect(ws.sentOf('join_room')).toHaveLength(1);
    client.stop();
  });

  it('on 4401 refreshes the token, then reconnects with the new one', async () => {
    const { client, auth } = setup();
    const ws = await online(client);
    ws.drop(4401);
    await flush();
    expect(auth.refresh).toHaveBeenCalled();
    expect(last()).not.toBe(ws);
    expect(last().protocols).toEqual(['socket-hub.v1', 'bearer.tok-2']);
    client.stop();
  });

  it('reconnects when pings go unanswered', async () => {
    const { client } = setup();
    const ws = await online(client);
    vi.advanceTimersByTime(15_000);
    expect(ws.sentOf('ping')).toHaveLength(1);
    vi.advanceTimersByTime(8_000);
    expect(ws.closedWith).toBe(4000);
    expect(client.conn).toBe('reconnecting');
    client.stop();
  });
});

describe('history paging', () => {
  it('loads the newest page on open, then pages backwards with before_seq', async () => {
    const { client, rest } = setup();
    const pages: Record<string, { messages: Message[]; next_before_seq?: number }> = {
      newest: { messages: [msg(60), msg(59)], next_before_seq: 59 },
      '59': { messages: [msg(58), msg(57)], next_before_seq: 57 },
      '57': { messages: [msg(56)] },
    };
    (rest.messages as ReturnType<typeof vi.fn>).mockImplementation(async (_id: number, before?: number) =>
      before === undefined ? pages.newest : pages[String(before)],
    );
    const ws = await online(client);
    client.open(7);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 60 });
    await vi.waitFor(() => expect(client.rooms.get(7)!.timeline.messages).toHaveLength(2));
    expect(await client.loadOlder(7)).toBe(2);
    expect(await client.loadOlder(7)).toBe(1);
    expect(await client.loadOlder(7)).toBe(0); // no older page
    expect(rest.messages).toHaveBeenCalledWith(7, 59);
    expect(rest.messages).toHaveBeenCalledWith(7, 57);
    expect(client.rooms.get(7)!.timeline.messages.map((m) => m.seq)).toEqual([56, 57, 58, 59, 60]);
    client.stop();
  });
});

describe('backoffMs', () => {
  it('grows exponentially with jitter and a cap', () => {
    expect(backoffMs(0, () => 0.5)).toBe(500);
    expect(backoffMs(1, () => 0.5)).toBe(1000);
    expect(backoffMs(3, () => 0.5)).toBe(4000);
    expect(backoffMs(20, () => 0.5)).toBe(15000);
    expect(backoffMs(0, () => 0)).toBe(400);
    expect(backoffMs(0, () => 1)).toBe(600);
  });

});

describe('ChatClient: invitations, DMs, notifications, removals', () => {
  it('lists DMs apart from rooms, by the other person', async () => {
    const { client, rest } = setup();
    (rest.dms as ReturnType<typeof vi.fn>).mockResolvedValue([
      { room: { ...room(9, 2), name: 'dm-1-5', is_direct: true, is_private: true }, peer: BOB },
    ]);
    await online(client);
    expect(client.myRooms().map((r) => r.room.id)).toEqual([7]);
    expect(client.myDirects().map((r) => r.room.id)).toEqual([9]);
    expect(client.displayName(9)).toBe(BOB.username);
  });

  it('counts notifications from REST and live frames once each, and marks them read', async () => {
    const { client, rest } = setup();
    const ws = await online(client);
    expect(client.unreadNotifications()).toBe(1);
    ws.frame({ type: 'notification', notification: note(1, 'invited') });
    ws.frame({ type: 'notification', notification: note(2, 'mentioned', { message: 'hi @me' }) });
    expect(client.unreadNotifications()).toBe(2);
    await client.markNotificationsRead();
    expect(rest.markNotificationsRead).toHaveBeenCalledWith(2);
    expect(client.unreadNotifications()).toBe(0);
    expect(client.totalUnread()).toBe(3); // the unread messages of room 7
  });

  it('a kicked user loses the room at once and is told who did it', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME, BOB], last_seq: 3 });
    client.open(7);
    ws.frame({
      type: 'kicked',
      message: msg(4, { content: 'bob kicked me', event: { type: 'kicked', user: ME, reason: 'spam' } }),
    });
    expect(client.myRooms()).toEqual([]);
    expect(client.removedFrom.has(7)).toBe(true);
    expect(client.closeRequested).toBe(7); // the open room's view closes
    expect(client.notices.map((n) => n.text)).toEqual([`${BOB.username} removed you from “room7” (spam).`]);
    // The notification about the same kick does not tell it twice.
    ws.frame({ type: 'notification', notification: note(3, 'kicked') });
    expect(client.notices).toHaveLength(1);
  });

  it('another member kicked is a room event: the room stays, its members reload', async () => {
    const { client } = setup();
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME, BOB], last_seq: 3 });
    ws.frame({ type: 'kicked', message: msg(4, { event: { type: 'kicked', user: BOB } }) });
    expect(client.myRooms().map((r) => r.room.id)).toEqual([7]);
    expect(client.rooms.get(7)!.eventCount).toBe(1);
    expect(client.notices).toEqual([]);
  });

  it('a new DM announced by a notification is listed and joined on the socket', async () => {
    const { client, rest } = setup();
    const ws = await online(client);
    expect(client.myDirects()).toEqual([]);
    (rest.dms as ReturnType<typeof vi.fn>).mockResolvedValue([
      { room: { ...room(9, 1), name: 'dm-1-2', is_direct: true, is_private: true }, peer: BOB },
    ]);
    ws.frame({ type: 'notification', notification: note(5, 'direct_message', { room_id: 9, message: null }) });
    await flush();
    expect(client.myDirects().map((r) => client.displayName(r.room.id))).toEqual([BOB.username]);
    expect(ws.sentOf('join_room').map((f) => f.room_id)).toContain(9);
  });

  it('accepts an invitation from its notification', async () => {
    const { client, rest } = setup();
    await online(client);
    const invited = { ...room(11, 0), is_private: true };
    Object.assign(rest, {
      invitations: vi.fn(async () => [{ id: 4, room_id: 11, room_name: 'room11', user: ME, invited_by: BOB, created_at: '' }]),
      acceptInvitation: vi.fn(async () => invited),
    });
    const view = await client.answerInvitation(11, true);
    expect(view?.id).toBe(11);
    expect((rest as unknown as RestClient).acceptInvitation).toHaveBeenCalledWith(4);
    expect(client.myRooms().map((r) => r.room.id)).toEqual([11, 7]); // by name: room11, room7
    expect(await client.answerInvitation(12, true)).toBeNull();
  });

  it('counts a notification once when it comes live and again in the replay after ready', async () => {
    const { client, rest } = setup();
    // The REST page (read while the socket starts) and the live frame carry the same one,
    // and the server's unread replay after `ready` sends it again.
    (rest.notifications as ReturnType<typeof vi.fn>).mockResolvedValue({ notifications: [note(6, 'mentioned')], unread: 1 });
    const ws = await online(client);
    ws.frame({ type: 'notification', notification: note(6, 'mentioned') });
    ws.frame({ type: 'notification', notification: note(6, 'mentioned') });
    await flush();
    expect(client.notifications.map((n) => n.id)).toEqual([6]);
    expect(client.unreadNotifications()).toBe(1);
    client.stop();
  });

  it('says its presence after ready, tracks others, and says away only on change', async () => {
    const { client, rest } = setup();
    Object.assign(rest, { presence: vi.fn(async () => [{ user_id: 2, status: 'away' }]) });
    const ws = await online(client);
    expect(ws.sentOf('presence')).toEqual([{ type: 'presence', status: 'online' }]);
    ws.frame({ type: 'presence', user_id: 2, status: 'online' });
    expect(client.presenceOf(2)?.status).toBe('online');
    ws.frame({ type: 'presence', user_id: 2, status: 'offline', last_seen_at: '2024-05-01T10:00:00Z' });
    expect(client.presenceOf(2)).toEqual({ status: 'offline', lastSeenAt: '2024-05-01T10:00:00Z' });
    client.setOwnPresence('away');
    client.setOwnPresence('away');
    expect(ws.sentOf('presence')).toHaveLength(2);
    await client.refreshPresence([2]);
    expect(client.presenceOf(2)).toEqual({ status: 'away', lastSeenAt: '2024-05-01T10:00:00Z' });
    client.stop();
  });

  it('reading a room marks its mentions read in the bell', async () => {
    const { client, rest } = setup();
    (rest.notifications as ReturnType<typeof vi.fn>).mockResolvedValue({
      notifications: [note(1, 'mentioned', { seq: 3 }), note(2, 'mentioned', { room_id: 8, seq: 1 })],
      unread: 2,
    });
    const ws = await online(client);
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 3 });
    expect(client.unreadNotifications()).toBe(2);
    client.open(7);
    await flush();
    // Read only once the message is on screen (the chat view's observer says so).
    expect(ws.sentOf('read')).toEqual([]);
    client.sawMessage(7, 3);
    expect(ws.sentOf('read')).toEqual([{ type: 'read', room_id: 7, seq: 3 }]);
    expect(client.unreadNotifications()).toBe(1);
    client.stop();
  });
});
