//! The delivery-point document: an address, its access notes, the customer's standing
//! preferences, and the postmen's proposed corrections with their review.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

/// The whole delivery-point document as it hydrates from Automerge.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct DeliveryPointDoc {
    /// [`super::SCHEMA_VERSION`] at creation.
    pub schema: u64,
    /// Always `"delivery_point"`.
    pub kind: String,
    /// The delivery point's id.
    pub id: String,
    /// The address as the reference system last published it.
    pub reference: ReferenceAddress,
    /// How to get to the door, as the reference system knows it.
    pub access: AccessNotes,
    /// The customer's standing preferences; each field is set independently.
    pub preferences: Preferences,
    /// Postmen's proposed corrections, keyed by a random id; never edited once proposed.
    pub corrections: BTreeMap<String, Correction>,
    /// The back office's decisions, keyed by the correction id they decide.
    pub reviews: BTreeMap<String, Review>,
}

/// A WGS 84 position.
#[derive(Debug, Clone, Copy, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct GeoPoint {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// The reference address (NF Z10-011: at most 6 lines of 38 characters).
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ReferenceAddress {
    /// The printed address lines.
    pub lines: Vec<String>,
    /// The house number, e.g. "35".
    pub house_number: String,
    /// "bis", "ter"… if any.
    pub suffix: Option<HouseSuffix>,
    /// The street name.
    pub street: String,
    /// The postcode.
    pub postcode: String,
    /// The town.
    pub city: String,
    /// Building or entrance.
    pub building: Option<String>,
    /// Where the door is.
    pub pin: Option<GeoPoint>,
    /// Bumped by every publication, so devices can show which version they hold.
    pub version: u64,
}

/// Repetition suffixes of French house numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum HouseSuffix {
    /// "bis"
    #[autosurgeon(rename = "bis")]
    #[serde(rename = "bis")]
    Bis,
    /// "ter"
    #[autosurgeon(rename = "ter")]
    #[serde(rename = "ter")]
    Ter,
    /// "quater"
    #[autosurgeon(rename = "quater")]
    #[serde(rename = "quater")]
    Quater,
}

/// Access notes the reference system publishes.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct AccessNotes {
    /// The door code.
    pub door_code: Option<String>,
    /// The floor.
    pub floor: Option<String>,
    /// Where the mailbox is.
    pub mailbox_position: Option<String>,
    /// Anything else the next postman should know.
    pub notes: Option<String>,
}

/// The customer's standing preferences for this delivery point.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "json-schema",
    schemars(extend(
        "if" = { "properties": { "never_to_neighbour": { "const": true } } },
        "then" = { "properties": { "preferred_neighbour": { "type": "null" } } }
    ))
)]
pub struct Preferences {
    /// Where parcels may be left when nobody answers.
    #[cfg_attr(
        feature = "json-schema",
        schemars(length(max = 120), regex(pattern = crate::rules::patterns::TEXT))
    )]
    pub safe_place: Option<String>,
    /// The neighbour to try first (none when `never_to_neighbour`).
    #[cfg_attr(
        feature = "json-schema",
        schemars(length(max = 120), regex(pattern = crate::rules::patterns::TEXT))
    )]
    pub preferred_neighbour: Option<String>,
    /// The pickup point to use instead of the post office.
    #[cfg_attr(
        feature = "json-schema",
        schemars(regex(pattern = crate::rules::patterns::IDENTIFIER))
    )]
    pub preferred_pickup_point: Option<String>,
    /// Never leave anything with a neighbour.
    pub never_to_neighbour: bool,
}

/// A correction a postman proposed at the door.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Correction {
    /// What the postman says is right.
    pub proposed: ProposedCorrection,
    /// The postman's id.
    pub proposed_by: String,
    /// The device it was recorded on.
    pub device: String,
    /// When, Unix milliseconds (device clock).
    pub proposed_at_ms: i64,
}

/// The fields a correction may change; `None` means "no change proposed".
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ProposedCorrection {
    /// The house number, e.g. "35".
    pub house_number: Option<String>,
    /// "bis", "ter"…
    pub suffix: Option<HouseSuffix>,
    /// The street name.
    pub street: Option<String>,
    /// Building or entrance.
    pub building: Option<String>,
    /// The floor.
    pub floor: Option<String>,
    /// The door code.
    pub door_code: Option<String>,
    /// Where the mailbox is.
    pub mailbox_position: Option<String>,
    /// Where the door really is.
    pub pin: Option<GeoPoint>,
    /// Free text for the reviewer.
    pub note: Option<String>,
}

impl ProposedCorrection {
    /// Whether the correction proposes nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The back office's decision on a correction.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Review {
    /// Approved or rejected.
    pub decision: ReviewDecision,
    /// The reviewer's id.
    pub by: String,
    /// Why; shown to the postman.
    pub reason: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
}

/// A review decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum ReviewDecision {
    /// The correction becomes reference data.
    #[autosurgeon(rename = "approved")]
    #[serde(rename = "approved")]
    Approved,
    /// The correction is dropped.
    #[autosurgeon(rename = "rejected")]
    #[serde(rename = "rejected")]
    Rejected,
}
