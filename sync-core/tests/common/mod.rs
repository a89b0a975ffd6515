//! Shared setup for the integration tests: a small town on an in-memory server, and phones.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;

use tournee_sync_core::fixtures;
use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::store::{DeviceIdentity, PhoneStore, StoreOptions, StoreRole};
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::{MemoryHost, SyncReport, SyncSession};
use tournee_sync_core::validator::{Role, Scope, Sender};

/// A server holding `points` delivery points with `items_per_point` items each, and the round
/// that visits them all.
pub fn town(points: u32, items_per_point: u32) -> (MemoryHost, RoundManifest) {
    fixtures::town(points, items_per_point).unwrap()
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
        let answer = host.respond(request, sender, &limits);
        let frame = wire::encode_response(&answer.response);
        down += frame.len();
        session
            .apply_response(wire::decode_response(&frame, &limits).unwrap())
            .unwrap();
    }
    (session.finish(), up, down)
}
