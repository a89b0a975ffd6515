//! The one error the app sees. The core's error enums are detailed for the core's own callers;
//! here they are mapped, in this one place, to the few cases the app acts on differently.

use tournee_sync_core::operations::OperationError;
use tournee_sync_core::rules::Violation;
use tournee_sync_core::store::StoreError;
use tournee_sync_core::sync::wire::WireError;
use tournee_sync_core::sync::SyncError;

/// Why a call failed (Kotlin `TourneeException`, Swift and Python `TourneeError`). Each case
/// says what the app should do, and carries a message fit for a log or, for `InvalidInput`,
/// for the person using the app.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TourneeError {
    /// An argument broke a rule; `field` names it as the documents spell it. Nothing was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field as the server's documents spell it, e.g. `outcome`,
        /// `notice.waits_at.until`, or `recorded_at_ms` for an attempt's `recordedAt`.
        field: String,
        /// Why it is refused, in words.
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
    /// The store at this path belongs to another device or person; open another path, or sign
    /// in as its owner.
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
    /// or close it (Kotlin `close()`, Swift: release every reference) before opening the folder
    /// again.
    #[error("in use: {reason}")]
    InUse {
        /// Which folder.
        reason: String,
    },
    /// The device's key did not sign (the key store is locked, the user is not authenticated,
    /// the key was deleted). Nothing was written; try again once the key is available.
    #[error("key unavailable: {reason}")]
    KeyUnavailable {
        /// What the key store said.
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
    /// The server did not accept the device's credentials (HTTP 401 or 403): renew the device's
    /// token or sign the postman in again, then sync. The background sync stops at once, since
    /// sending the same again cannot succeed.
    #[error("not authorized (HTTP {status}): {reason}")]
    NotAuthorized {
        /// The HTTP status, 401 or 403.
        status: u16,
        /// What the server said.
        reason: String,
    },
    /// The server refused a request for good (an HTTP 4xx other than 401, 403, 408 and 429,
    /// e.g. an app too old for the server): sending the same again cannot succeed.
    #[error("refused by the server (HTTP {status}): {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// What the server said.
        reason: String,
    },
    /// The server could not be reached, or stayed unavailable (no network, HTTP 5xx, 408,
    /// 429), through every try the retry policy allowed, or its deadline came first. Nothing
    /// is lost: sync again later, not before `retry_at` when the server said when.
    #[error("server unavailable: {reason}")]
    Unavailable {
        /// What the last try met.
        reason: String,
        /// When the server asked to be tried again (its Retry-After), if it said.
        retry_at: Option<std::time::SystemTime>,
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
            StoreError::Signing(_) => Self::KeyUnavailable {
                reason: e.to_string(),
            },
            StoreError::Relay { .. } => Self::InvalidInput {
                field: "relay_file".into(),
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
