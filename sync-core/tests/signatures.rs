//! Signed changes end to end on the in-memory server: a record's author is its signer, whoever
//! uploads it. Honest relays and re-uploads are accepted; forged, borrowed, revoked, stripped and
//! replayed signatures refuse the whole entry with nothing stored.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use tournee_sync_core::fixtures;
use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::operations;
use tournee_sync_core::signing::{ChangeSignature, Keyring, SignatureProblem, Signer, SoftwareKey};
use tournee_sync_core::store::PhoneStore;
use tournee_sync_core::sync::wire::{self, Limits, RefusalCode, RequestBody, ResponseBody};
use tournee_sync_core::sync::{MemoryHost, SyncSession};
use tournee_sync_core::validator::{Role, Sender};
use tournee_sync_core::DocId;

/// A phone whose device key is registered with the host.
fn signed_phone(
    dir: &std::path::Path,
    device: &str,
    postman: &str,
    manifest: &RoundManifest,
    host: &mut MemoryHost,
) -> (PhoneStore, SoftwareKey, Sender) {
    let key = SoftwareKey::generate();
    let mut phone = common::phone(dir, device, postman, manifest);
    phone.set_signer(Arc::new(key.clone()));
    let sender = common::postman_sender(device, postman, manifest);
    host.register_device(device, sender.clone(), Some(key.public_key()));
    (phone, key, sender)
}

fn item(n: u32) -> DocId {
    DocId::item(&fixtures::s10(n))
}

fn attempts_on_server(host: &MemoryHost, n: u32) -> Vec<String> {
    let doc = operations::read_item(host.get(&item(n)).unwrap()).unwrap();
    doc.attempts.keys().cloned().collect()
}

/// The phone's next request, as the wire carries it.
fn next_request(phone: &mut PhoneStore) -> wire::SyncRequest {
    let mut session = SyncSession::new(phone, Limits::default());
    let request = session.next_request().unwrap().unwrap();
    let frame = wire::encode_request(&request);
    wire::decode_request(&frame, &Limits::default()).unwrap()
}

/// The pushed entry of `doc` in a request, with its changes and signatures.
fn pushed<'r>(
    request: &'r mut wire::SyncRequest,
    doc: &DocId,
) -> (
    &'r mut Vec<serde_bytes::ByteBuf>,
    &'r mut Vec<ChangeSignature>,
) {
    let entry = request.docs.iter_mut().find(|d| &d.doc == doc).unwrap();
    match &mut entry.body {
        RequestBody::Push {
            changes,
            signatures,
            ..
        } => (changes, signatures),
        other => panic!("not a push: {other:?}"),
    }
}

fn refusal_of(answer: &tournee_sync_core::sync::Answer, doc: &DocId) -> (RefusalCode, String) {
    let entry = answer.response.docs.iter().find(|d| &d.doc == doc).unwrap();
    match &entry.body {
        ResponseBody::Refused { code, message } => (*code, message.clone()),
        other => panic!("{doc} was not refused: {other:?}"),
    }
}

/// A town, and one postman's signed phone synced with it.
fn synced_town() -> (
    MemoryHost,
    RoundManifest,
    tempfile::TempDir,
    PhoneStore,
    SoftwareKey,
    Sender,
) {
    let (mut host, manifest) = common::town(3, 2);
    let dir = tempfile::tempdir().unwrap();
    let (mut phone, key, sender) = signed_phone(dir.path(), "dev-1", "pm-1", &manifest, &mut host);
    common::sync(&mut phone, &mut host, &sender);
    (host, manifest, dir, phone, key, sender)
}

#[test]
fn a_relief_postmans_phone_carries_another_phones_signed_attempts_authored_by_their_recorder() {
    let (mut host, manifest, _dir, mut phone, _key, _sender) = synced_town();
    let relief_dir = tempfile::tempdir().unwrap();
    let (_relief, _, relief_sender) =
        signed_phone(relief_dir.path(), "dev-2", "pm-2", &manifest, &mut host);
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", 1);
    let recorded = phone.record_attempt(&fixtures::s10(1), &attempt).unwrap();

    // The relief phone uploads dev-1's signed change under its own token.
    let request = next_request(&mut phone);
    let answer = host.respond(request, &relief_sender, &Limits::default());
    assert!(
        answer
            .outcomes
            .iter()
            .all(|o| matches!(o, tournee_sync_core::sync::DocOutcome::Accepted { .. })),
        "{:?}",
        answer.outcomes
    );
    let (id, accepted) = &answer.accepted[0];
    assert_eq!(id, &item(1));
    let checked = accepted.records.values().next().unwrap();
    assert_eq!(
        checked.signer,
        Some(Signer::Device {
            device: "dev-1".into()
        }),
        "authored by the phone that recorded it, not the uploader"
    );
    assert_eq!(attempts_on_server(&host, 1), vec![recorded.id.clone()]);

    // The recording phone syncs later: acknowledged, stored once, nothing refused.
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(phone.pending_interactions().is_empty());
    assert_eq!(attempts_on_server(&host, 1), vec![recorded.id]);
}

#[test]
fn forged_borrowed_revoked_and_stripped_signatures_refuse_the_entry_and_store_nothing() {
    let (mut host, manifest, _dir, mut phone, _key, sender) = synced_town();
    let other_dir = tempfile::tempdir().unwrap();
    let (_other, other_key, _) =
        signed_phone(other_dir.path(), "dev-2", "pm-2", &manifest, &mut host);
    phone
        .record_attempt(
            &fixtures::s10(1),
            &fixtures::absent_attempt("dev-1", "pm-1", 1),
        )
        .unwrap();
    phone
        .record_attempt(
            &fixtures::s10(1),
            &fixtures::delivered_attempt("dev-1", "pm-1", 1),
        )
        .unwrap();
    let honest = next_request(&mut phone);
    let doc = item(1);
    let limits = Limits::default();
    let refuse = |host: &mut MemoryHost, request: wire::SyncRequest, why: &str| {
        let before = host.get(&doc).unwrap().get_heads();
        let answer = host.respond(request, &sender, &limits);
        let (code, message) = refusal_of(&answer, &doc);
        assert_eq!(code, RefusalCode::Signature, "{why}: {message}");
        assert!(answer.accepted.is_empty(), "{why}: nothing accepted");
        assert_eq!(
            host.get(&doc).unwrap().get_heads(),
            before,
            "{why}: nothing stored"
        );
        message
    };

    // A signature with one bit flipped.
    let mut forged = honest.clone();
    let (_, signatures) = pushed(&mut forged, &doc);
    let last = signatures[0].signature.len() - 1;
    signatures[0].signature[last] ^= 1;
    refuse(&mut host, forged, "forged");

    // Another device's key signing in dev-1's name.
    let mut borrowed = honest.clone();
    let (_, signatures) = pushed(&mut borrowed, &doc);
    let hash = signatures[0].change().unwrap();
    signatures[0] = ChangeSignature {
        signer: Signer::Device {
            device: "dev-1".into(),
        },
        ..other_key.sign_change(
            &doc,
            &hash,
            Signer::Device {
                device: "dev-1".into(),
            },
        )
    };
    refuse(&mut host, borrowed, "another device's key");

    // Another device's own signature on dev-1's change: authored by dev-2, whose postman did
    // not record that attempt.
    let mut claimed = honest.clone();
    let (_, signatures) = pushed(&mut claimed, &doc);
    signatures[0] = other_key.sign_change(
        &doc,
        &hash,
        Signer::Device {
            device: "dev-2".into(),
        },
    );
    let before = host.get(&doc).unwrap().get_heads();
    let answer = host.respond(claimed, &sender, &limits);
    let (code, message) = refusal_of(&answer, &doc);
    assert_ne!(
        code,
        RefusalCode::Signature,
        "the signature is dev-2's own: {message}"
    );
    assert_eq!(
        host.get(&doc).unwrap().get_heads(),
        before,
        "nothing stored"
    );

    // One of the two signatures stripped, and the push carried by another device: the unsigned
    // change is taken as the carrier's own, and the rules refuse dev-1's attempt under it.
    let mut stripped = honest.clone();
    pushed(&mut stripped, &doc).1.truncate(1);
    let carrier = common::postman_sender("dev-2", "pm-2", &manifest);
    let before = host.get(&doc).unwrap().get_heads();
    let answer = host.respond(stripped.clone(), &carrier, &limits);
    let (code, message) = refusal_of(&answer, &doc);
    assert_ne!(code, RefusalCode::Signature, "{message}");
    assert!(answer.accepted.is_empty());
    assert_eq!(
        host.get(&doc).unwrap().get_heads(),
        before,
        "stripped: nothing stored"
    );
    // Once the fleet must sign, a stripped signature refuses the entry, whoever uploads it.
    let mut strict = host.clone();
    strict.require_signatures();
    let message = refuse(&mut strict, stripped, "stripped while required");
    assert!(message.contains("no signature"), "{message}");
    let mut unsigned = honest.clone();
    pushed(&mut unsigned, &doc).1.clear();
    refuse(
        &mut strict,
        unsigned,
        "unsigned while signatures are required",
    );

    // The device is revoked: its next change is refused, whoever carries it.
    let mut revoked = host.clone();
    revoked.revoke_device("dev-1");
    let message = refuse(&mut revoked, honest.clone(), "revoked");
    assert!(message.contains("revoked"), "{message}");

    // The honest request still passes: nothing above was stored or bound.
    let answer = host.respond(honest, &sender, &limits);
    assert!(answer
        .response
        .docs
        .iter()
        .all(|d| !matches!(d.body, ResponseBody::Refused { .. })));
    assert_eq!(attempts_on_server(&host, 1).len(), 2);
}

#[test]
fn a_signature_is_bound_to_its_document_and_never_moves_to_another() {
    let (mut host, manifest, _dir, mut phone, key, sender) = synced_town();
    let _ = manifest;
    phone
        .record_attempt(
            &fixtures::s10(1),
            &fixtures::absent_attempt("dev-1", "pm-1", 1),
        )
        .unwrap();
    let request = next_request(&mut phone);
    let mut replayed = request.clone();
    let from = item(1);
    let to = item(2);
    for entry in &mut replayed.docs {
        if entry.doc == from {
            entry.doc = to.clone();
        }
    }
    let before = host.get(&to).unwrap().get_heads();
    let answer = host.respond(replayed, &sender, &Limits::default());
    assert!(answer.accepted.is_empty(), "nothing accepted");
    assert_eq!(host.get(&to).unwrap().get_heads(), before, "nothing stored");

    // The signature itself does not verify for the other document, whatever the change.
    let (mut signed, _) = {
        let mut r = request;
        let (_, signatures) = pushed(&mut r, &from);
        (signatures.clone(), ())
    };
    let signature = signed.remove(0);
    let hash = signature.change().unwrap();
    let mut keyring = Keyring::default();
    keyring.devices.insert(
        "dev-1".into(),
        tournee_sync_core::signing::DeviceKey {
            author: sender,
            key: Some(key.public_key()),
            revoked: false,
        },
    );
    assert!(keyring.author(&from, &hash, &signature).is_ok());
    assert_eq!(
        keyring.author(&to, &hash, &signature).unwrap_err(),
        SignatureProblem::Wrong
    );
}

#[test]
fn a_restored_server_gets_back_the_changes_it_wrote_itself_from_the_phones() {
    let (mut host, manifest, _dir, mut phone, _key, sender) = synced_town();
    let backup = host.clone();
    // After the backup: the server writes a customer's choice; the phone receives it as news.
    let choice = fixtures::redeliver_choice("cust-1", "2030-01-02");
    host.write_as(&item(2), Role::Customer, "cust-1", |doc| {
        operations::choose_for_item(doc, "choice-1", &choice).unwrap();
    });
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.changed_documents.contains(&item(2)));
    let choices = |host: &MemoryHost| {
        operations::read_item(host.get(&item(2)).unwrap())
            .unwrap()
            .choices
            .len()
    };
    assert_eq!(choices(&host), 1);

    // Restored from the backup: the choice is lost on the server, the phone gives it back,
    // signed by the server's own key, and it is accepted.
    let mut host = MemoryHost::restored(&backup);
    assert_eq!(choices(&host), 0);
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!(choices(&host), 1, "the server's own change came back");
    let signed_by_server = host
        .signatures(&item(2))
        .iter()
        .any(|s| matches!(&s.signer, Signer::Server { role: Role::Customer, principal, .. } if principal == "cust-1"));
    assert!(signed_by_server, "its signature is held again");
    let _ = manifest;
}

#[test]
fn an_older_phone_without_a_key_is_answered_as_before_until_signatures_are_required() {
    let (mut host, manifest) = common::town(2, 1);
    let dir = tempfile::tempdir().unwrap();
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    common::sync(&mut phone, &mut host, &sender);
    phone
        .record_attempt(
            &fixtures::s10(1),
            &fixtures::absent_attempt("dev-1", "pm-1", 1),
        )
        .unwrap();
    let request = next_request(&mut phone);
    assert!(
        pushed(&mut request.clone(), &item(1)).1.is_empty(),
        "unsigned"
    );
    let mut strict = host.clone();
    strict.require_signatures();
    let answer = strict.respond(request.clone(), &sender, &Limits::default());
    assert_eq!(refusal_of(&answer, &item(1)).0, RefusalCode::Signature);
    // Such a phone speaks an older version: it reads the refusal as `forbidden`.
    let old = wire::encode_response_for(&answer.response, 3);
    let old = wire::decode_response(&old, &Limits::default()).unwrap();
    assert!(old.docs.iter().any(|d| matches!(
        d.body,
        ResponseBody::Refused {
            code: RefusalCode::Forbidden,
            ..
        }
    )));
    let answer = host.respond(request, &sender, &Limits::default());
    assert_eq!(
        answer.accepted.len(),
        1,
        "accepted as the uploader's, as before"
    );
}

#[test]
fn signatures_survive_compaction_and_reopening_an_encrypted_store() {
    use tournee_sync_core::store::{DeviceIdentity, StoreKey, StoreOptions, StoreRole};
    let (mut host, manifest) = common::town(2, 1);
    let dir = tempfile::tempdir().unwrap();
    let identity = DeviceIdentity {
        device: "dev-1".into(),
        principal: "pm-1".into(),
        role: StoreRole::Postman,
    };
    let open = || {
        let key = StoreKey::from_bytes(&[9; 32]).unwrap();
        PhoneStore::open_with_key(
            dir.path(),
            identity.clone(),
            Some(key),
            StoreOptions { fsync: false },
        )
        .unwrap()
    };
    let key = SoftwareKey::generate();
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    host.register_device("dev-1", sender.clone(), Some(key.public_key()));
    let recorded = {
        let mut phone = open();
        phone.set_manifest(manifest.clone()).unwrap();
        phone.set_signer(Arc::new(key));
        common::sync(&mut phone, &mut host, &sender);
        let recorded = phone
            .record_attempt(
                &fixtures::s10(1),
                &fixtures::absent_attempt("dev-1", "pm-1", 1),
            )
            .unwrap();
        phone.compact_all().unwrap();
        recorded
    };
    // Reopened without its signer: what was signed before is still signed, from the disk.
    let mut phone = open();
    let hash: tournee_sync_core::automerge::ChangeHash = recorded.change.parse().unwrap();
    let held = phone
        .signatures_of(&item(1), &[hash])
        .expect("kept through compaction");
    assert_eq!(
        held[0].signer,
        Signer::Device {
            device: "dev-1".into()
        }
    );
    // The server's signatures of what it sent are kept too: every change of the document is
    // signed on the phone, ready to give back to a restored server.
    let all: Vec<_> = phone
        .document(&item(1))
        .unwrap()
        .get_changes(&[])
        .iter()
        .map(|c| c.hash())
        .collect();
    assert!(all.len() > 1);
    assert!(
        phone.signatures_of(&item(1), &all).is_some(),
        "every change signed"
    );
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(
        phone.pending_interactions().is_empty(),
        "the signed push was accepted"
    );
}

/// A key store that cannot sign now (locked, user not authenticated).
#[derive(Debug)]
struct LockedKeyStore;

impl tournee_sync_core::signing::ChangeSigner for LockedKeyStore {
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, tournee_sync_core::signing::SigningError> {
        Err(tournee_sync_core::signing::SigningError {
            reason: "the key store is locked".into(),
        })
    }
}

#[test]
fn a_key_that_cannot_sign_records_nothing_and_says_why() {
    let (mut host, manifest) = common::town(2, 1);
    let dir = tempfile::tempdir().unwrap();
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    {
        let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
        common::sync(&mut phone, &mut host, &sender);
        phone.set_signer(Arc::new(LockedKeyStore));
        let before = phone.document(&item(1)).unwrap().get_heads();
        let refused = phone
            .record_attempt(
                &fixtures::s10(1),
                &fixtures::absent_attempt("dev-1", "pm-1", 1),
            )
            .unwrap_err();
        assert!(
            matches!(refused, tournee_sync_core::store::StoreError::Signing(_)),
            "{refused}"
        );
        assert!(refused.to_string().contains("locked"), "{refused}");
        assert!(phone.pending_interactions().is_empty());
        assert_eq!(phone.document(&item(1)).unwrap().get_heads(), before);
    }
    // Nothing of it reached the disk either.
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    assert!(phone.pending_interactions().is_empty());
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.acknowledged.is_empty());
}

#[test]
fn a_customers_app_does_not_sign_and_is_answered_as_its_token() {
    let (mut host, _) = common::town(2, 1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = tournee_sync_core::model::RoundManifest {
        round_id: "customer-view".into(),
        date: "2030-01-01".into(),
        postman: "cust-1".into(),
        device: "cust-1-app".into(),
        stops: vec![tournee_sync_core::model::Stop {
            order: 1,
            delivery_point: fixtures::delivery_point_id(0),
            items: vec![fixtures::s10(0).to_string()],
        }],
    };
    let identity = tournee_sync_core::store::DeviceIdentity {
        device: "cust-1-app".into(),
        principal: "cust-1".into(),
        role: tournee_sync_core::store::StoreRole::Customer,
    };
    let mut app = PhoneStore::open(
        dir.path(),
        identity,
        tournee_sync_core::store::StoreOptions { fsync: false },
    )
    .unwrap();
    app.set_manifest(manifest.clone()).unwrap();
    app.set_signer(Arc::new(SoftwareKey::generate()));
    let sender = Sender {
        role: Role::Customer,
        principal: "cust-1".into(),
        device: None,
        scope: tournee_sync_core::validator::Scope::Documents(
            manifest.documents().unwrap().into_iter().collect(),
        ),
    };
    common::sync(&mut app, &mut host, &sender);
    app.choose_for_item(
        &fixtures::s10(0),
        &fixtures::redeliver_choice("cust-1", "2030-01-02"),
    )
    .unwrap();
    let mut request = next_request(&mut app);
    assert!(pushed(&mut request, &item(0)).1.is_empty(), "not signed");
    let (report, _, _) = common::sync(&mut app, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(app.pending_interactions().is_empty());
}

#[test]
fn a_round_handed_over_by_file_is_synced_by_the_relief_phone_and_stored_once() {
    let (mut host, manifest, _dir, mut phone, key, sender) = synced_town();
    let relief_dir = tempfile::tempdir().unwrap();
    let (mut relief, _, relief_sender) =
        signed_phone(relief_dir.path(), "dev-2", "pm-2", &manifest, &mut host);
    let first = phone
        .record_attempt(
            &fixtures::s10(1),
            &fixtures::absent_attempt("dev-1", "pm-1", 1),
        )
        .unwrap();
    let second = phone
        .record_attempt(
            &fixtures::s10(2),
            &fixtures::delivered_attempt("dev-1", "pm-1", 2),
        )
        .unwrap();

    // A file signed as another key's is refused whole, and the relief phone is unchanged.
    let forged = phone
        .export_round(&SoftwareKey::generate().public_key().to_sec1())
        .unwrap();
    let refused = relief.import_round(&forged).unwrap_err();
    assert!(
        refused.to_string().contains("not signed by dev-1"),
        "{refused}"
    );
    assert_eq!(relief.document_ids().count(), 0);
    assert!(relief.pending_interactions().is_empty());
    assert!(relief.import_round(b"not a relay file").is_err());

    // The honest file: dev-1's interactions are pending on the relief phone, which works on.
    let file = phone.export_round(&key.public_key().to_sec1()).unwrap();
    let import = relief.import_round(&file).unwrap();
    assert_eq!(import.interactions.len(), 2);
    assert!(import.documents > 2);
    let own = relief
        .record_attempt(
            &fixtures::s10(3),
            &fixtures::absent_attempt("dev-2", "pm-2", 3),
        )
        .unwrap();
    let (report, _, _) = common::sync(&mut relief, &mut host, &relief_sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(relief.pending_interactions().is_empty(), "all acknowledged");
    for (n, recorded) in [(1, &first), (2, &second)] {
        assert_eq!(attempts_on_server(&host, n), vec![recorded.id.clone()]);
        let hash: tournee_sync_core::automerge::ChangeHash = recorded.change.parse().unwrap();
        let signer = host
            .signatures(&item(n))
            .iter()
            .find(|s| s.hash == hash.as_ref())
            .map(|s| s.signer.clone());
        assert_eq!(
            signer,
            Some(Signer::Device {
                device: "dev-1".into()
            }),
            "authored by dev-1"
        );
    }
    assert_eq!(attempts_on_server(&host, 3), vec![own.id]);

    // The recording phone syncs later: nothing refused, nothing stored twice.
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(phone.pending_interactions().is_empty());
    assert_eq!(attempts_on_server(&host, 1).len(), 1);
    assert_eq!(attempts_on_server(&host, 2).len(), 1);
}
