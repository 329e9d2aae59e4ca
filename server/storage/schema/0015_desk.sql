-- The support desk's first pieces (docs/DESK.md).
--
-- users.role gains 'supervisor', between staff and admin: sees and reassigns every WhatsApp
-- conversation and manages the shared canned replies; changes no roles, accounts or permissions.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('user', 'staff', 'supervisor', 'admin'));

-- Private notes staff write inside a WhatsApp conversation (server/actions/notes.py). Their own
-- table, not messages: nothing that reads messages (history, sync, the assistant's context,
-- the outbox, the archive relay, search) can ever pick one up. Deleted with the room.
CREATE TABLE notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id     bigint NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    author_id   bigint NOT NULL REFERENCES users(id),
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_room ON notes (room_id, id);

-- Canned replies (server/actions/canned_replies.py): shared ones (owner_id NULL, managed by
-- supervisors and admins) and personal ones (owner_id: the staff member). A shortcut is unique
-- within its scope: the shared set, or one person's set.
CREATE TABLE canned_replies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id    bigint REFERENCES users(id) ON DELETE CASCADE,
    shortcut    text NOT NULL,
    body        text NOT NULL,
    created_by  bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX canned_replies_shared_shortcut ON canned_replies (shortcut) WHERE owner_id IS NULL;
CREATE UNIQUE INDEX canned_replies_personal_shortcut ON canned_replies (owner_id, shortcut) WHERE owner_id IS NOT NULL;

-- the audit log listing (GET /api/v1/audit) pages newest first by id, filtered by action
CREATE INDEX audit_log_action ON audit_log (action, id);
