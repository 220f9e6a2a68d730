//! Records other than profiles (app data, sessions, consents, legal bases, …): how
//! their bodies are sealed and how they are written under concurrency.
//!
//! A record owned by a user is sealed under that user's DEK, so erasing the user
//! shreds it even in old copies of the database. A record without an owner (a session
//! of an anonymous visitor, a consent given before the person is in the vault) gets a
//! DEK of its own, wrapped by the current KEK and stored beside it.

use serde_json::Value;
use strongbox_crypto::{Aad, Dek};
use strongbox_store::{AuditEvent, RecordRow, StoreError, WriteOp};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::vault::Vault;

/// Attempts at a read-modify-write of one record before giving up (each retry means
/// another writer changed the record first).
const MAX_ATTEMPTS: usize = 64;

impl Vault {
    pub(crate) fn record_aad(&self, kind: &str, id: &str) -> Aad {
        Aad::new(&self.tenant, kind, id, "body")
    }

    /// Seals a JSON value as the body of record `kind`/`id`.
    pub(crate) fn seal_body(
        &self,
        dek: &Dek,
        kind: &str,
        id: &str,
        value: &Value,
    ) -> Result<Vec<u8>> {
        let plain = Zeroizing::new(serde_json::to_vec(value).map_err(Error::internal)?);
        let started = std::time::Instant::now();
        let sealed = dek.seal(&self.record_aad(kind, id), &plain)?;
        crate::vault::CRYPTO_TIMINGS.observe(started.elapsed());
        Ok(sealed)
    }

    /// Opens the body of a record (sealed by [`Vault::seal_body`] with the same key).
    pub(crate) fn open_body(&self, dek: &Dek, row: &RecordRow) -> Result<Value> {
        let body = row
            .body
            .as_ref()
            .ok_or_else(|| Error::internal("a record has no body"))?;
        let started = std::time::Instant::now();
        let plain = dek.open(&self.record_aad(&row.kind, &row.id), body)?;
        crate::vault::CRYPTO_TIMINGS.observe(started.elapsed());
        serde_json::from_slice(&plain).map_err(Error::internal)
    }

    /// A fresh DEK for a record without an owner: (DEK, KEK version, wrapped DEK).
    pub(crate) fn new_record_dek(&self, kind: &str, id: &str) -> Result<(Dek, i64, Vec<u8>)> {
        let kek = self.keys.current_kek()?;
        let dek = Dek::generate()?;
        let wrapped = kek.wrap_dek(&self.tenant, &format!("{kind}/{id}"), &dek)?;
        Ok((dek, kek.version, wrapped))
    }

    /// The record's own DEK, if it has one.
    pub(crate) fn own_dek(&self, row: &RecordRow) -> Result<Option<Dek>> {
        let (Some(version), Some(wrapped)) = (row.kek_version, row.wrapped_dek.as_ref()) else {
            return Ok(None);
        };
        let kek = self.keys.kek(version)?;
        let subject = format!("{}/{}", row.kind, row.id);
        Ok(Some(kek.unwrap_dek(&self.tenant, &subject, wrapped)?))
    }

    /// Inserts or replaces record `kind`/`id` together with `audit`: `build` makes the
    /// new row from the current one (`None` when there is none). Retried when another
    /// writer changes the record in between, so no update is lost.
    pub(crate) async fn upsert_record<F>(
        &self,
        kind: &str,
        id: &str,
        build: F,
        audit: AuditEvent,
    ) -> Result<RecordRow>
    where
        F: FnMut(Option<&RecordRow>) -> Result<RecordRow>,
    {
        self.upsert_record_with(kind, id, build, audit, &[]).await
    }

    /// [`Vault::upsert_record`] that also commits `extra` ops in the same transaction.
    pub(crate) async fn upsert_record_with<F>(
        &self,
        kind: &str,
        id: &str,
        mut build: F,
        audit: AuditEvent,
        extra: &[WriteOp],
    ) -> Result<RecordRow>
    where
        F: FnMut(Option<&RecordRow>) -> Result<RecordRow>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.store.record(&self.tenant, kind, id).await?;
            let mut row = build(current.as_ref())?;
            row.kind = kind.to_string();
            row.id = id.to_string();
            if let Some(c) = &current {
                row.created = c.created;
                row.version = c.version + 1;
            } else {
                row.version = 1;
            }
            let mut ops = vec![
                WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record: row.clone(),
                    expected_version: current.as_ref().map(|c| c.version),
                },
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: audit.clone(),
                },
            ];
            ops.extend_from_slice(extra);
            let op = WriteOp::Atomic(ops);
            match self.store.write(op).await {
                Ok(()) => return Ok(row),
                Err(StoreError::Stale | StoreError::Duplicate("record")) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal(
            "record update retried too often under contention",
        ))
    }

    /// Deletes record `kind`/`id` together with `audit`.
    pub(crate) async fn delete_record(
        &self,
        kind: &str,
        id: &str,
        audit: AuditEvent,
    ) -> Result<()> {
        self.store
            .write(WriteOp::Atomic(vec![
                WriteOp::DeleteRecord {
                    tenant: self.tenant.clone(),
                    kind: kind.to_string(),
                    id: id.to_string(),
                },
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit,
                },
            ]))
            .await?;
        Ok(())
    }
}
