//! Group commit: the writes that arrive while the database is busy committing are committed
//! together, in one transaction, instead of queueing behind each other for a commit (and an
//! fsync) each. Every writer still waits for its own write to be durable before it answers.
//!
//! One task per server instance takes writes from a queue: the first that arrives, then every
//! write already waiting, up to a group's limit. A group that fails is committed again one write
//! at a time, so one write's conflict (a correction decided meanwhile, a record key taken) fails
//! that write alone.

use tokio::sync::{mpsc, oneshot};

use crate::db::{CommitError, Database, SyncWrite};

/// Writes committed in one transaction at most. Each holds one sync's batch (at most a few
/// thousand changes), so a group stays far below what one transaction can position
/// (`db::changes`: about a million changes).
pub const MAX_GROUP: usize = 64;

struct Job {
    write: SyncWrite,
    done: oneshot::Sender<Result<(), CommitError>>,
}

/// The queue to this instance's committer.
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the committer on `db`; it stops when the last handle is dropped.
    pub fn start(db: Database, groups: prometheus_client::metrics::histogram::Histogram) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(db, jobs, groups));
        Self { queue }
    }

    /// Commits `write`, alone or with others, and returns once it is durable (or failed, with
    /// nothing of it stored).
    pub async fn commit(&self, write: SyncWrite) -> Result<(), CommitError> {
        let (done, result) = oneshot::channel();
        self.queue
            .send(Job { write, done })
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

fn stopped() -> CommitError {
    CommitError::Database(sqlx::Error::PoolClosed)
}

async fn run(
    db: Database,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    groups: prometheus_client::metrics::histogram::Histogram,
) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        groups.observe(group.len() as f64);
        let writes: Vec<&SyncWrite> = group.iter().map(|job| &job.write).collect();
        let result = db.commit_group(&writes).await;
        drop(writes);
        match result {
            Ok(()) => {
                for job in group {
                    // A writer that gave up waiting (its client left) needs no answer.
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) if group.len() == 1 => {
                if let Some(job) = group.pop() {
                    let _ = job.done.send(Err(e));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, writes = group.len(), "a group failed: committing its writes one by one");
                for job in group {
                    let result = db.commit_group(&[&job.write]).await;
                    let _ = job.done.send(result);
                }
            }
        }
    }
}
