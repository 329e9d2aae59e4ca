-- Media of linked-device conversations (docs/WHATSAPP.md, "Media" and "Linked devices").
--
-- A linked contact's file goes through the same fetch queue as a Cloud API one, but it is
-- fetched through the session's whatsmeow client rather than the Graph API: the row names the
-- session instead of the business number, and keeps the waE2E.Message whatsmeow downloads the
-- file from (direct path, media key, hashes; the message record never holds them). Exactly one
-- of account_id and session_id is set.
ALTER TABLE wa_media ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE wa_media ADD COLUMN session_id bigint;
ALTER TABLE wa_media ADD COLUMN payload bytea;
ALTER TABLE wa_media ADD CONSTRAINT wa_media_one_source CHECK ((account_id IS NULL) <> (session_id IS NULL));
