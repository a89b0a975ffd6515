//! Document heads on the wire and on disk: 32-byte hashes, concatenated.

use automerge::ChangeHash;
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

/// A set of Automerge change hashes, encoded as one byte string of 32-byte hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Heads(pub Vec<ChangeHash>);

impl Heads {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<ChangeHash>> for Heads {
    fn from(v: Vec<ChangeHash>) -> Self {
        Self(v)
    }
}

impl Serialize for Heads {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.len() * 32);
        for h in &self.0 {
            bytes.extend_from_slice(h.as_ref());
        }
        serde_bytes::Bytes::new(&bytes).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Heads {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        if bytes.len() % 32 != 0 {
            return Err(D::Error::custom("heads are a multiple of 32 bytes"));
        }
        if bytes.len() > 32 * 1024 {
            return Err(D::Error::custom("more than 1024 heads"));
        }
        let heads = bytes
            .chunks(32)
            .map(|c| ChangeHash::try_from(c).map_err(D::Error::custom))
            .collect::<Result<_, _>>()?;
        Ok(Self(heads))
    }
}
