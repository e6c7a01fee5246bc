-- Every instance polls for sessions revoked since its last look (auth::Revocations);
-- without this index each poll scans every refresh token ever issued.
CREATE INDEX IF NOT EXISTS refresh_tokens_revoked_at ON refresh_tokens (revoked_at)
    WHERE revoked_at IS NOT NULL;
