//! The phone's queue of proof files (issue #16): the photos and signatures taken at the door,
//! kept in the store's directory until the server holds them, so they survive the app's
//! restarts and the phone's reboots.
//!
//! Layout: `proofs/<sha256>.<photo|signature>`, each written whole and atomically; a file the
//! server refused for good moves to `proofs/refused/`, where the app may still show or export it
//! but it is never offered again. A proof is uploaded only after the attempt that names it is
//! acknowledged by the server, which accepts a file only from the device whose attempt names
//! it: [`PhoneStore::queued_proofs`] says which are ready. In an encrypted store each file is
//! sealed whole (`sealed.rs`), bound to its name, which it keeps when it moves to `refused/`; its
//! name (the hash of the photo) stays readable, its bytes do not.
//!
//! No HTTP here either: [`ProofUpload`] is the request the app sends with its own stack, and
//! [`ProofAnswer::read`] what the server's answer means for the queue.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::sealed::{self, Sealer};
use super::{atomic, InteractionKind, PhoneStore, StoreError};
use crate::ids::DocKind;
use crate::model::{Proof, ProofKind};
use crate::operations::{self, OperationError};
use crate::rules::{Field, Violation};

/// The folder of the queue, under the store's.
const DIR: &str = "proofs";
/// Files the server refused for good, under [`DIR`].
const REFUSED: &str = "refused";

/// Where a queued proof stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofState {
    /// No attempt recorded on this phone names it yet: record the attempt with it.
    Unreferenced,
    /// The attempt that names it is not acknowledged by the server yet: sync first.
    WaitingForSync,
    /// Ready to upload.
    Ready,
}

/// A proof file in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedProof {
    /// Its kind and hash, as an attempt names it.
    pub proof: Proof,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it can be uploaded now.
    pub state: ProofState,
}

/// The request that uploads a queued proof: the app sends it with its own HTTP stack, with the
/// postman's token, and hands the answer to [`PhoneStore::apply_proof_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofUpload {
    /// The proof's hash.
    pub sha256: String,
    /// `PUT`.
    pub method: String,
    /// `/v1/proofs/<sha256>`, relative to the server's base URL.
    pub path: String,
    /// The body's media type (the server reads the image type from the bytes).
    pub content_type: String,
    /// The file's bytes.
    pub body: Vec<u8>,
}

/// What the server's answer to a [`ProofUpload`] means for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofAnswer {
    /// The server holds the file (stored now, or already): it leaves the queue.
    Stored,
    /// The server deleted it after its retention period and will not take it again: it leaves
    /// the queue.
    Expired,
    /// The server refused the file for good (not an image, too large, no attempt of this
    /// device names it…): it moves aside and is not offered again. `code` is the server's.
    Refused {
        /// The server's stable code, e.g. `proof_too_large`.
        code: String,
        /// Its message.
        message: String,
    },
    /// Not now (no network answer, a server busy or failing, an expired token): it stays
    /// queued; try again later.
    RetryLater {
        /// Why, for a log.
        reason: String,
    },
}

impl ProofAnswer {
    /// Reads the server's answer: its HTTP status and body.
    pub fn read(status: u16, body: &[u8]) -> Self {
        let refusal = serde_json::from_slice::<serde_json::Value>(body).ok();
        let text = |key: &str| {
            refusal
                .as_ref()
                .and_then(|v| v.get(key))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        match status {
            200 | 201 => Self::Stored,
            410 => Self::Expired,
            // Bad requests, a body too large or of the wrong type, a hash nobody of this device
            // names or that the bytes do not have: sending the same again gets the same.
            400 | 413 | 415 | 422 => Self::Refused {
                code: text("code"),
                message: text("message"),
            },
            _ => Self::RetryLater {
                reason: format!("HTTP {status} {} {}", text("code"), text("message"))
                    .trim_end()
                    .to_string(),
            },
        }
    }
}

/// The SHA-256 of `bytes` as attempts name proofs: lower-case hex.
pub fn proof_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn kind_name(kind: ProofKind) -> &'static str {
    match kind {
        ProofKind::Photo => "photo",
        ProofKind::Signature => "signature",
    }
}

/// A queue file's proof, from its name `<sha256>.<kind>`.
fn parse_name(name: &str) -> Option<Proof> {
    let (sha256, kind) = name.split_once('.')?;
    let kind = match kind {
        "photo" => ProofKind::Photo,
        "signature" => ProofKind::Signature,
        _ => return None,
    };
    let hex = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then(|| Proof {
        kind,
        sha256: sha256.to_string(),
    })
}

impl PhoneStore {
    fn proofs_dir(&self) -> PathBuf {
        self.root.join(DIR)
    }

    /// Keeps a photo or signature in the queue, durably, and returns the reference to put in the
    /// attempt's `proofs`. Queuing the same bytes again changes nothing.
    pub fn queue_proof(&mut self, kind: ProofKind, bytes: &[u8]) -> Result<Proof, StoreError> {
        if bytes.is_empty() {
            return Err(OperationError::from(Violation::new(
                Field::Proof,
                "a proof file is not empty",
            ))
            .into());
        }
        let dir = self.proofs_dir();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let proof = Proof {
            kind,
            sha256: proof_hash(bytes),
        };
        let path = dir.join(format!("{}.{}", proof.sha256, kind_name(kind)));
        if !path.exists() {
            let file = sealed::seal_file(self.sealer.as_deref(), &path, bytes)?;
            atomic::write(&path, &file, self.options.fsync)?;
        }
        Ok(proof)
    }

    /// The proofs in the queue (not those refused for good), oldest hash first, each with
    /// whether it can be uploaded now.
    pub fn queued_proofs(&mut self) -> Result<Vec<QueuedProof>, StoreError> {
        let dir = self.proofs_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut queued = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(atomic::TEMP_SUFFIX) {
                // Left by a crash while queuing: the app was never given its hash.
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                continue;
            }
            let Some(proof) = parse_name(&name) else {
                continue;
            };
            let file_size = entry
                .metadata()
                .map_err(|e| StoreError::io(&path, e))?
                .len();
            let size = match self.sealer {
                Some(_) => file_size.saturating_sub(sealed::FILE_OVERHEAD as u64),
                None => file_size,
            };
            queued.push((proof, size));
        }
        queued.sort_by(|a, b| a.0.sha256.cmp(&b.0.sha256));
        if queued.is_empty() {
            return Ok(Vec::new());
        }
        let (named, pending) = self.proofs_named()?;
        Ok(queued
            .into_iter()
            .map(|(proof, size)| {
                let state = if pending.contains(&proof.sha256) {
                    ProofState::WaitingForSync
                } else if named.contains(&proof.sha256) {
                    ProofState::Ready
                } else {
                    ProofState::Unreferenced
                };
                QueuedProof { proof, size, state }
            })
            .collect())
    }

    /// The request that uploads a queued proof.
    pub fn proof_upload(&self, sha256: &str) -> Result<ProofUpload, StoreError> {
        let path = self.queued_path(sha256)?;
        let file = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        let body = sealed::open_file(self.sealer.as_deref(), &path, file)?;
        Ok(ProofUpload {
            sha256: sha256.to_string(),
            method: "PUT".into(),
            path: format!("/v1/proofs/{sha256}"),
            content_type: "application/octet-stream".into(),
            body,
        })
    }

    /// Applies the server's answer to the upload of `sha256`: the file leaves the queue once the
    /// server holds it (or expired it), moves aside if refused for good, and stays otherwise.
    pub fn apply_proof_answer(
        &mut self,
        sha256: &str,
        status: u16,
        body: &[u8],
    ) -> Result<ProofAnswer, StoreError> {
        let path = self.queued_path(sha256)?;
        let answer = ProofAnswer::read(status, body);
        match &answer {
            ProofAnswer::Stored | ProofAnswer::Expired => {
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            }
            ProofAnswer::Refused { .. } => {
                let aside = self.proofs_dir().join(REFUSED);
                fs::create_dir_all(&aside).map_err(|e| StoreError::io(&aside, e))?;
                let to = aside.join(path.file_name().unwrap_or_default());
                fs::rename(&path, &to).map_err(|e| StoreError::io(&to, e))?;
            }
            ProofAnswer::RetryLater { .. } => return Ok(answer),
        }
        if self.options.fsync {
            let dir = self.proofs_dir();
            fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| StoreError::io(&dir, e))?;
        }
        Ok(answer)
    }

    /// The queue file of `sha256`, which must be there.
    fn queued_path(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        if parse_name(&format!("{sha256}.photo")).is_none() {
            return Err(OperationError::from(Violation::new(
                Field::Proof,
                "a proof is a lower-case hex SHA-256 (64 characters)",
            ))
            .into());
        }
        let dir = self.proofs_dir();
        [ProofKind::Photo, ProofKind::Signature]
            .into_iter()
            .map(|kind| dir.join(format!("{sha256}.{}", kind_name(kind))))
            .find(|p| p.exists())
            .ok_or_else(|| OperationError::NotFound(format!("proof {sha256} in the queue")).into())
    }

    /// The hashes that attempts recorded by this device name, and those among them that an
    /// attempt not yet acknowledged by the server names.
    fn proofs_named(&mut self) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
        let device = self.identity.device.clone();
        let items: Vec<_> = self
            .docs
            .keys()
            .filter(|id| id.kind() == DocKind::Item)
            .cloned()
            .collect();
        let mut named = HashSet::new();
        let mut pending = HashSet::new();
        for id in items {
            let waiting: HashSet<String> = self.docs[&id]
                .aside
                .iter()
                .map(|a| &a.interaction)
                .chain(&self.docs[&id].pending)
                .filter(|i| i.kind == InteractionKind::Attempt)
                .map(|i| i.id.clone())
                .collect();
            let item = operations::read_item(self.loaded(&id)?)?;
            for (attempt_id, attempt) in item.attempts {
                if attempt.device != device {
                    continue;
                }
                let hashes = attempt.proofs.into_iter().map(|p| p.sha256);
                if waiting.contains(&attempt_id) {
                    pending.extend(hashes);
                } else {
                    named.extend(hashes);
                }
            }
        }
        Ok((named, pending))
    }
}

/// Seals every plain proof file of a store being sealed in place (queued and refused ones),
/// each atomically; those sealed already are left as they are.
pub(super) fn seal_plain_proofs(
    root: &Path,
    sealer: &Sealer,
    fsync: bool,
) -> Result<(), StoreError> {
    let queue = root.join(DIR);
    for dir in [queue.join(REFUSED), queue] {
        if !dir.exists() {
            continue;
        }
        for entry in fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let path = entry.map_err(|e| StoreError::io(&dir, e))?.path();
            let named = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_name)
                .is_some();
            if !named {
                continue;
            }
            sealed::seal_file_in_place(&path, sealer, fsync)?;
        }
    }
    Ok(())
}
