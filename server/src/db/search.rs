//! The back office's search: items by S10 number, address, postman, round or day.

use super::{Database, SearchFilter, SearchRow, UpuCode};

/// Items matching every given filter (`$1` S10, `$2` LIKE pattern of the lower-case address,
/// `$3` postman, `$4` round, `$5` day; NULL for any) whose number comes after `$6` (any when
/// NULL), by number, each with the rounds that carry it, latest first, at most `$7` rows.
const SEARCH: &str = "SELECT i.id AS item_id, i.delivery_point_id AS dp, d.lines AS lines, \
     i.status AS status, r.postman AS postman, r.id AS round_id, r.day AS day \
     FROM items i JOIN delivery_points d ON d.id = i.delivery_point_id \
     LEFT JOIN round_stops s ON s.delivery_point_id = i.delivery_point_id \
     AND s.items LIKE '%\"' || i.id || '\"%' \
     LEFT JOIN rounds r ON r.id = s.round_id \
     WHERE ($1 IS NULL OR i.id = $1) AND ($2 IS NULL OR LOWER(d.lines) LIKE $2 ESCAPE '\\') \
     AND ($3 IS NULL OR r.postman = $3) AND ($4 IS NULL OR r.id = $4) \
     AND ($5 IS NULL OR r.day = $5) AND ($6 IS NULL OR i.id > $6) \
     ORDER BY i.id, r.day DESC LIMIT $7";

/// What [`SEARCH`] finds, as stored.
#[derive(Debug, sqlx::FromRow)]
struct Found {
    item_id: String,
    dp: String,
    /// Address lines, one per line.
    lines: String,
    status: UpuCode,
    postman: Option<String>,
    round_id: Option<String>,
    day: Option<String>,
}

impl From<Found> for SearchRow {
    fn from(f: Found) -> Self {
        SearchRow {
            item_id: f.item_id,
            delivery_point_id: f.dp,
            address: f.lines.replace('\n', ", "),
            status: f.status,
            postman: f.postman,
            round_id: f.round_id,
            date: f.day,
        }
    }
}

impl Database {
    /// Rows of the items matching every given filter, by item number, after `f.after`, at
    /// most `limit`.
    pub async fn search(
        &self,
        f: &SearchFilter,
        limit: i64,
    ) -> Result<Vec<SearchRow>, sqlx::Error> {
        let address = f
            .address
            .as_ref()
            .map(|a| format!("%{}%", like_literal(&a.to_lowercase())));
        let found: Vec<Found> = with_pool!(self, pool => {
            sqlx::query_as(SEARCH)
                .bind(&f.s10).bind(&address).bind(&f.postman).bind(&f.round).bind(&f.date)
                .bind(&f.after).bind(limit)
                .fetch_all(pool).await?
        });
        Ok(found.into_iter().map(SearchRow::from).collect())
    }
}

/// `text` for a LIKE pattern with `ESCAPE '\'`: its `%`, `_` and `\` match only themselves.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
