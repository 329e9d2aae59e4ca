-- The compliance permission (read private rooms and DMs one is not a member of; granted by an
-- admin) and the audit log that records its grants, revocations and every read made through it.
ALTER TABLE users ADD COLUMN compliance boolean NOT NULL DEFAULT false;

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id     bigint REFERENCES users (id) ON DELETE SET NULL,  -- NULL: the command line
    action       text NOT NULL,
    target_type  text NOT NULL,
    target_id    bigint,
    meta         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, created_at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, created_at);
