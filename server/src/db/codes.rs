//! The closed sets of values the tables keep as text: review-queue kinds and statuses,
//! correction statuses and UPU event codes. Each is stored, sent and read as the same text on
//! both backends (the columns are `TEXT`, not database enum types), so the API's JSON and the
//! SQL texts that name a value (`status <> 'EMI'`) keep their spelling.

use std::fmt;
use std::str::FromStr;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;

/// A text that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    /// The enum.
    pub what: &'static str,
    /// The text.
    pub value: String,
}

/// Defines an enum stored and serialised as text: `Variant = "text"` for each value.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[doc = $doc:expr])* $variant:ident = $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
            schemars::JsonSchema,
        )]
        pub enum $name {
            $($(#[doc = $doc])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// As stored and sent.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)*
                    _ => Err(UnknownValue { what: stringify!($name), value: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&'r str as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }
    };
}

text_enum! {
    /// What a review-queue entry is about (`review_queue.kind`).
    pub enum QueueKind {
        /// A postman's proposed correction.
        Correction = "correction",
        /// An attempt flagged by reconciliation.
        Attempt = "attempt",
        /// A customer's dispute of an attempt.
        Dispute = "dispute",
    }
}

text_enum! {
    /// Where a review-queue entry stands (`review_queue.status`).
    pub enum EntryStatus {
        /// Waiting for a decision.
        Open = "open",
        /// Approved.
        Approved = "approved",
        /// Rejected.
        Rejected = "rejected",
        /// Closed by a decision elsewhere.
        Closed = "closed",
    }
}

text_enum! {
    /// Where a proposed correction stands (`corrections.status`).
    pub enum CorrectionStatus {
        /// Waiting for a decision.
        Pending = "pending",
        /// Approved: its fields are published.
        Approved = "approved",
        /// Rejected.
        Rejected = "rejected",
    }
}

text_enum! {
    /// A UPU EMSEVT event code (`item_events.code`, and `items.status`: an item's last one).
    pub enum UpuCode {
        /// EMG: arrived at the delivery office.
        Arrived = "EMG",
        /// EDG: out for delivery.
        OutForDelivery = "EDG",
        /// EMH: delivery attempted, not delivered.
        NotDelivered = "EMH",
        /// EDH: held for collection at a pickup point or post office.
        HeldForCollection = "EDH",
        /// EMI: delivered, final.
        Delivered = "EMI",
    }
}

impl CorrectionStatus {
    /// The queue entry's status after this decision.
    pub fn entry_status(self) -> EntryStatus {
        match self {
            CorrectionStatus::Pending => EntryStatus::Open,
            CorrectionStatus::Approved => EntryStatus::Approved,
            CorrectionStatus::Rejected => EntryStatus::Rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value reads back from its text, and serde spells it the same way.
    fn round_trip<T>(all: &[T])
    where
        T: FromStr + Copy + PartialEq + fmt::Debug + fmt::Display + serde::Serialize,
        T::Err: fmt::Debug,
    {
        for value in all {
            assert_eq!(value.to_string().parse::<T>().unwrap(), *value);
            assert_eq!(serde_json::to_value(value).unwrap(), value.to_string());
        }
    }

    #[test]
    fn texts_parse_and_serialise_alike() {
        round_trip(QueueKind::ALL);
        round_trip(EntryStatus::ALL);
        round_trip(CorrectionStatus::ALL);
        round_trip(UpuCode::ALL);
        assert_eq!(UpuCode::Delivered.as_str(), "EMI");
        assert_eq!(QueueKind::Dispute.as_str(), "dispute");
        assert!("EMX".parse::<UpuCode>().is_err());
    }
}
