import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChatClient } from './chat';
import { idbOutbox, memoryOutbox, pendingLabel, type Outbox, type OutboxEntry } from './outbox';
import type { AuthManager, RestClient } from './rest';
import type { WebSocketLike } from './socket';
import type { Message, RoomView } from './types';

const ME = { id: 1, username: 'ada' };
const BOB = { id: 2, username: 'bob' };

const entry = (clientMsgId: string, extra: Partial<OutboxEntry> = {}): OutboxEntry => ({
  clientMsgId,
  userId: ME.id,
  roomId: 7,
  content: `text of ${clientMsgId}`,
  createdAt: 1_000,
  ...extra,
});

describe('the IndexedDB outbox', () => {
  it('keeps each user’s entries, oldest first, across a reload', async () => {
    const factory = new IDBFactory();
    const before = idbOutbox(factory, 'outbox-test');
    await before.put(entry('c-2', { createdAt: 2_000 }));
    await before.put(entry('c-1', { createdAt: 1_000 }));
    await before.put(entry('c-bob', { userId: BOB.id }));
    // A reload: a new page opens the same database.
    const after = idbOutbox(factory, 'outbox-test');
    expect((await after.list(ME.id)).map((e) => e.clientMsgId)).toEqual(['c-1', 'c-2']);
    expect((await after.list(BOB.id)).map((e) => e.clientMsgId)).toEqual(['c-bob']);
    expect(await after.list(99)).toEqual([]);
    expect((await after.list(ME.id))[0]).toEqual(entry('c-1', { createdAt: 1_000 }));
  });

  it('removes an entry, and clears every user’s', async () => {
    const outbox = idbOutbox(new IDBFactory(), 'outbox-test');
    await outbox.put(entry('c-1'));
    await outbox.put(entry('c-2'));
    await outbox.put(entry('c-bob', { userId: BOB.id }));
    await outbox.remove('c-1');
    await outbox.remove('never-there'); // no error
    expect((await outbox.list(ME.id)).map((e) => e.clientMsgId)).toEqual(['c-2']);
    await outbox.clear();
    expect(await outbox.list(ME.id)).toEqual([]);
    expect(await outbox.list(BOB.id)).toEqual([]);
  });

  it('writing the same client_msg_id twice keeps one entry', async () => {
    const outbox = idbOutbox(new IDBFactory(), 'outbox-test');
    await outbox.put(entry('c-1'));
    await outbox.put(entry('c-1', { content: 'same id' }));
    expect(await outbox.list(ME.id)).toEqual([entry('c-1', { content: 'same id' })]);
  });
});

describe('pendingLabel', () => {
  it('says a send waits for the network while the connection is down', () => {
    expect(pendingLabel({ status: 'sending' }, 'online')).toBe('Sending…');
    expect(pendingLabel({ status: 'sending' }, 'offline')).toBe('Waiting for the network…');
    expect(pendingLabel({ status: 'sending' }, 'reconnecting')).toBe('Waiting for the network…');
    expect(pendingLabel({ status: 'failed' }, 'online')).toBe('Not sent');
  });
});

// ---- ChatClient with an outbox: a reload is a second client on the same outbox ------

class FakeWS implements WebSocketLike {
  static all: FakeWS[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: WebSocketLike['onopen'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onerror: WebSocketLike['onerror'] = null;
  constructor() {
    FakeWS.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
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

/** A client of user `me` on `outbox`; `history` is the newest page REST returns. */
function client(outbox: Outbox, { me = ME, history = [msg(2), msg(1)] as Message[] } = {}) {
  const auth = {
    user: me,
    accessToken: vi.fn(async () => 'tok'),
    refresh: vi.fn(async () => null),
    subscribe: () => () => {},
  } as unknown as AuthManager;
  const rest = {
    rooms: vi.fn(async () => [room(7, 2)]),
    room: vi.fn(async () => room(7, 2)),
    messages: vi.fn(async () => ({ messages: history })),
    markRead: vi.fn(async () => {}),
    leaveRoom: vi.fn(async () => {}),
    dms: vi.fn(async () => []),
    notifications: vi.fn(async () => ({ notifications: [], unread: 0 })),
    markNotificationsRead: vi.fn(async () => {}),
  } as unknown as RestClient;
  return new ChatClient({
    auth,
    rest,
    socketUrl: 'ws://test/ws',
    createSocket: () => new FakeWS(),
    isVisible: () => true,
    outbox,
  });
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};
const last = () => FakeWS.all[FakeWS.all.length - 1];

/** Starts `c` with its socket connected, authenticated and room 7 joined. */
async function online(c: ChatClient, lastSeq = 2) {
  await c.start();
  await flush();
  const ws = last();
  ws.open();
  ws.frame({ type: 'ready', user: ME });
  ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: lastSeq });
  return ws;
}

/** Starts `c` with the socket never getting through (the network is down). */
async function offline(c: ChatClient) {
  await c.start();
  await flush();
  return last(); // CONNECTING, never opens
}

afterEach(() => {
  FakeWS.all = [];
  vi.useRealTimers();
});

describe('ChatClient with an outbox', () => {
  it('a message written offline survives a reload and goes out once, with its client_msg_id', async () => {
    const outbox = memoryOutbox();
    const before = client(outbox);
    const ws0 = await offline(before);
    const id = before.send(7, 'written offline')!;
    await flush();
    expect(ws0.sentOf('message_send')).toEqual([]);
    expect(before.rooms.get(7)!.timeline.pending.map((p) => [p.clientMsgId, p.status])).toEqual([[id, 'sending']]);
    expect([...outbox.entries.values()]).toMatchObject([{ clientMsgId: id, userId: 1, roomId: 7, content: 'written offline' }]);
    before.stop();

    // The reload: still offline, the message is shown as pending again.
    const after = client(outbox);
    await offline(after);
    const pending = after.rooms.get(7)!.timeline.pending;
    expect(pending.map((p) => [p.clientMsgId, p.content, p.status])).toEqual([[id, 'written offline', 'sending']]);
    after.stop();

    // Back online: sent with the same id; the ack empties the outbox.
    const online2 = client(outbox);
    const ws = await online(online2);
    expect(ws.sentOf('message_send')).toEqual([{ type: 'message_send', room_id: 7, client_msg_id: id, content: 'written offline' }]);
    const stored = msg(3, { user: ME, content: 'written offline', client_msg_id: id });
    ws.frame({ type: 'ack', client_msg_id: id, message: stored });
    await flush();
    expect(online2.rooms.get(7)!.timeline.pending).toEqual([]);
    expect(outbox.entries.size).toBe(0);
    online2.stop();
  });

  it('an entry the server stored before the reload (ack lost) is taken from history, not shown twice', async () => {
    const outbox = memoryOutbox();
    await outbox.put(entry('c-stored', { content: 'made it' }));
    const stored = msg(3, { user: ME, content: 'made it', client_msg_id: 'c-stored' });
    const c = client(outbox, { history: [stored, msg(2), msg(1)] });
    await online(c, 3);
    c.open(7);
    await flush();
    const t = c.rooms.get(7)!.timeline;
    expect(t.pending).toEqual([]);
    expect(t.messages.filter((m) => m.content === 'made it')).toHaveLength(1);
    expect(outbox.entries.size).toBe(0);
    c.stop();
  });

  it('restores only the signed-in user’s entries', async () => {
    const outbox = memoryOutbox();
    await outbox.put(entry('c-bob', { userId: BOB.id, content: 'bob’s' }));
    await outbox.put(entry('c-mine', { content: 'mine' }));
    const c = client(outbox);
    const ws = await online(c);
    expect(ws.sentOf('message_send').map((f) => f.client_msg_id)).toEqual(['c-mine']);
    expect(outbox.entries.has('c-bob')).toBe(true);
    c.stop();
  });

  it('a send refused for good leaves the outbox but stays on screen as not sent', async () => {
    const outbox = memoryOutbox();
    const c = client(outbox);
    const ws = await online(c);
    const id = c.send(7, 'x'.repeat(10))!;
    await flush();
    expect(outbox.entries.has(id)).toBe(true);
    ws.frame({ type: 'error', code: 'content_too_long', message: 'too long', ref: id });
    await flush();
    expect(outbox.entries.has(id)).toBe(false);
    expect(c.rooms.get(7)!.timeline.findPending(id)?.status).toBe('failed');
    c.stop();
  });

  it('a discarded message leaves the outbox; logout clears it', async () => {
    const outbox = memoryOutbox();
    const c = client(outbox);
    await offline(c);
    const a = c.send(7, 'first')!;
    c.send(7, 'second');
    await flush();
    c.discard(7, a);
    await flush();
    expect([...outbox.entries.values()].map((e) => e.content)).toEqual(['second']);
    await c.clearOutbox();
    expect(outbox.entries.size).toBe(0);
    c.stop();
  });

  it('leaving the room drops its unsent messages from the outbox', async () => {
    const outbox = memoryOutbox();
    const c = client(outbox);
    await offline(c);
    c.send(7, 'never mind');
    await flush();
    expect(outbox.entries.size).toBe(1);
    await c.leaveRoom(7);
    await flush();
    expect(outbox.entries.size).toBe(0);
    c.stop();
  });

  it('a send whose ack timed out goes again, same id, when the room is joined again', async () => {
    vi.useFakeTimers();
    const outbox = memoryOutbox();
    const c = client(outbox);
    let ws = await online(c);
    const id = c.send(7, 'slow link')!;
    vi.advanceTimersByTime(15_001); // no ack: shown as not delivered yet
    expect(c.rooms.get(7)!.timeline.findPending(id)?.status).toBe('failed');
    ws.drop(1006);
    vi.advanceTimersByTime(20_000);
    await flush();
    ws = last();
    ws.open();
    ws.frame({ type: 'ready', user: ME });
    ws.frame({ type: 'room_joined', room_id: 7, members: [ME], last_seq: 2 });
    expect(ws.sentOf('message_send')).toEqual([{ type: 'message_send', room_id: 7, client_msg_id: id, content: 'slow link' }]);
    expect(c.rooms.get(7)!.timeline.findPending(id)?.status).toBe('sending');
    expect(outbox.entries.has(id)).toBe(true);
    c.stop();
  });

  it('offline, the open room shows the history kept for it, then resumes from its newest message', async () => {
    const c = client(memoryOutbox());
    c.open(7); // a deep link: the room is not known yet
    await c.start();
    await flush();
    expect(c.rooms.get(7)!.timeline.messages).toEqual([]); // still connecting: room_joined loads it
    c.networkLost();
    await flush();
    expect(c.rooms.get(7)!.timeline.messages.map((m) => m.seq)).toEqual([1, 2]);
    c.networkBack();
    await flush();
    const ws = last();
    ws.open();
    ws.frame({ type: 'ready', user: ME });
    expect(ws.sentOf('join_room')).toEqual([{ type: 'join_room', room_id: 7, since_seq: 2 }]);
    c.stop();
  });
});
