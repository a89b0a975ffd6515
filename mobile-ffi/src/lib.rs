//! uniffi bindings of the Tournée sync core for the postman app: Kotlin on Android, Swift on iOS,
//! and Python for the tests.
//!
//! Thin on purpose: [`FieldStore`] wraps a `tournee_sync_core` phone store and delegates every
//! call to it; the records in [`model`] are the core's own document types, declared to uniffi
//! as remote types, and the records in [`screens`] carry what the core's views return. No rule
//! lives here, so the app and the server cannot disagree on one. Every error crosses as one
//! [`TourneeError`]; nothing panics across the boundary.
//!
//! The app does HTTP with its platform's own stack: [`FieldStore::sync_request`] gives the bytes
//! to `POST /v1/sync` (as [`sync_media_type`]), and [`FieldStore::apply_sync_answer`] takes the
//! answer's bytes. Photos and signatures go the same way: [`FieldStore::queue_proof`] keeps one
//! on disk for the attempt to name, [`FieldStore::proof_upload`] gives the request that uploads
//! it once the attempt synced, and [`FieldStore::apply_proof_answer`] reads the answer.
//!
//! The calls that touch the disk or take long are also `suspend`/`async` on [`AsyncFieldStore`]
//! ([`asynchronous`]), and [`FieldStore::sync_with`] runs the whole sync and the proof uploads
//! in one call over the app's HTTP callback, with retries ([`background`]).

mod asynchronous;
pub mod background;
mod error;
pub mod model;
mod observer;
pub mod proofs;
mod retry;
pub mod screens;
mod store;

pub use asynchronous::AsyncFieldStore;
pub use error::TourneeError;
pub use observer::SyncObserver;
pub use store::FieldStore;

uniffi::setup_scaffolding!();

/// The media type of the sync request and answer bodies, for the app's HTTP client.
#[uniffi::export]
pub fn sync_media_type() -> String {
    tournee_sync_core::sync::wire::MEDIA_TYPE.to_string()
}
