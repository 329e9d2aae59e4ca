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
