-- Change positions: devices' cursors and cached documents read the change log by `position`, so
-- writers need no lock shared by every instance (issue #15).
--
-- `seq` is assigned when a row is inserted, not when its transaction commits: a reader that
-- passed seq 12 could miss seq 11 committing later. A position is the writing transaction's id
-- (xid8, shifted left by 20 bits) plus the change's place in that transaction, and readers only
-- read positions of transactions older than the oldest one still running
-- (`pg_snapshot_xmin(pg_current_snapshot())`): every such transaction has ended, so nothing
-- below the bound can still appear. Rows stored before this migration keep their `seq` as their
-- position: all of them are committed, and new positions (xid << 20) are far above them.
ALTER TABLE changes ADD COLUMN position BIGINT;
UPDATE changes SET position = seq;
ALTER TABLE changes ALTER COLUMN position SET NOT NULL;
CREATE UNIQUE INDEX changes_by_position ON changes (position);
CREATE INDEX changes_by_doc_position ON changes (doc_id, position);
DROP INDEX changes_by_doc;
