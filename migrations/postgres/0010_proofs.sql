-- Proofs of delivery (issue #16): which attempt names which photo or signature (by its SHA-256),
-- so an upload is accepted only from the device whose attempt names it; and which proofs are
-- stored, so the back office and retention know what there is.
--
-- `attempt_proofs` is projected with the attempts (db/commit.rs) and filled here from the
-- attempts already stored. `proofs` holds one row per stored file; once retention deletes the
-- file the row stays with `purged_ms` set, so the file is not taken again and the back office
-- says it is gone.
CREATE TABLE attempt_proofs (
    sha256     TEXT NOT NULL,
    attempt_id TEXT NOT NULL,
    device     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    PRIMARY KEY (sha256, attempt_id)
);
INSERT INTO attempt_proofs (sha256, attempt_id, device, kind)
SELECT p.value ->> 'sha256', a.id, a.device, p.value ->> 'kind'
FROM attempts a, jsonb_array_elements(a.record::jsonb -> 'proofs') p
WHERE p.value ->> 'sha256' IS NOT NULL
ON CONFLICT DO NOTHING;

CREATE TABLE proofs (
    sha256       TEXT PRIMARY KEY,
    device       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    size_bytes   BIGINT  NOT NULL,
    content_type TEXT    NOT NULL,
    stored_at_ms BIGINT  NOT NULL,
    purged_ms    BIGINT
);
CREATE INDEX proofs_to_purge ON proofs (stored_at_ms) WHERE purged_ms IS NULL;
