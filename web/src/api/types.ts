// Wire types of the Socket-Hub protocol (mirrors crates/protocol/src/{model,frames,rest}.rs).

export type UserId = number;
export type RoomId = number;
export type Seq = number;

export interface User {
  id: UserId;
  username: string;
}

export interface RoomView {
  id: RoomId;
  name: string;
  is_private: boolean;
  owner_id: UserId;
  last_seq: Seq;
  member_count: number;
  is_member: boolean;
  created_at: string;
  last_read_seq: Seq;
}

export interface Member {
  user: User;
  role: string;
  joined_at: string;
}

export interface Message {
  id: number;
  room_id: RoomId;
  seq: Seq;
  user: User;
  content: string;
  client_msg_id?: string;
  created_at: string;
}

export interface Session {
  user: User;
  access_token: string;
  expires_in: number;
  refresh_token: string;
}

export interface MessagePage {
  messages: Message[];
  next_before_seq?: Seq;
}

export type ErrorCode =
  | 'malformed_json'
  | 'unknown_type'
  | 'invalid_input'
  | 'content_too_long'
  | 'frame_too_large'
  | 'rate_limited'
  | 'unauthorized'
  | 'token_expired'
  | 'refresh_reused'
  | 'invalid_credentials'
  | 'wrong_access_code'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'not_joined'
  | 'internal'
  | 'unavailable';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
}

export type ClientFrame =
  | { type: 'auth'; token: string }
  | { type: 'join_room'; room_id: RoomId; since_seq?: Seq; access_code?: string }
  | { type: 'leave_room'; room_id: RoomId }
  | { type: 'message_send'; room_id: RoomId; client_msg_id: string; content: string }
  | { type: 'typing'; room_id: RoomId }
  | { type: 'read'; room_id: RoomId; seq: Seq }
  | { type: 'ping' };

export type ServerFrame =
  | { type: 'ready'; user: User }
  | { type: 'room_joined'; room_id: RoomId; members: User[]; last_seq: Seq }
  | { type: 'room_left'; room_id: RoomId }
  | { type: 'chat'; message: Message }
  | { type: 'join'; room_id: RoomId; user: User }
  | { type: 'leave'; room_id: RoomId; user: User }
  | { type: 'ack'; client_msg_id: string; message: Message }
  | { type: 'typing'; room_id: RoomId; user: User }
  | { type: 'error'; code: ErrorCode; message: string; ref?: string }
  | { type: 'pong' };

/** WebSocket close codes the server uses. */
export const CloseCode = {
  GOING_AWAY: 1001,
  POLICY_VIOLATION: 1008,
  TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4401,
  KEEPALIVE_TIMEOUT: 4408,
} as const;

export const SUBPROTOCOL = 'socket-hub.v1';
export const BEARER_PREFIX = 'bearer.';
