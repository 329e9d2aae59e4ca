-- Contacts and labels of the support desk (docs/DESK.md: Contacts, Labels).
--
-- contacts: one person, across business numbers and identifiers. name comes from the WhatsApp
-- profile until staff edit it (name_edited): after that a profile name never overwrites it.
-- phone is E.164 (+ and digits), email optional, notes free text, attributes a small JSON object
-- (bounds checked in server/actions/contacts.py).
CREATE TABLE contacts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL DEFAULT '',
    name_edited  boolean NOT NULL DEFAULT false,
    phone        text,
    email        text,
    notes        text NOT NULL DEFAULT '',
    attributes   jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attributes) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_name ON contacts (lower(name));
CREATE INDEX contacts_phone ON contacts (phone);

-- Every identifier a person is known by, each pointing at one contact: 'wa_id' (the phone
-- number's digits as the Cloud API sends them), 'bsuid' (the business-scoped user id of 2026
-- webhooks, from_user_id), 'phone' (E.164). An inbound message matches a contact on any of them
-- and adds the ones not yet known, so a new number or a BSUID does not split a person in two.
CREATE TABLE contact_identities (
    kind        text NOT NULL CHECK (kind IN ('wa_id', 'bsuid', 'phone')),
    value       text NOT NULL,
    contact_id  bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

-- A conversation (wa_contacts row: one per business number and person) belongs to a contact.
ALTER TABLE wa_contacts ADD COLUMN contact_id bigint REFERENCES contacts(id) ON DELETE SET NULL;
ALTER TABLE wa_contacts ADD COLUMN bsuid text;

-- Existing conversations: one contact per distinct wa_id (the same number on two business
-- numbers is one person), named by the latest profile name seen.
CREATE TEMP TABLE _wa_people ON COMMIT DROP AS
    SELECT DISTINCT ON (wa_id) wa_id, name FROM wa_contacts ORDER BY wa_id, updated_at DESC;
ALTER TABLE _wa_people ADD COLUMN contact_id bigint;
UPDATE _wa_people p SET contact_id = c.id FROM (
    SELECT wa_id, nextval(pg_get_serial_sequence('contacts', 'id')) AS id FROM _wa_people) c
    WHERE c.wa_id = p.wa_id;
INSERT INTO contacts (id, name, phone) OVERRIDING SYSTEM VALUE
    SELECT contact_id, name, CASE WHEN wa_id ~ '^[1-9][0-9]{6,14}$' THEN '+' || wa_id END FROM _wa_people;
INSERT INTO contact_identities (kind, value, contact_id) SELECT 'wa_id', wa_id, contact_id FROM _wa_people;
INSERT INTO contact_identities (kind, value, contact_id)
    SELECT 'phone', '+' || wa_id, contact_id FROM _wa_people WHERE wa_id ~ '^[1-9][0-9]{6,14}$';
UPDATE wa_contacts w SET contact_id = p.contact_id FROM _wa_people p WHERE p.wa_id = w.wa_id;

CREATE UNIQUE INDEX wa_contacts_account_contact ON wa_contacts (account_id, contact_id);
CREATE INDEX wa_contacts_contact ON wa_contacts (contact_id, updated_at DESC);

-- Labels: coloured tags managed by supervisors and admins, put on conversations (by room id)
-- and contacts by staff. Deleting a label takes it off everything.
CREATE TABLE labels (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    color       text NOT NULL CHECK (color ~ '^#[0-9a-f]{6}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX labels_name ON labels (lower(name));

CREATE TABLE conversation_labels (
    room_id     bigint NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    label_id    bigint NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    added_by    bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, label_id)
);
CREATE INDEX conversation_labels_label ON conversation_labels (label_id, room_id);

CREATE TABLE contact_labels (
    contact_id  bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    label_id    bigint NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    added_by    bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contact_id, label_id)
);
CREATE INDEX contact_labels_label ON contact_labels (label_id, contact_id);
