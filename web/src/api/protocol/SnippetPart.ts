// Generated from crates/protocol by ./scripts/gen-ts. Do not edit.
export type SnippetPart = { text: string, hit: boolean, };
