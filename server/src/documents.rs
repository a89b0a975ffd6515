//! The server's documents in memory: a cache in front of the database, bounded by bytes.
//!
//! A sync prepares everything it reads from here and the database before validating
//! (`sync_api::prepare`), runs the CPU-bound protocol on a blocking thread without touching
//! either, and commits what was accepted through the write pipeline afterwards. The cache is only
//! a copy: every load adds the changes other instances stored since, so several servers on one
//! PostgreSQL stay correct.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::sync::Cache;
use tournee_sync_core::automerge::{Automerge, ChangeHash, ReadDoc};
use tournee_sync_core::DocId;

use crate::db::{Database, StoredDocument};
use crate::metrics::CacheCounters;

/// How long a cached document stays without being asked for: well under the shortest change
/// log retention (a day).
const IDLE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

#[derive(Clone)]
struct Cached {
    /// Shared with the syncs reading it: a sync forks it, never copies it first.
    doc: Arc<Automerge>,
    /// Every change at a position up to this is in `doc` (changes above it may be too: adding
    /// them again changes nothing).
    seq: i64,
}

/// What a materialised document costs in memory, as measured by
/// `sync-core/examples/document_memory.rs`: about 19 KB of Automerge's own structures for any
/// document, about 50 bytes per operation and 400 per change (BENCHMARKS.md, issue #15).
pub fn document_weight(doc: &Automerge) -> u64 {
    const BASE: u64 = 19 * 1024;
    const PER_OP: u64 = 50;
    const PER_CHANGE: u64 = 400;
    let stats = doc.stats();
    BASE + PER_OP * stats.num_ops + PER_CHANGE * stats.num_changes
}

/// A cache of materialised documents bounded by what they weigh in memory
/// ([`document_weight`]), least recently and least frequently used first out (moka's TinyLFU).
pub struct DocumentCache {
    docs: Cache<DocId, Cached>,
    counters: CacheCounters,
}

impl DocumentCache {
    /// A cache of documents weighing at most `budget_bytes` in all, counting its hits, misses
    /// and evictions.
    pub fn new(budget_bytes: u64, counters: CacheCounters) -> Self {
        let evictions = counters.evictions.clone();
        let docs = Cache::builder()
            .max_capacity(budget_bytes)
            // A copy nobody asked for in this long is dropped: one that is asked for is
            // refreshed with every change up to the bound, so no cached copy can miss a change
            // the change log's pruning deletes (stored more than a day before it, at the
            // least: `--change-log-days`).
            .time_to_idle(IDLE)
            .weigher(|_, cached: &Cached| {
                u32::try_from(document_weight(&cached.doc)).unwrap_or(u32::MAX)
            })
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build();
        Self { docs, counters }
    }

    /// How many documents the cache holds.
    pub fn len(&self) -> u64 {
        self.docs.run_pending_tasks();
        self.docs.entry_count()
    }

    /// Whether the cache holds no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the cached documents weigh, in bytes ([`document_weight`]).
    pub fn weight(&self) -> u64 {
        self.docs.run_pending_tasks();
        self.docs.weighted_size()
    }

    /// The current document, from the cache refreshed with newer changes, or from the database.
    pub async fn load(&self, db: &Database, id: &DocId) -> Result<Option<Automerge>, sqlx::Error> {
        Ok(self
            .load_many(db, [id])
            .await?
            .remove(id)
            .map(Arc::unwrap_or_clone))
    }

    /// A document not in the cache, not found by [`Database::load_documents`]: built from its
    /// import line if an import loaded it and nobody has materialised it yet (the same bytes
    /// whichever instance builds it: `import::materialize`), then cached.
    async fn load_imported(
        &self,
        db: &Database,
        id: &DocId,
        bound: i64,
    ) -> Result<Option<Arc<Automerge>>, sqlx::Error> {
        let Some(doc) = crate::import::materialize(db, id).await? else {
            return Ok(None);
        };
        db.insert_document(id, &doc.save_nocompress()).await?;
        match db.load_document(id).await? {
            Some(stored) => self.cache_stored(id, stored, bound).map(Some),
            None => Ok(None),
        }
    }

    /// A document as stored, materialised and cached. `bound` is a
    /// [`Database::settled_bound`] read before the document was.
    fn cache_stored(
        &self,
        id: &DocId,
        stored: StoredDocument,
        bound: i64,
    ) -> Result<Arc<Automerge>, sqlx::Error> {
        let mut doc = Automerge::load(&stored.snapshot).map_err(decode_error)?;
        let mut seq = stored.snapshot_position;
        for (position, bytes) in stored.changes {
            doc.load_incremental(&bytes).map_err(decode_error)?;
            seq = seq.max(position.min(bound));
        }
        let doc = Arc::new(doc);
        self.put(id, Arc::clone(&doc), seq);
        Ok(doc)
    }

    /// [`DocumentCache::load`] for many documents, with one query refreshing every cached copy
    /// instead of one per document, and shared rather than copied: the validator forks what
    /// it checks. Documents that do not exist are absent from the answer.
    pub async fn load_many(
        &self,
        db: &Database,
        ids: impl IntoIterator<Item = &DocId>,
    ) -> Result<HashMap<DocId, Arc<Automerge>>, sqlx::Error> {
        let mut docs = HashMap::new();
        let mut seqs = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.docs.get(id) {
                Some(cached) => {
                    seqs.push((id.clone(), cached.seq));
                    docs.insert(id.clone(), (cached.doc, cached.seq));
                }
                None => missing.push(id.clone()),
            }
        }
        self.counters.hits.inc_by(docs.len() as u64);
        self.counters.misses.inc_by(missing.len() as u64);
        let mut refreshed = HashSet::new();
        // Read before the refresh: the cached copies are settled up to here after it. A change
        // above it may commit below a position read now (PostgreSQL), so the next refresh
        // starts from here, not from the last position read.
        // One read for the whole call, cached copies and misses alike (a query on PostgreSQL,
        // none on SQLite).
        let bound = if seqs.is_empty() && missing.is_empty() {
            i64::MAX
        } else {
            db.settled_bound().await?
        };
        for (position, id, bytes) in db.changes_after_each(&seqs).await? {
            if let Some((doc, at)) = docs.get_mut(&id) {
                Arc::make_mut(doc)
                    .load_incremental(&bytes)
                    .map_err(decode_error)?;
                *at = (*at).max(position.min(bound));
                refreshed.insert(id);
            }
        }
        let mut loaded = HashMap::with_capacity(docs.len() + missing.len());
        for (id, (doc, seq)) in docs {
            if refreshed.contains(&id) {
                self.put(&id, Arc::clone(&doc), seq);
            }
            loaded.insert(id, doc);
        }
        // The documents not cached, read in one statement rather than two per document.
        let mut stored = if missing.is_empty() {
            HashMap::new()
        } else {
            db.load_documents(&missing.iter().collect::<Vec<_>>())
                .await?
        };
        for id in missing {
            let doc = match stored.remove(&id) {
                Some(document) => Some(self.cache_stored(&id, document, bound)?),
                None => self.load_imported(db, &id, bound).await?,
            };
            if let Some(doc) = doc {
                loaded.insert(id, doc);
            }
        }
        Ok(loaded)
    }

    /// Adds a sync's stored changes to the cached document: `doc` is the document a write
    /// started from at heads `base`, with its committed changes. If the cached copy is still
    /// at `base`, `doc` replaces it (the common case, at no cost). Otherwise another request
    /// moved the copy meanwhile, and replacing it would drop that request's changes from the
    /// cache (found by `tests/durability.rs`), so the two are merged. `seq` stays: the next
    /// load adds what came after, this request's own changes included, idempotently.
    pub fn store(&self, id: &DocId, base: &[ChangeHash], mut doc: Automerge) {
        self.docs
            .entry_by_ref(id)
            .and_compute_with(|current| match current {
                None => Op::Nop,
                Some(entry) => {
                    let mut cached = entry.into_value();
                    if cached.doc.get_heads() == base {
                        cached.doc = Arc::new(doc);
                        Op::Put(cached)
                    } else if Arc::make_mut(&mut cached.doc).merge(&mut doc).is_ok() {
                        Op::Put(cached)
                    } else {
                        Op::Remove
                    }
                }
            });
    }

    /// Drops a document from the cache: it was archived, and must be as unknown as one that
    /// never existed.
    pub fn remove(&self, id: &DocId) {
        self.docs.invalidate(id);
    }

    fn put(&self, id: &DocId, doc: Arc<Automerge>, seq: i64) {
        self.docs.insert(id.clone(), Cached { doc, seq });
    }
}

fn decode_error(e: tournee_sync_core::automerge::AutomergeError) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}
