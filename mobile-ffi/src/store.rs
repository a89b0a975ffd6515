//! [`FieldStore`]: the phone's store, one object for the whole app, safe to share between the
//! UI thread and a background sync worker.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::model::{Attempt, Choice, Correction, CustomerChoice, Preferences};
use tournee_sync_core::rules::{Field, Violation};
use tournee_sync_core::store::{DeviceIdentity, PhoneStore, StoreKey, StoreOptions, StoreRole};
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::SyncExchange;
use tournee_sync_core::{views, S10};

use zeroize::Zeroizing;

use crate::error::TourneeError;
use crate::observer::SyncObserver;
use crate::screens::{
    AttemptInput, CorrectionInput, Door, PendingInteraction, RoundSummary, Stop, SyncProgress,
};

#[uniffi::remote(Enum)]
pub enum StoreRole {
    Postman,
    Customer,
}

/// The store and the sync in progress, behind one lock so a sync answer and a tap at the door
/// never interleave inside the core.
pub(crate) struct Inner {
    pub(crate) store: PhoneStore,
    exchange: Option<SyncExchange>,
}

/// One device's documents on disk: the round, the doors, what was recorded there, and the sync
/// with the server. Every call is durable when it returns.
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
    /// Opens the store in the directory `path`, creating it on first use. The store remembers
    /// its device and person and refuses to open for anyone else.
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

    /// Loads a round as `GET /v1/rounds` lists it (one element of the array, as JSON). The
    /// next sync downloads its documents.
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

    /// The round loaded on the phone, if any.
    pub fn round(&self) -> Result<Option<RoundSummary>, TourneeError> {
        Ok(self.lock()?.store.manifest().map(RoundSummary::from))
    }

    /// The round's stops in delivery order.
    pub fn stops(&self) -> Result<Vec<Stop>, TourneeError> {
        let mut inner = self.lock()?;
        Ok(views::stops(&mut inner.store)?
            .into_iter()
            .map(Stop::from)
            .collect())
    }

    /// The door screen for an item (its S10 number).
    pub fn door(&self, item: String) -> Result<Door, TourneeError> {
        let item = S10::parse(&item)?;
        let mut inner = self.lock()?;
        Ok(views::at_door(&mut inner.store, &item)?.into())
    }

    /// Records a delivery attempt, checked against the item's requirements.
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
            recorded_at_ms: attempt.recorded_at_ms,
            device: identity.device,
            postman: identity.principal,
            position: attempt.position,
            notice: attempt.notice,
            proofs: attempt.proofs,
        };
        Ok(inner.store.record_attempt(&item, &attempt)?.into())
    }

    /// Proposes an address correction for a delivery point, for the back office to review.
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
            proposed_at_ms: correction.proposed_at_ms,
        };
        Ok(inner
            .store
            .propose_correction(&delivery_point, &correction)?
            .into())
    }

    /// A customer's choice for one of their items (customer stores only).
    pub fn choose_for_item(
        &self,
        item: String,
        choice: Choice,
        made_at_ms: i64,
    ) -> Result<PendingInteraction, TourneeError> {
        let item = S10::parse(&item)?;
        let mut inner = self.lock()?;
        let choice = CustomerChoice {
            choice,
            made_at_ms,
            made_by: inner.store.identity().principal.clone(),
        };
        Ok(inner.store.choose_for_item(&item, &choice)?.into())
    }

    /// A customer's standing preferences for a delivery point (customer stores only); `None`
    /// when nothing changed.
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

    /// Everything recorded here that the server has not acknowledged yet.
    pub fn pending_interactions(&self) -> Result<Vec<PendingInteraction>, TourneeError> {
        Ok(self
            .lock()?
            .store
            .pending_interactions()
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The body of the next `POST /v1/sync`, or `None` when the sync is complete. Starts a sync
    /// if none is in progress.
    pub fn sync_request(&self) -> Result<Option<Vec<u8>>, TourneeError> {
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        let exchange = inner
            .exchange
            .get_or_insert_with(|| SyncExchange::new(Limits::default()));
        if exchange.awaiting_answer() {
            return Err(TourneeError::Protocol {
                reason: "the previous sync request is still waiting for its answer; apply it \
                         or call abandon_sync"
                    .into(),
            });
        }
        match exchange.next_request(&mut inner.store) {
            Ok(Some(request)) => Ok(Some(wire::encode_request(&request))),
            Ok(None) => {
                inner.exchange = None;
                Ok(None)
            }
            Err(e) => {
                inner.exchange = None;
                Err(e.into())
            }
        }
    }

    /// Applies the body of the server's answer to the last [`FieldStore::sync_request`], then
    /// tells the observer what changed. On an error the sync is abandoned; what was applied
    /// before stays.
    pub fn apply_sync_answer(&self, answer: Vec<u8>) -> Result<SyncProgress, TourneeError> {
        let progress = {
            let mut guard = self.lock()?;
            let inner = &mut *guard;
            let Some(exchange) = inner.exchange.as_mut().filter(|e| e.awaiting_answer()) else {
                return Err(TourneeError::Protocol {
                    reason: "no sync request is waiting for an answer".into(),
                });
            };
            let (changed, acked, refused, again) = {
                let r = exchange.report();
                (
                    r.changed_documents.len(),
                    r.acknowledged.len(),
                    r.refused.len(),
                    r.recorded_again.len(),
                )
            };
            let applied = wire::decode_response(&answer, exchange.limits())
                .map_err(TourneeError::from)
                .and_then(|response| {
                    exchange
                        .apply_response(&mut inner.store, response)
                        .map_err(TourneeError::from)
                });
            if let Err(e) = applied {
                inner.exchange = None;
                return Err(e);
            }
            let mut report = exchange.report().clone();
            report.changed_documents.drain(..changed);
            report.acknowledged.drain(..acked);
            report.refused.drain(..refused);
            report.recorded_again.drain(..again);
            SyncProgress::from(report)
        };
        self.notify(&progress);
        Ok(progress)
    }

    /// Forgets the sync in progress (e.g. the HTTP request failed). Nothing applied is lost; the
    /// next [`FieldStore::sync_request`] starts over.
    pub fn abandon_sync(&self) -> Result<(), TourneeError> {
        self.lock()?.exchange = None;
        Ok(())
    }

    /// Sets (or with `None`, removes) the observer told about each applied sync answer.
    pub fn set_observer(
        &self,
        observer: Option<Arc<dyn SyncObserver>>,
    ) -> Result<(), TourneeError> {
        let mut slot = self.observer.write().map_err(|_| poisoned())?;
        *slot = observer;
        Ok(())
    }
}

impl FieldStore {
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Inner>, TourneeError> {
        self.inner.lock().map_err(|_| poisoned())
    }

    fn notify(&self, progress: &SyncProgress) {
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
