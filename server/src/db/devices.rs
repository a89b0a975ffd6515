//! Postmen's devices: registration, and revocation of every token a device holds.

use super::Database;

/// A device's postman and when it was revoked.
const DEVICE: &str = "SELECT postman, revoked_at FROM devices WHERE id = $1";

/// When a device was revoked.
const REVOKED_AT: &str = "SELECT revoked_at FROM devices WHERE id = $1";

/// Registers a device, unless it is registered.
const REGISTER: &str =
    "INSERT INTO devices (id, postman) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING";

/// Revokes a device, unless it is revoked.
const REVOKE: &str = "UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";

impl Database {
    /// The postman a device is registered to, and whether it is revoked.
    pub async fn device(&self, device: &str) -> Result<Option<(String, bool)>, sqlx::Error> {
        let row: Option<(String, Option<i64>)> = with_pool!(self, pool => {
            sqlx::query_as(DEVICE).bind(device).fetch_optional(pool).await?
        });
        Ok(row.map(|(postman, revoked_at)| (postman, revoked_at.is_some())))
    }

    /// Whether a device's tokens are refused.
    pub async fn device_revoked(&self, device: &str) -> Result<bool, sqlx::Error> {
        let revoked_at: Option<Option<i64>> = with_pool!(self, pool => {
            sqlx::query_scalar(REVOKED_AT).bind(device).fetch_optional(pool).await?
        });
        Ok(revoked_at.flatten().is_some())
    }

    /// Registers a device for a postman (idempotent).
    pub async fn register_device(&self, device: &str, postman: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(REGISTER).bind(device).bind(postman).execute(pool).await?;
            Ok(())
        })
    }

    /// Refuses every token of a device from now on.
    pub async fn revoke_device(&self, device: &str, at_ms: i64) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let done = sqlx::query(REVOKE).bind(device).bind(at_ms).execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
