-- Socket-Hub schema, PostgreSQL. Times are Unix milliseconds (UTC), as in the SQLite
-- schema, so both stores read and write the same values.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT   NOT NULL,
    -- lower-cased username: uniqueness is case-insensitive
    username_key  TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- SHA-256 of the token: a database leak does not leak usable tokens
    token_hash TEXT   NOT NULL UNIQUE,
    -- every token rotated from one login shares a family; reuse revokes the family
    family_id  TEXT   NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE rooms (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             TEXT    NOT NULL,
    is_private       BOOLEAN NOT NULL,
    -- argon2 hash of the access code of a private room
    access_code_hash TEXT,
    owner_id         BIGINT  NOT NULL REFERENCES users (id),
    -- highest seq handed out; its row lock serialises writers of one room
    last_seq         BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL
);

CREATE TABLE memberships (
    room_id       BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT   NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    joined_at     BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE messages (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id       BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    client_msg_id TEXT,
    content       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (room_id, seq)
);
-- idempotent sends: one message per (room, sender, client_msg_id)
CREATE UNIQUE INDEX messages_client_msg_id
    ON messages (room_id, user_id, client_msg_id) WHERE client_msg_id IS NOT NULL;
