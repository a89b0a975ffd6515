//! Background compaction: a document with many changes after its snapshot gets a new snapshot,
//! so loading it stays one snapshot plus a few changes; then the change log is pruned of the
//! changes snapshots hold that are older than `--change-log-days` (`db::change_log`).

use std::sync::Arc;
use std::time::Duration;

use tournee_sync_core::automerge::Automerge;
use tournee_sync_core::DocId;

use crate::db::Database;
use crate::AppState;

/// Changes after the snapshot before a document is compacted.
pub const THRESHOLD: i64 = 64;
/// How often to look.
pub const INTERVAL: Duration = Duration::from_secs(30);

/// Compacts in the background until the task is aborted.
pub async fn run(app: Arc<AppState>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        app.metrics.compaction_runs.inc();
        match compact_some(&app.db, 100).await {
            Ok(0) => {}
            Ok(n) => {
                app.metrics.documents_compacted.inc_by(n as u64);
                tracing::info!(documents = n, "compacted");
            }
            Err(e) => tracing::warn!(error = %e, "compaction failed; will retry"),
        }
        if app.change_log_days > 0 {
            match prune(&app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(changes = n, "change log pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning the change log failed; will retry"),
            }
        }
    }
}

/// Marks where the change log is now (once an hour) and prunes what snapshots hold of it from
/// before `--change-log-days`; returns the changes deleted.
pub async fn prune(app: &AppState) -> Result<u64, sqlx::Error> {
    let now = app.clock.now_ms();
    app.db
        .mark_change_log(now, app.db.cursor_bound().await?)
        .await?;
    let window = i64::from(app.change_log_days) * 86_400_000;
    app.db.prune_change_log(now - window).await
}

/// Compacts up to `limit` documents; returns how many got a new snapshot.
pub async fn compact_some(db: &Database, limit: i64) -> Result<usize, sqlx::Error> {
    let mut done = 0;
    for id in db.documents_to_compact(THRESHOLD, limit).await? {
        if compact(db, &id).await? {
            done += 1;
        }
    }
    Ok(done)
}

/// Gives one document a new snapshot of everything settled; whether it did.
pub async fn compact(db: &Database, id: &DocId) -> Result<bool, sqlx::Error> {
    // Read before the document: every change up to it is in what is loaded next, while a
    // change above it may still commit below the last position loaded (on PostgreSQL).
    let bound = db.settled_bound().await?;
    let Some(stored) = db.load_document(id).await? else {
        return Ok(false);
    };
    let Some(last) = stored.changes.last().map(|(position, _)| *position) else {
        return Ok(false);
    };
    let seq = last.min(bound);
    if seq <= stored.snapshot_position {
        return Ok(false);
    }
    let mut doc =
        Automerge::load(&stored.snapshot).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    for (_, bytes) in &stored.changes {
        doc.load_incremental(bytes)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    }
    db.replace_snapshot(id, &doc.save(), seq).await
}
