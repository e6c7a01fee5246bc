// Generated from crates/protocol by ./scripts/gen-ts. Do not edit.
import type { Message } from "./Message";
import type { SnippetPart } from "./SnippetPart";
export type SearchHit = { message: Message, snippet: Array<SnippetPart>, };
