//! Retention (issue #18): the purge of personal data past the retention period, by hand
//! (`tournee-server purge`) or every hour inside `serve` (`--retention-days`).
//!
//! The database work is `db/retention.rs`; this is the cutoff, the document cache, the log line
//! and the schedule.

use std::sync::Arc;

use crate::db::retention::PurgeCounts;
use crate::db::Database;
use crate::documents::DocumentCache;
use crate::AppState;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Purges what was recorded more than `days` days before `now_ms` (0: everything before now),
/// dropping archived documents from `cache` when there is one; logs one line with the counts.
pub async fn purge(
    db: &Database,
    cache: Option<&DocumentCache>,
    days: u32,
    now_ms: i64,
    actor: &str,
    dry_run: bool,
) -> Result<PurgeCounts, sqlx::Error> {
    let cutoff_ms = now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
    let counts = db
        .purge(cutoff_ms, now_ms, actor, dry_run, |ids| {
            if let Some(cache) = cache {
                ids.iter().for_each(|id| cache.remove(id));
            }
        })
        .await?;
    tracing::info!(
        retention_days = days,
        cutoff_ms,
        dry_run,
        items_archived = counts.items_archived,
        documents_deleted = counts.documents_deleted,
        changes_deleted = counts.changes_deleted,
        attempts_anonymised = counts.attempts_anonymised,
        choices_anonymised = counts.choices_anonymised,
        corrections_anonymised = counts.corrections_anonymised,
        queue_entries_cleared = counts.queue_entries_cleared,
        audit_details_cleared = counts.audit_details_cleared,
        events_deleted = counts.events_deleted,
        "purged"
    );
    Ok(counts)
}

/// The scheduled purge: at start, then every `--retention-check-secs` (an hour); personal data
/// unless `retention_days` is 0, proofs' files unless `--proof-retention-days` is 0. A failed
/// run is logged and the next one continues where it stopped (every batch it committed stands).
pub async fn run(app: Arc<AppState>) {
    if app.retention_days == 0 && app.proof_retention_days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(app.retention_every);
    loop {
        tick.tick().await;
        let now_ms = app.clock.now_ms();
        if app.proof_retention_days > 0 {
            if let Err(e) = crate::proofs::purge(
                &app.db,
                &app.proofs,
                app.proof_retention_days,
                now_ms,
                "server:retention",
                false,
            )
            .await
            {
                tracing::warn!(error = %e, "the scheduled purge of proofs failed; the next run continues it");
            }
        }
        if app.retention_days == 0 {
            continue;
        }
        if let Err(e) = purge(
            &app.db,
            Some(&app.docs),
            app.retention_days,
            now_ms,
            "server:retention",
            false,
        )
        .await
        {
            tracing::warn!(error = %e, "the scheduled purge failed; the next run continues it");
        }
    }
}
