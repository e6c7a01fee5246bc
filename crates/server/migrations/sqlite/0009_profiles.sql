-- Profiles (issue 10): what others see of a person beyond the username.
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN status_text TEXT;
-- When the user last connected over the WebSocket (Unix ms).
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;
