//! Record versions (`--versioning true`): each change of a profile keeps the
//! profile it replaces as a `version` record owned by the person, sealed under the
//! person's DEK with its token and number bound in the associated data. Versions
//! go with the person: erasure deletes them in its commit and destroys the only key
//! that opens them, so no earlier profile outlives an erasure, in the store or in a
//! backup restored later (the erasure ledger erases the person again).
//!
//! A person keeps at most `max_versions` earlier profiles (the oldest dropped in
//! the commit that adds one) for at most `max_age` (swept, and refused on read).

use md5::{Digest, Md5};
use strongbox_crypto::Dek;
use strongbox_store::{RecordRow, UserRow, WriteOp};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::subjects::Mode;
use crate::vault::Vault;

/// One version of a profile, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: i64,
    /// When it was replaced (or, for the current one, last written), Unix seconds.
    pub optime: i64,
    /// MD5 of the profile's JSON (Databunker Pro's checksum field).
    pub md5: String,
    pub current: bool,
}

fn version_id(token: &str, version: i64) -> String {
    format!("{token}/{version:012}")
}

fn number_of(row: &RecordRow) -> Option<i64> {
    row.id.rsplit_once('/').and_then(|(_, n)| n.parse().ok())
}

fn md5_hex(plain: &[u8]) -> String {
    Md5::digest(plain)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Vault {
    /// The writes that keep `old_plain`, the profile of `row` at its current
    /// version, as an earlier version (none when versioning is off), with the
    /// oldest dropped past the limit.
    pub(crate) async fn version_ops(
        &self,
        row: &UserRow,
        dek: &Dek,
        old_plain: &[u8],
    ) -> Result<Vec<WriteOp>> {
        let v = self.config.versioning;
        if !v.enabled || v.max_versions == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        let kind = RecordKind::Version.name();
        let id = version_id(&row.token, row.version);
        let mut ops = vec![WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: RecordRow {
                kind: kind.into(),
                id: id.clone(),
                owner: Some(row.token.clone()),
                created: now,
                updated: now,
                expires: Some(now.saturating_add(v.max_age)),
                version: 1,
                body: Some(dek.seal(&self.record_aad(kind, &id), old_plain)?),
                ..RecordRow::default()
            },
            expected_version: None,
        }];
        // Ids sort by number: the oldest first.
        let kept = self
            .store
            .records_of(&self.tenant, &row.token, kind)
            .await?;
        let excess = (kept.len() + 1).saturating_sub(v.max_versions);
        for old in kept.iter().take(excess) {
            ops.push(WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: kind.into(),
                id: old.id.clone(),
            });
        }
        Ok(ops)
    }

    /// Earlier version `n` of `row`'s profile (404 when there is none, or no more).
    pub(crate) async fn profile_version(
        &self,
        row: &UserRow,
        dek: &Dek,
        n: i64,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let kind = RecordKind::Version.name();
        let id = version_id(&row.token, n);
        let found = self
            .store
            .record(&self.tenant, kind, &id)
            .await?
            .filter(|r| r.expires.is_none_or(|e| e > self.now()))
            .ok_or_else(|| Error::not_found("The user record version was not found"))?;
        let body = found
            .body
            .ok_or_else(|| Error::internal("a version has no body"))?;
        Ok(dek.open(&self.record_aad(kind, &id), &body)?)
    }

    /// The versions of person `{mode}/{identity}`'s profile, oldest first, the
    /// current one last (audited).
    pub async fn list_versions(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
    ) -> Result<(String, Vec<VersionInfo>)> {
        let action = Action::UserVersions.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let now = self.now();
        let kind = RecordKind::Version.name();
        let mut out = Vec::new();
        for r in self
            .store
            .records_of(&self.tenant, &subject.token, kind)
            .await?
        {
            if r.expires.is_some_and(|e| e <= now) {
                continue;
            }
            let (Some(n), Some(body)) = (number_of(&r), r.body.as_ref()) else {
                continue;
            };
            let plain = subject.dek.open(&self.record_aad(kind, &r.id), body)?;
            out.push(VersionInfo {
                version: n,
                optime: r.created,
                md5: md5_hex(&plain),
                current: false,
            });
        }
        let row = self
            .store
            .user(&self.tenant, &subject.token)
            .await?
            .ok_or_else(|| Error::not_found("not found"))?;
        let current = self.decrypt_profile(&row, &subject.dek)?;
        out.push(VersionInfo {
            version: row.version,
            optime: row.updated,
            md5: md5_hex(&current),
            current: true,
        });
        self.audit(self.new_event(who, action, Some(&subject.token), "ok"))
            .await?;
        Ok((subject.token, out))
    }

    /// Deletes versions past their age.
    pub(crate) async fn purge_expired_versions(&self) -> Result<()> {
        self.store
            .write(WriteOp::DeleteExpired {
                tenant: self.tenant.clone(),
                kind: RecordKind::Version.name().into(),
                now: self.now(),
            })
            .await?;
        Ok(())
    }
}
