//! Who is making a request, and what that lets them reach.

use std::sync::Arc;

use crate::context;
use crate::error::{Error, ErrorKind, Result};
use crate::policy::{self, Caller, Facts, Policy, Resource};

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
    /// A role access token (`XTokenCreateForRole`): what it may do is what the
    /// policies linked to its role allow, v2 method by method.
    Role(Arc<RoleGrant>),
}

/// What a role token holds: its role and that role's policies (by id).
#[derive(Debug, PartialEq, Eq)]
pub struct RoleGrant {
    pub role_id: i64,
    pub role: String,
    pub policies: Vec<(i64, Policy)>,
    /// `xtoken:<prefix of its keyed hash> role:<id>`.
    pub label: String,
}

/// v2 methods no policy can grant: they manage tenants, roles, policies and access
/// tokens, so granting one would let a role widen its own powers.
const RESERVED: [&str; 4] = ["Tenant*", "Role*", "Policy*", "XToken*"];

impl RoleGrant {
    /// Decides whether the current v2 method may reach `asked`, records the
    /// decision for the audit, and refuses with "access denied" when not.
    pub(crate) fn check(&self, asked: &Resource, facts: &Facts) -> Result<()> {
        let refuse = |why: String| {
            context::record_decision(why);
            context::record_refusal(&self.label);
            Err(access_denied())
        };
        let Some(method) = context::method() else {
            return refuse("deny:not-v2".into());
        };
        if RESERVED.iter().any(|r| policy::glob(r, &method)) {
            return refuse("deny:reserved".into());
        }
        let policies: Vec<Policy> = self.policies.iter().map(|(_, p)| p.clone()).collect();
        let roles = [self.role.clone()];
        let d = policy::decide(&policies, Caller { roles: &roles }, &method, asked, facts);
        if d.allowed {
            context::record_decision(self.describe(d));
            Ok(())
        } else {
            refuse(self.describe(d))
        }
    }

    /// A decision as the audit records it: `allow:policy/7`, `deny:policy/3`,
    /// `deny:no-policy`.
    pub(crate) fn describe(&self, d: policy::Decision) -> String {
        let verdict = if d.allowed { "allow" } else { "deny" };
        match d.by.and_then(|(p, _)| self.policies.get(p)) {
            Some((id, _)) => format!("{verdict}:policy/{id}"),
            None => format!("{verdict}:no-policy"),
        }
    }

    /// The facts every decision may read: the call's `request_metadata`.
    pub(crate) fn call_facts() -> Facts {
        Facts {
            request_metadata: context::request_metadata(),
            ..Facts::default()
        }
    }
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
            Principal::Role(grant) => grant.label.clone(),
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

    /// Administrative routes: root only, or a role whose policies allow the current
    /// v2 method on `*` (what is not about one person).
    pub fn require_root(&self) -> Result<()> {
        match self {
            Principal::Root | Principal::System => Ok(()),
            Principal::Role(grant) => grant.check(&Resource::Global, &RoleGrant::call_facts()),
            _ => Err(access_denied()),
        }
    }

    /// Listings of people: root, or a role (each person listed is then decided
    /// on its own, and left out when the role may read nothing of them).
    pub fn may_list(&self) -> Result<()> {
        match self {
            Principal::Role(_) => Ok(()),
            other => other.require_root(),
        }
    }

    pub fn is_root(&self) -> bool {
        matches!(self, Principal::Root | Principal::System)
    }
}
