-- Signed changes (issue #17): every change is signed by the device that recorded it or by the
-- server that wrote it. A device's public key (SEC1, P-256) is registered with it; the server's
-- keys sign what it writes on someone's behalf (the current one is the newest); each stored
-- change keeps its signature beside it, kept when the change log is pruned (an attempt's
-- signature is evidence as long as the attempt is kept), and deleted with its document.
ALTER TABLE devices ADD COLUMN signing_key BLOB;
ALTER TABLE devices ADD COLUMN key_registered_at_ms INTEGER;
CREATE TABLE server_keys (
    id          TEXT PRIMARY KEY,
    secret      BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE change_signatures (
    doc_id    TEXT NOT NULL,
    hash      BLOB NOT NULL,
    signer    TEXT NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
-- The verified signer of each attempt (its device id; NULL: recorded by an app that did not sign),
-- shown to reviewers and in the feed.
ALTER TABLE attempts ADD COLUMN signed_by TEXT;
