import { describe, expect, it } from 'vitest';
import { DELETED_EXCERPT, applyChange, quoteOf, react } from './lifecycle';
import { RoomTimeline } from './timeline';
import type { Message, RoomEvent } from './types';

const ada = { id: 1, username: 'ada' };
const bob = { id: 2, username: 'bob' };

const m = (seq: number, extra: Partial<Message> = {}): Message => ({
  id: seq * 10,
  room_id: 1,
  seq,
  user: ada,
  content: `m${seq}`,
  created_at: '2024-05-01T10:00:00Z',
  ...extra,
});

const ev = (seq: number, event: RoomEvent, user = ada): Message => m(seq, { user, content: 'summary', event });

describe('folding message lifecycle events into a timeline', () => {
  it('edits, reacts and deletes the message they name, never adding a line', () => {
    const t = new RoomTimeline();
    t.me = bob.id;
    const original = m(1);
    const reply = m(2, { user: bob, content: 'hi', reply_to: quoteOf(original) });
    t.addNewestPage([reply, original], null);
    t.joined(2, false);

    t.addChat(ev(3, { type: 'message_updated', message_id: 10, content: 'm1, fixed', edited_at: '2024-05-01T10:01:00Z', mentions: [] }));
    expect(t.messages.map((x) => x.seq)).toEqual([1, 2]);
    expect(t.messages[0].content).toBe('m1, fixed');
    expect(t.messages[0].edited_at).toBe('2024-05-01T10:01:00Z');
    expect(t.messages[1].reply_to?.excerpt).toBe('m1, fixed');

    t.addChat(ev(4, { type: 'reaction', message_id: 10, emoji: '👍', added: true }, bob));
    t.addChat(ev(5, { type: 'reaction', message_id: 10, emoji: '👍', added: true }, ada));
    t.addChat(ev(5, { type: 'reaction', message_id: 10, emoji: '👍', added: true }, ada)); // replayed twice
    expect(t.messages[0].reactions).toEqual([{ emoji: '👍', count: 2, me: true }]);
    t.addChat(ev(6, { type: 'reaction', message_id: 10, emoji: '👍', added: false }, bob));
    expect(t.messages[0].reactions).toEqual([{ emoji: '👍', count: 1, me: false }]);

    t.addChat(ev(7, { type: 'message_deleted', message_id: 10, deleted_at: '2024-05-01T10:02:00Z' }));
    expect(t.messages[0]).toMatchObject({ content: '', deleted: true, reactions: [] });
    expect(t.messages[1].reply_to).toMatchObject({ deleted: true, excerpt: DELETED_EXCERPT });
    // Every event moved the resume point like any message of the stream.
    expect(t.resumeSeq()).toBe(7);
  });

  it('folds into a page only the events after the page was read', () => {
    const t = new RoomTimeline();
    t.me = bob.id;
    const liked = m(1, { reactions: [{ emoji: '👍', count: 1, me: true }] });
    // Read as of seq 3: the reaction event (seq 2) is already counted in the page.
    t.addNewestPage([liked], null, 3);
    expect(t.resumeSeq()).toBe(3);
    t.addChat(ev(2, { type: 'reaction', message_id: 10, emoji: '👍', added: true }, bob)); // late delivery
    expect(t.messages[0].reactions).toEqual([{ emoji: '👍', count: 1, me: true }]);
    t.addChat(ev(4, { type: 'reaction', message_id: 10, emoji: '👍', added: true }, ada));
    expect(t.messages[0].reactions).toEqual([{ emoji: '👍', count: 2, me: true }]);
  });

  it('ignores events about messages it does not hold', () => {
    const list = [m(5)];
    expect(applyChange(list, ev(6, { type: 'message_deleted', message_id: 999, deleted_at: 'x' }), 1)).toBe(false);
    expect(list).toEqual([m(5)]);
  });

  it('counts reactions in and out; an emoji at zero goes, a new one comes last', () => {
    let r = react([], '🎉', true, false);
    r = react(r, '👍', true, true);
    expect(r).toEqual([
      { emoji: '🎉', count: 1, me: false },
      { emoji: '👍', count: 1, me: true },
    ]);
    r = react(r, '🎉', false, false);
    expect(r).toEqual([{ emoji: '👍', count: 1, me: true }]);
    expect(react(r, '😮', false, false)).toBe(r);
  });

  it('quotes the first 100 characters of the original', () => {
    const long = m(1, { content: 'x'.repeat(150) });
    expect(quoteOf(long).excerpt).toHaveLength(100);
    expect(quoteOf(m(1, { deleted: true, content: '' }))).toMatchObject({ deleted: true, excerpt: DELETED_EXCERPT });
  });
});
