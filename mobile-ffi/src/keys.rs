//! The device's signing key. Every change the phone records is signed with it (ECDSA P-256 over
//! SHA-256), so the server and other phones know which device recorded it, whoever carries it.
//! The app keeps the private key in Android Keystore or the iOS Secure Enclave and signs through
//! [`DeviceSigner`]; [`SoftwareKey`] is a key in memory, for tests and the Python tools.

use std::sync::Arc;

use tournee_sync_core::signing::{self, ChangeSigner, SigningError};

use crate::error::TourneeError;

/// Signs with the device's private key, kept by the app's platform. Implement it with
/// Android Keystore (`Signature.getInstance("SHA256withECDSA")` on an EC P-256 key) or the iOS
/// Secure Enclave (`SecKeyCreateSignature` with `.ecdsaSignatureMessageX962SHA256`).
#[uniffi::export(with_foreign)]
pub trait DeviceSigner: Send + Sync {
    /// Signs `message` with ECDSA P-256 over SHA-256 and returns the signature as the platform
    /// gives it (DER, or the 64 bytes r and s). Throw `KeyUnavailable` when the key cannot sign
    /// now (locked, user not authenticated): the interaction is not recorded.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, TourneeError>;
}

/// The app's signer as the core's.
pub(crate) struct ForeignSigner(pub(crate) Arc<dyn DeviceSigner>);

impl std::fmt::Debug for ForeignSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignSigner")
    }
}

impl ChangeSigner for ForeignSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.0.sign(message.to_vec()).map_err(|e| SigningError {
            reason: e.to_string(),
        })
    }
}

/// A P-256 signing key held in memory, for tests and tools (an app keeps its key in the
/// platform's key store and signs through `DeviceSigner`).
#[derive(Debug, uniffi::Object)]
pub struct SoftwareKey {
    pub(crate) key: signing::SoftwareKey,
}

#[uniffi::export]
impl SoftwareKey {
    /// A new random key.
    #[uniffi::constructor]
    pub fn generate() -> Arc<Self> {
        Arc::new(Self {
            key: signing::SoftwareKey::generate(),
        })
    }

    /// The key from its 32 secret bytes (as `secret` gave them).
    #[uniffi::constructor]
    pub fn from_secret(secret: Vec<u8>) -> Result<Arc<Self>, TourneeError> {
        signing::SoftwareKey::from_secret(&secret)
            .map(|key| Arc::new(Self { key }))
            .map_err(|e| TourneeError::InvalidInput {
                field: "secret".into(),
                reason: e.to_string(),
            })
    }

    /// The 32 secret bytes, to keep the key.
    pub fn secret(&self) -> Vec<u8> {
        self.key.secret()
    }

    /// The public key to register with the server (65 bytes: an uncompressed P-256 point).
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().to_sec1()
    }

    /// Signs `message` (DER).
    pub fn sign(&self, message: Vec<u8>) -> Vec<u8> {
        ChangeSigner::sign(&self.key, &message).unwrap_or_default()
    }
}
