import { describe, expect, it } from 'vitest';
import {
  MAX_KEPT,
  markMentionsRead,
  describeNotification,
  markReadUpTo,
  mergeNotifications,
  newestId,
  pageTitle,
  totalUnread,
  unreadNotifications,
} from './notifications';
import type { Notification } from './types';

const n = (id: number, read = false, extra: Partial<Notification> = {}): Notification => ({
  id,
  kind: 'mentioned',
  room_id: 3,
  from: { id: 2, username: 'bob' },
  message: 'hi @ada',
  read,
  created_at: '2024-05-01T10:00:00Z',
  ...extra,
});

describe('notifications', () => {
  it('merges REST pages and live frames by id, oldest first', () => {
    const list = mergeNotifications([n(2), n(5)], [n(4), n(2), n(1)]);
    expect(list.map((x) => x.id)).toEqual([1, 2, 4, 5]);
    expect(unreadNotifications(list)).toBe(4);
  });

  it('keeps a notification read here read when a stale copy arrives', () => {
    const list = mergeNotifications([n(1, true)], [n(1, false)]);
    expect(list[0].read).toBe(true);
    expect(unreadNotifications(list)).toBe(0);
  });

  it('keeps only the newest ones', () => {
    const many = Array.from({ length: MAX_KEPT + 5 }, (_, i) => n(i + 1));
    const list = mergeNotifications([], many);
    expect(list).toHaveLength(MAX_KEPT);
    expect(list[0].id).toBe(6);
  });

  it('marks read up to an id, like the server', () => {
    const list = markReadUpTo([n(1), n(2), n(3)], 2);
    expect(list.map((x) => x.read)).toEqual([true, true, false]);
    expect(newestId(list)).toBe(3);
    expect(newestId([])).toBeNull();
  });

  it('describes each kind in words', () => {
    expect(describeNotification(n(1))).toBe('bob mentioned you: hi @ada');
    expect(describeNotification(n(1, false, { kind: 'kicked', message: 'lobby' }))).toBe('bob removed you from “lobby”');
    expect(describeNotification(n(1, false, { kind: 'direct_message', message: null }))).toBe(
      'bob started a conversation with you',
    );
  });

  it('puts the total unread in the page title', () => {
    expect(totalUnread([2, 0, 3], 1)).toBe(6);
    expect(pageTitle(0)).toBe('Socket-Hub');
    expect(pageTitle(6)).toBe('(6) Socket-Hub');
    expect(pageTitle(150)).toBe('(99+) Socket-Hub');
  });

  it('marks the mentions of a room read up to the read marker', () => {
    const list = [
      n(1, false, { seq: 4 }),
      n(2, false, { seq: 9 }),
      n(3, false, { room_id: 8, seq: 1 }),
      n(4, false, { kind: 'invited', seq: null }),
    ];
    const marked = markMentionsRead(list, 3, 5);
    expect(marked.map((x) => x.read)).toEqual([true, false, false, false]);
    expect(markMentionsRead(marked, 3, 5)).toBe(marked);
  });
});
