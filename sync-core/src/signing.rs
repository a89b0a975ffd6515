//! Signed changes: who wrote a change, whoever carries it.
//!
//! Every change a phone makes is signed by its device's key (ECDSA P-256, the curve Android
//! Keystore and the iOS Secure Enclave keep in hardware, behind [`ChangeSigner`] so the private
//! key never leaves them), and every change the server writes is signed by the server's key. A
//! signature covers the document's id, the change's hash (which covers its bytes and its
//! dependencies) and the signer, so it cannot be moved to another document or claimed by another
//! device. Signatures travel beside the changes in sync (wire version 4) and are checked by the
//! validator against the keys the server registered ([`Keyring`]): a record's author is its
//! signer, whoever uploads it, so a relief postman's phone can carry another phone's round, and a
//! phone can give a restored server back the changes the server itself wrote.

use std::collections::HashMap;
use std::fmt;

use automerge::ChangeHash;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::DocId;
use crate::validator::{Role, Sender};

/// What a signature domain starts with: a signature made for anything else never verifies here.
const DOMAIN: &[u8] = b"tournee/change-signature/v1\0";

/// Who signed a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signer {
    /// A registered device, with the key registered for it.
    Device {
        /// The device id.
        device: String,
    },
    /// The server, writing on someone's behalf (a customer's choice, a reviewer's decision).
    Server {
        /// The id of the server key ([`PublicKey::id`]), as published at the well-known route.
        key: String,
        /// The role the server wrote as.
        role: Role,
        /// The customer or staff member it wrote for.
        principal: String,
    },
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Device { device } => write!(f, "device {device}"),
            Signer::Server {
                key,
                role,
                principal,
            } => write!(f, "server key {key} for {} {principal}", role.as_str()),
        }
    }
}

/// One change's signature, as stored beside it and sent with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSignature {
    /// The change's hash (32 bytes).
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
    /// Who signed it.
    pub signer: Signer,
    /// The ECDSA P-256 signature over [`message`], DER or the 64 bytes r‖s.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl ChangeSignature {
    /// The change this signs, if its hash has the right length.
    pub fn change(&self) -> Option<ChangeHash> {
        ChangeHash::try_from(self.hash.as_slice()).ok()
    }
}

/// The bytes a signer signs for change `hash` of document `doc` (SHA-256 is applied by ECDSA).
pub fn message(doc: &DocId, hash: &ChangeHash, signer: &Signer) -> Vec<u8> {
    let mut message = Vec::with_capacity(160);
    message.extend_from_slice(DOMAIN);
    let mut field = |bytes: &[u8]| {
        // Length-prefixed, so no two different inputs give the same message.
        message.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        message.extend_from_slice(bytes);
    };
    field(doc.as_str().as_bytes());
    field(hash.as_ref());
    match signer {
        Signer::Device { device } => {
            field(b"device");
            field(device.as_bytes());
        }
        Signer::Server {
            key,
            role,
            principal,
        } => {
            field(b"server");
            field(key.as_bytes());
            field(role.as_str().as_bytes());
            field(principal.as_bytes());
        }
    }
    message
}

/// Why signing failed: the app's key store refused (locked, key deleted, user not
/// authenticated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the change could not be signed: {reason}")]
pub struct SigningError {
    /// What the key store said.
    pub reason: String,
}

/// A private key that signs changes: the phone's, kept by the app in Android Keystore or the
/// Secure Enclave, or a [`SoftwareKey`].
pub trait ChangeSigner: Send + Sync + fmt::Debug {
    /// Signs `message` with ECDSA P-256 over SHA-256; DER or the 64 bytes r‖s.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError>;
}

/// Why a public or private key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ECDSA P-256 key: {0}")]
pub struct KeyError(pub String);

/// A P-256 private key held in memory: the server's, and the phone's in tests and tools (an app
/// keeps its device key in the platform's key store instead).
#[derive(Clone)]
pub struct SoftwareKey {
    key: SigningKey,
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("SoftwareKey")
            .field("id", &self.public_key().id())
            .finish_non_exhaustive()
    }
}

impl SoftwareKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        loop {
            let mut secret = [0u8; 32];
            rng.fill_bytes(&mut secret);
            // All but a negligible fraction of 32-byte strings are valid scalars.
            if let Ok(key) = SigningKey::from_slice(&secret) {
                return Self { key };
            }
        }
    }

    /// The key from its 32 secret bytes ([`SoftwareKey::secret`]) or a PKCS#8 DER document.
    pub fn from_secret(bytes: &[u8]) -> Result<Self, KeyError> {
        SigningKey::from_slice(bytes)
            .or_else(|_| SigningKey::from_pkcs8_der(bytes))
            .map(|key| Self { key })
            .map_err(|_| KeyError(format!("{} bytes are not a P-256 private key", bytes.len())))
    }

    /// The 32 secret bytes, to keep the key.
    pub fn secret(&self) -> Vec<u8> {
        self.key.to_bytes().to_vec()
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.key.verifying_key())
    }

    /// Signs change `hash` of `doc` as `signer`.
    pub fn sign_change(&self, doc: &DocId, hash: &ChangeHash, signer: Signer) -> ChangeSignature {
        let signature: DerSignature = self.key.sign(&message(doc, hash, &signer));
        ChangeSignature {
            hash: hash.as_ref().to_vec(),
            signer,
            signature: signature.as_bytes().to_vec(),
        }
    }
}

impl ChangeSigner for SoftwareKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let signature: DerSignature = self.key.sign(message);
        Ok(signature.as_bytes().to_vec())
    }
}

/// A P-256 public key: a device's, registered with the server, or one of the server's. Kept as
/// its uncompressed SEC1 point, which `ring` verifies with (p256 parses and checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 65]);

impl PublicKey {
    /// Reads a key as the platforms export it: SEC1 (`04‖x‖y`, or compressed; iOS
    /// `SecKeyCopyExternalRepresentation`) or X.509 SubjectPublicKeyInfo DER (Android
    /// `getEncoded()`).
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        VerifyingKey::from_sec1_bytes(bytes)
            .or_else(|_| VerifyingKey::from_public_key_der(bytes))
            .map(|key| Self::from(&key))
            .map_err(|_| {
                KeyError(format!(
                    "{} bytes are neither a SEC1 point nor a SubjectPublicKeyInfo",
                    bytes.len()
                ))
            })
    }

    /// The key as an uncompressed SEC1 point (65 bytes), as stored and published.
    pub fn to_sec1(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// A short stable id: the first 8 bytes of the SHA-256 of [`PublicKey::to_sec1`], in hex.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.to_sec1());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `signature` (DER or r‖s) signs `message` with this key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED};
        let algorithm = if signature.len() == 64 {
            &ECDSA_P256_SHA256_FIXED
        } else {
            &ECDSA_P256_SHA256_ASN1
        };
        UnparsedPublicKey::new(algorithm, &self.0[..])
            .verify(message, signature)
            .is_ok()
    }
}

impl From<&VerifyingKey> for PublicKey {
    fn from(key: &VerifyingKey) -> Self {
        let mut sec1 = [0u8; 65];
        sec1.copy_from_slice(key.to_encoded_point(false).as_bytes());
        Self(sec1)
    }
}

/// A device that may sign changes, as the server registered it.
#[derive(Debug, Clone)]
pub struct DeviceKey {
    /// Whom its changes are checked as: its postman, with the documents of that postman's rounds.
    pub author: Sender,
    /// Its registered key; `None` when it has registered none (its signatures never verify).
    pub key: Option<PublicKey>,
    /// Revoked: none of its changes is accepted any more, whoever carries them.
    pub revoked: bool,
}

/// The keys a batch's signatures are checked against, prepared by the server.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    /// The devices that signed changes of the batch, by id; a signer absent here is unknown.
    pub devices: HashMap<String, DeviceKey>,
    /// The server's keys, current and past, by id.
    pub server: HashMap<String, PublicKey>,
    /// Refuse unsigned changes from postmen (once every phone of the fleet signs). Otherwise a
    /// push without any signature, from a phone of an older version, is checked as its
    /// uploader's, as before signatures.
    pub require_signatures: bool,
}

/// Why a change's signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The change carries no signature, and the server requires them.
    Missing,
    /// Signed by a device the server does not know, or one with no registered key.
    UnknownSigner,
    /// Signed by a device that was revoked.
    Revoked,
    /// The signature does not verify with the signer's key for this document and change.
    Wrong,
}

impl SignatureProblem {
    /// In words.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureProblem::Missing => "it carries no signature",
            SignatureProblem::UnknownSigner => "its signer has no key registered with the server",
            SignatureProblem::Revoked => "its signer's device was revoked",
            SignatureProblem::Wrong => {
                "its signature does not verify for this document with its signer's key"
            }
        }
    }
}

/// The author a change is checked as, once its signature verified.
#[derive(Debug, Clone)]
pub struct Author {
    /// What the author may write, and where.
    pub sender: Sender,
    /// Whom the author's actors are bound to ([`Sender::owner`], or the server's).
    pub owner: String,
    /// Who signed, when signed.
    pub signer: Option<Signer>,
}

impl Keyring {
    /// The author of change `hash` of `doc`, from its signature: the signer's registered
    /// identity if the signature verifies.
    pub fn author(
        &self,
        doc: &DocId,
        hash: &ChangeHash,
        signature: &ChangeSignature,
    ) -> Result<Author, SignatureProblem> {
        let message = message(doc, hash, &signature.signer);
        match &signature.signer {
            Signer::Device { device } => {
                let known = self
                    .devices
                    .get(device)
                    .ok_or(SignatureProblem::UnknownSigner)?;
                let key = known.key.ok_or(SignatureProblem::UnknownSigner)?;
                if !key.verifies(&message, &signature.signature) {
                    return Err(SignatureProblem::Wrong);
                }
                if known.revoked {
                    return Err(SignatureProblem::Revoked);
                }
                Ok(Author {
                    owner: known.author.owner(),
                    sender: known.author.clone(),
                    signer: Some(signature.signer.clone()),
                })
            }
            Signer::Server {
                key,
                role,
                principal,
            } => {
                let key = self
                    .server
                    .get(key)
                    .ok_or(SignatureProblem::UnknownSigner)?;
                if !key.verifies(&message, &signature.signature) {
                    return Err(SignatureProblem::Wrong);
                }
                Ok(Author {
                    sender: Sender {
                        role: *role,
                        principal: principal.clone(),
                        device: None,
                        scope: crate::validator::Scope::All,
                    },
                    owner: crate::validator::SERVER_OWNER.to_string(),
                    signer: Some(signature.signer.clone()),
                })
            }
        }
    }
}
