-- Templates synced from the Graph API, and campaigns: paced template sends to a CSV of
-- recipients (docs/CAMPAIGNS.md).

-- Templates live under the WhatsApp Business Account (WABA), not the phone number: the sync
-- needs its id, given once and kept on the account.
ALTER TABLE wa_accounts ADD COLUMN waba_id text;

-- One row per template and language as Meta last answered; param_counts: {"header": n,
-- "body": n} (distinct {{…}} placeholders of each text component).
CREATE TABLE wa_templates (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES wa_accounts(id) ON DELETE CASCADE,
    name          text NOT NULL,
    language      text NOT NULL,
    status        text NOT NULL,
    category      text NOT NULL DEFAULT '',
    components    jsonb NOT NULL DEFAULT '[]',
    param_counts  jsonb NOT NULL DEFAULT '{}',
    synced_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name, language)
);

CREATE TABLE campaigns (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES wa_accounts(id) ON DELETE CASCADE,
    name         text NOT NULL,
    template     text NOT NULL,
    language     text NOT NULL,
    -- CSV column names filling the template's parameters in order: header ones, then body ones
    variables    jsonb NOT NULL DEFAULT '[]',
    status       text NOT NULL DEFAULT 'draft'
                 CHECK (status IN ('draft', 'running', 'paused', 'completed', 'cancelled')),
    pause_reason text,
    start_at     timestamptz,
    created_by   bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX campaigns_running ON campaigns (id) WHERE status = 'running';

-- One row per recipient. state: queued -> sending -> sent -> delivered -> read, or failed,
-- skipped (opted out, contacted today, cancelled), unknown (its sender died mid-call: never
-- sent again blindly). 'sending' is written and committed before the Graph call.
CREATE TABLE campaign_recipients (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     bigint NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    line            integer NOT NULL,
    phone           text NOT NULL,
    params          jsonb NOT NULL DEFAULT '[]',
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    claimed_by      text,
    claimed_at      timestamptz,
    wamid           text UNIQUE,
    sent_at         timestamptz,
    replied_at      timestamptz,
    error_code      integer,
    error_title     text,
    reason          text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, phone)
);
CREATE INDEX campaign_recipients_due ON campaign_recipients (campaign_id, next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX campaign_recipients_sending ON campaign_recipients (claimed_by) WHERE state = 'sending';
CREATE INDEX campaign_recipients_phone ON campaign_recipients (phone, sent_at);
CREATE INDEX campaign_recipients_state ON campaign_recipients (campaign_id, state, id);

-- Phones that answered a STOP keyword: never included in a campaign of that number again.
CREATE TABLE wa_opt_outs (
    account_id  bigint NOT NULL REFERENCES wa_accounts(id) ON DELETE CASCADE,
    phone       text NOT NULL,
    keyword     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, phone)
);

-- A conversation opened by a campaign recipient's reply shows the campaign.
ALTER TABLE wa_contacts ADD COLUMN campaign_id bigint REFERENCES campaigns(id) ON DELETE SET NULL;
