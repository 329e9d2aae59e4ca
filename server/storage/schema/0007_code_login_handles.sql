-- Accounts made by WhatsApp code login used to be named wa_<phone digits>, with the number
-- (last four digits masked) as display name: every user could read both in user search,
-- member lists and message authors. Give each such account a random handle like the ones made
-- now (wa_ + letters, never digits) and a fixed display name, and rewrite the copies of the old
-- display name: the author_name stored with their messages and the names of their direct rooms.
-- Only accounts that have a phone are renamed: a wa_<digits> name without one was registered
-- with a password, and its owner logs in with that name. Copies already moved to the archive
-- (MongoDB) keep the old author_name.
DO $$
DECLARE
    u record;
    handle text;
    display text;
BEGIN
    FOR u IN SELECT id, display_name FROM users WHERE phone IS NOT NULL AND username ~ '^wa_[0-9]+$' ORDER BY id LOOP
        LOOP
            -- md5's hex digits mapped to letters: a-f and q-z
            handle := 'wa_' || translate(substr(md5(random()::text || clock_timestamp()::text || u.id::text), 1, 10),
                                         '0123456789', 'qrstuvwxyz');
            EXIT WHEN NOT EXISTS (SELECT 1 FROM users WHERE lower(username) = handle);
        END LOOP;
        display := CASE WHEN u.display_name ~ '^[-+0-9*() .]*$' THEN 'WhatsApp user ' || substr(handle, 4, 4)
                        ELSE u.display_name END;
        UPDATE users SET username = handle, display_name = display WHERE id = u.id;
        IF display <> u.display_name THEN
            UPDATE messages SET author_name = display WHERE author_id = u.id AND author_name = u.display_name;
            UPDATE rooms SET name = replace(name, u.display_name, display)
             WHERE kind = 'direct' AND id IN (SELECT room_id FROM room_members WHERE user_id = u.id);
        END IF;
    END LOOP;
END $$;
