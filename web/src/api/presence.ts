// Global presence as the client keeps it: who of the people sharing a room or DM with
// me is online, away or offline (docs/protocol.md §5), and what this tab says about me.
import type { PresenceStatus, UserId, UserPresence } from './types';

/** A tab with no input for this long says it is away. */
export const IDLE_AFTER_MS = 5 * 60_000;

export interface PresenceEntry {
  status: PresenceStatus;
  /** When the person was last seen (offline), if known. */
  lastSeenAt: string | null;
}

/** What this tab says about me: away while hidden or idle, online otherwise. */
export function ownStatus(visible: boolean, lastActivity: number, now: number): 'online' | 'away' {
  return visible && now - lastActivity < IDLE_AFTER_MS ? 'online' : 'away';
}

/**
 * `book` with one person's new status. A status without a last-seen time keeps the one
 * known (online and away say nothing about it).
 */
export function applyPresence(
  book: ReadonlyMap<UserId, PresenceEntry>,
  userId: UserId,
  status: PresenceStatus,
  lastSeenAt?: string | null,
): Map<UserId, PresenceEntry> {
  const next = new Map(book);
  const known = book.get(userId)?.lastSeenAt ?? null;
  next.set(userId, { status, lastSeenAt: lastSeenAt ?? known });
  return next;
}

/** `book` with what `GET /users/presence` answered. */
export function mergePresence(
  book: ReadonlyMap<UserId, PresenceEntry>,
  list: readonly UserPresence[],
): Map<UserId, PresenceEntry> {
  let next = new Map(book);
  for (const p of list) next = applyPresence(next, p.user_id, p.status, p.last_seen_at);
  return next;
}

/** "just now", "5 minutes ago", "3 hours ago", "2 days ago". */
export function ago(iso: string, now: number): string {
  const secs = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (secs < 60) return 'just now';
  const mins = Math.round(secs / 60);
  if (mins < 60) return `${mins} minute${mins === 1 ? '' : 's'} ago`;
  const hours = Math.round(mins / 60);
  if (hours < 24) return `${hours} hour${hours === 1 ? '' : 's'} ago`;
  const days = Math.round(hours / 24);
  return `${days} day${days === 1 ? '' : 's'} ago`;
}

/** How a person's presence reads: "Online", "Away", "Last seen 5 minutes ago", "Offline". */
export function presenceLabel(entry: PresenceEntry | undefined, now: number): string {
  if (!entry) return 'Presence unknown';
  if (entry.status === 'online') return 'Online';
  if (entry.status === 'away') return 'Away';
  return entry.lastSeenAt ? `Last seen ${ago(entry.lastSeenAt, now)}` : 'Offline';
}
