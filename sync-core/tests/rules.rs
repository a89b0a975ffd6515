//! Every validation rule of `rules.rs`, accepted and refused.
//!
//! Each case starts from a valid fixture and changes one field, then checks which field the
//! violation names (and, where it helps the person fixing it, part of the reason).

use tournee_sync_core::fixtures::{self, MORNING_MS};
use tournee_sync_core::model::{
    Attempt, Choice, Correction, CustomerChoice, GeoPoint, HouseSuffix, Notice, Outcome, Position,
    Preferences, Proof, ProofKind, ProposedCorrection, ReferenceAddress, Requirements, Review,
    ReviewDecision, WaitingPlace, WaitingPlaceKind,
};
use tournee_sync_core::rules::{
    self, Field, Violation, MAX_ACCURACY_M, MAX_ADDRESS_LINE_CHARS, MAX_FREE_TEXT_CHARS,
    MAX_ID_CHARS, MAX_SHORT_TEXT_CHARS, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn accepted(result: Result<(), Violation>) {
    if let Err(violation) = result {
        panic!("expected the value to be accepted, it was refused: {violation}");
    }
}

#[track_caller]
fn refused(result: Result<(), Violation>, field: Field, reason_fragment: &str) {
    let violation = result.expect_err("expected the value to be refused");
    assert_eq!(violation.field, field, "wrong field in: {violation}");
    assert!(
        violation.reason.contains(reason_fragment),
        "the reason {:?} should mention {reason_fragment:?}",
        violation.reason
    );
}

/// The valid baseline attempt: addressee absent, notice left, one photo.
fn absent() -> Attempt {
    fixtures::absent_attempt("device-1", "postman-1", 7)
}

/// The baseline attempt with one change.
fn absent_with(change: impl FnOnce(&mut Attempt)) -> Attempt {
    let mut attempt = absent();
    change(&mut attempt);
    attempt
}

/// A delivery to the addressee, with one change.
fn delivered_with(change: impl FnOnce(&mut Attempt)) -> Attempt {
    let mut attempt = fixtures::delivered_attempt("device-1", "postman-1", 7);
    change(&mut attempt);
    attempt
}

/// A valid attempt with the given outcome (a notice only where the outcome calls for one).
fn attempt_with_outcome(outcome: Outcome) -> Attempt {
    let notice_needed = matches!(outcome, Outcome::AddresseeAbsent);
    absent_with(|a| {
        a.outcome = outcome;
        if !notice_needed {
            a.notice = None;
        }
    })
}

fn proof(sha256: impl Into<String>) -> Proof {
    Proof {
        kind: ProofKind::Photo,
        sha256: sha256.into(),
    }
}

fn choice(choice: Choice) -> CustomerChoice {
    CustomerChoice {
        choice,
        ..fixtures::redeliver_choice("customer-1", "2026-12-01")
    }
}

fn correction() -> Correction {
    fixtures::number_correction("device-1", "postman-1")
}

fn proposed(change: impl FnOnce(&mut ProposedCorrection)) -> ProposedCorrection {
    let mut proposed = ProposedCorrection {
        house_number: Some("35".into()),
        ..Default::default()
    };
    change(&mut proposed);
    proposed
}

fn reference_with(change: impl FnOnce(&mut ReferenceAddress)) -> ReferenceAddress {
    let mut reference = fixtures::reference_address(7);
    change(&mut reference);
    reference
}

fn review(decision: ReviewDecision, reason: &str) -> Review {
    Review {
        decision,
        by: "office.paris-11@laposte".into(),
        reason: reason.into(),
        at_ms: MORNING_MS,
    }
}

/// Each requirement that forces a hand-over in person, alone, with the words the reason uses.
fn in_person_requirements() -> Vec<(Requirements, &'static str)> {
    vec![
        (
            Requirements {
                signature: true,
                ..Default::default()
            },
            "a signature",
        ),
        (
            Requirements {
                id_check: true,
                ..Default::default()
            },
            "an ID check",
        ),
        (
            Requirements {
                age_check: true,
                ..Default::default()
            },
            "an age check",
        ),
        (
            Requirements {
                cash_on_delivery_cents: Some(4_990),
                ..Default::default()
            },
            "cash on delivery",
        ),
    ]
}

fn unattended_outcomes() -> Vec<Outcome> {
    vec![
        Outcome::DeliveredToNeighbour {
            neighbour: "Mme Martin, 2e gauche".into(),
        },
        Outcome::DeliveredToSafePlace {
            place: "abri de jardin".into(),
        },
        Outcome::DeliveredToMailbox,
    ]
}

fn outcomes_in_person() -> Vec<Outcome> {
    vec![
        Outcome::DeliveredToAddressee,
        Outcome::DeliveredToPickupPoint {
            pickup_point: "relais-75011-04".into(),
        },
        Outcome::AddresseeAbsent,
        Outcome::Refused,
        Outcome::AddressIncorrect,
        Outcome::NoAccess,
        Outcome::Damaged,
        Outcome::Other {
            text: "chien agressif".into(),
        },
    ]
}

fn unattended_choices() -> Vec<Choice> {
    vec![
        Choice::Neighbour {
            neighbour: "Mme Martin, 2e gauche".into(),
        },
        Choice::SafePlace {
            place: "abri de jardin".into(),
        },
    ]
}

fn choices_in_person() -> Vec<Choice> {
    vec![
        Choice::RedeliverOn {
            date: "2026-12-01".into(),
        },
        Choice::PickupPoint {
            pickup_point: "relais-75011-04".into(),
        },
        Choice::Hold,
    ]
}

// ---------------------------------------------------------------------------------------------
// required_text / optional_text
// ---------------------------------------------------------------------------------------------

#[test]
fn required_text_accepts_text_up_to_the_limit() {
    accepted(rules::required_text(Field::Neighbour, "Mme Martin", 120));
    accepted(rules::required_text(
        Field::Neighbour,
        &"a".repeat(120),
        120,
    ));
}

#[test]
fn required_text_refuses_empty_and_blank() {
    refused(
        rules::required_text(Field::Neighbour, "", 120),
        Field::Neighbour,
        "required",
    );
    refused(
        rules::required_text(Field::SafePlace, " \t ", 120),
        Field::SafePlace,
        "required",
    );
}

#[test]
fn required_text_refuses_one_character_too_many() {
    refused(
        rules::required_text(Field::Street, &"a".repeat(39), 38),
        Field::Street,
        "39 characters long, at most 38",
    );
}

#[test]
fn text_length_counts_characters_not_bytes() {
    // 120 'é' are 240 bytes: still 120 characters.
    let accented = "é".repeat(MAX_SHORT_TEXT_CHARS);
    assert_eq!(accented.len(), 2 * MAX_SHORT_TEXT_CHARS);
    accepted(rules::required_text(
        Field::Neighbour,
        &accented,
        MAX_SHORT_TEXT_CHARS,
    ));
    accepted(rules::optional_text(
        Field::Note,
        Some(&accented),
        MAX_SHORT_TEXT_CHARS,
    ));
    // Emoji are 4 bytes each.
    accepted(rules::optional_text(
        Field::Note,
        Some(&"📦".repeat(38)),
        38,
    ));
    refused(
        rules::optional_text(Field::Note, Some(&"é".repeat(121)), MAX_SHORT_TEXT_CHARS),
        Field::Note,
        "121 characters",
    );
}

#[test]
fn optional_text_accepts_absent_empty_and_newlines() {
    accepted(rules::optional_text(Field::Note, None, 10));
    accepted(rules::optional_text(Field::Note, Some(""), 10));
    accepted(rules::optional_text(
        Field::Note,
        Some("line 1\nline 2"),
        500,
    ));
}

#[test]
fn optional_text_refuses_control_characters() {
    for bad in [
        "tab\there",
        "bell\u{7}",
        "nul\0",
        "cr\r",
        "esc\u{1b}[31m",
        "del\u{7f}",
    ] {
        refused(
            rules::optional_text(Field::Note, Some(bad), 500),
            Field::Note,
            "control characters",
        );
    }
    refused(
        rules::required_text(Field::Floor, "2\u{0}", 120),
        Field::Floor,
        "control characters",
    );
}

#[test]
fn optional_text_refuses_too_long() {
    refused(
        rules::optional_text(Field::Note, Some(&"x".repeat(501)), MAX_FREE_TEXT_CHARS),
        Field::Note,
        "at most 500",
    );
}

// ---------------------------------------------------------------------------------------------
// identifier
// ---------------------------------------------------------------------------------------------

#[test]
fn identifier_accepts_letters_digits_and_punctuation() {
    for good in [
        "a",
        "postman-42",
        "device_7.b",
        "jean.dupont@laposte",
        "ABC123",
    ] {
        accepted(rules::identifier(Field::Postman, good));
    }
    accepted(rules::identifier(Field::Postman, &"a".repeat(MAX_ID_CHARS)));
}

#[test]
fn identifier_refuses_empty_too_long_and_other_characters() {
    let too_long = "a".repeat(MAX_ID_CHARS + 1);
    for bad in [
        "",
        too_long.as_str(),
        "a b",
        "a/b",
        "é",
        "a:b",
        "x\n",
        "a+b",
    ] {
        refused(
            rules::identifier(Field::Device, bad),
            Field::Device,
            "1 to 64 characters",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// timestamp
// ---------------------------------------------------------------------------------------------

#[test]
fn timestamp_accepts_2020_to_2100() {
    accepted(rules::timestamp(Field::RecordedAt, MIN_TIMESTAMP_MS));
    accepted(rules::timestamp(Field::RecordedAt, MORNING_MS));
    accepted(rules::timestamp(Field::RecordedAt, MAX_TIMESTAMP_MS - 1));
}

#[test]
fn timestamp_refuses_implausible_times() {
    for bad in [
        MIN_TIMESTAMP_MS - 1,
        MAX_TIMESTAMP_MS,
        0,
        -1,
        MORNING_MS / 1000,
        i64::MAX,
    ] {
        refused(
            rules::timestamp(Field::MadeAt, bad),
            Field::MadeAt,
            "plausible time",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// coordinates and position
// ---------------------------------------------------------------------------------------------

#[test]
fn coordinates_accept_the_edges() {
    for (lat, lon) in [
        (90.0, 180.0),
        (-90.0, -180.0),
        (90.0, -180.0),
        (-90.0, 180.0),
        (0.0, 0.0),
        (48.8566, 2.3522),
    ] {
        accepted(rules::coordinates(Field::Pin, lat, lon));
    }
}

#[test]
fn coordinates_refuse_bad_latitude() {
    for lat in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        90.000_001,
        -90.000_001,
        120.0,
    ] {
        refused(
            rules::coordinates(Field::Pin, lat, 2.35),
            Field::Pin,
            "latitude",
        );
    }
}

#[test]
fn coordinates_refuse_bad_longitude() {
    for lon in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        180.000_001,
        -180.000_001,
        360.0,
    ] {
        refused(
            rules::coordinates(Field::Position, 48.85, lon),
            Field::Position,
            "longitude",
        );
    }
}

fn fix(lat: f64, lon: f64, accuracy_m: f64) -> Position {
    Position {
        lat,
        lon,
        accuracy_m,
    }
}

#[test]
fn position_accepts_accuracy_from_zero_to_the_limit() {
    accepted(rules::position(&fix(48.85, 2.35, 0.0)));
    accepted(rules::position(&fix(48.85, 2.35, 6.5)));
    accepted(rules::position(&fix(48.85, 2.35, MAX_ACCURACY_M)));
}

#[test]
fn position_refuses_meaningless_accuracy() {
    for accuracy in [-0.1, MAX_ACCURACY_M + 0.1, f64::NAN, f64::INFINITY] {
        refused(
            rules::position(&fix(48.85, 2.35, accuracy)),
            Field::Accuracy,
            "metres",
        );
    }
}

#[test]
fn position_refuses_bad_coordinates_as_position() {
    refused(
        rules::position(&fix(91.0, 2.35, 5.0)),
        Field::Position,
        "latitude",
    );
    refused(
        rules::position(&fix(48.85, f64::NAN, 5.0)),
        Field::Position,
        "longitude",
    );
}

// ---------------------------------------------------------------------------------------------
// date
// ---------------------------------------------------------------------------------------------

#[test]
fn date_accepts_real_days() {
    for good in [
        "2026-01-01",
        "2026-12-31",
        "2026-04-30",
        "2028-02-29",
        "2000-02-29",
        "2026-02-28",
    ] {
        accepted(rules::date(Field::Date, good));
    }
    assert_eq!(rules::parse_date("2028-02-29"), Some((2028, 2, 29)));
}

#[test]
fn date_refuses_days_that_do_not_exist() {
    for bad in [
        "2027-02-29",
        "2100-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-04-31",
        "2026-01-00",
        "2026-01-32",
        "1999-12-31",
    ] {
        refused(rules::date(Field::Date, bad), Field::Date, bad);
    }
}

#[test]
fn date_refuses_other_formats() {
    for bad in [
        "",
        "2026-4-01",
        "26-04-01",
        "2026/04/01",
        "01-04-2026",
        "2026-04-01T00:00",
        "2026-04-1a",
        "+026-04-01",
        " 2026-04-1",
        "2026-01-é",
    ] {
        refused(
            rules::date(Field::WaitingUntil, bad),
            Field::WaitingUntil,
            "YYYY-MM-DD",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// notice_number
// ---------------------------------------------------------------------------------------------

#[test]
fn notice_number_accepts_4_to_32_letters_and_digits() {
    let at_limit = "A1".repeat(16);
    for good in ["AV12", "AV00000007", at_limit.as_str()] {
        accepted(rules::notice_number(good));
    }
}

#[test]
fn notice_number_refuses_the_rest() {
    let too_long = "A".repeat(33);
    for bad in ["", "AV1", too_long.as_str(), "AV-1234", "AV 1234", "AVé123"] {
        refused(rules::notice_number(bad), Field::NoticeNumber, "4 to 32");
    }
}

// ---------------------------------------------------------------------------------------------
// outcome_allowed and choice_allowed
// ---------------------------------------------------------------------------------------------

#[test]
fn outcome_allowed_refuses_leaving_an_item_that_must_be_handed_over() {
    for (requirements, words) in in_person_requirements() {
        for outcome in unattended_outcomes() {
            let result = rules::outcome_allowed(&outcome, &requirements);
            assert!(
                result.is_err(),
                "{} allowed for {requirements:?}",
                outcome.code()
            );
            refused(result, Field::Outcome, words);
        }
    }
}

#[test]
fn outcome_allowed_accepts_handing_over_in_person() {
    for (requirements, _) in in_person_requirements() {
        for outcome in outcomes_in_person() {
            accepted(rules::outcome_allowed(&outcome, &requirements));
        }
    }
}

#[test]
fn outcome_allowed_accepts_anything_without_requirements() {
    let none = Requirements::default();
    for outcome in unattended_outcomes()
        .into_iter()
        .chain(outcomes_in_person())
    {
        accepted(rules::outcome_allowed(&outcome, &none));
    }
}

#[test]
fn outcome_refusal_names_every_requirement() {
    let requirements = Requirements {
        signature: true,
        id_check: true,
        ..Default::default()
    };
    refused(
        rules::outcome_allowed(&Outcome::DeliveredToMailbox, &requirements),
        Field::Outcome,
        "a signature and an ID check",
    );
}

#[test]
fn choice_allowed_refuses_unattended_choices_for_items_handed_over_in_person() {
    for (requirements, words) in in_person_requirements() {
        for choice in unattended_choices() {
            refused(
                rules::choice_allowed(&choice, &requirements),
                Field::Choice,
                words,
            );
        }
    }
}

#[test]
fn choice_allowed_accepts_redelivery_pickup_point_and_hold() {
    for (requirements, _) in in_person_requirements() {
        for choice in choices_in_person() {
            accepted(rules::choice_allowed(&choice, &requirements));
        }
    }
}

#[test]
fn choice_allowed_accepts_anything_without_requirements() {
    let none = Requirements::default();
    for choice in unattended_choices().into_iter().chain(choices_in_person()) {
        accepted(rules::choice_allowed(&choice, &none));
    }
}

// ---------------------------------------------------------------------------------------------
// attempt
// ---------------------------------------------------------------------------------------------

#[test]
fn attempt_fixtures_are_valid() {
    accepted(rules::attempt(&absent()));
    accepted(rules::attempt(&fixtures::delivered_attempt(
        "device-1",
        "postman-1",
        7,
    )));
}

#[test]
fn attempt_accepts_every_outcome_with_what_it_needs() {
    for outcome in unattended_outcomes()
        .into_iter()
        .chain(outcomes_in_person())
    {
        accepted(rules::attempt(&attempt_with_outcome(outcome)));
    }
}

#[test]
fn attempt_refuses_bad_device_postman_and_time() {
    refused(
        rules::attempt(&absent_with(|a| a.device = String::new())),
        Field::Device,
        "1 to 64",
    );
    refused(
        rules::attempt(&absent_with(|a| a.postman = "jean dupont".into())),
        Field::Postman,
        "1 to 64",
    );
    refused(
        rules::attempt(&absent_with(|a| a.recorded_at_ms = 0)),
        Field::RecordedAt,
        "plausible",
    );
}

#[test]
fn attempt_without_position_is_accepted_and_a_bad_one_refused() {
    accepted(rules::attempt(&absent_with(|a| a.position = None)));
    refused(
        rules::attempt(&absent_with(|a| a.position = Some(fix(120.0, 2.35, 5.0)))),
        Field::Position,
        "latitude",
    );
    refused(
        rules::attempt(&absent_with(|a| a.position = Some(fix(48.85, 2.35, -1.0)))),
        Field::Accuracy,
        "metres",
    );
}

#[test]
fn attempt_refuses_an_outcome_missing_its_text() {
    let cases = [
        (
            Outcome::DeliveredToNeighbour {
                neighbour: String::new(),
            },
            Field::Neighbour,
        ),
        (
            Outcome::DeliveredToSafePlace { place: "  ".into() },
            Field::SafePlace,
        ),
        (
            Outcome::DeliveredToPickupPoint {
                pickup_point: String::new(),
            },
            Field::PickupPoint,
        ),
        (
            Outcome::Other {
                text: String::new(),
            },
            Field::OtherText,
        ),
    ];
    for (outcome, field) in cases {
        let code = outcome.code();
        let result = rules::attempt(&attempt_with_outcome(outcome));
        assert!(result.is_err(), "{code} without its text was accepted");
        refused(result, field, "");
    }
}

#[test]
fn attempt_refuses_outcome_text_too_long_or_malformed() {
    refused(
        rules::attempt(&attempt_with_outcome(Outcome::DeliveredToNeighbour {
            neighbour: "n".repeat(121),
        })),
        Field::Neighbour,
        "at most 120",
    );
    refused(
        rules::attempt(&attempt_with_outcome(Outcome::DeliveredToPickupPoint {
            pickup_point: "relais 75011".into(),
        })),
        Field::PickupPoint,
        "1 to 64",
    );
    refused(
        rules::attempt(&attempt_with_outcome(Outcome::Other {
            text: "o".repeat(501),
        })),
        Field::OtherText,
        "at most 500",
    );
}

#[test]
fn absent_addressee_needs_a_notice() {
    refused(
        rules::attempt(&absent_with(|a| a.notice = None)),
        Field::NoticeNumber,
        "a notice is required",
    );
}

#[test]
fn absent_addressee_needs_a_notice_number() {
    let attempt = absent_with(|a| {
        if let Some(notice) = &mut a.notice {
            notice.number = None;
        }
    });
    refused(rules::attempt(&attempt), Field::NoticeNumber, "is required");
}

#[test]
fn absent_addressee_needs_a_place_the_item_waits_at() {
    let attempt = absent_with(|a| {
        if let Some(notice) = &mut a.notice {
            notice.waits_at = None;
        }
    });
    refused(
        rules::attempt(&attempt),
        Field::NoticeWaitsAt,
        "where the item",
    );
}

#[test]
fn delivered_item_leaves_no_notice() {
    let notice = absent().notice;
    assert!(notice.is_some());
    refused(
        rules::attempt(&delivered_with(|a| a.notice = notice)),
        Field::NoticeNumber,
        "leaves no notice",
    );
    // Even an empty notice.
    let empty = Notice {
        number: None,
        waits_at: None,
    };
    refused(
        rules::attempt(&delivered_with(|a| a.notice = Some(empty))),
        Field::NoticeNumber,
        "leaves no notice",
    );
}

#[test]
fn a_failed_attempt_other_than_absence_may_leave_a_notice_or_not() {
    accepted(rules::attempt(&absent_with(|a| {
        a.outcome = Outcome::NoAccess
    })));
    accepted(rules::attempt(&attempt_with_outcome(Outcome::Refused)));
}

#[test]
fn notice_parts_are_checked() {
    let with_notice = |number: &str, place_id: &str, until: Option<&str>| {
        absent_with(|a| {
            a.notice = Some(Notice {
                number: Some(number.into()),
                waits_at: Some(WaitingPlace {
                    kind: WaitingPlaceKind::Locker,
                    place_id: place_id.into(),
                    until: until.map(Into::into),
                }),
            });
        })
    };
    accepted(rules::attempt(&with_notice("AV1234", "locker-11", None)));
    accepted(rules::attempt(&with_notice(
        "AV1234",
        "locker-11",
        Some("2028-02-29"),
    )));
    refused(
        rules::attempt(&with_notice("AV", "locker-11", None)),
        Field::NoticeNumber,
        "4 to 32",
    );
    refused(
        rules::attempt(&with_notice("AV1234", "", None)),
        Field::NoticeWaitsAt,
        "1 to 64",
    );
    refused(
        rules::attempt(&with_notice("AV1234", "locker-11", Some("2027-02-29"))),
        Field::WaitingUntil,
        "2027-02-29",
    );
}

#[test]
fn proofs_must_be_lower_case_sha256() {
    let good = "0123456789abcdef".repeat(4);
    accepted(rules::attempt(&absent_with(|a| {
        a.proofs = vec![proof(&good)]
    })));
    accepted(rules::attempt(&absent_with(|a| a.proofs.clear())));
    for bad in [
        good.to_uppercase(),
        good[..63].to_string(),
        format!("{good}0"),
        "g".repeat(64),
        String::new(),
    ] {
        refused(
            rules::attempt(&absent_with(|a| a.proofs.push(proof(bad)))),
            Field::Proof,
            "SHA-256",
        );
    }
}

#[test]
fn at_most_16_proofs() {
    let many = |n: usize| -> Vec<Proof> { (0..n).map(|i| proof(format!("{i:064x}"))).collect() };
    accepted(rules::attempt(&absent_with(|a| a.proofs = many(16))));
    refused(
        rules::attempt(&absent_with(|a| a.proofs = many(17))),
        Field::Proof,
        "at most 16",
    );
}

#[test]
fn attempt_for_item_applies_the_requirements() {
    let safe_place = attempt_with_outcome(Outcome::DeliveredToSafePlace {
        place: "abri de jardin".into(),
    });
    accepted(rules::attempt_for_item(
        &safe_place,
        &fixtures::requirements(1),
    ));
    refused(
        rules::attempt_for_item(&safe_place, &fixtures::requirements(3)),
        Field::Outcome,
        "a signature",
    );
    // The attempt's own rules come first.
    refused(
        rules::attempt_for_item(
            &absent_with(|a| a.notice = None),
            &fixtures::requirements(3),
        ),
        Field::NoticeNumber,
        "",
    );
}

// ---------------------------------------------------------------------------------------------
// customer_choice
// ---------------------------------------------------------------------------------------------

#[test]
fn customer_choice_accepts_every_variant() {
    for c in unattended_choices().into_iter().chain(choices_in_person()) {
        accepted(rules::customer_choice(&choice(c)));
    }
}

#[test]
fn customer_choice_refuses_a_bad_redelivery_date() {
    for bad in ["2027-02-29", "2026-04-31", "2026-13-01", "demain"] {
        refused(
            rules::customer_choice(&choice(Choice::RedeliverOn { date: bad.into() })),
            Field::Date,
            bad,
        );
    }
}

#[test]
fn customer_choice_refuses_a_bad_pickup_point() {
    refused(
        rules::customer_choice(&choice(Choice::PickupPoint {
            pickup_point: "relais 04".into(),
        })),
        Field::PickupPoint,
        "1 to 64",
    );
}

#[test]
fn customer_choice_refuses_an_empty_or_long_neighbour() {
    refused(
        rules::customer_choice(&choice(Choice::Neighbour {
            neighbour: " ".into(),
        })),
        Field::Neighbour,
        "required",
    );
    refused(
        rules::customer_choice(&choice(Choice::Neighbour {
            neighbour: "n".repeat(121),
        })),
        Field::Neighbour,
        "at most 120",
    );
}

#[test]
fn customer_choice_refuses_an_empty_or_long_safe_place() {
    refused(
        rules::customer_choice(&choice(Choice::SafePlace {
            place: String::new(),
        })),
        Field::SafePlace,
        "required",
    );
    refused(
        rules::customer_choice(&choice(Choice::SafePlace {
            place: "p".repeat(121),
        })),
        Field::SafePlace,
        "at most 120",
    );
}

#[test]
fn customer_choice_refuses_a_bad_author_or_time() {
    let mut c = choice(Choice::Hold);
    c.made_by = "client @ home".into();
    refused(rules::customer_choice(&c), Field::Customer, "1 to 64");
    let mut c = choice(Choice::Hold);
    c.made_at_ms = 1_000;
    refused(rules::customer_choice(&c), Field::MadeAt, "plausible");
}

// ---------------------------------------------------------------------------------------------
// preferences and preferences_consistent
// ---------------------------------------------------------------------------------------------

fn full_preferences() -> Preferences {
    Preferences {
        safe_place: Some("abri de jardin".into()),
        preferred_neighbour: Some("Mme Martin, 2e gauche".into()),
        preferred_pickup_point: Some("relais-75011-04".into()),
        never_to_neighbour: false,
    }
}

#[test]
fn preferences_accept_none_and_all() {
    accepted(rules::preferences(&Preferences::default()));
    accepted(rules::preferences(&full_preferences()));
}

#[test]
fn preferences_refuse_a_long_safe_place() {
    let prefs = Preferences {
        safe_place: Some("é".repeat(121)),
        ..full_preferences()
    };
    refused(
        rules::preferences(&prefs),
        Field::SafePlace,
        "121 characters",
    );
    let prefs = Preferences {
        safe_place: Some("é".repeat(120)),
        ..full_preferences()
    };
    accepted(rules::preferences(&prefs));
}

#[test]
fn preferences_refuse_a_bad_neighbour() {
    let prefs = Preferences {
        preferred_neighbour: Some("Mme\u{8}Martin".into()),
        ..full_preferences()
    };
    refused(
        rules::preferences(&prefs),
        Field::Neighbour,
        "control characters",
    );
}

#[test]
fn preferences_refuse_a_bad_pickup_point() {
    let prefs = Preferences {
        preferred_pickup_point: Some(String::new()),
        ..full_preferences()
    };
    refused(rules::preferences(&prefs), Field::PickupPoint, "1 to 64");
}

#[test]
fn preferences_consistent_refuses_a_neighbour_with_never_to_neighbour() {
    let prefs = Preferences {
        never_to_neighbour: true,
        ..full_preferences()
    };
    refused(
        rules::preferences_consistent(&prefs),
        Field::Neighbour,
        "contradicts",
    );
    // The field rules alone do not look at consistency.
    accepted(rules::preferences(&prefs));
}

#[test]
fn preferences_consistent_accepts_either_alone() {
    accepted(rules::preferences_consistent(&full_preferences()));
    accepted(rules::preferences_consistent(&Preferences {
        never_to_neighbour: true,
        preferred_neighbour: None,
        ..full_preferences()
    }));
    accepted(rules::preferences_consistent(&Preferences::default()));
}

// ---------------------------------------------------------------------------------------------
// proposed_correction
// ---------------------------------------------------------------------------------------------

#[test]
fn proposed_correction_fixture_is_valid() {
    accepted(rules::proposed_correction(&correction().proposed));
}

#[test]
fn proposed_correction_refuses_proposing_nothing() {
    refused(
        rules::proposed_correction(&ProposedCorrection::default()),
        Field::Correction,
        "no change",
    );
}

#[test]
fn proposed_correction_accepts_any_single_field() {
    let singles = [
        ProposedCorrection {
            suffix: Some(HouseSuffix::Bis),
            ..Default::default()
        },
        ProposedCorrection {
            pin: Some(GeoPoint {
                lat: 48.857,
                lon: 2.372,
            }),
            ..Default::default()
        },
        ProposedCorrection {
            note: Some("Boîte aux lettres dans la cour".into()),
            ..Default::default()
        },
    ];
    for single in singles {
        accepted(rules::proposed_correction(&single));
    }
}

#[test]
fn proposed_correction_checks_the_house_number() {
    for good in ["35", "35B", "12345678"] {
        accepted(rules::proposed_correction(&proposed(|c| {
            c.house_number = Some(good.into())
        })));
    }
    for bad in ["", "123456789", "3 bis", "35-37", "3é"] {
        refused(
            rules::proposed_correction(&proposed(|c| c.house_number = Some(bad.into()))),
            Field::HouseNumber,
            "1 to 8",
        );
    }
}

#[test]
fn proposed_correction_checks_the_street_length() {
    let at_limit = "R".repeat(MAX_ADDRESS_LINE_CHARS);
    accepted(rules::proposed_correction(&proposed(|c| {
        c.street = Some(at_limit)
    })));
    refused(
        rules::proposed_correction(&proposed(|c| c.street = Some("R".repeat(39)))),
        Field::Street,
        "39 characters",
    );
}

/// A change to a valid correction and the field it makes invalid.
type CorrectionCase = (fn(&mut ProposedCorrection), Field);

#[test]
fn proposed_correction_checks_every_text_field() {
    let cases: [CorrectionCase; 5] = [
        (|c| c.building = Some("B".repeat(39)), Field::Building),
        (|c| c.floor = Some("F".repeat(121)), Field::Floor),
        (|c| c.door_code = Some("1".repeat(33)), Field::DoorCode),
        (
            |c| c.mailbox_position = Some("M".repeat(121)),
            Field::MailboxPosition,
        ),
        (|c| c.note = Some("N".repeat(501)), Field::Note),
    ];
    for (change, field) in cases {
        refused(
            rules::proposed_correction(&proposed(change)),
            field,
            "characters",
        );
    }
    refused(
        rules::proposed_correction(&proposed(|c| c.door_code = Some("45\t12".into()))),
        Field::DoorCode,
        "control characters",
    );
}

#[test]
fn proposed_correction_checks_the_pin() {
    accepted(rules::proposed_correction(&proposed(|c| {
        c.pin = Some(GeoPoint {
            lat: -90.0,
            lon: 180.0,
        })
    })));
    for (lat, lon, words) in [
        (91.0, 2.37, "latitude"),
        (48.85, -181.0, "longitude"),
        (f64::NAN, 2.37, "latitude"),
    ] {
        refused(
            rules::proposed_correction(&proposed(|c| c.pin = Some(GeoPoint { lat, lon }))),
            Field::Pin,
            words,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// reference_address
// ---------------------------------------------------------------------------------------------

#[test]
fn reference_address_fixture_is_valid() {
    accepted(rules::reference_address(&fixtures::reference_address(7)));
}

#[test]
fn reference_address_has_1_to_6_lines() {
    accepted(rules::reference_address(&reference_with(|r| {
        r.lines = vec!["75011 PARIS".into()]
    })));
    accepted(rules::reference_address(&reference_with(|r| {
        r.lines = vec!["L".into(); 6]
    })));
    refused(
        rules::reference_address(&reference_with(|r| r.lines.clear())),
        Field::AddressLines,
        "1 to 6 lines",
    );
    refused(
        rules::reference_address(&reference_with(|r| r.lines = vec!["L".into(); 7])),
        Field::AddressLines,
        "1 to 6 lines",
    );
}

#[test]
fn reference_address_lines_have_at_most_38_characters() {
    accepted(rules::reference_address(&reference_with(|r| {
        r.lines[0] = "É".repeat(38)
    })));
    refused(
        rules::reference_address(&reference_with(|r| r.lines[0] = "L".repeat(39))),
        Field::AddressLines,
        "39 characters",
    );
}

/// A change to a valid reference address, the field it makes invalid and why.
type ReferenceCase = (fn(&mut ReferenceAddress), Field, &'static str);

#[test]
fn reference_address_requires_number_street_postcode_and_city() {
    let cases: [ReferenceCase; 8] = [
        (
            |r| r.house_number = String::new(),
            Field::HouseNumber,
            "1 to 8 letters and digits",
        ),
        (
            |r| r.house_number = "123456789".into(),
            Field::HouseNumber,
            "1 to 8 letters and digits",
        ),
        (
            |r| r.house_number = "3 bis".into(),
            Field::HouseNumber,
            "1 to 8 letters and digits",
        ),
        (|r| r.lines[1] = " ".into(), Field::AddressLines, "required"),
        (|r| r.street = " ".into(), Field::Street, "required"),
        (|r| r.postcode = String::new(), Field::Postcode, "required"),
        (|r| r.city = String::new(), Field::City, "required"),
        (|r| r.city = "C".repeat(39), Field::City, "at most 38"),
    ];
    for (change, field, words) in cases {
        refused(
            rules::reference_address(&reference_with(change)),
            field,
            words,
        );
    }
}

#[test]
fn reference_address_checks_building_and_pin() {
    accepted(rules::reference_address(&reference_with(|r| {
        r.building = Some("BAT C".into());
        r.pin = None;
    })));
    refused(
        rules::reference_address(&reference_with(|r| r.building = Some("B".repeat(39)))),
        Field::Building,
        "at most 38",
    );
    refused(
        rules::reference_address(&reference_with(|r| {
            r.pin = Some(GeoPoint {
                lat: 48.85,
                lon: f64::INFINITY,
            })
        })),
        Field::Pin,
        "longitude",
    );
}

// ---------------------------------------------------------------------------------------------
// review
// ---------------------------------------------------------------------------------------------

#[test]
fn approval_needs_no_reason() {
    accepted(rules::review(&review(ReviewDecision::Approved, "")));
    accepted(rules::review(&review(
        ReviewDecision::Approved,
        "vérifié sur place",
    )));
}

#[test]
fn rejection_needs_a_reason() {
    for blank in ["", "   "] {
        refused(
            rules::review(&review(ReviewDecision::Rejected, blank)),
            Field::ReviewReason,
            "needs a reason",
        );
    }
    accepted(rules::review(&review(
        ReviewDecision::Rejected,
        "le 35 est un autre immeuble",
    )));
}

#[test]
fn review_checks_reviewer_time_and_reason_length() {
    let mut r = review(ReviewDecision::Approved, "");
    r.by = String::new();
    refused(rules::review(&r), Field::Reviewer, "1 to 64");
    let mut r = review(ReviewDecision::Approved, "");
    r.at_ms = MAX_TIMESTAMP_MS;
    refused(rules::review(&r), Field::ReviewedAt, "plausible");
    refused(
        rules::review(&review(ReviewDecision::Rejected, &"r".repeat(501))),
        Field::ReviewReason,
        "at most 500",
    );
}
