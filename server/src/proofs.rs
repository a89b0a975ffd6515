//! Proofs of delivery (issue #16): the photos and signatures an attempt names by their SHA-256,
//! kept in one store behind one interface (`object_store`): a local directory by default, or an
//! S3-compatible object store that several instances share.
//!
//! Files are content-addressed: a proof lives at `<first two hex digits>/<sha256>` under the
//! store's prefix, so an upload of the same bytes twice writes the same object. Which files are
//! stored, and which retention deleted, is recorded in the database (`db/proofs.rs`); the store
//! holds only bytes. The HTTP side is `proofs_api.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, PutPayload};
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tournee_sync_core::model::{Attempt, ProofKind};

use crate::db::{AttemptRow, Database};
use crate::settings::ProofSettings;

/// The proofs' files, wherever they are kept.
#[derive(Clone)]
pub struct ProofStore {
    store: Arc<dyn ObjectStore>,
    /// Where, for logs and `check-config` (never a credential).
    described: String,
    /// The directory of a local store, whose writes are fsynced (object_store renames a
    /// temporary file into place but does not flush it); `None` for an object store, where a
    /// successful PUT is durable.
    local: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ProofStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.described)
    }
}

/// Why the store failed; logged, never sent to a client.
pub type StoreError = object_store::Error;

impl ProofStore {
    /// The store `settings` name: a directory (created if missing) or `s3://bucket/prefix`.
    pub fn from_settings(settings: &ProofSettings) -> Result<Self, String> {
        let spec = settings.store.trim();
        if spec.is_empty() {
            return Err("--proof-store: empty; give a directory or s3://BUCKET/PREFIX".into());
        }
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!(
                    "--proof-store: {spec}: no bucket (s3://BUCKET/PREFIX)"
                ));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let endpoint = settings
                .s3_endpoint
                .clone()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                .or_else(|| std::env::var("AWS_ENDPOINT").ok());
            if let Some(endpoint) = &endpoint {
                // A store on the local network (MinIO, Garage, a test's moto) may speak plain
                // HTTP, and names buckets in the path rather than the host.
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            if let Some(region) = &settings.s3_region {
                builder = builder.with_region(region);
            }
            if let Some(key) = &settings.s3_access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &settings.s3_secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            let s3 = builder
                .build()
                .map_err(|e| format!("--proof-store: {spec}: {e}"))?;
            let store: Arc<dyn ObjectStore> = if prefix.trim_matches('/').is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix.trim_matches('/')))
            };
            let described = match &endpoint {
                Some(endpoint) => format!("{spec} at {endpoint}"),
                None => spec.to_string(),
            };
            return Ok(Self {
                store,
                described,
                local: None,
            });
        }
        let dir = spec.strip_prefix("file://").unwrap_or(spec);
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--proof-store: cannot create the directory {dir}: {e}"))?;
        let local = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| format!("--proof-store: {dir}: {e}"))?;
        Ok(Self {
            store: Arc::new(local),
            described: format!("directory {dir}"),
            local: Some(std::path::PathBuf::from(dir)),
        })
    }

    /// Where the files are kept, for people (no credential).
    pub fn describe(&self) -> &str {
        &self.described
    }

    /// Keeps `bytes` as the proof `sha256`, durably once it returns (the phone then forgets its
    /// copy); the same bytes again overwrite themselves.
    pub async fn put(&self, sha256: &str, bytes: Bytes) -> Result<(), StoreError> {
        let at = location(sha256);
        self.store
            .put(&at, PutPayload::from_bytes(bytes))
            .await
            .map(drop)?;
        let Some(root) = &self.local else {
            return Ok(());
        };
        let file = root.join(at.as_ref());
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&file)?.sync_all()?;
            match file.parent() {
                Some(dir) => std::fs::File::open(dir)?.sync_all(),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| StoreError::Generic {
            store: "proofs",
            source: Box::new(e),
        })?
        .map_err(|e| StoreError::Generic {
            store: "proofs",
            source: Box::new(e),
        })
    }

    /// The proof's bytes, or `None` when the store does not hold them.
    pub async fn get(&self, sha256: &str) -> Result<Option<Bytes>, StoreError> {
        match self.store.get(&location(sha256)).await {
            Ok(found) => found.bytes().await.map(Some),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the proof's file; one already gone is no error.
    pub async fn delete(&self, sha256: &str) -> Result<(), StoreError> {
        match self.store.delete(&location(sha256)).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The hashes of every file in the store (for operators and tests).
    pub async fn list(&self) -> Result<Vec<String>, StoreError> {
        let objects: Vec<_> = self.store.list(None).try_collect().await?;
        let mut hashes: Vec<String> = objects
            .into_iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .filter(|name| is_sha256(name))
            .collect();
        hashes.sort();
        Ok(hashes)
    }
}

/// Where a proof's file lives in the store: spread over 256 folders by its first byte.
fn location(sha256: &str) -> StorePath {
    StorePath::from(format!("{}/{sha256}", &sha256[..2.min(sha256.len())]))
}

/// Whether `s` is a SHA-256 as the documents write it: 64 lower-case hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The media types a proof may have: what the back office's page can show.
pub const MEDIA_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/svg+xml"];

/// The media type of a proof from its first bytes (JPEG, PNG, WebP, or an SVG drawing of a
/// signature); `None` for anything else, which is refused.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    // SVG is text: an optional BOM, blanks, an optional XML declaration and comments, then the
    // root element, within the first kilobyte.
    let head = &bytes[..bytes.len().min(1024)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let text = std::str::from_utf8(head).ok().or_else(|| {
        // The first kilobyte may end inside a character.
        std::str::from_utf8(&head[..head.len().saturating_sub(3)]).ok()
    })?;
    let text = text.trim_start();
    if (text.starts_with("<?xml") || text.starts_with("<!--") || text.starts_with("<svg"))
        && text.contains("<svg")
    {
        return Some("image/svg+xml");
    }
    None
}

/// A proof beside its attempt, as the back office sees it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProofView {
    /// `photo` or `signature`.
    pub kind: ProofKind,
    /// The file's SHA-256, lower-case hex, as the attempt names it (kept after retention).
    pub sha256: String,
    /// Where the back office gets the file (`/v1/backoffice/proofs/<sha256>`, with its token);
    /// null while the phone has not uploaded it, or once retention deleted it.
    pub url: Option<String>,
}

/// The back office's route to a proof's file.
pub fn url(sha256: &str) -> String {
    format!("/v1/backoffice/proofs/{sha256}")
}

/// The proofs each of `attempts` names, by attempt id, with a URL for those stored now: one
/// query whatever the number of attempts.
pub async fn views_of(
    db: &Database,
    attempts: &[&AttemptRow],
) -> Result<HashMap<String, Vec<ProofView>>, sqlx::Error> {
    let named: Vec<(&str, Vec<(ProofKind, String)>)> = attempts
        .iter()
        .map(|a| {
            let proofs = serde_json::from_str::<Attempt>(&a.record)
                .map(|r| r.proofs.into_iter().map(|p| (p.kind, p.sha256)).collect())
                .unwrap_or_default();
            (a.id.as_str(), proofs)
        })
        .collect();
    let hashes: Vec<&str> = named
        .iter()
        .flat_map(|(_, proofs)| proofs.iter().map(|(_, sha)| sha.as_str()))
        .collect();
    let stored: std::collections::HashSet<String> = db
        .stored_proofs(&hashes)
        .await?
        .into_iter()
        .map(|p| p.sha256)
        .collect();
    Ok(named
        .into_iter()
        .map(|(id, proofs)| {
            let views = proofs
                .into_iter()
                .map(|(kind, sha256)| ProofView {
                    kind,
                    url: stored.contains(&sha256).then(|| url(&sha256)),
                    sha256,
                })
                .collect();
            (id.to_string(), views)
        })
        .collect())
}

/// What a purge of proofs did, or with `dry_run` would do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProofPurgeCounts {
    /// Files deleted from the store (their rows and the attempts' hashes stay).
    pub proofs_deleted: u64,
}

/// Proofs per batch of a purge.
const PURGE_BATCH: i64 = 1_000;

/// Deletes the files of proofs stored more than `days` days before `now_ms` (0: every one
/// stored before now); the attempts keep their hashes and the rows stay, marked purged, so a
/// phone uploading the file again is told it expired. Each file is deleted before its row is
/// marked, so a run that stops halfway is continued by the next one. Logs one line, and writes
/// one audit line when it deleted anything.
pub async fn purge(
    db: &Database,
    store: &ProofStore,
    days: u32,
    now_ms: i64,
    actor: &str,
    dry_run: bool,
) -> Result<ProofPurgeCounts, String> {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let cutoff_ms = now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
    let mut counts = ProofPurgeCounts::default();
    if dry_run {
        counts.proofs_deleted = db
            .count_proofs_to_purge(cutoff_ms)
            .await
            .map_err(|e| e.to_string())?;
    } else {
        loop {
            let batch = db
                .proofs_to_purge(cutoff_ms, PURGE_BATCH)
                .await
                .map_err(|e| e.to_string())?;
            for sha256 in &batch {
                store
                    .delete(sha256)
                    .await
                    .map_err(|e| format!("the proof store ({}): {e}", store.describe()))?;
                db.mark_proof_purged(sha256, now_ms)
                    .await
                    .map_err(|e| e.to_string())?;
                counts.proofs_deleted += 1;
            }
            if batch.len() < PURGE_BATCH as usize {
                break;
            }
        }
        if counts.proofs_deleted > 0 {
            db.audit_proof_purge(actor, now_ms, cutoff_ms, counts.proofs_deleted)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    tracing::info!(
        proof_retention_days = days,
        cutoff_ms,
        dry_run,
        proofs_deleted = counts.proofs_deleted,
        "proofs purged"
    );
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_knows_the_four_image_types_and_nothing_else() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            sniff(
                b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"
            ),
            Some("image/svg+xml")
        );
        assert_eq!(
            sniff(b"  <svg viewBox=\"0 0 10 10\"></svg>"),
            Some("image/svg+xml")
        );
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b"<html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><note/>"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
    }

    #[test]
    fn hashes_are_lower_case_hex() {
        let sha = sha256_hex(b"abc");
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256(&sha));
        assert!(!is_sha256(&sha.to_uppercase()));
        assert!(!is_sha256(&sha[1..]));
        assert_eq!(location(&sha).as_ref(), format!("ba/{sha}"));
    }
}
