import { describe, expect, it } from 'vitest';
import { parseServerFrame } from './frames';
import { firstUnreadSeq, latestChat, seenBy, seenByLabel, unreadOf } from './reading';
import type { Message, User } from './types';

const ME: User = { id: 1, username: 'ada' };
const BOB: User = { id: 2, username: 'bob' };
const CY: User = { id: 3, username: 'cy' };
const msg = (seq: number, user: User = BOB, extra: Partial<Message> = {}): Message => ({
  id: seq,
  room_id: 7,
  seq,
  user,
  content: `m${seq}`,
  created_at: '2024-05-01T10:00:00Z',
  ...extra,
});
const event = (seq: number): Message =>
  msg(seq, BOB, { event: { type: 'room_updated', name: null, topic: 'x', is_private: null } as never });

describe('unreadOf', () => {
  it('adds others\' chat messages after the count to the server count', () => {
    const messages = [msg(3), msg(4), msg(5, ME), event(6), msg(7, BOB, { content: '' }), msg(8)];
    expect(unreadOf({ count: 2, through: 3 }, 0, messages, ME.id)).toBe(4); // 2 + seq 4 and 8
  });
  it('drops the server count once the marker passed what it counted', () => {
    expect(unreadOf({ count: 9, through: 3 }, 4, [msg(3), msg(4), msg(5)], ME.id)).toBe(1);
    expect(unreadOf({ count: 9, through: 3 }, 5, [msg(5)], ME.id)).toBe(0);
  });
});

describe('seen by', () => {
  const receipts = [
    { user: ME, last_read_seq: 9 },
    { user: BOB, last_read_seq: 5 },
    { user: CY, last_read_seq: 4 },
  ];
  it('lists members past the message, not me nor its author', () => {
    expect(seenBy(receipts, msg(4, ME), ME.id)).toEqual([BOB, CY]);
    expect(seenBy(receipts, msg(5, ME), ME.id)).toEqual([BOB]);
    expect(seenBy(receipts, msg(5, BOB), ME.id)).toEqual([]);
  });
  it('labels', () => {
    expect(seenByLabel([], false)).toBe('');
    expect(seenByLabel([BOB], false)).toBe('Seen by bob');
    expect(seenByLabel([BOB, CY], false)).toBe('Seen by bob and cy');
    expect(seenByLabel([BOB], true)).toBe('Seen');
    const many = ['a', 'b', 'c', 'd', 'e'].map((n, i) => ({ id: 10 + i, username: n }));
    expect(seenByLabel(many, false)).toBe('Seen by a, b, c and 2 others');
  });
  it('belongs under the latest chat message, not a room event', () => {
    expect(latestChat([msg(1), msg(2), event(3)])?.seq).toBe(2);
    expect(latestChat([event(1)])).toBeUndefined();
  });
});

describe('the new-messages divider', () => {
  it('goes above the first message of others after the marker at open', () => {
    const messages = [msg(1), msg(2, ME), event(3), msg(4), msg(5)];
    expect(firstUnreadSeq(messages, 1, ME.id)).toBe(4);
    expect(firstUnreadSeq(messages, 5, ME.id)).toBeUndefined();
  });
});

describe('read_marker frames', () => {
  it('parse with and without the count', () => {
    expect(
      parseServerFrame('{"type":"read_marker","room_id":3,"user":{"id":1,"username":"ada"},"seq":13,"unread":1,"last_seq":14}'),
    ).toEqual({ type: 'read_marker', room_id: 3, user: ME, seq: 13, unread: 1, last_seq: 14 });
    expect(parseServerFrame('{"type":"read_marker","room_id":3,"user":{"id":2,"username":"bob"},"seq":14}')).toEqual({
      type: 'read_marker',
      room_id: 3,
      user: BOB,
      seq: 14,
    });
    expect(parseServerFrame('{"type":"read_marker","room_id":3,"seq":14}')).toBeNull();
  });
});
