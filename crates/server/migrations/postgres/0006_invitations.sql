-- Invitations and invite links (issue 10).

-- A pending invitation of a user to a room; accepting makes them a member (no access
-- code needed), declining deletes it.
CREATE TABLE invitations (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (room_id, user_id)
);
CREATE INDEX invitations_user ON invitations (user_id);

-- Invite links: only the SHA-256 of the token is kept. `uses` counts joins; a link is
-- usable while not revoked, not expired and under max_uses (NULL: unlimited).
CREATE TABLE invite_links (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_by BIGINT NOT NULL,
    max_uses   BIGINT,
    uses       BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX invite_links_room ON invite_links (room_id);
