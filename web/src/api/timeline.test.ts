import { describe, expect, it } from 'vitest';
import { RoomTimeline, unreadCount } from './timeline';
import type { Message } from './types';

const m = (seq: number, extra: Partial<Message> = {}): Message => ({
  id: seq * 10,
  room_id: 1,
  seq,
  user: { id: 1, username: 'ada' },
  content: `m${seq}`,
  created_at: '2024-05-01T10:00:00Z',
  ...extra,
});

const seqs = (t: RoomTimeline) => t.messages.map((x) => x.seq);

describe('RoomTimeline dedupe and order', () => {
  it('keeps messages sorted by seq and never doubles one', () => {
    const t = new RoomTimeline();
    expect(t.add([m(3), m(1)])).toBe(2);
    expect(t.add([m(2), m(3), m(1)])).toBe(1);
    expect(seqs(t)).toEqual([1, 2, 3]);
    expect(t.addChat(m(3))).toBe(false);
    expect(seqs(t)).toEqual([1, 2, 3]);
  });

  it('merges a newest-first page with live messages that overlap it', () => {
    const t = new RoomTimeline();
    t.addChat(m(11)); // live frame before the history request returned
    t.addNewestPage([m(11), m(10), m(9)], 9);
    expect(seqs(t)).toEqual([9, 10, 11]);
    expect(t.olderCursor).toBe(9);
    t.addOlderPage([m(8), m(7)], undefined);
    expect(seqs(t)).toEqual([7, 8, 9, 10, 11]);
    expect(t.olderCursor).toBeNull();
  });
});

describe('RoomTimeline resume bookkeeping', () => {
  it('joins fresh the first time, then resumes from the last seen seq', () => {
    const t = new RoomTimeline();
    expect(t.resumeSeq()).toBeUndefined();
    t.joined(5, false); // room_joined after a fresh join: everything <= 5 is history
    expect(t.resumeSeq()).toBe(5);
    t.addChat(m(6));
    t.addChat(m(7));
    expect(t.resumeSeq()).toBe(7);
  });

  it('does not skip ahead on a resumed room_joined (replay is still coming)', () => {
    const t = new RoomTimeline();
    t.joined(5, false);
    t.addChat(m(6));
    // Reconnect: join_room since_seq=6; the server says last_seq=9 then replays 7..9.
    t.joined(9, true);
    expect(t.resumeSeq()).toBe(6); // until the replay arrives, resume stays at 6
    t.addChat(m(7));
    t.addChat(m(8));
    t.addChat(m(7)); // duplicate delivery
    expect(t.resumeSeq()).toBe(8);
    t.addChat(m(9));
    expect(seqs(t)).toEqual([6, 7, 8, 9]);
  });

  it('never resumes past an ack: chats before it may still be in flight', () => {
    const t = new RoomTimeline();
    t.joined(3, false);
    t.addAcked(m(5, { client_msg_id: 'c5' })); // my send, acked before chat 4 arrived
    expect(seqs(t)).toEqual([5]);
    expect(t.resumeSeq()).toBe(3);
    t.addChat(m(5, { client_msg_id: 'c5' })); // echo of my send, still before chat 4
    expect(t.resumeSeq()).toBe(3);
    t.addChat(m(4));
    expect(t.resumeSeq()).toBe(5); // 4 and 5 delivered: contiguous again
    expect(seqs(t)).toEqual([4, 5]);
  });

  it('a newest page from REST does not count an acked message as delivered', () => {
    const t = new RoomTimeline();
    t.addAcked(m(9, { client_msg_id: 'c9' }));
    t.addNewestPage([m(7), m(6)], 6); // fetched before 8 and 9 were stored
    expect(t.resumeSeq()).toBe(7);
  });

  it('history from REST makes the resume point known', () => {
    const t = new RoomTimeline();
    t.addNewestPage([m(4), m(3)], 3);
    expect(t.resumeSeq()).toBe(4);
    const empty = new RoomTimeline();
    empty.addNewestPage([], undefined);
    expect(empty.resumeSeq()).toBe(0);
  });
});

describe('pending -> confirmed reconciliation', () => {
  it('shows a send at once and confirms it by client_msg_id exactly once', () => {
    const t = new RoomTimeline();
    t.joined(0, false);
    t.addPending('c1', 'hello', 1000);
    expect(t.pending.map((p) => p.status)).toEqual(['sending']);
    // ack and the echo chat carry the same message: one confirmed copy, no pending.
    t.addAcked(m(1, { client_msg_id: 'c1', content: 'hello' }));
    t.addChat(m(1, { client_msg_id: 'c1', content: 'hello' }));
    expect(t.pending).toEqual([]);
    expect(t.messages).toHaveLength(1);
  });

  it('marks failures, retries with the same id, and dedupes a late confirmation', () => {
    const t = new RoomTimeline();
    t.addPending('c2', 'again', 0);
    t.markFailed('c2', 'You are going too fast.', true);
    expect(t.findPending('c2')).toMatchObject({ status: 'failed', retryable: true });
    const p = t.markSending('c2');
    expect(p).toMatchObject({ clientMsgId: 'c2', status: 'sending', attempts: 1 });
    // The first attempt had actually been stored; the retry is answered with the same message.
    t.addAcked(m(4, { client_msg_id: 'c2' }));
    t.addAcked(m(4, { client_msg_id: 'c2' }));
    expect(t.pending).toEqual([]);
    expect(seqs(t)).toEqual([4]);
  });
});

describe('unreadCount', () => {
  it('is last_seq - last_read_seq, never negative', () => {
    expect(unreadCount(10, 7)).toBe(3);
    expect(unreadCount(3, 3)).toBe(0);
    expect(unreadCount(2, 5)).toBe(0);
  });
});
