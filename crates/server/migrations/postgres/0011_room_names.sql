-- Rooms addressed by name (Socket.IO `joinRoom {room: "<name>"}`, the spaces API's
-- space id): the first client to name a room that does not exist creates it, and this
-- key makes that creation happen once even when clients on several instances race.
CREATE TABLE room_names (
    name       TEXT   PRIMARY KEY,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
-- Finding a room by name when no client has named it yet (a room created over REST).
CREATE INDEX rooms_name ON rooms (name, id);
