-- Brute-force lockout counts (auth::lockout) when no Redis is configured: failures per
-- key (`login:pair:<name>@<addr>`, `code:room:<id>`, ...), the end of the current lock
-- and when the row may be forgotten (all Unix ms).
CREATE TABLE lockouts (
    lock_key     TEXT   PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX lockouts_expires_at ON lockouts (expires_at);
