//! The Tournée server: phones sync with it, it refuses what a sender may not write, and it
//! reconciles what it accepts into the central customer profile.
//!
//! [`launch_with_tcp_listener`] runs it on a listener the caller chose (port 0 in tests);
//! [`router`] has every route.

pub mod auth;
pub mod backoffice;
pub mod backoffice_api;
pub mod compaction;
pub mod customer_api;
pub mod db;
pub mod demo;
pub mod documents;
pub mod error;
pub mod item_view;
pub mod json_body;
pub mod metrics;
pub mod params;
pub mod reconcile;
pub mod review;
pub mod routes;
pub mod scope;
pub mod settings;
pub mod sync_api;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use tokio::net::TcpListener;
use tournee_sync_core::sync::wire::Limits;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Keys;
use crate::db::Database;
use crate::documents::DocumentCache;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// What every request handler shares.
pub struct AppState {
    /// The central store.
    pub db: Database,
    /// Token verification.
    pub keys: Keys,
    /// Materialised documents.
    pub docs: DocumentCache,
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
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Token keys are misconfigured.
    #[error("token keys: {0}")]
    Keys(String),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

impl AppState {
    /// Connects to the database (applying migrations) and loads the keys.
    pub async fn new(settings: &Settings) -> Result<Arc<Self>, StartError> {
        let db = Database::connect(&settings.database_url).await?;
        let keys = Keys::from_settings(&settings.auth).map_err(StartError::Keys)?;
        let limits = Limits {
            max_frame_bytes: settings.max_body_bytes,
            ..Limits::default()
        };
        Ok(Arc::new(Self {
            db,
            keys,
            docs: DocumentCache::new(settings.document_cache),
            metrics: Metrics::new(),
            limits,
            far_attempt_metres: settings.far_attempt_metres,
            holding_days: settings.holding_days,
            corroboration: settings.corroboration,
        }))
    }
}

/// Every route of the server.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.limits.max_frame_bytes;
    let router = routes::endpoints()
        .into_iter()
        .fold(Router::new(), |router, e| router.route(e.path, e.handler));
    router
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    axum::Json(routes::openapi())
}

async fn ready(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    match app.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        app.metrics.render(),
    )
}

/// Serves on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn launch_with_tcp_listener(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let address = listener.local_addr()?;
    tracing::info!(%address, backend = state.db.backend(), "listening");
    tracing::info!(
        "back-office page at http://{address}/backoffice, API at http://{address}/openapi.json"
    );
    let compactor = tokio::spawn(compaction::run(state.clone()));
    let corroborator = tokio::spawn(review::sweep(state.clone()));
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    compactor.abort();
    corroborator.abort();
    served?;
    Ok(())
}
