-- Room and account management (server/actions/rooms.py, server/actions/account.py).
--
-- rooms.archived_at: an archived room is read-only: its history stays readable, sends are
-- refused (`archived`). The send statements (storage/messages.py INSERT_MEMBER and
-- storage/batcher.py) check it, so a send racing the archiving cannot slip in after it.
ALTER TABLE rooms ADD COLUMN archived_at timestamptz;

-- users.deactivated_at: a deactivated user cannot log in, refresh, connect or use a token
-- (`deactivated`); their messages stay. Deactivating also bumps token_version, which ends their
-- open sockets on every node at its next revocation check.
ALTER TABLE users ADD COLUMN deactivated_at timestamptz;

-- users.must_change_password: set by an admin's forced reset; login then answers
-- `password_change_required` (no tokens) until POST /api/v1/auth/password sets a new one.
ALTER TABLE users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;

-- the room directory: public rooms that are not archived, newest first
CREATE INDEX rooms_directory ON rooms (id DESC) WHERE kind = 'public' AND archived_at IS NULL;
