//! The phone store: crash safety at every byte of a write, reopening, and damage detection.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tournee_sync_core::fixtures;
use tournee_sync_core::operations;
use tournee_sync_core::store::{
    DeviceIdentity, Interaction, InteractionKind, PhoneStore, StoreError, StoreOptions, StoreRole,
};
use tournee_sync_core::DocId;

type Files = BTreeMap<PathBuf, Vec<u8>>;

fn identity() -> DeviceIdentity {
    DeviceIdentity {
        device: "dev-1".into(),
        principal: "pm-1".into(),
        role: StoreRole::Postman,
    }
}

/// Reopens a store. Fsync is off: these tests simulate crashes by writing the bytes a crash
/// leaves, so durability of the test's own writes is not what is under test.
fn reopen(dir: &Path) -> Result<PhoneStore, StoreError> {
    PhoneStore::open(dir, identity(), StoreOptions { fsync: false })
}

fn read_files(root: &Path) -> Files {
    let mut files = Files::new();
    for dir in [root.to_path_buf(), root.join("docs")] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.insert(
                    path.strip_prefix(root).unwrap().to_owned(),
                    fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

fn write_files(root: &Path, files: &Files) {
    fs::create_dir_all(root.join("docs")).unwrap();
    for (path, bytes) in files {
        fs::write(root.join(path), bytes).unwrap();
    }
}

/// A downloaded round on a phone, then `count` attempts, one commit each. Returns the files after
/// the download and after each commit, and the interactions in commit order.
fn worked_round(count: u32) -> (Vec<Files>, Vec<Interaction>) {
    let (mut host, manifest) = common::town(4, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    common::sync(&mut phone, &mut host, &sender);
    let mut states = vec![read_files(dir.path())];
    let mut interactions = Vec::new();
    for n in 0..count {
        let item = DocId::item(&fixtures::s10(n % 8));
        let attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
        let id = format!("att-{n}");
        let done = phone
            .commit(&item, InteractionKind::Attempt, |doc| {
                Ok((id.clone(), operations::record_attempt(doc, &id, &attempt)?))
            })
            .unwrap()
            .unwrap();
        interactions.push(done);
        states.push(read_files(dir.path()));
    }
    (states, interactions)
}

/// A small deterministic generator, so a failing case can be replayed from its number.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What a crash leaves of the record being appended.
#[derive(Debug, Clone, Copy)]
enum Tail {
    /// The append stopped at a byte.
    Cut,
    /// The file was extended but the new bytes were never written (zeros).
    Zeros,
    /// The new bytes are garbage after the cut.
    Garbage,
}

#[test]
fn a_crash_at_any_byte_of_a_write_loses_no_committed_interaction() {
    const COMMITS: u32 = 24;
    // `TOURNEE_CRASH_CASES` runs more cases (and another seed) for a deeper search.
    let cases: usize = std::env::var("TOURNEE_CRASH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_200);
    let (states, interactions) = worked_round(COMMITS);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ cases as u64);
    for case in 0..cases {
        // The crash hits commit `i + 1`: everything up to commit `i` was committed.
        let i = rng.below(COMMITS as usize);
        let (before, after) = (&states[i], &states[i + 1]);
        let (path, new_bytes) = after
            .iter()
            .find(|(path, bytes)| before.get(*path) != Some(*bytes))
            .expect("every commit writes one document log");
        let old_len = before.get(path).map_or(0, Vec::len);
        assert_eq!(
            &new_bytes[..old_len],
            &before[path][..],
            "commits only append"
        );
        let cut = old_len + rng.below(new_bytes.len() - old_len);
        let tail = [Tail::Cut, Tail::Zeros, Tail::Garbage][rng.below(3)];
        let mut torn = new_bytes[..cut].to_vec();
        let missing = new_bytes.len() - cut;
        match tail {
            Tail::Cut => {}
            Tail::Zeros => torn.extend(std::iter::repeat_n(0u8, missing)),
            Tail::Garbage => torn.extend((0..missing).map(|_| rng.below(256) as u8)),
        }
        let mut crashed = before.clone();
        crashed.insert(path.clone(), torn);

        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), &crashed);
        let mut store = reopen(dir.path())
            .unwrap_or_else(|e| panic!("case {case} (commit {i}, cut {cut}, {tail:?}): {e}"));
        let pending = store.pending_interactions();
        for committed in &interactions[..i] {
            assert!(
                pending.contains(committed),
                "case {case}: {} lost",
                committed.id
            );
            // Documents other than the torn one are byte for byte as committed; load the torn
            // one every time and all of them now and then.
            if committed.doc == interactions[i].doc || case % 50 == 0 {
                let item = operations::read_item(store.document(&committed.doc).unwrap()).unwrap();
                assert!(
                    item.attempts.contains_key(&committed.id),
                    "case {case}: {} not in the document",
                    committed.id
                );
            }
        }
        // The interaction being written when the crash hit may or may not be there, never half.
        let extra: Vec<_> = pending
            .iter()
            .filter(|p| !interactions[..i].contains(p))
            .collect();
        assert!(
            extra.len() <= 1 && extra.iter().all(|p| *p == &interactions[i]),
            "case {case}: {extra:?}"
        );

        // And the store goes on working: a new interaction commits and survives a reopen.
        if case % 50 == 0 {
            let item = DocId::item(&fixtures::s10(3));
            let attempt = fixtures::absent_attempt("dev-1", "pm-1", 99);
            store
                .commit(&item, InteractionKind::Attempt, |doc| {
                    Ok((
                        "after-crash".into(),
                        operations::record_attempt(doc, "after-crash", &attempt)?,
                    ))
                })
                .unwrap();
            drop(store);
            let store = reopen(dir.path()).unwrap();
            assert!(store
                .pending_interactions()
                .iter()
                .any(|p| p.id == "after-crash"));
        }
    }
}

#[test]
fn a_crash_while_replacing_a_file_leaves_the_old_one() {
    let (states, interactions) = worked_round(3);
    let last = states.last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut crashed = last.clone();
    // Half-written temporary files of a compaction and of a cursor update.
    let (log, bytes) = crashed
        .iter()
        .find(|(p, _)| p.starts_with("docs"))
        .map(|(p, b)| (p.clone(), b.clone()))
        .unwrap();
    crashed.insert(
        PathBuf::from(format!("{}.tmp", log.display())),
        bytes[..bytes.len() / 2].to_vec(),
    );
    crashed.insert(PathBuf::from("store.cbor.tmp"), vec![0xa1, 0x01]);
    write_files(dir.path(), &crashed);
    let store = reopen(dir.path()).unwrap();
    assert_eq!(store.pending_interactions(), interactions);
    assert!(
        !dir.path().join("store.cbor.tmp").exists(),
        "leftovers are removed"
    );
}

#[test]
fn a_reopened_store_has_everything_including_after_compaction() {
    let (mut host, manifest) = common::town(2, 2);
    let dir = tempfile::tempdir().unwrap();
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let item = DocId::item(&fixtures::s10(0));
    {
        let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
        common::sync(&mut phone, &mut host, &sender);
        for n in 0..70 {
            let id = format!("att-{n}");
            let attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
            phone
                .commit(&item, InteractionKind::Attempt, |doc| {
                    Ok((id.clone(), operations::record_attempt(doc, &id, &attempt)?))
                })
                .unwrap();
        }
    }
    let mut phone =
        PhoneStore::open(dir.path(), identity(), StoreOptions { fsync: false }).unwrap();
    assert_eq!(
        phone.pending_interactions().len(),
        70,
        "compaction keeps pending interactions"
    );
    assert_eq!(phone.manifest(), Some(&manifest));
    assert_eq!(
        operations::read_item(phone.document(&item).unwrap())
            .unwrap()
            .attempts
            .len(),
        70
    );
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.acknowledged.len(), 70);
    phone.compact_all().unwrap();
    drop(phone);
    let mut phone =
        PhoneStore::open(dir.path(), identity(), StoreOptions { fsync: false }).unwrap();
    assert!(phone.pending_interactions().is_empty());
    assert!(phone.cursor().is_some());
    // Acknowledged heads survived too: the next sync has nothing to push.
    let (report, up, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.exchanges, 1);
    assert!(up < 64);
}

#[test]
fn damage_that_no_crash_produces_is_reported_not_repaired() {
    let (states, _) = worked_round(4);
    let last = states.last().unwrap();
    let (log, bytes) = last
        .iter()
        .filter(|(p, _)| p.starts_with("docs"))
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    let mut damaged = last.clone();
    let mut bytes = bytes.clone();
    bytes[20] ^= 0x40; // inside the first record, with valid records after it
    damaged.insert(log.clone(), bytes);
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &damaged);
    match reopen(dir.path()) {
        Err(StoreError::Corrupt { path, reason }) => {
            assert!(path.ends_with(log), "{path:?}");
            assert!(reason.contains("damaged record"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    let mut damaged = last.clone();
    damaged.insert(PathBuf::from("store.cbor"), b"not cbor at all".to_vec());
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &damaged);
    assert!(matches!(
        reopen(dir.path()),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_store_belongs_to_one_device() {
    let dir = tempfile::tempdir().unwrap();
    drop(reopen(dir.path()).unwrap());
    let other = DeviceIdentity {
        device: "dev-2".into(),
        ..identity()
    };
    match PhoneStore::open(dir.path(), other, StoreOptions::default()) {
        Err(StoreError::WrongDevice { expected, found }) => {
            assert!(expected.contains("dev-2") && found.contains("dev-1"));
        }
        other => panic!("expected WrongDevice, got {other:?}"),
    }
}

#[test]
fn a_store_is_opened_by_one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = reopen(dir.path()).unwrap();
    // A second open would let two writers each believe their commits durable.
    match reopen(dir.path()) {
        Err(StoreError::InUse { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(first);
    reopen(dir.path()).unwrap();
}

#[test]
fn recording_on_a_document_not_downloaded_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = reopen(dir.path()).unwrap();
    let item = DocId::item(&fixtures::s10(5));
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", 5);
    let result = store.commit(&item, InteractionKind::Attempt, |doc| {
        Ok(("a".into(), operations::record_attempt(doc, "a", &attempt)?))
    });
    assert!(matches!(result, Err(StoreError::UnknownDocument(id)) if id == item));
}
