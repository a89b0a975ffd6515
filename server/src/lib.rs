//! The Tournée server: phones sync with it, it refuses what a sender may not write, and it
//! reconciles what it accepts into the central customer profile.
//!
//! [`launch_with_tcp_listener`] runs it on a listener the caller chose (port 0 in tests);
//! [`router`] has every route.

pub mod access;
pub mod auth;
pub mod backoffice;
pub mod backoffice_api;
pub mod clock;
pub mod compaction;
pub mod customer_api;
pub mod db;
pub mod demo;
pub mod documents;
pub mod error;
pub mod events;
pub mod feed_api;
pub mod group_commit;
pub mod import;
pub mod import_api;
pub mod item_view;
pub mod json_body;
pub mod keys_api;
pub mod metrics;
pub mod params;
pub mod proofs;
pub mod proofs_api;
pub mod public_api;
pub mod reconcile;
pub mod request_log;
pub mod retention;
pub mod review;
pub mod routes;
pub mod scope;
pub mod settings;
pub mod signing;
pub mod sync_api;
pub mod telemetry;
pub mod uploads;
pub mod web;
pub mod webhooks;
pub mod webhooks_api;
pub mod words;
pub mod write;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tournee_sync_core::sync::wire::Limits;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::access::RateLimits;
use crate::auth::Keys;
use crate::clock::Clock;
use crate::db::Database;
use crate::documents::DocumentCache;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::settings::{GuardSettings, Settings, WebhookSettings};
use crate::uploads::UploadBudget;

/// What every request handler shares.
pub struct AppState {
    /// The central store.
    pub db: Database,
    /// Token verification.
    pub keys: Keys,
    /// Materialised documents.
    pub docs: DocumentCache,
    /// Turns for syncs to prepare, validate and commit (`--sync-concurrency`).
    pub syncs: tokio::sync::Semaphore,
    /// This instance's committer: writes that wait together commit together.
    pub commits: group_commit::GroupCommit,
    /// Counters.
    pub metrics: Metrics,
    /// Sync size limits.
    pub limits: Limits,
    /// Reconciliation's distance threshold.
    pub far_attempt_metres: f64,
    /// Days an item waits at the office when its notice names no last day.
    pub holding_days: u32,
    /// Independent identical proposals that approve a correction automatically (0: never).
    pub corroboration: u32,
    /// Days personal data is kept before the scheduled purge (0: no scheduled purge).
    pub retention_days: u32,
    /// Time between two scheduled purges.
    pub retention_every: Duration,
    /// Days a change its document's snapshot holds stays in the change log (0: forever).
    pub change_log_days: u32,
    /// Now, and which day it is in the service's time zone.
    pub clock: Clock,
    /// Rate limits per client address and principal.
    pub rate_limits: RateLimits,
    /// Timeouts and cross-origin access.
    pub guards: GuardSettings,
    /// The memory request bodies in flight may hold.
    pub uploads: UploadBudget,
    /// `/metrics` is served on its own address (`--metrics-listen`), not on the public port.
    pub metrics_elsewhere: bool,
    /// The largest import accepted over the API.
    pub import_max_bytes: usize,
    /// How webhook deliveries are sent and retried.
    pub webhooks: WebhookSettings,
    /// The history this server's cursors are issued in (a database restored from a backup
    /// begins a new one: see `db::History`).
    pub history: u64,
    /// The back-office page's tile server, if one is configured.
    pub map: Option<web::MapTiles>,
    /// Where proofs of delivery are kept (`--proof-store`).
    pub proofs: proofs::ProofStore,
    /// The largest proof file accepted (`--proof-max-bytes`).
    pub proof_max_bytes: usize,
    /// Days a proof file is kept (`--proof-retention-days`; 0: for ever).
    pub proof_retention_days: u32,
    /// The server's signing key, and the keys it publishes.
    pub signing: signing::ServerSigning,
    /// Refuse unsigned pushes of postmen (`--require-signatures`).
    pub require_signatures: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] db::OpenError),
    /// Token keys are misconfigured.
    #[error("token keys: {0}")]
    Keys(String),
    /// Another setting is wrong.
    #[error("{0}")]
    Settings(String),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

impl AppState {
    /// Connects to the database (applying migrations) and loads the keys, on the system clock.
    pub async fn new(settings: &Settings) -> Result<Arc<Self>, StartError> {
        let zone = clock::time_zone(&settings.time_zone)
            .map_err(|e| StartError::Settings(format!("--time-zone: {e}")))?;
        Self::with_clock(settings, Clock::system(zone)).await
    }

    /// As [`AppState::new`], on a given clock (tests stand it where they need).
    pub async fn with_clock(settings: &Settings, clock: Clock) -> Result<Arc<Self>, StartError> {
        let keys = Keys::from_settings(&settings.auth).map_err(StartError::Keys)?;
        let map = web::MapTiles::from_settings(&settings.map)
            .map_err(|e| StartError::Settings(format!("--map-tiles-url: {e}")))?;
        let proof_store =
            proofs::ProofStore::from_settings(&settings.proofs).map_err(StartError::Settings)?;
        let rate_limits = RateLimits::new(&settings.guards).map_err(StartError::Settings)?;
        let db = Database::open(
            &settings.database_url,
            db::OpenOptions {
                migrations: if settings.no_migrate {
                    db::Migrations::RequireCurrent
                } else {
                    db::Migrations::Run
                },
                create: !settings.no_migrate,
                pool_size: settings.database_pool_size,
            },
        )
        .await?;
        // A server that cannot write would acknowledge nothing: refuse to start.
        db.check_writable()
            .await
            .map_err(|e| StartError::Settings(format!("the database cannot take a write: {e}")))?;
        let history = db
            .history(clock.now_ms())
            .await
            .map_err(|e| StartError::Settings(format!("the database's history: {e}")))?;
        if history.began_now {
            tracing::warn!(
                history = format!("{:016x}", history.id),
                "this database is not the one its history began on (restored from a backup, or \
                 copied): a new history begins, and every phone re-checks its documents at its \
                 next sync"
            );
        }
        let signing = signing::ServerSigning::load(&db, clock.now_ms())
            .await
            .map_err(|e| StartError::Settings(format!("the server's signing key: {e}")))?;
        let metrics = Metrics::new();
        let limits = Limits {
            max_frame_bytes: settings.max_body_bytes,
            ..Limits::default()
        };
        let commits =
            group_commit::GroupCommit::start(db.clone(), metrics.commit_group_writes.clone());
        Ok(Arc::new(Self {
            db,
            keys,
            docs: DocumentCache::new(settings.document_cache_bytes, metrics.cache.clone()),
            syncs: tokio::sync::Semaphore::new(settings.sync_concurrency as usize),
            commits,
            metrics,
            limits,
            far_attempt_metres: settings.far_attempt_metres,
            holding_days: settings.holding_days,
            corroboration: settings.corroboration,
            retention_days: settings.retention_days,
            retention_every: Duration::from_secs(settings.retention_check_secs.max(1)),
            change_log_days: settings.change_log_days,
            clock,
            rate_limits,
            uploads: UploadBudget::new(settings.guards.upload_budget_bytes),
            metrics_elsewhere: settings.metrics_listen.is_some(),
            import_max_bytes: settings.import_max_bytes,
            guards: settings.guards.clone(),
            webhooks: settings.webhooks.clone(),
            history: history.id,
            map,
            proofs: proof_store,
            proof_max_bytes: settings.proofs.max_bytes,
            proof_retention_days: settings.proofs.retention_days,
            signing,
            require_signatures: settings.require_signatures,
        }))
    }
}

/// Every route of the server, each behind the access its table entry declares, and the guards
/// around them all.
pub fn router(state: Arc<AppState>) -> Router {
    let guards = &state.guards;
    let body_limit = state.limits.max_frame_bytes;
    let table = |group: fn(&routes::Input) -> bool| {
        routes::endpoints()
            .into_iter()
            .filter(move |e| group(&e.input))
            .fold(Router::new(), |router, e| {
                let enforced = e.handler.route_layer(from_fn_with_state(
                    (state.clone(), e.access),
                    access::enforce,
                ));
                router.route(e.path, enforced)
            })
    };
    // Bodies held whole (JSON, sync frames): bounded in size, in the memory they hold together,
    // and in time.
    let bounded =
        table(|input| !matches!(input, routes::Input::Ndjson(_) | routes::Input::Bytes(_)))
            .layer(DefaultBodyLimit::disable())
            .layer(from_fn_with_state(
                (state.clone(), body_limit),
                uploads::limit_uploads,
            ))
            .layer(RequestBodyLimitLayer::new(body_limit))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(guards.request_timeout_secs),
            ));
    // Streamed bodies (imports): read line by line, so neither the upload budget nor the
    // request timeout applies; only their own size limit, and the pause between two parts.
    let streamed = table(|input| matches!(input, routes::Input::Ndjson(_)))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(state.import_max_bytes));
    // Proof files: held whole like JSON, up to their own limit, which the handler enforces to
    // answer `proof_too_large`; each reserves up to that limit from the upload budget.
    let files = table(|input| matches!(input, routes::Input::Bytes(_)))
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(
            (state.clone(), state.proof_max_bytes),
            uploads::limit_uploads,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(guards.request_timeout_secs),
        ));
    bounded
        .merge(streamed)
        .merge(files)
        .fallback(|| async { error::for_status(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async { error::for_status(StatusCode::METHOD_NOT_ALLOWED) })
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            guards.body_timeout_secs,
        )))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            error::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }))
        .layer(map_response(errors_in_one_shape))
        .layer(from_fn_with_state(state.clone(), access::limit_addresses))
        .layer(cors(&guards.cors_origins))
        .layer(axum::middleware::from_fn(error::in_request_language))
        .layer(from_fn_with_state(state.clone(), request_log::log_requests))
        .with_state(state)
}

/// Cross-origin access: none unless origins are configured; then those origins may call the API
/// with a bearer token (no cookies are involved, so no credentials mode).
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

/// Any refusal that a layer or the framework answered in its own words (413, 408, 405, a
/// panic's 500…) gets the API's one error shape instead.
async fn errors_in_one_shape(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let mut shaped = error::for_status(status).into_response();
        for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
            if let Some(value) = response.headers().get(&name) {
                shaped.headers_mut().insert(name, value.clone());
            }
        }
        return shaped;
    }
    response
}

async fn openapi() -> impl IntoResponse {
    axum::Json(routes::openapi())
}

/// How long readiness may take to answer: a load balancer's probe must not hang.
const READINESS_DEADLINE: Duration = Duration::from_secs(1);

/// Ready when the database takes a write within a second: not merely when it answers a
/// `SELECT` (a full disk, a read-only file or blocked writers answer those too).
async fn ready(State(app): State<Arc<AppState>>) -> Response {
    match tokio::time::timeout(READINESS_DEADLINE, app.db.check_writable()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database cannot take a write");
            ApiError::unavailable("the database cannot take a write").into_response()
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not take a write within a second");
            ApiError::unavailable("the database did not take a write within a second")
                .into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    if app.metrics_elsewhere {
        return ApiError::not_found(
            "not_found",
            "metrics are served on the metrics address (--metrics-listen)",
        )
        .into_response();
    }
    metrics_now(&app).await
}

/// The metrics, with the values read when scraped set first: the pool, the cache, the queue.
async fn metrics_now(app: &AppState) -> Response {
    let m = &app.metrics;
    let pool = app.db.pool_state();
    let in_use = i64::from(pool.open).saturating_sub(i64::try_from(pool.idle).unwrap_or(0));
    m.db_connections
        .get_or_create(&metrics::ConnectionLabels { state: "in_use" })
        .set(in_use);
    m.db_connections
        .get_or_create(&metrics::ConnectionLabels { state: "idle" })
        .set(i64::try_from(pool.idle).unwrap_or(i64::MAX));
    m.db_connections_max.set(i64::from(pool.max));
    m.cache_documents
        .set(i64::try_from(app.docs.len()).unwrap_or(i64::MAX));
    m.cache_bytes
        .set(i64::try_from(app.docs.weight()).unwrap_or(i64::MAX));
    m.process.refresh();
    match app.db.open_queue_by_kind().await {
        Ok(depths) => {
            for (kind, open) in depths {
                m.review_queue_open
                    .get_or_create(&metrics::QueueLabels {
                        kind: kind.as_str().to_string(),
                    })
                    .set(open);
            }
        }
        // The rest of the metrics still tell something; the gauge keeps its last value.
        Err(e) => tracing::warn!(error = %e, "could not count the review queue for metrics"),
    }
    (
        [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        m.render(),
    )
        .into_response()
}

/// A router serving only `/metrics`, for `--metrics-listen`: metrics off the public port.
pub fn metrics_router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(app): State<Arc<AppState>>| async move {
                metrics_now(&app).await
            }),
        )
        .with_state(state)
}

/// Serves on `listener` until `shutdown` completes, then gives the requests in flight the
/// configured grace period to finish. A client gets `header_timeout_secs` to send its headers;
/// then its connection is closed.
pub async fn launch_with_tcp_listener(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let address = listener.local_addr()?;
    tracing::info!(%address, backend = state.db.backend(), "listening");
    tracing::info!(
        "back-office page at http://{address}/backoffice, tracking page at http://{address}/track, API at http://{address}/openapi.json"
    );
    let compactor = tokio::spawn(compaction::run(state.clone()));
    let corroborator = tokio::spawn(review::sweep(state.clone()));
    let deliverer = tokio::spawn(webhooks::run(state.clone()));
    let purger = tokio::spawn(retention::run(state.clone()));
    let forgetter = tokio::spawn({
        let state = state.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                state.rate_limits.forget_idle();
            }
        }
    });
    let grace = Duration::from_secs(state.guards.shutdown_grace_secs);
    let mut connections = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    connections
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(state.guards.header_timeout_secs));
    // HTTP/1: hyper runs the header timer from the end of the previous answer, so it is the
    // idle timeout of kept-alive connections too. HTTP/2: peers that vanished are found by ping.
    connections
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let app = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            });
        let connection = connections
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: finishing requests in flight");
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "requests still in flight after the grace period were cut"
        );
    }
    compactor.abort();
    corroborator.abort();
    deliverer.abort();
    purger.abort();
    forgetter.abort();
    Ok(())
}
