// The user's notification stream as the client keeps it: merged from `GET /notifications`
// and live `notification` frames (the same one can come both ways: deduplicated by id),
// and the unread counts that the bell, the badges and the page title show.
import type { Notification, NotificationKind } from './types';

/** At most this many notifications are kept in memory (the newest). */
export const MAX_KEPT = 200;

/**
 * Merges `incoming` into `list` (both ordered by id): one entry per id, oldest first, the
 * newest {@link MAX_KEPT}. A notification already marked read here stays read even when
 * an older copy (sent before the mark reached the server) says otherwise.
 */
export function mergeNotifications(list: readonly Notification[], incoming: readonly Notification[]): Notification[] {
  const byId = new Map<number, Notification>();
  for (const n of list) byId.set(n.id, n);
  for (const n of incoming) {
    const have = byId.get(n.id);
    byId.set(n.id, have ? { ...n, read: have.read || n.read } : n);
  }
  const merged = [...byId.values()].sort((a, b) => a.id - b.id);
  return merged.length > MAX_KEPT ? merged.slice(merged.length - MAX_KEPT) : merged;
}

/** Every notification up to `upTo` (inclusive) marked read, as `POST /notifications/read` does. */
export function markReadUpTo(list: readonly Notification[], upTo: number): Notification[] {
  return list.map((n) => (n.id <= upTo && !n.read ? { ...n, read: true } : n));
}

/**
 * Mentions in `roomId` at or before `seq` marked read: what moving the room's read marker
 * there does on the server (docs/protocol.md §6), so the bell agrees at once.
 */
export function markMentionsRead(list: readonly Notification[], roomId: number, seq: number): Notification[] {
  let changed = false;
  const next = list.map((n) => {
    if (n.read || n.kind !== 'mentioned' || n.room_id !== roomId || n.seq == null || n.seq > seq) return n;
    changed = true;
    return { ...n, read: true };
  });
  return changed ? next : (list as Notification[]);
}

export function unreadNotifications(list: readonly Notification[]): number {
  return list.reduce((sum, n) => sum + (n.read ? 0 : 1), 0);
}

/** The highest id in the list (the `up_to` that marks all read), or null when empty. */
export function newestId(list: readonly Notification[]): number | null {
  return list.length ? list[list.length - 1].id : null;
}

/** Whether this notification says the user is no longer in its room. */
export function removesMembership(kind: NotificationKind): boolean {
  return kind === 'kicked' || kind === 'banned' || kind === 'room_deleted';
}

/** One line for the notification list. */
export function describeNotification(n: Notification): string {
  const from = n.from?.username ?? 'Someone';
  const what = n.message ?? '';
  switch (n.kind) {
    case 'invited':
      return `${from} invited you to “${what}”`;
    case 'mentioned':
      return `${from} mentioned you: ${what}`;
    case 'direct_message':
      return `${from} started a conversation with you`;
    case 'kicked':
      return `${from} removed you from “${what}”`;
    case 'banned':
      return `${from} banned you from “${what}”`;
    case 'room_deleted':
      return `${from} deleted the room “${what}”`;
    default:
      return what || 'Notification';
  }
}

/**
 * Total unread for the page title: unread messages of the user's rooms and DMs plus
 * unread notifications.
 */
export function totalUnread(roomUnreads: readonly number[], notificationsUnread: number): number {
  return roomUnreads.reduce((a, b) => a + b, 0) + notificationsUnread;
}

/** The document title: `(3) Socket-Hub` with something unread, `Socket-Hub` without. */
export function pageTitle(total: number, base = 'Socket-Hub'): string {
  return total > 0 ? `(${total > 99 ? '99+' : total}) ${base}` : base;
}
