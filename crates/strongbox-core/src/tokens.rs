//! User access tokens ("xtokens" in Databunker): random UUIDs handed to a data
//! subject (or an application acting for one), stored only as keyed hashes, expiring,
//! and scoped to that one user's records. The passwordless login flow that hands
//! them out in Databunker is a later step; here root issues and revokes them.

use serde_json::{Value, json};
use strongbox_crypto::{new_record_token, parse_record_token};
use strongbox_store::RecordRow;

use crate::error::{Error, ErrorKind, Result};
use crate::expiry::{capped_expiry, requested_seconds};
use crate::users::Mode;
use crate::vault::{Principal, Vault, audit_event, now};

pub(crate) const KIND_XTOKEN: &str = "xtoken";

/// Lifetime of a user token that does not ask for one (Databunker's login tokens).
const DEFAULT_LIFETIME: i64 = 600;

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
            .record(&self.tenant, KIND_XTOKEN, &digest)
            .await?
        else {
            return Err(denied());
        };
        if row.expires.is_none_or(|e| e <= now()) {
            return Err(Error::new(ErrorKind::Forbidden, "access token expired"));
        }
        let token = row
            .owner
            .ok_or_else(|| Error::internal("a user token has no owner"))?;
        Ok(Principal::User {
            token,
            label: format!("xtoken:{}", &digest[..16]),
        })
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
        const ACTION: &str = "issue user access token";
        let subject = self.subject(who, ACTION, mode, identity).await?;
        let now = now();
        let lifetime = requested_seconds(expiration, now)?.unwrap_or(DEFAULT_LIFETIME);
        let expires = capped_expiry(
            now,
            self.config.policy.max_user_token_lifetime,
            Some(lifetime),
        );
        let xtoken = new_record_token();
        let digest = self.access_token_digest(&xtoken);
        let meta = json!({"type": "login", "created": now, "expires": expires});
        self.upsert_record(
            KIND_XTOKEN,
            &digest,
            |current| {
                if current.is_some() {
                    return Err(Error::internal("a fresh access token collided"));
                }
                Ok(RecordRow {
                    owner: Some(subject.token.clone()),
                    label: Some("login".into()),
                    created: now,
                    updated: now,
                    expires: Some(expires),
                    meta: serde_json::to_vec(&meta).ok(),
                    ..RecordRow::default()
                })
            },
            audit_event(who, ACTION, Some(&subject.token), "ok"),
        )
        .await?;
        Ok(IssuedToken {
            xtoken,
            token: subject.token,
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
            .record(&self.tenant, KIND_XTOKEN, &digest)
            .await?;
        let owner = row.as_ref().and_then(|r| r.owner.clone());
        match who {
            Principal::Root => {}
            Principal::User { label, .. } if *label == format!("xtoken:{}", &digest[..16]) => {}
            _ => return Err(denied()),
        }
        self.delete_record(
            KIND_XTOKEN,
            &digest,
            audit_event(who, "revoke user access token", owner.as_deref(), "ok"),
        )
        .await
    }

    /// Deletes expired user access tokens (the sweeper's job).
    pub(crate) async fn purge_expired_tokens(&self) -> Result<()> {
        self.store
            .write(strongbox_store::WriteOp::DeleteExpired {
                tenant: self.tenant.clone(),
                kind: KIND_XTOKEN.to_string(),
                now: now(),
            })
            .await?;
        Ok(())
    }
}
