//! Deserialisers that bound what a decoded batch holds in memory, not only what it reads.
//!
//! CBOR is compact: an empty byte string is one byte on the wire and 24 once decoded, so a body
//! within its byte limit could still decode into hundreds of megabytes. Every list of a batch has
//! a hard length, and every change or chunk must be at least as large as the smallest Automerge
//! change, so a decoded batch holds at most a small multiple of its body size.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};
use serde_bytes::ByteBuf;

/// Hard cap on documents in one batch, whatever the configured limit (which is checked after).
pub const MAX_DOCS: usize = 10_000;
/// Hard cap on changes or chunks in one document entry.
pub const MAX_CHANGES: usize = 10_000;
/// The smallest Automerge change: header, checksum, actor, sequence numbers.
pub const MIN_CHANGE_BYTES: usize = 16;

struct Bounded<T> {
    max: usize,
    what: &'static str,
    min_bytes: usize,
    marker: PhantomData<T>,
}

impl<'de, T: Deserialize<'de> + MaybeBytes> Visitor<'de> for Bounded<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {} {}", self.max, self.what)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<T>()? {
            if out.len() == self.max {
                return Err(A::Error::custom(format!(
                    "more than {} {}",
                    self.max, self.what
                )));
            }
            if item.byte_len().is_some_and(|n| n < self.min_bytes) {
                return Err(A::Error::custom(format!(
                    "{} of fewer than {} bytes",
                    self.what, self.min_bytes
                )));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// The wire size of an element, for the ones that are raw bytes.
pub trait MaybeBytes {
    /// `Some(len)` for byte strings.
    fn byte_len(&self) -> Option<usize> {
        None
    }
}

impl MaybeBytes for ByteBuf {
    fn byte_len(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl MaybeBytes for crate::signing::ChangeSignature {}

/// A list of document entries.
pub fn docs<'de, D: Deserializer<'de>, T: Deserialize<'de> + MaybeBytes>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_seq(Bounded {
        max: MAX_DOCS,
        what: "documents",
        min_bytes: 0,
        marker: PhantomData,
    })
}

/// A list of Automerge changes or chunks.
pub fn changes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ByteBuf>, D::Error> {
    d.deserialize_seq(Bounded::<ByteBuf> {
        max: MAX_CHANGES,
        what: "changes",
        min_bytes: MIN_CHANGE_BYTES,
        marker: PhantomData,
    })
}

/// A list of change signatures (each a hash, a signer and a signature: dozens of bytes decoded,
/// never zero on the wire).
pub fn signatures<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<crate::signing::ChangeSignature>, D::Error> {
    d.deserialize_seq(Bounded::<crate::signing::ChangeSignature> {
        max: MAX_CHANGES,
        what: "signatures",
        min_bytes: 0,
        marker: PhantomData,
    })
}
