-- Revocations that open sockets must follow (server/actions/sessions.py). Every node asks
-- PostgreSQL each REVOCATION_CHECK_S "what was revoked since my last look": two indexed range
-- scans, whatever the number of open sockets.

-- A token-version bump (logout-all, role change, or any other writer) stamps the row, by
-- trigger so no writer can forget it; clock_timestamp(), not now(), so the stamp is close to
-- the commit even in a longer transaction. tv_reason says why, for the socket's
-- `session:ended`; writers that know better set it in the same UPDATE.
ALTER TABLE users ADD COLUMN tv_changed_at timestamptz;
ALTER TABLE users ADD COLUMN tv_reason text NOT NULL DEFAULT 'revoked' CHECK (tv_reason IN ('revoked', 'logged_out'));
CREATE INDEX users_tv_changed_at ON users (tv_changed_at) WHERE tv_changed_at IS NOT NULL;

CREATE FUNCTION users_stamp_tv_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tv_changed_at := clock_timestamp();
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_tv_changed BEFORE UPDATE OF token_version ON users
    FOR EACH ROW WHEN (NEW.token_version IS DISTINCT FROM OLD.token_version)
    EXECUTE FUNCTION users_stamp_tv_change();

-- One row per revoked refresh family (a login): logout, or a rotated refresh token presented
-- again. refresh_tokens.revoked_at cannot say it: rotation sets it on every use. Access tokens
-- name their family (`fam` claim), so these rows also refuse the family's access tokens; a row
-- is useless once every access token of its family has expired, and is pruned then.
CREATE TABLE revoked_families (
    family_id   uuid PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason      text NOT NULL CHECK (reason IN ('revoked', 'logged_out')),
    revoked_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX revoked_families_at ON revoked_families (revoked_at);
