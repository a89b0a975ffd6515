//! Proofs of delivery for the app (issue #16): the photo or signature taken at the door goes into
//! the store's on-disk queue before the attempt that names it is recorded, and is uploaded once
//! the server acknowledged that attempt. As for sync, the app does the HTTP: the store gives the
//! request ([`ProofUpload`]) and reads the answer ([`ProofAnswer`]). Everything delegates to the
//! core's `PhoneStore`; the queue survives restarts because it lives in the store's directory.

use tournee_sync_core::model::{Proof, ProofKind};
use tournee_sync_core::store::{ProofAnswer, ProofState, ProofUpload, QueuedProof};

use crate::error::TourneeError;
use crate::store::FieldStore;

/// Whether a queued proof can be uploaded now.
#[uniffi::remote(Enum)]
pub enum ProofState {
    /// No attempt recorded on this phone names it yet: record the attempt with it.
    Unreferenced,
    /// The attempt that names it is not acknowledged by the server yet: sync first.
    WaitingForSync,
    /// Ready to upload: ask `FieldStore.proofUpload` for the request.
    Ready,
}

/// A photo or signature waiting in the store's queue.
#[uniffi::remote(Record)]
pub struct QueuedProof {
    /// Its kind and hash, as an attempt names it.
    pub proof: Proof,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it can be uploaded now.
    pub state: ProofState,
}

/// The HTTP request that uploads a queued proof, for the app's own HTTP client.
#[uniffi::remote(Record)]
pub struct ProofUpload {
    /// The proof's SHA-256, to hand back to `FieldStore.applyProofAnswer` with the answer.
    pub sha256: String,
    /// The HTTP method: `PUT`.
    pub method: String,
    /// The path to append to the server's base URL, e.g. `/v1/proofs/<sha256>`.
    pub path: String,
    /// The value of the `Content-Type` header.
    pub content_type: String,
    /// The request body: the file's bytes.
    pub body: Vec<u8>,
}

/// What the server's answer to a proof upload means for the queue.
#[uniffi::remote(Enum)]
pub enum ProofAnswer {
    /// The server holds the file (stored now, or already): it left the queue.
    Stored,
    /// The server deleted it after its retention period and will not take it again: it left
    /// the queue.
    Expired,
    /// The server refused the file for good (not an image, too large, no attempt of this
    /// device names it…): it was set aside and is not offered again.
    Refused {
        /// The server's stable code, e.g. `proof_too_large`.
        code: String,
        /// The server's explanation, for a log.
        message: String,
    },
    /// Not now (no answer, a server busy or failing, an expired token): it stays queued; try
    /// again later.
    RetryLater {
        /// Why, for a log.
        reason: String,
    },
}

#[uniffi::export]
impl FieldStore {
    /// Keeps a photo or signature (its bytes) in the queue, durably; returns the reference to
    /// put in the attempt's `proofs` when recording it. The same bytes again change nothing.
    pub fn queue_proof(&self, kind: ProofKind, bytes: Vec<u8>) -> Result<Proof, TourneeError> {
        Ok(self.lock()?.store.queue_proof(kind, &bytes)?)
    }

    /// As `queueProof`, from a file the camera or the signature pad wrote; the
    /// file is copied into the queue, so the app may delete it afterwards.
    pub fn queue_proof_file(&self, kind: ProofKind, path: String) -> Result<Proof, TourneeError> {
        let bytes = std::fs::read(&path).map_err(|e| TourneeError::Storage {
            reason: format!("{path}: {e}"),
        })?;
        self.queue_proof(kind, bytes)
    }

    /// The proofs waiting in the queue, each with whether it can be uploaded now (`ready`: its
    /// attempt is acknowledged by the server).
    pub fn queued_proofs(&self) -> Result<Vec<QueuedProof>, TourneeError> {
        Ok(self.lock()?.store.queued_proofs()?)
    }

    /// The request that uploads a queued proof: send it to the server's base URL with the
    /// postman's token, then give the answer to `applyProofAnswer`. `NotFound` when no queued
    /// proof has this hash.
    pub fn proof_upload(&self, sha256: String) -> Result<ProofUpload, TourneeError> {
        Ok(self.lock()?.store.proof_upload(&sha256)?)
    }

    /// Applies the server's answer (its HTTP status and body) to the upload of `sha256`: the
    /// file leaves the queue when the server holds it, moves aside when refused for good, and
    /// stays for the next try otherwise.
    pub fn apply_proof_answer(
        &self,
        sha256: String,
        status: u16,
        body: Vec<u8>,
    ) -> Result<ProofAnswer, TourneeError> {
        Ok(self
            .lock()?
            .store
            .apply_proof_answer(&sha256, status, &body)?)
    }
}
