-- Message lifecycle (issue 11): edits, deletions, replies and reactions.
-- An edit or a deletion changes the original row in place (content, edited_at;
-- deletion erases content and sets deleted_at) and appends a room event; the event rows
-- name the message they are about in target_id (NULL for everything else), so history
-- can leave them out and a deletion can erase the content an earlier edit event holds.
ALTER TABLE messages ADD COLUMN reply_to BIGINT;
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
ALTER TABLE messages ADD COLUMN deleted_at BIGINT;
ALTER TABLE messages ADD COLUMN target_id BIGINT;
CREATE INDEX messages_target ON messages (target_id) WHERE target_id IS NOT NULL;

-- One row per (message, user, emoji); the message's reactions are counted from here.
CREATE TABLE reactions (
    message_id BIGINT  NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);
