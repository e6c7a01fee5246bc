-- Presence and read mentions (issue 10). A mention's notification keeps the seq of the
-- message that mentioned: moving the room's read marker to it marks it read.
ALTER TABLE notifications ADD COLUMN seq BIGINT;
-- Unread notifications of one user in one room: what a read marker moving forward marks.
CREATE INDEX notifications_unread_room ON notifications (user_id, room_id)
    WHERE read_at IS NULL;
