//! What the app's screens show and send, in the words of the screens: the round, its stops, the
//! door, the inputs of an attempt or a correction, and the interactions waiting for the server.

use std::time::SystemTime;

use tournee_sync_core::model::{
    AccessNotes, Outcome, Position, Preferences, Proof, ProposedCorrection, ReferenceAddress,
    Requirements, RoundManifest,
};
use tournee_sync_core::store::{self, Interaction, InteractionKind};
use tournee_sync_core::sync::wire::RefusalCode;
use tournee_sync_core::sync::SyncReport;
use tournee_sync_core::views::{DoorView, StopView};

use crate::calendar::CalendarDate;
use crate::error::TourneeError;
use crate::model::{Attempt, CustomerChoice, Notice, OutcomeKind};

/// The round loaded on the phone, for the header of the stop list.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RoundSummary {
    /// The round's id.
    pub round_id: String,
    /// The day it is planned for.
    pub date: CalendarDate,
    /// The postman it is assigned to.
    pub postman: String,
    /// How many stops it has.
    pub stop_count: u32,
}

impl From<&RoundManifest> for RoundSummary {
    fn from(m: &RoundManifest) -> Self {
        Self {
            round_id: m.round_id.clone(),
            date: CalendarDate(m.date.clone()),
            postman: m.postman.clone(),
            stop_count: u32::try_from(m.stops.len()).unwrap_or(u32::MAX),
        }
    }
}

/// One line of the stop list.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Stop {
    /// Position in the round, from 1.
    pub order: u32,
    /// The delivery point's id.
    pub delivery_point: String,
    /// The address, once the delivery point is synced.
    pub address: Option<ReferenceAddress>,
    /// Door code, floor, mailbox, once the delivery point is synced.
    pub access: Option<AccessNotes>,
    /// The S10 numbers (e.g. `RR123456785FR`) of the items to present there, for
    /// `FieldStore.door`.
    pub items: Vec<String>,
    /// Items whose document is not on the phone yet: sync before leaving the office.
    pub missing_items: Vec<String>,
}

impl From<StopView> for Stop {
    fn from(v: StopView) -> Self {
        let (address, access) = match v.address {
            Some((address, access)) => (Some(address), Some(access)),
            None => (None, None),
        };
        Self {
            order: v.order,
            delivery_point: v.delivery_point,
            address,
            access,
            items: v.items,
            missing_items: v.missing_items,
        }
    }
}

/// One attempt already recorded on an item, with its id.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RecordedAttempt {
    /// The attempt's id, as `PendingInteraction.id` gave it when it was recorded.
    pub id: String,
    /// The attempt.
    pub attempt: Attempt,
}

/// The door screen for one item: what the customer asked and what the requirements forbid.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Door {
    /// The item's S10 number.
    pub item: String,
    /// The delivery point it is addressed to.
    pub delivery_point: String,
    /// What the sender paid for.
    pub requirements: Requirements,
    /// The customer's current choice for this item; null (nil in Swift) when none.
    pub customer_choice: Option<CustomerChoice>,
    /// Why that choice cannot be honoured, in words for the postman; null (nil in Swift)
    /// when it can or there is none.
    pub choice_not_applicable: Option<String>,
    /// The customer's standing preferences for the delivery point; null (nil in Swift) until
    /// the delivery point is synced.
    pub preferences: Option<Preferences>,
    /// The outcomes the requirements forbid (e.g. handing a signed-for item to a neighbour):
    /// grey them out.
    pub forbidden_outcomes: Vec<OutcomeKind>,
    /// Why, in words to show beside them; null (nil in Swift) when nothing is forbidden.
    pub forbidden_reason: Option<String>,
    /// Whether an attempt already delivered the item.
    pub delivered: bool,
    /// Attempts so far, oldest first.
    pub attempts: Vec<RecordedAttempt>,
}

impl TryFrom<DoorView> for Door {
    type Error = TourneeError;

    fn try_from(v: DoorView) -> Result<Self, TourneeError> {
        Ok(Self {
            item: v.item,
            delivery_point: v.delivery_point,
            requirements: v.requirements,
            customer_choice: v.choice.map(CustomerChoice::try_from).transpose()?,
            choice_not_applicable: v.choice_not_applicable,
            preferences: v.preferences,
            forbidden_outcomes: v
                .forbidden_outcomes
                .into_iter()
                .map(OutcomeKind::from_code)
                .collect::<Result<_, _>>()?,
            forbidden_reason: v.forbidden_reason,
            delivered: v.delivered,
            attempts: v
                .attempts
                .into_iter()
                .map(|(id, attempt)| {
                    Ok(RecordedAttempt {
                        id,
                        attempt: attempt.try_into()?,
                    })
                })
                .collect::<Result<_, TourneeError>>()?,
        })
    }
}

/// What the postman enters for an attempt; the device and postman come from the store.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AttemptInput {
    /// What happened.
    pub outcome: Outcome,
    /// When, by the phone's clock at the door (Kotlin `Instant.now()`, Swift `Date()`).
    pub recorded_at: SystemTime,
    /// The GNSS fix; null (nil in Swift) without one.
    pub position: Option<Position>,
    /// The notice card left, if any.
    pub notice: Option<Notice>,
    /// The signature and photos taken, as `FieldStore.queueProof` returned them; an empty
    /// list when none.
    pub proofs: Vec<Proof>,
}

/// What the postman proposes for an address; the postman and device come from the store.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CorrectionInput {
    /// The fields to change.
    pub proposed: ProposedCorrection,
    /// When, by the phone's clock.
    pub proposed_at: SystemTime,
}

/// What an interaction recorded on this phone was.
#[uniffi::remote(Enum)]
pub enum InteractionKind {
    /// A delivery attempt.
    Attempt,
    /// A proposed address correction.
    Correction,
    /// A customer's choice for an item.
    Choice,
    /// A change of a customer's standing preferences.
    Preferences,
}

/// Something done on this phone, for the "not yet sent" list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingInteraction {
    /// The attempt, correction or choice id (a change hash for preferences).
    pub id: String,
    /// The document it was written to, e.g. `item:RR123456785FR`.
    pub document: String,
    /// What it was.
    pub kind: InteractionKind,
}

impl From<Interaction> for PendingInteraction {
    fn from(i: Interaction) -> Self {
        Self {
            id: i.id,
            document: i.doc.to_string(),
            kind: i.kind,
        }
    }
}

/// Why the server refused a document's changes. Nothing of the document's entry was stored.
#[uniffi::remote(Enum)]
pub enum RefusalCode {
    /// The phone's role may not write what the changes write.
    Forbidden,
    /// The changes write values the rules refuse.
    Invalid,
    /// The document is not in this phone's round or account.
    OutOfScope,
    /// The server has no such document.
    UnknownDocument,
    /// The changes could not be read.
    Malformed,
    /// An entry or a change is over the server's size limit.
    TooLarge,
    /// A change collides with a different one the server stored (e.g. a phone restored from an
    /// old copy of its store): the phone writes its pending interactions again (see
    /// `SyncProgress.recordedAgain`).
    Collision,
    /// A change's signature is missing, from an unknown or revoked device, or wrong: register
    /// this device's key (`PUT /v1/devices/signing-key`) and sign with it (`useSigner`).
    Signature,
}

/// A document the server refused, with its reason.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RefusedDocument {
    /// The document, e.g. `item:RR123456785FR`.
    pub document: String,
    /// Why, as a code to act on.
    pub code: RefusalCode,
    /// The server's explanation.
    pub message: String,
}

/// A pending interaction the phone had to write again: the server held another change under
/// this phone's sequence number, so the original could never be stored.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RecordedAgain {
    /// The interaction as it was pending.
    pub before: PendingInteraction,
    /// How it ended.
    pub outcome: AgainOutcome,
}

/// How an interaction written again ended.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum AgainOutcome {
    /// The server holds it exactly as recorded: it is saved.
    Stored,
    /// Written again and pending; follow its new id.
    Recorded {
        /// The interaction that replaces it.
        again: PendingInteraction,
    },
    /// The item or address no longer allows it (e.g. the item was delivered meanwhile):
    /// nothing was written.
    Refused {
        /// Why, for people.
        reason: String,
    },
}

/// What one sync answer did.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct SyncProgress {
    /// Documents that received changes: refresh the screens showing them.
    pub changed_documents: Vec<String>,
    /// Interactions the server now stores durably.
    pub acknowledged: Vec<PendingInteraction>,
    /// Documents the server refused.
    pub refused: Vec<RefusedDocument>,
    /// Pending interactions recorded again under new ids; they are still pending.
    pub recorded_again: Vec<RecordedAgain>,
}

impl From<SyncReport> for SyncProgress {
    fn from(r: SyncReport) -> Self {
        Self {
            changed_documents: r
                .changed_documents
                .iter()
                .map(ToString::to_string)
                .collect(),
            acknowledged: r.acknowledged.into_iter().map(Into::into).collect(),
            refused: r
                .refused
                .into_iter()
                .map(|(doc, code, message)| RefusedDocument {
                    document: doc.to_string(),
                    code,
                    message,
                })
                .collect(),
            recorded_again: r
                .recorded_again
                .into_iter()
                .map(|again| RecordedAgain {
                    before: again.before.into(),
                    outcome: match again.outcome {
                        store::AgainOutcome::Stored => AgainOutcome::Stored,
                        store::AgainOutcome::Recorded(again) => AgainOutcome::Recorded {
                            again: again.into(),
                        },
                        store::AgainOutcome::Refused(reason) => AgainOutcome::Refused { reason },
                    },
                })
                .collect(),
        }
    }
}
