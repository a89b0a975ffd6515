//! An append-only file of checksummed records: the unit of crash safety of the phone store.
//!
//! Each record is `[len: u32 LE][crc32: u32 LE][kind: u8][payload]`, where `len` counts the kind
//! byte and the payload and the CRC covers both. A record is committed once `append` returned
//! (the file is fsynced). A crash mid-append leaves a torn tail — a header or payload cut short,
//! or a last record whose checksum fails — which opening truncates away: it was never committed.
//! A bad record followed by more data cannot come from a torn append, so it is reported as
//! corruption instead of being silently dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
    fsync: bool,
}

impl RecordLog {
    /// Opens (or creates) the log at `path`, returning its committed records. A torn tail is
    /// truncated; damage before the tail is an error.
    pub fn open(path: &Path, fsync: bool) -> Result<(Self, Vec<Record>), StoreError> {
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
        let (records, good) = parse(&bytes).map_err(|offset| StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("damaged record at byte {offset}, followed by more data"),
        })?;
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
            fsync,
        };
        Ok((log, records))
    }

    /// Appends records and makes them durable before returning.
    pub fn append(&mut self, records: &[(u8, &[u8])]) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        for (kind, payload) in records {
            encode(&mut buf, *kind, payload);
        }
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
        Ok(())
    }

    /// Replaces the whole log with `records`, atomically: a crash leaves either the old log or
    /// the new one.
    pub fn rewrite(&mut self, records: &[(u8, &[u8])]) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        for (kind, payload) in records {
            encode(&mut buf, *kind, payload);
        }
        super::atomic::write(&self.path, &buf, self.fsync)?;
        let (log, _) = Self::open(&self.path, self.fsync)?;
        *self = log;
        Ok(())
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

fn encode(buf: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len() + 1).unwrap_or(u32::MAX);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(payload);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(payload);
}

/// Parses records; returns them with the length of the good prefix, or the offset of damage that
/// is not a torn tail.
fn parse(bytes: &[u8]) -> Result<(Vec<Record>, usize), usize> {
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
        let body = &bytes[at + 8..end];
        records.push(Record {
            kind: body[0],
            payload: body[1..].to_vec(),
        });
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
            encode(&mut buf, *k, p);
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
