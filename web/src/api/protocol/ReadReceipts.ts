// Generated from crates/protocol by ./scripts/gen-ts. Do not edit.
import type { ReadReceipt } from "./ReadReceipt";
export type ReadReceipts = { receipts: Array<ReadReceipt>, };
