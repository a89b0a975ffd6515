//! Signing keys over HTTP: the server's public keys, published for whoever checks a change's
//! signature (another phone, an auditor, a court), and the enrollment of a device's key by the
//! device itself.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tournee_sync_core::signing::PublicKey;

use crate::auth::AuthUser;
use crate::db::KeyRegistration;
use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::AppState;

/// The server's signing keys.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerKeys {
    /// Every key the server signed or signs with; past ones verify what they signed.
    pub keys: Vec<ServerKey>,
}

/// One server key.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerKey {
    /// The id a server signature names (`signer.server.key`).
    pub id: String,
    /// Always `ES256`: ECDSA on P-256 over SHA-256.
    pub algorithm: &'static str,
    /// The public key, an uncompressed SEC1 point (65 bytes), base64url without padding.
    pub public_key: String,
    /// Whether the server signs with it now.
    pub current: bool,
}

/// A device's public key to register.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyEnrollment {
    /// The device's P-256 public key, base64 or base64url: a SEC1 point (iOS
    /// `SecKeyCopyExternalRepresentation`) or an X.509 SubjectPublicKeyInfo (Android
    /// `PublicKey.getEncoded()`).
    pub public_key: String,
}

/// The registered key.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KeyEnrolled {
    /// The device.
    pub device: String,
    /// The key's id.
    pub key_id: String,
}

/// `GET /.well-known/tournee-signing-keys`.
pub async fn server_keys(State(app): State<Arc<AppState>>) -> Json<ServerKeys> {
    let current = app.signing.key_id().to_string();
    let mut keys: Vec<ServerKey> = app
        .signing
        .published()
        .into_iter()
        .map(|(id, key)| ServerKey {
            current: id == current,
            id,
            algorithm: "ES256",
            public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_sec1()),
        })
        .collect();
    keys.sort_by(|a, b| b.current.cmp(&a.current).then(a.id.cmp(&b.id)));
    Json(ServerKeys { keys })
}

/// `PUT /v1/devices/signing-key`: the caller's device registers its key, once. A device that has
/// a key keeps it: only the back office replaces it.
pub async fn enroll(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    JsonBody(request): JsonBody<KeyEnrollment>,
) -> Result<(StatusCode, Json<KeyEnrolled>), ApiError> {
    let device = claims
        .device
        .clone()
        .ok_or_else(|| ApiError::forbidden("no_device", "this token names no device"))?;
    let bytes = decode_base64(&request.public_key).ok_or_else(|| {
        ApiError::unprocessable("invalid_key", "public_key is not base64").field("public_key")
    })?;
    let key = PublicKey::parse(&bytes)
        .map_err(|e| ApiError::unprocessable("invalid_key", e.to_string()).field("public_key"))?;
    let status = match app
        .db
        .register_device_key(&device, &key, app.clock.now_ms())
        .await?
    {
        KeyRegistration::Registered => StatusCode::CREATED,
        KeyRegistration::Unchanged => StatusCode::OK,
        KeyRegistration::HasAnother => {
            return Err(ApiError::conflict(
                "key_already_registered",
                "this device has another key registered; the back office replaces it",
            ))
        }
        KeyRegistration::UnknownDevice => {
            return Err(ApiError::forbidden(
                "unknown_device",
                "this device is not registered, or is revoked",
            ))
        }
    };
    tracing::info!(device = %device, key = %key.id(), "device key registered");
    Ok((
        status,
        Json(KeyEnrolled {
            device,
            key_id: key.id(),
        }),
    ))
}

/// Base64 with or without padding, standard or URL-safe alphabet.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}
