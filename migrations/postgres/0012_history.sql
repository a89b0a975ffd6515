-- The server's history (issue #18, backups): one row naming the change log's lineage. Cursors
-- carry it, so a server restored from a backup recognises cursors it never issued and the phones
-- re-check what it holds. `identity` is what the database was when the history began (on
-- PostgreSQL its oid and the change table's; a restore by pg_restore changes both); the server
-- starts a new history when it differs, and `tournee-server backup` starts one in every copy.
CREATE TABLE server_history (
    id          BIGINT PRIMARY KEY,
    history     BIGINT NOT NULL,
    identity    TEXT NOT NULL,
    began_at_ms BIGINT NOT NULL
);

-- The change log is pruned below a horizon (issue #15, growth): changes a document's snapshot
-- holds, stored before `--change-log-days`. A device whose cursor is below the horizon is told to
-- re-check what it holds instead of reading news. Marks map times to positions (one an hour).
ALTER TABLE server_history ADD COLUMN pruned_below BIGINT NOT NULL DEFAULT 0;
CREATE TABLE change_log_marks (
    at_ms    BIGINT PRIMARY KEY,
    position BIGINT NOT NULL
);
