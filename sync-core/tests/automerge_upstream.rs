//! A minimal reproduction of a panic in automerge 0.12.0, kept as the upstream report's test
//! case (docs/upstream/automerge-apply-panics.md): a change whose checksum matches its bytes,
//! but whose actor id is declared empty, parses (`Change::from_bytes` succeeds) and then panics
//! inside `Automerge::apply_changes` (`op_set2/change/batch.rs:1121`, an unwrap on `None`)
//! instead of returning an error. The server contains such panics (`sync::respond` refuses the
//! document as malformed; `tests/tampering.rs` fuzzes it). When an automerge upgrade fixes the
//! panic, this test fails: then say so in the report and drop the test.

#![allow(clippy::unwrap_used, missing_docs)]

use automerge::{transaction::Transactable, ActorId, Automerge, Change, ROOT};
use sha2::Digest;

/// A document of one change, and a second change on top of it: `{"m": {"k": "v"}}`.
fn document_and_next_change() -> (Automerge, Vec<u8>) {
    let mut doc = Automerge::new().with_actor(ActorId::from(&[1u8; 16][..]));
    let mut tx = doc.transaction();
    tx.put(ROOT, "a", 1).unwrap();
    tx.commit();
    let base = doc.clone();
    let mut tx = doc.transaction();
    let map = tx.put_object(ROOT, "m", automerge::ObjType::Map).unwrap();
    tx.put(&map, "k", "v").unwrap();
    tx.commit();
    let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    (base, change)
}

#[test]
fn automerge_0_12_panics_applying_a_change_whose_actor_id_is_declared_empty() {
    let (base, mut bytes) = document_and_next_change();
    // Byte 43 is the length of the change's actor id (16); 0 declares it empty.
    assert_eq!(bytes[43], 16, "the layout this reproduction relies on");
    bytes[43] = 0;
    // The checksum made to match, as `Change::from_bytes` requires nothing else.
    let hash = sha2::Sha256::digest(&bytes[8..]);
    bytes[4..8].copy_from_slice(&hash[..4]);
    let change = Change::from_bytes(bytes).expect("automerge 0.12 accepts the change");
    let applied = std::panic::catch_unwind(move || base.fork().apply_changes([change]));
    assert!(
        applied.is_err(),
        "automerge no longer panics here ({applied:?}): update docs/upstream/automerge-apply-panics.md and drop this test"
    );
}
