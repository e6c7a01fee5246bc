// Parsing and encoding of WebSocket frames. Parsing validates the shape, so the rest of
// the client can trust what it gets (a malformed frame is dropped, not crashed on).
import type { ClientFrame, Message, Notification, ServerFrame, User } from './types';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

export function isUser(v: unknown): v is User {
  return isObj(v) && isInt(v.id) && isStr(v.username);
}

export function isMessage(v: unknown): v is Message {
  return (
    isObj(v) &&
    isInt(v.id) &&
    isInt(v.room_id) &&
    isInt(v.seq) &&
    isUser(v.user) &&
    isStr(v.content) &&
    isStr(v.created_at) &&
    (v.client_msg_id === undefined || v.client_msg_id === null || isStr(v.client_msg_id))
  );
}

export function isNotification(v: unknown): v is Notification {
  return (
    isObj(v) &&
    isInt(v.id) &&
    isStr(v.kind) &&
    typeof v.read === 'boolean' &&
    isStr(v.created_at) &&
    (v.room_id === undefined || v.room_id === null || isInt(v.room_id)) &&
    (v.from === undefined || v.from === null || isUser(v.from)) &&
    (v.message === undefined || v.message === null || isStr(v.message)) &&
    (v.seq === undefined || v.seq === null || isInt(v.seq))
  );
}

/** Parses one text frame from the server; `null` when it is not a frame we understand. */
export function parseServerFrame(text: string): ServerFrame | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObj(v) || !isStr(v.type)) return null;
  switch (v.type) {
    case 'ready':
      return isUser(v.user) ? { type: 'ready', user: v.user } : null;
    case 'room_joined':
      return isInt(v.room_id) && Array.isArray(v.members) && v.members.every(isUser) && isInt(v.last_seq)
        ? { type: 'room_joined', room_id: v.room_id, members: v.members as User[], last_seq: v.last_seq }
        : null;
    case 'room_left':
      return isInt(v.room_id) ? { type: 'room_left', room_id: v.room_id } : null;
    case 'chat':
      return isMessage(v.message) ? { type: 'chat', message: normalizeMessage(v.message) } : null;
    // Room events: stored messages with their own seq, in order with chat (docs/protocol.md §6).
    case 'room_updated':
    case 'member_updated':
    case 'kicked':
    case 'banned':
    case 'unbanned':
    case 'message_updated':
    case 'message_deleted':
    case 'reaction':
      return isMessage(v.message) && isObj(v.message.event)
        ? { type: v.type, message: normalizeMessage(v.message) }
        : null;
    case 'room_deleted':
      return isInt(v.room_id) && isUser(v.by) ? { type: 'room_deleted', room_id: v.room_id, by: v.by } : null;
    case 'join':
    case 'leave':
    case 'typing':
      return isInt(v.room_id) && isUser(v.user) ? { type: v.type, room_id: v.room_id, user: v.user } : null;
    case 'ack':
      return isStr(v.client_msg_id) && isMessage(v.message)
        ? { type: 'ack', client_msg_id: v.client_msg_id, message: normalizeMessage(v.message) }
        : null;
    case 'error':
      return isStr(v.code) && isStr(v.message)
        ? {
            type: 'error',
            code: v.code as ServerFrame & { type: 'error' } extends { code: infer C } ? C : never,
            message: v.message,
            ...(isStr(v.ref) ? { ref: v.ref } : {}),
            ...(isInt(v.retry_after_ms) && v.retry_after_ms >= 0 ? { retry_after_ms: v.retry_after_ms } : {}),
          }
        : null;
    case 'pong':
      return { type: 'pong' };
    case 'read_marker':
      return isInt(v.room_id) && isUser(v.user) && isInt(v.seq)
        ? {
            type: 'read_marker',
            room_id: v.room_id,
            user: v.user,
            seq: v.seq,
            ...(isInt(v.unread) && v.unread >= 0 ? { unread: v.unread } : {}),
            ...(isInt(v.last_seq) ? { last_seq: v.last_seq } : {}),
          }
        : null;
    case 'notification':
      return isNotification(v.notification) ? { type: 'notification', notification: v.notification } : null;
    case 'presence':
      return isInt(v.user_id) && (v.status === 'online' || v.status === 'away' || v.status === 'offline')
        ? {
            type: 'presence',
            user_id: v.user_id,
            status: v.status,
            ...(isStr(v.last_seen_at) ? { last_seen_at: v.last_seen_at } : {}),
          }
        : null;
    default:
      return null;
  }
}

function normalizeMessage(m: Message): Message {
  if (m.client_msg_id === null) {
    const { client_msg_id: _drop, ...rest } = m;
    return rest;
  }
  return m;
}

export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}
