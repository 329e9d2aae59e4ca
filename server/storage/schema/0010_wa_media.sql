-- Media WhatsApp contacts send (docs/WHATSAPP.md, "Media").
--
-- A contact's message is stored at once with its attachment in status pending; the bytes are
-- fetched from the Graph API afterwards, into the file store under the attachment's id. A
-- contact has no users row, so the files and message_attachments rows of their media have no
-- owner (NULL): nobody can attach them to another message (a send attaches only the sender's
-- own uploads, checked by the composite foreign key, which holds for every non-NULL owner).
ALTER TABLE files ALTER COLUMN owner_id DROP NOT NULL;
ALTER TABLE message_attachments ALTER COLUMN owner_id DROP NOT NULL;

-- wa_media: one row per inbound media attachment; the durable queue of fetches. pending rows
-- whose next_attempt_at is due are claimed by any node (FOR UPDATE SKIP LOCKED, with a lease,
-- so a node that dies mid-fetch leaves the row to the next); a fetch ends ready or
-- unavailable (error says why), and a staff retry sets it pending again. No foreign key to
-- messages (the relay deletes archived messages).
CREATE TABLE wa_media (
    file_id         text PRIMARY KEY,
    message_id      bigint NOT NULL,
    room_id         bigint NOT NULL,
    account_id      bigint NOT NULL,
    media_id        text NOT NULL,
    kind            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ready', 'unavailable')),
    error           text,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wa_media_due ON wa_media (next_attempt_at) WHERE state = 'pending';
CREATE INDEX wa_media_message ON wa_media (message_id);
