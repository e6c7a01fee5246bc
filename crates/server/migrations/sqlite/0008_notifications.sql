-- Notifications (issue 10): each user's persisted stream. kind is invited, mentioned,
-- direct_message, kicked, banned or room_deleted; room_id is not a foreign key, so a
-- room_deleted notification outlives its room.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    room_id      INTEGER,
    from_user_id INTEGER,
    message      TEXT,
    read_at      INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX notifications_user ON notifications (user_id, id);
