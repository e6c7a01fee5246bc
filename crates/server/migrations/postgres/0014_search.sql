-- Full-text search over chat messages (issue 11): a GIN index over the 'simple'
-- text-search vector of chat messages. 'simple' lower-cases and splits words without
-- stemming or stop words: chat is multilingual and full of names, and it behaves like
-- the SQLite index (FTS5 unicode61 without diacritic folding), so both backends find
-- the same messages. Room events (`event IS NOT NULL`) are outside the partial index
-- and the search query repeats its predicate; an erased message (`content = ''`) has an
-- empty vector and matches nothing. An expression index rather than a stored column:
-- nothing to keep in step, the table is not rewritten, and an edit (an UPDATE of
-- `content`) reindexes by itself.
CREATE INDEX messages_search ON messages
    USING GIN (to_tsvector('simple', content)) WHERE event IS NULL;
