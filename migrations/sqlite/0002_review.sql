-- Review decisions and dispute evidence on the review queue (issue #5).
ALTER TABLE review_queue ADD COLUMN detail TEXT;
ALTER TABLE review_queue ADD COLUMN decided_by TEXT;
ALTER TABLE review_queue ADD COLUMN decision_comment TEXT;
ALTER TABLE review_queue ADD COLUMN decided_at_ms BIGINT;
ALTER TABLE review_queue ADD COLUMN auto_approved BOOLEAN NOT NULL DEFAULT FALSE;
