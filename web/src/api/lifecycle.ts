// A message's life after it is sent (docs/protocol.md §6 "Message lifecycle"): the
// `message_updated`, `message_deleted` and `reaction` room events change the message they
// name instead of showing as lines of their own. Mirrors the Rust SDK's
// `socket_hub_protocol::lifecycle::fold`.
import type { Message, ReactionCount, ReplyQuote, UserId } from './types';

/** What a reply quotes of an original that was deleted (the server's text). */
export const DELETED_EXCERPT = '(message deleted)';
/** Characters of the original a reply quotes. */
export const EXCERPT_CHARS = 100;
/** Most distinct emojis a message may carry. */
export const MAX_DISTINCT_REACTIONS = 20;
/** The reactions offered by the picker. */
export const COMMON_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

/** Whether `m` is an event about another message (folded, never shown as a line). */
export function isLifecycleEvent(m: Message): boolean {
  const t = m.event?.type;
  return t === 'message_updated' || t === 'message_deleted' || t === 'reaction';
}

/** The quote a reply to `original` carries. */
export function quoteOf(original: Message): ReplyQuote {
  const deleted = !!original.deleted;
  return {
    id: original.id,
    seq: original.seq,
    user: original.user,
    excerpt: deleted ? DELETED_EXCERPT : [...original.content].slice(0, EXCERPT_CHARS).join(''),
    ...(deleted ? { deleted: true } : {}),
  };
}

/**
 * Applies the lifecycle event `event` to `messages` (in place: the message it names is
 * replaced by a changed copy, so React sees it change, and the quotes of its replies
 * follow). `me` decides the `me` flag of reactions. Returns whether anything changed;
 * an event about a message not held is ignored (a history page of it shows its state).
 */
export function applyChange(messages: Message[], event: Message, me: UserId | null): boolean {
  const ev = event.event;
  if (!ev) return false;
  const at = messages.findIndex((m) => 'message_id' in ev && m.id === ev.message_id);
  if (at < 0) return false;
  const before = messages[at];
  let after: Message;
  switch (ev.type) {
    case 'message_updated':
      after = { ...before, content: ev.content, edited_at: ev.edited_at, mentions: ev.mentions ?? [] };
      break;
    case 'message_deleted':
      after = {
        ...before,
        content: '',
        deleted: true,
        deleted_at: ev.deleted_at,
        edited_at: undefined,
        mentions: [],
        reactions: [],
      };
      break;
    case 'reaction':
      after = { ...before, reactions: react(before.reactions ?? [], ev.emoji, ev.added, event.user.id === me) };
      break;
    default:
      return false;
  }
  messages[at] = after;
  if (ev.type !== 'reaction') {
    const quote = quoteOf(after);
    for (let i = 0; i < messages.length; i++) {
      if (messages[i].reply_to?.id === after.id) messages[i] = { ...messages[i], reply_to: quote };
    }
  }
  return true;
}

/** One reaction counted in or out; an emoji at zero goes, a new one comes last. */
export function react(reactions: ReactionCount[], emoji: string, added: boolean, mine: boolean): ReactionCount[] {
  const i = reactions.findIndex((r) => r.emoji === emoji);
  if (i < 0) return added ? [...reactions, { emoji, count: 1, me: mine }] : reactions;
  const r = reactions[i];
  const next = { ...r, count: r.count + (added ? 1 : -1), me: mine ? added : r.me };
  return next.count > 0 ? reactions.map((x, j) => (j === i ? next : x)) : reactions.filter((_, j) => j !== i);
}
