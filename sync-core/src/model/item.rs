//! The item document: a tracked parcel or registered letter, its requirements, the customer's
//! choices for it and every delivery attempt.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

/// The whole item document as it hydrates from Automerge.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ItemDoc {
    /// [`super::SCHEMA_VERSION`] at creation.
    pub schema: u64,
    /// Always `"item"`, so a document read without its id still says what it is.
    pub kind: String,
    /// The UPU S10 number.
    pub id: String,
    /// The delivery point (its id, without the `dp:` prefix) the item is addressed to.
    pub delivery_point: String,
    /// What the sender paid for; written by the back office only.
    pub requirements: Requirements,
    /// The customer's choices for this item, keyed by a random id; the latest one stands.
    pub choices: BTreeMap<String, CustomerChoice>,
    /// Every delivery attempt, keyed by a random attempt id; never edited once recorded.
    pub attempts: BTreeMap<String, Attempt>,
}

impl ItemDoc {
    /// The customer's current choice: the latest by time (ties broken by id, so every replica
    /// agrees).
    pub fn current_choice(&self) -> Option<(&String, &CustomerChoice)> {
        self.choices
            .iter()
            .max_by(|a, b| (a.1.made_at_ms, a.0).cmp(&(b.1.made_at_ms, b.0)))
    }

    /// Attempts in the order they were recorded on the devices.
    pub fn attempts_in_order(&self) -> Vec<(&String, &Attempt)> {
        let mut all: Vec<_> = self.attempts.iter().collect();
        all.sort_by(|a, b| (a.1.recorded_at_ms, a.0).cmp(&(b.1.recorded_at_ms, b.0)));
        all
    }

    /// Whether an attempt delivered the item: no further choice can apply after that.
    pub fn is_delivered(&self) -> bool {
        self.attempts.values().any(|a| a.outcome.is_delivered())
    }
}

/// The service requirements of an item, set by the sender's product.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Requirements {
    /// The recipient must sign.
    pub signature: bool,
    /// The recipient must show an identity document.
    pub id_check: bool,
    /// The recipient must prove their age.
    pub age_check: bool,
    /// Cash to collect on delivery, in cents.
    pub cash_on_delivery_cents: Option<u64>,
}

impl Requirements {
    /// Whether the item must be handed to the addressee in person (or to a counter that checks).
    pub fn needs_addressee_in_person(&self) -> bool {
        self.signature || self.id_check || self.age_check || self.cash_on_delivery_cents.is_some()
    }
}

/// One customer choice for an item, as the customer made it.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct CustomerChoice {
    /// What the customer asked for.
    pub choice: Choice,
    /// When, in Unix milliseconds.
    pub made_at_ms: i64,
    /// The customer account that made it.
    pub made_by: String,
}

/// Where and when the customer wants this item.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum Choice {
    /// Present it again on this date (`YYYY-MM-DD`).
    #[autosurgeon(rename = "redeliver_on")]
    #[serde(rename = "redeliver_on")]
    RedeliverOn {
        /// The day, `YYYY-MM-DD`.
        date: String,
    },
    /// Take it to this pickup point.
    #[autosurgeon(rename = "pickup_point")]
    #[serde(rename = "pickup_point")]
    PickupPoint {
        /// The pickup point's id.
        pickup_point: String,
    },
    /// Leave it with this neighbour.
    #[autosurgeon(rename = "neighbour")]
    #[serde(rename = "neighbour")]
    Neighbour {
        /// Who and where, e.g. "Mme Martin, 2nd floor left".
        neighbour: String,
    },
    /// Leave it in this safe place.
    #[autosurgeon(rename = "safe_place")]
    #[serde(rename = "safe_place")]
    SafePlace {
        /// Where, e.g. "garden shed".
        place: String,
    },
    /// Keep it at the office until the customer collects it.
    #[autosurgeon(rename = "hold")]
    #[serde(rename = "hold")]
    Hold,
}

/// What happened at the door.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum Outcome {
    /// Handed to the addressee.
    #[autosurgeon(rename = "delivered_to_addressee")]
    #[serde(rename = "delivered_to_addressee")]
    DeliveredToAddressee,
    /// Handed to a neighbour.
    #[autosurgeon(rename = "delivered_to_neighbour")]
    #[serde(rename = "delivered_to_neighbour")]
    DeliveredToNeighbour {
        /// Who and where.
        neighbour: String,
    },
    /// Left in a safe place.
    #[autosurgeon(rename = "delivered_to_safe_place")]
    #[serde(rename = "delivered_to_safe_place")]
    DeliveredToSafePlace {
        /// Where.
        place: String,
    },
    /// Put in the mailbox.
    #[autosurgeon(rename = "delivered_to_mailbox")]
    #[serde(rename = "delivered_to_mailbox")]
    DeliveredToMailbox,
    /// Dropped at a pickup point.
    #[autosurgeon(rename = "delivered_to_pickup_point")]
    #[serde(rename = "delivered_to_pickup_point")]
    DeliveredToPickupPoint {
        /// The pickup point's id.
        pickup_point: String,
    },
    /// Nobody answered; a notice was left.
    #[autosurgeon(rename = "addressee_absent")]
    #[serde(rename = "addressee_absent")]
    AddresseeAbsent,
    /// The addressee refused the item.
    #[autosurgeon(rename = "refused")]
    #[serde(rename = "refused")]
    Refused,
    /// The address is unknown or wrong.
    #[autosurgeon(rename = "address_incorrect")]
    #[serde(rename = "address_incorrect")]
    AddressIncorrect,
    /// The postman could not reach the door (code, gate, dog…).
    #[autosurgeon(rename = "no_access")]
    #[serde(rename = "no_access")]
    NoAccess,
    /// The item is damaged.
    #[autosurgeon(rename = "damaged")]
    #[serde(rename = "damaged")]
    Damaged,
    /// Anything else, described.
    #[autosurgeon(rename = "other")]
    #[serde(rename = "other")]
    Other {
        /// What happened.
        text: String,
    },
}

impl Outcome {
    /// Whether this outcome ends the item's journey.
    pub fn is_delivered(&self) -> bool {
        matches!(
            self,
            Outcome::DeliveredToAddressee
                | Outcome::DeliveredToNeighbour { .. }
                | Outcome::DeliveredToSafePlace { .. }
                | Outcome::DeliveredToMailbox
                | Outcome::DeliveredToPickupPoint { .. }
        )
    }

    /// A stable machine name for reports and the UPU event mapping.
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::DeliveredToAddressee => "delivered_to_addressee",
            Outcome::DeliveredToNeighbour { .. } => "delivered_to_neighbour",
            Outcome::DeliveredToSafePlace { .. } => "delivered_to_safe_place",
            Outcome::DeliveredToMailbox => "delivered_to_mailbox",
            Outcome::DeliveredToPickupPoint { .. } => "delivered_to_pickup_point",
            Outcome::AddresseeAbsent => "addressee_absent",
            Outcome::Refused => "refused",
            Outcome::AddressIncorrect => "address_incorrect",
            Outcome::NoAccess => "no_access",
            Outcome::Damaged => "damaged",
            Outcome::Other { .. } => "other",
        }
    }
}

/// One delivery attempt as the postman's device recorded it.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Attempt {
    /// What happened.
    pub outcome: Outcome,
    /// The device's clock at the door, Unix milliseconds.
    pub recorded_at_ms: i64,
    /// The device that recorded it (bound into the postman's token).
    pub device: String,
    /// The postman's id.
    pub postman: String,
    /// Where the device was, if it had a fix.
    pub position: Option<Position>,
    /// The notice left at the door, if any.
    pub notice: Option<Notice>,
    /// Hashes of the signature and photos taken, stored elsewhere.
    pub proofs: Vec<Proof>,
}

/// A GNSS fix.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Position {
    /// Latitude, WGS 84 degrees.
    pub lat: f64,
    /// Longitude, WGS 84 degrees.
    pub lon: f64,
    /// Horizontal accuracy radius in metres.
    pub accuracy_m: f64,
}

/// The notice card left when the item could not be delivered.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Notice {
    /// The number printed on the card, which the customer quotes to collect.
    pub number: Option<String>,
    /// Where the item now waits.
    pub waits_at: Option<WaitingPlace>,
}

/// Where a notified item waits for the customer.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct WaitingPlace {
    /// What kind of place.
    pub kind: WaitingPlaceKind,
    /// Its id in the network.
    pub place_id: String,
    /// The last day it waits there, `YYYY-MM-DD`.
    pub until: Option<String>,
}

/// The kinds of places an item can wait at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum WaitingPlaceKind {
    /// A post office counter.
    #[autosurgeon(rename = "post_office")]
    #[serde(rename = "post_office")]
    PostOffice,
    /// A partner pickup point.
    #[autosurgeon(rename = "pickup_point")]
    #[serde(rename = "pickup_point")]
    PickupPoint,
    /// A parcel locker.
    #[autosurgeon(rename = "locker")]
    #[serde(rename = "locker")]
    Locker,
}

/// A reference to evidence captured at the door.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Proof {
    /// What the evidence is.
    pub kind: ProofKind,
    /// The SHA-256 of the stored file, lower-case hex.
    pub sha256: String,
}

/// The kinds of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum ProofKind {
    /// A captured signature.
    #[autosurgeon(rename = "signature")]
    #[serde(rename = "signature")]
    Signature,
    /// A photo (of the safe place, the parcel, the notice…).
    #[autosurgeon(rename = "photo")]
    #[serde(rename = "photo")]
    Photo,
}
