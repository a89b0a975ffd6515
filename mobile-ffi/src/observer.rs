//! The app's listener for what a sync did, so screens refresh without polling the store.

use crate::error::TourneeError;
use crate::screens::PendingInteraction;

/// Implemented by the app. Called after each applied sync answer, on the thread that applied
/// it and with no lock held, so the observer may call back into the store.
#[uniffi::export(with_foreign)]
pub trait SyncObserver: Send + Sync {
    /// These documents received changes from the server (e.g. a customer's new choice).
    fn documents_changed(&self, documents: Vec<String>) -> Result<(), TourneeError>;
    /// The server now stores these interactions durably: take them off the "not sent" list.
    fn interactions_acknowledged(
        &self,
        interactions: Vec<PendingInteraction>,
    ) -> Result<(), TourneeError>;
}
