-- Account deletion (issue 10): a deleted account's row stays, anonymised ("deleted
-- user"), so its messages keep their author; it can no longer sign in or be found.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
