//! Checksums of what crosses the network. Automerge does not check them everywhere:
//! `Change::from_bytes` not at all, and `load_incremental` skips a chunk whose checksum fails
//! with nothing but a log line. Both ends check every change and chunk here first, so one
//! altered on the way is refused rather than taken for a new change or silently dropped.

use automerge::Change;
use sha2::{Digest, Sha256};

/// Parses a change and checks it against its own checksum: `Change::from_bytes` does not, so a
/// change altered in transit would otherwise be taken for a new change of the same actor and
/// sequence number, and the genuine one refused after it.
pub fn parse_change(bytes: &[u8]) -> Result<Change, String> {
    let change = contained(|| Change::from_bytes(bytes.to_vec()))
        .map_err(|()| "a change could not be read".to_string())?
        .map_err(|e| format!("a change does not parse: {e}"))?;
    // Magic (4 bytes), then the first 4 bytes of the SHA-256 the change's hash is: for a
    // compressed chunk too, since its checksum is the uncompressed change's.
    let declared = bytes.get(4..8);
    if declared != Some(&change.hash().0[..4]) {
        return Err(format!(
            "change {} does not match its checksum: it was altered or damaged",
            change.hash()
        ));
    }
    Ok(change)
}

/// Runs `f`, turning a panic inside it into `Err(())`. Only for work on data that a panic
/// cannot leave half-changed (parsing, or a fork that is thrown away).
pub(crate) fn contained<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        tracing::warn!("automerge panicked on a change; the document is refused");
    })
}

/// Checks a chunk received from the server (a saved document, or a change, compressed or not)
/// against its checksum: the first four bytes of the SHA-256 of the chunk from its type byte on.
pub fn check_chunk(bytes: &[u8]) -> Result<(), String> {
    // Magic (4 bytes), checksum (4), chunk type (1): 0 a document, 1 a change, 2 a compressed
    // change (whose checksum is the uncompressed change's: `parse_change` checks it).
    match bytes.get(8) {
        Some(0) => {
            let sum = Sha256::digest(&bytes[8..]);
            if bytes[4..8] == sum[..4] {
                Ok(())
            } else {
                Err("a document does not match its checksum: it was altered or damaged".into())
            }
        }
        Some(1 | 2) => parse_change(bytes).map(drop),
        _ => Err("not an Automerge chunk".into()),
    }
}
