-- Search indexing off the send path (issue 8). Migration 0014 indexed each message in
-- an AFTER INSERT trigger, inside the appender's transaction: FTS5 wrote a new index
-- segment per batch and the appender's throughput fell 1.6 to 6 times (BENCHMARKS.md).
-- Now messages are indexed after they commit, in large chunks, by the search indexer
-- (`rooms/search_index.rs`): on the appender's thread when it is idle or once enough
-- messages wait, and by every search first, so a search still finds every message
-- acknowledged before it.
--
-- `search_progress.indexed_upto` is the indexer's watermark: every chat message with
-- `id <= indexed_upto` is in `messages_fts` (unless erased), none above it is. Ids come
-- from AUTOINCREMENT under SQLite's single writer, so they are never reused and a row
-- committed later always has a larger id: nothing can appear below the watermark
-- unindexed. The delete and update triggers act only below the watermark, because an
-- external-content FTS5 table must never be told to delete a row it does not hold; an
-- edit or erasure above it needs nothing, since the indexer reads the content as it is
-- when it gets there.
CREATE TABLE search_progress (
    only_row     INTEGER PRIMARY KEY CHECK (only_row = 1),
    indexed_upto INTEGER NOT NULL
);
INSERT INTO search_progress (only_row, indexed_upto)
    VALUES (1, COALESCE((SELECT MAX(id) FROM messages), 0));

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.event IS NULL AND old.content <> ''
     AND old.id <= (SELECT indexed_upto FROM search_progress)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
END;

-- One trigger for both halves, so the old text always leaves before the new one comes.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, event ON messages
WHEN old.id <= (SELECT indexed_upto FROM search_progress)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        SELECT 'delete', old.id, old.content WHERE old.event IS NULL AND old.content <> '';
    INSERT INTO messages_fts (rowid, content)
        SELECT new.id, new.content WHERE new.event IS NULL AND new.content <> '';
END;
