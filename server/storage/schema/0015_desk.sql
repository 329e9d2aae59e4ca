-- The support desk's first pieces (docs/DESK.md).
--
-- users.role gains 'supervisor', between staff and admin: sees and reassigns every WhatsApp
-- conversation and manages the shared canned replies; changes no roles, accounts or permissions.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('user', 'staff', 'supervisor', 'admin'));
