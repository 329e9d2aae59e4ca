-- Avatars: a user's picture is one of their own uploads (docs/FILES.md, Avatars).
--
-- users.avatar_file_id: the upload shown as the user's picture (its thumbnail). Being referenced
-- here is what keeps the upload from the orphan sweep (storage/files.py TRASH_ORPHANS checks
-- this column as it checks message_attachments). ON DELETE SET NULL: a file row that goes
-- anyway (its owner's account deleted, or it was also attached to a message that was deleted)
-- leaves the user without a picture rather than blocking the deletion.
ALTER TABLE users ADD COLUMN avatar_file_id text REFERENCES files (id) ON DELETE SET NULL;
CREATE INDEX users_avatar_file_id ON users (avatar_file_id) WHERE avatar_file_id IS NOT NULL;
