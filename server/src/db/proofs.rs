//! Proofs of delivery (issue #16): which attempts name which photos and signatures (projected
//! with the attempts), which of those files are stored, and their purge past retention.
//!
//! The files themselves live in the proof store (`crate::proofs`); these rows say what is there.

use serde::Serialize;
use sqlx::Row;
use tournee_sync_core::model::Attempt;

use super::{AttemptRow, Database};

/// Projects the proofs an attempt names: the head of a multi-row insert of `(sha256,
/// attempt_id, device, kind)`.
pub(super) const INSERT_REFERENCES: &str =
    "INSERT INTO attempt_proofs (sha256, attempt_id, device, kind) ";
/// The tail of [`INSERT_REFERENCES`]: a replayed attempt names the same proofs again.
pub(super) const INSERT_REFERENCES_TAIL: &str = " ON CONFLICT (sha256, attempt_id) DO NOTHING";

/// The kind under which an attempt of `$2` names `$1`, if one does.
const REFERENCED_BY_DEVICE: &str =
    "SELECT kind FROM attempt_proofs WHERE sha256 = $1 AND device = $2 LIMIT 1";

const STORED: &str = "SELECT sha256, device, kind, size_bytes, content_type, stored_at_ms, \
     purged_ms FROM proofs WHERE sha256 = $1";
/// The proofs among `{in_list}` whose file is stored now.
const STORED_AMONG: &str = "SELECT sha256, device, kind, size_bytes, content_type, \
     stored_at_ms, purged_ms FROM proofs WHERE sha256 {in_list} AND purged_ms IS NULL";
/// Records a stored file; one stored already (by the same bytes: the key is their hash) stays.
const INSERT_STORED: &str = "INSERT INTO proofs (sha256, device, kind, size_bytes, \
     content_type, stored_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (sha256) DO NOTHING";
/// Forgets a row written by an upload whose file could not be kept after all.
const DELETE_STORED: &str = "DELETE FROM proofs WHERE sha256 = $1 AND purged_ms IS NULL";

const TO_PURGE: &str = "SELECT sha256 FROM proofs WHERE purged_ms IS NULL AND stored_at_ms < $1 \
     ORDER BY stored_at_ms LIMIT $2";
const COUNT_TO_PURGE: &str =
    "SELECT COUNT(*) FROM proofs WHERE purged_ms IS NULL AND stored_at_ms < $1";
const MARK_PURGED: &str = "UPDATE proofs SET purged_ms = $2 WHERE sha256 = $1";
const AUDIT_PURGE: &str = "INSERT INTO audit_log (at_ms, actor, action, subject, detail, \
     purged_ms) VALUES ($1, $2, 'retention.proofs_purged', 'retention', $3, NULL)";

/// One proof an attempt names, as projected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofReference {
    /// The file's SHA-256, lower-case hex.
    pub sha256: String,
    /// The attempt.
    pub attempt_id: String,
    /// The device that recorded the attempt: the only one that may upload the file.
    pub device: String,
    /// `photo` or `signature`.
    pub kind: String,
}

/// The proofs the attempts name, read from their records.
pub fn references(attempts: &[AttemptRow]) -> Vec<ProofReference> {
    attempts
        .iter()
        .filter(|a| a.record.contains("sha256"))
        .filter_map(|a| Some((a, serde_json::from_str::<Attempt>(&a.record).ok()?)))
        .flat_map(|(a, record)| {
            record.proofs.into_iter().map(|p| ProofReference {
                sha256: p.sha256,
                attempt_id: a.id.clone(),
                device: a.device.clone(),
                kind: kind_name(p.kind).to_string(),
            })
        })
        .collect()
}

/// How the documents spell a proof's kind.
pub fn kind_name(kind: tournee_sync_core::model::ProofKind) -> &'static str {
    match kind {
        tournee_sync_core::model::ProofKind::Photo => "photo",
        tournee_sync_core::model::ProofKind::Signature => "signature",
    }
}

/// A stored proof file, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StoredProof {
    /// The file's SHA-256, lower-case hex.
    pub sha256: String,
    /// The device that uploaded it.
    pub device: String,
    /// `photo` or `signature`, as the attempt names it.
    pub kind: String,
    /// Its size.
    pub size_bytes: i64,
    /// Its media type, from its first bytes.
    pub content_type: String,
    /// When it was stored.
    pub stored_at_ms: i64,
    /// When retention deleted the file (the row stays, so it is not taken again).
    pub purged_ms: Option<i64>,
}

impl Database {
    /// The kind under which an attempt recorded by `device` names the proof `sha256`; `None`
    /// when no attempt of that device names it.
    pub async fn proof_referenced_by(
        &self,
        sha256: &str,
        device: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(REFERENCED_BY_DEVICE).bind(sha256).bind(device)
                .fetch_optional(pool).await?
                .map(|r| r.try_get("kind")).transpose()
        })
    }

    /// The record of a proof file, stored or purged.
    pub async fn stored_proof(&self, sha256: &str) -> Result<Option<StoredProof>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as(STORED).bind(sha256).fetch_optional(pool).await)
    }

    /// Which of `hashes` have their file stored now, in one query.
    pub async fn stored_proofs(&self, hashes: &[&str]) -> Result<Vec<StoredProof>, sqlx::Error> {
        self.fetch_in(STORED_AMONG, hashes).await
    }

    /// Records a file just stored; false when it was recorded already.
    pub async fn record_stored_proof(&self, proof: &StoredProof) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => Ok(sqlx::query(INSERT_STORED)
            .bind(&proof.sha256).bind(&proof.device).bind(&proof.kind).bind(proof.size_bytes)
            .bind(&proof.content_type).bind(proof.stored_at_ms)
            .execute(pool).await?.rows_affected() == 1))
    }

    /// Forgets the record of a file that could not be kept (its store failed after the row).
    pub async fn forget_stored_proof(&self, sha256: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query(DELETE_STORED).bind(sha256).execute(pool).await.map(drop))
    }

    /// Up to `limit` proofs stored before `cutoff_ms` whose file is still there, oldest first.
    pub async fn proofs_to_purge(
        &self,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(TO_PURGE).bind(cutoff_ms).bind(limit).fetch_all(pool).await?
                .iter().map(|r| r.try_get("sha256")).collect()
        })
    }

    /// How many proofs stored before `cutoff_ms` still have their file.
    pub async fn count_proofs_to_purge(&self, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
        let n: i64 = with_pool!(self, pool => sqlx::query(COUNT_TO_PURGE).bind(cutoff_ms).fetch_one(pool).await?.try_get(0)?);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Marks a proof's file deleted by retention.
    pub async fn mark_proof_purged(&self, sha256: &str, now_ms: i64) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query(MARK_PURGED).bind(sha256).bind(now_ms).execute(pool).await.map(drop))
    }

    /// The audit line of a purge of proofs: its counts and cutoff, never a hash.
    pub async fn audit_proof_purge(
        &self,
        actor: &str,
        now_ms: i64,
        cutoff_ms: i64,
        deleted: u64,
    ) -> Result<(), sqlx::Error> {
        let detail =
            serde_json::json!({ "cutoff_ms": cutoff_ms, "proofs_deleted": deleted }).to_string();
        with_pool!(self, pool => sqlx::query(AUDIT_PURGE)
            .bind(now_ms).bind(actor).bind(&detail)
            .execute(pool).await.map(drop))
    }
}
