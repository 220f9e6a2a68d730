//! One mapper per row type, in the column order of the `SELECT`s in [`crate::sql`].

use crate::exec::Row;
use crate::{
    AuditEvent, AuditHead, AuditRow, CheckpointRow, KeyRow, RecordRow, Result, SealRow, UserRow,
    WrappedDek,
};

pub(crate) fn user(r: &Row<'_>) -> Result<UserRow> {
    Ok(UserRow {
        token: r.get(0)?,
        kek_version: r.get(1)?,
        wrapped_dek: r.get(2)?,
        data: r.get(3)?,
        version: r.get(4)?,
        created: r.get(5)?,
        updated: r.get(6)?,
        erased: r.get(7)?,
    })
}

pub(crate) fn record(r: &Row<'_>) -> Result<RecordRow> {
    Ok(RecordRow {
        kind: r.get(0)?,
        id: r.get(1)?,
        owner: r.get(2)?,
        label: r.get(3)?,
        created: r.get(4)?,
        updated: r.get(5)?,
        expires: r.get(6)?,
        version: r.get(7)?,
        meta: r.get(8)?,
        body: r.get(9)?,
        kek_version: r.get(10)?,
        wrapped_dek: r.get(11)?,
    })
}

pub(crate) fn audit(r: &Row<'_>) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        event: AuditEvent {
            atoken: r.get(1)?,
            at: r.get(2)?,
            actor: r.get(3)?,
            action: r.get(4)?,
            record: r.get(5)?,
            status: r.get(6)?,
            app: r.get(7)?,
            detail: r.get(8)?,
            classes: r.get(9)?,
            name: r.get(11)?,
        },
        tenant: r.get(10)?,
    })
}

pub(crate) fn seal(r: &Row<'_>) -> Result<SealRow> {
    Ok(SealRow {
        seq: r.get(0)?,
        audit_id: r.get(1)?,
        hash: r.get(2)?,
    })
}

pub(crate) fn head(r: &Row<'_>) -> Result<AuditHead> {
    Ok(AuditHead {
        seq: r.get(0)?,
        hash: r.get(1)?,
        max_id: r.get(2)?,
        gaps: AuditHead::parse_gaps(&r.get::<String>(3)?),
        version: r.get(4)?,
    })
}

pub(crate) fn checkpoint(r: &Row<'_>) -> Result<CheckpointRow> {
    Ok(CheckpointRow {
        seq: r.get(0)?,
        hash: r.get(1)?,
        at: r.get(2)?,
        signature: r.get(3)?,
    })
}

pub(crate) fn key(r: &Row<'_>) -> Result<KeyRow> {
    Ok(KeyRow {
        kind: r.get(0)?,
        version: r.get(1)?,
        wrapped: r.get(2)?,
        created: r.get(3)?,
    })
}

/// A user's wrapped DEK (`sql::USERS_KEK_BELOW`).
pub(crate) fn user_dek(r: &Row<'_>) -> Result<WrappedDek> {
    Ok(WrappedDek {
        kind: None,
        id: r.get(0)?,
        kek_version: r.get(1)?,
        wrapped: r.get(2)?,
    })
}

/// A record's own wrapped DEK (`sql::RECORDS_KEK_BELOW`).
pub(crate) fn record_dek(r: &Row<'_>) -> Result<WrappedDek> {
    Ok(WrappedDek {
        kind: Some(r.get(0)?),
        id: r.get(1)?,
        kek_version: r.get(2)?,
        wrapped: r.get(3)?,
    })
}

/// A key ring entry's (kind, version).
pub(crate) fn key_version(r: &Row<'_>) -> Result<(String, i64)> {
    Ok((r.get(0)?, r.get(1)?))
}

/// Two integer columns.
pub(crate) fn int_pair(r: &Row<'_>) -> Result<(i64, i64)> {
    Ok((r.get(0)?, r.get(1)?))
}

/// Two nullable integer columns, present only together.
pub(crate) fn opt_int_pair(r: &Row<'_>) -> Result<Option<(i64, i64)>> {
    Ok(r.get::<Option<i64>>(0)?.zip(r.get::<Option<i64>>(1)?))
}

pub(crate) fn int(r: &Row<'_>) -> Result<i64> {
    r.get(0)
}

pub(crate) fn text(r: &Row<'_>) -> Result<String> {
    r.get(0)
}

pub(crate) fn bytes(r: &Row<'_>) -> Result<Vec<u8>> {
    r.get(0)
}
