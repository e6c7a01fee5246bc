//! Full-text search over the messages of the caller's rooms and DMs: `GET /search`.
//!
//! - **Index**: SQLite FTS5 (`messages_fts`, external content over `messages`, filled
//!   after each ack by [`super::search_index`], which every search first brings up to
//!   date, and kept in step with edits and deletes by triggers) and a PostgreSQL GIN index over `to_tsvector('simple', content)`
//!   (migration `0014_search.sql`). Room events and erased (deleted) messages are never
//!   indexed; an edit reindexes.
//! - **Query language**: whitespace-separated words, all required, case-insensitive; a
//!   word ending in `*` matches as a prefix. Each word is handed to the engine as a
//!   quoted phrase (FTS5 `"…"`, PostgreSQL `phraseto_tsquery`), never as query syntax,
//!   so no input can inject operators or make the engine fail.
//! - **Ranking**: best first by relevance (FTS5 `bm25`, PostgreSQL `ts_rank`), then
//!   newest first. Both are turned into a `score` where lower is better.
//! - **Pagination**: `next` is an opaque cursor, the last hit's score and id; the next page
//!   is every hit ranked after it. PostgreSQL's `ts_rank` depends only on the message and
//!   the query, so pages are exact. FTS5's `bm25` also weighs words by how rare they are
//!   among all messages, so scores drift as messages arrive: on SQLite the cursor's
//!   score is recomputed for its message now (when it still matches), so the boundary is
//!   always where that message ranks today. A hit can still move across the boundary
//!   between two pages if new messages change the words' relative weights; clients
//!   deduplicate by message id.
//! - **Snippets**: built from the page's messages by [`super::snippet`], the same on
//!   both backends.
//! - **Visibility**: only rooms the caller is a member of now, DMs included; `room_id`
//!   of a room they are not in is refused like history is (404 for a private room of
//!   others, 403 for a public one).

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use socket_hub_protocol::rest::{Problem, SearchHit, SearchResults};
use socket_hub_protocol::{Message, RoomId, UserId};

use super::message_changes::{CurrentRow, current_select};
use super::search_index;
use super::snippet::{QueryWord, query_words, snippet};
use super::{Rooms, visible_room};
use crate::auth::{Auth, AuthUser};
use crate::error::{Error, Result};
use crate::http::QueryParams;
use crate::store::{Backend, Db, StoreError};

/// Longest query, in characters.
const MAX_QUERY_CHARS: usize = 256;
/// Most words in one query.
const MAX_TERMS: usize = 16;
/// Largest page.
const MAX_PAGE: u32 = 50;
/// Page size when none is asked for.
const DEFAULT_PAGE: u32 = 20;
/// Routes of search: `/search` under `/api/v1`.
pub(super) fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Rooms: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new().route("/search", get(search))
}

/// Query of `GET /search`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// Words to find, 1-256 characters: every word must occur; a word ending in `*`
    /// matches as a prefix; case-insensitive; punctuation separates words.
    q: String,
    /// Only this room or DM (you must be a member).
    room_id: Option<RoomId>,
    /// The previous page's `next`.
    before: Option<String>,
    /// Page size, 1 to 50 (default 20).
    limit: Option<u32>,
}

/// Find messages in the caller's rooms and DMs, best match first, with highlighted
/// snippets (rate-limited per user, with `GET /users?query=`).
#[utoipa::path(get, path = "/api/v1/search", tag = "messages",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of hits, best first; follow `next`", body = SearchResults),
        (status = 403, description = "`room_id` is a public room the caller is not in", body = Problem),
        (status = 404, description = "`room_id` names no room the caller may see", body = Problem),
        (status = 422, description = "No word in `q`, `q` too long, a bad `before` cursor, or limit out of 1-50", body = Problem),
        (status = 429, description = "Search quota used up; see Retry-After", body = Problem),
    ))]
pub async fn search(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<SearchResults>> {
    let terms = parse_terms(&query.q)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::InvalidInput(format!("limit must be 1-{MAX_PAGE}")));
    }
    let cursor = query.before.as_deref().map(Cursor::parse).transpose()?;
    if let Some(room_id) = query.room_id {
        let room = visible_room(&rooms, &user, room_id).await?;
        if !room.view.room.is_member {
            return Err(Error::Forbidden("join the room to search it"));
        }
    }
    rooms.guard.quotas.searches.check(&user.id)?;
    let search = Search {
        user_id: user.id,
        terms: &terms,
        room_id: query.room_id,
        cursor,
        limit: limit + 1,
    };
    // Messages are indexed after their ack: index what this search must see first.
    search_index::catch_up(rooms.store.db()).await?;
    let mut hits = find(rooms.store.db(), &search).await?;
    let next = if hits.len() > limit as usize {
        hits.truncate(limit as usize);
        hits.last().map(|(hit, score)| {
            Cursor {
                score: *score,
                id: hit.message.id,
            }
            .to_string()
        })
    } else {
        None
    };
    Ok(Json(SearchResults {
        hits: hits.into_iter().map(|(hit, _)| hit).collect(),
        next,
    }))
}

/// One word of a query, as typed (the engine tokenizes it), and whether it is a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    text: String,
    prefix: bool,
}

/// The words of `q`. Words without a letter or digit are dropped (they would match
/// nothing); a query left without words is refused.
fn parse_terms(q: &str) -> Result<Vec<Term>> {
    if q.chars().count() > MAX_QUERY_CHARS || q.contains('\0') {
        return Err(Error::InvalidInput(format!(
            "q must be at most {MAX_QUERY_CHARS} characters, without NUL"
        )));
    }
    let mut terms: Vec<Term> = Vec::new();
    for word in q.split_whitespace() {
        let (text, prefix) = match word.strip_suffix('*') {
            Some(stem) => (stem.trim_end_matches('*'), true),
            None => (word, false),
        };
        if !text.chars().any(char::is_alphanumeric) {
            continue;
        }
        let term = Term {
            text: text.to_lowercase(),
            prefix,
        };
        if !terms.contains(&term) {
            terms.push(term);
        }
    }
    if terms.is_empty() {
        return Err(Error::InvalidInput(
            "q must contain a word (letters or digits)".into(),
        ));
    }
    if terms.len() > MAX_TERMS {
        return Err(Error::InvalidInput(format!(
            "q may have at most {MAX_TERMS} words"
        )));
    }
    Ok(terms)
}

/// The FTS5 MATCH expression of `terms`: each a quoted phrase (a `"` doubled inside),
/// all required.
fn fts5_match(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|term| {
            let quoted = format!("\"{}\"", term.text.replace('"', "\"\""));
            if term.prefix { quoted + "*" } else { quoted }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The PostgreSQL tsquery of `terms`, whose texts are bound from `$first` on: each a
/// phrase (`phraseto_tsquery` never fails on any input), a prefix one with `:*` on its
/// last word, all required.
fn pg_tsquery(terms: &[Term], first: usize) -> String {
    terms
        .iter()
        .enumerate()
        .map(|(i, term)| {
            let phrase = format!("phraseto_tsquery('simple', ${})", first + i);
            if term.prefix {
                // A phrase's text form is quoted lexemes joined by `<->`: `:*` applies to
                // the last one. An empty phrase stays empty (matches nothing).
                format!(
                    "(SELECT CASE WHEN numnode(t.p) = 0 THEN t.p ELSE (t.p::text || ':*')::tsquery END
                      FROM {phrase} AS t(p))"
                )
            } else {
                phrase
            }
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Where the previous page ended: its last hit's score and message id.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cursor {
    score: f64,
    id: i64,
}

impl Cursor {
    fn parse(text: &str) -> Result<Self> {
        let bad = || Error::InvalidInput("before is not a cursor this server returned".into());
        let (score, id) = text.rsplit_once('_').ok_or_else(bad)?;
        let score: f64 = score.parse().map_err(|_| bad())?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        if !score.is_finite() || id <= 0 {
            return Err(bad());
        }
        Ok(Self { score, id })
    }
}

impl std::fmt::Display for Cursor {
    /// `{score}_{id}`; `{:e}` prints the shortest text that parses back to the same bits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:e}_{}", self.score, self.id)
    }
}

/// One search to run.
struct Search<'a> {
    user_id: UserId,
    terms: &'a [Term],
    room_id: Option<RoomId>,
    cursor: Option<Cursor>,
    /// Rows to fetch (one more than the page, to know whether another follows).
    limit: u32,
}

/// A hit's id and score, the first step of a search.
#[derive(sqlx::FromRow)]
struct Ranked {
    id: i64,
    score: f64,
}

/// The page of hits `search` asks for, best first, each with its score.
async fn find(db: &Db, search: &Search<'_>) -> Result<Vec<(SearchHit, f64)>, StoreError> {
    let ranked = rank(db, search).await?;
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = messages(db, &ranked).await?;
    let words: Vec<QueryWord> = search
        .terms
        .iter()
        .flat_map(|term| query_words(&term.text, term.prefix))
        .collect();
    // Back in rank order (the second step returns them in any order).
    let mut hits = Vec::with_capacity(ranked.len());
    for Ranked { id, score } in ranked {
        if let Some(at) = rows.iter().position(|row| row.id == id) {
            let message = rows.swap_remove(at);
            hits.push((
                SearchHit {
                    snippet: snippet(&message.content, &words),
                    message,
                },
                score,
            ));
        }
    }
    Ok(hits)
}

/// Step one: the ids and scores of the page's hits, in rank order.
async fn rank(db: &Db, search: &Search<'_>) -> Result<Vec<Ranked>, StoreError> {
    let (first, score, id) = match search.cursor {
        Some(c) => (0_i64, c.score, c.id),
        None => (1, 0.0, 0),
    };
    let room = search.room_id.unwrap_or(0);
    let rows = match db.backend() {
        Backend::Sqlite => {
            // The boundary is where the cursor's message ranks now (see the module docs).
            let boundary = "COALESCE((SELECT bm25(messages_fts) FROM messages_fts
                                      WHERE messages_fts MATCH $2 AND rowid = $6), $5)";
            let sql = format!(
                "SELECT m.id, bm25(messages_fts) AS score
                 FROM messages_fts
                 JOIN messages m ON m.id = messages_fts.rowid
                 JOIN memberships mm ON mm.room_id = m.room_id AND mm.user_id = $1
                 WHERE messages_fts MATCH $2 AND m.event IS NULL AND m.content <> ''
                   AND ($3 = 0 OR m.room_id = $3)
                   AND ($4 = 1 OR bm25(messages_fts) > {boundary}
                        OR (bm25(messages_fts) = {boundary} AND m.id < $6))
                 ORDER BY score, m.id DESC LIMIT $7"
            );
            sqlx::query_as::<_, Ranked>(&sql)
                .bind(search.user_id)
                .bind(fts5_match(search.terms))
                .bind(room)
                .bind(first)
                .bind(score)
                .bind(id)
                .bind(i64::from(search.limit))
                .fetch_all(db.reader())
                .await?
        }
        Backend::Postgres => {
            let sql = format!(
                "SELECT id, score FROM (
                     SELECT m.id,
                            -(ts_rank(to_tsvector('simple', m.content), q.query)::float8) AS score
                     FROM messages m
                     JOIN memberships mm ON mm.room_id = m.room_id AND mm.user_id = $1
                     CROSS JOIN (SELECT {} AS query) q
                     WHERE m.event IS NULL AND to_tsvector('simple', m.content) @@ q.query
                       AND ($2 = 0 OR m.room_id = $2)
                 ) hits
                 WHERE $3 = 1 OR score > $4 OR (score = $4 AND id < $5)
                 ORDER BY score, id DESC LIMIT $6",
                pg_tsquery(search.terms, 7)
            );
            let mut query = sqlx::query_as::<_, Ranked>(&sql)
                .bind(search.user_id)
                .bind(room)
                .bind(first)
                .bind(score)
                .bind(id)
                .bind(i64::from(search.limit));
            for term in search.terms {
                query = query.bind(term.text.as_str());
            }
            query.fetch_all(db.reader()).await?
        }
    };
    Ok(rows)
}

/// Step two: the messages of `ranked` as they are now (edited, with their reply quotes
/// and attachments), in any order.
async fn messages(db: &Db, ranked: &[Ranked]) -> Result<Vec<Message>, StoreError> {
    let ids: Vec<String> = (1..=ranked.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        concat!(current_select!(), "WHERE m.id IN ({})"),
        ids.join(", ")
    );
    let mut query = sqlx::query_as::<_, CurrentRow>(&sql);
    for hit in ranked {
        query = query.bind(hit.id);
    }
    let rows = query.fetch_all(db.reader()).await?;
    Ok(rows.into_iter().map(Message::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(q: &str) -> Vec<(String, bool)> {
        parse_terms(q)
            .expect("parses")
            .into_iter()
            .map(|t| (t.text, t.prefix))
            .collect()
    }

    #[test]
    fn terms_are_lower_cased_words_and_prefixes() {
        assert_eq!(
            words("  Deploy fri* \"x\" -- deploy"),
            [
                ("deploy".into(), false),
                ("fri".into(), true),
                ("\"x\"".into(), false)
            ]
        );
        assert!(parse_terms("  -- ** \" ").is_err());
        assert!(parse_terms("").is_err());
        assert!(parse_terms("a\0b").is_err());
        assert!(
            parse_terms(&"a ".repeat(100)).is_ok(),
            "duplicates collapse"
        );
        let many: String = (0..20).map(|i| format!("w{i} ")).collect();
        assert!(parse_terms(&many).is_err());
    }

    #[test]
    fn fts5_terms_are_quoted_phrases() {
        let terms = parse_terms(r#"say "hi" NEAR(a b) OR col:x* ^start"#).expect("parses");
        assert_eq!(
            fts5_match(&terms),
            r#""say" AND """hi""" AND "near(a" AND "b)" AND "or" AND "col:x"* AND "^start""#
        );
    }

    #[test]
    fn cursors_round_trip_exactly() {
        for score in [
            -1.375e-6,
            -0.6501417029748973,
            0.0,
            -12.5,
            f64::MIN_POSITIVE,
        ] {
            let cursor = Cursor { score, id: 42 };
            assert_eq!(Cursor::parse(&cursor.to_string()).expect("parses"), cursor);
        }
        for bad in ["", "x_1", "1.0", "NaN_3", "inf_3", "1.0_-4", "1.0_x"] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
