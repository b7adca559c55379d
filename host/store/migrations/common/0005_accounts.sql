-- An admin can disable an account: it can no longer sign in and its sessions end.
ALTER TABLE agent ADD COLUMN disabled_at BIGINT;
