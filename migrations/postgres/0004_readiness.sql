-- Readiness probes write a row here inside a transaction they roll back: the server is ready
-- only while it can write (not on a read-only replica, a full disk, or a dead session).
-- Never committed.
CREATE TABLE readiness_probe (
    id      BIGINT PRIMARY KEY,
    payload BYTEA NOT NULL
);
