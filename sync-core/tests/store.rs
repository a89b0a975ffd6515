//! The phone store: crash safety at every byte of a write, reopening, and damage detection, on
//! plain and on encrypted stores; what an encrypted store refuses (a wrong key, no key, a log
//! of another store), what it leaves readable on disk (nothing personal), and the sealing of a
//! plain store in place.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tournee_sync_core::fixtures;
use tournee_sync_core::model::ProofKind;
use tournee_sync_core::operations;
use tournee_sync_core::store::{
    DeviceIdentity, Interaction, InteractionKind, PhoneStore, StoreError, StoreKey, StoreOptions,
    StoreRole,
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

/// The key an app would keep in the Keystore or the Keychain.
fn key() -> StoreKey {
    StoreKey::from_bytes(&[0x5a; 32]).unwrap()
}

fn other_key() -> StoreKey {
    StoreKey::from_bytes(&[0xa5; 32]).unwrap()
}

/// Reopens a plain store. Fsync is off: these tests simulate crashes by writing the bytes a
/// crash leaves, so durability of the test's own writes is not what is under test.
fn reopen(dir: &Path) -> Result<PhoneStore, StoreError> {
    open_with(dir, None)
}

/// Reopens a store with a key, or none.
fn open_with(dir: &Path, key: Option<StoreKey>) -> Result<PhoneStore, StoreError> {
    PhoneStore::open_with_key(dir, identity(), key, StoreOptions { fsync: false })
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

/// A downloaded round on a phone (encrypted with `key`, if given), then `count` attempts, one
/// commit each. Returns the files after the download and after each commit, and the
/// interactions in commit order.
fn worked_round(count: u32, key: Option<StoreKey>) -> (Vec<Files>, Vec<Interaction>) {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = downloaded_round(dir.path(), key);
    let mut states = vec![read_files(dir.path())];
    let mut interactions = Vec::new();
    for n in 0..count {
        interactions.push(record(&mut phone, n));
        states.push(read_files(dir.path()));
    }
    (states, interactions)
}

/// Commits attempt `att-<n>` on item `n % 8`.
fn record(phone: &mut PhoneStore, n: u32) -> Interaction {
    let item = DocId::item(&fixtures::s10(n % 8));
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
    let id = format!("att-{n}");
    phone
        .commit(&item, InteractionKind::Attempt, |doc| {
            Ok((id.clone(), operations::record_attempt(doc, &id, &attempt)?))
        })
        .unwrap()
        .unwrap()
}

/// A phone of device `dev-1` (encrypted with `key`, if given) that downloaded its round of
/// 4 delivery points and 8 items.
fn downloaded_round(dir: &Path, key: Option<StoreKey>) -> PhoneStore {
    downloaded_round_of(dir, "dev-1", "pm-1", key)
}

fn downloaded_round_of(
    dir: &Path,
    device: &str,
    postman: &str,
    key: Option<StoreKey>,
) -> PhoneStore {
    let (mut host, manifest) = common::town(4, 2);
    let identity = DeviceIdentity {
        device: device.into(),
        principal: postman.into(),
        role: StoreRole::Postman,
    };
    let mut phone =
        PhoneStore::open_with_key(dir, identity, key, StoreOptions { fsync: false }).unwrap();
    phone.set_manifest(manifest.clone()).unwrap();
    let sender = common::postman_sender(device, postman, &manifest);
    common::sync(&mut phone, &mut host, &sender);
    phone
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
    crash_at_any_byte_of_a_write(None);
}

#[test]
fn a_crash_at_any_byte_of_a_write_to_an_encrypted_store_loses_no_committed_interaction() {
    crash_at_any_byte_of_a_write(Some(key()));
}

/// Crashes at random bytes of commits to a store (encrypted with `key`, if given): every
/// committed interaction survives, the one being written is there whole or not at all.
fn crash_at_any_byte_of_a_write(key: Option<StoreKey>) {
    const COMMITS: u32 = 24;
    // `TOURNEE_CRASH_CASES` runs more cases (and another seed) for a deeper search.
    let cases: usize = std::env::var("TOURNEE_CRASH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_200);
    let (states, interactions) = worked_round(COMMITS, key.clone());
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
        let mut store = open_with(dir.path(), key.clone())
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
            let store = open_with(dir.path(), key.clone()).unwrap();
            assert!(store
                .pending_interactions()
                .iter()
                .any(|p| p.id == "after-crash"));
        }
    }
}

#[test]
fn a_crash_while_replacing_a_file_leaves_the_old_one() {
    for key in [None, Some(key())] {
        crash_while_replacing_a_file(key);
    }
}

fn crash_while_replacing_a_file(key: Option<StoreKey>) {
    let (states, interactions) = worked_round(3, key.clone());
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
    let store = open_with(dir.path(), key).unwrap();
    assert_eq!(store.pending_interactions(), interactions);
    assert!(
        !dir.path().join("store.cbor.tmp").exists(),
        "leftovers are removed"
    );
}

#[test]
fn a_reopened_store_has_everything_including_after_compaction() {
    for key in [None, Some(key())] {
        reopened_after_compaction(key);
    }
}

fn reopened_after_compaction(key: Option<StoreKey>) {
    let (mut host, manifest) = common::town(2, 2);
    let dir = tempfile::tempdir().unwrap();
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let item = DocId::item(&fixtures::s10(0));
    {
        let mut phone = open_with(dir.path(), key.clone()).unwrap();
        phone.set_manifest(manifest.clone()).unwrap();
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
    let mut phone = open_with(dir.path(), key.clone()).unwrap();
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
    let mut phone = open_with(dir.path(), key).unwrap();
    assert!(phone.pending_interactions().is_empty());
    assert!(phone.cursor().is_some());
    // Acknowledged heads survived too: the next sync has nothing to push.
    let (report, up, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.exchanges, 1);
    assert!(up < 64);
}

#[test]
fn damage_that_no_crash_produces_is_reported_not_repaired() {
    for key in [None, Some(key())] {
        damage_is_reported(key);
    }
}

fn damage_is_reported(key: Option<StoreKey>) {
    let (states, _) = worked_round(4, key.clone());
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
    match open_with(dir.path(), key.clone()) {
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
        open_with(dir.path(), key),
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

/// The path of a document's log, relative to the store's folder.
fn log_of(item: u32) -> PathBuf {
    let id = DocId::item(&fixtures::s10(item));
    PathBuf::from("docs").join(format!("{}.log", id.as_str().replacen(':', "_", 1)))
}

/// The bytes commit `n` of [`worked_round`] appended, and to which log.
fn appended(states: &[Files], n: usize) -> (PathBuf, Vec<u8>) {
    let (before, after) = (&states[n], &states[n + 1]);
    let (path, bytes) = after
        .iter()
        .find(|(path, bytes)| before.get(*path) != Some(*bytes))
        .unwrap();
    (path.clone(), bytes[before[path].len()..].to_vec())
}

/// Every file under `root`, in every folder.
fn all_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
    }
    files
}

/// The needles found in plain bytes anywhere under `root`.
fn readable<'a>(root: &Path, needles: &[&'a [u8]]) -> Vec<&'a str> {
    let files = all_files(root);
    needles
        .iter()
        .filter(|needle| {
            files
                .iter()
                .any(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == **needle))
        })
        .map(|needle| std::str::from_utf8(needle).unwrap())
        .collect()
}

const PHOTO: &[u8] = b"JPEG: the parcel at the door of 12 rue de la Roquette";

#[test]
fn a_wrong_key_or_no_key_is_a_typed_error_that_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = downloaded_round(dir.path(), Some(key()));
    assert!(phone.is_encrypted());
    let done = record(&mut phone, 1);
    drop(phone);
    let before = all_files(dir.path());
    match open_with(dir.path(), Some(other_key())) {
        Err(StoreError::WrongKey { path }) => assert!(path.ends_with("store.cbor"), "{path:?}"),
        other => panic!(
            "expected WrongKey, got {:?}",
            other.map(|_| "an open store")
        ),
    }
    match open_with(dir.path(), None) {
        Err(StoreError::KeyRequired { path }) => assert!(path.ends_with("store.cbor"), "{path:?}"),
        other => panic!(
            "expected KeyRequired, got {:?}",
            other.map(|_| "an open store")
        ),
    }
    assert_eq!(
        all_files(dir.path()),
        before,
        "a refused open writes nothing"
    );
    let store = open_with(dir.path(), Some(key())).unwrap();
    assert_eq!(store.pending_interactions(), vec![done]);
}

#[test]
fn a_log_copied_from_another_devices_store_is_refused_even_under_the_same_key() {
    let mine = tempfile::tempdir().unwrap();
    let mut phone = downloaded_round(mine.path(), Some(key()));
    let done = record(&mut phone, 1);
    drop(phone);
    let theirs = tempfile::tempdir().unwrap();
    drop(downloaded_round_of(
        theirs.path(),
        "dev-2",
        "pm-2",
        Some(key()),
    ));
    let their_log = fs::read(theirs.path().join(log_of(1))).unwrap();
    let my_log = fs::read(mine.path().join(log_of(1))).unwrap();
    // Over the same document's log, and as a document this store does not hold.
    for (target, restore) in [(log_of(1), Some(my_log)), (log_of(40), None)] {
        fs::write(mine.path().join(&target), &their_log).unwrap();
        match open_with(mine.path(), Some(key())) {
            Err(StoreError::Foreign { path, reason }) => {
                assert!(path.ends_with(&target), "{path:?}");
                assert!(reason.contains("another store"), "{reason}");
            }
            other => panic!(
                "expected Foreign for {target:?}, got {:?}",
                other.map(|_| "an open store")
            ),
        }
        match restore {
            Some(bytes) => fs::write(mine.path().join(&target), bytes).unwrap(),
            None => fs::remove_file(mine.path().join(&target)).unwrap(),
        }
    }
    let store = open_with(mine.path(), Some(key())).unwrap();
    assert_eq!(store.pending_interactions(), vec![done]);
}

#[test]
fn a_record_moved_within_an_encrypted_store_does_not_open() {
    // Item 0 gets commits 0 and 8, item 1 gets commit 1.
    let (states, _) = worked_round(9, Some(key()));
    let last = states.last().unwrap();
    let (log_0, first) = appended(&states, 0);
    let (_, second) = appended(&states, 8);
    let (log_1, _) = appended(&states, 1);
    let with = |path: &PathBuf, bytes: Vec<u8>| {
        let mut files = last.clone();
        files.insert(path.clone(), bytes);
        files
    };
    let swapped = {
        let log = &last[&log_0];
        let base = log.len() - first.len() - second.len();
        [&log[..base], &second[..], &first[..]].concat()
    };
    let cases = [
        (
            "a whole log over another document's",
            with(&log_1, last[&log_0].clone()),
        ),
        (
            "a record appended to another document's log",
            with(&log_1, [&last[&log_1][..], &first[..]].concat()),
        ),
        ("two records of a log swapped", with(&log_0, swapped)),
    ];
    for (case, files) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), &files);
        match open_with(dir.path(), Some(key())) {
            Err(StoreError::Corrupt { reason, .. }) => {
                assert!(reason.contains("does not authenticate"), "{case}: {reason}")
            }
            other => panic!(
                "{case}: expected Corrupt, got {:?}",
                other.map(|_| "an open store")
            ),
        }
    }
}

#[test]
fn nothing_personal_is_readable_in_an_encrypted_stores_files() {
    let s10 = fixtures::s10(1).as_str().to_string();
    let needles: [&[u8]; 5] = [b"dev-1", b"pm-1", s10.as_bytes(), b"bp-paris-11", PHOTO];
    for key in [None, Some(key())] {
        let encrypted = key.is_some();
        let dir = tempfile::tempdir().unwrap();
        let mut phone = downloaded_round(dir.path(), key);
        record(&mut phone, 1);
        let proof = phone.queue_proof(ProofKind::Photo, PHOTO).unwrap();
        let queued = phone.queued_proofs().unwrap();
        assert_eq!(
            queued[0].size,
            PHOTO.len() as u64,
            "the photo's size, not the file's"
        );
        assert_eq!(phone.proof_upload(&proof.sha256).unwrap().body, PHOTO);
        drop(phone);
        let found = readable(dir.path(), &needles);
        if encrypted {
            assert!(found.is_empty(), "readable on disk: {found:?}");
        } else {
            // The plain store shows each of them: the search can find what it looks for.
            assert_eq!(found.len(), needles.len(), "{found:?}");
        }
    }
}

#[test]
fn a_plain_store_opened_with_a_key_is_encrypted_in_place_even_if_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = downloaded_round(dir.path(), None);
    let done = record(&mut phone, 1);
    let proof = phone.queue_proof(ProofKind::Photo, PHOTO).unwrap();
    let manifest = phone.manifest().cloned();
    drop(phone);

    // A log damaged in a way no crash produces stops the sealing midway, after `store.cbor`.
    let log = dir.path().join(log_of(1));
    let good = fs::read(&log).unwrap();
    let mut damaged = good.clone();
    damaged[20] ^= 0x40;
    fs::write(&log, &damaged).unwrap();
    assert!(matches!(
        open_with(dir.path(), Some(key())),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(
        matches!(
            open_with(dir.path(), None),
            Err(StoreError::KeyRequired { .. })
        ),
        "store.cbor is sealed first"
    );

    // Repaired, the next open with the key finishes the sealing.
    fs::write(&log, &good).unwrap();
    let store = open_with(dir.path(), Some(key())).unwrap();
    assert!(store.is_encrypted());
    assert_eq!(store.pending_interactions(), vec![done.clone()]);
    assert_eq!(store.manifest().cloned(), manifest);
    assert_eq!(store.proof_upload(&proof.sha256).unwrap().body, PHOTO);
    drop(store);
    let s10 = fixtures::s10(1).as_str().to_string();
    let found = readable(dir.path(), &[b"dev-1", b"pm-1", s10.as_bytes(), PHOTO]);
    assert!(found.is_empty(), "still readable on disk: {found:?}");
    assert!(matches!(
        open_with(dir.path(), None),
        Err(StoreError::KeyRequired { .. })
    ));
    let store = open_with(dir.path(), Some(key())).unwrap();
    assert_eq!(store.pending_interactions(), vec![done]);
}
