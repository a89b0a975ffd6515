-- The integration boundary (issue #14): the event feed, and the reference data imports load.

-- Every reconciled fact, written in the transaction that writes it. The feed reads in
-- (txid, seq) order, and only below the oldest transaction still running
-- (pg_snapshot_xmin): a transaction that commits late is never skipped.
CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    txid         BIGINT  NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id           TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    subject_kind TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    occurred_ms  BIGINT  NOT NULL,
    recorded_ms  BIGINT  NOT NULL,
    payload      TEXT    NOT NULL
);
CREATE INDEX events_in_feed_order ON events (txid, seq);
-- An event's id is derived from its subject and what it records, so it is unique within its
-- subject: keyed there, inserting it stays local to the subject's entries (a bulk import's
-- subjects are in order) instead of a random place of an index of every event.
CREATE UNIQUE INDEX events_by_subject ON events (subject_id, id);

-- The last line an import applied, per kind and natural key, as canonical JSON: a line equal
-- to it is unchanged and writes nothing.
CREATE TABLE import_records (
    kind       TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    record     TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

ALTER TABLE customers ADD COLUMN contacts TEXT; -- JSON: channels with their consent
ALTER TABLE delivery_points ADD COLUMN postcode TEXT;
ALTER TABLE delivery_points ADD COLUMN city TEXT;
ALTER TABLE items ADD COLUMN requirements TEXT; -- JSON
ALTER TABLE items ADD COLUMN sender TEXT;
ALTER TABLE items ADD COLUMN arrived_ms BIGINT;
ALTER TABLE rounds ADD COLUMN office TEXT;
-- A customer's import releases and claims points and items by customer: without these, each
-- customer line scanned every item.
CREATE INDEX delivery_points_by_customer ON delivery_points (customer_id);
CREATE INDEX items_by_customer ON items (customer_id);

-- Further devices a round is published to (a relief postman's phone); `rounds.device` is the
-- first.
CREATE TABLE round_devices (
    round_id TEXT NOT NULL REFERENCES rounds(id),
    device   TEXT NOT NULL,
    PRIMARY KEY (round_id, device)
);
CREATE INDEX round_devices_by_device ON round_devices (device);

-- Pickup points and post offices, where items wait.
CREATE TABLE pickup_points (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL, -- pickup_point, post_office
    name          TEXT NOT NULL,
    lines         TEXT NOT NULL, -- JSON array
    postcode      TEXT NOT NULL,
    city          TEXT NOT NULL,
    lat           DOUBLE PRECISION,
    lon           DOUBLE PRECISION,
    opening_hours TEXT NOT NULL  -- JSON
);
CREATE INDEX pickup_points_by_postcode ON pickup_points (postcode);
