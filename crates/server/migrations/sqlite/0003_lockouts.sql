-- Brute-force lockout counts (auth::lockout) when no Redis is configured: failures per
-- key (`login:pair:<name>@<addr>`, `code:room:<id>`, ...), the end of the current lock
-- and when the row may be forgotten (all Unix ms).
CREATE TABLE lockouts (
    lock_key     TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX lockouts_expires_at ON lockouts (expires_at);
