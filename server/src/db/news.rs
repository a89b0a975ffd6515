//! A device's news: the changes stored after its cursor to the documents in its scope, and
//! the changes that refresh cached documents.

use std::collections::{HashMap, HashSet};

use tournee_sync_core::validator::Scope;
use tournee_sync_core::DocId;

use super::{json_ids, Database};

/// The highest sequence number stored.
const MAX_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) AS seq FROM changes";

/// Changes of the documents of a JSON list (`{list}`, `$1`) after `$2`, in order.
const CHANGES_AFTER_EACH: &str =
    "SELECT seq, doc_id, bytes FROM changes WHERE doc_id IN {list} AND seq > $2 ORDER BY seq";

/// Changes in `($1, $2]` to the documents of a JSON list or outside it (`{in_scope}`, `$3`),
/// in order, at most `$4`.
const NEWS_PAGE: &str = "SELECT seq, doc_id, bytes FROM changes \
     WHERE seq > $1 AND seq <= $2 AND {in_scope} ORDER BY seq LIMIT $4";

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
        let sql = CHANGES_AFTER_EACH.replace("{list}", &self.json_list(1));
        let rows: Vec<(i64, String, Vec<u8>)> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(&ids).bind(from).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .filter(|(seq, doc, _)| since.get(doc.as_str()).is_some_and(|s| seq > s))
            .filter_map(|(seq, doc, bytes)| Some((seq, DocId::parse(&doc).ok()?, bytes)))
            .collect())
    }

    /// The highest sequence number stored.
    #[tracing::instrument(name = "sql.max_seq", level = "info", skip_all)]
    pub async fn max_seq(&self) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_scalar(MAX_SEQ).fetch_one(pool).await)
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
        // Writers commit in sequence order (see `commit_sync`), so every change up to the
        // largest visible number is visible: the cursor may pass all of them.
        let upto = self.max_seq().await?;
        self.news_upto(since, upto, scope, skip, max_bytes).await
    }

    /// [`Database::news`] of the changes numbered up to `upto` only. A sync reads `upto` before
    /// it loads the documents of its request; a change stored after that, to one of them, is
    /// then news for the device's next sync rather than skipped by a cursor that passed it.
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
        let in_scope = if wanted.is_some() { "IN" } else { "NOT IN" };
        let in_scope = format!("doc_id {in_scope} {}", self.json_list(3));
        let sql = NEWS_PAGE.replace("{in_scope}", &in_scope);
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
