//! The proof routes (issue #16): a postman's phone uploads the photo or signature an attempt
//! names, after the attempt synced; the back office reads it back beside the attempt.
//!
//! An upload is refused, and nothing is stored, unless an attempt recorded by the caller's
//! device names the hash, the body is at most `--proof-max-bytes`, its SHA-256 is the one in
//! the path, and its first bytes are a JPEG, PNG, WebP or SVG image. The body is read whole
//! (bounded by that limit and reserved from the upload budget) before anything is written.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::AuthUser;
use crate::db::StoredProof;
use crate::error::ApiError;
use crate::params::PathParams;
use crate::proofs::{self, MEDIA_TYPES};
use crate::{json_body, AppState};

/// The media types an upload may declare: any of [`MEDIA_TYPES`], or none in particular (the
/// type is read from the bytes either way).
pub const UPLOAD_MEDIA_TYPES: [&str; 5] = [
    "application/octet-stream",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/svg+xml",
];

/// A proof file the server holds.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProofStored {
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// `photo` or `signature`, as the attempt names it.
    pub kind: String,
    /// Its media type, read from its first bytes.
    pub content_type: String,
    /// Its size in bytes.
    pub size_bytes: i64,
    /// When the server stored it, Unix milliseconds.
    pub stored_at_ms: i64,
}

impl From<StoredProof> for ProofStored {
    fn from(p: StoredProof) -> Self {
        Self {
            sha256: p.sha256,
            kind: p.kind,
            content_type: p.content_type,
            size_bytes: p.size_bytes,
            stored_at_ms: p.stored_at_ms,
        }
    }
}

/// The path's hash: 400 unless it is 64 lower-case hex digits.
fn sha256_of(raw: &str) -> Result<String, ApiError> {
    if proofs::is_sha256(raw) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::bad_request(
            "invalid_sha256",
            format!("sha256: {raw:?} is not a SHA-256 in lower-case hex (64 characters)"),
        )
        .field("sha256"))
    }
}

fn expired(sha256: &str) -> ApiError {
    ApiError::gone(
        "proof_expired",
        format!("proof {sha256} was deleted after its retention period; it is not taken again"),
    )
    .field("sha256")
}

/// `PUT /v1/proofs/{sha256}`: the file of a photo or signature an attempt of this device
/// names. 201 when stored now, 200 when it was already.
#[tracing::instrument(name = "proofs.upload", level = "info", skip_all)]
pub async fn upload(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    PathParams(raw): PathParams<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sha256 = sha256_of(&raw)?;
    if let Some(declared) = headers.get(header::CONTENT_TYPE) {
        let essence = declared
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !UPLOAD_MEDIA_TYPES.contains(&essence.as_str()) {
            return Err(ApiError::unsupported_media_type(
                "unsupported_media_type",
                format!(
                    "Content-Type: a proof is sent as {}",
                    UPLOAD_MEDIA_TYPES.join(", ")
                ),
            )
            .field("Content-Type"));
        }
    }
    // Refusals that need no body come first: the phone learns them without sending megabytes.
    let device = claims.device.as_deref().unwrap_or_default();
    let Some(kind) = app.db.proof_referenced_by(&sha256, device).await? else {
        return Err(ApiError::unprocessable(
            "proof_not_referenced",
            format!(
                "sha256: no attempt recorded by device {device:?} names proof {sha256}; \
                 upload a proof after the attempt that names it has synced"
            ),
        )
        .field("sha256"));
    };
    let before = app.db.stored_proof(&sha256).await?;
    if before.as_ref().is_some_and(|p| p.purged_ms.is_some()) {
        return Err(expired(&sha256));
    }
    let max = app.proof_max_bytes;
    let too_large = || {
        ApiError::payload_too_large(
            "proof_too_large",
            format!("the proof is over the limit of {max} bytes (--proof-max-bytes)"),
        )
        .field("body")
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let bytes = json_body::body(Body::new(http_body_util::Limited::new(body, max)))
        .await
        .map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                e
            }
        })?;
    let actual = proofs::sha256_hex(&bytes);
    if actual != sha256 {
        return Err(ApiError::unprocessable(
            "proof_hash_mismatch",
            format!("body: its SHA-256 is {actual}, not {sha256} as the path says"),
        )
        .field("body"));
    }
    let Some(content_type) = proofs::sniff(&bytes) else {
        return Err(ApiError::unsupported_media_type(
            "unsupported_proof_type",
            format!(
                "body: a proof is an image: {} (read from its first bytes)",
                MEDIA_TYPES.join(", ")
            ),
        )
        .field("body"));
    };
    if let Some(stored) = before {
        return Ok((StatusCode::OK, Json(ProofStored::from(stored))).into_response());
    }
    let record = StoredProof {
        sha256: sha256.clone(),
        device: device.to_string(),
        kind,
        size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        content_type: content_type.to_string(),
        stored_at_ms: app.clock.now_ms(),
        purged_ms: None,
    };
    app.proofs.put(&sha256, bytes).await.map_err(|e| {
        ApiError::internal(format!("the proof store ({}): {e}", app.proofs.describe()))
    })?;
    match app.db.record_stored_proof(&record).await {
        Ok(true) => Ok((StatusCode::CREATED, Json(ProofStored::from(record))).into_response()),
        // Another upload of the same bytes recorded it first.
        Ok(false) => match app.db.stored_proof(&sha256).await? {
            Some(p) if p.purged_ms.is_some() => Err(expired(&sha256)),
            Some(p) => Ok((StatusCode::OK, Json(ProofStored::from(p))).into_response()),
            None => Err(ApiError::internal("a proof recorded and gone at once")),
        },
        Err(e) => {
            // Not recorded: the file must not stay behind unaccounted for, unless another
            // upload recorded it meanwhile.
            if !matches!(app.db.stored_proof(&sha256).await, Ok(Some(_))) {
                if let Err(e) = app.proofs.delete(&sha256).await {
                    tracing::warn!(error = %e, %sha256, "could not delete a proof left unrecorded");
                }
            }
            Err(e.into())
        }
    }
}

/// `GET /v1/backoffice/proofs/{sha256}`: a proof's file, with its media type.
#[tracing::instrument(name = "backoffice.proof", level = "info", skip_all)]
pub async fn file(
    State(app): State<Arc<AppState>>,
    PathParams(raw): PathParams<String>,
) -> Result<Response, ApiError> {
    let sha256 = sha256_of(&raw)?;
    let not_found = || {
        ApiError::not_found(
            "proof_not_found",
            format!("proof {sha256} is not stored: the phone has not uploaded it yet"),
        )
        .field("sha256")
    };
    let stored = app.db.stored_proof(&sha256).await?.ok_or_else(not_found)?;
    if stored.purged_ms.is_some() {
        return Err(expired(&sha256));
    }
    let bytes = app
        .proofs
        .get(&sha256)
        .await
        .map_err(|e| {
            ApiError::internal(format!("the proof store ({}): {e}", app.proofs.describe()))
        })?
        .ok_or_else(|| {
            tracing::warn!(%sha256, store = app.proofs.describe(), "a recorded proof is missing from the store");
            not_found()
        })?;
    let content_type = HeaderValue::from_str(&stored.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            // The same hash is the same bytes for ever; it is evidence about a person, so
            // only the reviewer's browser keeps it.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // An SVG opened on its own runs nothing and loads nothing.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
            ),
        ],
        bytes,
    )
        .into_response())
}
