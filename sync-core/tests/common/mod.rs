//! Shared setup for the integration tests: a small town on an in-memory server, and phones.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;

use tournee_sync_core::fixtures;
use tournee_sync_core::model::{RoundManifest, Stop};
use tournee_sync_core::store::{DeviceIdentity, PhoneStore, StoreOptions, StoreRole};
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::{respond, MemoryHost, SyncReport, SyncSession};
use tournee_sync_core::validator::{Role, Scope, Sender};
use tournee_sync_core::DocId;

/// A server holding `points` delivery points with `items_per_point` items each, and the round
/// that visits them all.
pub fn town(points: u32, items_per_point: u32) -> (MemoryHost, RoundManifest) {
    let mut host = MemoryHost::new();
    let mut stops = Vec::new();
    for p in 0..points {
        host.insert(
            DocId::delivery_point(&fixtures::delivery_point_id(p)).unwrap(),
            fixtures::delivery_point_doc(p).unwrap(),
        );
        let mut items = Vec::new();
        for i in 0..items_per_point {
            let n = p * items_per_point + i;
            host.insert(
                DocId::item(&fixtures::s10(n)),
                fixtures::item_doc(n, p).unwrap(),
            );
            items.push(fixtures::s10(n).to_string());
        }
        stops.push(Stop {
            order: p + 1,
            delivery_point: fixtures::delivery_point_id(p),
            items,
        });
    }
    let manifest = RoundManifest {
        round_id: "round-11-a".into(),
        date: "2026-11-23".into(),
        postman: "pm-1".into(),
        device: "dev-1".into(),
        stops,
    };
    (host, manifest)
}

/// A postman's phone store holding `manifest`, not synced yet.
pub fn phone(dir: &Path, device: &str, postman: &str, manifest: &RoundManifest) -> PhoneStore {
    let identity = DeviceIdentity {
        device: device.into(),
        principal: postman.into(),
        role: StoreRole::Postman,
    };
    let mut store = PhoneStore::open(dir, identity, StoreOptions { fsync: false }).unwrap();
    store.set_manifest(manifest.clone()).unwrap();
    store
}

/// The sender the server derives from a postman's token for this manifest.
pub fn postman_sender(device: &str, postman: &str, manifest: &RoundManifest) -> Sender {
    Sender {
        role: Role::Postman,
        principal: postman.into(),
        device: Some(device.into()),
        scope: Scope::Documents(
            manifest
                .documents()
                .unwrap()
                .into_iter()
                .collect::<HashSet<_>>(),
        ),
    }
}

/// Runs a whole session through the wire format; returns the report and bytes (up, down).
pub fn sync(
    store: &mut PhoneStore,
    host: &mut MemoryHost,
    sender: &Sender,
) -> (SyncReport, usize, usize) {
    let limits = Limits::default();
    let mut session = SyncSession::new(store, limits);
    let (mut up, mut down) = (0, 0);
    while let Some(request) = session.next_request().unwrap() {
        let frame = wire::encode_request(&request);
        up += frame.len();
        let request = wire::decode_request(&frame, &limits).unwrap();
        let answer = respond(host, request, sender, &limits).unwrap();
        let frame = wire::encode_response(&answer.response);
        down += frame.len();
        session
            .apply_response(wire::decode_response(&frame, &limits).unwrap())
            .unwrap();
    }
    (session.finish(), up, down)
}
