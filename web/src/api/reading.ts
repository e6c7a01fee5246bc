// Reading state: unread counts from the server's count plus what arrived since, the
// "seen by" of a message, and the marker frames that keep both live (docs/protocol.md §6
// Reading state). Pure functions: the ChatClient holds the state.
import type { Message, ReadReceipt, Seq, User, UserId } from './types';

/** The server's unread count of a room, and the room's newest seq when it was counted. */
export interface UnreadBase {
  count: number;
  through: Seq;
}

/** Rooms of at most this many members share read markers ("seen by"). */
export const MAX_RECEIPT_MEMBERS = 50;

/** Whether a message counts as unread for `meId`: a chat message of someone else, not erased. */
export function countsAsUnread(m: Message, meId: UserId | undefined): boolean {
  return !m.event && m.user.id !== meId && m.content !== '';
}

/**
 * Unread messages of a room: the server's count (unless the marker has since moved past
 * what it counted) plus the messages of others received after both the count and the
 * marker. `messages` is ascending by seq.
 */
export function unreadOf(base: UnreadBase, lastReadSeq: Seq, messages: Message[], meId: UserId | undefined): number {
  const from = Math.max(base.through, lastReadSeq);
  let extra = 0;
  for (let i = messages.length - 1; i >= 0 && messages[i].seq > from; i--) {
    if (countsAsUnread(messages[i], meId)) extra++;
  }
  return (lastReadSeq >= base.through ? 0 : base.count) + extra;
}

/** The newest message a "seen by" line belongs under: the last chat message. */
export function latestChat(messages: Message[]): Message | undefined {
  for (let i = messages.length - 1; i >= 0; i--) if (!messages[i].event) return messages[i];
  return undefined;
}

/** Who has read `message`: members other than me and its author whose marker reached it. */
export function seenBy(receipts: Iterable<ReadReceipt>, message: Message, meId: UserId | undefined): User[] {
  const users: User[] = [];
  for (const r of receipts) {
    if (r.user.id !== meId && r.user.id !== message.user.id && r.last_read_seq >= message.seq) users.push(r.user);
  }
  return users.sort((a, b) => a.username.localeCompare(b.username));
}

/** "Seen by ann, bob and 3 others"; "" when nobody. */
export function seenByLabel(users: User[], direct: boolean): string {
  if (users.length === 0) return '';
  if (direct) return 'Seen';
  const shown = users.slice(0, 3).map((u) => u.username);
  const more = users.length - shown.length;
  if (more > 0) return `Seen by ${shown.join(', ')} and ${more} other${more === 1 ? '' : 's'}`;
  if (shown.length === 1) return `Seen by ${shown[0]}`;
  return `Seen by ${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}`;
}

/**
 * Where the "new messages" divider goes: the first message of someone else after the
 * marker the room was opened with; undefined when none.
 */
export function firstUnreadSeq(messages: Message[], readAtOpen: Seq, meId: UserId | undefined): Seq | undefined {
  for (const m of messages) if (m.seq > readAtOpen && countsAsUnread(m, meId)) return m.seq;
  return undefined;
}
