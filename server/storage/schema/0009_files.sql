-- Files: uploads and the messages they are attached to (docs/FILES.md).
--
-- files: one row per upload; the bytes live in the file store under the id (and id.thumb).
-- message_attachments: an upload attached to a message, written in the same statement as the
-- message's insert. Its primary key makes an upload attachable once; its foreign key to
-- (files.id, files.owner_id) makes it attachable only by its uploader and only while it exists
-- (the orphan sweep cannot delete an upload that a committed message holds, nor can a send
-- attach one the sweep has deleted). No foreign key to messages: the archive relay deletes
-- messages from PostgreSQL, and their files stay until archive retention removes them.
-- messages.attachments: the attachment metadata as the record carries it, so every read path
-- (history, sync, the relay) returns it without a join.
-- file_trash: ids whose bytes are to be deleted from the store; the row goes once they are.
CREATE TABLE files (
    id          text PRIMARY KEY,
    owner_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        text NOT NULL,
    mime        text NOT NULL,
    size        bigint NOT NULL,
    width       integer,
    height      integer,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, owner_id)
);
CREATE INDEX files_created_at ON files (created_at);

CREATE TABLE message_attachments (
    file_id     text PRIMARY KEY,
    owner_id    bigint NOT NULL,
    message_id  bigint NOT NULL,
    position    integer NOT NULL,
    attached_at timestamptz NOT NULL,
    FOREIGN KEY (file_id, owner_id) REFERENCES files (id, owner_id) ON DELETE CASCADE
);
CREATE INDEX message_attachments_message ON message_attachments (message_id);
CREATE INDEX message_attachments_attached_at ON message_attachments (attached_at);

CREATE TABLE file_trash (
    id          text PRIMARY KEY,
    trashed_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE messages ADD COLUMN attachments jsonb NOT NULL DEFAULT '[]';
