//! The validation rules, as pure functions: the phone runs them before it commits, the server's
//! change validator runs them again on what arrives, and the customer API before it writes.
//!
//! Every rule returns a [`Violation`] naming the field and the reason in words a back-office
//! operator or an app developer can act on.

use std::fmt;

use crate::model::{
    Attempt, Choice, CustomerChoice, GeoPoint, Outcome, Position, Preferences, ProposedCorrection,
    ReferenceAddress, Requirements, Review, ReviewDecision,
};

/// NF Z10-011: an address has at most 6 lines.
pub const MAX_ADDRESS_LINES: usize = 6;
/// NF Z10-011: an address line has at most 38 characters.
pub const MAX_ADDRESS_LINE_CHARS: usize = 38;
/// The longest free text accepted anywhere (notes, reasons).
pub const MAX_FREE_TEXT_CHARS: usize = 500;
/// The longest identifier accepted (device, postman, customer, place ids).
pub const MAX_ID_CHARS: usize = 64;
/// The longest short field (door code, floor, neighbour…).
pub const MAX_SHORT_TEXT_CHARS: usize = 120;
/// A GNSS accuracy beyond this is not a position.
pub const MAX_ACCURACY_M: f64 = 10_000.0;
/// Earliest plausible device timestamp: 2020-01-01T00:00:00Z.
pub const MIN_TIMESTAMP_MS: i64 = 1_577_836_800_000;
/// Latest plausible device timestamp: 2100-01-01T00:00:00Z.
pub const MAX_TIMESTAMP_MS: i64 = 4_102_444_800_000;

/// The rules above as JSON Schema patterns (ECMA-262, as JSON Schema and OpenAPI 3.1 use), so
/// that a request valid by the server's published schema is not refused by its rules.
pub mod patterns {
    /// [`super::optional_text`]: no control characters but the line feed.
    pub const TEXT: &str = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$";
    /// [`super::required_text`]: no control characters but the line feed, and not blank.
    pub const REQUIRED_TEXT: &str = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$";
    /// [`super::identifier`].
    pub const IDENTIFIER: &str = r"^[A-Za-z0-9._@-]{1,64}$";
    /// [`super::date`]: `YYYY-MM-DD` from the year 2000 (with `format: date` for the calendar).
    pub const DATE: &str = r"^[2-9][0-9]{3}-[0-9]{2}-[0-9]{2}$";
    /// The shape of an S10 number, in either case (its check digit is checked by the server).
    pub const S10: &str = r"^[A-Za-z]{2}[0-9]{9}[A-Za-z]{2}$";
}

/// The field a [`Violation`] is about, named as in the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Field {
    DocId,
    EntryId,
    ItemId,
    DeliveryPointId,
    Path,
    Outcome,
    Neighbour,
    SafePlace,
    PickupPoint,
    OtherText,
    RecordedAt,
    Device,
    Postman,
    Customer,
    Position,
    Accuracy,
    NoticeNumber,
    NoticeWaitsAt,
    WaitingUntil,
    Proof,
    Choice,
    Date,
    MadeAt,
    Preferences,
    Correction,
    HouseNumber,
    Street,
    Building,
    Floor,
    DoorCode,
    MailboxPosition,
    Pin,
    Note,
    AddressLines,
    Postcode,
    City,
    Reviewer,
    ReviewReason,
    ReviewedAt,
    Requirements,
    Actor,
    Change,
    Message,
}

impl Field {
    /// The field's name as the documents spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::DocId => "doc_id",
            Field::EntryId => "entry_id",
            Field::ItemId => "item_id",
            Field::DeliveryPointId => "delivery_point_id",
            Field::Path => "path",
            Field::Outcome => "outcome",
            Field::Neighbour => "neighbour",
            Field::SafePlace => "safe_place",
            Field::PickupPoint => "pickup_point",
            Field::OtherText => "outcome.text",
            Field::RecordedAt => "recorded_at_ms",
            Field::Device => "device",
            Field::Postman => "postman",
            Field::Customer => "customer",
            Field::Position => "position",
            Field::Accuracy => "position.accuracy_m",
            Field::NoticeNumber => "notice.number",
            Field::NoticeWaitsAt => "notice.waits_at",
            Field::WaitingUntil => "notice.waits_at.until",
            Field::Proof => "proofs",
            Field::Choice => "choice",
            Field::Date => "date",
            Field::MadeAt => "made_at_ms",
            Field::Preferences => "preferences",
            Field::Correction => "correction",
            Field::HouseNumber => "house_number",
            Field::Street => "street",
            Field::Building => "building",
            Field::Floor => "floor",
            Field::DoorCode => "door_code",
            Field::MailboxPosition => "mailbox_position",
            Field::Pin => "pin",
            Field::Note => "note",
            Field::AddressLines => "lines",
            Field::Postcode => "postcode",
            Field::City => "city",
            Field::Reviewer => "review.by",
            Field::ReviewReason => "review.reason",
            Field::ReviewedAt => "review.at_ms",
            Field::Requirements => "requirements",
            Field::Actor => "actor",
            Field::Change => "change",
            Field::Message => "message",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broken rule: which field, and why, in words fit for the person who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Violation {
    /// The offending field.
    pub field: Field,
    /// Why it is refused.
    pub reason: String,
}

impl Violation {
    /// A violation of `field` for `reason`.
    pub fn new(field: Field, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

type RuleResult = Result<(), Violation>;

/// A required single-line text of at most `max` characters.
pub fn required_text(field: Field, value: &str, max: usize) -> RuleResult {
    if value.trim().is_empty() {
        return Err(Violation::new(field, "is required"));
    }
    optional_text(field, Some(value), max)
}

/// An optional text of at most `max` characters, without control characters.
pub fn optional_text(field: Field, value: Option<&str>, max: usize) -> RuleResult {
    let Some(value) = value else { return Ok(()) };
    let chars = value.chars().count();
    if chars > max {
        return Err(Violation::new(
            field,
            format!("is {chars} characters long, at most {max} are allowed"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Violation::new(field, "contains control characters"));
    }
    Ok(())
}

/// An identifier: 1–64 characters of letters, digits, `-`, `_`, `.`, `@`.
pub fn identifier(field: Field, value: &str) -> RuleResult {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_CHARS
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Violation::new(
            field,
            "must be 1 to 64 characters of letters, digits, '-', '_', '.', '@'",
        ))
    }
}

/// A device timestamp between 2020 and 2100.
pub fn timestamp(field: Field, ms: i64) -> RuleResult {
    if (MIN_TIMESTAMP_MS..MAX_TIMESTAMP_MS).contains(&ms) {
        Ok(())
    } else {
        Err(Violation::new(
            field,
            "is not a plausible time (Unix milliseconds between 2020 and 2100)",
        ))
    }
}

/// Latitude in [-90, 90] and longitude in [-180, 180], both finite.
pub fn coordinates(field: Field, lat: f64, lon: f64) -> RuleResult {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(Violation::new(
            field,
            format!("latitude {lat} is outside [-90, 90]"),
        ));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(Violation::new(
            field,
            format!("longitude {lon} is outside [-180, 180]"),
        ));
    }
    Ok(())
}

/// A GNSS fix: coordinates in range and an accuracy that means something.
pub fn position(pos: &Position) -> RuleResult {
    coordinates(Field::Position, pos.lat, pos.lon)?;
    if !pos.accuracy_m.is_finite() || pos.accuracy_m < 0.0 || pos.accuracy_m > MAX_ACCURACY_M {
        return Err(Violation::new(
            Field::Accuracy,
            format!("must be between 0 and {MAX_ACCURACY_M} metres"),
        ));
    }
    Ok(())
}

/// A calendar date written `YYYY-MM-DD`.
pub fn date(field: Field, value: &str) -> RuleResult {
    parse_date(value).map(|_| ()).ok_or_else(|| {
        Violation::new(
            field,
            format!("'{value}' is not a calendar date written YYYY-MM-DD"),
        )
    })
}

/// Parses `YYYY-MM-DD` into (year, month, day) if it names a real day.
pub fn parse_date(value: &str) -> Option<(u32, u32, u32)> {
    let bytes = value.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = &value[r];
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (y >= 2000 && (1..=days).contains(&d)).then_some((y, m, d))
}

/// A notice number: 4–32 letters and digits.
pub fn notice_number(value: &str) -> RuleResult {
    let ok = (4..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Violation::new(
            Field::NoticeNumber,
            "must be 4 to 32 letters and digits",
        ))
    }
}

/// Where an item may go given what its sender paid for: an item that needs a signature, an ID
/// check, an age check or cash on delivery is handed over in person, never left.
pub fn outcome_allowed(outcome: &Outcome, req: &Requirements) -> RuleResult {
    let left_unattended = matches!(
        outcome,
        Outcome::DeliveredToNeighbour { .. }
            | Outcome::DeliveredToSafePlace { .. }
            | Outcome::DeliveredToMailbox
    );
    if left_unattended && req.needs_addressee_in_person() {
        return Err(Violation::new(Field::Outcome, forbidden_reason(req)));
    }
    Ok(())
}

/// Whether a customer choice can be honoured for an item with these requirements.
pub fn choice_allowed(choice: &Choice, req: &Requirements) -> RuleResult {
    let left_unattended = matches!(choice, Choice::Neighbour { .. } | Choice::SafePlace { .. });
    if left_unattended && req.needs_addressee_in_person() {
        return Err(Violation::new(Field::Choice, forbidden_reason(req)));
    }
    Ok(())
}

fn forbidden_reason(req: &Requirements) -> String {
    let mut needs = Vec::new();
    if req.signature {
        needs.push("a signature");
    }
    if req.id_check {
        needs.push("an ID check");
    }
    if req.age_check {
        needs.push("an age check");
    }
    if req.cash_on_delivery_cents.is_some() {
        needs.push("cash on delivery");
    }
    format!(
        "this item requires {}, so it cannot be left with a neighbour, in a safe place or in the mailbox",
        needs.join(" and ")
    )
}

/// Everything an attempt must carry for its outcome, and every field in range.
pub fn attempt(a: &Attempt) -> RuleResult {
    identifier(Field::Device, &a.device)?;
    identifier(Field::Postman, &a.postman)?;
    timestamp(Field::RecordedAt, a.recorded_at_ms)?;
    if let Some(pos) = &a.position {
        position(pos)?;
    }
    match &a.outcome {
        Outcome::DeliveredToNeighbour { neighbour } => {
            required_text(Field::Neighbour, neighbour, MAX_SHORT_TEXT_CHARS)?
        }
        Outcome::DeliveredToSafePlace { place } => {
            required_text(Field::SafePlace, place, MAX_SHORT_TEXT_CHARS)?
        }
        Outcome::DeliveredToPickupPoint { pickup_point } => {
            identifier(Field::PickupPoint, pickup_point)?
        }
        Outcome::Other { text } => required_text(Field::OtherText, text, MAX_FREE_TEXT_CHARS)?,
        _ => {}
    }
    if matches!(a.outcome, Outcome::AddresseeAbsent) {
        // A notice is the customer's only way to get the item back: both parts are required.
        let notice = a.notice.as_ref().ok_or_else(|| {
            Violation::new(
                Field::NoticeNumber,
                "a notice is required when the addressee is absent",
            )
        })?;
        if notice.number.is_none() {
            return Err(Violation::new(
                Field::NoticeNumber,
                "is required when a notice is left",
            ));
        }
        if notice.waits_at.is_none() {
            return Err(Violation::new(
                Field::NoticeWaitsAt,
                "is required when a notice is left: say where the item can be collected",
            ));
        }
    }
    if let Some(notice) = &a.notice {
        if a.outcome.is_delivered() {
            return Err(Violation::new(
                Field::NoticeNumber,
                "a delivered item leaves no notice",
            ));
        }
        if let Some(number) = &notice.number {
            notice_number(number)?;
        }
        if let Some(place) = &notice.waits_at {
            identifier(Field::NoticeWaitsAt, &place.place_id)?;
            if let Some(until) = &place.until {
                date(Field::WaitingUntil, until)?;
            }
        }
    }
    for proof in &a.proofs {
        let hex = proof.sha256.len() == 64
            && proof
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            return Err(Violation::new(
                Field::Proof,
                "a proof is a lower-case hex SHA-256 (64 characters)",
            ));
        }
    }
    if a.proofs.len() > 16 {
        return Err(Violation::new(
            Field::Proof,
            "at most 16 proofs per attempt",
        ));
    }
    Ok(())
}

/// An attempt checked against the item it is recorded on.
pub fn attempt_for_item(a: &Attempt, req: &Requirements) -> RuleResult {
    attempt(a)?;
    outcome_allowed(&a.outcome, req)
}

/// A customer's choice: well-formed, whatever the item's requirements say (those are checked by
/// [`choice_allowed`], since a choice the requirements forbid is kept but marked not applicable).
pub fn customer_choice(c: &CustomerChoice) -> RuleResult {
    identifier(Field::Customer, &c.made_by)?;
    timestamp(Field::MadeAt, c.made_at_ms)?;
    match &c.choice {
        Choice::RedeliverOn { date: d } => date(Field::Date, d),
        Choice::PickupPoint { pickup_point } => identifier(Field::PickupPoint, pickup_point),
        Choice::Neighbour { neighbour } => {
            required_text(Field::Neighbour, neighbour, MAX_SHORT_TEXT_CHARS)
        }
        Choice::SafePlace { place } => required_text(Field::SafePlace, place, MAX_SHORT_TEXT_CHARS),
        Choice::Hold => Ok(()),
    }
}

/// Standing preferences, field by field.
pub fn preferences(p: &Preferences) -> RuleResult {
    optional_text(
        Field::SafePlace,
        p.safe_place.as_deref(),
        MAX_SHORT_TEXT_CHARS,
    )?;
    optional_text(
        Field::Neighbour,
        p.preferred_neighbour.as_deref(),
        MAX_SHORT_TEXT_CHARS,
    )?;
    if let Some(pp) = &p.preferred_pickup_point {
        identifier(Field::PickupPoint, pp)?;
    }
    Ok(())
}

/// No preferred neighbour together with "never to a neighbour". Checked when one person sets
/// preferences, not on merged documents: two of a customer's devices may set one each offline.
pub fn preferences_consistent(p: &Preferences) -> RuleResult {
    if p.never_to_neighbour && p.preferred_neighbour.is_some() {
        return Err(Violation::new(
            Field::Neighbour,
            "a preferred neighbour contradicts 'never to a neighbour'",
        ));
    }
    Ok(())
}

/// A proposed correction: proposes something, and every proposed field is in range.
pub fn proposed_correction(c: &ProposedCorrection) -> RuleResult {
    if c.is_empty() {
        return Err(Violation::new(Field::Correction, "proposes no change"));
    }
    if let Some(n) = &c.house_number {
        let ok = !n.is_empty() && n.len() <= 8 && n.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(Violation::new(
                Field::HouseNumber,
                "must be 1 to 8 letters and digits",
            ));
        }
    }
    optional_text(Field::Street, c.street.as_deref(), MAX_ADDRESS_LINE_CHARS)?;
    optional_text(
        Field::Building,
        c.building.as_deref(),
        MAX_ADDRESS_LINE_CHARS,
    )?;
    optional_text(Field::Floor, c.floor.as_deref(), MAX_SHORT_TEXT_CHARS)?;
    optional_text(Field::DoorCode, c.door_code.as_deref(), 32)?;
    optional_text(
        Field::MailboxPosition,
        c.mailbox_position.as_deref(),
        MAX_SHORT_TEXT_CHARS,
    )?;
    optional_text(Field::Note, c.note.as_deref(), MAX_FREE_TEXT_CHARS)?;
    if let Some(GeoPoint { lat, lon }) = c.pin {
        coordinates(Field::Pin, lat, lon)?;
    }
    Ok(())
}

/// A house number as the reference writes it: 1–8 letters and digits ("35", "12A"); "bis" and
/// "ter" go in the suffix.
pub fn house_number(n: &str) -> RuleResult {
    let ok = !n.is_empty() && n.len() <= 8 && n.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Violation::new(
            Field::HouseNumber,
            "must be 1 to 8 letters and digits",
        ))
    }
}

/// A reference address as the back office publishes it (NF Z10-011 line rules).
pub fn reference_address(r: &ReferenceAddress) -> RuleResult {
    if r.lines.is_empty() || r.lines.len() > MAX_ADDRESS_LINES {
        return Err(Violation::new(
            Field::AddressLines,
            format!("an address has 1 to {MAX_ADDRESS_LINES} lines (NF Z10-011)"),
        ));
    }
    for line in &r.lines {
        required_text(Field::AddressLines, line, MAX_ADDRESS_LINE_CHARS)?;
    }
    house_number(&r.house_number)?;
    required_text(Field::Street, &r.street, MAX_ADDRESS_LINE_CHARS)?;
    required_text(Field::Postcode, &r.postcode, 10)?;
    required_text(Field::City, &r.city, MAX_ADDRESS_LINE_CHARS)?;
    optional_text(
        Field::Building,
        r.building.as_deref(),
        MAX_ADDRESS_LINE_CHARS,
    )?;
    if let Some(GeoPoint { lat, lon }) = r.pin {
        coordinates(Field::Pin, lat, lon)?;
    }
    Ok(())
}

/// A review decision: who, when, and a reason for a rejection.
pub fn review(r: &Review) -> RuleResult {
    identifier(Field::Reviewer, &r.by)?;
    timestamp(Field::ReviewedAt, r.at_ms)?;
    optional_text(Field::ReviewReason, Some(&r.reason), MAX_FREE_TEXT_CHARS)?;
    if r.decision == ReviewDecision::Rejected && r.reason.trim().is_empty() {
        return Err(Violation::new(
            Field::ReviewReason,
            "a rejection needs a reason for the postman",
        ));
    }
    Ok(())
}
