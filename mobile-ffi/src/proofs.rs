//! Proofs of delivery for the app (issue #16): the photo or signature taken at the door goes into
//! the store's on-disk queue before the attempt that names it is recorded, and is uploaded once
//! the server acknowledged that attempt. As for sync, the app does the HTTP: the store gives the
//! request ([`ProofUpload`]) and reads the answer ([`ProofAnswer`]). Everything delegates to the
//! core's `PhoneStore`; the queue survives restarts because it lives in the store's directory.

use tournee_sync_core::model::{Proof, ProofKind};
use tournee_sync_core::store::{ProofAnswer, ProofState, ProofUpload, QueuedProof};

use crate::error::TourneeError;
use crate::store::FieldStore;

#[uniffi::remote(Enum)]
pub enum ProofState {
    Unreferenced,
    WaitingForSync,
    Ready,
}

#[uniffi::remote(Record)]
pub struct QueuedProof {
    pub proof: Proof,
    pub size: u64,
    pub state: ProofState,
}

#[uniffi::remote(Record)]
pub struct ProofUpload {
    pub sha256: String,
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[uniffi::remote(Enum)]
pub enum ProofAnswer {
    Stored,
    Expired,
    Refused { code: String, message: String },
    RetryLater { reason: String },
}

#[uniffi::export]
impl FieldStore {
    /// Keeps a photo or signature (its bytes) in the queue, durably; returns the reference to
    /// put in the attempt's `proofs` when recording it. The same bytes again change nothing.
    pub fn queue_proof(&self, kind: ProofKind, bytes: Vec<u8>) -> Result<Proof, TourneeError> {
        Ok(self.lock()?.store.queue_proof(kind, &bytes)?)
    }

    /// As [`FieldStore::queue_proof`], from a file the camera or the signature pad wrote; the
    /// file is copied into the queue, so the app may delete it afterwards.
    pub fn queue_proof_file(&self, kind: ProofKind, path: String) -> Result<Proof, TourneeError> {
        let bytes = std::fs::read(&path).map_err(|e| TourneeError::Storage {
            reason: format!("{path}: {e}"),
        })?;
        self.queue_proof(kind, bytes)
    }

    /// The proofs waiting in the queue, each with whether it can be uploaded now (`Ready`: its
    /// attempt is acknowledged by the server).
    pub fn queued_proofs(&self) -> Result<Vec<QueuedProof>, TourneeError> {
        Ok(self.lock()?.store.queued_proofs()?)
    }

    /// The request that uploads a queued proof: send it to the server's base URL with the
    /// postman's token, then give the answer to [`FieldStore::apply_proof_answer`].
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
