-- WhatsApp Web (linked-device) sessions: a phone linked to us as a companion device, beside the
-- Cloud API numbers of wa_accounts. The device keys live in whatsmeow's own tables, in one
-- schema per session (wa_store_<id>, made and dropped by the session actions), so a restarted or
-- replaced node resumes without a new QR code.
CREATE TABLE wa_sessions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL,
    status       text NOT NULL DEFAULT 'new' CHECK (status IN
                   ('new', 'connecting', 'qr', 'pairing_code', 'connected', 'disconnected', 'logged_out', 'qr_expired')),
    jid          text,                 -- the linked device's JID once paired
    phone        text,                 -- the linked number (digits), from the JID
    last_error   text,
    -- exactly one node runs a session: the holder of an unexpired lease. lease_token grows by one
    -- at each claim (a fencing token): a node whose lease was taken over finds its token stale
    -- and stops, and its late writes (guarded by the token) change nothing
    lease_node   text,
    lease_token  bigint NOT NULL DEFAULT 0,
    lease_until  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A conversation is with a Cloud API number (account_id) or a linked session (session_id); the
-- channel column says which, and stays when the session is deleted (its sends then fail).
ALTER TABLE wa_contacts ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE wa_contacts ADD COLUMN session_id bigint REFERENCES wa_sessions(id) ON DELETE SET NULL;
ALTER TABLE wa_contacts ADD COLUMN channel text NOT NULL DEFAULT 'cloud_api'
    CHECK (channel IN ('cloud_api', 'linked_device'));
CREATE UNIQUE INDEX wa_contacts_session_wa_id ON wa_contacts (session_id, wa_id) WHERE session_id IS NOT NULL;
