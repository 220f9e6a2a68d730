//! User access tokens ("xtokens" in Databunker): random UUIDs handed to a data
//! subject (or an application acting for one), stored only as keyed hashes, expiring,
//! and scoped to that one user's records. The passwordless login flow that hands
//! them out in Databunker is a later step; here root issues and revokes them.

use serde_json::{Value, json};
use strongbox_crypto::{new_record_token, parse_record_token};
use strongbox_store::{AuditEvent, RecordRow, StoreError, WriteOp};

use crate::error::{Error, ErrorKind, Result};
use crate::expiry::{capped_expiry, requested_seconds};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::subjects::Mode;
use crate::vault::Vault;

/// Lifetime of a user token that does not ask for one (Databunker's login tokens).
const DEFAULT_LIFETIME: i64 = 600;

impl Vault {
    /// Whether `token` is the root token (a keyed hash compared in constant time).
    pub(crate) fn is_root_token(&self, token: &str) -> bool {
        let hash = self
            .root_token_hash
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.token_hasher.verify(token, &hash)
    }

    /// Replaces the root token (root only) with `new` (a UUID the caller chose, so
    /// it knows the token even if this answer is lost) or a random one, and returns
    /// it; only its keyed hash is stored, swapped in with an audit event and only if
    /// the old hash is still the stored one (two rotations at once: one wins, the
    /// other gets a 409). The old token stops working on this node at once and on
    /// every other node with its next key reload (within a second).
    pub async fn rotate_root_token(&self, who: &Principal, new: Option<&str>) -> Result<String> {
        who.require_root()?;
        if !self.is_main() {
            return Err(Error::bad_request(
                "a tenant's admin token is not rotated here",
            ));
        }
        let token = match new {
            Some(t) => parse_record_token(t)
                .ok_or_else(|| Error::bad_request("the new root token must be a UUID"))?,
            None => new_record_token(),
        };
        let _turn = self.root_token_turn.lock().await;
        let expected = self
            .root_token_hash
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let value = self.token_hasher.hash(&token).to_vec();
        if value == expected {
            return Err(Error::bad_request(
                "the new root token is the current one: choose another",
            ));
        }
        let op = WriteOp::Atomic(vec![
            WriteOp::SwapRootToken {
                expected,
                value: value.clone(),
            },
            WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(who, Action::RootTokenRotate, None, "ok"),
            },
        ]);
        match self.store.write(op).await {
            Ok(()) => {}
            Err(StoreError::Stale) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "the root token was changed meanwhile (another rotation, or on another node)",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        *self
            .root_token_hash
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
        Ok(token)
    }

    /// Picks up a root token rotated on another node.
    pub(crate) async fn reload_root_token(&self) -> Result<()> {
        if !self.is_main() {
            return self.reload_tenant_admin().await;
        }
        let _turn = self.root_token_turn.lock().await;
        let meta = self.store.meta().await?;
        *self
            .root_token_hash
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = meta.root_token_hash;
        Ok(())
    }
}

/// A newly issued user access token.
pub struct IssuedToken {
    /// The secret: shown once, stored only as a keyed hash.
    pub xtoken: String,
    /// The user it reaches.
    pub token: String,
    /// Unix seconds after which it stops working.
    pub expires: i64,
}

fn denied() -> Error {
    Error::new(ErrorKind::Forbidden, "access denied")
}

impl Vault {
    /// The principal of a user access token, if it is one and still valid.
    pub(crate) async fn user_principal(&self, xtoken: &str) -> Result<Principal> {
        // Only UUID-shaped values are tokens; anything else is refused without a lookup.
        let Some(xtoken) = parse_record_token(xtoken) else {
            return Err(denied());
        };
        let digest = self.access_token_digest(&xtoken);
        let Some(row) = self
            .store
            .record(&self.tenant, RecordKind::AccessToken.name(), &digest)
            .await?
        else {
            return Err(denied());
        };
        if row.expires.is_none_or(|e| e <= self.now()) {
            return Err(Error::new(ErrorKind::Forbidden, "access token expired"));
        }
        let label = format!("xtoken:{}", &digest[..16]);
        if row.label.as_deref() == Some("role") {
            let role = row
                .meta
                .as_deref()
                .and_then(|m| serde_json::from_slice::<Value>(m).ok())
                .and_then(|m| m["role"].as_i64())
                .ok_or_else(|| Error::internal("a role token names no role"))?;
            // A role deleted or unknown since: the token grants nothing.
            return self.role_grant(role, label).await.map_err(|_| denied());
        }
        let token = row
            .owner
            .ok_or_else(|| Error::internal("a user token has no owner"))?;
        Ok(Principal::User { token, label })
    }

    /// Issues an access token for user `{mode}/{identity}` (root only). `expiration`
    /// asks for a lifetime (default 10 minutes), capped by the policy maximum.
    pub async fn issue_user_token(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        expiration: Option<&Value>,
    ) -> Result<IssuedToken> {
        who.require_root()?;
        const ACTION: Action = Action::AccessTokenIssue;
        let subject = self.subject(who, &ACTION.into(), mode, identity).await?;
        let now = self.now();
        let lifetime = requested_seconds(expiration, now)?.unwrap_or(DEFAULT_LIFETIME);
        let event = self.new_event(who, ACTION, Some(&subject.token), "ok");
        self.create_access_token(&subject.token, Some(lifetime), event)
            .await
    }

    /// Stores a new access token for user `token` together with `event`: `lifetime`
    /// seconds (default 10 minutes), capped by the policy maximum.
    pub(crate) async fn create_access_token(
        &self,
        token: &str,
        lifetime: Option<i64>,
        event: AuditEvent,
    ) -> Result<IssuedToken> {
        let now = self.now();
        let expires = capped_expiry(
            now,
            self.config.policy.max_user_token_lifetime,
            Some(lifetime.unwrap_or(DEFAULT_LIFETIME)),
        );
        let xtoken = new_record_token();
        let digest = self.access_token_digest(&xtoken);
        let meta = json!({"type": "login", "created": now, "expires": expires});
        self.upsert_record(
            RecordKind::AccessToken.name(),
            &digest,
            |current| {
                if current.is_some() {
                    return Err(Error::internal("a fresh access token collided"));
                }
                Ok(RecordRow {
                    owner: Some(token.to_string()),
                    label: Some("login".into()),
                    created: now,
                    updated: now,
                    expires: Some(expires),
                    meta: serde_json::to_vec(&meta).ok(),
                    ..RecordRow::default()
                })
            },
            event,
        )
        .await?;
        Ok(IssuedToken {
            xtoken,
            token: token.to_string(),
            expires,
        })
    }

    /// Revokes a user access token: root may revoke any, a user token itself.
    /// Revoking an unknown token is not an error.
    pub async fn revoke_user_token(&self, who: &Principal, xtoken: &str) -> Result<()> {
        let xtoken = parse_record_token(xtoken).ok_or_else(|| Error::bad_request("bad uuid"))?;
        let digest = self.access_token_digest(&xtoken);
        let row = self
            .store
            .record(&self.tenant, RecordKind::AccessToken.name(), &digest)
            .await?;
        let owner = row.as_ref().and_then(|r| r.owner.clone());
        match who {
            Principal::Root => {}
            Principal::User { label, .. } if *label == format!("xtoken:{}", &digest[..16]) => {}
            _ => return Err(denied()),
        }
        self.delete_record(
            RecordKind::AccessToken.name(),
            &digest,
            self.new_event(who, Action::AccessTokenRevoke, owner.as_deref(), "ok"),
        )
        .await
    }

    /// Deletes expired user access tokens, login codes and spent captchas (the
    /// sweeper's job).
    pub(crate) async fn purge_expired_tokens(&self) -> Result<()> {
        for kind in [
            RecordKind::AccessToken,
            RecordKind::LoginCode,
            RecordKind::CaptchaSpent,
        ] {
            self.store
                .write(WriteOp::DeleteExpired {
                    tenant: self.tenant.clone(),
                    kind: kind.name().to_string(),
                    now: self.now(),
                })
                .await?;
        }
        Ok(())
    }
}
