//! [`FieldStore`]: the phone's store, one object for the whole app, safe to share between the
//! UI thread and a background sync worker.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::model::{Attempt, Correction, CustomerChoice, Preferences};
use tournee_sync_core::rules::{Field, Violation};
use tournee_sync_core::store::{DeviceIdentity, PhoneStore, StoreKey, StoreOptions, StoreRole};
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::SyncExchange;
use tournee_sync_core::{views, S10};

use zeroize::Zeroizing;

use crate::calendar;
use crate::error::TourneeError;
use crate::keys::{DeviceSigner, ForeignSigner, SoftwareKey};
use crate::model::Choice;
use crate::observer::SyncObserver;
use crate::screens::{
    AttemptInput, CorrectionInput, Door, PendingInteraction, RoundSummary, Stop, SyncProgress,
};

/// Whose phone a store is on: it decides what the store may record.
#[uniffi::remote(Enum)]
pub enum StoreRole {
    /// A postman's phone: rounds, doors, attempts and corrections.
    Postman,
    /// A customer's app: choices for their items and preferences for their addresses.
    Customer,
}

/// The store and the sync in progress, behind one lock so a sync answer and a tap at the door
/// never interleave inside the core.
pub(crate) struct Inner {
    pub(crate) store: PhoneStore,
    exchange: Option<SyncExchange>,
}

/// One device's documents on disk: the round, the doors, what was recorded there, and the sync
/// with the server. Open one per device and share it: it is safe to call from any thread (the
/// UI and a background sync worker). Every call is durable when it returns, and blocks while it
/// reads or writes the disk: call it off the main thread. Every failure throws a
/// `TourneeException` (Kotlin) / `TourneeError` (Swift) whose case says what to do.
#[derive(uniffi::Object)]
pub struct FieldStore {
    inner: Mutex<Inner>,
    observer: RwLock<Option<Arc<dyn SyncObserver>>>,
}

impl std::fmt::Debug for FieldStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldStore").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl FieldStore {
    /// Opens the store in the directory `path` (e.g. under the app's private files), creating
    /// it on first use. The store remembers its `device` and `principal` (the postman's or
    /// customer's id, as in their token) and refuses to open for anyone else (`WrongOwner`);
    /// a folder another store has open is `InUse`.
    ///
    /// `key` encrypts everything the store writes (32 bytes, kept in the Android Keystore or the
    /// iOS Keychain: generate it once, on first launch). A production app always gives it;
    /// without it the store is written in plain files (tests only). A store created with a key
    /// opens only with that key: another key, or none, fails with `WrongKey` and changes
    /// nothing (never wipe the store then: find the right key). A store created without a key
    /// and opened with one is encrypted in place.
    #[uniffi::constructor(default(key = None))]
    pub fn open(
        path: String,
        device: String,
        principal: String,
        role: StoreRole,
        key: Option<Vec<u8>>,
    ) -> Result<Arc<Self>, TourneeError> {
        if path.is_empty() {
            return Err(invalid(Field::Path, "the store needs a directory"));
        }
        let identity = DeviceIdentity {
            device,
            principal,
            role,
        };
        let key = key
            .map(|bytes| StoreKey::from_bytes(&Zeroizing::new(bytes)))
            .transpose()?;
        let store =
            PhoneStore::open_with_key(Path::new(&path), identity, key, StoreOptions::default())?;
        Ok(Arc::new(Self {
            inner: Mutex::new(Inner {
                store,
                exchange: None,
            }),
            observer: RwLock::new(None),
        }))
    }

    /// Signs every interaction recorded from now on with the device's key, kept by the app's
    /// platform (call it right after `open`, on every start; register the key's public half
    /// with the server once, `PUT /v1/devices/signing-key`). Changes recorded without a key are
    /// unsigned, as older apps' were; a server that requires signatures refuses them.
    pub fn use_signer(&self, signer: Arc<dyn DeviceSigner>) -> Result<(), TourneeError> {
        self.lock()?
            .store
            .set_signer(Arc::new(ForeignSigner(signer)));
        Ok(())
    }

    /// Signs every interaction recorded from now on with a key held in memory (tests and
    /// tools; an app uses `useSigner` with its platform's key store).
    pub fn use_software_key(&self, key: Arc<SoftwareKey>) -> Result<(), TourneeError> {
        self.lock()?.store.set_signer(Arc::new(key.key.clone()));
        Ok(())
    }

    /// Loads a round as `GET /v1/rounds` lists it (`manifestJson`: one element of the array,
    /// as JSON text) and returns its summary. The next sync downloads its documents.
    pub fn load_round(&self, manifest_json: String) -> Result<RoundSummary, TourneeError> {
        let manifest: RoundManifest =
            serde_json::from_str(&manifest_json).map_err(|e| TourneeError::InvalidInput {
                field: "manifest".into(),
                reason: e.to_string(),
            })?;
        manifest.validate()?;
        let mut inner = self.lock()?;
        let identity = inner.store.identity();
        if manifest.device != identity.device {
            return Err(TourneeError::NotAllowed {
                reason: format!(
                    "round {} is assigned to device {}, not {}",
                    manifest.round_id, manifest.device, identity.device
                ),
            });
        }
        let summary = RoundSummary::from(&manifest);
        inner.store.set_manifest(manifest)?;
        Ok(summary)
    }

    /// The round loaded on the phone; null (nil in Swift) before `loadRound`.
    pub fn round(&self) -> Result<Option<RoundSummary>, TourneeError> {
        Ok(self.lock()?.store.manifest().map(RoundSummary::from))
    }

    /// The round's stops in delivery order; an empty list before `loadRound`.
    pub fn stops(&self) -> Result<Vec<Stop>, TourneeError> {
        let mut inner = self.lock()?;
        Ok(views::stops(&mut inner.store)?
            .into_iter()
            .map(Stop::from)
            .collect())
    }

    /// The door screen for an item, by its S10 number (e.g. `RR123456785FR`). `NotFound`
    /// until the item's document is synced.
    pub fn door(&self, item: String) -> Result<Door, TourneeError> {
        let item = S10::parse(&item)?;
        let mut inner = self.lock()?;
        views::at_door(&mut inner.store, &item)?.try_into()
    }

    /// Records a delivery attempt on an item (its S10 number), checked against the item's
    /// requirements: an outcome the door forbids is `InvalidInput` naming `outcome`, an item
    /// already delivered `NotAllowed`. Returns the interaction to follow until the server
    /// acknowledges it.
    pub fn record_attempt(
        &self,
        item: String,
        attempt: AttemptInput,
    ) -> Result<PendingInteraction, TourneeError> {
        let item = S10::parse(&item)?;
        let mut inner = self.lock()?;
        let identity = inner.store.identity().clone();
        let attempt = Attempt {
            outcome: attempt.outcome,
            recorded_at_ms: calendar::unix_ms(attempt.recorded_at, "recorded_at_ms")?,
            device: identity.device,
            postman: identity.principal,
            position: attempt.position,
            notice: attempt.notice.map(Into::into),
            proofs: attempt.proofs,
        };
        Ok(inner.store.record_attempt(&item, &attempt)?.into())
    }

    /// Proposes an address correction for a delivery point (its id, as `Stop.deliveryPoint`
    /// gives it), for the back office to review.
    pub fn propose_correction(
        &self,
        delivery_point: String,
        correction: CorrectionInput,
    ) -> Result<PendingInteraction, TourneeError> {
        let mut inner = self.lock()?;
        let identity = inner.store.identity().clone();
        let correction = Correction {
            proposed: correction.proposed,
            proposed_by: identity.principal,
            device: identity.device,
            proposed_at_ms: calendar::unix_ms(correction.proposed_at, "proposed_at_ms")?,
        };
        Ok(inner
            .store
            .propose_correction(&delivery_point, &correction)?
            .into())
    }

    /// Records a customer's choice for one of their items (customer stores only), made at
    /// `madeAt` by the device's clock. A choice the item's requirements forbid is
    /// `InvalidInput`; one for an item already delivered `NotAllowed`.
    pub fn choose_for_item(
        &self,
        item: String,
        choice: Choice,
        made_at: SystemTime,
    ) -> Result<PendingInteraction, TourneeError> {
        let item = S10::parse(&item)?;
        let made_at_ms = calendar::unix_ms(made_at, "made_at_ms")?;
        let mut inner = self.lock()?;
        let choice = CustomerChoice {
            choice: choice.into(),
            made_at_ms,
            made_by: inner.store.identity().principal.clone(),
        };
        Ok(inner.store.choose_for_item(&item, &choice)?.into())
    }

    /// Sets a customer's standing preferences for a delivery point (customer stores only).
    /// Returns the interaction to follow, or null (nil in Swift) when nothing changed.
    pub fn set_preferences(
        &self,
        delivery_point: String,
        preferences: Preferences,
    ) -> Result<Option<PendingInteraction>, TourneeError> {
        let mut inner = self.lock()?;
        Ok(inner
            .store
            .set_preferences(&delivery_point, &preferences)?
            .map(Into::into))
    }

    /// Hands this phone's round over to another postman's phone: one file (move it offline:
    /// QR codes, Bluetooth, USB) holding the round's documents and the interactions not synced
    /// yet, each signed by this device. `deviceKey` is this device's public key, as registered
    /// with the server.
    pub fn export_round(&self, device_key: Vec<u8>) -> Result<Vec<u8>, TourneeError> {
        Ok(self.lock()?.store.export_round(&device_key)?)
    }

    /// Takes over another phone's round from its `exportRound` file: every interaction that
    /// phone had not synced must carry its signature and pass the rules, or nothing is taken
    /// (`InvalidInput` on `relay_file`). They become pending here, still authored by the phone
    /// that recorded them, and this phone's next sync uploads them. Returns them.
    pub fn import_round(&self, file: Vec<u8>) -> Result<Vec<PendingInteraction>, TourneeError> {
        let import = self.lock()?.store.import_round(&file)?;
        Ok(import.interactions.into_iter().map(Into::into).collect())
    }

    /// Everything recorded on this phone that the server has not acknowledged yet, for the
    /// "not yet sent" list.
    pub fn pending_interactions(&self) -> Result<Vec<PendingInteraction>, TourneeError> {
        Ok(self
            .lock()?
            .store
            .pending_interactions()
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The body of the next `POST /v1/sync` (content type `syncMediaType()`, the device's bearer
    /// token), or null (nil in Swift) when the sync is complete. Starts a sync if none is in
    /// progress. Give the answer's body to `applySyncAnswer`, or call `abandonSync` if the
    /// request failed.
    pub fn sync_request(&self) -> Result<Option<Vec<u8>>, TourneeError> {
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        let mut exchange = inner
            .exchange
            .take()
            .unwrap_or_else(|| SyncExchange::new(Limits::default()));
        if exchange.awaiting_answer() {
            inner.exchange = Some(exchange);
            return Err(TourneeError::Protocol {
                reason: "the previous sync request is still waiting for its answer; apply it \
                         or call abandon_sync"
                    .into(),
            });
        }
        let next = inner.next_request(&mut exchange);
        if matches!(next, Ok(Some(_))) {
            inner.exchange = Some(exchange);
        }
        next
    }

    /// Applies the body of the server's answer to the last `syncRequest`, then tells the
    /// observer what changed, and returns what this answer did. On an error the sync is
    /// abandoned; what was applied before stays.
    pub fn apply_sync_answer(&self, answer: Vec<u8>) -> Result<SyncProgress, TourneeError> {
        let progress = {
            let mut guard = self.lock()?;
            let inner = &mut *guard;
            let Some(mut exchange) = inner.exchange.take().filter(|e| e.awaiting_answer()) else {
                return Err(TourneeError::Protocol {
                    reason: "no sync request is waiting for an answer".into(),
                });
            };
            let progress = inner.apply_answer(&mut exchange, &answer)?;
            inner.exchange = Some(exchange);
            progress
        };
        self.notify(&progress);
        Ok(progress)
    }

    /// Forgets the sync in progress (e.g. the HTTP request failed). Nothing applied is lost; the
    /// next `syncRequest` starts over.
    pub fn abandon_sync(&self) -> Result<(), TourneeError> {
        self.lock()?.exchange = None;
        Ok(())
    }

    /// Sets the observer told about each applied sync answer, or removes it with null (nil in
    /// Swift). The store keeps a strong reference to it.
    pub fn set_observer(
        &self,
        observer: Option<Arc<dyn SyncObserver>>,
    ) -> Result<(), TourneeError> {
        let mut slot = self.observer.write().map_err(|_| poisoned())?;
        *slot = observer;
        Ok(())
    }
}

impl Inner {
    /// The next request of `exchange`, encoded, or `None` when that sync is complete. The
    /// exchange may be the store's own (the app's loop) or the background helper's.
    pub(crate) fn next_request(
        &mut self,
        exchange: &mut SyncExchange,
    ) -> Result<Option<Vec<u8>>, TourneeError> {
        Ok(exchange
            .next_request(&mut self.store)?
            .map(|request| wire::encode_request(&request)))
    }

    /// Applies the answer to the last request of `exchange`; returns what this answer alone
    /// changed. On an error the exchange must be dropped; what was applied before stays.
    pub(crate) fn apply_answer(
        &mut self,
        exchange: &mut SyncExchange,
        answer: &[u8],
    ) -> Result<SyncProgress, TourneeError> {
        let (changed, acked, refused, again) = {
            let r = exchange.report();
            (
                r.changed_documents.len(),
                r.acknowledged.len(),
                r.refused.len(),
                r.recorded_again.len(),
            )
        };
        let response = wire::decode_response(answer, exchange.limits())?;
        exchange.apply_response(&mut self.store, response)?;
        let mut report = exchange.report().clone();
        report.changed_documents.drain(..changed);
        report.acknowledged.drain(..acked);
        report.refused.drain(..refused);
        report.recorded_again.drain(..again);
        Ok(SyncProgress::from(report))
    }
}

impl FieldStore {
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Inner>, TourneeError> {
        self.inner.lock().map_err(|_| poisoned())
    }

    /// Tells the observer, if any, what one applied answer changed.
    pub(crate) fn notify(&self, progress: &SyncProgress) {
        let observer = match self.observer.read() {
            Ok(slot) => slot.clone(),
            Err(_) => None,
        };
        let Some(observer) = observer else { return };
        let mut failures = Vec::new();
        if !progress.changed_documents.is_empty() {
            failures.extend(
                observer
                    .documents_changed(progress.changed_documents.clone())
                    .err(),
            );
        }
        if !progress.acknowledged.is_empty() {
            failures.extend(
                observer
                    .interactions_acknowledged(progress.acknowledged.clone())
                    .err(),
            );
        }
        for failure in failures {
            // The sync itself succeeded and is durable; an observer's failure is the app's to fix.
            tracing::warn!(%failure, "the sync observer failed");
        }
    }
}

fn invalid(field: Field, reason: &str) -> TourneeError {
    Violation::new(field, reason).into()
}

fn poisoned() -> TourneeError {
    TourneeError::Internal {
        reason: "an earlier call failed inside the store; close it and open it again".into(),
    }
}
