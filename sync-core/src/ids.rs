//! Identifiers of the documents that phones, customers and the server share.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::rules::{Field, Violation};
use crate::s10::S10;

/// The longest delivery-point identifier accepted; they are issued by the reference system.
pub const MAX_DELIVERY_POINT_ID_LEN: usize = 64;

/// Which schema a document follows; encoded in its identifier so a peer knows before loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKind {
    /// An address where mail is handed over.
    DeliveryPoint,
    /// A tracked parcel or registered letter.
    Item,
}

/// The identifier of one shared document: `dp:<delivery point id>` or `item:<S10 number>`.
///
/// The prefix makes the schema explicit on the wire and in storage, and the constructor checks the
/// part after it, so an unparseable id is refused at the edge rather than deep inside a sync.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocId(String);

impl DocId {
    /// The document of an item.
    pub fn item(id: &S10) -> Self {
        Self(format!("item:{id}"))
    }

    /// The document of a delivery point; the id must be 1–64 characters of `[A-Za-z0-9_-]`.
    pub fn delivery_point(id: &str) -> Result<Self, Violation> {
        validate_delivery_point_id(id)?;
        Ok(Self(format!("dp:{id}")))
    }

    /// Parses `dp:…` or `item:…`.
    pub fn parse(raw: &str) -> Result<Self, Violation> {
        if let Some(rest) = raw.strip_prefix("item:") {
            let s10 = S10::parse(rest)?;
            if s10.as_str() != rest {
                return Err(Violation::new(
                    Field::DocId,
                    "item ids are written in upper case",
                ));
            }
            Ok(Self::item(&s10))
        } else if let Some(rest) = raw.strip_prefix("dp:") {
            Self::delivery_point(rest)
        } else {
            Err(Violation::new(
                Field::DocId,
                "a document id starts with `dp:` or `item:`",
            ))
        }
    }

    /// Which schema the document follows.
    pub fn kind(&self) -> DocKind {
        if self.0.starts_with("item:") {
            DocKind::Item
        } else {
            DocKind::DeliveryPoint
        }
    }

    /// The part after the prefix: the S10 number or the delivery-point id.
    pub fn key(&self) -> &str {
        match self.kind() {
            DocKind::Item => &self.0["item:".len()..],
            DocKind::DeliveryPoint => &self.0["dp:".len()..],
        }
    }

    /// The full identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a delivery-point id: 1–64 characters of `[A-Za-z0-9_-]`, safe in file names and URLs.
pub fn validate_delivery_point_id(id: &str) -> Result<(), Violation> {
    let ok = !id.is_empty()
        && id.len() <= MAX_DELIVERY_POINT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Violation::new(
            Field::DeliveryPointId,
            "a delivery point id is 1 to 64 characters of letters, digits, '-' and '_'",
        ))
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DocId {
    type Err = Violation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for DocId {
    type Error = Violation;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DocId> for String {
    fn from(id: DocId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_refuses_the_rest() {
        let item = DocId::parse("item:RR123456785FR").unwrap();
        assert_eq!(item.kind(), DocKind::Item);
        assert_eq!(item.key(), "RR123456785FR");
        let dp = DocId::parse("dp:paris-11-0042").unwrap();
        assert_eq!(dp.kind(), DocKind::DeliveryPoint);
        assert_eq!(dp.key(), "paris-11-0042");
        for bad in [
            "",
            "item:RR123456784FR",
            "item:rr123456785fr",
            "dp:",
            "dp:a/b",
            "x:1",
        ] {
            assert!(DocId::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(DocId::parse(&format!("dp:{}", "a".repeat(65))).is_err());
    }
}
