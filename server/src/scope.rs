//! What a caller may touch: a postman the documents of the rounds assigned to their device
//! (today ± 1 day), a customer their own delivery points and items, the back office everything.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::validator::{Scope, Sender};

use crate::auth::{Claims, TokenRole};
use crate::db::Database;
use crate::error::ApiError;

/// The rounds a device may work now: yesterday's, today's and tomorrow's (UTC).
pub async fn rounds_now(db: &Database, device: &str) -> Result<Vec<RoundManifest>, ApiError> {
    let today = days_since_epoch();
    let (from, to) = (civil_date(today - 1), civil_date(today + 1));
    Ok(db.rounds_for_device(device, &from, &to).await?)
}

/// The sender sync-core's validator checks changes against.
pub async fn sender(db: &Database, claims: &Claims) -> Result<Sender, ApiError> {
    let scope =
        match claims.role {
            TokenRole::BackOffice => Scope::All,
            TokenRole::Customer => Scope::Documents(
                db.customer_documents(&claims.sub)
                    .await?
                    .into_iter()
                    .collect(),
            ),
            TokenRole::Postman => {
                let device = claims.device.as_deref().unwrap_or_default();
                let mut docs = HashSet::new();
                for round in rounds_now(db, device).await? {
                    if round.postman != claims.sub {
                        continue;
                    }
                    docs.extend(round.documents().map_err(|v| {
                        ApiError::Internal(format!("round {}: {v}", round.round_id))
                    })?);
                }
                Scope::Documents(docs)
            }
        };
    Ok(Sender {
        role: claims.role.role(),
        principal: claims.sub.clone(),
        device: claims.device.clone(),
        scope,
    })
}

/// Days since 1970-01-01 (UTC).
pub fn days_since_epoch() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    i64::try_from(secs / 86_400).unwrap_or_default()
}

/// Now, Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// `YYYY-MM-DD` of a day number (Howard Hinnant's civil-from-days).
pub fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::civil_date;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_780), "2026-11-23");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
