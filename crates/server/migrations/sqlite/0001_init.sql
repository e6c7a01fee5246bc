-- Socket-Hub schema, embedded SQLite. Times are Unix milliseconds (UTC).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    -- lower-cased username: uniqueness is case-insensitive
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE refresh_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- SHA-256 of the token: a database leak does not leak usable tokens
    token_hash TEXT    NOT NULL UNIQUE,
    -- every token rotated from one login shares a family; reuse revokes the family
    family_id  TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE rooms (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    is_private       INTEGER NOT NULL,
    -- argon2 hash of the access code of a private room
    access_code_hash TEXT,
    owner_id         INTEGER NOT NULL REFERENCES users (id),
    -- highest seq handed out; incremented in the same transaction as the insert
    last_seq         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);

CREATE TABLE memberships (
    room_id       INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT    NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    joined_at     INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    client_msg_id TEXT,
    content       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (room_id, seq)
);
-- idempotent sends: one message per (room, sender, client_msg_id)
CREATE UNIQUE INDEX messages_client_msg_id
    ON messages (room_id, user_id, client_msg_id) WHERE client_msg_id IS NOT NULL;
