//! Prometheus metrics: syncs, changes accepted and refused, latency.

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
    /// Requests refused for a missing or invalid token (401), or refused as rate limited after
    /// too many such failures.
    pub auth_failures: Counter,
    /// Requests refused by a rate limit (429).
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
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Requests whose token was missing or did not verify",
            auth_failures.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit (429)",
            rate_limited.clone(),
        );
        Self {
            auth_failures,
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
