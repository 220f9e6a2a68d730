//! The one error type of the domain layer. Each error has a kind (mapped to an HTTP
//! status by the server, in one place) and a client-safe message that never contains
//! personal data, keys or tokens.

use std::fmt;

use strongbox_store::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or invalid input.
    BadRequest,
    /// No credentials were given.
    Unauthenticated,
    /// Credentials were given but do not allow this.
    Forbidden,
    NotFound,
    /// The request conflicts with existing data (duplicate index).
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The client did not send its request (its body) in time.
    RequestTimeout,
    /// The store (and with it the audit log) cannot be written or read: the request
    /// was refused, and nothing was changed.
    Unavailable,
    /// Something failed inside Strongbox; details go to the log, not the client.
    Internal,
}

#[derive(Clone, Debug, thiserror::Error)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// An internal failure: logs the detail (which must hold no personal data) and
    /// returns an error whose message says nothing internal.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(detail = %detail, "internal error");
        Self::new(ErrorKind::Internal, "internal error")
    }
}

impl From<strongbox_store::StoreError> for Error {
    fn from(e: strongbox_store::StoreError) -> Self {
        use strongbox_store::StoreError as S;
        match e {
            S::Duplicate(name) => {
                Error::new(ErrorKind::Conflict, format!("duplicate index: {name}"))
            }
            S::CommitUnknown(detail) => {
                tracing::error!(detail = %detail, "storage error while committing");
                Error::new(
                    ErrorKind::Unavailable,
                    "storage failed while committing: the outcome is unknown; check before retrying",
                )
            }
            S::Backend(detail) | S::Deadlock(detail) => {
                tracing::error!(detail = %detail, "storage error");
                Error::new(
                    ErrorKind::Unavailable,
                    "storage unavailable: the audit log cannot record this request, so it was refused (nothing was changed)",
                )
            }
            other => Error::internal(other),
        }
    }
}

impl From<strongbox_crypto::CryptoError> for Error {
    fn from(e: strongbox_crypto::CryptoError) -> Self {
        Error::internal(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Why a vault could not be opened. Messages are for the operator's terminal.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the root key does not match this store (the stored canary did not verify)")]
    WrongRootKey,
    #[error("{0} is not initialized: run `strongbox init` first")]
    NotInitialized(String),
    #[error("the store is already initialized; refusing to initialize it again")]
    AlreadyInitialized,
    #[error("the key ring is damaged: {0}")]
    KeyRing(&'static str),
    #[error("{0}")]
    Store(StoreError),
    #[error("{0}")]
    Crypto(#[from] strongbox_crypto::CryptoError),
}

impl From<StoreError> for OpenError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotInitialized(what) => OpenError::NotInitialized(what),
            StoreError::AlreadyInitialized => OpenError::AlreadyInitialized,
            other => OpenError::Store(other),
        }
    }
}
