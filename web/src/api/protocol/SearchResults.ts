// Generated from crates/protocol by ./scripts/gen-ts. Do not edit.
import type { SearchHit } from "./SearchHit";
export type SearchResults = { hits: Array<SearchHit>, next?: string | null, };
