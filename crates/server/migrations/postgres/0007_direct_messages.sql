-- Direct messages and blocking (issue 10).

-- 'room', or 'dm' for a one-to-one conversation (private, exactly two members, no
-- owner or admins, no code, never listed with rooms).
ALTER TABLE rooms ADD COLUMN kind TEXT NOT NULL DEFAULT 'room';

-- The one DM room of each pair of users (user_low < user_high).
CREATE TABLE direct_rooms (
    user_low   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_high  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    BIGINT NOT NULL UNIQUE REFERENCES rooms (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_low, user_high)
);

-- user_id blocked blocked_id: no DM can be opened between them, and the members of
-- their DM are muted (memberships.muted_until) while any block between them stands.
CREATE TABLE blocks (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);
