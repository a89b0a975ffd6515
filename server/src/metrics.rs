//! Prometheus metrics, served as OpenMetrics text: requests and their latency per route,
//! authentication failures by reason, rate limiting, syncs, changes accepted and refused.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A refusal's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The refusal code.
    pub code: String,
    /// The sender's role.
    pub role: String,
}

/// A request's labels: the route template, never the raw path.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// GET, POST…
    pub method: String,
    /// The route template, e.g. `/v1/customer/items/{s10}`.
    pub route: String,
    /// The answer's status.
    pub status: u16,
}

/// Why a token was refused.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthFailureLabels {
    /// The refusal's code, e.g. `token_expired`, `device_revoked`.
    pub code: String,
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// The server's counters.
pub struct Metrics {
    registry: Registry,
    /// Sync requests answered.
    pub syncs: Counter,
    /// Changes validated and stored.
    pub changes_accepted: Counter,
    /// Document entries refused, by code and role.
    pub refused: Family<RefusalLabels, Counter>,
    /// Seconds to answer a sync.
    pub sync_seconds: Histogram,
    /// Requests refused for their token (401, or 403 for a revoked or unregistered device), by
    /// the refusal's code.
    pub auth_failures: Family<AuthFailureLabels, Counter>,
    /// Requests answered, per route, method and status.
    pub requests: Family<RouteLabels, Counter>,
    /// Seconds to answer, per route, method and status.
    pub request_seconds: Family<RouteLabels, Histogram>,
    /// Requests refused by a rate limit (429) or a spent upload budget (503 `busy`).
    pub rate_limited: Counter,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tournee");
        let syncs = Counter::default();
        let changes_accepted = Counter::default();
        let refused = Family::<RefusalLabels, Counter>::default();
        let sync_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register("syncs", "Sync requests answered", syncs.clone());
        registry.register(
            "changes_accepted",
            "Changes validated and stored",
            changes_accepted.clone(),
        );
        registry.register(
            "entries_refused",
            "Document entries refused, nothing stored",
            refused.clone(),
        );
        registry.register(
            "sync_seconds",
            "Time to answer a sync request",
            sync_seconds.clone(),
        );
        let auth_failures = Family::<AuthFailureLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused for their token, by reason",
            auth_failures.clone(),
        );
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, per route, method and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "http_request_seconds",
            "Time to answer a request, per route, method and status",
            request_seconds.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit (429) or a spent upload budget (503 busy)",
            rate_limited.clone(),
        );
        Self {
            auth_failures,
            requests,
            request_seconds,
            rate_limited,
            registry,
            syncs,
            changes_accepted,
            refused,
            sync_seconds,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
