//! The phone's queue of proof files survives the app's restarts: what was queued is there when
//! the store opens again, with the same bytes to upload, until the server's answer says it holds
//! it; an answer that says "later" keeps it, a refusal sets it aside, and a crash while queuing
//! leaves nothing half written. The store is encrypted, as an app's is: sizes and bytes are the
//! proofs', not the sealed files'.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use tournee_mobile_ffi::FieldStore;
use tournee_sync_core::model::ProofKind;
use tournee_sync_core::store::{ProofAnswer, ProofState, StoreRole};

/// Opens the store encrypted, as an app does: each queued file is sealed on disk.
fn open(dir: &std::path::Path) -> Arc<FieldStore> {
    FieldStore::open(
        dir.display().to_string(),
        "dev-1".into(),
        "pm-1".into(),
        StoreRole::Postman,
        Some(vec![7; 32]),
    )
    .unwrap()
}

fn queued(store: &FieldStore) -> Vec<(String, u64, ProofState)> {
    store
        .queued_proofs()
        .unwrap()
        .into_iter()
        .map(|q| (q.proof.sha256, q.size, q.state))
        .collect()
}

#[test]
fn the_proof_queue_survives_restarts_until_the_server_holds_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let photo = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[42; 5000]].concat();
    let signature = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec();
    let pad = dir.path().join("pad.svg");
    std::fs::write(&pad, &signature).unwrap();
    let store = open(&dir.path().join("store"));
    let p = store.queue_proof(ProofKind::Photo, photo.clone()).unwrap();
    let s = store
        .queue_proof_file(ProofKind::Signature, pad.display().to_string())
        .unwrap();
    assert_eq!(s.kind, ProofKind::Signature);
    // The same bytes again: the same reference, one file.
    assert_eq!(
        store.queue_proof(ProofKind::Photo, photo.clone()).unwrap(),
        p
    );
    let mut expected = vec![
        (
            p.sha256.clone(),
            photo.len() as u64,
            ProofState::Unreferenced,
        ),
        (
            s.sha256.clone(),
            signature.len() as u64,
            ProofState::Unreferenced,
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(queued(&store), expected);
    drop(store);
    std::fs::remove_file(&pad).unwrap();

    // A crash while queuing another file left its temporary file behind.
    let leftover = dir
        .path()
        .join("store/proofs")
        .join(format!("{}.photo.tmp", "ab".repeat(32)));
    std::fs::write(&leftover, b"half a photo").unwrap();

    let store = open(&dir.path().join("store"));
    assert_eq!(queued(&store), expected, "the queue after a restart");
    assert!(!leftover.exists(), "the half-written file is gone");
    let upload = store.proof_upload(p.sha256.clone()).unwrap();
    assert_eq!(upload.method, "PUT");
    assert_eq!(upload.path, format!("/v1/proofs/{}", p.sha256));
    assert_eq!(upload.body, photo);
    // The server is busy: the file stays, also across a restart.
    let later = store
        .apply_proof_answer(
            p.sha256.clone(),
            503,
            br#"{"code":"busy","message":"retry"}"#.to_vec(),
        )
        .unwrap();
    assert!(matches!(later, ProofAnswer::RetryLater { .. }), "{later:?}");
    drop(store);
    let store = open(&dir.path().join("store"));
    assert_eq!(queued(&store), expected);
    // Stored: it leaves the queue. Refused for good: it is set aside, not offered again.
    assert_eq!(
        store
            .apply_proof_answer(p.sha256.clone(), 201, b"{}".to_vec())
            .unwrap(),
        ProofAnswer::Stored
    );
    let refused = store
        .apply_proof_answer(
            s.sha256.clone(),
            413,
            br#"{"code":"proof_too_large","message":"over the limit"}"#.to_vec(),
        )
        .unwrap();
    assert_eq!(
        refused,
        ProofAnswer::Refused {
            code: "proof_too_large".into(),
            message: "over the limit".into()
        }
    );
    drop(store);
    let store = open(&dir.path().join("store"));
    assert!(queued(&store).is_empty());
    assert!(dir
        .path()
        .join(format!("store/proofs/refused/{}.signature", s.sha256))
        .exists());
    assert!(store.proof_upload(p.sha256.clone()).is_err());
    assert!(store.proof_upload("../store".into()).is_err());
    assert!(store.queue_proof(ProofKind::Photo, Vec::new()).is_err());
}
