-- Outbound WhatsApp messages that failed for a passing reason (429, 5xx, network, timeout) stay
-- queued and are sent again later; next_attempt_at is NULL while the first attempt runs.
ALTER TABLE wa_messages ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE wa_messages ADD COLUMN next_attempt_at timestamptz;
CREATE INDEX wa_messages_queued ON wa_messages (next_attempt_at) WHERE direction = 'out' AND status = 'queued';
