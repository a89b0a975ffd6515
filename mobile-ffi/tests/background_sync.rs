//! The background sync helper against a server in memory (sync-core's `MemoryHost`) behind a
//! transport that fails as networks and servers do: it outlasts what may succeed later (no
//! answer, an answer lost after the server stored the request, 503 and 429 with Retry-After),
//! waits at least as long as the server asks, stops at once on 401 and other refusals, and a
//! sync stopped anywhere (cancelled, deadline) leaves the store able to sync again.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_lite::future;
use tournee_mobile_ffi::background::{
    HttpAnswer, HttpRequest, RetryPolicy, SyncTransport, TransportError,
};
use tournee_mobile_ffi::screens::{AttemptInput, PendingInteraction};
use tournee_mobile_ffi::{AsyncFieldStore, SyncObserver, TourneeError};
use tournee_sync_core::fixtures;
use tournee_sync_core::model::{ProofKind, RoundManifest};
use tournee_sync_core::store::{ProofAnswer, StoreRole};
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::MemoryHost;
use tournee_sync_core::validator::{Role, Scope, Sender};

/// What the transport does with the next request instead of (or after) delivering it.
enum Fault {
    /// No answer at all: the server never sees the request.
    NoAnswer,
    /// The server stores the request, then the connection breaks before the answer arrives.
    AnswerLost,
    /// The server (or a proxy) answers this status, with this Retry-After.
    Status(u16, Option<&'static str>),
    /// The request never ends (a dead connection without a timeout).
    Hangs,
}

/// A server in memory behind a scripted network.
struct FlakyServer {
    host: Mutex<MemoryHost>,
    sender: Sender,
    faults: Mutex<VecDeque<Fault>>,
    /// Each request's path, and when it was sent.
    sent: Mutex<Vec<(String, Instant)>>,
    /// The proofs stored, by hash, as often as each was stored.
    proofs: Mutex<Vec<String>>,
    hanging: AtomicBool,
}

impl FlakyServer {
    fn new(host: MemoryHost, manifest: &RoundManifest) -> Arc<Self> {
        Arc::new(Self {
            host: Mutex::new(host),
            sender: Sender {
                role: Role::Postman,
                principal: "pm-1".into(),
                device: Some("dev-1".into()),
                scope: Scope::Documents(manifest.documents().unwrap().into_iter().collect()),
            },
            faults: Mutex::new(VecDeque::new()),
            sent: Mutex::new(Vec::new()),
            proofs: Mutex::new(Vec::new()),
            hanging: AtomicBool::new(false),
        })
    }

    fn will(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    fn sent(&self) -> Vec<(String, Instant)> {
        self.sent.lock().unwrap().clone()
    }

    fn deliver(&self, request: &HttpRequest) -> HttpAnswer {
        let limits = Limits::default();
        let (status, body) = if request.path == "/v1/sync" {
            let decoded = wire::decode_request(&request.body, &limits).unwrap();
            let answer = self
                .host
                .lock()
                .unwrap()
                .respond(decoded, &self.sender, &limits);
            (200, wire::encode_response(&answer.response))
        } else if let Some(sha) = request.path.strip_prefix("/v1/proofs/") {
            assert_eq!(request.method, "PUT");
            self.proofs.lock().unwrap().push(sha.to_string());
            (201, b"{}".to_vec())
        } else {
            (
                404,
                b"{\"code\":\"not_found\",\"message\":\"no such route\"}".to_vec(),
            )
        };
        HttpAnswer {
            status,
            body,
            retry_after: None,
        }
    }
}

#[async_trait::async_trait]
impl SyncTransport for FlakyServer {
    async fn send(&self, request: HttpRequest) -> Result<HttpAnswer, TransportError> {
        self.sent
            .lock()
            .unwrap()
            .push((request.path.clone(), Instant::now()));
        let fault = self.faults.lock().unwrap().pop_front();
        match fault {
            Some(Fault::NoAnswer) => Err(TransportError::Network {
                reason: "connection refused".into(),
            }),
            Some(Fault::Status(status, retry_after)) => Ok(HttpAnswer {
                status,
                body: format!("{{\"code\":\"x\",\"message\":\"status {status}\"}}").into_bytes(),
                retry_after: retry_after.map(str::to_string),
            }),
            Some(Fault::Hangs) => {
                self.hanging.store(true, Ordering::SeqCst);
                future::pending().await
            }
            Some(Fault::AnswerLost) => {
                self.deliver(&request);
                Err(TransportError::Network {
                    reason: "connection reset by peer".into(),
                })
            }
            None => Ok(self.deliver(&request)),
        }
    }
}

#[derive(Default)]
struct Recorder {
    acknowledged: Mutex<Vec<String>>,
    changed: Mutex<Vec<String>>,
}

impl SyncObserver for Recorder {
    fn documents_changed(&self, documents: Vec<String>) -> Result<(), TourneeError> {
        self.changed.lock().unwrap().extend(documents);
        Ok(())
    }

    fn interactions_acknowledged(
        &self,
        interactions: Vec<PendingInteraction>,
    ) -> Result<(), TourneeError> {
        self.acknowledged
            .lock()
            .unwrap()
            .extend(interactions.into_iter().map(|i| i.id));
        Ok(())
    }
}

fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        deadline: None,
    }
}

/// A postman's store with a round of `points` delivery points (2 items each) loaded, and the
/// server that holds the round.
fn round(dir: &std::path::Path, points: u32) -> (Arc<AsyncFieldStore>, Arc<FlakyServer>) {
    let (host, manifest) = fixtures::town(points, 2).unwrap();
    let server = FlakyServer::new(host, &manifest);
    let store = future::block_on(AsyncFieldStore::open(
        dir.display().to_string(),
        "dev-1".into(),
        "pm-1".into(),
        StoreRole::Postman,
        Some(vec![7; 32]),
    ))
    .unwrap();
    future::block_on(store.load_round(serde_json::to_string(&manifest).unwrap())).unwrap();
    (store, server)
}

fn absent(n: u32) -> AttemptInput {
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
    AttemptInput {
        outcome: attempt.outcome,
        recorded_at: std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(attempt.recorded_at_ms).unwrap()),
        position: attempt.position,
        notice: attempt.notice.map(Into::into),
        proofs: Vec::new(),
    }
}

fn sync(
    store: &AsyncFieldStore,
    server: &Arc<FlakyServer>,
    policy: RetryPolicy,
) -> Result<tournee_mobile_ffi::background::SyncSummary, TourneeError> {
    future::block_on(store.sync_with(server.clone(), policy))
}

#[test]
fn a_background_sync_outlasts_failures_and_the_server_gets_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, server) = round(dir.path(), 6);
    let observer = Arc::new(Recorder::default());
    store
        .blocking()
        .set_observer(Some(observer.clone()))
        .unwrap();

    // The first download, through a network that refuses twice.
    server.will([Fault::NoAnswer, Fault::Status(502, None)]);
    let first = sync(&store, &server, quick(5)).unwrap();
    assert_eq!(first.retries, 2);
    assert_eq!(first.requests as usize, server.sent().len());
    assert_eq!(
        first.progress.changed_documents.len(),
        18,
        "6 points and 12 items"
    );
    assert_eq!(
        observer.changed.lock().unwrap().len(),
        18,
        "told answer by answer"
    );

    // Two attempts, one with a photo; the sync's first answer is lost after the server stored
    // the request, then the server is unavailable (its Retry-After an HTTP date in the past:
    // no wait beyond the backoff). The photo goes up once its attempt is acknowledged.
    let photo = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7; 3000]].concat();
    let proof = future::block_on(store.queue_proof(ProofKind::Photo, photo)).unwrap();
    let mut with_photo = absent(0);
    with_photo.proofs = vec![proof.clone()];
    let items = [fixtures::s10(0).to_string(), fixtures::s10(1).to_string()];
    let recorded: HashSet<String> = [
        future::block_on(store.record_attempt(items[0].clone(), with_photo))
            .unwrap()
            .id,
        future::block_on(store.record_attempt(items[1].clone(), absent(1)))
            .unwrap()
            .id,
    ]
    .into();
    let before = server.sent().len();
    server.will([
        Fault::AnswerLost,
        Fault::Status(503, Some("Thu, 01 Jan 2026 00:00:00 GMT")),
    ]);
    let second = sync(&store, &server, quick(5)).unwrap();
    assert_eq!(second.retries, 2);
    let acknowledged: HashSet<String> = second
        .progress
        .acknowledged
        .iter()
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(acknowledged, recorded);
    let told: Vec<String> = observer.acknowledged.lock().unwrap().clone();
    assert_eq!(told.len(), 2, "each acknowledgement told once: {told:?}");
    assert!(future::block_on(store.pending_interactions())
        .unwrap()
        .is_empty());
    assert_eq!(second.proofs.len(), 1);
    assert_eq!(second.proofs[0].sha256, proof.sha256);
    assert_eq!(second.proofs[0].answer, ProofAnswer::Stored);
    assert_eq!(*server.proofs.lock().unwrap(), vec![proof.sha256.clone()]);
    assert!(future::block_on(store.queued_proofs()).unwrap().is_empty());
    let sync_sent = server.sent()[before..]
        .iter()
        .filter(|(path, _)| path == "/v1/sync")
        .count();
    assert!(
        sync_sent >= 3,
        "the lost request and the 503 were sent again"
    );
}

#[test]
fn a_refused_token_stops_the_sync_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, server) = round(dir.path(), 2);
    server.will([Fault::Status(401, None)]);
    let error = sync(&store, &server, quick(5)).unwrap_err();
    assert!(
        matches!(&error, TourneeError::NotAuthorized { status: 401, reason } if reason.contains("status 401")),
        "{error:?}"
    );
    assert_eq!(server.sent().len(), 1, "never tried again");

    server.will([Fault::Status(404, None)]);
    let error = sync(&store, &server, quick(5)).unwrap_err();
    assert!(
        matches!(error, TourneeError::Refused { status: 404, .. }),
        "{error:?}"
    );
    assert_eq!(server.sent().len(), 2);

    // Nothing was applied, and nothing is left half done: the next sync downloads the round.
    let summary = sync(&store, &server, quick(5)).unwrap();
    assert_eq!(summary.progress.changed_documents.len(), 6);
}

#[test]
fn the_retry_after_of_the_server_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let (store, server) = round(dir.path(), 2);
    server.will([Fault::Status(429, Some("1"))]);
    let summary = sync(&store, &server, quick(5)).unwrap();
    assert_eq!(summary.retries, 1);
    let sent = server.sent();
    let waited = sent[1].1 - sent[0].1;
    assert!(
        waited >= Duration::from_secs(1),
        "the server asked for a second, the retry came after {waited:?}"
    );
}

#[test]
fn failures_that_outlast_the_tries_or_the_deadline_are_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let (store, server) = round(dir.path(), 2);
    server.will((0..3).map(|_| Fault::Status(503, None)));
    let error = sync(&store, &server, quick(3)).unwrap_err();
    assert!(
        matches!(&error, TourneeError::Unavailable { reason, retry_at: None } if reason.starts_with("3 tries")),
        "{error:?}"
    );
    assert_eq!(server.sent().len(), 3);

    // A Retry-After beyond the deadline: given up at once, saying when to come back.
    server.will([Fault::Status(503, Some("3600"))]);
    let mut policy = quick(5);
    policy.deadline = Some(SystemTime::now() + Duration::from_secs(60));
    let error = sync(&store, &server, policy.clone()).unwrap_err();
    assert!(
        matches!(&error, TourneeError::Unavailable { retry_at: Some(at), .. } if *at > SystemTime::now() + Duration::from_secs(3000)),
        "{error:?}"
    );
    assert_eq!(server.sent().len(), 4);

    // A request that never ends: the deadline cancels it.
    server.will([Fault::Hangs]);
    policy.deadline = Some(SystemTime::now() + Duration::from_millis(300));
    let error = sync(&store, &server, policy).unwrap_err();
    assert!(
        matches!(&error, TourneeError::Unavailable { reason, .. } if reason.contains("deadline")),
        "{error:?}"
    );

    // A deadline already past: nothing is sent.
    let sent = server.sent().len();
    let mut late = quick(5);
    late.deadline = Some(SystemTime::now() - Duration::from_secs(1));
    let error = sync(&store, &server, late).unwrap_err();
    assert!(
        matches!(&error, TourneeError::Unavailable { reason, .. } if reason.contains("deadline passed before")),
        "{error:?}"
    );
    assert_eq!(server.sent().len(), sent);

    let summary = sync(&store, &server, quick(5)).unwrap();
    assert_eq!(summary.progress.changed_documents.len(), 6);
}

#[test]
fn a_cancelled_sync_leaves_the_store_ready_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (store, server) = round(dir.path(), 4);
    sync(&store, &server, quick(5)).unwrap();
    let attempt =
        future::block_on(store.record_attempt(fixtures::s10(3).to_string(), absent(3))).unwrap();

    // The push hangs; the app cancels the work (here: drops the future) once it is in flight.
    server.will([Fault::Hangs]);
    let cancelled = future::block_on(future::or(
        async {
            store.sync_with(server.clone(), quick(5)).await.unwrap();
            false
        },
        async {
            while !server.hanging.load(Ordering::SeqCst) {
                futures_timer::Delay::new(Duration::from_millis(5)).await;
            }
            true
        },
    ));
    assert!(cancelled);
    assert_eq!(
        future::block_on(store.pending_interactions()).unwrap()[0].id,
        attempt.id
    );

    // Both kinds of sync carry on: the app's own loop finds no half-done exchange...
    let blocking = store.blocking();
    let body = blocking
        .sync_request()
        .unwrap()
        .expect("the push is still to send");
    drop(body);
    blocking.abandon_sync().unwrap();
    // ...and the helper pushes the attempt.
    let summary = sync(&store, &server, quick(5)).unwrap();
    assert_eq!(summary.progress.acknowledged.len(), 1);
    assert_eq!(summary.progress.acknowledged[0].id, attempt.id);
    assert!(future::block_on(store.pending_interactions())
        .unwrap()
        .is_empty());
}

#[test]
fn the_blocking_twin_does_the_same_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (store, server) = round(dir.path(), 3);
    server.will([Fault::NoAnswer]);
    let summary = store
        .blocking()
        .sync_with(server.clone(), quick(5))
        .unwrap();
    assert_eq!(summary.retries, 1);
    assert_eq!(summary.progress.changed_documents.len(), 9);
    assert_eq!(future::block_on(store.stops()).unwrap().len(), 3);
}
