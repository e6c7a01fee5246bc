-- Roles and moderation (issue 10). Roles live in memberships.role: 'owner' (exactly one
-- per room, mirrored in rooms.owner_id), 'admin' or 'member'.

-- What the room is about.
ALTER TABLE rooms ADD COLUMN topic TEXT;
-- Room events (kicked, banned, role and settings changes) are stored in the room's
-- message stream with their own seq: this is the event as JSON, NULL for chat messages.
ALTER TABLE messages ADD COLUMN event TEXT;
-- Until when (Unix ms) the member may not send; NULL when not muted.
ALTER TABLE memberships ADD COLUMN muted_until INTEGER;

-- Users who may not (re)join a room, by code, link or invitation, until the time in
-- banned_until (Unix ms; NULL for ever).
CREATE TABLE room_bans (
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by  INTEGER NOT NULL,
    reason     TEXT,
    banned_until INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

-- Every room whose creator left has no owner: its earliest member becomes the owner.
UPDATE memberships SET role = 'owner'
WHERE role <> 'owner'
  AND NOT EXISTS (SELECT 1 FROM memberships o
                  WHERE o.room_id = memberships.room_id AND o.role = 'owner')
  AND user_id = (SELECT e.user_id FROM memberships e
                 WHERE e.room_id = memberships.room_id
                 ORDER BY e.joined_at, e.user_id LIMIT 1);
UPDATE rooms SET owner_id = (SELECT m.user_id FROM memberships m
                             WHERE m.room_id = rooms.id AND m.role = 'owner' LIMIT 1)
WHERE EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = rooms.id AND m.role = 'owner');
