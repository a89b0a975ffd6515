//! The store's calls that touch the disk or take long, as Kotlin `suspend` and Swift `async`
//! functions (and Python coroutines), on [`AsyncFieldStore`]: a facade over the same
//! [`FieldStore`], so both kinds of call can be mixed on one store.
//!
//! uniffi polls a Rust future on the thread of the app's executor (a Kotlin dispatcher, a Swift
//! task, Python's event loop), so the future must never block it. Each call here runs the
//! blocking call of [`FieldStore`] on a thread of the `blocking` crate's pool and awaits its
//! end: the pool reuses its threads (no thread started per call), grows when calls wait on one
//! another (so an observer that calls the store from a sync answer cannot starve it), and lets
//! idle threads go. The store's lock still orders the calls, as for the blocking ones.

use std::sync::Arc;
use std::time::SystemTime;

use tournee_sync_core::model::{Preferences, Proof, ProofKind};
use tournee_sync_core::store::{ProofAnswer, ProofUpload, QueuedProof, StoreRole};

use crate::background::{self, RetryPolicy, SyncSummary, SyncTransport};
use crate::error::TourneeError;
use crate::model::Choice;
use crate::screens::{
    AttemptInput, CorrectionInput, Door, PendingInteraction, RoundSummary, Stop, SyncProgress,
};
use crate::store::FieldStore;

/// Runs `call` on `store` on a pool thread and awaits its result, leaving the awaiting thread
/// free. A call cancelled before its thread starts it never runs; one already running ends
/// whole (every write is all or nothing), its result dropped.
pub(crate) async fn off_the_callers_thread<T, F>(
    store: &Arc<FieldStore>,
    call: F,
) -> Result<T, TourneeError>
where
    T: Send + 'static,
    F: FnOnce(&FieldStore) -> Result<T, TourneeError> + Send + 'static,
{
    let store = Arc::clone(store);
    blocking::unblock(move || call(&store)).await
}

/// The same store as a `FieldStore`, with each call that touches the disk or takes long as a
/// Kotlin `suspend` function / Swift `async` function, which never blocks the calling thread:
/// call them from the main thread or any coroutine or task. Cancelling a call that writes
/// (its coroutine or task) leaves the write either done whole or not done at all.
///
/// Make one with `AsyncFieldStore.open(...)`, or around an open `FieldStore`; `blocking()`
/// gives that `FieldStore` back for the quick calls (`round`, `setObserver`, `abandonSync`) and
/// for worker threads.
#[derive(Debug, uniffi::Object)]
pub struct AsyncFieldStore {
    store: Arc<FieldStore>,
}

#[uniffi::export]
impl AsyncFieldStore {
    /// Opens the store in the directory `path`, as `FieldStore.open` does (with the store's
    /// encryption `key`), without blocking the caller while it reads the store from disk.
    #[uniffi::constructor(default(key = None))]
    pub async fn open(
        path: String,
        device: String,
        principal: String,
        role: StoreRole,
        key: Option<Vec<u8>>,
    ) -> Result<Arc<Self>, TourneeError> {
        let store =
            blocking::unblock(move || FieldStore::open(path, device, principal, role, key)).await?;
        Ok(Self::new(store))
    }

    /// The async calls of a store already open.
    #[uniffi::constructor]
    pub fn new(store: Arc<FieldStore>) -> Arc<Self> {
        Arc::new(Self { store })
    }

    /// The same store with its blocking calls, for the quick ones and for worker threads.
    pub fn blocking(&self) -> Arc<FieldStore> {
        Arc::clone(&self.store)
    }

    /// Loads a round, as `FieldStore.loadRound`.
    pub async fn load_round(&self, manifest_json: String) -> Result<RoundSummary, TourneeError> {
        off_the_callers_thread(&self.store, move |s| s.load_round(manifest_json)).await
    }

    /// The round's stops in delivery order, as `FieldStore.stops`.
    pub async fn stops(&self) -> Result<Vec<Stop>, TourneeError> {
        off_the_callers_thread(&self.store, FieldStore::stops).await
    }

    /// The door screen for an item, as `FieldStore.door`.
    pub async fn door(&self, item: String) -> Result<Door, TourneeError> {
        off_the_callers_thread(&self.store, move |s| s.door(item)).await
    }

    /// Records a delivery attempt, durably, as `FieldStore.recordAttempt`.
    pub async fn record_attempt(
        &self,
        item: String,
        attempt: AttemptInput,
    ) -> Result<PendingInteraction, TourneeError> {
        off_the_callers_thread(&self.store, move |s| s.record_attempt(item, attempt)).await
    }

    /// Proposes an address correction, durably, as `FieldStore.proposeCorrection`.
    pub async fn propose_correction(
        &self,
        delivery_point: String,
        correction: CorrectionInput,
    ) -> Result<PendingInteraction, TourneeError> {
        off_the_callers_thread(&self.store, move |s| {
            s.propose_correction(delivery_point, correction)
        })
        .await
    }

    /// A customer's choice for one of their items, durably, as `FieldStore.chooseForItem`.
    pub async fn choose_for_item(
        &self,
        item: String,
        choice: Choice,
        made_at: SystemTime,
    ) -> Result<PendingInteraction, TourneeError> {
        off_the_callers_thread(&self.store, move |s| {
            s.choose_for_item(item, choice, made_at)
        })
        .await
    }

    /// A customer's standing preferences, durably, as `FieldStore.setPreferences`; null (nil)
    /// when nothing changed.
    pub async fn set_preferences(
        &self,
        delivery_point: String,
        preferences: Preferences,
    ) -> Result<Option<PendingInteraction>, TourneeError> {
        off_the_callers_thread(&self.store, move |s| {
            s.set_preferences(delivery_point, preferences)
        })
        .await
    }

    /// Everything recorded here that the server has not acknowledged yet.
    pub async fn pending_interactions(&self) -> Result<Vec<PendingInteraction>, TourneeError> {
        off_the_callers_thread(&self.store, FieldStore::pending_interactions).await
    }

    /// The body of the next `POST /v1/sync`, or null (nil) when the sync is complete, as
    /// `FieldStore.syncRequest`.
    pub async fn sync_request(&self) -> Result<Option<Vec<u8>>, TourneeError> {
        off_the_callers_thread(&self.store, FieldStore::sync_request).await
    }

    /// Applies the server's answer to the last sync request, as `FieldStore.applySyncAnswer`:
    /// the call that takes long on a first download (about half a second for a round of 450
    /// documents, most of it writing them durably).
    pub async fn apply_sync_answer(&self, answer: Vec<u8>) -> Result<SyncProgress, TourneeError> {
        off_the_callers_thread(&self.store, move |s| s.apply_sync_answer(answer)).await
    }

    /// Keeps a photo or signature in the upload queue, durably, as `FieldStore.queueProof`.
    pub async fn queue_proof(
        &self,
        kind: ProofKind,
        bytes: Vec<u8>,
    ) -> Result<Proof, TourneeError> {
        off_the_callers_thread(&self.store, move |s| s.queue_proof(kind, bytes)).await
    }

    /// Copies a photo or signature file into the upload queue, as `FieldStore.queueProofFile`.
    pub async fn queue_proof_file(
        &self,
        kind: ProofKind,
        path: String,
    ) -> Result<Proof, TourneeError> {
        off_the_callers_thread(&self.store, move |s| s.queue_proof_file(kind, path)).await
    }

    /// The proofs waiting in the upload queue, as `FieldStore.queuedProofs`.
    pub async fn queued_proofs(&self) -> Result<Vec<QueuedProof>, TourneeError> {
        off_the_callers_thread(&self.store, FieldStore::queued_proofs).await
    }

    /// The request that uploads a queued proof, as `FieldStore.proofUpload`.
    pub async fn proof_upload(&self, sha256: String) -> Result<ProofUpload, TourneeError> {
        off_the_callers_thread(&self.store, move |s| s.proof_upload(sha256)).await
    }

    /// Applies the server's answer to a proof's upload, as `FieldStore.applyProofAnswer`.
    pub async fn apply_proof_answer(
        &self,
        sha256: String,
        status: u16,
        body: Vec<u8>,
    ) -> Result<ProofAnswer, TourneeError> {
        off_the_callers_thread(&self.store, move |s| {
            s.apply_proof_answer(sha256, status, body)
        })
        .await
    }

    /// The whole sync, then the upload of the proofs it made ready, through the app's
    /// `transport`, retrying what may succeed later as `policy` allows: see
    /// `FieldStore.syncWith`. Cancelling the coroutine or task stops it at once (the request
    /// in flight is cancelled too); what was applied stays, and the next sync carries on.
    pub async fn sync_with(
        &self,
        transport: Arc<dyn SyncTransport>,
        policy: RetryPolicy,
    ) -> Result<SyncSummary, TourneeError> {
        background::sync_with(Arc::clone(&self.store), transport, policy).await
    }
}
