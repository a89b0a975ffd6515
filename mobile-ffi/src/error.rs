//! The one error the app sees. The core's error enums are detailed for the core's own callers;
//! here they are mapped, in this one place, to the few cases the app acts on differently.

use tournee_sync_core::operations::OperationError;
use tournee_sync_core::rules::Violation;
use tournee_sync_core::store::StoreError;
use tournee_sync_core::sync::wire::WireError;
use tournee_sync_core::sync::SyncError;

/// Why a call failed; each variant carries a message fit for a log or, for `InvalidInput`, for
/// the postman.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TourneeError {
    /// An argument broke a rule; `field` names it as the documents spell it. Nothing was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field, e.g. `outcome` or `recorded_at_ms`.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// The rules forbid this now (e.g. a choice for a delivered item). Nothing was written.
    #[error("not allowed: {reason}")]
    NotAllowed {
        /// Why.
        reason: String,
    },
    /// The item or delivery point is not on this phone: sync the round first.
    #[error("not found: {reason}")]
    NotFound {
        /// What is missing.
        reason: String,
    },
    /// The store at this path belongs to another device or person; open another path.
    #[error("wrong owner: {reason}")]
    WrongOwner {
        /// Who owns it.
        reason: String,
    },
    /// The store is encrypted and the key given (or the absence of one) does not open it.
    /// Nothing was read or changed: the store is intact. Open it with the key it was created
    /// with; never delete it because of this error.
    #[error("wrong key: {reason}")]
    WrongKey {
        /// Which file the key does not open.
        reason: String,
    },
    /// Another `FieldStore` (in this process or another) has this folder open. Use that one,
    /// or close it (drop every reference) before opening the folder again.
    #[error("in use: {reason}")]
    InUse {
        /// Which folder.
        reason: String,
    },
    /// The phone's storage failed or a file is damaged.
    #[error("storage: {reason}")]
    Storage {
        /// What the file system or the store said.
        reason: String,
    },
    /// The sync answer could not be used (malformed, oversized, unexpected). Start a new sync.
    #[error("sync protocol: {reason}")]
    Protocol {
        /// What was wrong with it.
        reason: String,
    },
    /// A defect in this library or in the app's observer; report it.
    #[error("internal: {reason}")]
    Internal {
        /// What happened.
        reason: String,
    },
}

impl From<Violation> for TourneeError {
    fn from(v: Violation) -> Self {
        Self::InvalidInput {
            field: v.field.as_str().to_string(),
            reason: v.reason,
        }
    }
}

impl From<OperationError> for TourneeError {
    fn from(e: OperationError) -> Self {
        match e {
            OperationError::Invalid(v) => v.into(),
            OperationError::AlreadyDelivered | OperationError::AlreadyDecided(_) => {
                Self::NotAllowed {
                    reason: e.to_string(),
                }
            }
            OperationError::NotFound(_) => Self::NotFound {
                reason: e.to_string(),
            },
            OperationError::Schema(_) => Self::Storage {
                reason: e.to_string(),
            },
        }
    }
}

impl From<StoreError> for TourneeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Operation(op) => op.into(),
            StoreError::UnknownDocument(_) => Self::NotFound {
                reason: e.to_string(),
            },
            StoreError::WrongDevice { .. } => Self::WrongOwner {
                reason: e.to_string(),
            },
            StoreError::InUse { .. } => Self::InUse {
                reason: e.to_string(),
            },
            StoreError::WrongKey { .. } | StoreError::KeyRequired { .. } => Self::WrongKey {
                reason: e.to_string(),
            },
            StoreError::KeyLength { .. } => Self::InvalidInput {
                field: "key".into(),
                reason: e.to_string(),
            },
            StoreError::Refused(_) => Self::NotAllowed {
                reason: e.to_string(),
            },
            StoreError::Io { .. } | StoreError::Corrupt { .. } | StoreError::Foreign { .. } => {
                Self::Storage {
                    reason: e.to_string(),
                }
            }
        }
    }
}

impl From<SyncError> for TourneeError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Store(store) => store.into(),
            SyncError::NoProgress => Self::Protocol {
                reason: e.to_string(),
            },
            SyncError::Manifest(_) => Self::InvalidInput {
                field: "manifest".into(),
                reason: e.to_string(),
            },
        }
    }
}

impl From<WireError> for TourneeError {
    fn from(e: WireError) -> Self {
        Self::Protocol {
            reason: e.to_string(),
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TourneeError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Internal {
            reason: format!("the app's observer failed: {}", e.reason),
        }
    }
}
