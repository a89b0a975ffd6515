//! What a caller may touch: a postman the documents of the rounds assigned to their device
//! (today ± 1 day in the service's time zone), a customer their own delivery points and items, the
//! back office everything.

use std::collections::HashSet;

use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::validator::{Scope, Sender};

use crate::auth::{Claims, TokenRole};
use crate::clock::Clock;
use crate::db::Database;
use crate::error::ApiError;

/// The rounds a device may work now: yesterday's, today's and tomorrow's, in the service's time
/// zone.
pub async fn rounds_now(
    db: &Database,
    clock: &Clock,
    device: &str,
) -> Result<Vec<RoundManifest>, ApiError> {
    let (from, to) = (clock.today_plus(-1), clock.today_plus(1));
    Ok(db
        .rounds_for_device(device, &from.to_string(), &to.to_string())
        .await?)
}

/// The sender sync-core's validator checks changes against.
pub async fn sender(db: &Database, clock: &Clock, claims: &Claims) -> Result<Sender, ApiError> {
    let scope = match claims.role {
        TokenRole::BackOffice | TokenRole::Integration => Scope::All,
        TokenRole::Customer => Scope::Documents(
            db.customer_documents(&claims.sub)
                .await?
                .into_iter()
                .collect(),
        ),
        TokenRole::Postman => {
            let device = claims.device.as_deref().unwrap_or_default();
            return postman(db, clock, &claims.sub, device).await;
        }
    };
    Ok(Sender {
        role: claims.role.role(),
        principal: claims.sub.clone(),
        device: claims.device.clone(),
        scope,
    })
}

/// The sender a postman's device is checked as: the documents of the rounds assigned to that
/// device and postman now. The same for the token's own device and for a device whose signed
/// changes another phone carries.
pub async fn postman(
    db: &Database,
    clock: &Clock,
    postman: &str,
    device: &str,
) -> Result<Sender, ApiError> {
    let mut docs = HashSet::new();
    for round in rounds_now(db, clock, device).await? {
        if round.postman != postman {
            continue;
        }
        docs.extend(
            round
                .documents()
                .map_err(|v| ApiError::internal(format!("round {}: {v}", round.round_id)))?,
        );
    }
    Ok(Sender {
        role: tournee_sync_core::validator::Role::Postman,
        principal: postman.to_string(),
        device: Some(device.to_string()),
        scope: Scope::Documents(docs),
    })
}
