-- Readiness probes write a row here inside a transaction they roll back: the server is ready
-- only while it can write (not while the disk is full or the file read-only). Never committed.
CREATE TABLE readiness_probe (
    id      INTEGER PRIMARY KEY,
    payload BLOB NOT NULL
);
