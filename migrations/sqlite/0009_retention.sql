-- Retention (issue #18): what the purge has already done, so that each run reads only what is
-- left past the retention period, through indexes that hold nothing else.
ALTER TABLE items ADD COLUMN archived_ms BIGINT;
ALTER TABLE attempts ADD COLUMN purged_ms BIGINT;
ALTER TABLE choices ADD COLUMN purged_ms BIGINT;
ALTER TABLE corrections ADD COLUMN purged_ms BIGINT;
ALTER TABLE review_queue ADD COLUMN purged_ms BIGINT;
ALTER TABLE audit_log ADD COLUMN purged_ms BIGINT;
CREATE INDEX items_to_archive ON items (updated_at_ms) WHERE archived_ms IS NULL AND status = 'EMI';
CREATE INDEX attempts_to_purge ON attempts (recorded_at_ms) WHERE purged_ms IS NULL;
CREATE INDEX choices_to_purge ON choices (made_at_ms) WHERE purged_ms IS NULL;
CREATE INDEX corrections_to_purge ON corrections (proposed_at_ms) WHERE purged_ms IS NULL;
CREATE INDEX review_queue_to_purge ON review_queue (created_ms) WHERE purged_ms IS NULL;
CREATE INDEX audit_log_to_purge ON audit_log (at_ms) WHERE purged_ms IS NULL;
CREATE INDEX events_by_recorded ON events (recorded_ms);
