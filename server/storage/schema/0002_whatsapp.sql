-- WhatsApp Cloud API: business numbers, contacts (one conversation room each), delivery state.
CREATE TABLE wa_accounts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_number_id  text NOT NULL UNIQUE,
    display_phone    text NOT NULL,
    name             text NOT NULL DEFAULT '',
    access_token     text NOT NULL,
    app_secret       text NOT NULL,
    verify_token     text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wa_contacts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES wa_accounts(id) ON DELETE CASCADE,
    wa_id            text NOT NULL,
    name             text NOT NULL DEFAULT '',
    room_id          bigint NOT NULL UNIQUE REFERENCES rooms(id) ON DELETE CASCADE,
    ai_enabled       boolean NOT NULL DEFAULT true,
    assignee_id      bigint REFERENCES users(id) ON DELETE SET NULL,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'closed')),
    last_inbound_at  timestamptz,
    staff_read_seq   bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, wa_id)
);
CREATE INDEX wa_contacts_status ON wa_contacts (status, updated_at DESC);

-- No foreign key to messages: rows outlive the hot store so webhook replays stay idempotent
-- after a message was archived.
CREATE TABLE wa_messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   bigint NOT NULL,
    room_id      bigint NOT NULL,
    wamid        text UNIQUE,
    direction    text NOT NULL CHECK (direction IN ('in', 'out')),
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'delivered', 'read', 'failed', 'received')),
    error_code   integer,
    error_title  text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wa_messages_message ON wa_messages (message_id);
