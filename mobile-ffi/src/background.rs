//! The background sync: one call that an app makes from its background worker (WorkManager,
//! BGTaskScheduler) to sync the store and upload the proofs that became ready, over the HTTP
//! stack the app provides as a [`SyncTransport`].
//!
//! The helper runs its own sync exchange (not the one `FieldStore.syncRequest` drives), so
//! stopping it anywhere (a cancelled coroutine or task, the policy's deadline, an error) leaves
//! no half-done exchange on the store: what was applied stays, and the next sync, by the
//! helper or the app's own loop, carries on from there. A request that failed on the way is
//! sent again as it was; the server stores what it had already received only once.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use tournee_sync_core::store::{ProofAnswer, ProofState};
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::SyncExchange;

use crate::asynchronous::off_the_callers_thread;
use crate::error::TourneeError;
pub use crate::retry::{default_retry_policy, RetryPolicy};
use crate::retry::{retry_after, Verdict};
use crate::screens::SyncProgress;
use crate::store::FieldStore;

/// The path of the sync route under the server's base URL.
const SYNC_PATH: &str = "/v1/sync";

/// A request for the app's transport to send to the server.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HttpRequest {
    /// The HTTP method: `POST` for the sync, `PUT` for a proof.
    pub method: String,
    /// The path to append to the server's base URL, e.g. `/v1/sync`.
    pub path: String,
    /// The value of the `Content-Type` header.
    pub content_type: String,
    /// The body, as bytes.
    pub body: Vec<u8>,
}

/// The server's answer, as the app's transport received it, whatever its status.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HttpAnswer {
    /// The HTTP status, e.g. 200, 401 or 503.
    pub status: u16,
    /// The body, as bytes.
    pub body: Vec<u8>,
    /// The `Retry-After` header as the server sent it (seconds, or an HTTP date), or null
    /// (nil) when it sent none.
    pub retry_after: Option<String>,
}

/// Why the app's transport got no answer at all.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    /// No network, a failed name lookup, a refused or broken connection, a timeout: the
    /// request is tried again as the retry policy allows. Any other exception thrown by
    /// `send` counts as this too.
    #[error("network: {reason}")]
    Network {
        /// What the HTTP stack said.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Network { reason: e.reason }
    }
}

/// Implemented by the app with its own HTTP stack (OkHttp, Ktor, URLSession…): sends one
/// request to the server's base URL with the device's bearer token and returns the answer,
/// whatever its status. Throw (any exception) only when no answer came. Called one request at
/// a time; in Kotlin it runs in a coroutine of its own (do blocking I/O in
/// `withContext(Dispatchers.IO)`), in Swift in a task of its own. That coroutine or task is
/// cancelled when the sync stops (cancelled by the app, or its deadline passed).
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait SyncTransport: Send + Sync {
    /// Sends `request` and returns the server's answer.
    async fn send(&self, request: HttpRequest) -> Result<HttpAnswer, TransportError>;
}

/// A proof the background sync uploaded, with what the server's answer meant for it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct UploadedProof {
    /// The proof's SHA-256, as the attempt names it.
    pub sha256: String,
    /// `Stored` or `Expired`: it left the queue; `Refused`: set aside for good; `RetryLater`:
    /// it stays for the next sync.
    pub answer: ProofAnswer,
}

/// What a background sync did.
#[derive(Debug, uniffi::Record)]
pub struct SyncSummary {
    /// What the whole sync changed, as `applySyncAnswer` reports each answer (the observer was
    /// told answer by answer).
    pub progress: SyncProgress,
    /// Requests sent to the server, tries that failed included.
    pub requests: u32,
    /// Tries that failed and were made again (no answer, HTTP 5xx, 408, 429).
    pub retries: u32,
    /// The proofs uploaded after the sync, in the order sent.
    pub proofs: Vec<UploadedProof>,
}

#[uniffi::export]
impl FieldStore {
    /// Syncs the store with the server through the app's `transport`, then uploads every
    /// proof that became ready, in one call for a background worker: requests that may
    /// succeed later (no answer, HTTP 5xx, 408, 429) are sent again as `policy` allows, never
    /// sooner than the server's Retry-After. The observer hears of each applied answer, as
    /// with `applySyncAnswer`. Blocks until done: call it on a worker thread
    /// (`AsyncFieldStore.syncWith` is the suspending/async one).
    ///
    /// Fails with `NotAuthorized` at once on HTTP 401/403, `Refused` at once on another 4xx,
    /// `Unavailable` when the tries or the deadline run out. Whatever stops it, what was
    /// applied stays and the next sync carries on.
    pub fn sync_with(
        self: Arc<Self>,
        transport: Arc<dyn SyncTransport>,
        policy: RetryPolicy,
    ) -> Result<SyncSummary, TourneeError> {
        futures_lite::future::block_on(sync_with(self, transport, policy))
    }
}

/// The background sync, for both the blocking and the async call.
pub(crate) async fn sync_with(
    store: Arc<FieldStore>,
    transport: Arc<dyn SyncTransport>,
    policy: RetryPolicy,
) -> Result<SyncSummary, TourneeError> {
    policy.check()?;
    let mut run = Run {
        store,
        transport,
        policy,
        requests: 0,
        retries: 0,
    };
    let progress = run.sync().await?;
    let proofs = run.upload_ready_proofs().await?;
    Ok(SyncSummary {
        progress,
        requests: run.requests,
        retries: run.retries,
        proofs,
    })
}

/// One background sync in progress.
struct Run {
    store: Arc<FieldStore>,
    transport: Arc<dyn SyncTransport>,
    policy: RetryPolicy,
    requests: u32,
    retries: u32,
}

impl Run {
    /// The request/answer loop, until the exchange is complete.
    async fn sync(&mut self) -> Result<SyncProgress, TourneeError> {
        let mut exchange = SyncExchange::new(Limits::default());
        loop {
            self.before_the_deadline_passed()?;
            let (back, next) = off_the_callers_thread(&self.store, move |store| {
                let next = store
                    .lock()
                    .and_then(|mut inner| inner.next_request(&mut exchange));
                Ok((exchange, next))
            })
            .await?;
            exchange = back;
            let Some(body) = next? else {
                return Ok(SyncProgress::from(exchange.finish()));
            };
            let request = HttpRequest {
                method: "POST".into(),
                path: SYNC_PATH.into(),
                content_type: wire::MEDIA_TYPE.into(),
                body,
            };
            let answer = self.send(request).await?;
            if Verdict::of(answer.status) != Verdict::Answer {
                return Err(refused(SYNC_PATH, &answer));
            }
            exchange = off_the_callers_thread(&self.store, move |store| {
                let progress = store
                    .lock()
                    .and_then(|mut inner| inner.apply_answer(&mut exchange, &answer.body))?;
                store.notify(&progress);
                Ok(exchange)
            })
            .await?;
        }
    }

    /// Uploads each proof whose attempt the server acknowledged; the store reads each answer.
    async fn upload_ready_proofs(&mut self) -> Result<Vec<UploadedProof>, TourneeError> {
        let queued = off_the_callers_thread(&self.store, FieldStore::queued_proofs).await?;
        let mut uploaded = Vec::new();
        for sha256 in queued
            .into_iter()
            .filter(|q| q.state == ProofState::Ready)
            .map(|q| q.proof.sha256)
        {
            self.before_the_deadline_passed()?;
            let upload = off_the_callers_thread(&self.store, {
                let sha256 = sha256.clone();
                move |store| store.proof_upload(sha256)
            })
            .await?;
            let request = HttpRequest {
                method: upload.method,
                path: upload.path,
                content_type: upload.content_type,
                body: upload.body,
            };
            let answer = self.send(request).await?;
            let answer = off_the_callers_thread(&self.store, {
                let sha256 = sha256.clone();
                move |store| store.apply_proof_answer(sha256, answer.status, answer.body)
            })
            .await?;
            uploaded.push(UploadedProof { sha256, answer });
        }
        Ok(uploaded)
    }

    /// Sends `request` until it gets an answer that is not worth trying again, or the policy
    /// runs out: that answer (success or refusal), or the error to stop with.
    async fn send(&mut self, request: HttpRequest) -> Result<HttpAnswer, TourneeError> {
        let mut failed = 0;
        loop {
            self.requests = self.requests.saturating_add(1);
            let sent = self
                .before_the_deadline(self.transport.send(request.clone()))
                .await?;
            let (reason, asked) = match sent {
                Err(TransportError::Network { reason }) => (format!("no answer: {reason}"), None),
                Ok(answer) => match Verdict::of(answer.status) {
                    Verdict::Answer | Verdict::Refused => return Ok(answer),
                    Verdict::NotAuthorized => {
                        return Err(TourneeError::NotAuthorized {
                            status: answer.status,
                            reason: server_says(&request.path, &answer),
                        })
                    }
                    Verdict::TryAgain => (
                        server_says(&request.path, &answer),
                        retry_after(answer.retry_after.as_deref(), SystemTime::now()),
                    ),
                },
            };
            failed += 1;
            if failed >= self.policy.max_attempts {
                return Err(TourneeError::Unavailable {
                    reason: format!("{} tries, the last one: {reason}", failed),
                    retry_at: asked,
                });
            }
            let backoff = self.policy.backoff(failed);
            let wait = asked
                .and_then(|at| at.duration_since(SystemTime::now()).ok())
                .map_or(backoff, |asked| asked.max(backoff));
            if self.policy.time_left().is_some_and(|left| left < wait) {
                return Err(TourneeError::Unavailable {
                    reason: format!(
                        "the next try would come after the deadline; the last one: {reason}"
                    ),
                    retry_at: asked,
                });
            }
            self.retries = self.retries.saturating_add(1);
            tracing::info!(path = %request.path, %reason, ?wait, "background sync: trying again");
            futures_timer::Delay::new(wait).await;
        }
    }

    /// Stops the sync between two steps once the policy's deadline passed.
    fn before_the_deadline_passed(&self) -> Result<(), TourneeError> {
        match self.policy.time_left() {
            Some(left) if left.is_zero() => Err(TourneeError::Unavailable {
                reason: "the deadline passed before the sync was complete".into(),
                retry_at: None,
            }),
            _ => Ok(()),
        }
    }

    /// Awaits `call` unless the policy's deadline comes first; then `call` is dropped, which
    /// cancels the app's coroutine or task behind it.
    async fn before_the_deadline<T>(
        &self,
        call: impl Future<Output = T>,
    ) -> Result<T, TourneeError> {
        let Some(left) = self.policy.time_left() else {
            return Ok(call.await);
        };
        let expired = TourneeError::Unavailable {
            reason: "the deadline passed while waiting for the server".into(),
            retry_at: None,
        };
        if left.is_zero() {
            return Err(expired);
        }
        futures_lite::future::or(async { Ok(call.await) }, async {
            futures_timer::Delay::new(left).await;
            Err(expired)
        })
        .await
    }
}

/// The error for an answer that cannot be used and is not worth trying again.
fn refused(path: &str, answer: &HttpAnswer) -> TourneeError {
    TourneeError::Refused {
        status: answer.status,
        reason: server_says(path, answer),
    }
}

/// The server's own words about a failed request: the `message` of its JSON error body, or
/// the start of the body as text.
fn server_says(path: &str, answer: &HttpAnswer) -> String {
    const SHOWN: usize = 200;
    let message = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|body| body.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&answer.body)
                .chars()
                .take(SHOWN)
                .collect()
        });
    format!("{path} answered HTTP {}: {message}", answer.status)
        .trim_end_matches([' ', ':'])
        .to_string()
}
