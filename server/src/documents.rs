//! The server's documents in memory: a bounded cache in front of the database.
//!
//! A sync prepares everything it reads from here and the database before validating
//! (`sync_api::prepare`), runs the CPU-bound protocol on a blocking thread without touching
//! either, and commits what was accepted through the write pipeline afterwards. The cache is only
//! a copy: every load adds the changes other instances stored since, so several servers on one
//! PostgreSQL stay correct.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use tournee_sync_core::automerge::{Automerge, ChangeHash};
use tournee_sync_core::DocId;

use crate::db::Database;
use crate::metrics::CacheCounters;

struct Cached {
    /// Shared with the syncs reading it: a sync forks it, never copies it first.
    doc: Arc<Automerge>,
    /// Every change with a sequence number up to this is in `doc`.
    seq: i64,
}

/// A bounded cache of materialised documents.
pub struct DocumentCache {
    docs: Mutex<LruCache<DocId, Cached>>,
    counters: CacheCounters,
}

impl DocumentCache {
    /// A cache of at most `capacity` documents, counting its hits, misses and evictions.
    pub fn new(capacity: usize, counters: CacheCounters) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            docs: Mutex::new(LruCache::new(capacity)),
            counters,
        }
    }

    /// How many documents the cache holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current document, from the cache refreshed with newer changes, or from the database.
    pub async fn load(&self, db: &Database, id: &DocId) -> Result<Option<Automerge>, sqlx::Error> {
        Ok(self
            .load_many(db, [id])
            .await?
            .remove(id)
            .map(Arc::unwrap_or_clone))
    }

    /// A document not in the cache: its snapshot and later changes, cached.
    async fn load_stored(
        &self,
        db: &Database,
        id: &DocId,
    ) -> Result<Option<Arc<Automerge>>, sqlx::Error> {
        let stored = match db.load_document(id).await? {
            Some(stored) => stored,
            // Loaded by an import and not materialised yet: built from its import line now,
            // the same bytes whichever instance builds it (`import::materialize`).
            None => match crate::import::materialize(db, id).await? {
                None => return Ok(None),
                Some(doc) => {
                    db.insert_document(id, &doc.save_nocompress()).await?;
                    let Some(stored) = db.load_document(id).await? else {
                        return Ok(None);
                    };
                    stored
                }
            },
        };
        let mut doc = Automerge::load(&stored.snapshot).map_err(decode_error)?;
        let mut seq = 0;
        for (s, bytes) in stored.changes {
            doc.load_incremental(&bytes).map_err(decode_error)?;
            seq = s;
        }
        let doc = Arc::new(doc);
        self.put(id, Arc::clone(&doc), seq);
        Ok(Some(doc))
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
        {
            let mut cache = self.lock();
            for id in ids {
                match cache.get(id) {
                    Some(cached) => {
                        seqs.push((id.clone(), cached.seq));
                        docs.insert(id.clone(), (Arc::clone(&cached.doc), cached.seq));
                    }
                    None => missing.push(id.clone()),
                }
            }
        }
        self.counters.hits.inc_by(docs.len() as u64);
        self.counters.misses.inc_by(missing.len() as u64);
        let mut refreshed = HashSet::new();
        for (seq, id, bytes) in db.changes_after_each(&seqs).await? {
            if let Some((doc, at)) = docs.get_mut(&id) {
                Arc::make_mut(doc)
                    .load_incremental(&bytes)
                    .map_err(decode_error)?;
                *at = seq;
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
        for id in missing {
            if let Some(doc) = self.load_stored(db, &id).await? {
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
        let mut docs = self.lock();
        if let Some(cached) = docs.get_mut(id) {
            if cached.doc.get_heads() == base {
                cached.doc = Arc::new(doc);
            } else if Arc::make_mut(&mut cached.doc).merge(&mut doc).is_err() {
                docs.pop(id);
            }
        }
    }

    fn put(&self, id: &DocId, doc: Arc<Automerge>, seq: i64) {
        let pushed_out = self.lock().push(id.clone(), Cached { doc, seq });
        if pushed_out.is_some_and(|(old, _)| old != *id) {
            self.counters.evictions.inc();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<DocId, Cached>> {
        // A panic while holding the lock leaves a cache that is still a valid cache.
        self.docs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn decode_error(e: tournee_sync_core::automerge::AutomergeError) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}
