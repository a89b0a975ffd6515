//! The core's document types as the app sees them. Most are declared to uniffi as remote types,
//! so the generated Kotlin, Swift and Python classes are the core's own structs, field for field.
//! The few that hold a time or a day ([`Attempt`], [`Notice`], [`WaitingPlace`], [`Choice`],
//! [`CustomerChoice`]) are mirrored here with `SystemTime` and [`CalendarDate`] fields instead
//! of the core's milliseconds and `YYYY-MM-DD` text; their conversions destructure the core's
//! structs whole, so a field added in the core fails this crate's build until it is mirrored.
//! [`OutcomeKind`] names an outcome without its details, for the outcomes a door forbids.
//!
//! The comments on the remote declarations below are the ones the generated code carries.

use std::time::SystemTime;

use tournee_sync_core::model as core;
use tournee_sync_core::model::{
    AccessNotes, GeoPoint, HouseSuffix, Outcome, Position, Preferences, Proof, ProofKind,
    ProposedCorrection, ReferenceAddress, Requirements, WaitingPlaceKind,
};

use crate::calendar::{self, CalendarDate};
use crate::error::TourneeError;

/// Where the phone was when something was recorded, from its GNSS fix.
#[uniffi::remote(Record)]
pub struct Position {
    /// Latitude in degrees (WGS 84), from -90 to 90.
    pub lat: f64,
    /// Longitude in degrees (WGS 84), from -180 to 180.
    pub lon: f64,
    /// Horizontal accuracy radius in metres, as the platform's location service reports it.
    pub accuracy_m: f64,
}

/// A point on the map, e.g. where a door is.
#[uniffi::remote(Record)]
pub struct GeoPoint {
    /// Latitude in degrees (WGS 84), from -90 to 90.
    pub lat: f64,
    /// Longitude in degrees (WGS 84), from -180 to 180.
    pub lon: f64,
}

/// The kinds of places where an item waits for its addressee after a notice.
#[uniffi::remote(Enum)]
pub enum WaitingPlaceKind {
    /// A post office counter.
    PostOffice,
    /// A shop that keeps parcels for the network.
    PickupPoint,
    /// A parcel locker.
    Locker,
}

/// Where a notified item waits for its addressee, and until which day.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct WaitingPlace {
    /// What kind of place it is.
    pub kind: WaitingPlaceKind,
    /// The place's id in the network, as the round lists it.
    pub place_id: String,
    /// The last day it waits there; null (nil in Swift) when the place decides.
    pub until: Option<CalendarDate>,
}

/// The notice card the postman leaves when the item could not be delivered.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Notice {
    /// The number printed on the card, which the addressee quotes to collect the item.
    pub number: Option<String>,
    /// Where the item now waits; null (nil in Swift) when the card does not say.
    pub waits_at: Option<WaitingPlace>,
}

/// What a proof of delivery is.
#[uniffi::remote(Enum)]
pub enum ProofKind {
    /// The addressee's signature, drawn on the screen (SVG or PNG).
    Signature,
    /// A photo of the parcel where it was left.
    Photo,
}

/// A proof of delivery named by an attempt: the file itself travels separately (see
/// `FieldStore.queueProof` and `FieldStore.proofUpload`).
#[uniffi::remote(Record)]
pub struct Proof {
    /// Whether it is a signature or a photo.
    pub kind: ProofKind,
    /// The SHA-256 of the file's bytes, as 64 lowercase hexadecimal digits.
    pub sha256: String,
}

/// What happened at the door. The cases with details carry what the back office and the
/// addressee need to find the item.
#[uniffi::remote(Enum)]
pub enum Outcome {
    /// Handed to the addressee in person.
    DeliveredToAddressee,
    /// Handed to a neighbour.
    DeliveredToNeighbour {
        /// The neighbour's name and door, as the postman noted them.
        neighbour: String,
    },
    /// Left in a safe place.
    DeliveredToSafePlace {
        /// Where, e.g. "behind the gate".
        place: String,
    },
    /// Put in the mailbox.
    DeliveredToMailbox,
    /// Left at a pickup point on the way.
    DeliveredToPickupPoint {
        /// The pickup point's id in the network.
        pickup_point: String,
    },
    /// Nobody answered; usually with a notice card.
    AddresseeAbsent,
    /// The addressee refused the item.
    Refused,
    /// The address is wrong or incomplete.
    AddressIncorrect,
    /// The postman could not reach the door (code, gate, dog…).
    NoAccess,
    /// The item is damaged and was not delivered.
    Damaged,
    /// Anything else, in words.
    Other {
        /// What happened.
        text: String,
    },
}

/// An outcome without its details, to say which outcomes a door forbids (see
/// `Door.forbiddenOutcomes`): one case per case of `Outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum OutcomeKind {
    /// Handed to the addressee in person.
    DeliveredToAddressee,
    /// Handed to a neighbour.
    DeliveredToNeighbour,
    /// Left in a safe place.
    DeliveredToSafePlace,
    /// Put in the mailbox.
    DeliveredToMailbox,
    /// Left at a pickup point.
    DeliveredToPickupPoint,
    /// Nobody answered.
    AddresseeAbsent,
    /// The addressee refused the item.
    Refused,
    /// The address is wrong or incomplete.
    AddressIncorrect,
    /// The postman could not reach the door.
    NoAccess,
    /// The item is damaged.
    Damaged,
    /// Anything else.
    Other,
}

impl OutcomeKind {
    /// Every kind, in the order of `Outcome`.
    pub const ALL: [Self; 11] = [
        Self::DeliveredToAddressee,
        Self::DeliveredToNeighbour,
        Self::DeliveredToSafePlace,
        Self::DeliveredToMailbox,
        Self::DeliveredToPickupPoint,
        Self::AddresseeAbsent,
        Self::Refused,
        Self::AddressIncorrect,
        Self::NoAccess,
        Self::Damaged,
        Self::Other,
    ];

    /// The kind of an outcome.
    pub fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::DeliveredToAddressee => Self::DeliveredToAddressee,
            Outcome::DeliveredToNeighbour { .. } => Self::DeliveredToNeighbour,
            Outcome::DeliveredToSafePlace { .. } => Self::DeliveredToSafePlace,
            Outcome::DeliveredToMailbox => Self::DeliveredToMailbox,
            Outcome::DeliveredToPickupPoint { .. } => Self::DeliveredToPickupPoint,
            Outcome::AddresseeAbsent => Self::AddresseeAbsent,
            Outcome::Refused => Self::Refused,
            Outcome::AddressIncorrect => Self::AddressIncorrect,
            Outcome::NoAccess => Self::NoAccess,
            Outcome::Damaged => Self::Damaged,
            Outcome::Other { .. } => Self::Other,
        }
    }

    /// The kind whose outcomes the core names `code` (`Outcome::code`, e.g.
    /// `delivered_to_neighbour`), as the door view lists them.
    pub fn from_code(code: &str) -> Result<Self, TourneeError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.example().code() == code)
            .ok_or_else(|| TourneeError::Internal {
                reason: format!("the core names an outcome this library does not know: {code}"),
            })
    }

    /// An outcome of this kind, its details left empty: only its code is read.
    fn example(self) -> Outcome {
        match self {
            Self::DeliveredToAddressee => Outcome::DeliveredToAddressee,
            Self::DeliveredToNeighbour => Outcome::DeliveredToNeighbour {
                neighbour: String::new(),
            },
            Self::DeliveredToSafePlace => Outcome::DeliveredToSafePlace {
                place: String::new(),
            },
            Self::DeliveredToMailbox => Outcome::DeliveredToMailbox,
            Self::DeliveredToPickupPoint => Outcome::DeliveredToPickupPoint {
                pickup_point: String::new(),
            },
            Self::AddresseeAbsent => Outcome::AddresseeAbsent,
            Self::Refused => Outcome::Refused,
            Self::AddressIncorrect => Outcome::AddressIncorrect,
            Self::NoAccess => Outcome::NoAccess,
            Self::Damaged => Outcome::Damaged,
            Self::Other => Outcome::Other {
                text: String::new(),
            },
        }
    }
}

/// One delivery attempt as a phone recorded it. Attempts are never changed once recorded.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Attempt {
    /// What happened at the door.
    pub outcome: Outcome,
    /// When, by the recording phone's clock.
    pub recorded_at: SystemTime,
    /// The device that recorded it.
    pub device: String,
    /// The postman who recorded it.
    pub postman: String,
    /// Where the phone was; null (nil in Swift) without a fix.
    pub position: Option<Position>,
    /// The notice card left, if any.
    pub notice: Option<Notice>,
    /// The signature and photos taken, each named by its SHA-256.
    pub proofs: Vec<Proof>,
}

/// What the sender paid for: what the postman must check before handing the item over.
#[uniffi::remote(Record)]
pub struct Requirements {
    /// The addressee must sign.
    pub signature: bool,
    /// The addressee must show an identity document.
    pub id_check: bool,
    /// The addressee must prove their age.
    pub age_check: bool,
    /// Cash to collect on delivery, in euro cents; null (nil in Swift) when there is none.
    pub cash_on_delivery_cents: Option<u64>,
}

/// What a customer asked for an item.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Choice {
    /// Present it again on this day.
    RedeliverOn {
        /// The day.
        date: CalendarDate,
    },
    /// Take it to this pickup point.
    PickupPoint {
        /// The pickup point's id in the network.
        pickup_point: String,
    },
    /// Leave it with this neighbour.
    Neighbour {
        /// The neighbour's name and door.
        neighbour: String,
    },
    /// Leave it in this safe place.
    SafePlace {
        /// Where, e.g. "behind the gate".
        place: String,
    },
    /// Keep it at the post office until the customer collects it.
    Hold,
}

/// One choice a customer made for an item.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CustomerChoice {
    /// What the customer asked for.
    pub choice: Choice,
    /// When, by the customer's device's clock.
    pub made_at: SystemTime,
    /// The customer account that made it.
    pub made_by: String,
}

/// A customer's standing wishes for a delivery point, which apply to every item addressed
/// there.
#[uniffi::remote(Record)]
pub struct Preferences {
    /// Where parcels may be left when nobody answers.
    pub safe_place: Option<String>,
    /// The neighbour to try first; always null (nil in Swift) when `neverToNeighbour` is set.
    pub preferred_neighbour: Option<String>,
    /// The pickup point to use instead of the post office.
    pub preferred_pickup_point: Option<String>,
    /// Never leave anything with a neighbour.
    pub never_to_neighbour: bool,
}

/// The repetition suffixes of French house numbers ("35 bis").
#[uniffi::remote(Enum)]
pub enum HouseSuffix {
    /// "bis"
    Bis,
    /// "ter"
    Ter,
    /// "quater"
    Quater,
}

/// The reference address of a delivery point, as the back office publishes it (NF Z10-011:
/// at most 6 lines of 38 characters).
#[uniffi::remote(Record)]
pub struct ReferenceAddress {
    /// The printed address lines, to show as they are.
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
    /// The building or entrance, if any.
    pub building: Option<String>,
    /// Where the door is on the map, if known.
    pub pin: Option<GeoPoint>,
    /// Grows with every publication, so the app can show which version it holds.
    pub version: u64,
}

/// Access notes the back office publishes for a delivery point.
#[uniffi::remote(Record)]
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

/// An address correction a postman proposes at the door: only the fields set are proposed;
/// at least one must be.
#[uniffi::remote(Record)]
pub struct ProposedCorrection {
    /// The house number, e.g. "35".
    pub house_number: Option<String>,
    /// "bis", "ter"…
    pub suffix: Option<HouseSuffix>,
    /// The street name.
    pub street: Option<String>,
    /// The building or entrance.
    pub building: Option<String>,
    /// The floor.
    pub floor: Option<String>,
    /// The door code.
    pub door_code: Option<String>,
    /// Where the mailbox is.
    pub mailbox_position: Option<String>,
    /// Where the door really is on the map.
    pub pin: Option<GeoPoint>,
    /// Free text for the reviewer in the back office.
    pub note: Option<String>,
}

impl From<core::WaitingPlace> for WaitingPlace {
    fn from(place: core::WaitingPlace) -> Self {
        let core::WaitingPlace {
            kind,
            place_id,
            until,
        } = place;
        Self {
            kind,
            place_id,
            until: until.map(CalendarDate),
        }
    }
}

impl From<WaitingPlace> for core::WaitingPlace {
    fn from(place: WaitingPlace) -> Self {
        let WaitingPlace {
            kind,
            place_id,
            until,
        } = place;
        Self {
            kind,
            place_id,
            until: until.map(String::from),
        }
    }
}

impl From<core::Notice> for Notice {
    fn from(notice: core::Notice) -> Self {
        let core::Notice { number, waits_at } = notice;
        Self {
            number,
            waits_at: waits_at.map(Into::into),
        }
    }
}

impl From<Notice> for core::Notice {
    fn from(notice: Notice) -> Self {
        let Notice { number, waits_at } = notice;
        Self {
            number,
            waits_at: waits_at.map(Into::into),
        }
    }
}

impl From<core::Choice> for Choice {
    fn from(choice: core::Choice) -> Self {
        match choice {
            core::Choice::RedeliverOn { date } => Self::RedeliverOn {
                date: CalendarDate(date),
            },
            core::Choice::PickupPoint { pickup_point } => Self::PickupPoint { pickup_point },
            core::Choice::Neighbour { neighbour } => Self::Neighbour { neighbour },
            core::Choice::SafePlace { place } => Self::SafePlace { place },
            core::Choice::Hold => Self::Hold,
        }
    }
}

impl From<Choice> for core::Choice {
    fn from(choice: Choice) -> Self {
        match choice {
            Choice::RedeliverOn { date } => Self::RedeliverOn { date: date.0 },
            Choice::PickupPoint { pickup_point } => Self::PickupPoint { pickup_point },
            Choice::Neighbour { neighbour } => Self::Neighbour { neighbour },
            Choice::SafePlace { place } => Self::SafePlace { place },
            Choice::Hold => Self::Hold,
        }
    }
}

impl TryFrom<core::CustomerChoice> for CustomerChoice {
    type Error = TourneeError;

    fn try_from(choice: core::CustomerChoice) -> Result<Self, TourneeError> {
        let core::CustomerChoice {
            choice,
            made_at_ms,
            made_by,
        } = choice;
        Ok(Self {
            choice: choice.into(),
            made_at: calendar::moment(made_at_ms, "made_at_ms")?,
            made_by,
        })
    }
}

impl TryFrom<core::Attempt> for Attempt {
    type Error = TourneeError;

    fn try_from(attempt: core::Attempt) -> Result<Self, TourneeError> {
        let core::Attempt {
            outcome,
            recorded_at_ms,
            device,
            postman,
            position,
            notice,
            proofs,
        } = attempt;
        Ok(Self {
            outcome,
            recorded_at: calendar::moment(recorded_at_ms, "recorded_at_ms")?,
            device,
            postman,
            position,
            notice: notice.map(Into::into),
            proofs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_kind_and_every_kind_its_code() {
        for kind in OutcomeKind::ALL {
            let example = kind.example();
            assert_eq!(OutcomeKind::of(&example), kind);
            assert_eq!(OutcomeKind::from_code(example.code()).unwrap(), kind);
        }
        assert!(matches!(
            OutcomeKind::from_code("teleported"),
            Err(TourneeError::Internal { .. })
        ));
    }

    #[test]
    fn a_notice_and_a_choice_keep_their_days_both_ways() {
        let notice = core::Notice {
            number: Some("AV2026001".into()),
            waits_at: Some(core::WaitingPlace {
                kind: WaitingPlaceKind::Locker,
                place_id: "lk-1".into(),
                until: Some("2026-03-14".into()),
            }),
        };
        let app = Notice::from(notice.clone());
        assert_eq!(
            app.waits_at.as_ref().and_then(|w| w.until.clone()),
            Some(CalendarDate("2026-03-14".into()))
        );
        assert_eq!(core::Notice::from(app), notice);
        let choice = core::Choice::RedeliverOn {
            date: "2026-03-15".into(),
        };
        assert_eq!(core::Choice::from(Choice::from(choice.clone())), choice);
    }
}
