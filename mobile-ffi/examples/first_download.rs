//! The first download of a 450-document round (150 delivery points, 300 items) through the
//! background sync helper, blocking and async, with fsync as on a phone: how long it takes,
//! and how long the caller's thread is kept from other work. The server is sync-core's
//! `MemoryHost` answering on a thread of its own, as the network would.
//!
//! `cargo run --release -p tournee-mobile-ffi --example first_download`

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future;
use tournee_mobile_ffi::background::{
    HttpAnswer, HttpRequest, RetryPolicy, SyncTransport, TransportError,
};
use tournee_mobile_ffi::{AsyncFieldStore, FieldStore};
use tournee_sync_core::fixtures;
use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::store::StoreRole;
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::MemoryHost;
use tournee_sync_core::validator::{Role, Scope, Sender};

const RUNS: usize = 5;

struct Server {
    host: Arc<Mutex<MemoryHost>>,
    sender: Sender,
}

#[async_trait::async_trait]
impl SyncTransport for Server {
    async fn send(&self, request: HttpRequest) -> Result<HttpAnswer, TransportError> {
        let (host, sender) = (Arc::clone(&self.host), self.sender.clone());
        let body = blocking::unblock(move || {
            let limits = Limits::default();
            let decoded = wire::decode_request(&request.body, &limits).unwrap();
            let answer = host.lock().unwrap().respond(decoded, &sender, &limits);
            wire::encode_response(&answer.response)
        })
        .await;
        Ok(HttpAnswer {
            status: 200,
            body,
            retry_after: None,
        })
    }
}

fn server(manifest: &RoundManifest, host: &MemoryHost) -> Arc<Server> {
    Arc::new(Server {
        host: Arc::new(Mutex::new(host.clone())),
        sender: Sender {
            role: Role::Postman,
            principal: "pm-1".into(),
            device: Some("dev-1".into()),
            scope: Scope::Documents(manifest.documents().unwrap().into_iter().collect()),
        },
    })
}

fn fresh_store(dir: &std::path::Path, manifest: &RoundManifest) -> Arc<FieldStore> {
    let store = FieldStore::open(
        dir.display().to_string(),
        "dev-1".into(),
        "pm-1".into(),
        StoreRole::Postman,
        None,
    )
    .unwrap();
    store
        .load_round(serde_json::to_string(manifest).unwrap())
        .unwrap();
    store
}

fn policy() -> RetryPolicy {
    tournee_mobile_ffi::background::default_retry_policy()
}

fn main() {
    let (host, manifest) = fixtures::town(150, 2).unwrap();
    let (mut blocking_ms, mut async_ms, mut stalls_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh_store(&dir.path().join("blocking"), &manifest);
        let start = Instant::now();
        let summary = store.sync_with(server(&manifest, &host), policy()).unwrap();
        blocking_ms.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(summary.progress.changed_documents.len(), 450);

        // The async call on a one-thread executor that also runs a 1 ms ticker: the longest
        // gap between two ticks is how long the caller's thread was kept from its own work.
        let store = AsyncFieldStore::new(fresh_store(&dir.path().join("async"), &manifest));
        let done = std::sync::atomic::AtomicBool::new(false);
        let start = Instant::now();
        let (summary, stall) = future::block_on(future::zip(
            async {
                let summary = store.sync_with(server(&manifest, &host), policy()).await;
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                summary
            },
            async {
                let mut longest = Duration::ZERO;
                let mut last = Instant::now();
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    futures_timer::Delay::new(Duration::from_millis(1)).await;
                    longest = longest.max(last.elapsed());
                    last = Instant::now();
                }
                longest
            },
        ));
        async_ms.push(start.elapsed().as_secs_f64() * 1e3);
        stalls_ms.push(stall.as_secs_f64() * 1e3);
        assert_eq!(summary.unwrap().progress.changed_documents.len(), 450);
    }
    // The same ticker with nothing else to do, for a second: the machine's own scheduling noise.
    let idle = future::block_on(async {
        let (mut longest, mut last, start) = (Duration::ZERO, Instant::now(), Instant::now());
        while start.elapsed() < Duration::from_secs(1) {
            futures_timer::Delay::new(Duration::from_millis(1)).await;
            longest = longest.max(last.elapsed());
            last = Instant::now();
        }
        longest
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "first download of a 450-document round, fsync on, median of {RUNS}: blocking syncWith \
         {:.0} ms (the caller's thread blocked throughout); async syncWith {:.0} ms, the caller's \
         thread's longest gap between 1 ms ticks {:.1} ms (idle, the same ticker's: {:.1} ms)",
        median(&mut blocking_ms),
        median(&mut async_ms),
        median(&mut stalls_ms),
        idle.as_secs_f64() * 1e3
    );
}
