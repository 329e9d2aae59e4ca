-- Core schema: users, tokens, rooms, members, messages.
CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    display_name   text NOT NULL,
    password_hash  text,
    phone          text UNIQUE,
    role           text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'staff', 'admin')),
    kind           text NOT NULL DEFAULT 'human' CHECK (kind IN ('human', 'assistant', 'contact')),
    token_version  integer NOT NULL DEFAULT 0,
    last_seen_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refresh_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id    uuid NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    replaced_by  bigint REFERENCES refresh_tokens(id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE rooms (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug               text NOT NULL UNIQUE,
    name               text NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('public', 'private', 'direct', 'whatsapp')),
    topic              text NOT NULL DEFAULT '',
    created_by         bigint REFERENCES users(id) ON DELETE SET NULL,
    last_seq           bigint NOT NULL DEFAULT 0,
    archived_upto_seq  bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE room_members (
    room_id        bigint NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id        bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role           text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    last_read_seq  bigint NOT NULL DEFAULT 0,
    joined_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id);

CREATE TABLE messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id      bigint NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq          bigint NOT NULL,
    author_id    bigint REFERENCES users(id) ON DELETE SET NULL,
    author_kind  text NOT NULL CHECK (author_kind IN ('user', 'assistant', 'contact', 'system')),
    author_name  text,
    body         text NOT NULL,
    client_id    text,
    reply_to     bigint,
    meta         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    edited_at    timestamptz,
    deleted_at   timestamptz,
    UNIQUE (room_id, seq),
    UNIQUE (author_id, client_id)
);
CREATE INDEX messages_created_at ON messages (created_at);
