//! The core's document types as the app sees them: declared to uniffi as remote types, so the
//! generated Kotlin, Swift and Python classes are the core's own structs, field for field, with
//! no copy to keep in step by hand.

use tournee_sync_core::model::{
    AccessNotes, Attempt, Choice, CustomerChoice, GeoPoint, HouseSuffix, Notice, Outcome, Position,
    Preferences, Proof, ProofKind, ProposedCorrection, ReferenceAddress, Requirements,
    WaitingPlace, WaitingPlaceKind,
};

#[uniffi::remote(Record)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
}

#[uniffi::remote(Record)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

#[uniffi::remote(Enum)]
pub enum WaitingPlaceKind {
    PostOffice,
    PickupPoint,
    Locker,
}

#[uniffi::remote(Record)]
pub struct WaitingPlace {
    pub kind: WaitingPlaceKind,
    pub place_id: String,
    pub until: Option<String>,
}

#[uniffi::remote(Record)]
pub struct Notice {
    pub number: Option<String>,
    pub waits_at: Option<WaitingPlace>,
}

#[uniffi::remote(Enum)]
pub enum ProofKind {
    Signature,
    Photo,
}

#[uniffi::remote(Record)]
pub struct Proof {
    pub kind: ProofKind,
    pub sha256: String,
}

#[uniffi::remote(Enum)]
pub enum Outcome {
    DeliveredToAddressee,
    DeliveredToNeighbour { neighbour: String },
    DeliveredToSafePlace { place: String },
    DeliveredToMailbox,
    DeliveredToPickupPoint { pickup_point: String },
    AddresseeAbsent,
    Refused,
    AddressIncorrect,
    NoAccess,
    Damaged,
    Other { text: String },
}

#[uniffi::remote(Record)]
pub struct Attempt {
    pub outcome: Outcome,
    pub recorded_at_ms: i64,
    pub device: String,
    pub postman: String,
    pub position: Option<Position>,
    pub notice: Option<Notice>,
    pub proofs: Vec<Proof>,
}

#[uniffi::remote(Record)]
pub struct Requirements {
    pub signature: bool,
    pub id_check: bool,
    pub age_check: bool,
    pub cash_on_delivery_cents: Option<u64>,
}

#[uniffi::remote(Enum)]
pub enum Choice {
    RedeliverOn { date: String },
    PickupPoint { pickup_point: String },
    Neighbour { neighbour: String },
    SafePlace { place: String },
    Hold,
}

#[uniffi::remote(Record)]
pub struct CustomerChoice {
    pub choice: Choice,
    pub made_at_ms: i64,
    pub made_by: String,
}

#[uniffi::remote(Record)]
pub struct Preferences {
    pub safe_place: Option<String>,
    pub preferred_neighbour: Option<String>,
    pub preferred_pickup_point: Option<String>,
    pub never_to_neighbour: bool,
}

#[uniffi::remote(Enum)]
pub enum HouseSuffix {
    Bis,
    Ter,
    Quater,
}

#[uniffi::remote(Record)]
pub struct ReferenceAddress {
    pub lines: Vec<String>,
    pub house_number: String,
    pub suffix: Option<HouseSuffix>,
    pub street: String,
    pub postcode: String,
    pub city: String,
    pub building: Option<String>,
    pub pin: Option<GeoPoint>,
    pub version: u64,
}

#[uniffi::remote(Record)]
pub struct AccessNotes {
    pub door_code: Option<String>,
    pub floor: Option<String>,
    pub mailbox_position: Option<String>,
    pub notes: Option<String>,
}

#[uniffi::remote(Record)]
pub struct ProposedCorrection {
    pub house_number: Option<String>,
    pub suffix: Option<HouseSuffix>,
    pub street: Option<String>,
    pub building: Option<String>,
    pub floor: Option<String>,
    pub door_code: Option<String>,
    pub mailbox_position: Option<String>,
    pub pin: Option<GeoPoint>,
    pub note: Option<String>,
}
