-- Signed webhooks (issue #14): partners' subscriptions to the event feed, and one delivery per
-- event and subscription, stored so that a restart resumes them.

-- A subscription takes events from the feed after its cursor (cursor_txid, cursor_seq), and
-- enqueues a delivery for each event of its types in the transaction that moves the cursor.
CREATE TABLE webhook_subscriptions (
    id              TEXT    PRIMARY KEY,
    url             TEXT    NOT NULL,
    event_types     TEXT    NOT NULL, -- JSON array; empty: every type
    secret          TEXT    NOT NULL, -- whsec_<base64>
    enabled         BOOLEAN NOT NULL,
    disabled_reason TEXT,
    cursor_txid     BIGINT  NOT NULL,
    cursor_seq      BIGINT  NOT NULL,
    created_ms      BIGINT  NOT NULL
);

-- One event to one subscription. Per subscription and subject only the oldest delivery not yet
-- delivered is sent, so a subject's events arrive in feed order.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  TEXT    NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    event_txid       BIGINT  NOT NULL,
    event_seq        BIGINT  NOT NULL,
    event_id         TEXT    NOT NULL,
    subject          TEXT    NOT NULL, -- kind:id
    status           TEXT    NOT NULL, -- pending, delivered, failed
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT  NOT NULL,
    first_failure_ms BIGINT,
    last_error       TEXT,
    delivered_ms     BIGINT,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
CREATE INDEX webhook_deliveries_by_subject ON webhook_deliveries (subscription_id, subject, status, id);
