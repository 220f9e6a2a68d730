//! Who is making a request, and what that lets them reach.

use crate::error::{Error, ErrorKind, Result};

/// Who is making a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The root access token.
    Root,
    /// A user access token: it reaches only the records of user `token`.
    User {
        token: String,
        /// The audit label of the access token (a prefix of its keyed hash).
        label: String,
    },
    /// No token: where the configuration allows it (user creation), and holders of a
    /// capability link (a shared record, a retention link).
    Anonymous,
    /// Strongbox itself (the retention sweeper).
    System,
}

fn access_denied() -> Error {
    Error::new(ErrorKind::Forbidden, "access denied")
}

impl Principal {
    /// The label recorded in audit events: `root`, `anonymous` or `xtoken:<hash prefix>`.
    pub fn audit_label(&self) -> String {
        match self {
            Principal::Root => "root".into(),
            Principal::User { label, .. } => label.clone(),
            Principal::Anonymous => "anonymous".into(),
            Principal::System => "system".into(),
        }
    }

    /// May this principal read and change the records of user `token`?
    pub fn may_access(&self, token: &str) -> Result<()> {
        match self {
            Principal::Root | Principal::System => Ok(()),
            Principal::User { token: own, .. } if own == token => Ok(()),
            _ => Err(access_denied()),
        }
    }

    /// Administrative routes: root only.
    pub fn require_root(&self) -> Result<()> {
        match self {
            Principal::Root | Principal::System => Ok(()),
            _ => Err(access_denied()),
        }
    }

    pub fn is_root(&self) -> bool {
        matches!(self, Principal::Root | Principal::System)
    }
}
