// Generated from crates/protocol by ./scripts/gen-ts. Do not edit.
import type { User } from "./User";
export type ReadReceipt = { user: User, last_read_seq: number, };
