//! The phone's on-disk store: one device's documents, their sync state, the round manifest, and
//! the interactions the server has not acknowledged yet.
//!
//! Layout under the store's directory:
//! - `store.cbor`: the device identity, the Automerge actor and the server's sync cursor, replaced
//!   atomically;
//! - `manifest.cbor`: the current round, replaced atomically;
//! - `docs/<kind>_<key>.log`: one [`RecordLog`] per document: a snapshot, then local changes
//!   (each with the interaction it records, in the same record, so a change is never stored
//!   without its interaction or the reverse), changes received from the server, sync states and
//!   acknowledgements. Compaction rewrites a log as one snapshot atomically;
//! - `proofs/<sha256>.<kind>`: photos and signatures waiting to be uploaded (`proofs.rs`).
//!
//! Opened with the app's key ([`PhoneStore::open_with_key`]), every one of those files is
//! sealed (`sealed.rs`): each log record, `store.cbor`, `manifest.cbor` and each proof. A plain
//! store opened with a key is sealed in place, file by file, each atomically: `store.cbor` first
//! (sealed, marked "sealing plain files"), then every other file, then the mark is cleared; a
//! crash in between is finished at the next open.
//!
//! Documents are read from disk when the store opens but only turned into Automerge documents
//! when first used, so opening a full round is cheap.

mod atomic;
mod proofs;
mod record_log;
mod relay;
mod sealed;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use proofs::{proof_hash, ProofAnswer, ProofState, ProofUpload, QueuedProof};
pub use record_log::{Record, RecordLog};
pub use relay::RelayImport;
pub use sealed::StoreKey;
use sealed::{Header, Sealer};

use crate::ids::DocId;
use crate::model::{Attempt, Correction, CustomerChoice, Preferences, RoundManifest};
use crate::operations::{self, OperationError};
use crate::rules::{self, Field};
use crate::s10::S10;
use crate::signing::{self, ChangeSignature, ChangeSigner, Signer, SigningError};
use crate::sync::DocSyncState;
use crate::validator::{check_applied, Refusal, Role, Scope, Sender};

const STORE_FORMAT: u32 = 1;
/// Records after the last snapshot before a document log is compacted.
const COMPACT_AFTER_RECORDS: usize = 64;

mod kind {
    pub const SNAPSHOT: u8 = 1;
    pub const REMOTE: u8 = 2;
    pub const LOCAL: u8 = 3;
    pub const SYNC: u8 = 4;
    pub const INTERACTION: u8 = 5;
    pub const ACKED: u8 = 6;
    pub const ASIDE: u8 = 7;
    pub const SIGNATURES: u8 = 8;
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file is damaged in a way no crash produces; the store will not guess.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store is encrypted with another key than the one given: nothing was read or
    /// changed. The data is intact; open it with the key it was created with.
    #[error("{path} is encrypted with another key than the one given: the store is intact, open it with its own key")]
    WrongKey {
        /// The first file whose key check differs (normally `store.cbor`).
        path: PathBuf,
    },
    /// The store is encrypted and no key was given: nothing was read or changed.
    #[error("{path} is encrypted: the store needs its key to open")]
    KeyRequired {
        /// The first encrypted file met.
        path: PathBuf,
    },
    /// A key of the wrong length was given.
    #[error("a store key is {} bytes long, not {found}", StoreKey::LEN)]
    KeyLength {
        /// The length given.
        found: usize,
    },
    /// A file that this store did not write sits among its files: one sealed by another
    /// store (copied from another device, even under the same key), or a plain file in an
    /// encrypted store. Nothing was read from it or changed.
    #[error("{path} does not belong to this store: {reason}")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Why it does not belong.
        reason: String,
    },
    /// The store belongs to another device or postman.
    #[error("this store belongs to device {found}, not {expected}")]
    WrongDevice {
        /// The device that opened it.
        expected: String,
        /// The device it belongs to.
        found: String,
    },
    /// Another `PhoneStore` (in this process or another) has the store open: two writers on
    /// one folder would each believe their commits durable while one overwrites the other.
    #[error("{path} is already open (another store object or process holds its lock)")]
    InUse {
        /// The store's folder.
        path: PathBuf,
    },
    /// The document is not in the store.
    #[error("{0} is not in this store; sync the round first")]
    UnknownDocument(DocId),
    /// The operation broke a rule; nothing was written.
    #[error(transparent)]
    Operation(#[from] OperationError),
    /// The change would be refused by the server; nothing was written.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// The device's key did not sign the change; nothing was written.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// A relay file from another phone was not taken: not one, or a change in it is unsigned,
    /// signed by another device, or breaks a rule. Nothing of it was written.
    #[error("relay file refused: {reason}")]
    Relay {
        /// Why.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Who the store's device is: checked against the store on every open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIdentity {
    /// The device id bound into the token.
    pub device: String,
    /// The postman (or customer) using it.
    pub principal: String,
    /// What they may write.
    pub role: StoreRole,
}

/// The roles a store can be opened for (the back office has no phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreRole {
    /// A postman's phone.
    Postman,
    /// A customer's app.
    Customer,
}

impl StoreRole {
    fn role(self) -> Role {
        match self {
            StoreRole::Postman => Role::Postman,
            StoreRole::Customer => Role::Customer,
        }
    }
}

/// What the interaction was, for the "not yet saved to the server" list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InteractionKind {
    /// A delivery attempt.
    Attempt,
    /// A proposed address correction.
    Correction,
    /// A customer's choice for an item.
    Choice,
    /// A change of standing preferences.
    Preferences,
}

/// One thing a person did on this device, tracked until the server acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    /// The entry id (attempt id, correction id…), or the change hash for preferences.
    pub id: String,
    /// The document it was written to.
    pub doc: DocId,
    /// What it was.
    pub kind: InteractionKind,
    /// The Automerge change that carries it, hex.
    pub change: String,
}

/// What became of an interaction set aside because its sequence number was taken
/// ([`PhoneStore::set_aside`]), once the document was fetched again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAgain {
    /// The interaction as it was pending.
    pub before: Interaction,
    /// How it ended.
    pub outcome: AgainOutcome,
}

/// How an interaction set aside ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgainOutcome {
    /// The server holds it exactly as recorded (its own change reached the server before the
    /// collision): acknowledged.
    Stored,
    /// Recorded again, pending, under a new id (the old one may be held by the change that
    /// collided with it).
    Recorded(Interaction),
    /// The document as the server holds it no longer allows it (e.g. the item was delivered
    /// meanwhile): nothing was recorded, and the reason is given.
    Refused(String),
}

/// What a pending interaction wrote, read back from the document to be written again.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum PendingContent {
    Attempt(Attempt),
    Correction(Correction),
    Choice(CustomerChoice),
    Preferences(Preferences),
}

/// An interaction set aside, with what it wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SetAside {
    interaction: Interaction,
    content: PendingContent,
}

impl PendingContent {
    fn read(doc: &Automerge, interaction: &Interaction) -> Result<Self, StoreError> {
        let missing = || {
            StoreError::Operation(OperationError::Schema(format!(
                "pending {:?} {} is not in {}",
                interaction.kind, interaction.id, interaction.doc
            )))
        };
        Ok(match interaction.kind {
            InteractionKind::Attempt => Self::Attempt(
                operations::read_item(doc)?
                    .attempts
                    .remove(&interaction.id)
                    .ok_or_else(missing)?,
            ),
            InteractionKind::Choice => Self::Choice(
                operations::read_item(doc)?
                    .choices
                    .remove(&interaction.id)
                    .ok_or_else(missing)?,
            ),
            InteractionKind::Correction => Self::Correction(
                operations::read_delivery_point(doc)?
                    .corrections
                    .remove(&interaction.id)
                    .ok_or_else(missing)?,
            ),
            // The preferences as they stand now: setting them again writes whatever differs.
            InteractionKind::Preferences => {
                Self::Preferences(operations::read_delivery_point(doc)?.preferences)
            }
        })
    }

    /// Whether `doc` holds exactly this content under `id`.
    fn held(&self, doc: &Automerge, id: &str) -> Result<bool, OperationError> {
        Ok(match self {
            Self::Attempt(mine) => operations::read_item(doc)?.attempts.get(id) == Some(mine),
            Self::Choice(mine) => operations::read_item(doc)?.choices.get(id) == Some(mine),
            Self::Correction(mine) => {
                operations::read_delivery_point(doc)?.corrections.get(id) == Some(mine)
            }
            Self::Preferences(_) => false,
        })
    }

    /// Writes the content under entry id `entry`; the interaction's id and change.
    fn record(
        &self,
        doc: &mut Automerge,
        entry: String,
    ) -> Result<(String, Option<ChangeHash>), OperationError> {
        let hash = match self {
            Self::Attempt(attempt) => operations::record_attempt(doc, &entry, attempt)?,
            Self::Correction(correction) => {
                operations::propose_correction(doc, &entry, correction)?
            }
            Self::Choice(choice) => operations::choose_for_item(doc, &entry, choice)?,
            Self::Preferences(preferences) => {
                let hash = operations::set_preferences(doc, preferences)?;
                return Ok((hash.map(|h| h.to_string()).unwrap_or_default(), hash));
            }
        };
        Ok((entry, hash))
    }
}
#[derive(Serialize, Deserialize)]
struct StoreMeta {
    format: u32,
    identity: DeviceIdentity,
    #[serde(with = "serde_bytes")]
    actor: Vec<u8>,
    cursor: Option<u64>,
    /// The server history `cursor` was issued in (wire version 3 on; absent in older stores).
    #[serde(default)]
    history: Option<u64>,
    /// The server answered in another history than the cursor's: every held document is to be
    /// re-checked with it, until [`PhoneStore::finish_recheck`].
    #[serde(default)]
    recheck: bool,
    /// A plain store is being sealed in place: its other files may still be plain, and are
    /// sealed at the next open.
    #[serde(default)]
    sealing_plain_files: bool,
}

#[derive(Serialize, Deserialize)]
struct LocalRecord {
    interaction: Interaction,
    #[serde(with = "serde_bytes")]
    change: Vec<u8>,
    /// The device's signature of the change, in the same record (absent when the store has no
    /// signer, or in logs written before signatures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<ChangeSignature>,
}

#[derive(Debug)]
struct StoredDoc {
    log: RecordLog,
    /// Chunks not yet loaded into `doc`, in log order.
    unloaded: Vec<Vec<u8>>,
    doc: Option<Automerge>,
    sync: DocSyncState,
    pending: Vec<Interaction>,
    /// Interactions set aside after a `collision` refusal, until the document is fetched
    /// again (see [`PhoneStore::set_aside`]).
    aside: Vec<SetAside>,
    /// The signatures held of the document's changes, the device's own and those received.
    signatures: HashMap<Vec<u8>, ChangeSignature>,
    records_since_snapshot: usize,
}

/// Options for opening a store.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Fsync every commit (the default). Only tests and benchmarks of logic turn it off.
    pub fsync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { fsync: true }
    }
}

/// One device's documents on disk.
#[derive(Debug)]
pub struct PhoneStore {
    root: PathBuf,
    identity: DeviceIdentity,
    actor: ActorId,
    cursor: Option<u64>,
    history: Option<u64>,
    recheck: bool,
    manifest: Option<RoundManifest>,
    docs: BTreeMap<DocId, StoredDoc>,
    options: StoreOptions,
    /// The device's key, which signs every local change ([`PhoneStore::set_signer`]).
    signer: Option<Arc<dyn ChangeSigner>>,
    /// The sealing of every file, when the store is encrypted.
    sealer: Option<Arc<Sealer>>,
    /// The exclusive lock on `<root>/lock`, held as long as the store is open; the operating
    /// system releases it when the store is dropped or its process dies.
    _lock: fs::File,
}

impl PhoneStore {
    /// Opens the plain (unencrypted) store at `root`, creating it for `identity` if it does not
    /// exist. For tests and tools: an app opens its store with a key
    /// ([`PhoneStore::open_with_key`]). An encrypted store refuses to open this way
    /// ([`StoreError::KeyRequired`]).
    pub fn open(
        root: &Path,
        identity: DeviceIdentity,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        Self::open_with_key(root, identity, None, options)
    }

    /// Opens the store at `root`, creating it for `identity` if it does not exist, encrypted
    /// with `key` (`None`: plain, for tests and tools only; a production app always gives the
    /// key it keeps in the Android Keystore or the iOS Keychain).
    ///
    /// An encrypted store opened with another key fails with [`StoreError::WrongKey`], and
    /// without one with [`StoreError::KeyRequired`]; nothing is read or changed then. A plain
    /// store opened with a key is encrypted in place (crash-safe, file by file). A file sealed
    /// by another store is refused ([`StoreError::Foreign`]).
    pub fn open_with_key(
        root: &Path,
        identity: DeviceIdentity,
        key: Option<StoreKey>,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        rules::identifier(Field::Device, &identity.device).map_err(OperationError::from)?;
        let principal = match identity.role {
            StoreRole::Postman => Field::Postman,
            StoreRole::Customer => Field::Customer,
        };
        rules::identifier(principal, &identity.principal).map_err(OperationError::from)?;
        fs::create_dir_all(root.join("docs")).map_err(|e| StoreError::io(root, e))?;
        // One writer per folder: taken before anything is read, repaired or written.
        let lock_path = root.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    path: root.to_owned(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(&lock_path, e)),
        }
        remove_temp_files(root)?;
        remove_temp_files(&root.join("docs"))?;
        let meta_path = root.join("store.cbor");
        let (mut meta, sealer) = open_meta(&meta_path, identity, key.as_ref(), options.fsync)?;
        let sealer = sealer.map(Arc::new);
        if let (true, Some(sealer)) = (meta.sealing_plain_files, &sealer) {
            seal_plain_files(root, sealer, options.fsync)?;
            meta.sealing_plain_files = false;
            write_cbor(&meta_path, &meta, Some(sealer), options.fsync)?;
        }
        let manifest_path = root.join("manifest.cbor");
        let manifest = if manifest_path.exists() {
            Some(read_cbor(&manifest_path, sealer.as_deref())?)
        } else {
            None
        };
        let mut store = Self {
            root: root.to_owned(),
            identity: meta.identity,
            actor: ActorId::from(meta.actor),
            cursor: meta.cursor,
            history: meta.history,
            recheck: meta.recheck,
            manifest,
            docs: BTreeMap::new(),
            options,
            signer: None,
            sealer,
            _lock: lock,
        };
        let entries = fs::read_dir(root.join("docs")).map_err(|e| StoreError::io(root, e))?;
        for entry in entries {
            let path = entry.map_err(|e| StoreError::io(root, e))?.path();
            let Some(id) = doc_id_from_file(&path) else {
                continue;
            };
            let doc = open_doc(&path, store.sealer.clone(), options.fsync)?;
            store.docs.insert(id, doc);
        }
        Ok(store)
    }

    /// Whether the store's files are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.sealer.is_some()
    }

    /// The device this store belongs to.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// The documents held, in id order.
    pub fn document_ids(&self) -> impl Iterator<Item = &DocId> {
        self.docs.keys()
    }

    /// Whether the document is held.
    pub fn contains(&self, id: &DocId) -> bool {
        self.docs.contains_key(id)
    }

    /// A document, loaded from its log on first use.
    pub fn document(&mut self, id: &DocId) -> Result<&Automerge, StoreError> {
        Ok(&*self.loaded(id)?)
    }

    /// The round currently assigned to this device.
    pub fn manifest(&self) -> Option<&RoundManifest> {
        self.manifest.as_ref()
    }

    /// Replaces the round manifest (after the server published a new one).
    pub fn set_manifest(&mut self, manifest: RoundManifest) -> Result<(), StoreError> {
        manifest.validate().map_err(OperationError::from)?;
        self.write_file("manifest.cbor", &manifest)?;
        self.manifest = Some(manifest);
        Ok(())
    }

    /// Interactions not yet acknowledged by the server, in the order they were recorded per
    /// document.
    pub fn pending_interactions(&self) -> Vec<Interaction> {
        self.docs
            .values()
            .flat_map(|d| {
                let aside = d.aside.iter().map(|a| &a.interaction);
                aside.chain(&d.pending).cloned()
            })
            .collect()
    }

    /// Performs `op` on a document as one interaction, checks the resulting change exactly as the
    /// server will, and makes it durable before returning. Nothing is written if any step fails.
    ///
    /// `op` returns the interaction's id and the change hash (`None` when it changed nothing,
    /// e.g. an app retrying the same attempt id).
    pub fn commit<F>(
        &mut self,
        id: &DocId,
        kind: InteractionKind,
        op: F,
    ) -> Result<Option<Interaction>, StoreError>
    where
        F: FnOnce(&mut Automerge) -> Result<(String, Option<ChangeHash>), OperationError>,
    {
        let sender = self.sender();
        let current = self.loaded(id)?;
        // A clone, not a next: the device's own actor must author its changes.
        let mut next = current.clone();
        let (entry_id, hash) = op(&mut next)?;
        let Some(hash) = hash else { return Ok(None) };
        let change = next
            .get_change_by_hash(&hash)
            .ok_or_else(|| OperationError::Schema("the operation's change vanished".into()))?;
        check_applied(id, current, &next, std::slice::from_ref(&change), &sender)?;
        let interaction = Interaction {
            id: entry_id,
            doc: id.clone(),
            kind,
            change: hash.to_string(),
        };
        let signature = self.sign(id, &hash)?;
        let record = to_cbor(&LocalRecord {
            interaction: interaction.clone(),
            change: change.raw_bytes().to_vec(),
            signature: signature.clone(),
        });
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        stored.log.append(&[(kind::LOCAL, &record)])?;
        if let Some(signature) = signature {
            stored.signatures.insert(signature.hash.clone(), signature);
        }
        stored.doc = Some(next);
        stored.pending.push(interaction.clone());
        stored.records_since_snapshot += 1;
        self.maybe_compact(id)?;
        Ok(Some(interaction))
    }

    /// Records a delivery attempt on an item under a fresh attempt id.
    pub fn record_attempt(
        &mut self,
        item: &S10,
        attempt: &Attempt,
    ) -> Result<Interaction, StoreError> {
        self.commit_new_entry(&DocId::item(item), InteractionKind::Attempt, |doc, id| {
            operations::record_attempt(doc, id, attempt)
        })
    }

    /// Proposes an address correction for a delivery point under a fresh correction id.
    pub fn propose_correction(
        &mut self,
        delivery_point: &str,
        correction: &Correction,
    ) -> Result<Interaction, StoreError> {
        let id = DocId::delivery_point(delivery_point).map_err(OperationError::from)?;
        self.commit_new_entry(&id, InteractionKind::Correction, |doc, entry| {
            operations::propose_correction(doc, entry, correction)
        })
    }

    /// Records a customer's choice for an item under a fresh choice id.
    pub fn choose_for_item(
        &mut self,
        item: &S10,
        choice: &CustomerChoice,
    ) -> Result<Interaction, StoreError> {
        self.commit_new_entry(&DocId::item(item), InteractionKind::Choice, |doc, id| {
            operations::choose_for_item(doc, id, choice)
        })
    }

    /// Sets a delivery point's standing preferences; `None` when they were already so.
    pub fn set_preferences(
        &mut self,
        delivery_point: &str,
        preferences: &Preferences,
    ) -> Result<Option<Interaction>, StoreError> {
        let id = DocId::delivery_point(delivery_point).map_err(OperationError::from)?;
        self.commit(&id, InteractionKind::Preferences, |doc| {
            let hash = operations::set_preferences(doc, preferences)?;
            Ok((hash.map(|h| h.to_string()).unwrap_or_default(), hash))
        })
    }

    fn commit_new_entry<F>(
        &mut self,
        id: &DocId,
        kind: InteractionKind,
        op: F,
    ) -> Result<Interaction, StoreError>
    where
        F: FnOnce(&mut Automerge, &str) -> Result<Option<ChangeHash>, OperationError>,
    {
        let entry = operations::new_entry_id();
        self.commit(id, kind, |doc| {
            let hash = op(doc, &entry)?;
            Ok((entry.clone(), hash))
        })?
        .ok_or_else(|| {
            StoreError::Operation(OperationError::Schema(format!(
                "a fresh {kind:?} entry {entry} changed nothing"
            )))
        })
    }

    /// Sets a document's pending interactions aside, after the server refused them as
    /// `collision`: another change holds this device's actor and sequence number there, or the
    /// key of a record they create (one altered in transit and re-checksummed, or this store
    /// restored from an old copy), so these changes can never be accepted, and the server's
    /// change under that number could never load here either.
    ///
    /// The whole device moves to a fresh actor, so no later change collides again; the document
    /// goes back to what the server acknowledged, and asks for the rest; the interactions, with
    /// what they wrote, stay pending (in [`PhoneStore::pending_interactions`]) until
    /// [`PhoneStore::record_set_aside`] writes them again on the document as the server holds
    /// it. The log is rewritten atomically: a crash leaves the old pending changes (pushed,
    /// refused and set aside again next session) or the new state. If any interaction cannot be
    /// read back, nothing changes and the error is returned. Returns how many were set aside.
    pub fn set_aside(&mut self, id: &DocId) -> Result<usize, StoreError> {
        let stored = self
            .docs
            .get(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        let pending = stored.pending.clone();
        let mut aside = stored.aside.clone();
        let acked = stored.sync.acked_heads();
        let current = self.loaded(id)?;
        for interaction in pending {
            let content = PendingContent::read(current, &interaction)?;
            aside.push(SetAside {
                interaction,
                content,
            });
        }
        let base = current.fork_at(&acked).map_err(|e| StoreError::Corrupt {
            path: PathBuf::from(id.as_str()),
            reason: format!("the acknowledged heads are not in the document: {e}"),
        })?;
        let sync = DocSyncState {
            acked: acked.into(),
            need: crate::sync::Need::Have,
        };
        // The fresh actor is durable before any change can be written under it.
        self.set_actor(ActorId::random())?;
        let snapshot = base.save();
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        let held = stored.signatures.values().cloned().collect::<Vec<_>>();
        rewrite_log(&mut stored.log, &snapshot, &sync, &[], &aside, &held, &[])?;
        let count = aside.len();
        stored.records_since_snapshot = 0;
        stored.unloaded.clear();
        stored.doc = Some(base.with_actor(self.actor.clone()));
        stored.sync = sync;
        stored.pending.clear();
        stored.aside = aside;
        Ok(count)
    }

    /// Whether the document has interactions set aside, waiting for it to be fetched again.
    pub fn has_set_aside(&self, id: &DocId) -> bool {
        self.docs.get(id).is_some_and(|d| !d.aside.is_empty())
    }

    /// Writes the interactions set aside again on the document as the server now holds it
    /// (call once the document is fetched: its sync state needs nothing more). Each is
    /// acknowledged if the server holds it exactly, recorded again under a new id, or dropped
    /// with the reason when the document no longer allows it. The log is rewritten atomically.
    pub fn record_set_aside(&mut self, id: &DocId) -> Result<Vec<RecordedAgain>, StoreError> {
        let sender = self.sender();
        let aside = match self.docs.get(id) {
            Some(stored) if !stored.aside.is_empty() => stored.aside.clone(),
            Some(_) => return Ok(Vec::new()),
            None => return Err(StoreError::UnknownDocument(id.clone())),
        };
        let mut doc = self.loaded(id)?.clone();
        let snapshot = doc.save();
        let mut records = Vec::new();
        let mut signed = Vec::new();
        let mut outcomes = Vec::with_capacity(aside.len());
        for SetAside {
            interaction,
            content,
        } in aside
        {
            if content.held(&doc, &interaction.id)? {
                outcomes.push(RecordedAgain {
                    before: interaction,
                    outcome: AgainOutcome::Stored,
                });
                continue;
            }
            // A fresh id: the old one may be held by the change that collided, in this document
            // or another. Written on a copy, kept only if the rules accept it: what the document
            // no longer allows is reported, never left to fail every later session.
            let mut next = doc.clone();
            let recorded = content
                .record(&mut next, operations::new_entry_id())
                .map_err(|e| e.to_string())
                .and_then(|(entry, hash)| {
                    let Some(hash) = hash else { return Ok(None) };
                    let change = next
                        .get_change_by_hash(&hash)
                        .ok_or("the operation's change vanished")?;
                    check_applied(id, &doc, &next, std::slice::from_ref(&change), &sender)
                        .map_err(|e| e.to_string())?;
                    Ok(Some((entry, hash, change)))
                });
            let outcome = match recorded {
                Err(reason) => AgainOutcome::Refused(reason),
                Ok(None) => AgainOutcome::Stored,
                Ok(Some((entry, hash, change))) => {
                    doc = next;
                    let after = Interaction {
                        id: entry,
                        doc: id.clone(),
                        kind: interaction.kind,
                        change: hash.to_string(),
                    };
                    let signature = self.sign(id, &hash)?;
                    signed.extend(signature.clone());
                    records.push(to_cbor(&LocalRecord {
                        interaction: after.clone(),
                        change: change.raw_bytes().to_vec(),
                        signature,
                    }));
                    AgainOutcome::Recorded(after)
                }
            };
            outcomes.push(RecordedAgain {
                before: interaction,
                outcome,
            });
        }
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        let held = stored.signatures.values().cloned().collect::<Vec<_>>();
        let (sync, pending) = (&stored.sync, &stored.pending);
        rewrite_log(
            &mut stored.log,
            &snapshot,
            sync,
            pending,
            &[],
            &held,
            &records,
        )?;
        for signature in signed {
            stored.signatures.insert(signature.hash.clone(), signature);
        }
        stored.records_since_snapshot = records.len();
        stored.unloaded.clear();
        stored.doc = Some(doc);
        stored.aside.clear();
        stored
            .pending
            .extend(outcomes.iter().filter_map(|o| match &o.outcome {
                AgainOutcome::Recorded(after) => Some(after.clone()),
                _ => None,
            }));
        Ok(outcomes)
    }
    /// Moves the device to a new actor, durably, for every document.
    fn set_actor(&mut self, actor: ActorId) -> Result<(), StoreError> {
        let meta = StoreMeta {
            actor: actor.to_bytes().to_vec(),
            ..self.meta()
        };
        self.write_file("store.cbor", &meta)?;
        for doc in self.docs.values_mut().filter_map(|d| d.doc.as_mut()) {
            doc.set_actor(actor.clone());
        }
        self.actor = actor;
        Ok(())
    }

    /// The store's device as the validator's sender.
    fn sender(&self) -> Sender {
        Sender {
            role: self.identity.role.role(),
            principal: self.identity.principal.clone(),
            device: Some(self.identity.device.clone()),
            scope: Scope::All,
        }
    }

    /// Gives the store the device's key: every change recorded from now on is signed with it,
    /// and its signature is stored with the change and sent with it (the server checks it
    /// against the key registered for the device). Only a postman's store signs: a customer's
    /// app has no registered device key, and its changes stay its token's.
    pub fn set_signer(&mut self, signer: Arc<dyn ChangeSigner>) {
        self.signer = Some(signer);
    }

    /// The device's signature of its change `hash` to `id`, when it has a key.
    fn sign(&self, id: &DocId, hash: &ChangeHash) -> Result<Option<ChangeSignature>, StoreError> {
        // Postmen's devices sign; a customer's app has no registered device key.
        let Some(signer) = self
            .signer
            .as_ref()
            .filter(|_| self.identity.role == StoreRole::Postman)
        else {
            return Ok(None);
        };
        let who = Signer::Device {
            device: self.identity.device.clone(),
        };
        let signature = signer.sign(&signing::message(id, hash, &who))?;
        Ok(Some(ChangeSignature {
            hash: hash.as_ref().to_vec(),
            signer: who,
            signature,
        }))
    }

    /// The signatures held of changes `hashes` of document `id`, when every one is held;
    /// `None` when one is not.
    pub fn signatures_of(&self, id: &DocId, hashes: &[ChangeHash]) -> Option<Vec<ChangeSignature>> {
        let held = &self.docs.get(id)?.signatures;
        hashes
            .iter()
            .map(|h| held.get(h.as_ref()).cloned())
            .collect()
    }

    /// The signatures held of those of changes `hashes` of document `id` that are signed, for a
    /// push (the server takes an unsigned change as the uploader's own). A store without a key
    /// pushes none, as older phones did.
    pub fn push_signatures(&self, id: &DocId, hashes: &[ChangeHash]) -> Vec<ChangeSignature> {
        let Some(stored) = self.docs.get(id).filter(|_| self.signer.is_some()) else {
            return Vec::new();
        };
        hashes
            .iter()
            .filter_map(|h| stored.signatures.get(h.as_ref()).cloned())
            .collect()
    }

    /// Makes `interactions` pending on document `id` (another phone's, carried by this one),
    /// durably.
    fn keep_pending(&mut self, id: &DocId, interactions: &[Interaction]) -> Result<(), StoreError> {
        if interactions.is_empty() {
            return Ok(());
        }
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        let records: Vec<Vec<u8>> = interactions.iter().map(to_cbor).collect();
        let records: Vec<(u8, &[u8])> = records
            .iter()
            .map(|r| (kind::INTERACTION, r.as_slice()))
            .collect();
        stored.log.append(&records)?;
        stored.records_since_snapshot += records.len();
        stored.pending.extend(interactions.iter().cloned());
        Ok(())
    }

    /// Keeps signatures the server sent of changes of document `id` (durable before the changes
    /// they sign are applied: a crash in between leaves a signature without its change, which
    /// is harmless).
    pub fn keep_signatures(
        &mut self,
        id: &DocId,
        signatures: Vec<ChangeSignature>,
    ) -> Result<(), StoreError> {
        let Some(stored) = self.docs.get_mut(id) else {
            // Kept with the document's first chunks ([`PhoneStore::apply_remote`] creates it).
            let path = self.doc_path(id);
            let doc = open_doc(&path, self.sealer.clone(), self.options.fsync)?;
            self.docs.insert(id.clone(), doc);
            return self.keep_signatures(id, signatures);
        };
        let new: Vec<ChangeSignature> = signatures
            .into_iter()
            .filter(|s| !stored.signatures.contains_key(&s.hash))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        stored.log.append(&[(kind::SIGNATURES, &to_cbor(&new))])?;
        stored.records_since_snapshot += 1;
        stored
            .signatures
            .extend(new.into_iter().map(|s| (s.hash.clone(), s)));
        Ok(())
    }

    /// The server's sync cursor for this device.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// The server history the cursor was issued in, once a server named one.
    pub fn history(&self) -> Option<u64> {
        self.history
    }

    /// Records the server's sync cursor and the history it was issued in (`None`: a server that
    /// names none). `recheck` means the server could not read news from the cursor held (one of
    /// another history: it was restored from a backup; or one below its pruned change log, see
    /// `SyncResponse::recheck`): every held document is then to be re-checked with it
    /// ([`PhoneStore::recheck_pending`]), durably, before the new cursor is used.
    pub fn set_cursor(
        &mut self,
        cursor: u64,
        history: Option<u64>,
        recheck: bool,
    ) -> Result<(), StoreError> {
        let history = history.or(self.history);
        // The server says `recheck` for a cursor of another history too: one rule, decided there.
        let recheck = self.recheck || recheck;
        if self.cursor == Some(cursor) && self.history == history && self.recheck == recheck {
            return Ok(());
        }
        let meta = StoreMeta {
            cursor: Some(cursor),
            history,
            recheck,
            ..self.meta()
        };
        self.write_file("store.cbor", &meta)?;
        (self.cursor, self.history, self.recheck) = (Some(cursor), history, recheck);
        Ok(())
    }

    /// Whether every held document is to be re-checked with the server (it answered in another
    /// history than the one the store's cursor was issued in).
    pub fn recheck_pending(&self) -> bool {
        self.recheck
    }

    /// Records that every held document was re-checked with the server.
    pub fn finish_recheck(&mut self) -> Result<(), StoreError> {
        if !self.recheck {
            return Ok(());
        }
        let meta = StoreMeta {
            recheck: false,
            ..self.meta()
        };
        self.write_file("store.cbor", &meta)?;
        self.recheck = false;
        Ok(())
    }

    /// Replaces `store.cbor` or `manifest.cbor` atomically, sealed if the store is.
    fn write_file<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let path = self.root.join(name);
        write_cbor(&path, value, self.sealer.as_deref(), self.options.fsync)
    }

    /// What `store.cbor` holds now.
    fn meta(&self) -> StoreMeta {
        StoreMeta {
            format: STORE_FORMAT,
            identity: self.identity.clone(),
            actor: self.actor.to_bytes().to_vec(),
            cursor: self.cursor,
            history: self.history,
            recheck: self.recheck,
            sealing_plain_files: false,
        }
    }

    /// The sync state of a document (default for a document never synced).
    pub fn sync_state(&self, id: &DocId) -> Option<&DocSyncState> {
        self.docs.get(id).map(|d| &d.sync)
    }

    /// Applies chunks received from the server (a whole document or changes) durably, creating
    /// the document if it is new, then records the sync state `settle` derives from the result.
    /// Returns the interactions this acknowledged.
    pub fn apply_remote<F>(
        &mut self,
        id: &DocId,
        chunks: &[Vec<u8>],
        settle: F,
    ) -> Result<Vec<Interaction>, StoreError>
    where
        F: FnOnce(&Automerge) -> DocSyncState,
    {
        if !self.docs.contains_key(id) {
            let path = self.doc_path(id);
            let doc = open_doc(&path, self.sealer.clone(), self.options.fsync)?;
            self.docs.insert(id.clone(), doc);
        }
        let actor = self.actor.clone();
        let doc = self.loaded(id)?;
        let mut next = doc.fork().with_actor(actor);
        for chunk in chunks {
            // Checked first: Automerge's incremental load skips a chunk whose checksum fails
            // and says nothing.
            crate::sync::check_chunk(chunk).map_err(|e| {
                OperationError::Schema(format!("the server sent a change that is damaged: {e}"))
            })?;
            next.load_incremental(chunk).map_err(|e| {
                OperationError::Schema(format!("the server sent changes that do not load: {e}"))
            })?;
        }
        if !next.get_heads().is_empty() {
            operations::check_document(id, &next)?;
        }
        let sync = settle(&next);
        let sync_bytes = to_cbor(&sync);
        let mut records: Vec<(u8, &[u8])> = chunks
            .iter()
            .map(|c| (kind::REMOTE, c.as_slice()))
            .collect();
        records.push((kind::SYNC, &sync_bytes));
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        stored.log.append(&records)?;
        stored.records_since_snapshot += records.len();
        stored.doc = Some(next);
        stored.sync = sync;
        let acked = self.acknowledge(id)?;
        self.maybe_compact(id)?;
        Ok(acked)
    }

    /// Records a new sync state for a document (e.g. "refused", "needs resync").
    pub fn set_sync_state(
        &mut self,
        id: &DocId,
        sync: DocSyncState,
    ) -> Result<Vec<Interaction>, StoreError> {
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        if stored.sync == sync {
            return Ok(Vec::new());
        }
        stored.log.append(&[(kind::SYNC, &to_cbor(&sync))])?;
        stored.records_since_snapshot += 1;
        stored.sync = sync;
        self.acknowledge(id)
    }

    /// Rewrites every document log as one snapshot.
    pub fn compact_all(&mut self) -> Result<(), StoreError> {
        let ids: Vec<DocId> = self.docs.keys().cloned().collect();
        for id in ids {
            self.compact(&id)?;
        }
        Ok(())
    }

    /// Moves interactions whose change the server acknowledged out of the pending list.
    fn acknowledge(&mut self, id: &DocId) -> Result<Vec<Interaction>, StoreError> {
        let Some(stored) = self.docs.get(id) else {
            return Err(StoreError::UnknownDocument(id.clone()));
        };
        if stored.pending.is_empty() {
            return Ok(Vec::new());
        }
        let acked_heads = stored.sync.acked_heads();
        let unacked: HashSet<String> = self
            .loaded(id)?
            .get_changes(&acked_heads)
            .iter()
            .map(|c| c.hash().to_string())
            .collect();
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        let (acked, pending): (Vec<Interaction>, Vec<Interaction>) =
            std::mem::take(&mut stored.pending)
                .into_iter()
                .partition(|i| !unacked.contains(&i.change));
        stored.pending = pending;
        if acked.is_empty() {
            return Ok(acked);
        }
        let ids: Vec<&str> = acked.iter().map(|i| i.id.as_str()).collect();
        if let Err(e) = stored.log.append(&[(kind::ACKED, &to_cbor(&ids))]) {
            stored.pending.extend(acked);
            return Err(e);
        }
        stored.records_since_snapshot += 1;
        Ok(acked)
    }

    fn maybe_compact(&mut self, id: &DocId) -> Result<(), StoreError> {
        if self
            .docs
            .get(id)
            .is_some_and(|d| d.records_since_snapshot >= COMPACT_AFTER_RECORDS)
        {
            self.compact(id)?;
        }
        Ok(())
    }

    fn compact(&mut self, id: &DocId) -> Result<(), StoreError> {
        let snapshot = self.loaded(id)?.save();
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        let held = stored.signatures.values().cloned().collect::<Vec<_>>();
        let (sync, pending, aside) = (&stored.sync, &stored.pending, &stored.aside);
        rewrite_log(&mut stored.log, &snapshot, sync, pending, aside, &held, &[])?;
        stored.records_since_snapshot = 0;
        Ok(())
    }

    fn loaded(&mut self, id: &DocId) -> Result<&mut Automerge, StoreError> {
        let actor = self.actor.clone();
        let stored = self
            .docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))?;
        if stored.doc.is_none() {
            let mut doc = Automerge::new().with_actor(actor);
            for chunk in stored.unloaded.drain(..) {
                doc.load_incremental(&chunk)
                    .map_err(|e| StoreError::Corrupt {
                        path: PathBuf::from(id.as_str()),
                        reason: format!("a stored change does not load: {e}"),
                    })?;
            }
            stored.doc = Some(doc);
        }
        stored
            .doc
            .as_mut()
            .ok_or_else(|| StoreError::UnknownDocument(id.clone()))
    }

    fn doc_path(&self, id: &DocId) -> PathBuf {
        self.root
            .join("docs")
            .join(format!("{}.log", id.as_str().replacen(':', "_", 1)))
    }
}

fn doc_id_from_file(path: &Path) -> Option<DocId> {
    let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
    DocId::parse(&name.replacen('_', ":", 1)).ok()
}

fn open_doc(
    path: &Path,
    sealer: Option<Arc<Sealer>>,
    fsync: bool,
) -> Result<StoredDoc, StoreError> {
    let (log, records) = RecordLog::open(path, sealer, fsync)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let mut doc = StoredDoc {
        log,
        unloaded: Vec::new(),
        doc: None,
        sync: DocSyncState::default(),
        pending: Vec::new(),
        aside: Vec::new(),
        signatures: HashMap::new(),
        records_since_snapshot: 0,
    };
    for record in records {
        doc.records_since_snapshot += 1;
        match record.kind {
            kind::SNAPSHOT => {
                doc.unloaded.clear();
                doc.unloaded.push(record.payload);
                doc.records_since_snapshot = 0;
            }
            kind::REMOTE => doc.unloaded.push(record.payload),
            kind::LOCAL => {
                let local: LocalRecord = from_cbor(&record.payload).map_err(corrupt)?;
                doc.unloaded.push(local.change);
                doc.pending.push(local.interaction);
                if let Some(signature) = local.signature {
                    doc.signatures.insert(signature.hash.clone(), signature);
                }
            }
            kind::SIGNATURES => {
                let signatures: Vec<ChangeSignature> =
                    from_cbor(&record.payload).map_err(corrupt)?;
                doc.signatures
                    .extend(signatures.into_iter().map(|s| (s.hash.clone(), s)));
            }
            kind::SYNC => doc.sync = from_cbor(&record.payload).map_err(corrupt)?,
            kind::INTERACTION => doc
                .pending
                .push(from_cbor(&record.payload).map_err(corrupt)?),
            kind::ASIDE => doc.aside = from_cbor(&record.payload).map_err(corrupt)?,
            kind::ACKED => {
                let acked: Vec<String> = from_cbor(&record.payload).map_err(corrupt)?;
                doc.pending.retain(|i| !acked.contains(&i.id));
            }
            other => return Err(corrupt(format!("unknown record kind {other}"))),
        }
    }
    Ok(doc)
}

/// Replaces a document's log, atomically, with a snapshot, its sync state, the interactions
/// pending in the snapshot, those set aside, the signatures held, and new local changes on top
/// of the snapshot.
fn rewrite_log(
    log: &mut RecordLog,
    snapshot: &[u8],
    sync: &DocSyncState,
    pending: &[Interaction],
    aside: &[SetAside],
    signatures: &[ChangeSignature],
    local: &[Vec<u8>],
) -> Result<(), StoreError> {
    let sync = to_cbor(sync);
    let pending: Vec<Vec<u8>> = pending.iter().map(to_cbor).collect();
    let aside = (!aside.is_empty()).then(|| to_cbor(&aside));
    let signatures = (!signatures.is_empty()).then(|| to_cbor(&signatures));
    let mut records: Vec<(u8, &[u8])> = vec![(kind::SNAPSHOT, snapshot), (kind::SYNC, &sync)];
    records.extend(signatures.iter().map(|s| (kind::SIGNATURES, s.as_slice())));
    records.extend(pending.iter().map(|p| (kind::INTERACTION, p.as_slice())));
    records.extend(aside.iter().map(|a| (kind::ASIDE, a.as_slice())));
    records.extend(local.iter().map(|l| (kind::LOCAL, l.as_slice())));
    log.rewrite(&records)
}

fn remove_temp_files(dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let path = entry.map_err(|e| StoreError::io(dir, e))?.path();
        if path
            .to_str()
            .is_some_and(|p| p.ends_with(atomic::TEMP_SUFFIX))
        {
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        }
    }
    Ok(())
}

fn to_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Serialising our own plain structs into a Vec cannot fail.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    ciborium::from_reader(bytes).map_err(|e| format!("unreadable record: {e}"))
}

/// Opens `store.cbor` (creating it if it does not exist) with the key given, and returns it
/// with the store's sealing. A plain store opened with a key gets a sealed `store.cbor`, marked
/// [`StoreMeta::sealing_plain_files`], before anything else is sealed.
fn open_meta(
    path: &Path,
    identity: DeviceIdentity,
    key: Option<&StoreKey>,
    fsync: bool,
) -> Result<(StoreMeta, Option<Sealer>), StoreError> {
    if !path.exists() {
        let sealer = key.map(|key| Sealer::create(key, path)).transpose()?;
        let meta = StoreMeta {
            format: STORE_FORMAT,
            identity,
            actor: ActorId::random().to_bytes().to_vec(),
            cursor: None,
            history: None,
            recheck: false,
            sealing_plain_files: false,
        };
        write_cbor(path, &meta, sealer.as_ref(), fsync)?;
        return Ok((meta, sealer));
    }
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let plain = matches!(Header::read(&bytes), Header::Plain);
    let sealer = match key {
        Some(key) if plain => Some(Sealer::create(key, path)?),
        Some(key) => Some(Sealer::for_store(key, path, &bytes)?),
        None => None,
    };
    let reading = if plain { None } else { sealer.as_ref() };
    let mut meta: StoreMeta = decode_cbor(path, sealed::open_file(reading, path, bytes)?)?;
    if meta.format != STORE_FORMAT {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("store format {} is not {STORE_FORMAT}", meta.format),
        });
    }
    if meta.identity != identity {
        return Err(StoreError::WrongDevice {
            expected: format!("{} ({})", identity.device, identity.principal),
            found: format!("{} ({})", meta.identity.device, meta.identity.principal),
        });
    }
    if let (true, Some(sealer)) = (plain, &sealer) {
        meta.sealing_plain_files = true;
        write_cbor(path, &meta, Some(sealer), fsync)?;
    }
    Ok((meta, sealer))
}

/// Seals every file of a plain store but `store.cbor` (sealed first), each atomically; files
/// already sealed (by a run a crash interrupted) are left as they are.
fn seal_plain_files(root: &Path, sealer: &Arc<Sealer>, fsync: bool) -> Result<(), StoreError> {
    let manifest = root.join("manifest.cbor");
    if manifest.exists() {
        sealed::seal_file_in_place(&manifest, sealer, fsync)?;
    }
    let docs = root.join("docs");
    for entry in fs::read_dir(&docs).map_err(|e| StoreError::io(&docs, e))? {
        let path = entry.map_err(|e| StoreError::io(&docs, e))?.path();
        if doc_id_from_file(&path).is_some() {
            RecordLog::seal_in_place(&path, sealer.clone(), fsync)?;
        }
    }
    proofs::seal_plain_proofs(root, sealer, fsync)
}

fn decode_cbor<T: DeserializeOwned>(path: &Path, bytes: Vec<u8>) -> Result<T, StoreError> {
    from_cbor(&bytes).map_err(|reason| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    })
}

fn read_cbor<T: DeserializeOwned>(path: &Path, sealer: Option<&Sealer>) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    decode_cbor(path, sealed::open_file(sealer, path, bytes)?)
}

fn write_cbor<T: Serialize>(
    path: &Path,
    value: &T,
    sealer: Option<&Sealer>,
    fsync: bool,
) -> Result<(), StoreError> {
    atomic::write(
        path,
        &sealed::seal_file(sealer, path, &to_cbor(value))?,
        fsync,
    )
}
