-- Attachments (issue 11): files uploaded with `POST /uploads`, kept in the blob store
-- (local disk under the data dir by default) under `blob_key`; a message carries the
-- metadata of the uploads attached to it as JSON, written in the same insert.
CREATE TABLE uploads (
    -- random, URL-safe: ids cannot be enumerated
    id            TEXT    PRIMARY KEY,
    owner_id      INTEGER NOT NULL REFERENCES users (id),
    -- sanitized: no path, no control or invisible characters
    filename      TEXT    NOT NULL,
    -- sniffed from the bytes, never the client's claim
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT    NOT NULL,
    blob_key      TEXT    NOT NULL,
    width         INTEGER,
    height        INTEGER,
    thumbnail_key TEXT,
    -- set once, by the first message that attaches it: its readers are that room's members
    room_id       INTEGER REFERENCES rooms (id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL
);
-- the per-user quota sums one owner's sizes
CREATE INDEX uploads_owner ON uploads (owner_id);

ALTER TABLE messages ADD COLUMN attachments TEXT;
