-- Queues (departments), routing rules per WhatsApp number, auto-assignment, and the
-- conversation timeline (docs/DESK.md).

CREATE TABLE queues (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    color         text NOT NULL DEFAULT '#3b82f6' CHECK (color ~ '^#[0-9a-f]{6}$'),
    description   text NOT NULL DEFAULT '',
    greeting      text NOT NULL DEFAULT '',
    away_message  text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- an agent's membership; capacity NULL: the configured default (DESK_AGENT_CAPACITY)
CREATE TABLE queue_members (
    queue_id  bigint NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    user_id   bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    capacity  integer CHECK (capacity BETWEEN 1 AND 1000),
    PRIMARY KEY (queue_id, user_id)
);
CREATE INDEX queue_members_user ON queue_members (user_id);

-- routing of a number's new or reopened conversations: none (every staff member sees them, as
-- before queues), menu (numbered greeting), ai (triage), default (default_queue_id)
ALTER TABLE wa_accounts
    ADD COLUMN routing text NOT NULL DEFAULT 'none' CHECK (routing IN ('none', 'menu', 'ai', 'default')),
    ADD COLUMN default_queue_id bigint REFERENCES queues(id) ON DELETE SET NULL;

-- routing_state: routed (or nothing to route), menu (greeting sent, waiting for the answer),
-- menu_again (the menu was repeated once after an invalid answer);
-- away_sent: the queue's away message went out for this stay in the queue (once)
ALTER TABLE wa_contacts
    ADD COLUMN queue_id bigint REFERENCES queues(id) ON DELETE SET NULL,
    ADD COLUMN routing_state text NOT NULL DEFAULT 'routed'
        CHECK (routing_state IN ('routed', 'menu', 'menu_again')),
    ADD COLUMN away_sent boolean NOT NULL DEFAULT false,
    ADD COLUMN queued_at timestamptz;
-- the waiting line of a queue (the sweeper assigns oldest first) and an agent's load
CREATE INDEX wa_contacts_waiting ON wa_contacts (queue_id, queued_at) WHERE assignee_id IS NULL AND status <> 'closed';
CREATE INDEX wa_contacts_assignee ON wa_contacts (assignee_id) WHERE status <> 'closed';

-- The conversation's timeline: staff-only system events, never messages (nothing that reads
-- messages can carry one to the contact). Reports are computed from it: opened/reopened start
-- a stay, assigned/taken_over/transferred mark who holds it, first_response marks the first
-- human reply, closed ends it.
CREATE TABLE conversation_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id     bigint NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('opened', 'reopened', 'routed', 'assigned', 'taken_over',
                                              'handed_back', 'transferred', 'first_response', 'closed')),
    actor_id    bigint REFERENCES users(id) ON DELETE SET NULL,
    queue_id    bigint REFERENCES queues(id) ON DELETE SET NULL,
    from_user_id bigint REFERENCES users(id) ON DELETE SET NULL,
    to_user_id  bigint REFERENCES users(id) ON DELETE SET NULL,
    from_queue_id bigint REFERENCES queues(id) ON DELETE SET NULL,
    note        text NOT NULL DEFAULT '',
    meta        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_events_room ON conversation_events (room_id, id);
CREATE INDEX conversation_events_kind ON conversation_events (kind, created_at);
