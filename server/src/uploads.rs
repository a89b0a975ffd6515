//! A bound on the memory that request bodies in flight may hold: each request with a body
//! reserves what it declares (or the largest body accepted, when it declares nothing) from one
//! budget before it is read, and gives it back when it is answered. Stalled or slow uploads
//! therefore cannot grow the process past the budget; a request that finds the budget spent
//! waits a moment, then gets 503 with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::AppState;

/// How long a request waits for room in the budget before it is refused.
const WAIT: Duration = Duration::from_secs(2);

/// The bytes that bodies in flight may hold together.
pub struct UploadBudget {
    bytes: Arc<Semaphore>,
    total: u32,
}

impl UploadBudget {
    /// A budget of `total` bytes (at most 4 GiB).
    pub fn new(total: usize) -> Self {
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// The layer over the routes whose bodies are held whole: reserves a body's bytes before the
/// handler reads it: what it declares, at most `largest` (the largest body the routes accept,
/// also reserved for a chunked body, which declares nothing).
pub async fn limit_uploads(
    State((app, largest)): State<(Arc<AppState>, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bodiless = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
    );
    let wanted = match declared {
        Some(0) => return next.run(request).await,
        // More than the largest accepted is refused unread.
        Some(n) => n.min(largest),
        None if bodiless => return next.run(request).await,
        // Chunked: it may be as large as the largest body accepted.
        None => largest,
    };
    let budget = &app.uploads;
    let wanted = u32::try_from(wanted).unwrap_or(u32::MAX).min(budget.total);
    match tokio::time::timeout(WAIT, budget.bytes.clone().acquire_many_owned(wanted)).await {
        Ok(Ok(reserved)) => {
            let response = next.run(request).await;
            drop(reserved);
            response
        }
        _ => {
            app.metrics.rate_limited.inc();
            ApiError::busy(
                "too many uploads in flight; retry shortly",
                Duration::from_secs(1),
            )
            .into_response()
        }
    }
}
