//! The schemas of the shared Automerge documents, as autosurgeon types.
//!
//! Every document is created once, on the server, with all of its top-level maps (see
//! [`crate::operations::new_item`] and [`crate::operations::new_delivery_point`]), because two devices creating the same nested map key
//! concurrently would hide one side's data. Devices only ever add entries under those maps or set
//! fields inside them. Strings are immutable scalars: nobody edits an address line together.

pub mod codec;
mod delivery_point;
mod item;
mod round;

pub use delivery_point::{
    AccessNotes, Correction, DeliveryPointDoc, GeoPoint, HouseSuffix, Preferences,
    ProposedCorrection, ReferenceAddress, Review, ReviewDecision,
};
pub use item::{
    Attempt, Choice, CustomerChoice, ItemDoc, Notice, Outcome, Position, Proof, ProofKind,
    Requirements, WaitingPlace, WaitingPlaceKind,
};
pub use round::{RoundManifest, Stop};

/// The schema version written into every document; a peer refuses documents of a newer one.
pub const SCHEMA_VERSION: u64 = 1;
