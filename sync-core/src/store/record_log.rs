//! An append-only file of checksummed records: the unit of crash safety of the phone store.
//!
//! Each record is `[len: u32 LE][crc32: u32 LE][body]`, where `len` counts the body and the CRC
//! covers it. A record is committed once `append` returned (the file is fsynced). A crash
//! mid-append leaves a torn tail — a header or body cut short, or a last record whose checksum
//! fails — which opening truncates away: it was never committed. A bad record followed by more
//! data cannot come from a torn append, so it is reported as corruption instead of being
//! silently dropped.
//!
//! In a plain log a body is `[kind: u8][payload]`. In a sealed log (`sealed.rs`) the first
//! record's body is the store's sealed header, written with the first append, and every other
//! body is `kind · payload` sealed for its position in the log. The checksum framing is the
//! same, so a torn tail is found and dropped exactly as in a plain log, before any decryption;
//! a record whose checksum holds but which does not authenticate was altered, never torn.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::sealed::{self, Header, Sealer};
use super::StoreError;

const HEADER: usize = 9;
/// No record is larger than this; a length above it is damage, not data.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// One record read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What the payload is; the store defines the kinds.
    pub kind: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// An open record log.
#[derive(Debug)]
pub struct RecordLog {
    path: PathBuf,
    file: File,
    len: u64,
    /// Records in the file, a sealed log's header included: the position of the next one.
    records: u64,
    fsync: bool,
    sealer: Option<Arc<Sealer>>,
}

impl RecordLog {
    /// Opens (or creates) the log at `path`, returning its committed records. A torn tail is
    /// truncated; damage before the tail is an error. With a `sealer`, the log must be sealed by
    /// this store under this key (or empty); without one, it must be plain.
    pub(crate) fn open(
        path: &Path,
        sealer: Option<Arc<Sealer>>,
        fsync: bool,
    ) -> Result<(Self, Vec<Record>), StoreError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::io(path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| StoreError::io(path, e))?;
        let (bodies, good) = parse(&bytes).map_err(|offset| StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("damaged record at byte {offset}, followed by more data"),
        })?;
        let records = read_records(path, sealer.as_deref(), &bodies)?;
        if good < bytes.len() {
            tracing::warn!(path = %path.display(), kept = good, dropped = bytes.len() - good, "truncating a torn write");
            file.set_len(good as u64)
                .map_err(|e| StoreError::io(path, e))?;
            if fsync {
                file.sync_all().map_err(|e| StoreError::io(path, e))?;
            }
        }
        file.seek(SeekFrom::Start(good as u64))
            .map_err(|e| StoreError::io(path, e))?;
        let log = Self {
            path: path.to_owned(),
            file,
            len: good as u64,
            records: bodies.len() as u64,
            fsync,
            sealer,
        };
        Ok((log, records))
    }

    /// Makes the plain log at `path` a sealed one, atomically (a crash leaves it plain or
    /// sealed); a torn tail is dropped on the way, as opening would. A log sealed already (by
    /// a sealing a crash interrupted) is left as it is: opening the store checks it.
    pub(crate) fn seal_in_place(
        path: &Path,
        sealer: Arc<Sealer>,
        fsync: bool,
    ) -> Result<(), StoreError> {
        let (mut log, records) = match Self::open(path, None, fsync) {
            Err(StoreError::KeyRequired { .. }) => return Ok(()),
            opened => opened?,
        };
        log.sealer = Some(sealer);
        let records: Vec<(u8, &[u8])> = records
            .iter()
            .map(|r| (r.kind, r.payload.as_slice()))
            .collect();
        log.rewrite(&records)
    }

    /// Appends records and makes them durable before returning.
    pub fn append(&mut self, records: &[(u8, &[u8])]) -> Result<(), StoreError> {
        let (buf, count) = self.encode(self.records, records)?;
        let result = self.file.write_all(&buf).and_then(|()| {
            if self.fsync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            // Leave no half record behind for the next append to build on.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(StoreError::io(&self.path, e));
        }
        self.len += buf.len() as u64;
        self.records += count;
        Ok(())
    }

    /// Replaces the whole log with `records`, atomically: a crash leaves either the old log or
    /// the new one.
    pub fn rewrite(&mut self, records: &[(u8, &[u8])]) -> Result<(), StoreError> {
        let (buf, _) = self.encode(0, records)?;
        super::atomic::write(&self.path, &buf, self.fsync)?;
        let (log, _) = Self::open(&self.path, self.sealer.clone(), self.fsync)?;
        *self = log;
        Ok(())
    }

    /// The bytes of `records` written from position `first` on (a sealed log's header first if
    /// the log is empty), and how many records that is.
    fn encode(&self, first: u64, records: &[(u8, &[u8])]) -> Result<(Vec<u8>, u64), StoreError> {
        let mut buf = Vec::new();
        let Some(sealer) = &self.sealer else {
            for (kind, payload) in records {
                frame(&mut buf, &[&[*kind], payload]);
            }
            return Ok((buf, records.len() as u64));
        };
        let mut position = first;
        if position == 0 {
            frame(&mut buf, &[sealer.header()]);
            position += 1;
        }
        let mut plain = Vec::new();
        for (kind, payload) in records {
            plain.clear();
            plain.push(*kind);
            plain.extend_from_slice(payload);
            frame(&mut buf, &[&sealer.seal(&self.path, position, &plain)?]);
            position += 1;
        }
        Ok((buf, position - first))
    }

    /// The committed size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was ever committed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The records of a log from its bodies: plain, or sealed by `sealer`'s store under its key.
fn read_records(
    path: &Path,
    sealer: Option<&Sealer>,
    bodies: &[&[u8]],
) -> Result<Vec<Record>, StoreError> {
    let record = |body: &[u8]| Record {
        kind: body[0],
        payload: body[1..].to_vec(),
    };
    let Some(first) = bodies.first() else {
        return Ok(Vec::new());
    };
    let Some(sealer) = sealer else {
        return match Header::read(first) {
            Header::Plain => Ok(bodies.iter().map(|b| record(b)).collect()),
            _ => Err(StoreError::KeyRequired {
                path: path.to_owned(),
            }),
        };
    };
    sealer.check_header(path, Header::read(first))?;
    if first.len() != sealed::HEADER_LEN {
        return Err(sealed::not_authentic(path, "the log's header"));
    }
    (1u64..)
        .zip(&bodies[1..])
        .map(|(position, body)| {
            let plain = sealer
                .open(path, position, body)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| sealed::not_authentic(path, &format!("record {position}")))?;
            Ok(record(&plain))
        })
        .collect()
}

/// Appends one record whose body is the concatenation of `parts`.
fn frame(buf: &mut Vec<u8>, parts: &[&[u8]]) {
    let body_len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(body_len).unwrap_or(u32::MAX);
    let mut crc = crc32fast::Hasher::new();
    for part in parts {
        crc.update(part);
    }
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    for part in parts {
        buf.extend_from_slice(part);
    }
}

/// Parses records; returns their bodies with the length of the good prefix, or the offset of
/// damage that is not a torn tail.
fn parse(bytes: &[u8]) -> Result<(Vec<&[u8]>, usize), usize> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER {
            break; // torn header
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let end = at + 8 + len;
        let bad = len == 0 || len > MAX_RECORD_BYTES || end > bytes.len() || {
            let body = &bytes[at + 8..end];
            crc32fast::hash(body) != crc
        };
        if bad {
            // Records are only ever appended, so a crash damages nothing but the tail: a cut,
            // zeros, or garbage the disk held before. A valid record after the bad spot means
            // the bad one was damaged in place, which no crash does.
            return if valid_record_after(bytes, at + 1) {
                Err(at)
            } else {
                Ok((records, at))
            };
        }
        records.push(&bytes[at + 8..end]);
        at = end;
    }
    Ok((records, at))
}
/// Whether a whole, checksummed record starts at any offset from `from` on.
fn valid_record_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len().saturating_sub(HEADER - 1)).any(|at| {
        let rest = &bytes[at..];
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        len > 0
            && len <= MAX_RECORD_BYTES
            && 8 + len <= rest.len()
            && crc32fast::hash(&rest[8..8 + len]) == crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_bytes(records: &[(u8, &[u8])]) -> Vec<u8> {
        let mut buf = Vec::new();
        for (k, p) in records {
            frame(&mut buf, &[&[*k], p]);
        }
        buf
    }

    #[test]
    fn every_cut_of_the_last_record_keeps_the_committed_ones() {
        let committed = log_bytes(&[(1, b"alpha"), (2, b"beta")]);
        let full = log_bytes(&[(1, b"alpha"), (2, b"beta"), (3, b"gamma-gamma")]);
        for cut in committed.len()..full.len() {
            let (records, good) = parse(&full[..cut]).expect("a torn tail is not corruption");
            assert_eq!(records.len(), 2, "cut at {cut}");
            assert_eq!(good, committed.len());
        }
        assert_eq!(parse(&full).unwrap().0.len(), 3);
    }

    #[test]
    fn damage_before_the_tail_is_reported() {
        let mut bytes = log_bytes(&[(1, b"alpha"), (2, b"beta")]);
        bytes[10] ^= 0xff; // inside the first payload
        assert_eq!(parse(&bytes), Err(0));
    }

    #[test]
    fn zeroed_tail_is_a_torn_write() {
        let mut bytes = log_bytes(&[(1, b"alpha")]);
        let good = bytes.len();
        bytes.extend_from_slice(&[0u8; 32]);
        assert_eq!(parse(&bytes).unwrap().1, good);
    }
}
