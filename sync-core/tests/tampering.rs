//! Changes damaged or altered between the phone and the server: refused whole, stored nowhere,
//! never a panic, and never able to block the phone's genuine change.
//!
//! - a change whose bytes were altered in transit (its checksum left as it was) is refused as
//!   malformed, and the genuine change gets through at the phone's next session;
//! - a change altered and re-checksummed, stored under the phone's actor and sequence number:
//!   the phone sets its interactions aside and records them again (`collision`);
//! - a fuzz test over real push frames with random damage to their changes (bytes flipped,
//!   cut, spliced from another change, dropped), with checksums forged to match half of the
//!   time so that the damage reaches Automerge's decoder: `respond` never panics, whatever it
//!   accepts still loads, and the phone's next session gets every genuine attempt stored, the
//!   phone drained. Bounded in CI
//!   (`PROPTEST_CASES`, default 96); run longer by hand with a larger value.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use proptest::prelude::*;
use tournee_sync_core::automerge::Automerge;
use tournee_sync_core::fixtures;
use tournee_sync_core::sync::wire::{self, Limits, RefusalCode, RequestBody, ResponseBody};
use tournee_sync_core::sync::{MemoryHost, SyncSession};
use tournee_sync_core::validator::Sender;
use tournee_sync_core::DocId;

/// A phone that downloaded a small town's round and recorded two attempts on item 0; the
/// server; the postman's sender; and the push the phone would send now.
fn pushed() -> (
    tempfile::TempDir,
    tournee_sync_core::store::PhoneStore,
    MemoryHost,
    Sender,
    wire::SyncRequest,
) {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, manifest) = common::town(1, 2);
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    common::sync(&mut phone, &mut host, &sender);
    for n in 0..2 {
        phone
            .record_attempt(
                &fixtures::s10(0),
                &fixtures::absent_attempt("dev-1", "pm-1", n),
            )
            .unwrap();
    }
    let request = {
        let mut session = SyncSession::new(&mut phone, Limits::default());
        session.next_request().unwrap().unwrap()
    };
    (dir, phone, host, sender, request)
}

/// The phone sends its push and hears `answer` to it, in a session of its own.
fn hear(phone: &mut tournee_sync_core::store::PhoneStore, answer: &wire::SyncResponse) {
    let limits = Limits::default();
    let mut session = SyncSession::new(phone, limits);
    let _ = session.next_request().unwrap();
    let frame = wire::encode_response(answer);
    session
        .apply_response(wire::decode_response(&frame, &limits).unwrap())
        .unwrap();
}

fn item() -> DocId {
    DocId::item(&fixtures::s10(0))
}

/// The changes pushed for item 0.
fn pushed_changes(request: &mut wire::SyncRequest) -> &mut Vec<serde_bytes::ByteBuf> {
    request
        .docs
        .iter_mut()
        .find(|d| d.doc == item())
        .and_then(|d| match &mut d.body {
            RequestBody::Push { changes, .. } => Some(changes),
            _ => None,
        })
        .expect("the phone pushes item 0")
}

fn attempts(doc: &Automerge) -> usize {
    tournee_sync_core::operations::read_item(doc)
        .unwrap()
        .attempts
        .len()
}

#[test]
fn a_change_altered_in_transit_is_refused_and_the_genuine_one_gets_through_next_session() {
    let (_dir, mut phone, mut host, sender, mut request) = pushed();
    // The notice number AV00000000 becomes AV90000000 in the bytes; the checksum stays.
    let changes = pushed_changes(&mut request);
    let mut altered = false;
    for change in changes.iter_mut() {
        if let Some(at) = change.windows(3).position(|w| w == b"AV0") {
            change[at + 2] = b'9';
            altered = true;
        }
    }
    assert!(altered, "the notice number is in the change's bytes");
    let before = host.get(&item()).unwrap().get_heads();
    let limits = Limits::default();
    let answer = host.respond(request, &sender, &limits);
    let refused = answer
        .response
        .docs
        .iter()
        .find(|d| d.doc == item())
        .map(|d| &d.body);
    assert!(
        matches!(
            refused,
            Some(ResponseBody::Refused { code: RefusalCode::Malformed, message })
                if message.contains("checksum")
        ),
        "{refused:?}"
    );
    assert_eq!(
        host.get(&item()).unwrap().get_heads(),
        before,
        "nothing stored"
    );

    // The phone hears the refusal; at its next session it pushes the genuine changes, which
    // are accepted: the altered copy blocked nothing.
    hear(&mut phone, &answer.response);
    common::sync(&mut phone, &mut host, &sender);
    assert!(phone.pending_interactions().is_empty());
    let stored = host.get(&item()).unwrap();
    assert_eq!(attempts(stored), 2);
    let notices: Vec<String> = tournee_sync_core::operations::read_item(stored)
        .unwrap()
        .attempts
        .values()
        .filter_map(|a| a.notice.as_ref()?.number.clone())
        .collect();
    assert!(notices.iter().all(|n| !n.starts_with("AV9")), "{notices:?}");
}

/// The genuine attempts the phone of [`pushed`] recorded.
fn genuine_attempts() -> Vec<tournee_sync_core::model::Attempt> {
    (0..2)
        .map(|n| fixtures::absent_attempt("dev-1", "pm-1", n))
        .collect()
}

/// Whether the server holds every genuine attempt, by value.
fn holds_every_genuine_attempt(host: &MemoryHost) -> bool {
    let held = tournee_sync_core::operations::read_item(host.get(&item()).unwrap()).unwrap();
    genuine_attempts()
        .iter()
        .all(|genuine| held.attempts.values().any(|a| a == genuine))
}

/// Issue #13: a change altered in transit and re-checksummed (which TLS prevents, and a thief
/// of the phone's token could do) is stored under the phone's actor and sequence number. The
/// phone's genuine change is then refused as `collision`; the phone sets its pending
/// interactions aside under a fresh actor (durably: a restart in between loses nothing),
/// fetches the document as the server holds it, and writes them again: the one the server
/// holds as recorded is acknowledged, the one the forgery replaced is recorded under a new id,
/// and the phone is drained.
#[test]
fn a_forged_change_that_takes_the_phones_sequence_number_blocks_nothing() {
    let (dir, mut phone, mut host, sender, mut request) = pushed();
    let identity = phone.identity().clone();
    let old_actor = phone.document(&item()).unwrap().get_actor().clone();
    // The second attempt's notice number altered, and its checksum made to match.
    let changes = pushed_changes(&mut request);
    let last = changes.last_mut().unwrap();
    let at = last.windows(3).position(|w| w == b"AV0").unwrap();
    last[at + 2] = b'9';
    forge_checksum(last);
    let limits = Limits::default();
    let answer = host.respond(request, &sender, &limits);
    assert_eq!(
        attempts(host.get(&item()).unwrap()),
        2,
        "the forgery is stored"
    );
    assert!(!holds_every_genuine_attempt(&host));
    hear(&mut phone, &answer.response);
    assert_eq!(phone.pending_interactions().len(), 2);

    // The next session's push is refused as `collision`; the phone sets its two
    // interactions aside, and stops there (the app is killed).
    {
        let mut session = SyncSession::new(&mut phone, limits);
        let request = session.next_request().unwrap().unwrap();
        let answer = host.respond(request, &sender, &limits);
        assert!(
            answer.response.docs.iter().any(|d| matches!(
                &d.body,
                ResponseBody::Refused { code: RefusalCode::Collision, message } if message.contains(&old_actor.to_hex_string())
            )),
            "{:?}",
            answer.response
        );
        let frame = wire::encode_response(&answer.response);
        session
            .apply_response(wire::decode_response(&frame, &limits).unwrap())
            .unwrap();
        assert!(
            session.report().refused.is_empty(),
            "set aside, not refused"
        );
    }
    assert_eq!(phone.pending_interactions().len(), 2, "still pending");
    drop(phone);
    let mut phone = tournee_sync_core::store::PhoneStore::open(
        dir.path(),
        identity,
        tournee_sync_core::store::StoreOptions { fsync: false },
    )
    .unwrap();
    assert_eq!(phone.pending_interactions().len(), 2, "set aside durably");
    assert_ne!(phone.document(&item()).unwrap().get_actor(), &old_actor);

    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(phone.pending_interactions().is_empty());
    use tournee_sync_core::store::AgainOutcome;
    let outcomes: Vec<&AgainOutcome> = report.recorded_again.iter().map(|a| &a.outcome).collect();
    assert!(
        matches!(outcomes[..], [AgainOutcome::Stored, AgainOutcome::Recorded(ref again)] if again.id != report.recorded_again[1].before.id),
        "{outcomes:?}"
    );
    assert!(holds_every_genuine_attempt(&host));
    assert_eq!(
        phone.document(&item()).unwrap().get_heads(),
        host.get(&item()).unwrap().get_heads(),
        "the phone holds the document as the server does"
    );
    // Nothing left to say on either side.
    let (quiet, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(quiet.recorded_again.is_empty() && quiet.acknowledged.is_empty());
}

/// One kind of damage to the pushed changes.
#[derive(Debug, Clone)]
enum Damage {
    /// XOR a byte of change `change` at `at` (both taken modulo the sizes).
    Flip { change: usize, at: usize, with: u8 },
    /// Keep the first `keep` bytes of a change.
    Cut { change: usize, keep: usize },
    /// Replace a change's tail from `at` with the tail of another change.
    Splice {
        change: usize,
        from: usize,
        at: usize,
    },
    /// Drop a change (a sequence gap for its actor).
    Drop { change: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), 1..=255u8)
            .prop_map(|(change, at, with)| Damage::Flip { change, at, with }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(change, keep)| Damage::Cut { change, keep }),
        1 => (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(change, from, at)| Damage::Splice { change, from, at }),
        1 => any::<usize>().prop_map(|change| Damage::Drop { change }),
    ]
}

/// Rewrites a chunk's checksum (bytes 4..8) to match the rest of its bytes.
fn forge_checksum(change: &mut [u8]) {
    use sha2::Digest;
    if change.len() > 8 {
        let hash = sha2::Sha256::digest(&change[8..]);
        change[4..8].copy_from_slice(&hash[..4]);
    }
}

fn apply(changes: &mut Vec<serde_bytes::ByteBuf>, damage: &Damage) {
    if changes.is_empty() {
        return;
    }
    let n = changes.len();
    match *damage {
        Damage::Flip { change, at, with } => {
            let bytes = &mut changes[change % n];
            let len = bytes.len().max(1);
            if let Some(byte) = bytes.get_mut(at % len) {
                *byte ^= with;
            }
        }
        Damage::Cut { change, keep } => {
            let bytes = &mut changes[change % n];
            let len = bytes.len().max(1);
            bytes.truncate(keep % len);
        }
        Damage::Splice { change, from, at } => {
            let donor = changes[from % n].clone();
            let bytes = &mut changes[change % n];
            let at = at % bytes.len().max(1);
            bytes.truncate(at);
            bytes.extend_from_slice(&donor[at.min(donor.len())..]);
        }
        Damage::Drop { change } => {
            changes.remove(change % n);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(96),
        ..ProptestConfig::default()
    })]

    #[test]
    fn damaged_frames_never_panic_never_store_a_bad_change_and_never_block_the_phone(
        damages in proptest::collection::vec(damage(), 1..4),
        forged in any::<bool>(),
    ) {
        let (_dir, mut phone, mut host, sender, mut request) = pushed();
        {
            let changes = pushed_changes(&mut request);
            for d in &damages {
                apply(changes, d);
            }
            if forged {
                // As an attacker would: the checksum made to match the damaged bytes, so the
                // damage reaches Automerge's decoder.
                for change in changes.iter_mut() {
                    forge_checksum(change);
                }
            }
        }
        let limits = Limits::default();
        // Through the wire as the server would receive it. A frame the decoder refuses whole
        // (a change cut under 16 bytes) is a 400: the phone abandons that session.
        let frame = wire::encode_request(&request);
        if let Ok(request) = wire::decode_request(&frame, &limits) {
            let answer = host.respond(request, &sender, &limits);
            // Whatever the server holds now still saves and loads.
            let held = host.get(&item()).unwrap();
            let reloaded = Automerge::load(&held.save()).unwrap();
            prop_assert_eq!(reloaded.get_heads(), held.get_heads());
            prop_assert!(attempts(&reloaded) <= 2);
            hear(&mut phone, &answer.response);
        }
        // Its next session gets every genuine attempt stored. Damage the checksum caught
        // stored nothing. A forgery is refused (the phone pushes again at its next session),
        // or stored when it passes the rules, under the phone's actor and sequence number:
        // then the phone sets its interactions aside, and records again what the forgery
        // replaced.
        let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
        prop_assert!(phone.pending_interactions().is_empty(), "{:?} after {report:?}", phone.pending_interactions());
        prop_assert!(holds_every_genuine_attempt(&host));
        if !forged {
            prop_assert_eq!(attempts(host.get(&item()).unwrap()), 2);
        }
    }
}

/// Issue #13: the phone checks what it receives too. A change from the server altered on the
/// way (its checksum left as it was) does not load: `load_incremental` checks every chunk's
/// checksum, which `Change::from_bytes` does not. The document is left as it was.
#[test]
fn the_phone_refuses_a_change_from_the_server_altered_on_the_way() {
    let (_dir, mut phone, mut host, sender, request) = pushed();
    let limits = Limits::default();
    let answer = host.respond(request, &sender, &limits);
    hear(&mut phone, &answer.response);
    // The server writes a change (the back office's, say); on its way to the phone it is
    // altered.
    let before = host.get(&item()).unwrap().get_heads();
    host.apply_local(&item(), |doc| {
        tournee_sync_core::operations::record_attempt(
            doc,
            "att-server",
            &fixtures::absent_attempt("dev-1", "pm-1", 7),
        )
        .unwrap();
    });
    let mut change = host
        .get(&item())
        .unwrap()
        .get_changes(&before)
        .pop()
        .unwrap()
        .raw_bytes()
        .to_vec();
    let at = change.windows(3).position(|w| w == b"AV0").unwrap();
    change[at + 2] = b'9';
    let heads_before = phone.document(&item()).unwrap().get_heads();
    let state = phone.sync_state(&item()).unwrap().clone();
    let loaded = phone.apply_remote(&item(), &[change], |_| state);
    assert!(loaded.is_err(), "an altered change loaded");
    assert_eq!(phone.document(&item()).unwrap().get_heads(), heads_before);
}

/// Issue #13: an interaction set aside that the document, once fetched, no longer allows (the
/// item now needs a signature; the parcel was left in the mailbox) is reported as refused with
/// the reason and leaves nothing pending: the session does not fail, now or later.
#[test]
fn an_interaction_set_aside_that_the_document_no_longer_allows_is_reported_not_retried() {
    use tournee_sync_core::model::{Outcome, Requirements};
    use tournee_sync_core::store::AgainOutcome;
    let dir = tempfile::tempdir().unwrap();
    let (mut host, manifest) = common::town(1, 2);
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    common::sync(&mut phone, &mut host, &sender);
    // An item that may be left in a mailbox today.
    let (s10, doc) = (0..2)
        .map(|n| (fixtures::s10(n), DocId::item(&fixtures::s10(n))))
        .find(|(_, doc)| {
            let item = tournee_sync_core::operations::read_item(host.get(doc).unwrap()).unwrap();
            !item.requirements.needs_addressee_in_person()
        })
        .unwrap();
    let mut mailbox = fixtures::delivered_attempt("dev-1", "pm-1", 0);
    mailbox.outcome = Outcome::DeliveredToMailbox;
    phone.record_attempt(&s10, &mailbox).unwrap();
    // Meanwhile the back office requires a signature; then the phone hears `collision`.
    host.apply_local(&doc, |d| {
        let signature = Requirements {
            signature: true,
            ..Requirements::default()
        };
        tournee_sync_core::operations::set_requirements(d, &signature).unwrap();
    });
    assert_eq!(phone.set_aside(&doc).unwrap(), 1);

    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(
        matches!(&report.recorded_again[..], [again] if matches!(&again.outcome, AgainOutcome::Refused(reason) if reason.contains("outcome"))),
        "{:?}",
        report.recorded_again
    );
    assert!(phone.pending_interactions().is_empty());
    let (quiet, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(quiet.recorded_again.is_empty() && quiet.refused.is_empty());
}
