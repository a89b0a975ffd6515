//! The figures of a postman's round on the phone side: recording an interaction, opening the
//! store, the end-of-round sync and the first download. Run with
//! `cargo bench -p tournee-sync-core --bench round`; byte figures are printed before the timings.
//! Recording and opening are measured for each [`Protection`] of the store, side by side:
//! `cargo bench -p tournee-sync-core --bench round -- 'record_attempt|open'`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tournee_sync_core::fixtures;
use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::operations::{self, new_entry_id};
use tournee_sync_core::signing::{ChangeSignature, Keyring, SoftwareKey};
use tournee_sync_core::store::{
    DeviceIdentity, InteractionKind, PhoneStore, StoreKey, StoreOptions, StoreRole,
};
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::{MemoryHost, SyncSession};
use tournee_sync_core::validator::{Role, Scope, Sender};
use tournee_sync_core::DocId;

/// 150 delivery points with 2 items each: 450 documents.
const POINTS: u32 = 150;
const ITEMS_PER_POINT: u32 = 2;
/// Attempts recorded during the round.
const ATTEMPTS: u32 = 150;

fn town() -> (MemoryHost, RoundManifest) {
    fixtures::town(POINTS, ITEMS_PER_POINT).unwrap()
}

fn sender(manifest: &RoundManifest) -> Sender {
    Sender {
        role: Role::Postman,
        principal: "pm-1".into(),
        device: Some("dev-1".into()),
        scope: Scope::Documents(manifest.documents().unwrap().into_iter().collect()),
    }
}

/// How the store protects what it records. Each is measured beside the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protection {
    /// Plain files (tests and tools only).
    Plain,
    /// Every record and file sealed with the app's key (XChaCha20-Poly1305).
    Encrypted,
    /// Sealed, and every change signed by the device's key (ECDSA P-256, a software key).
    EncryptedSigned,
}

const PROTECTIONS: [Protection; 3] = [
    Protection::Plain,
    Protection::Encrypted,
    Protection::EncryptedSigned,
];

impl Protection {
    fn key(self) -> Option<StoreKey> {
        match self {
            Protection::Plain => None,
            Protection::Encrypted | Protection::EncryptedSigned => {
                Some(StoreKey::from_bytes(&[0x5a; StoreKey::LEN]).unwrap())
            }
        }
    }

    fn label(self) -> &'static str {
        match self {
            Protection::Plain => "plain",
            Protection::Encrypted => "encrypted",
            Protection::EncryptedSigned => "encrypted+signed",
        }
    }
}

fn open(dir: &Path, fsync: bool) -> PhoneStore {
    open_protected(dir, fsync, Protection::Plain)
}

fn open_protected(dir: &Path, fsync: bool, protection: Protection) -> PhoneStore {
    let identity = DeviceIdentity {
        device: "dev-1".into(),
        principal: "pm-1".into(),
        role: StoreRole::Postman,
    };
    let mut store =
        PhoneStore::open_with_key(dir, identity, protection.key(), StoreOptions { fsync }).unwrap();
    if protection == Protection::EncryptedSigned {
        store.set_signer(std::sync::Arc::new(SoftwareKey::generate()));
    }
    store
}

/// Runs a session; returns (requests, bytes up, bytes down).
fn sync(store: &mut PhoneStore, host: &mut MemoryHost, sender: &Sender) -> (usize, usize, usize) {
    let limits = Limits::default();
    let mut session = SyncSession::new(store, limits);
    let (mut requests, mut up, mut down) = (0, 0, 0);
    while let Some(request) = session.next_request().unwrap() {
        let frame = wire::encode_request(&request);
        requests += 1;
        up += frame.len();
        let answer = host.respond(
            wire::decode_request(&frame, &limits).unwrap(),
            sender,
            &limits,
        );
        let frame = wire::encode_response(&answer.response);
        down += frame.len();
        session
            .apply_response(wire::decode_response(&frame, &limits).unwrap())
            .unwrap();
    }
    (requests, up, down)
}

fn record(store: &mut PhoneStore, n: u32) {
    let item = DocId::item(&fixtures::s10(n % (POINTS * ITEMS_PER_POINT)));
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
    let id = new_entry_id();
    store
        .commit(&item, InteractionKind::Attempt, |doc| {
            Ok((id.clone(), operations::record_attempt(doc, &id, &attempt)?))
        })
        .unwrap();
}

/// A phone with the round downloaded, on disk in `dir`.
fn downloaded(dir: &Path, host: &mut MemoryHost, manifest: &RoundManifest) -> PhoneStore {
    downloaded_protected(dir, host, manifest, Protection::Plain)
}

fn downloaded_protected(
    dir: &Path,
    host: &mut MemoryHost,
    manifest: &RoundManifest,
    protection: Protection,
) -> PhoneStore {
    let mut store = open_protected(dir, true, protection);
    store.set_manifest(manifest.clone()).unwrap();
    sync(&mut store, host, &sender(manifest));
    store
}

fn print_figures() {
    let (mut host, manifest) = town();
    let sender = sender(&manifest);
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), false);
    store.set_manifest(manifest.clone()).unwrap();
    let (requests, up, down) = sync(&mut store, &mut host, &sender);
    eprintln!(
        "first download of {} documents: {requests} requests, {up} B up, {down} B down ({:.1} KB)",
        store.document_ids().count(),
        down as f64 / 1000.0
    );
    for n in 0..ATTEMPTS {
        record(&mut store, n * 2);
    }
    let (requests, up, down) = sync(&mut store, &mut host, &sender);
    eprintln!(
        "end-of-round sync of {ATTEMPTS} attempts over {} documents: {requests} requests, {up} B up ({:.0} B per interaction), {down} B down",
        store.document_ids().count(),
        up as f64 / f64::from(ATTEMPTS)
    );
    let item = DocId::item(&fixtures::s10(0));
    let doc = store.document(&item).unwrap();
    let change = doc.get_changes(&[]).last().unwrap().raw_bytes().len();
    eprintln!("one attempt's Automerge change: {change} B uncompressed");
}

fn benches(c: &mut Criterion) {
    print_figures();
    let (host, manifest) = town();

    let mut group = c.benchmark_group("phone");
    group.measurement_time(Duration::from_secs(5));
    // A downloaded round, copied afresh every 300 recordings so each attempt lands on an item
    // as it is on a real round (no earlier attempt), not on one grown by thousands of runs.
    // One template per protection, downloaded once: copying it is cheap enough that criterion,
    // which sizes its samples on wall time, gives each sample many recordings.
    let templates = PROTECTIONS.map(|protection| {
        let template = tempfile::tempdir().unwrap();
        drop(downloaded_protected(
            template.path(),
            &mut host_clone(&host, &manifest),
            &manifest,
            protection,
        ));
        (protection, template)
    });
    let protected = [false, true]
        .into_iter()
        .flat_map(|fsync| templates.iter().map(move |(p, t)| (fsync, *p, t.path())));
    for (fsync, protection, template) in protected {
        let name = format!(
            "record_attempt ({}, {})",
            if fsync { "fsync" } else { "no fsync" },
            protection.label()
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let dir = tempfile::tempdir().unwrap();
                    copy_store(template, dir.path());
                    let mut store = open_protected(dir.path(), fsync, protection);
                    for n in 0..(POINTS * ITEMS_PER_POINT).min((iters - done) as u32) {
                        let start = std::time::Instant::now();
                        record(&mut store, n);
                        total += start.elapsed();
                        done += 1;
                    }
                }
                total
            })
        });
    }

    for protection in PROTECTIONS {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = downloaded_protected(
                dir.path(),
                &mut host_clone(&host, &manifest),
                &manifest,
                protection,
            );
            for n in 0..ATTEMPTS {
                record(&mut store, n * 2);
            }
        }
        let label = protection.label();
        group.bench_function(format!("open 450-document store ({label})"), |b| {
            b.iter(|| open_protected(dir.path(), true, protection))
        });
        group.bench_function(
            format!("open 450-document store and load every document ({label})"),
            |b| {
                b.iter(|| {
                    let mut store = open_protected(dir.path(), true, protection);
                    let ids: Vec<DocId> = store.document_ids().cloned().collect();
                    for id in &ids {
                        store.document(id).unwrap();
                    }
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("sync");
    group.sample_size(10);
    group.bench_function("first download of a 450-document round", |b| {
        b.iter_batched(
            || (host_clone(&host, &manifest), tempfile::tempdir().unwrap()),
            |(mut host, dir)| {
                let mut store = open(dir.path(), true);
                store.set_manifest(manifest.clone()).unwrap();
                sync(&mut store, &mut host, &sender(&manifest))
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("end-of-round sync, 150 attempts over 450 documents", |b| {
        b.iter_batched(
            || {
                let mut host = host_clone(&host, &manifest);
                let dir = tempfile::tempdir().unwrap();
                let mut store = downloaded(dir.path(), &mut host, &manifest);
                for n in 0..ATTEMPTS {
                    record(&mut store, n * 2);
                }
                (host, store, dir)
            },
            |(mut host, mut store, _dir)| sync(&mut store, &mut host, &sender(&manifest)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Copies a store's files (its folder and `docs/`) into an empty folder.
fn copy_store(from: &Path, to: &Path) {
    for folder in [Path::new(""), Path::new("docs")] {
        std::fs::create_dir_all(to.join(folder)).unwrap();
        for entry in std::fs::read_dir(from.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, to.join(folder).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// A fresh server with the same documents (MemoryHost is not Clone on purpose: one owner).
fn host_clone(_host: &MemoryHost, _manifest: &RoundManifest) -> MemoryHost {
    town().0
}

/// Signing one change (the phone, with a software key) and checking one signature (the
/// server's validator, per pushed change): `cargo bench -p tournee-sync-core --bench round --
/// 'signature'`.
fn signatures(c: &mut Criterion) {
    let key = SoftwareKey::generate();
    let doc = tournee_sync_core::DocId::item(&fixtures::s10(1));
    let hash = tournee_sync_core::automerge::ChangeHash([7; 32]);
    let signer = tournee_sync_core::signing::Signer::Device {
        device: "dev-1".into(),
    };
    c.bench_function("signature: sign one change", |b| {
        b.iter(|| key.sign_change(&doc, &hash, signer.clone()))
    });
    let signature: ChangeSignature = key.sign_change(&doc, &hash, signer.clone());
    let mut keyring = Keyring::default();
    keyring.devices.insert(
        "dev-1".into(),
        tournee_sync_core::signing::DeviceKey {
            author: Sender {
                role: tournee_sync_core::validator::Role::Postman,
                principal: "pm-1".into(),
                device: Some("dev-1".into()),
                scope: tournee_sync_core::validator::Scope::All,
            },
            key: Some(key.public_key()),
            revoked: false,
        },
    );
    c.bench_function("signature: verify one change (server)", |b| {
        b.iter(|| keyring.author(&doc, &hash, &signature).unwrap())
    });
}

criterion_group!(round, benches, signatures);
criterion_main!(round);
