-- Full-text search over chat messages (issue 11): an FTS5 index of `messages.content`
-- for chat messages only. Room events (`event IS NOT NULL`) and erased messages
-- (`content = ''`: a deleted message's tombstone) are never indexed, so they never
-- match. External content: the text lives once, in `messages`.
--
-- Triggers keep the index in step with every write, whichever connection makes it
-- (the sqlx writer or the appender's rusqlite thread): an insert indexes, a delete
-- (also by ON DELETE CASCADE when a room goes) unindexes, and an update of the content
-- (an edit, or the erasure of a deleted message) unindexes the old text and indexes
-- the new one. An external-content FTS5 table must be told the exact old text to
-- remove it, which the triggers have in `old`; never run the 'rebuild' command on it,
-- which would index room events too.
--
-- Tokenizer: unicode61 without diacritic folding, so "café" and "cafe" differ here
-- as they do in PostgreSQL's 'simple' configuration: one behaviour on both backends.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0'
);

INSERT INTO messages_fts (rowid, content)
    SELECT id, content FROM messages WHERE event IS NULL AND content <> '';

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.event IS NULL AND new.content <> ''
BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.event IS NULL AND old.content <> ''
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
END;

-- One trigger for both halves, so the old text always leaves before the new one comes.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, event ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        SELECT 'delete', old.id, old.content WHERE old.event IS NULL AND old.content <> '';
    INSERT INTO messages_fts (rowid, content)
        SELECT new.id, new.content WHERE new.event IS NULL AND new.content <> '';
END;

-- Unread counts and "seen by" read `memberships.last_read_seq` against the room's
-- messages by (room_id, seq), which the UNIQUE (room_id, seq) index already serves.
