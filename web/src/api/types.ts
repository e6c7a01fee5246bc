// Wire types of the Socket-Hub protocol. They are generated from the Rust protocol crate
// (crates/protocol) into ./protocol/ by ./scripts/gen-ts, and a Rust test fails when the
// committed files drift from it: never edit them by hand. This file re-exports them and
// adds what only the web client needs.

export type {
  AccountExport,
  PresenceList,
  PresenceStatus,
  UserPage,
  UserPresence,
  Ban,
  BanList,
  ClientFrame,
  CreateRoom,
  Credentials,
  DirectList,
  DirectView,
  Invitation,
  InvitationList,
  InviteLink,
  InviteLinkList,
  InvitePreview,
  ErrorCode,
  JoinRoom,
  MarkRead,
  Member,
  MemberList,
  Message,
  MessagePage,
  Notification,
  NotificationKind,
  NotificationList,
  Problem,
  Profile,
  ReactionCount,
  ReplyQuote,
  EditMessage,
  Readiness,
  ReadReceipt,
  ReadReceipts,
  RefreshRequest,
  Role,
  Room,
  RoomEvent,
  RoomList,
  RoomView,
  SearchHit,
  SearchResults,
  SendMessage,
  ServerFrame,
  Session,
  SnippetPart,
  UpdateProfile,
  UpdateRoom,
  User,
} from './protocol';
export { BEARER_SUBPROTOCOL_PREFIX, CloseCode, SUBPROTOCOL } from './protocol';

// Names for the protocol's 64-bit integers (Rust type aliases, which have no TypeScript
// counterpart in the generated files). Ids and seqs stay far below 2^53.
export type UserId = number;
export type RoomId = number;
export type Seq = number;
