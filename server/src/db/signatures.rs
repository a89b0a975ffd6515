//! Signed changes' storage: the server's signing keys, the keys devices registered, and the
//! signature kept beside every stored change (written by `commit.rs` in the transaction that
//! stores the change).

use std::collections::HashMap;

use tournee_sync_core::signing::{ChangeSignature, PublicKey, Signer};
use tournee_sync_core::DocId;

use super::Database;

/// The server's keys, newest first.
const SERVER_KEYS: &str = "SELECT id, secret, public_key FROM server_keys ORDER BY created_ms DESC";
/// Keeps a new server key (a key with this id kept already stays).
const INSERT_SERVER_KEY: &str = "INSERT INTO server_keys (id, secret, public_key, created_ms) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING";
/// The devices among `$1` (a JSON list; `{in_list}`): postman, revocation and key.
const DEVICE_KEYS: &str =
    "SELECT id, postman, revoked_at, signing_key FROM devices WHERE id {in_list}";
/// Registers a device's key unless it has one.
const REGISTER_KEY: &str = "UPDATE devices SET signing_key = $2, key_registered_at_ms = $3 \
     WHERE id = $1 AND signing_key IS NULL AND revoked_at IS NULL";
/// A device's key.
const DEVICE_KEY: &str = "SELECT signing_key, revoked_at FROM devices WHERE id = $1";
/// Signatures of the changes of the documents among `$1` (a JSON list; `{in_list}`).
const SIGNATURES_OF: &str =
    "SELECT doc_id, hash, signer, signature FROM change_signatures WHERE doc_id {in_list}";
/// Stores signatures: the head of a multi-row insert.
pub(super) const INSERT_SIGNATURES: &str =
    "INSERT INTO change_signatures (doc_id, hash, signer, signature) ";
/// The tail of [`INSERT_SIGNATURES`]: a change's first stored signature stays.
pub(super) const INSERT_SIGNATURES_TAIL: &str = " ON CONFLICT (doc_id, hash) DO NOTHING";

/// A server key as kept: its id, secret and public key.
#[derive(Debug, sqlx::FromRow)]
pub struct ServerKeyRow {
    /// The key's id ([`PublicKey::id`]).
    pub id: String,
    /// Its 32 secret bytes.
    pub secret: Vec<u8>,
    /// Its public key, SEC1.
    pub public_key: Vec<u8>,
}

/// A device as the keyring needs it.
#[derive(Debug, sqlx::FromRow)]
pub struct DeviceKeyRow {
    /// The device id.
    pub id: String,
    /// Its postman.
    pub postman: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Its registered key (SEC1), if any.
    pub signing_key: Option<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
struct SignatureRow {
    doc_id: String,
    hash: Vec<u8>,
    signer: String,
    signature: Vec<u8>,
}

/// What registering a device's key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRegistration {
    /// The key is the device's now.
    Registered,
    /// The device had this very key already.
    Unchanged,
    /// The device has another key: only the back office replaces it (re-import the device).
    HasAnother,
    /// No such device, or it is revoked.
    UnknownDevice,
}

/// A signer as stored: JSON, the wire's own naming.
pub fn signer_text(signer: &Signer) -> String {
    serde_json::to_string(signer).unwrap_or_default()
}

impl Database {
    /// The server's keys, newest first.
    pub async fn server_keys(&self) -> Result<Vec<ServerKeyRow>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as(SERVER_KEYS).fetch_all(pool).await)
    }

    /// Keeps a new server key.
    pub async fn insert_server_key(
        &self,
        id: &str,
        secret: &[u8],
        public_key: &[u8],
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(INSERT_SERVER_KEY)
                .bind(id).bind(secret).bind(public_key).bind(now_ms)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// The devices among `ids` with their postman, revocation and key.
    pub async fn device_keys(&self, ids: &[&str]) -> Result<Vec<DeviceKeyRow>, sqlx::Error> {
        self.fetch_in(DEVICE_KEYS, ids).await
    }

    /// Registers `key` as the device's signing key, unless it has one.
    pub async fn register_device_key(
        &self,
        device: &str,
        key: &PublicKey,
        now_ms: i64,
    ) -> Result<KeyRegistration, sqlx::Error> {
        let sec1 = key.to_sec1();
        with_pool!(self, pool => {
            let done = sqlx::query(REGISTER_KEY)
                .bind(device).bind(&sec1).bind(now_ms)
                .execute(pool).await?;
            if done.rows_affected() > 0 {
                return Ok(KeyRegistration::Registered);
            }
            let row: Option<(Option<Vec<u8>>, Option<i64>)> =
                sqlx::query_as(DEVICE_KEY).bind(device).fetch_optional(pool).await?;
            Ok(match row {
                None | Some((_, Some(_))) => KeyRegistration::UnknownDevice,
                Some((Some(held), None)) if held == sec1 => KeyRegistration::Unchanged,
                Some(_) => KeyRegistration::HasAnother,
            })
        })
    }

    /// The signatures held of the changes of `docs`, per document.
    pub async fn signatures_of(
        &self,
        docs: &[DocId],
    ) -> Result<HashMap<DocId, Vec<ChangeSignature>>, sqlx::Error> {
        let ids: Vec<&str> = docs.iter().map(DocId::as_str).collect();
        let rows: Vec<SignatureRow> = self.fetch_in(SIGNATURES_OF, &ids).await?;
        let mut held: HashMap<DocId, Vec<ChangeSignature>> = HashMap::new();
        for row in rows {
            // A row that does not read (a signer of a later version) is not sent on.
            let (Ok(doc), Ok(signer)) = (
                DocId::parse(&row.doc_id),
                serde_json::from_str::<Signer>(&row.signer),
            ) else {
                continue;
            };
            held.entry(doc).or_default().push(ChangeSignature {
                hash: row.hash,
                signer,
                signature: row.signature,
            });
        }
        Ok(held)
    }
}
