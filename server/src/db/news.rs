//! A device's news: the changes stored after its cursor to the documents in its scope, and
//! the changes that refresh cached documents.

use std::collections::{HashMap, HashSet};

use tournee_sync_core::validator::Scope;
use tournee_sync_core::DocId;

use super::{json_ids, Database};

/// The cursor bound on SQLite: the highest position given out, since changes commit in position
/// order there (AUTOINCREMENT's high-water mark: it never goes back, even when the change log
/// is pruned).
const BOUND_SQLITE: &str =
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)";

/// The highest position stored.
const MAX_POSITION: &str = "SELECT COALESCE(MAX({position}), 0) FROM changes";

/// The cursor bound on PostgreSQL: every position below the oldest transaction still running
/// that could write here (`oldest_running_here!`) is settled.
const BOUND_POSTGRES: &str = concat!("SELECT (", oldest_running_here!(), " << 20) - 1");

/// Changes of the documents of a JSON list (`{in_list}`, `$1`) after `$2`, in order.
const CHANGES_AFTER_EACH: &str =
    "SELECT {position}, doc_id, bytes FROM changes WHERE doc_id {in_list} AND {position} > $2 \
     ORDER BY {position}";

/// Changes in `($1, $2]` to the documents of a JSON list or outside it (`{in_scope}`, `$3`),
/// in order, at most `$4`.
const NEWS_PAGE: &str = "SELECT {position}, doc_id, bytes FROM changes \
     WHERE {position} > $1 AND {position} <= $2 AND {in_scope} ORDER BY {position} LIMIT $4";

/// [`NEWS_PAGE`] for the documents of a JSON list (`$3`) on PostgreSQL: one index seek per
/// document (`changes_by_doc_position`), then the first `$4` by position. The plain `IN` form
/// lets the planner walk every change in the range by position and compare each with the whole
/// list (a nested loop over the list, not a seek): while a storm commits, the statistics lag the
/// new changes, the range looks small, and a sync read 8,000 changes × 50 documents (92 ms) to
/// find none. Per document, the cost is the scope's size, whatever the range (BENCHMARKS.md).
const NEWS_PAGE_OF_DOCUMENTS_POSTGRES: &str = "SELECT c.position, c.doc_id, c.bytes \
     FROM (SELECT DISTINCT json_array_elements_text($3::json) AS id) AS d \
     CROSS JOIN LATERAL (SELECT position, doc_id, bytes FROM changes \
     WHERE doc_id = d.id AND position > $1 AND position <= $2 ORDER BY position LIMIT $4) AS c \
     ORDER BY c.position LIMIT $4";

/// Rows of news read in one query.
const NEWS_PAGE_ROWS: i64 = 2_000;

/// Changes a device has not seen.
#[derive(Debug, Default)]
pub struct NewsRows {
    /// `(seq, doc, change bytes)` in sequence order.
    pub rows: Vec<(i64, DocId, Vec<u8>)>,
    /// The cursor covering what was returned.
    pub cursor: i64,
    /// More is waiting.
    pub more: bool,
}

impl Database {
    /// Changes of several documents, each after its own sequence number, in one query (to
    /// refresh cached copies): `(seq, doc, bytes)` in sequence order.
    #[tracing::instrument(name = "sql.changes_after_each", level = "info", skip_all)]
    pub async fn changes_after_each(
        &self,
        after: &[(DocId, i64)],
    ) -> Result<Vec<(i64, DocId, Vec<u8>)>, sqlx::Error> {
        let Some(from) = after.iter().map(|(_, seq)| *seq).min() else {
            return Ok(Vec::new());
        };
        let since: HashMap<&str, i64> = after.iter().map(|(id, seq)| (id.as_str(), *seq)).collect();
        let ids = json_ids(&since.keys().collect::<Vec<_>>());
        let sql = self.positioned(&CHANGES_AFTER_EACH.replace("{in_list}", &self.in_list(1)));
        let rows: Vec<(i64, String, Vec<u8>)> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(&ids).bind(from).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .filter(|(seq, doc, _)| since.get(doc.as_str()).is_some_and(|s| seq > s))
            .filter_map(|(seq, doc, bytes)| Some((seq, DocId::parse(&doc).ok()?, bytes)))
            .collect())
    }

    /// The cursor bound: every change at a position up to it is visible, and none can still
    /// appear there. Readers of the change log (devices' news, cached documents) read up to it,
    /// so writers need no lock shared by every instance: on PostgreSQL a transaction that
    /// commits late holds back the bound until it ends, rather than being passed by it.
    #[tracing::instrument(name = "sql.cursor_bound", level = "info", skip_all)]
    pub async fn cursor_bound(&self) -> Result<i64, sqlx::Error> {
        match self {
            Database::Sqlite(pool) => sqlx::query_scalar(BOUND_SQLITE).fetch_one(pool).await,
            Database::Postgres(pool) => sqlx::query_scalar(BOUND_POSTGRES).fetch_one(pool).await,
        }
    }

    /// The highest position stored. Not a cursor on PostgreSQL, where a transaction still
    /// running may store below it: readers use [`Database::cursor_bound`].
    pub async fn max_position(&self) -> Result<i64, sqlx::Error> {
        let sql = self.positioned(MAX_POSITION);
        with_pool!(self, pool => sqlx::query_scalar(&sql).fetch_one(pool).await)
    }

    /// What a reader of the change log may consider read up to, after reading: every change up to
    /// it is visible to a read that starts now. [`Database::cursor_bound`] on PostgreSQL; on
    /// SQLite, where changes commit in position order, every position is (no query).
    pub async fn settled_bound(&self) -> Result<i64, sqlx::Error> {
        match self {
            Database::Sqlite(_) => Ok(i64::MAX),
            Database::Postgres(_) => self.cursor_bound().await,
        }
    }

    /// Changes after `since` to documents in `scope` other than `skip`, up to about `max_bytes`.
    ///
    /// The database does the filtering: a device's news reads the changes of its own documents
    /// (through `changes_by_doc`), not every change stored since its cursor. When everything
    /// fitted, the cursor covers the whole log as it was when the read began, in scope or not.
    pub async fn news(
        &self,
        since: i64,
        scope: &Scope,
        skip: &HashSet<DocId>,
        max_bytes: usize,
    ) -> Result<NewsRows, sqlx::Error> {
        let upto = self.cursor_bound().await?;
        self.news_upto(since, upto, scope, skip, max_bytes).await
    }

    /// [`Database::news`] of the changes positioned up to `upto` only (a [`Database::cursor_bound`]).
    /// A sync reads `upto` before it loads the documents of its request; a change stored after
    /// that, to one of them, is then news for the device's next sync rather than skipped by a
    /// cursor that passed it.
    #[tracing::instrument(name = "sql.news_upto", level = "info", skip_all)]
    pub async fn news_upto(
        &self,
        since: i64,
        upto: i64,
        scope: &Scope,
        skip: &HashSet<DocId>,
        max_bytes: usize,
    ) -> Result<NewsRows, sqlx::Error> {
        let mut news = NewsRows {
            cursor: since,
            ..Default::default()
        };
        let wanted = match scope {
            Scope::All => None,
            Scope::Documents(ids) => Some(json_ids(
                &ids.iter()
                    .filter(|id| !skip.contains(id))
                    .map(DocId::as_str)
                    .collect::<Vec<_>>(),
            )),
        };
        let skipped = json_ids(&skip.iter().map(DocId::as_str).collect::<Vec<_>>());
        let sql = match (self, wanted.is_some()) {
            (Database::Postgres(_), true) => NEWS_PAGE_OF_DOCUMENTS_POSTGRES.to_string(),
            (_, listed) => {
                let in_scope = if listed {
                    self.in_list(3)
                } else {
                    self.not_in_list(3)
                };
                let in_scope = format!("doc_id {in_scope}");
                self.positioned(&NEWS_PAGE.replace("{in_scope}", &in_scope))
            }
        };
        let documents = wanted.unwrap_or(skipped);
        let mut size = 0;
        loop {
            let page: Vec<(i64, String, Vec<u8>)> = with_pool!(self, pool => {
                sqlx::query_as(&sql)
                    .bind(news.cursor).bind(upto).bind(&documents).bind(NEWS_PAGE_ROWS)
                    .fetch_all(pool).await?
            });
            let full = page.len() as i64 == NEWS_PAGE_ROWS;
            for (seq, doc, bytes) in page {
                let Ok(doc) = DocId::parse(&doc) else {
                    news.cursor = seq;
                    continue;
                };
                if size + bytes.len() > max_bytes && size > 0 {
                    news.more = true;
                    return Ok(news);
                }
                size += bytes.len();
                news.cursor = seq;
                news.rows.push((seq, doc, bytes));
            }
            if !full {
                news.cursor = news.cursor.max(upto);
                return Ok(news);
            }
        }
    }
}
