-- Edits and deletions replayed by `sync`: only changed messages are indexed.
CREATE INDEX messages_changed ON messages (room_id, seq) WHERE edited_at IS NOT NULL OR deleted_at IS NOT NULL;
