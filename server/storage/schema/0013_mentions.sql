-- Mentions and per-room notification settings (docs/PROTOCOL.md, "Mentions").
--
-- mentions: one row per user a stored message mentions (an @username of a member, or every
-- targeted member of an @room / @here from a room owner or admin). The unread mention count of
-- a room is the user's rows with seq above their read cursor; rows at or below it are deleted
-- when the cursor moves, so the table holds unread mentions only. The foreign key to the
-- membership drops a user's rows when they leave the room. No foreign key to messages: the
-- archive relay deletes archived messages, and a mention is still a mention.
-- room_members.notify: what the user wants to be told about in that room (all messages, only
-- mentions, or nothing: muted). Muted rooms still count mentions; the server sends no
-- mention event for them.
CREATE TABLE mentions (
    room_id     bigint NOT NULL,
    user_id     bigint NOT NULL,
    seq         bigint NOT NULL,
    message_id  bigint NOT NULL,
    PRIMARY KEY (room_id, user_id, seq),
    FOREIGN KEY (room_id, user_id) REFERENCES room_members (room_id, user_id) ON DELETE CASCADE
);

ALTER TABLE room_members
    ADD COLUMN notify text NOT NULL DEFAULT 'all' CHECK (notify IN ('all', 'mentions', 'none'));
