import { describe, expect, it } from 'vitest';
import { IDLE_AFTER_MS, ago, applyPresence, mergePresence, ownStatus, presenceLabel } from './presence';

describe('presence', () => {
  it('says away when the tab is hidden or idle', () => {
    expect(ownStatus(true, 1_000, 2_000)).toBe('online');
    expect(ownStatus(false, 1_000, 2_000)).toBe('away');
    expect(ownStatus(true, 0, IDLE_AFTER_MS)).toBe('away');
  });

  it('keeps the last-seen time across online and away', () => {
    let book = applyPresence(new Map(), 2, 'offline', '2024-05-01T10:00:00Z');
    book = applyPresence(book, 2, 'online');
    expect(book.get(2)).toEqual({ status: 'online', lastSeenAt: '2024-05-01T10:00:00Z' });
    book = applyPresence(book, 2, 'offline', '2024-05-02T10:00:00Z');
    expect(book.get(2)?.lastSeenAt).toBe('2024-05-02T10:00:00Z');
  });

  it('merges a REST answer without touching others', () => {
    const book = mergePresence(applyPresence(new Map(), 1, 'away'), [{ user_id: 2, status: 'online' }]);
    expect([...book.keys()].sort()).toEqual([1, 2]);
    expect(book.get(1)?.status).toBe('away');
  });

  it('reads as online, away, last seen or offline', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(presenceLabel({ status: 'online', lastSeenAt: null }, now)).toBe('Online');
    expect(presenceLabel({ status: 'away', lastSeenAt: null }, now)).toBe('Away');
    expect(presenceLabel({ status: 'offline', lastSeenAt: '2024-05-01T11:55:00Z' }, now)).toBe(
      'Last seen 5 minutes ago',
    );
    expect(presenceLabel({ status: 'offline', lastSeenAt: null }, now)).toBe('Offline');
    expect(presenceLabel(undefined, now)).toBe('Presence unknown');
    expect(ago('2024-05-01T11:59:40Z', now)).toBe('just now');
    expect(ago('2024-04-29T12:00:00Z', now)).toBe('2 days ago');
  });
});
