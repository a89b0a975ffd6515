//! What every mode measures beside its load: latency percentiles, the floor (raw Automerge apply
//! plus a raw SQL insert per interaction, on the same database), and the database's size.

use std::time::{Duration, Instant};

use tournee_server::db::Database;

use crate::town::Phone;

/// Latencies, sorted once, read by percentile.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut latencies: Vec<Duration>) -> Latencies {
        latencies.sort();
        Latencies(latencies)
    }

    /// The latency below which a share `p` (0–1) of them lie; zero when there are none.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = (self.0.len() as f64 * p).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// "p50 … ms, p90 … ms, p99 … ms, max … ms".
    pub fn summary(&self) -> String {
        format!(
            "p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            ms(self.percentile(0.50)),
            ms(self.percentile(0.90)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0))
        )
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The floor per interaction: each phone's first `pushed[i]` changes applied raw to the
/// documents they were made on, plus one raw SQL row per interaction in transactions of 150.
pub struct Floor {
    pub apply: Duration,
    pub insert: Duration,
    pub interactions: usize,
}

impl Floor {
    pub async fn measure(db: &Database, phones: &mut [Phone], pushed: &[usize]) -> Floor {
        let mut apply = Duration::ZERO;
        let mut interactions = 0;
        for (phone, &n) in phones.iter_mut().zip(pushed) {
            for (doc, change) in phone.docs.iter_mut().zip(&phone.changes).take(n) {
                let t = Instant::now();
                doc.apply_changes(vec![change.clone()]).unwrap();
                apply += t.elapsed();
                interactions += 1;
            }
        }
        let insert = raw_insert_floor(db, interactions).await;
        Floor {
            apply,
            insert,
            interactions,
        }
    }

    pub fn per_interaction(&self) -> Duration {
        (self.apply + self.insert) / self.interactions.max(1) as u32
    }

    /// "… µs (automerge apply … µs + SQL insert … µs)".
    pub fn summary(&self) -> String {
        let n = self.interactions.max(1) as f64;
        format!(
            "{:.1} µs (automerge apply {:.1} µs + SQL insert {:.1} µs)",
            self.per_interaction().as_secs_f64() * 1e6,
            self.apply.as_secs_f64() * 1e6 / n,
            self.insert.as_secs_f64() * 1e6 / n
        )
    }
}

/// One row per interaction into a scratch table, in transactions of 150 (one device's round).
async fn raw_insert_floor(db: &Database, rows: usize) -> Duration {
    /// The same inserts on whichever pool the database has; only the table's types differ.
    macro_rules! timed_inserts {
        ($pool:expr, $create:literal) => {{
            sqlx::query($create).execute($pool).await.unwrap();
            sqlx::query("DELETE FROM floor_rows")
                .execute($pool)
                .await
                .unwrap();
            let started = Instant::now();
            for chunk in 0..rows.div_ceil(150) {
                let mut tx = $pool.begin().await.unwrap();
                for i in chunk * 150..((chunk + 1) * 150).min(rows) {
                    sqlx::query("INSERT INTO floor_rows VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(format!("r{i}"))
                        .bind("RR000000005FR")
                        .bind("addressee_absent")
                        .bind(i as i64)
                        .bind(48.85)
                        .bind(2.37)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
            let elapsed = started.elapsed();
            sqlx::query("DROP TABLE floor_rows")
                .execute($pool)
                .await
                .unwrap();
            elapsed
        }};
    }
    match db {
        Database::Sqlite(pool) => timed_inserts!(pool, "CREATE TABLE IF NOT EXISTS floor_rows (id TEXT PRIMARY KEY, item_id TEXT, outcome TEXT, at_ms INTEGER, lat REAL, lon REAL)"),
        Database::Postgres(pool) => timed_inserts!(pool, "CREATE TABLE IF NOT EXISTS floor_rows (id TEXT PRIMARY KEY, item_id TEXT, outcome TEXT, at_ms BIGINT, lat DOUBLE PRECISION, lon DOUBLE PRECISION)"),
    }
}

/// The database's size in bytes: the SQLite file with its write-ahead log, or PostgreSQL's
/// `pg_database_size` of the current database.
pub async fn database_bytes(db: &Database, database_url: &str) -> u64 {
    match db {
        Database::Sqlite(_) => {
            let path = database_url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap_or_default();
            [path.to_string(), format!("{path}-wal")]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        }
        Database::Postgres(pool) => {
            let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(pool)
                .await
                .unwrap();
            bytes as u64
        }
    }
}
