//! Public lookups of an item by what a customer without an account holds: its S10 number or the
//! number printed on the notice card, each with the postcode of the address. One query either
//! way, and the postcode is compared after it, so an unknown number and a wrong postcode cost
//! the same and answer the same (`None`).

use sqlx::Row;

use super::Database;

/// An item with the postcode of its delivery point (the column an import sets, or the last line
/// of its address for points created before postcodes were imported).
const ITEM_WITH_POSTCODE: &str = "SELECT i.id AS item_id, d.postcode AS postcode, d.lines AS lines FROM items i JOIN delivery_points d ON d.id = i.delivery_point_id WHERE i.id = $1";

/// The items a notice number was left for (a number is printed on one card, but nothing in the
/// data forbids a reuse), newest first, bounded; `$1` as typed and `$2` in capitals.
const ITEMS_OF_NOTICE: &str = "SELECT a.item_id AS item_id, d.postcode AS postcode, d.lines AS lines FROM attempts a JOIN items i ON i.id = a.item_id JOIN delivery_points d ON d.id = i.delivery_point_id WHERE a.notice_number IN ($1, $2) ORDER BY a.recorded_at_ms DESC, a.id LIMIT 20";

/// The latest notice number left for an item.
const LATEST_NOTICE: &str = "SELECT notice_number FROM attempts WHERE item_id = $1 AND notice_number IS NOT NULL ORDER BY recorded_at_ms DESC, id DESC LIMIT 1";

/// The postcode of a delivery point: the imported column, else the first five-digit word of the
/// last address line (NF Z10-011 puts "75011 PARIS" there).
fn postcode_of(column: Option<String>, lines: &str) -> Option<String> {
    column.filter(|p| !p.trim().is_empty()).or_else(|| {
        lines
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())?
            .split_whitespace()
            .find(|w| w.len() == 5 && w.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string)
    })
}

impl Database {
    /// The item `s10` if its delivery point's postcode is `postcode`; `None` for an unknown
    /// item and for a wrong postcode alike.
    #[tracing::instrument(name = "sql.track_item", level = "info", skip_all)]
    pub async fn track_item(
        &self,
        s10: &str,
        postcode: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let row = with_pool!(self, pool => {
            sqlx::query(ITEM_WITH_POSTCODE).bind(s10).fetch_optional(pool).await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get::<String, _>("item_id")?, r.try_get::<Option<String>, _>("postcode")?, r.try_get::<String, _>("lines")?)))
                .transpose()?
        });
        Ok(row.and_then(|(item, column, lines)| {
            (postcode_of(column, &lines).as_deref() == Some(postcode)).then_some(item)
        }))
    }

    /// The item a notice card with this number was left for, if its delivery point's postcode
    /// is `postcode`; `None` for an unknown number and a wrong postcode alike.
    #[tracing::instrument(name = "sql.item_of_notice", level = "info", skip_all)]
    pub async fn item_of_notice(
        &self,
        notice: &str,
        postcode: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let rows: Vec<(String, Option<String>, String)> = with_pool!(self, pool => {
            sqlx::query(ITEMS_OF_NOTICE).bind(notice).bind(notice.to_ascii_uppercase()).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((r.try_get("item_id")?, r.try_get("postcode")?, r.try_get("lines")?)))
                .collect::<Result<_, sqlx::Error>>()?
        });
        Ok(rows.into_iter().find_map(|(item, column, lines)| {
            (postcode_of(column, &lines).as_deref() == Some(postcode)).then_some(item)
        }))
    }

    /// The number of the latest notice card left for an item, if any.
    pub async fn latest_notice(&self, item: &str) -> Result<Option<String>, sqlx::Error> {
        with_pool!(self, pool => {
            let row = sqlx::query(LATEST_NOTICE).bind(item).fetch_optional(pool).await?;
            Ok(row.map(|r| r.try_get::<Option<String>, _>("notice_number")).transpose()?.flatten())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::postcode_of;

    #[test]
    fn the_postcode_is_the_column_or_the_last_lines_five_digits() {
        assert_eq!(
            postcode_of(Some("33000".into()), "X\n75011 PARIS").as_deref(),
            Some("33000")
        );
        assert_eq!(
            postcode_of(None, "M OU MME CLIENT 1\n2 RUE DE LA ROQUETTE\n75011 PARIS").as_deref(),
            Some("75011")
        );
        assert_eq!(postcode_of(Some(" ".into()), "CEDEX 12\n").as_deref(), None);
    }
}
