-- Tournée central store, SQLite flavour. Times are Unix milliseconds (INTEGER).

-- Automerge documents: the latest snapshot plus every change after it.
CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    kind         TEXT    NOT NULL,
    snapshot     BLOB    NOT NULL,
    snapshot_seq INTEGER NOT NULL
);

-- Every stored change, in the order the server accepted them: the sync cursor is `seq`.
CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(id),
    hash   BLOB NOT NULL,
    bytes  BLOB NOT NULL,
    UNIQUE (doc_id, hash)
);
CREATE INDEX changes_by_doc ON changes (doc_id, seq);

CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    postman    TEXT    NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE customers (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE delivery_points (
    id          TEXT PRIMARY KEY,
    customer_id TEXT REFERENCES customers(id),
    lines       TEXT    NOT NULL,
    lat         REAL,
    lon         REAL,
    version     INTEGER NOT NULL
);

CREATE TABLE items (
    id                TEXT PRIMARY KEY,
    delivery_point_id TEXT    NOT NULL REFERENCES delivery_points(id),
    customer_id       TEXT REFERENCES customers(id),
    status            TEXT    NOT NULL,
    needs_in_person   BOOLEAN NOT NULL,
    updated_at_ms     INTEGER NOT NULL
);

CREATE TABLE rounds (
    id      TEXT PRIMARY KEY,
    day     TEXT NOT NULL,
    postman TEXT NOT NULL,
    device  TEXT NOT NULL
);
CREATE INDEX rounds_by_device ON rounds (device, day);

CREATE TABLE round_stops (
    round_id          TEXT    NOT NULL REFERENCES rounds(id),
    position          INTEGER NOT NULL,
    delivery_point_id TEXT    NOT NULL REFERENCES delivery_points(id),
    items             TEXT    NOT NULL, -- JSON array of S10 numbers
    PRIMARY KEY (round_id, position)
);

CREATE TABLE attempts (
    id             TEXT PRIMARY KEY,
    item_id        TEXT    NOT NULL REFERENCES items(id),
    change_hash    BLOB    NOT NULL,
    outcome        TEXT    NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    device         TEXT    NOT NULL,
    postman        TEXT    NOT NULL,
    lat            REAL,
    lon            REAL,
    accuracy_m     REAL,
    distance_m     REAL,
    notice_number  TEXT,
    waits_at       TEXT,
    record         TEXT    NOT NULL -- the attempt as JSON, as the device recorded it
);
CREATE INDEX attempts_by_item ON attempts (item_id);

CREATE TABLE choices (
    id          TEXT PRIMARY KEY,
    item_id     TEXT    NOT NULL REFERENCES items(id),
    change_hash BLOB    NOT NULL,
    kind        TEXT    NOT NULL,
    made_at_ms  INTEGER NOT NULL,
    made_by     TEXT    NOT NULL,
    applicable  BOOLEAN NOT NULL,
    reason      TEXT,
    record      TEXT    NOT NULL
);
CREATE INDEX choices_by_item ON choices (item_id);

CREATE TABLE preferences (
    delivery_point_id      TEXT PRIMARY KEY REFERENCES delivery_points(id),
    safe_place             TEXT,
    preferred_neighbour    TEXT,
    preferred_pickup_point TEXT,
    never_to_neighbour     BOOLEAN NOT NULL,
    updated_seq            INTEGER NOT NULL
);

CREATE TABLE corrections (
    id                TEXT PRIMARY KEY,
    delivery_point_id TEXT    NOT NULL REFERENCES delivery_points(id),
    change_hash       BLOB    NOT NULL,
    proposed_by       TEXT    NOT NULL,
    device            TEXT    NOT NULL,
    proposed_at_ms    INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    record            TEXT    NOT NULL
);

-- What the back office must look at, with a reason it can read.
CREATE TABLE review_queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    subject_id TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    status     TEXT    NOT NULL DEFAULT 'open',
    created_ms INTEGER NOT NULL,
    UNIQUE (kind, subject_id, reason)
);

-- UPU EMSEVT events as customers and partners see them.
CREATE TABLE item_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT    NOT NULL REFERENCES items(id),
    code    TEXT    NOT NULL,
    at_ms   INTEGER NOT NULL,
    reason  TEXT,
    action  TEXT,
    source  TEXT    NOT NULL,
    UNIQUE (item_id, code, source)
);
CREATE INDEX item_events_by_item ON item_events (item_id, at_ms);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL
);
