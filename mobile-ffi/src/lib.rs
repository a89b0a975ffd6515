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
//!
//! # Conventions for exported API
//!
//! Everything exported here is read by Kotlin and Swift developers through the generated code, so:
//! - **Documentation**: every exported type, function, method, field, enum case and error case
//!   has a `///` comment, written for a Kotlin or Swift reader: "null (nil in Swift)", "list",
//!   "absent", never `Option`, `Vec`, `None`, `Result`, `Arc` or intra-doc links (`[`…`]`), which
//!   the generated code copies verbatim. Name arguments in the text as the app spells them
//!   (`recordedAt`). `tests/sdk_bindings.rs` fails on any undocumented Kotlin or Swift
//!   declaration.
//! - **Times** are `std::time::SystemTime` (Kotlin `java.time.Instant`, Swift `Date`, Python
//!   `datetime`), named for the moment (`recorded_at`, never `_ms`). **Calendar days** are
//!   `CalendarDate` (`calendar.rs`) (Kotlin `java.time.LocalDate`, Swift `DateComponents`, Python
//!   `datetime.date`). No raw milliseconds or date strings cross the boundary.
//! - **Closed sets are enums**, never strings (e.g. an outcome kind, not `"delivered_to_…"`).
//! - **Errors**: every fallible call returns `Result<_, TourneeError>`; add a case to
//!   [`TourneeError`] only when the app must act differently on it. Nothing panics.
//!   Swift sees error cases in lowerCamelCase like every other enum (`generate-bindings.sh`
//!   renames them: uniffi 0.32 has no option for it).
//! - **Names**: methods are verbs or the thing they return (`record_attempt`, `stops`); the
//!   async variant of a blocking call is on `AsyncFieldStore` under the same name and arguments
//!   (Kotlin `suspend fun recordAttempt`, Swift `recordAttempt() async`), its doc text saying it
//!   does not block the caller's thread.
//! - **Objects** are shared (`Arc<Self>`) and safe to call from any thread; callbacks the app
//!   implements (`with_foreign` traits) return `Result<_, TourneeError>` so an app failure
//!   cannot panic in Rust.

mod asynchronous;
pub mod background;
pub mod calendar;
mod error;
pub mod keys;
pub mod model;
mod observer;
pub mod proofs;
mod retry;
pub mod screens;
mod store;

pub use asynchronous::AsyncFieldStore;
pub use calendar::CalendarDate;
pub use error::TourneeError;
pub use observer::SyncObserver;
pub use store::FieldStore;

uniffi::setup_scaffolding!();

/// The media type of the sync request and answer bodies: the `Content-Type` of every
/// `POST /v1/sync` the app sends.
#[uniffi::export]
pub fn sync_media_type() -> String {
    tournee_sync_core::sync::wire::MEDIA_TYPE.to_string()
}
