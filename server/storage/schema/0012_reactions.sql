-- Emoji reactions (server/storage/reactions.py). One row per (message, user, emoji); the
-- message row keeps a small summary of them (`reactions`: per emoji its count and the first
-- user ids) rewritten in the same transaction as every change, so every read path (history,
-- sync, the send batcher, the archive relay) returns reactions without a join, and
-- `reacted_at`, stamped by every change, lets `sync` with `changed_since` find them like edits.
CREATE TABLE message_reactions (
    message_id  bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id, emoji)
);

ALTER TABLE messages
    ADD COLUMN reactions jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN reacted_at timestamptz;

-- the changed-message index of 0003 now also covers reaction changes
DROP INDEX IF EXISTS messages_changed;
CREATE INDEX messages_changed ON messages (room_id, seq)
    WHERE edited_at IS NOT NULL OR deleted_at IS NOT NULL OR reacted_at IS NOT NULL;
