//! Encryption at rest of the phone store: every log record, `store.cbor`, `manifest.cbor` and
//! every queued proof is sealed with XChaCha20-Poly1305 under a 32-byte key the app keeps in the
//! Android Keystore or the iOS Keychain.
//!
//! A sealed file begins with a **header**: a magic, the store's random id, and a key check (the
//! tag of an empty message under the all-zero nonce, which random nonces never are: it tells
//! nothing of the key but tells a wrong key from damage). Each record is `nonce (24 random bytes) · ciphertext ·
//! tag`, and its associated data binds it to:
//! - the header, hence the **store id**: a record or a log copied from another device's store
//!   does not open, even under the same key;
//! - the **file name** (`item_…log`, `store.cbor`, `<sha256>.photo`…): a record moved into
//!   another document's log does not open; the name survives compaction and atomic replacement
//!   (both write under the same name) and a refused proof's move into `refused/`;
//! - the record's **position** in its log (the header is record 0): records swapped or
//!   replayed within a log do not open. Compaction rewrites a log from position 1.
//!
//! How each failure reads: a header whose key check differs is [`StoreError::WrongKey`] (the
//! very first authenticated thing: the data is intact, the key is not the store's); a header of
//! another store, or a plain file where the store is sealed, is [`StoreError::Foreign`]; a
//! record whose checksum holds but which does not authenticate was altered or moved, which is
//! [`StoreError::Corrupt`]. A torn tail is found by the checksum of the record framing
//! (`record_log.rs`) before any decryption, exactly as in a plain log.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, Generate, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::StoreError;

/// What every sealed file and every sealed log begins with. Its first byte is no record kind,
/// and its first four bytes read as a record length no log allows, so a plain file never
/// begins with it.
const MAGIC: [u8; 8] = [0xff, b'T', b'N', b'S', b'E', b'A', b'L', 1];
const STORE_ID_LEN: usize = 16;
const KEY_CHECK_LEN: usize = 16;
/// The length of a sealed file's header: magic, store id, key check.
pub(crate) const HEADER_LEN: usize = MAGIC.len() + STORE_ID_LEN + KEY_CHECK_LEN;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// What sealing adds to a whole file (`store.cbor`, `manifest.cbor`, a proof).
pub(crate) const FILE_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The key that seals a store: 32 bytes from the Android Keystore or the iOS Keychain (or a
/// key the Keystore wraps). Wiped from memory when dropped; never printed.
#[derive(Clone)]
pub struct StoreKey(Zeroizing<[u8; StoreKey::LEN]>);

impl StoreKey {
    /// A store key is this many bytes long.
    pub const LEN: usize = 32;

    /// A key from its bytes, which must be [`StoreKey::LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; Self::LEN]);
        if bytes.len() != Self::LEN {
            return Err(StoreError::KeyLength { found: bytes.len() });
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(redacted)")
    }
}

/// A store's sealing: its cipher (the key, wiped when dropped) and the header of its files.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
    header: [u8; HEADER_LEN],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id: String = self.store_id().iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("Sealer").field("store_id", &id).finish()
    }
}

/// What a sealed file's header says, read before any decryption.
pub(crate) enum Header<'a> {
    /// The file is not sealed.
    Plain,
    /// A sealed file, with its store id.
    Sealed {
        /// The store that wrote it.
        store_id: [u8; STORE_ID_LEN],
        /// The key check of the key that sealed it.
        key_check: &'a [u8],
    },
    /// It begins like a sealed file but is shorter than a header.
    Short,
}

impl<'a> Header<'a> {
    /// Reads the header at the start of `bytes`.
    pub(crate) fn read(bytes: &'a [u8]) -> Self {
        if !bytes.starts_with(&MAGIC) {
            return Self::Plain;
        }
        if bytes.len() < HEADER_LEN {
            return Self::Short;
        }
        let mut store_id = [0u8; STORE_ID_LEN];
        store_id.copy_from_slice(&bytes[MAGIC.len()..MAGIC.len() + STORE_ID_LEN]);
        Self::Sealed {
            store_id,
            key_check: &bytes[MAGIC.len() + STORE_ID_LEN..HEADER_LEN],
        }
    }
}

impl Sealer {
    /// A new store's sealing, under a fresh random store id.
    pub(crate) fn create(key: &StoreKey, path: &Path) -> Result<Self, StoreError> {
        let store_id = <[u8; STORE_ID_LEN]>::try_generate().map_err(|e| no_randomness(path, e))?;
        Ok(Self::new(key, store_id))
    }

    /// The sealing of the store whose `store.cbor` (sealed) is `bytes`: the key must be the one
    /// that sealed it.
    pub(crate) fn for_store(key: &StoreKey, path: &Path, bytes: &[u8]) -> Result<Self, StoreError> {
        match Header::read(bytes) {
            Header::Sealed {
                store_id,
                key_check,
            } => {
                let sealer = Self::new(key, store_id);
                if key_check == sealer.key_check() {
                    Ok(sealer)
                } else {
                    Err(StoreError::WrongKey {
                        path: path.to_owned(),
                    })
                }
            }
            Header::Plain | Header::Short => Err(StoreError::Corrupt {
                path: path.to_owned(),
                reason: "not a sealed file".into(),
            }),
        }
    }

    fn new(key: &StoreKey, store_id: [u8; STORE_ID_LEN]) -> Self {
        let cipher = XChaCha20Poly1305::new((&*key.0).into());
        // The tag of nothing under the all-zero nonce (a random nonce is never all zeros).
        let check = cipher
            .encrypt(
                &XNonce::default(),
                Payload {
                    msg: b"",
                    aad: b"tournee store key check",
                },
            )
            .unwrap_or_default();
        let mut header = [0u8; HEADER_LEN];
        header[..MAGIC.len()].copy_from_slice(&MAGIC);
        header[MAGIC.len()..MAGIC.len() + STORE_ID_LEN].copy_from_slice(&store_id);
        for (at, byte) in header[MAGIC.len() + STORE_ID_LEN..].iter_mut().zip(check) {
            *at = byte;
        }
        Self { cipher, header }
    }

    fn key_check(&self) -> &[u8] {
        &self.header[HEADER_LEN - KEY_CHECK_LEN..]
    }

    fn store_id(&self) -> &[u8] {
        &self.header[MAGIC.len()..MAGIC.len() + STORE_ID_LEN]
    }

    /// The header every file of this store begins with.
    pub(crate) fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// Checks that a file's header is this store's under this key.
    pub(crate) fn check_header(&self, path: &Path, header: Header<'_>) -> Result<(), StoreError> {
        match header {
            Header::Sealed { store_id, .. } if store_id != self.store_id() => {
                Err(StoreError::Foreign {
                    path: path.to_owned(),
                    reason: "it was sealed by another store (copied from another device?)".into(),
                })
            }
            Header::Sealed { key_check, .. } if key_check != self.key_check() => {
                Err(StoreError::WrongKey {
                    path: path.to_owned(),
                })
            }
            Header::Sealed { .. } => Ok(()),
            Header::Plain => Err(StoreError::Foreign {
                path: path.to_owned(),
                reason: "it is not encrypted, in a store that is".into(),
            }),
            Header::Short => Err(StoreError::Corrupt {
                path: path.to_owned(),
                reason: "its header is cut short".into(),
            }),
        }
    }

    /// Seals record `position` of the file at `path`: nonce, ciphertext, tag.
    pub(crate) fn seal(
        &self,
        path: &Path,
        position: u64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let nonce = XNonce::try_generate().map_err(|e| no_randomness(path, e))?;
        let aad = self.associated_data(path, position);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Corrupt {
                path: path.to_owned(),
                reason: "a record too large to encrypt".into(),
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens record `position` of the file at `path`; `None` if it does not authenticate.
    pub(crate) fn open(&self, path: &Path, position: u64, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        let aad = self.associated_data(path, position);
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
    }

    /// A whole file sealed: header, then one record.
    pub(crate) fn seal_file(&self, path: &Path, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut out = self.header.to_vec();
        out.extend(self.seal(path, 0, plaintext)?);
        Ok(out)
    }

    /// A whole sealed file opened: its header must be this store's under this key, and its
    /// record must authenticate.
    pub(crate) fn open_file(&self, path: &Path, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.check_header(path, Header::read(bytes))?;
        self.open(path, 0, &bytes[HEADER_LEN..])
            .ok_or_else(|| not_authentic(path, "its content"))
    }

    /// Associated data: the header (magic, store id, key check), the file's name, the position.
    fn associated_data(&self, path: &Path, position: u64) -> Vec<u8> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut aad = Vec::with_capacity(HEADER_LEN + 2 + name.len() + 8);
        aad.extend_from_slice(&self.header);
        aad.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
        aad.extend_from_slice(name.as_bytes());
        aad.extend_from_slice(&position.to_le_bytes());
        aad
    }
}

/// The error for a record whose checksum holds but which does not authenticate.
pub(crate) fn not_authentic(path: &Path, what: &str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        reason: format!(
            "{what} does not authenticate: it was altered, or copied from another file or store"
        ),
    }
}

/// Reads a file that may be sealed, with the store's sealing if it has one.
pub(crate) fn open_file(
    sealer: Option<&Sealer>,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    match (sealer, Header::read(&bytes)) {
        (Some(sealer), _) => sealer.open_file(path, &bytes),
        (None, Header::Plain) => Ok(bytes),
        (None, _) => Err(StoreError::KeyRequired {
            path: path.to_owned(),
        }),
    }
}

/// The bytes of a file to write, sealed if the store is.
pub(crate) fn seal_file(
    sealer: Option<&Sealer>,
    path: &Path,
    plaintext: &[u8],
) -> Result<Vec<u8>, StoreError> {
    match sealer {
        Some(sealer) => sealer.seal_file(path, plaintext),
        None => Ok(plaintext.to_vec()),
    }
}

/// Seals a whole plain file atomically; leaves it as it is if it is sealed already.
pub(crate) fn seal_file_in_place(
    path: &Path,
    sealer: &Sealer,
    fsync: bool,
) -> Result<(), StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    if !matches!(Header::read(&bytes), Header::Plain) {
        return Ok(());
    }
    super::atomic::write(path, &sealer.seal_file(path, &bytes)?, fsync)
}

fn no_randomness(path: &Path, e: impl fmt::Display) -> StoreError {
    StoreError::io(
        path,
        std::io::Error::other(format!("the system gave no random bytes: {e}")),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(byte: u8) -> StoreKey {
        StoreKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_record_opens_only_in_its_own_file_position_and_store() {
        let sealer = Sealer::create(&key(1), Path::new("store.cbor")).unwrap();
        let log = Path::new("docs/item_A.log");
        let sealed = sealer.seal(log, 3, b"an attempt").unwrap();
        assert_eq!(sealer.open(log, 3, &sealed).unwrap(), b"an attempt");
        assert_eq!(
            sealer
                .open(Path::new("other/dir/item_A.log"), 3, &sealed)
                .unwrap(),
            b"an attempt",
            "the name binds, not the folder"
        );
        assert!(sealer
            .open(Path::new("docs/item_B.log"), 3, &sealed)
            .is_none());
        assert!(sealer.open(log, 4, &sealed).is_none());
        let other_store = Sealer::create(&key(1), Path::new("store.cbor")).unwrap();
        assert!(other_store.open(log, 3, &sealed).is_none());
        let mut altered = sealed.clone();
        altered[30] ^= 1;
        assert!(sealer.open(log, 3, &altered).is_none());
    }

    #[test]
    fn a_wrong_key_is_told_from_another_store() {
        let path = Path::new("store.cbor");
        let sealer = Sealer::create(&key(1), path).unwrap();
        let file = sealer.seal_file(path, b"meta").unwrap();
        assert!(matches!(
            Sealer::for_store(&key(2), path, &file),
            Err(StoreError::WrongKey { .. })
        ));
        let reopened = Sealer::for_store(&key(1), path, &file).unwrap();
        assert_eq!(reopened.open_file(path, &file).unwrap(), b"meta");
        let other = Sealer::create(&key(1), path).unwrap();
        assert!(matches!(
            other.open_file(path, &file),
            Err(StoreError::Foreign { .. })
        ));
        assert!(matches!(
            open_file(None, path, file),
            Err(StoreError::KeyRequired { .. })
        ));
    }

    #[test]
    fn a_key_never_shows_in_debug_output() {
        let key = StoreKey::from_bytes(&[0xab; 32]).unwrap();
        let sealer = Sealer::create(&key, Path::new("store.cbor")).unwrap();
        assert_eq!(format!("{key:?}"), "StoreKey(redacted)");
        let store_id: String = sealer
            .store_id()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            format!("{sealer:?}"),
            format!("Sealer {{ store_id: \"{store_id}\" }}"),
            "the store id only"
        );
        assert!(matches!(
            StoreKey::from_bytes(&[1; 16]),
            Err(StoreError::KeyLength { found: 16 })
        ));
    }
}
