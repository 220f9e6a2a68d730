//! Tokenization (Databunker Pro's `TokenCreate`…`BulkDeleteTokens`): a value (a
//! card number, an email address, any text) is replaced by tokens the application
//! keeps instead of it: a random `tokenuuid` always, and for cards and addresses a
//! `tokenbase` of the same shape (see [`format`]).
//!
//! These are *vaulted* tokens: random, with the value kept in the vault, sealed under
//! a DEK of its own (wrapped by the tenant's KEK). Nothing about a token is computed
//! from the value, so a token reveals nothing of it without the vault.
//!
//! Storage: one `fpt` record per token, its id the keyed digest of its `tokenbase`
//! (of its `tokenuuid` when it has none), so the primary key makes every `tokenbase`
//! unique in the tenant and finds it in one read; its label is the `tokenuuid`.
//! `unique: true` adds an `fptuniq` record whose id is the keyed digest of the
//! value (canonical form, per type) and whose label points at the token: the same
//! value finds the same token without a plaintext column. Digests use the tenant's
//! token-hashing key with a domain prefix, as access tokens do.
//!
//! Expiry: `finaltime` (absolute) and `slidingtime` (extended by each read, up to
//! `finaltime`) are checked on every read; an expired token answers as unknown and
//! is deleted on the way, and the sweeper deletes the rest.

pub mod format;

use serde_json::{Value, json};
use strongbox_crypto::{new_record_token, parse_record_token, random_bytes};
use strongbox_store::{RecordRow, StoreError, WriteOp};

use crate::error::{Error, ErrorKind, Result};
use crate::expiry::{expiry, slid};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::vault::Vault;

/// Most bytes a tokenized value may have.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most values one `TokenCreateBulk` (or bulk listing) may carry.
pub const MAX_BULK: usize = 10_000;
/// Draws of a card or email token before giving up (each redraw means the token
/// equalled the value or another token's `tokenbase`).
const MAX_DRAWS: usize = 32;
/// Expired tokens deleted per sweep transaction.
const PURGE_BATCH: usize = 500;

/// What kind of value a token stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    /// A card number: its `tokenbase` is digits of the same length, Luhn-valid.
    CreditCard,
    /// An email address: its `tokenbase` is an address at `token.invalid`.
    Email,
    /// Any text: a `tokenuuid` only.
    Text,
}

impl TokenType {
    pub const ALL: [TokenType; 3] = [TokenType::CreditCard, TokenType::Email, TokenType::Text];

    pub const fn name(self) -> &'static str {
        match self {
            TokenType::CreditCard => "creditcard",
            TokenType::Email => "email",
            TokenType::Text => "text",
        }
    }

    /// The type a client names; an error naming the accepted ones otherwise.
    pub fn parse(name: &str) -> Result<TokenType> {
        TokenType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                Error::bad_request("The tokentype parameter must be creditcard, email or text")
            })
    }
}

/// How a token is made, beyond its type and value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenOptions {
    /// The same value gets the same token (and restarts its expiry).
    pub unique: bool,
    /// Seconds without a read after which the token expires.
    pub sliding: Option<i64>,
    /// Seconds from now after which the token expires whatever happens.
    pub final_after: Option<i64>,
    /// Card tokens: leading digits kept (0–6).
    pub keep_first: usize,
    /// Card tokens: trailing digits kept (0–4).
    pub keep_last: usize,
}

/// A token as created or read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenView {
    pub uuid: String,
    pub base: Option<String>,
    pub record: String,
    pub kind: TokenType,
    /// `unique` found an existing token for the value.
    pub duplicate: bool,
}

/// What a token's plaintext `meta` holds: no personal data.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Meta {
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    sliding: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    final_after: Option<i64>,
    /// Absolute `finaltime`.
    #[serde(rename = "final", skip_serializing_if = "Option::is_none", default)]
    final_at: Option<i64>,
    /// The id of the token's `fptuniq` record.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    unique: Option<String>,
}

fn not_found() -> Error {
    Error::not_found("Token not found")
}

/// The value in the form `unique` compares: a card's digits, an address in lower
/// case, text as given. Also checks the value fits its type.
fn canonical(kind: TokenType, value: &str, opts: &TokenOptions) -> Result<String> {
    if value.is_empty() {
        return Err(Error::bad_request("Missing API request parameters: record"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::new(
            ErrorKind::PayloadTooLarge,
            format!("a tokenized value has at most {MAX_VALUE_BYTES} bytes"),
        ));
    }
    if kind != TokenType::CreditCard && (opts.keep_first > 0 || opts.keep_last > 0) {
        return Err(Error::bad_request(
            "keepfirst and keeplast apply to creditcard tokens only",
        ));
    }
    match kind {
        TokenType::CreditCard => {
            if opts.keep_first > format::MAX_KEEP_FIRST || opts.keep_last > format::MAX_KEEP_LAST {
                return Err(Error::bad_request(
                    "keepfirst is 0 to 6 and keeplast 0 to 4",
                ));
            }
            let digits = format::card_digits(value).ok_or_else(|| {
                Error::bad_request(
                    "a creditcard record is 12 to 19 digits, single spaces or dashes allowed between them",
                )
            })?;
            let free = digits.len() - opts.keep_first - opts.keep_last;
            if free < format::MIN_FREE_DIGITS {
                return Err(Error::bad_request(format!(
                    "keeping {} + {} digits of a {}-digit card leaves fewer than {} to draw: keep fewer",
                    opts.keep_first,
                    opts.keep_last,
                    digits.len(),
                    format::MIN_FREE_DIGITS
                )));
            }
            Ok(String::from_utf8_lossy(&digits).into_owned())
        }
        TokenType::Email => {
            if !format::is_email(value) {
                return Err(Error::bad_request(
                    "an email record must be an address (name@domain)",
                ));
            }
            Ok(value.to_lowercase())
        }
        TokenType::Text => Ok(value.to_string()),
    }
}

/// A uniformly random value below `n` (at most 256), by rejection.
fn uniform(n: u8) -> Result<u8> {
    let limit = 256 - 256 % u16::from(n);
    loop {
        let mut b = [0u8; 1];
        random_bytes(&mut b)?;
        if u16::from(b[0]) < limit {
            return Ok(b[0] % n);
        }
    }
}

/// A fresh `tokenbase` for a value of `kind` (`None` for text), never the value.
fn draw_base(kind: TokenType, value: &str, opts: &TokenOptions) -> Result<Option<String>> {
    let mut failed = None;
    for _ in 0..MAX_DRAWS {
        let drawn = match kind {
            TokenType::Text => return Ok(None),
            TokenType::CreditCard => {
                format::card_token(value, opts.keep_first, opts.keep_last, &mut || {
                    uniform(10).unwrap_or_else(|e| {
                        failed = Some(e);
                        0
                    })
                })
            }
            TokenType::Email => format::email_token(value, &mut || {
                uniform(36).unwrap_or_else(|e| {
                    failed = Some(e);
                    0
                })
            }),
        };
        if let Some(e) = failed.take() {
            return Err(e);
        }
        if drawn.is_some() {
            return Ok(drawn);
        }
    }
    Err(exhausted())
}

fn exhausted() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "no unused token could be drawn for this value: keep fewer digits",
    )
}

fn is_live(row: &RecordRow, now: i64) -> bool {
    row.expires.is_none_or(|e| e > now)
}

fn meta_of(row: &RecordRow) -> Result<Meta> {
    let bytes = row
        .meta
        .as_deref()
        .ok_or_else(|| Error::internal("a token has no meta"))?;
    serde_json::from_slice(bytes).map_err(Error::internal)
}

impl Vault {
    /// The id of the token whose `tokenbase` (or, without one, `tokenuuid`) is `key`.
    fn token_id(&self, key: &str) -> String {
        self.access_token_digest(&format!("fpt\0{key}"))
    }

    /// The id of the `unique` pointer of a value.
    fn unique_id(&self, kind: TokenType, canonical: &str) -> String {
        self.access_token_digest(&format!("fpt unique\0{}\0{canonical}", kind.name()))
    }

    /// The token `token` names (its `tokenuuid` or its `tokenbase`), live or not.
    async fn find_token(&self, token: &str) -> Result<Option<RecordRow>> {
        let kind = RecordKind::Token.name();
        match parse_record_token(token) {
            Some(uuid) => Ok(self
                .store
                .records_by_label(&self.tenant, kind, &uuid)
                .await?
                .into_iter()
                .next()),
            None => Ok(self
                .store
                .record(&self.tenant, kind, &self.token_id(token))
                .await?),
        }
    }

    /// A token's view: its value opened with its own DEK.
    fn open_token(&self, row: &RecordRow) -> Result<TokenView> {
        let meta = meta_of(row)?;
        let dek = self
            .own_dek(row)?
            .ok_or_else(|| Error::internal("a token has no key"))?;
        let body = self.open_body(&dek, row)?;
        Ok(TokenView {
            uuid: row
                .label
                .clone()
                .ok_or_else(|| Error::internal("a token has no uuid"))?,
            base: body["tokenbase"].as_str().map(str::to_string),
            record: body["record"]
                .as_str()
                .ok_or_else(|| Error::internal("a token has no value"))?
                .to_string(),
            kind: TokenType::parse(&meta.kind).map_err(Error::internal)?,
            duplicate: false,
        })
    }

    /// The ops deleting token `row` and its `unique` pointer.
    fn token_deletion(&self, row: &RecordRow) -> Vec<WriteOp> {
        let mut ops = vec![WriteOp::DeleteRecord {
            tenant: self.tenant.clone(),
            kind: RecordKind::Token.name().into(),
            id: row.id.clone(),
        }];
        if let Some(unique) = meta_of(row).ok().and_then(|m| m.unique) {
            ops.push(WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::TokenUnique.name().into(),
                id: unique,
            });
        }
        ops
    }

    /// The ops expiring token `row`: deleted only if no `unique` restart renewed
    /// it since it was read, with its pointer, audited.
    fn expiry_deletion(&self, who: &Principal, row: &RecordRow) -> Vec<WriteOp> {
        let mut ops = self.token_deletion(row);
        ops[0] = WriteOp::DeleteRecordAt {
            tenant: self.tenant.clone(),
            kind: RecordKind::Token.name().into(),
            id: row.id.clone(),
            version: row.version,
        };
        let kind = meta_of(row).map(|m| m.kind).unwrap_or_default();
        ops.push(WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: self.new_event(
                who,
                Action::TokenExpire.with([&kind]),
                row.label.as_deref(),
                "expired",
            ),
        });
        ops
    }

    /// Tokenizes `value` as a `kind` (root only; audited). With `unique`, a live
    /// token of the same value is returned instead (`duplicate`), its expiry
    /// restarted.
    pub async fn create_token(
        &self,
        who: &Principal,
        kind: TokenType,
        value: &str,
        opts: TokenOptions,
    ) -> Result<TokenView> {
        who.require_root()?;
        let canonical = canonical(kind, value, &opts)?;
        for _ in 0..MAX_DRAWS {
            let (ops, view) = self.plan_token(who, kind, value, &canonical, &opts).await?;
            match self.store.write(WriteOp::Atomic(ops)).await {
                Ok(()) => return Ok(view),
                // Another writer took the `tokenbase` or the value's pointer: again.
                Err(StoreError::Stale | StoreError::Duplicate(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(exhausted())
    }

    /// Tokenizes many values (root only): each is created, found (`unique`) or
    /// refused on its own, as [`Vault::create_token`] would; the new ones are
    /// committed together. Results are in the order of `items`.
    pub async fn create_tokens(
        &self,
        who: &Principal,
        items: &[Result<(TokenType, String)>],
        opts: TokenOptions,
    ) -> Result<Vec<Result<TokenView>>> {
        who.require_root()?;
        if items.len() > MAX_BULK {
            return Err(Error::bad_request(format!(
                "at most {MAX_BULK} records per call"
            )));
        }
        let mut out: Vec<Option<Result<TokenView>>> = Vec::with_capacity(items.len());
        let mut planned = Vec::new();
        let mut ops = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let plan = match item {
                Err(e) => Err(e.clone()),
                Ok((kind, value)) => match canonical(*kind, value, &opts) {
                    Err(e) => Err(e),
                    Ok(c) => self.plan_token(who, *kind, value, &c, &opts).await,
                },
            };
            match plan {
                Ok((op, view)) => {
                    planned.push((i, view));
                    ops.push(WriteOp::Atomic(op));
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let results = self.store.write_batch(ops).await?;
        for ((i, view), result) in planned.into_iter().zip(results) {
            out[i] = Some(match result {
                Ok(()) => Ok(view),
                // A collision, or the same value twice in the batch with `unique`:
                // this one goes the single way, which finds the first.
                Err(StoreError::Stale | StoreError::Duplicate(_)) => match &items[i] {
                    Ok((kind, value)) => self.create_token(who, *kind, value, opts).await,
                    Err(e) => Err(e.clone()),
                },
                Err(e) => Err(e.into()),
            });
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::internal("a bulk token has no result"))))
            .collect())
    }

    /// The writes that tokenize `value` now, and the token they make or find.
    async fn plan_token(
        &self,
        who: &Principal,
        kind: TokenType,
        value: &str,
        canonical: &str,
        opts: &TokenOptions,
    ) -> Result<(Vec<WriteOp>, TokenView)> {
        let now = self.now();
        let mut ops = Vec::new();
        let mut pointer: Option<(String, Option<i64>)> = None;
        if opts.unique {
            let uid = self.unique_id(kind, canonical);
            let existing = self
                .store
                .record(&self.tenant, RecordKind::TokenUnique.name(), &uid)
                .await?;
            let mut expected = None;
            if let Some(u) = existing {
                let target = match u.label.as_deref() {
                    Some(id) => {
                        self.store
                            .record(&self.tenant, RecordKind::Token.name(), id)
                            .await?
                    }
                    None => None,
                };
                match target {
                    Some(row) if is_live(&row, now) => {
                        return self.plan_restart(who, row, opts, now);
                    }
                    // Expired: replaced, the pointer moved to the new token below.
                    Some(row) => ops.push(WriteOp::DeleteRecord {
                        tenant: self.tenant.clone(),
                        kind: RecordKind::Token.name().into(),
                        id: row.id,
                    }),
                    None => {}
                }
                expected = Some(u.version);
            }
            pointer = Some((uid, expected));
        }
        let uuid = new_record_token();
        let base = draw_base(kind, value, opts)?;
        let id = self.token_id(base.as_deref().unwrap_or(&uuid));
        let (expires, final_at) = expiry(now, opts.sliding, opts.final_after);
        let meta = Meta {
            kind: kind.name().into(),
            sliding: opts.sliding,
            final_after: opts.final_after,
            final_at,
            unique: pointer.as_ref().map(|(uid, _)| uid.clone()),
        };
        let token_kind = RecordKind::Token.name();
        let (dek, kek_version, wrapped) = self.new_record_dek(token_kind, &id)?;
        let body = json!({"record": value, "tokenbase": base});
        ops.push(WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: RecordRow {
                kind: token_kind.into(),
                id: id.clone(),
                label: Some(uuid.clone()),
                created: now,
                updated: now,
                expires,
                version: 1,
                meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                body: Some(self.seal_body(&dek, token_kind, &id, &body)?),
                kek_version: Some(kek_version),
                wrapped_dek: Some(wrapped),
                ..RecordRow::default()
            },
            expected_version: None,
        });
        if let Some((uid, expected)) = pointer {
            ops.push(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    kind: RecordKind::TokenUnique.name().into(),
                    id: uid,
                    label: Some(id),
                    created: now,
                    updated: now,
                    version: expected.map_or(1, |v| v + 1),
                    ..RecordRow::default()
                },
                expected_version: expected,
            });
        }
        ops.push(WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: self.new_event(
                who,
                Action::TokenCreate.with([&kind.name()]),
                Some(&uuid),
                "ok",
            ),
        });
        let view = TokenView {
            uuid,
            base,
            record: value.to_string(),
            kind,
            duplicate: false,
        };
        Ok((ops, view))
    }

    /// The writes that restart the expiry of `row`, found again by `unique`: each
    /// of its times (sliding, final) as asked for now, else as it was made with.
    fn plan_restart(
        &self,
        who: &Principal,
        row: RecordRow,
        opts: &TokenOptions,
        now: i64,
    ) -> Result<(Vec<WriteOp>, TokenView)> {
        let mut view = self.open_token(&row)?;
        view.duplicate = true;
        let mut meta = meta_of(&row)?;
        // Each time asked for now replaces its own kind; a final time is never
        // dropped by a call that names only a sliding one.
        if let Some(s) = opts.sliding {
            meta.sliding = Some(s);
        }
        if let Some(f) = opts.final_after {
            meta.final_after = Some(f);
        }
        let (expires, final_at) = expiry(now, meta.sliding, meta.final_after);
        meta.final_at = final_at;
        let expected = row.version;
        let record = RecordRow {
            updated: now,
            expires,
            version: expected + 1,
            meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
            ..row
        };
        let ops = vec![
            WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record,
                expected_version: Some(expected),
            },
            WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(
                    who,
                    Action::TokenCreate.with([&view.kind.name()]),
                    Some(&view.uuid),
                    "duplicate",
                ),
            },
        ];
        Ok((ops, view))
    }

    /// The writes a read of `row` makes: its audit event, and a sliding expiry
    /// moved on (at most once a minute, or each 1 % of the window if shorter).
    fn plan_read(
        &self,
        who: &Principal,
        row: &RecordRow,
        view: &TokenView,
        now: i64,
    ) -> Vec<WriteOp> {
        let mut ops = Vec::new();
        if let (Ok(meta), Some(current)) = (meta_of(row), row.expires)
            && let Some(wanted) = slid(now, current, meta.sliding, meta.final_at)
        {
            ops.push(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    updated: now,
                    expires: Some(wanted),
                    version: row.version + 1,
                    ..row.clone()
                },
                expected_version: Some(row.version),
            });
        }
        ops.push(WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: self.new_event(
                who,
                Action::TokenGet.with([&view.kind.name()]),
                Some(&view.uuid),
                "ok",
            ),
        });
        ops
    }

    /// The writes that delete expired `row` because it was asked for.
    fn plan_expired(&self, who: &Principal, row: &RecordRow) -> Vec<WriteOp> {
        self.expiry_deletion(who, row)
    }

    /// Commits a read's writes: a sliding expiry another writer moved first is
    /// left as that writer left it, the audit event is written regardless.
    async fn commit_reads(&self, ops: Vec<WriteOp>) -> Result<()> {
        match self.store.write(WriteOp::Atomic(ops.clone())).await {
            Err(StoreError::Stale) => {
                // A sliding expiry moved, or an expired token renewed, by another
                // writer: left as it left them.
                let audits: Vec<WriteOp> = ops
                    .into_iter()
                    .filter(|op| matches!(op, WriteOp::Audit { .. }))
                    .collect();
                Ok(self.store.write(WriteOp::Atomic(audits)).await?)
            }
            other => Ok(other?),
        }
    }

    /// Detokenizes `token` (its `tokenuuid` or `tokenbase`; root only; audited).
    pub async fn get_token(&self, who: &Principal, token: &str) -> Result<TokenView> {
        who.require_root()?;
        for _ in 0..3 {
            let row = self.find_token(token).await?.ok_or_else(not_found)?;
            let now = self.now();
            if !is_live(&row, now) {
                match self
                    .store
                    .write(WriteOp::Atomic(self.plan_expired(who, &row)))
                    .await
                {
                    Ok(()) => return Err(not_found()),
                    // Renewed by a `unique` create meanwhile: read it again.
                    Err(StoreError::Stale) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let view = self.open_token(&row)?;
            self.commit_reads(self.plan_read(who, &row, &view, now))
                .await?;
            return Ok(view);
        }
        Err(not_found())
    }

    /// Detokenizes many tokens (root only; each read audited): the live ones, in
    /// the order asked; unknown and expired ones are left out.
    pub async fn list_tokens(&self, who: &Principal, tokens: &[String]) -> Result<Vec<TokenView>> {
        who.require_root()?;
        if tokens.len() > MAX_BULK {
            return Err(Error::bad_request(format!(
                "at most {MAX_BULK} tokens per call"
            )));
        }
        let now = self.now();
        let mut ops = Vec::new();
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for token in tokens {
            let Some(row) = self.find_token(token).await? else {
                continue;
            };
            if !seen.insert(row.id.clone()) {
                continue;
            }
            if !is_live(&row, now) {
                ops.extend(self.plan_expired(who, &row));
                continue;
            }
            let view = self.open_token(&row)?;
            ops.extend(self.plan_read(who, &row, &view, now));
            out.push(view);
        }
        if !ops.is_empty() {
            self.commit_reads(ops).await?;
        }
        Ok(out)
    }

    /// Deletes `token` (either form; root only; audited).
    pub async fn delete_token(&self, who: &Principal, token: &str) -> Result<()> {
        let deleted = self.delete_tokens(who, &[token.to_string()]).await?;
        if deleted == 0 {
            return Err(not_found());
        }
        Ok(())
    }

    /// Deletes the tokens named (root only; each audited): how many there were.
    pub async fn delete_tokens(&self, who: &Principal, tokens: &[String]) -> Result<usize> {
        who.require_root()?;
        if tokens.len() > MAX_BULK {
            return Err(Error::bad_request(format!(
                "at most {MAX_BULK} tokens per call"
            )));
        }
        let mut ops = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for token in tokens {
            let Some(row) = self.find_token(token).await? else {
                continue;
            };
            if !seen.insert(row.id.clone()) {
                continue;
            }
            let kind = meta_of(&row).map(|m| m.kind).unwrap_or_default();
            ops.extend(self.token_deletion(&row));
            ops.push(WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(
                    who,
                    Action::TokenDelete.with([&kind]),
                    row.label.as_deref(),
                    "ok",
                ),
            });
        }
        if seen.is_empty() {
            return Ok(0);
        }
        self.store.write(WriteOp::Atomic(ops)).await?;
        Ok(seen.len())
    }

    /// How many tokens the tenant holds (expired ones count until swept).
    pub(crate) async fn count_tokens(&self) -> Result<u64> {
        let n = self
            .store
            .count_records(&self.tenant, RecordKind::Token.name())
            .await?;
        Ok(n.max(0) as u64)
    }

    /// Deletes expired tokens with their `unique` pointers (the sweeper's job).
    pub(crate) async fn purge_expired_fpt(&self) -> Result<()> {
        loop {
            let due = self
                .store
                .records_due_first(
                    &self.tenant,
                    RecordKind::Token.name(),
                    self.now(),
                    PURGE_BATCH,
                )
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            // Each on its own: one renewed since it was read stays (Stale).
            let ops: Vec<WriteOp> = due
                .iter()
                .map(|r| WriteOp::Atomic(self.expiry_deletion(&Principal::System, r)))
                .collect();
            for r in self.store.write_batch(ops).await? {
                match r {
                    Ok(()) | Err(StoreError::Stale) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if due.len() < PURGE_BATCH {
                return Ok(());
            }
        }
    }
}

/// A token as the v2 API shows it.
impl TokenView {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "tokenuuid": self.uuid,
            "record": self.record,
            "tokentype": self.kind.name(),
        });
        if let Some(base) = &self.base {
            v["tokenbase"] = Value::from(base.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_takes_the_earlier_of_the_two_times() {
        assert_eq!(expiry(100, None, None), (None, None));
        assert_eq!(expiry(100, Some(10), None), (Some(110), None));
        assert_eq!(expiry(100, None, Some(50)), (Some(150), Some(150)));
        assert_eq!(expiry(100, Some(10), Some(5)), (Some(105), Some(105)));
        assert_eq!(expiry(100, Some(10), Some(50)), (Some(110), Some(150)));
    }

    #[test]
    fn a_read_slides_the_expiry_up_to_the_final_time() {
        // No sliding window: nothing moves.
        assert_eq!(slid(100, 150, None, Some(150)), None);
        // A day's window moves once at least a minute has passed.
        let day = 86_400;
        assert_eq!(slid(100, 100 + day, Some(day), None), None);
        assert_eq!(slid(159, 100 + day, Some(day), None), None);
        assert_eq!(slid(160, 100 + day, Some(day), None), Some(160 + day));
        // Never past the final time.
        assert_eq!(slid(160, 100 + day, Some(day), Some(130 + day)), None);
        assert_eq!(
            slid(200, 100 + day, Some(day), Some(180 + day)),
            Some(180 + day)
        );
        // A short window moves each second.
        assert_eq!(slid(101, 104, Some(4), None), Some(105));
        assert_eq!(slid(101, 104, Some(4), Some(104)), None);
    }

    #[test]
    fn values_are_compared_in_their_canonical_form() {
        let o = TokenOptions::default();
        assert_eq!(
            canonical(TokenType::CreditCard, "4532-0151-1283-0366", &o).ok(),
            Some("4532015112830366".into())
        );
        assert_eq!(
            canonical(TokenType::Email, "Ann@Example.COM", &o).ok(),
            Some("ann@example.com".into())
        );
        assert_eq!(
            canonical(TokenType::Text, "Ann", &o).ok(),
            Some("Ann".into())
        );
        assert!(canonical(TokenType::Text, "", &o).is_err());
    }
}
