-- Versioned archiving (server/relay/relay.py, docs/ARCHIVE.md).
--
-- `messages.version` changes on every UPDATE of a row (edit, delete, reaction, a WhatsApp
-- file's status): the trigger takes the next value of one sequence. The relay deletes a row it
-- sent only when its version is still the one it read, so a change committed between its read
-- and its delete keeps the row hot and is sent again; the archive keeps, per message, the
-- record with the highest version. New rows start at 0, below every value of the sequence.
CREATE SEQUENCE message_version_seq;

ALTER TABLE messages ADD COLUMN version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION messages_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- fires after the row is locked, so versions of one row follow its commit order
    NEW.version := nextval('message_version_seq');
    RETURN NEW;
END $$;

CREATE TRIGGER messages_version BEFORE UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_bump_version();

-- What chat-server still knows of a message after the relay moved it to the archive: enough to
-- check who may delete it and to tell clients it is gone (about 70 bytes a message). Written
-- by the relay's delete, in the same transaction.
CREATE TABLE archived_messages (
    id           bigint PRIMARY KEY,
    room_id      bigint NOT NULL,
    seq          bigint NOT NULL,
    author_id    bigint,
    author_kind  text NOT NULL,
    author_name  text,
    created_at   timestamptz NOT NULL,
    edited_at    timestamptz,
    deleted_at   timestamptz
);
CREATE INDEX archived_messages_created_at ON archived_messages (created_at);

-- Changes to archived messages on their way to chat-archive (a transactional outbox): written
-- in the change's transaction, sent by the relay leader after the aged messages of its pass,
-- deleted once Kafka acknowledged them.
CREATE TABLE archive_outbox (
    id          bigserial PRIMARY KEY,
    message_id  bigint NOT NULL,
    room_id     bigint NOT NULL,
    record      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
