// Per-room message bookkeeping: confirmed messages deduplicated by seq, pending sends
// reconciled by client_msg_id, the resume point for `join_room {since_seq}`, and the
// cursor for paging history backwards.
import { applyChange, isLifecycleEvent } from './lifecycle';
import type { Message, Seq, UserId } from './types';
import type { Attachment } from './protocol';

export type PendingStatus = 'sending' | 'failed';

export interface PendingMessage {
  clientMsgId: string;
  content: string;
  status: PendingStatus;
  /** Human-readable reason when failed. */
  error?: string;
  /** Whether resending can help (false for e.g. content too long). */
  retryable: boolean;
  createdAt: number;
  attempts: number;
  /** The id of the message this one answers. */
  replyTo?: number;
  /** Uploads sent with the message (already stored; only their ids travel). */
  attachments?: Attachment[];
}

export class RoomTimeline {
  /** Confirmed messages, ascending by seq, no duplicates. */
  messages: Message[] = [];
  pending: PendingMessage[] = [];
  /**
   * The `since_seq` to resume from: every message up to it was delivered (a `chat` frame
   * or REST history), with no gap. Never taken from an `ack`: an ack can overtake earlier
   * chats still in flight (docs/protocol.md §4), and resuming past them loses them for
   * good. Meaningful only when `known`.
   */
  maxSeq: Seq = 0;
  /** Whether `maxSeq` is a point up to which nothing newer than history was missed. */
  known = false;
  /** `undefined`: newest page never loaded; `null`: no older page; else next before_seq. */
  olderCursor: Seq | null | undefined = undefined;
  /** Whose view this is: decides `me` of reactions folded from `reaction` events. */
  me: UserId | null = null;
  private seqs = new Set<Seq>();
  /**
   * For messages from a history page: the page's `last_seq`, up to which the page already
   * shows their edits, deletions and reactions (later events only are folded in).
   */
  private asOf = new Map<number, Seq>();
  /** Seqs delivered by `chat` frames above `maxSeq`, waiting for the gap below them to fill. */
  private delivered = new Set<Seq>();

  /**
   * Adds confirmed messages (any order, duplicates ignored). Pending sends they confirm
   * (same client_msg_id) are removed. Returns how many were new.
   */
  add(messages: Message[]): number {
    let added = 0;
    let needsSort = false;
    for (const m of messages) {
      if (m.client_msg_id) this.dropPending(m.client_msg_id);
      if (this.seqs.has(m.seq)) continue;
      this.seqs.add(m.seq);
      // Edits, deletions and reactions change the message they name (./lifecycle).
      if (isLifecycleEvent(m)) {
        const target = m.event && 'message_id' in m.event ? m.event.message_id : -1;
        if (m.seq > (this.asOf.get(target) ?? 0)) applyChange(this.messages, m, this.me);
        continue;
      }
      const last = this.messages[this.messages.length - 1];
      if (last && last.seq > m.seq) needsSort = true;
      this.messages.push(m);
      added++;
    }
    if (needsSort) this.messages.sort((a, b) => a.seq - b.seq);
    return added;
  }

  /**
   * A `chat` frame (live or replayed): shown, and it advances the resume point as far as
   * delivery is contiguous. Returns whether the message was new to the timeline (it may
   * already be there from its `ack`).
   */
  addChat(message: Message): boolean {
    const added = this.add([message]) > 0;
    if (message.seq > this.maxSeq) this.delivered.add(message.seq);
    this.advance();
    return added;
  }

  /**
   * An `ack` of this client's own send: shown (it confirms the pending copy), but the
   * resume point stays put, since chats before it may still be in flight.
   */
  addAcked(message: Message): boolean {
    return this.add([message]) > 0;
  }

  /** Moves `maxSeq` over every delivered seq directly above it. */
  private advance(): void {
    if (!this.known) return;
    while (this.delivered.has(this.maxSeq + 1)) this.delivered.delete(++this.maxSeq);
    for (const seq of this.delivered) if (seq <= this.maxSeq) this.delivered.delete(seq);
  }

  /** Raises the resume point to `seq` (everything up to it is accounted for). */
  private raiseTo(seq: Seq): void {
    this.maxSeq = Math.max(this.known ? this.maxSeq : 0, seq);
    this.known = true;
    this.advance();
  }

  /**
   * The newest page from REST (newest first), read when the room's newest seq was
   * `lastSeq`; makes the resume point known.
   */
  addNewestPage(page: Message[], nextBeforeSeq?: Seq | null, lastSeq?: Seq): void {
    this.notePage(page, lastSeq);
    this.add(page);
    this.olderCursor = nextBeforeSeq ?? null;
    // The newest page holds everything stored up to its newest message, and reflects
    // every edit, deletion and reaction up to `lastSeq`.
    this.raiseTo(Math.max(lastSeq ?? 0, page.reduce((max, m) => Math.max(max, m.seq), 0)));
  }

  /** An older page from REST (newest first), read as of `lastSeq`. */
  addOlderPage(page: Message[], nextBeforeSeq?: Seq | null, lastSeq?: Seq): number {
    this.notePage(page, lastSeq);
    const added = this.add(page);
    this.olderCursor = nextBeforeSeq ?? null;
    return added;
  }

  /**
   * `room_joined`. After a fresh join (no since_seq), everything up to `lastSeq` is
   * history (REST) and live frames continue after it.
   */
  joined(lastSeq: Seq, resumed: boolean): void {
    if (resumed) return; // replayed chat frames advance maxSeq as they come
    this.raiseTo(lastSeq);
  }

  /** Remembers up to which seq the page's messages (those new here) show their changes. */
  private notePage(page: Message[], lastSeq?: Seq): void {
    if (lastSeq === undefined) return;
    for (const m of page) if (!this.seqs.has(m.seq)) this.asOf.set(m.id, lastSeq);
  }

  /** `since_seq` for the next `join_room`, or undefined for a fresh join. */
  resumeSeq(): Seq | undefined {
    return this.known ? this.maxSeq : undefined;
  }

  highestSeq(): Seq {
    return this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
  }

  oldestSeq(): Seq | undefined {
    return this.messages[0]?.seq;
  }

  addPending(clientMsgId: string, content: string, now: number, replyTo?: number, attachments?: Attachment[]): PendingMessage {
    const p: PendingMessage = { clientMsgId, content, status: 'sending', retryable: true, createdAt: now, attempts: 0 };
    if (replyTo !== undefined) p.replyTo = replyTo;
    if (attachments?.length) p.attachments = attachments;
    this.pending.push(p);
    return p;
  }

  findPending(clientMsgId: string): PendingMessage | undefined {
    return this.pending.find((p) => p.clientMsgId === clientMsgId);
  }

  markFailed(clientMsgId: string, error: string, retryable: boolean): void {
    const p = this.findPending(clientMsgId);
    if (p) Object.assign(p, { status: 'failed', error, retryable });
  }

  markSending(clientMsgId: string): PendingMessage | undefined {
    const p = this.findPending(clientMsgId);
    if (p) {
      p.status = 'sending';
      p.error = undefined;
      p.attempts++;
    }
    return p;
  }

  dropPending(clientMsgId: string): void {
    const i = this.pending.findIndex((p) => p.clientMsgId === clientMsgId);
    if (i >= 0) this.pending.splice(i, 1);
  }
}

/** Unread count from a room's newest seq and the user's read marker. */
export function unreadCount(lastSeq: Seq, lastReadSeq: Seq): number {
  return Math.max(0, lastSeq - lastReadSeq);
}

/** A random idempotency key for a send. */
export function newClientMsgId(): string {
  const c = globalThis.crypto;
  if (c && 'randomUUID' in c) return c.randomUUID();
  return `m-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
