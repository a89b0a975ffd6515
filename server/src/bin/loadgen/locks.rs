//! Samples PostgreSQL's lock waits while a load runs: how often a backend of the load's
//! database waits for a lock, on which kind of lock, and how many advisory locks are held. A
//! lock every writer takes (an advisory lock, a table lock) shows as waits on it in nearly
//! every sample of a storm; row and transaction locks are waits between writes of the same rows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// Between two samples.
const EVERY: Duration = Duration::from_millis(10);

/// Backends of this database waiting for a lock, with the kind of lock each waits for.
const WAITING: &str = "SELECT COALESCE(l.locktype, a.wait_event) FROM pg_stat_activity a \
     LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted \
     WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'";

/// Advisory locks held in this database.
const ADVISORY: &str = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// What the samples saw.
#[derive(Default)]
pub struct LockWaits {
    samples: u64,
    /// Samples in which at least one backend waited for a lock.
    waiting: u64,
    /// Backends seen waiting, by kind of lock (over all samples).
    by_kind: BTreeMap<String, u64>,
    /// The most advisory locks held at once.
    advisory_max: i64,
    /// Queries that failed (the sampler goes on).
    failed: u64,
}

impl LockWaits {
    pub fn summary(&self) -> String {
        let kinds = if self.by_kind.is_empty() {
            "none".to_string()
        } else {
            self.by_kind
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let time = self.waiting as f64 * EVERY.as_secs_f64();
        format!(
            "{} samples every {} ms; some backend waiting in {} (≈ {time:.1} s); waits by lock: \
             {kinds}; advisory locks held at most {}{}",
            self.samples,
            EVERY.as_millis(),
            self.waiting,
            self.advisory_max,
            if self.failed > 0 {
                format!("; {} samples failed", self.failed)
            } else {
                String::new()
            }
        )
    }
}

/// A sampler running until [`LockSampler::stop`].
pub struct LockSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<LockWaits>,
}

impl LockSampler {
    /// Starts sampling the PostgreSQL database at `url`; `None` for SQLite (one writer at a
    /// time, by design) or when the database cannot be reached.
    pub async fn start(url: &str) -> Option<LockSampler> {
        if !url.starts_with("postgres") {
            return None;
        }
        let pool: PgPool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|e| eprintln!("lock sampler: {e}"))
            .ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut waits = LockWaits::default();
            while !stopping.load(Ordering::Relaxed) {
                let sample = async {
                    let kinds: Vec<(Option<String>,)> =
                        sqlx::query_as(WAITING).fetch_all(&pool).await?;
                    let advisory: (i64,) = sqlx::query_as(ADVISORY).fetch_one(&pool).await?;
                    Ok::<_, sqlx::Error>((kinds, advisory.0))
                };
                match sample.await {
                    Ok((kinds, advisory)) => {
                        waits.samples += 1;
                        waits.waiting += u64::from(!kinds.is_empty());
                        for (kind,) in kinds {
                            *waits
                                .by_kind
                                .entry(kind.unwrap_or_else(|| "unknown".into()))
                                .or_default() += 1;
                        }
                        waits.advisory_max = waits.advisory_max.max(advisory);
                    }
                    Err(_) => waits.failed += 1,
                }
                tokio::time::sleep(EVERY).await;
            }
            pool.close().await;
            waits
        });
        Some(LockSampler { stop, task })
    }

    pub async fn stop(self) -> LockWaits {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
