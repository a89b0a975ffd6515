//! Hand-over between phones: a phone exports its round (the documents, the heads the server
//! acknowledged, the signatures it holds and the interactions still pending) into one file that
//! the app moves offline (QR codes, Bluetooth, USB); another postman's phone imports it, checks
//! every pending change's signature against the exporting device's key and every rule, works
//! on, and syncs: the server stores each interaction once, authored by the phone that recorded
//! it (the signature says so), whoever uploads it.
//!
//! The exporting device's own unsynced changes must be signed by it (the file carries that
//! device's public key; the server checks it against the key registered for the device, so a
//! forged file is refused there even if it passes here); what else the file holds beyond the
//! acknowledged heads (the server's changes, another phone's the exporter carries, with their
//! signatures) is checked by the server when it is pushed.

use std::io::{Read, Write};

use automerge::Automerge;
use flate2::{read::DeflateDecoder, write::DeflateEncoder, Compression};
use serde::{Deserialize, Serialize};

use super::{Interaction, PhoneStore, StoreError, StoreRole};
use crate::ids::DocId;
use crate::model::RoundManifest;
use crate::signing::{self, ChangeSignature, PublicKey, Signer};
use crate::sync::{DocSyncState, Heads};
use crate::validator::{check_some_applied, Role, Scope, Sender};

/// The format of a relay file.
const RELAY_FORMAT: u32 = 1;
/// The largest relay file read once inflated (a round of a few hundred documents is a few MB).
const MAX_RELAY_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct RelayFile {
    format: u32,
    /// The exporting device and its postman.
    device: String,
    principal: String,
    /// The exporting device's public key (SEC1), which signed its pending changes.
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    manifest: Option<RoundManifest>,
    docs: Vec<RelayedDoc>,
}

#[derive(Serialize, Deserialize)]
struct RelayedDoc {
    doc: DocId,
    /// The whole document as the exporting phone holds it.
    #[serde(with = "serde_bytes")]
    saved: Vec<u8>,
    /// The heads the server acknowledged to the exporting phone.
    acked: Heads,
    signatures: Vec<ChangeSignature>,
    pending: Vec<Interaction>,
}

/// What an import took over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayImport {
    /// Documents imported or brought up to date.
    pub documents: usize,
    /// The other phone's interactions now pending on this one, to be synced.
    pub interactions: Vec<Interaction>,
}

fn refused(reason: impl Into<String>) -> StoreError {
    StoreError::Relay {
        reason: reason.into(),
    }
}

impl PhoneStore {
    /// Exports the round this phone holds, with the interactions the server has not
    /// acknowledged yet and their signatures, for another postman's phone to carry.
    /// `device_key` is this device's public key (SEC1 or SubjectPublicKeyInfo), as registered
    /// with the server.
    pub fn export_round(&mut self, device_key: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = PublicKey::parse(device_key).map_err(|e| refused(e.to_string()))?;
        let ids: Vec<DocId> = self.docs.keys().cloned().collect();
        let mut docs = Vec::with_capacity(ids.len());
        for id in ids {
            let saved = self.loaded(&id)?.save();
            let stored = self
                .docs
                .get(&id)
                .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
            docs.push(RelayedDoc {
                doc: id,
                saved,
                acked: stored.sync.acked.clone(),
                signatures: stored.signatures.values().cloned().collect(),
                pending: stored.pending.clone(),
            });
        }
        let file = RelayFile {
            format: RELAY_FORMAT,
            device: self.identity.device.clone(),
            principal: self.identity.principal.clone(),
            key: key.to_sec1(),
            manifest: self.manifest.clone(),
            docs,
        };
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        ciborium::into_writer(&file, &mut encoder).map_err(|e| refused(e.to_string()))?;
        encoder
            .flush()
            .and_then(|()| encoder.finish())
            .map_err(|e| refused(e.to_string()))
    }

    /// Imports another phone's round (`export_round`'s file): every change that phone has not
    /// synced must be signed by it and pass the rules as its own; then its documents are merged
    /// into this store and its interactions become pending here, to be uploaded by this
    /// phone's next sync. Nothing is written if any check fails.
    pub fn import_round(&mut self, bytes: &[u8]) -> Result<RelayImport, StoreError> {
        if self.identity.role != StoreRole::Postman {
            return Err(refused(
                "only a postman's phone carries another phone's round",
            ));
        }
        let mut inflated = Vec::new();
        DeflateDecoder::new(bytes)
            .take(MAX_RELAY_BYTES + 1)
            .read_to_end(&mut inflated)
            .map_err(|e| refused(format!("not a relay file: {e}")))?;
        if inflated.len() as u64 > MAX_RELAY_BYTES {
            return Err(refused("the relay file is too large"));
        }
        let file: RelayFile = ciborium::from_reader(inflated.as_slice())
            .map_err(|e| refused(format!("not a relay file: {e}")))?;
        if file.format != RELAY_FORMAT {
            return Err(refused(format!(
                "relay format {} is not {RELAY_FORMAT}",
                file.format
            )));
        }
        if file.device == self.identity.device {
            return Err(refused("this file was exported by this very device"));
        }
        let key = PublicKey::parse(&file.key).map_err(|e| refused(e.to_string()))?;
        let author = Sender {
            role: Role::Postman,
            principal: file.principal.clone(),
            device: Some(file.device.clone()),
            scope: Scope::All,
        };
        let signer = Signer::Device {
            device: file.device.clone(),
        };
        // Every check first, on copies: nothing is written unless the whole file passes.
        let mut checked = Vec::with_capacity(file.docs.len());
        for relayed in file.docs {
            let id = relayed.doc.clone();
            let incoming = Automerge::load(&relayed.saved)
                .map_err(|e| refused(format!("{id}: the document does not load: {e}")))?;
            crate::operations::check_document(&id, &incoming)?;
            let base = incoming
                .fork_at(&relayed.acked.0)
                .map_err(|e| refused(format!("{id}: its acknowledged heads are not in it: {e}")))?;
            // The exporting phone's own changes (signed in its name, or named by a pending
            // interaction and signed by nobody) must carry its verified signature and pass the
            // rules as its.
            // The rest of what it holds beyond the acknowledged heads came from the server, or
            // from a phone it carries, and the server checks those again when they are pushed.
            let named: Vec<&str> = relayed.pending.iter().map(|i| i.change.as_str()).collect();
            let own: Vec<_> = incoming
                .get_changes(&relayed.acked.0)
                .into_iter()
                .filter(|change| {
                    let hash = change.hash();
                    match relayed.signatures.iter().find(|s| s.hash == hash.as_ref()) {
                        Some(signature) => signature.signer == signer,
                        // A pending interaction's change without a signature: the file claims it
                        // as the exporter's own, so it must be signed (and is refused below).
                        None => named.contains(&hash.to_string().as_str()),
                    }
                })
                .collect();
            for change in &own {
                let hash = change.hash();
                let signature = relayed
                    .signatures
                    .iter()
                    .find(|s| s.hash == hash.as_ref())
                    .ok_or_else(|| refused(format!("{id}: change {hash} is not signed")))?;
                let message = signing::message(&id, &hash, &signer);
                if signature.signer != signer || !key.verifies(&message, &signature.signature) {
                    return Err(refused(format!(
                        "{id}: change {hash} is not signed by {}",
                        file.device
                    )));
                }
            }
            check_some_applied(&id, &base, &incoming, &own, &author)?;
            checked.push(relayed);
        }
        let mut import = RelayImport::default();
        for relayed in checked {
            let id = relayed.doc;
            let held = self.docs.contains_key(&id);
            // The other phone's interactions are pending here from now on (written before the
            // document: an interaction whose change is not in the document yet is dropped at
            // the next acknowledgement, never the reverse).
            let pending: Vec<Interaction> = relayed
                .pending
                .into_iter()
                .filter(|i| i.doc == id)
                .filter(|i| {
                    self.docs
                        .get(&id)
                        .is_none_or(|d| d.pending.iter().all(|p| p.id != i.id))
                })
                .collect();
            self.keep_signatures(&id, relayed.signatures)?;
            self.keep_pending(&id, &pending)?;
            // A document this phone held keeps its own sync state (its pushes start from what
            // the server acknowledged to it); a new one starts from what the server
            // acknowledged to the other phone.
            let state = match held.then(|| self.sync_state(&id).cloned()).flatten() {
                Some(own) => own,
                None => DocSyncState {
                    acked: relayed.acked,
                    ..DocSyncState::default()
                },
            };
            self.apply_remote(&id, &[relayed.saved], |_| state)?;
            import.documents += 1;
            import.interactions.extend(pending);
        }
        if self.manifest.is_none() {
            if let Some(manifest) = file.manifest {
                self.set_manifest(manifest)?;
            }
        }
        Ok(import)
    }
}
