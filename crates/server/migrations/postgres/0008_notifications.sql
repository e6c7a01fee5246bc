-- Notifications (issue 10): each user's persisted stream. kind is invited, mentioned,
-- direct_message, kicked, banned or room_deleted; room_id is not a foreign key, so a
-- room_deleted notification outlives its room.
CREATE TABLE notifications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    room_id      BIGINT,
    from_user_id BIGINT,
    message      TEXT,
    read_at      BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX notifications_user ON notifications (user_id, id);
