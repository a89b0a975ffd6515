//! Prometheus metrics, served as OpenMetrics text: requests and their latency per route,
//! authentication failures by reason, rate limiting, syncs, changes accepted and refused, the
//! database pool, the document cache, the review queue's depth, compaction and corroboration
//! runs, and the build.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// The database pool's connections by state.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// `in_use` or `idle`.
    pub state: &'static str,
}

/// A review-queue entry's kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `correction`, `attempt`, `dispute`.
    pub kind: String,
}

/// A webhook delivery attempt's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `delivered`, `retried` or `failed` (given up, subscription disabled).
    pub outcome: &'static str,
}

/// The build.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate's version.
    pub version: &'static str,
}

/// What the document cache counts as it works.
#[derive(Debug, Clone, Default)]
pub struct CacheCounters {
    /// Documents found in the cache.
    pub hits: Counter,
    /// Documents read from the database.
    pub misses: Counter,
    /// Documents dropped to make room.
    pub evictions: Counter,
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The time every query waited for a pooled database connection, in seconds: one histogram for
/// the process, fed by [`crate::telemetry`] from the event sqlx emits at each acquire (the
/// acquires happen inside sqlx, out of the server's sight), and registered by every [`Metrics`].
pub fn pool_acquire_seconds() -> &'static Histogram {
    static ACQUIRES: std::sync::OnceLock<Histogram> = std::sync::OnceLock::new();
    ACQUIRES.get_or_init(|| Histogram::new(exponential_buckets(0.000_1, 4.0, 10)))
}

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
    /// Writes committed together, per transaction of the group committer.
    pub commit_group_writes: Histogram,
    /// Requests refused for their token (401, or 403 for a revoked or unregistered device), by
    /// the refusal's code.
    pub auth_failures: Family<AuthFailureLabels, Counter>,
    /// Requests answered, per route, method and status.
    pub requests: Family<RouteLabels, Counter>,
    /// Seconds to answer, per route, method and status.
    pub request_seconds: Family<RouteLabels, Histogram>,
    /// Requests refused by a rate limit (429) or a spent upload budget (503 `busy`).
    pub rate_limited: Counter,
    /// The document cache's hits, misses and evictions.
    pub cache: CacheCounters,
    /// Documents in the cache (set when scraped).
    pub cache_documents: Gauge,
    /// What the cached documents weigh in memory, in bytes (set when scraped).
    pub cache_bytes: Gauge,
    /// The database pool's connections in use and idle (set when scraped).
    pub db_connections: Family<ConnectionLabels, Gauge>,
    /// The most connections the pool opens.
    pub db_connections_max: Gauge,
    /// Open review-queue entries by kind (set when scraped).
    pub review_queue_open: Family<QueueLabels, Gauge>,
    /// Compaction passes run, and documents they compacted.
    pub compaction_runs: Counter,
    /// Documents given a new snapshot by compaction.
    pub documents_compacted: Counter,
    /// Corroboration checks run (after syncs and by the sweep).
    pub corroboration_runs: Counter,
    /// The process's resident memory, CPU time, open files and start (set when scraped).
    pub process: ProcessGauges,
    /// Webhook delivery attempts by outcome.
    pub webhook_deliveries: Family<WebhookLabels, Counter>,
    /// Webhook deliveries waiting to be sent or sent again (set by the worker).
    pub webhook_pending: Gauge,
}

/// The process as the operating system sees it, read when scraped (Linux only; elsewhere
/// the gauges stay at 0).
#[derive(Debug, Clone, Default)]
pub struct ProcessGauges {
    /// Resident memory, bytes.
    pub resident_memory_bytes: Gauge,
    /// User and system CPU time, seconds.
    pub cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Open file descriptors (sockets included).
    pub open_fds: Gauge,
    /// When the process started, Unix seconds.
    pub start_time_seconds: Gauge,
}

impl ProcessGauges {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            self.resident_memory_bytes.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time of the process",
            self.cpu_seconds.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors of the process",
            self.open_fds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "When the process started, Unix time",
            self.start_time_seconds.clone(),
        );
    }

    /// Reads the process's figures from /proc.
    pub fn refresh(&self) {
        #[cfg(target_os = "linux")]
        {
            let Ok(me) = procfs::process::Process::myself() else {
                return;
            };
            let ticks = procfs::ticks_per_second() as f64;
            if let Ok(stat) = me.stat() {
                let page = procfs::page_size();
                self.resident_memory_bytes
                    .set(i64::try_from(stat.rss.saturating_mul(page)).unwrap_or(i64::MAX));
                self.cpu_seconds
                    .set((stat.utime + stat.stime) as f64 / ticks);
                if let Ok(boot) = procfs::boot_time_secs() {
                    let started = boot as f64 + stat.starttime as f64 / ticks;
                    self.start_time_seconds.set(started as i64);
                }
            }
            if let Ok(fds) = me.fd_count() {
                self.open_fds.set(i64::try_from(fds).unwrap_or(i64::MAX));
            }
        }
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tournee");
        let syncs = Counter::default();
        let changes_accepted = Counter::default();
        let refused = Family::<RefusalLabels, Counter>::default();
        let sync_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let commit_group_writes = Histogram::new(exponential_buckets(1.0, 2.0, 8));
        registry.register(
            "commit_group_writes",
            "Writes (syncs, decisions, imports' batches) committed together in one transaction",
            commit_group_writes.clone(),
        );
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
        let cache = CacheCounters::default();
        registry.register(
            "document_cache_hits",
            "Documents found in the cache",
            cache.hits.clone(),
        );
        registry.register(
            "document_cache_misses",
            "Documents read from the database into the cache",
            cache.misses.clone(),
        );
        registry.register(
            "document_cache_evictions",
            "Documents dropped from the cache to make room",
            cache.evictions.clone(),
        );
        let cache_documents = Gauge::default();
        registry.register(
            "document_cache_documents",
            "Documents in the cache",
            cache_documents.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "document_cache_bytes",
            "What the cached documents weigh in memory, in bytes, as the cache's budget counts them",
            cache_bytes.clone(),
        );
        let db_connections = Family::<ConnectionLabels, Gauge>::default();
        registry.register(
            "db_connections",
            "Database pool connections, in use and idle",
            db_connections.clone(),
        );
        let db_connections_max = Gauge::default();
        registry.register(
            "db_connections_max",
            "The most connections the database pool opens",
            db_connections_max.clone(),
        );
        registry.register(
            "db_pool_acquire_seconds",
            "Time queries waited for a pooled database connection (a wait beyond the first \
             bucket means every connection was in use)",
            pool_acquire_seconds().clone(),
        );
        let review_queue_open = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "review_queue_open",
            "Open review-queue entries, by kind",
            review_queue_open.clone(),
        );
        let compaction_runs = Counter::default();
        registry.register(
            "compaction_runs",
            "Compaction passes run",
            compaction_runs.clone(),
        );
        let documents_compacted = Counter::default();
        registry.register(
            "documents_compacted",
            "Documents given a new snapshot by compaction",
            documents_compacted.clone(),
        );
        let corroboration_runs = Counter::default();
        registry.register(
            "corroboration_runs",
            "Corroboration checks of pending corrections run",
            corroboration_runs.clone(),
        );
        let webhook_deliveries = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            webhook_deliveries.clone(),
        );
        let webhook_pending = Gauge::default();
        registry.register(
            "webhook_deliveries_pending",
            "Webhook deliveries waiting to be sent or sent again",
            webhook_pending.clone(),
        );
        let process = ProcessGauges::default();
        process.register(&mut registry);
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build", "The running build (always 1)", build);
        Self {
            webhook_deliveries,
            webhook_pending,
            process,
            cache,
            cache_documents,
            cache_bytes,
            db_connections,
            db_connections_max,
            review_queue_open,
            compaction_runs,
            documents_compacted,
            corroboration_runs,
            auth_failures,
            requests,
            request_seconds,
            rate_limited,
            registry,
            syncs,
            changes_accepted,
            refused,
            sync_seconds,
            commit_group_writes,
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
