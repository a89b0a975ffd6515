//! The server's side of signed changes: its own signing key (created on first start and kept in
//! the database, so every instance on one database and every backup of it has it), which signs
//! every change the server writes on someone's behalf; the keys it publishes; and the keyring a
//! sync's signatures are checked against (the signing devices' registered keys, revocations and
//! scopes, and the server's keys).

use std::collections::HashMap;
use std::sync::RwLock;

use tournee_sync_core::automerge::ChangeHash;
use tournee_sync_core::signing::{
    ChangeSignature, DeviceKey, Keyring, PublicKey, Signer, SoftwareKey,
};
use tournee_sync_core::sync::{pushed_signatures, signers, wire::SyncRequest};
use tournee_sync_core::validator::{Role, Sender};
use tournee_sync_core::DocId;

use crate::clock::Clock;
use crate::db::Database;
use crate::error::ApiError;
use crate::scope;

/// The server's signing key and every server key its database holds.
#[derive(Debug)]
pub struct ServerSigning {
    key: SoftwareKey,
    id: String,
    /// Every server key by id (past ones verify what they signed), refreshed when a signature
    /// names one not seen yet (another instance's, or one rotated in).
    published: RwLock<HashMap<String, PublicKey>>,
}

impl ServerSigning {
    /// The database's signing key, created on first start. Instances starting together on a new
    /// database may each create one: each signs with the oldest, and all are published.
    pub async fn load(db: &Database, now_ms: i64) -> Result<Self, String> {
        if db
            .server_keys()
            .await
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            let key = SoftwareKey::generate();
            let public = key.public_key();
            db.insert_server_key(&public.id(), &key.secret(), &public.to_sec1(), now_ms)
                .await
                .map_err(|e| e.to_string())?;
        }
        let rows = db.server_keys().await.map_err(|e| e.to_string())?;
        let oldest = rows.last().ok_or("no signing key was kept")?;
        let key = SoftwareKey::from_secret(&oldest.secret)
            .map_err(|e| format!("server key {}: {e}", oldest.id))?;
        let id = key.public_key().id();
        let signing = Self {
            key,
            id,
            published: RwLock::new(HashMap::new()),
        };
        signing.remember(&rows);
        Ok(signing)
    }

    fn remember(&self, rows: &[crate::db::ServerKeyRow]) {
        let mut published = self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for row in rows {
            if let Ok(key) = PublicKey::parse(&row.public_key) {
                published.insert(row.id.clone(), key);
            }
        }
    }

    /// The id of the key the server signs with.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// Signs change `hash` of `doc`, written by the server as `role` for `principal`.
    pub fn sign(
        &self,
        doc: &DocId,
        hash: &ChangeHash,
        role: Role,
        principal: &str,
    ) -> ChangeSignature {
        let signer = Signer::Server {
            key: self.id.clone(),
            role,
            principal: principal.to_string(),
        };
        self.key.sign_change(doc, hash, signer)
    }

    /// Every server key, by id.
    pub fn published(&self) -> HashMap<String, PublicKey> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The server keys, reading them again from the database when `wanted` names one not seen.
    async fn server_keys(
        &self,
        db: &Database,
        wanted: &[String],
    ) -> Result<HashMap<String, PublicKey>, sqlx::Error> {
        let known = self.published();
        if wanted.iter().all(|id| known.contains_key(id)) {
            return Ok(known);
        }
        self.remember(&db.server_keys().await?);
        Ok(self.published())
    }
}

/// The keyring a sync's pushed signatures are checked against: every signing device's key,
/// revocation and author (its postman, with the documents of that postman's rounds on that
/// device), and the server's keys.
pub async fn keyring(
    db: &Database,
    clock: &Clock,
    signing: &ServerSigning,
    request: &SyncRequest,
    uploader: &Sender,
    require_signatures: bool,
) -> Result<Keyring, ApiError> {
    let devices = signers(request);
    let ids: Vec<&str> = devices.iter().map(String::as_str).collect();
    let mut keyring = Keyring {
        require_signatures,
        ..Keyring::default()
    };
    for row in db.device_keys(&ids).await? {
        // The uploader's own device (the usual signer) was scoped already, from its token.
        let author = match uploader.device.as_deref() {
            Some(device) if device == row.id && uploader.principal == row.postman => {
                uploader.clone()
            }
            _ => scope::postman(db, clock, &row.postman, &row.id).await?,
        };
        let key = row
            .signing_key
            .as_deref()
            .and_then(|k| PublicKey::parse(k).ok());
        keyring.devices.insert(
            row.id,
            DeviceKey {
                author,
                key,
                revoked: row.revoked_at.is_some(),
            },
        );
    }
    let server_ids: Vec<String> = pushed_signatures(request)
        .filter_map(|s| match &s.signer {
            Signer::Server { key, .. } => Some(key.clone()),
            Signer::Device { .. } => None,
        })
        .collect();
    keyring.server = signing.server_keys(db, &server_ids).await?;
    Ok(keyring)
}
