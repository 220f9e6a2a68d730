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

/// What a role token holds: its role and that role's rules. A person's access
/// token holds one too when they have a role in a group (`groups`): the rules of
/// every such role, decided with their groups as the principal's.
#[derive(Debug, PartialEq, Eq)]
pub struct RoleGrant {
    pub rules: Arc<RoleRules>,
    /// `xtoken:<prefix of its keyed hash> role:<id>`, or `… groups` for a person's.
    pub label: String,
    /// The groups of the person holding the token (`${principal_group_id}`); none
    /// for a role token.
    pub principal_groups: std::collections::BTreeSet<String>,
}

/// A role as its token's decisions read it: its name and linked policies.
#[derive(Debug, PartialEq, Eq)]
pub struct RoleRules {
    /// The role's name; every role's, for the rules a person holds through groups.
    pub roles: Vec<String>,
    /// The linked policies' ids, one per entry of `policies`.
    pub ids: Vec<i64>,
    pub policies: Vec<Policy>,
}

impl RoleRules {
    /// Whether a decision may read the person's consents or profile.
    pub fn reads_person(&self) -> bool {
        self.policies.iter().any(Policy::reads_person)
    }

    /// Whether a decision may read the person's groups.
    pub fn reads_groups(&self) -> bool {
        self.policies.iter().any(Policy::reads_groups)
    }

    fn caller(&self) -> &[String] {
        &self.roles
    }
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
        let roles = self.rules.caller();
        let d = policy::decide(
            &self.rules.policies,
            Caller { roles },
            &method,
            asked,
            facts,
        );
        if d.allowed {
            context::record_decision(self.describe(d));
            Ok(())
        } else {
            refuse(self.describe(d))
        }
    }

    /// Whether a statement might allow the current v2 method on someone: the gate
    /// of a listing, whose people are then decided one by one.
    pub(crate) fn may_try(&self) -> Result<()> {
        let refuse = |why: &str| {
            context::record_decision(why.into());
            context::record_refusal(&self.label);
            Err(access_denied())
        };
        let Some(method) = context::method() else {
            return refuse("deny:not-v2");
        };
        if RESERVED.iter().any(|r| policy::glob(r, &method)) {
            return refuse("deny:reserved");
        }
        let roles = self.rules.caller();
        if policy::may_allow(&self.rules.policies, Caller { roles }, &method) {
            Ok(())
        } else {
            refuse("deny:no-policy")
        }
    }

    /// `profile` as the current v2 method may show it (see [`policy::mask_profile`]),
    /// with the decisions recorded for the audit; `None` when it may show nothing.
    pub(crate) fn mask(
        &self,
        profile: &serde_json::Map<String, serde_json::Value>,
        facts: &Facts,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let Some(method) = context::method() else {
            context::record_decision("deny:not-v2".into());
            return None;
        };
        let roles = self.rules.caller();
        let (seen, decisions) = policy::mask_profile(
            &self.rules.policies,
            Caller { roles },
            &method,
            profile,
            facts,
        );
        if seen.is_some() {
            for d in decisions {
                context::record_decision(self.describe(d));
            }
        } else {
            context::record_decision("deny:no-field".into());
        }
        seen
    }

    /// A decision as the audit records it: `allow:policy/7`, `deny:policy/3`,
    /// `deny:no-policy`.
    pub(crate) fn describe(&self, d: policy::Decision) -> String {
        let verdict = if d.allowed { "allow" } else { "deny" };
        match d.by.and_then(|(p, _)| self.rules.ids.get(p)) {
            Some(id) => format!("{verdict}:policy/{id}"),
            None => format!("{verdict}:no-policy"),
        }
    }

    /// The facts every decision may read: the call's `request_metadata` (no
    /// person's).
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
            Principal::Role(grant) => grant.may_try(),
            other => other.require_root(),
        }
    }

    pub fn is_root(&self) -> bool {
        matches!(self, Principal::Root | Principal::System)
    }
}
