//! Passwordless login, in Databunker's shapes (prelogin sends a code, login trades it
//! for a user access token, a captcha guards prelogin) without its weaknesses:
//!
//! - a code is 6 digits from the OS's CSPRNG, stored only as a keyed hash, valid for
//!   [`CODE_LIFETIME`] seconds, used once, and dropped after [`MAX_CODE_TRIES`] wrong
//!   tries; no code works without a prelogin, and no code is fixed;
//! - a captcha token carries its own expiry under a MAC, and is spent by its first
//!   use, right or wrong (a `captcha` record under its keyed hash), so it can be
//!   neither replayed nor guessed at;
//! - a prelogin for an identity that is not in the vault does the same work and gets
//!   the same answer as one that is: only the delivery is skipped.
//!
//! Every secret here is a keyed hash under the tenant's token hasher, each use with its
//! own prefix, so none can stand for another (access-token digests hash bare UUIDs).

use serde_json::json;
use strongbox_crypto::random_bytes;
use strongbox_store::{RecordRow, StoreError, WriteOp};
use subtle::ConstantTimeEq;

use crate::kinds::{Action, RecordKind};
use crate::notify::Queue;
use crate::principal::Principal;
use crate::subjects::Mode;
use crate::tokens::IssuedToken;
use crate::{Error, ErrorKind, Result, Vault};

/// How long a login code works, in seconds.
pub const CODE_LIFETIME: i64 = 300;
/// Wrong codes tried before the code is dropped.
pub const MAX_CODE_TRIES: i64 = 5;
/// Most consents one login may record (the login page offers a handful).
const MAX_LOGIN_CONSENTS: usize = 16;
/// How long a captcha token can be redeemed, in seconds.
pub const CAPTCHA_LIFETIME: i64 = 300;

/// Bytes of a captcha token: expiry (8), nonce (16), MAC (16).
const CAPTCHA_BYTES: usize = 40;

/// A login code with no way to its owner (no delivery configured for its mode), and
/// where it would go: what a prelogin leaves to its caller (the demo prints it).
pub struct Delivery {
    pub mode: Mode,
    /// The normalized address (email or phone) the code goes to.
    pub address: String,
    pub code: String,
}

/// The one answer every failed login gets, whatever failed.
fn login_failed() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "login failed: the code is wrong, expired or already used",
    )
}

/// Only email and phone identities log in (Databunker's rule).
fn login_mode(mode: Mode) -> Result<&'static str> {
    match mode {
        Mode::Email => Ok("email"),
        Mode::Phone => Ok("phone"),
        _ => Err(Error::bad_request("bad mode: login is by email or phone")),
    }
}

/// A uniformly random number of 6 digits, 100000–999999.
fn six_digits() -> Result<String> {
    // Rejection sampling: values at or above the largest multiple of 900,000 that
    // fits in a u32 are drawn again, so every code is equally likely.
    const SPAN: u32 = 900_000;
    let limit = u32::MAX - u32::MAX % SPAN;
    loop {
        let mut b = [0u8; 4];
        random_bytes(&mut b).map_err(Error::internal)?;
        let n = u32::from_le_bytes(b);
        if n < limit {
            return Ok((100_000 + n % SPAN).to_string());
        }
    }
}

fn is_code(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

impl Vault {
    fn keyed(&self, purpose: &str, value: &str) -> [u8; 32] {
        self.token_hasher.hash(&format!("{purpose}\0{value}"))
    }

    /// A new captcha token (hex), redeemable once within [`CAPTCHA_LIFETIME`].
    pub fn new_captcha(&self) -> Result<String> {
        let mut raw = [0u8; CAPTCHA_BYTES];
        raw[..8].copy_from_slice(&(self.now() + CAPTCHA_LIFETIME).to_be_bytes());
        random_bytes(&mut raw[8..24]).map_err(Error::internal)?;
        let mac = self.keyed("captcha", &hex::encode(&raw[..24]));
        raw[24..].copy_from_slice(&mac[..16]);
        Ok(hex::encode(raw))
    }

    /// The 6 digits a captcha token shows, if the token is one of this vault's and
    /// has not expired. Rendering it spends nothing.
    pub fn captcha_answer(&self, token: &str) -> Result<String> {
        let bad = || Error::bad_request("bad captcha");
        let raw = hex::decode(token).map_err(|_| bad())?;
        if raw.len() != CAPTCHA_BYTES {
            return Err(bad());
        }
        let body = hex::encode(&raw[..24]);
        let mac = self.keyed("captcha", &body);
        if !bool::from(mac[..16].ct_eq(&raw[24..])) {
            return Err(bad());
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&raw[..8]);
        if i64::from_be_bytes(expiry) <= self.now() {
            return Err(Error::bad_request("captcha expired"));
        }
        let digits = self.keyed("captcha-answer", &body);
        let n = u32::from_le_bytes([digits[0], digits[1], digits[2], digits[3]]);
        Ok(format!("{:06}", n % 1_000_000))
    }

    /// Redeems a captcha token with the digits typed for it. Any attempt with a
    /// token of this vault spends it, right or wrong (so its digits cannot be guessed
    /// at), and only the first counts: a token already spent, expired or not this
    /// vault's, or wrong digits, fail with `captcha-error` (audited as a refused
    /// prelogin).
    pub async fn redeem_captcha(&self, mode: Mode, token: &str, typed: &str) -> Result<()> {
        let index = login_mode(mode)?;
        let answer = match self.captcha_answer(token) {
            Ok(a) => Some(a),
            Err(e) if e.kind == ErrorKind::BadRequest => None,
            Err(e) => return Err(e),
        };
        let mut right = false;
        if let Some(answer) = answer {
            // Hex of either case decodes to the same token: spend its one spelling.
            let now = self.now();
            let spent = WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    kind: RecordKind::CaptchaSpent.name().into(),
                    id: hex::encode(self.keyed("captcha-spent", &token.to_ascii_lowercase())),
                    created: now,
                    updated: now,
                    expires: Some(now + CAPTCHA_LIFETIME),
                    version: 1,
                    ..RecordRow::default()
                },
                expected_version: None,
            };
            right = match self.store.write(spent).await {
                Ok(()) => bool::from(answer.as_bytes().ct_eq(typed.as_bytes())),
                Err(StoreError::Duplicate(_) | StoreError::Stale) => false,
                Err(e) => return Err(e.into()),
            };
        }
        if right {
            return Ok(());
        }
        let event = self.new_event(
            &Principal::Anonymous,
            Action::LoginPrelogin.with([&index]),
            None,
            "captcha-error",
        );
        self.audit(event).await?;
        Err(Error::bad_request("captcha-error"))
    }

    /// The key the per-identity prelogin limit counts under: the mode and the
    /// normalized value (so `Ann@Example.com` and `ann@example.com`, or two ways of
    /// writing one phone number, share it), as a keyed hash.
    pub fn login_identity_key(&self, mode: Mode, identity: &str) -> Result<String> {
        let index = login_mode(mode)?;
        Ok(self.login_code_id(index, &self.login_address(index, identity)))
    }

    /// The normalized email or phone, or the value as given when it is not one (it
    /// then belongs to nobody, and is treated like any unknown identity).
    fn login_address(&self, index: &'static str, identity: &str) -> String {
        self.config
            .normalizer
            .normalize(index, identity)
            .unwrap_or_else(|| identity.to_string())
    }

    /// Databunker's prelogin, once the captcha (if any) is redeemed and the limits
    /// passed: stores a fresh code for `{mode}/{identity}` and, when the identity is
    /// a person in the vault, queues it for delivery by email or SMS in the same
    /// commit (sealed; see [`crate::notify`]). An unknown identity gets a code stored
    /// all the same (it can never log in) and nothing sent, so the two cannot be told
    /// apart. Returns the code only for a person whose mode has no delivery
    /// configured.
    pub async fn prelogin(&self, mode: Mode, identity: &str) -> Result<Option<Delivery>> {
        let index = login_mode(mode)?;
        let normalized = self.config.normalizer.normalize(index, identity);
        let address = normalized.clone().unwrap_or_else(|| identity.to_string());
        let user = match &normalized {
            Some(v) => self.find_by_index(index, v).await?,
            None => None,
        };
        let subject = user.filter(|u| u.erased.is_none()).map(|u| u.token);
        let code = six_digits()?;
        let id = self.login_code_id(index, &address);
        let now = self.now();
        let hash = hex::encode(self.keyed("login-code", &format!("{id}\0{code}")));
        let status = if subject.is_some() { "ok" } else { "not-found" };
        let event = self.new_event(
            &Principal::Anonymous,
            Action::LoginPrelogin.with([&index]),
            subject.as_deref(),
            status,
        );
        let delivers = match mode {
            Mode::Email => self.config.login_delivery.email,
            _ => self.config.login_delivery.phone,
        };
        let mut send = Vec::new();
        if delivers && subject.is_some() {
            let message = json!({"mode": index, "to": address, "code": code});
            // Labelled with the code's id (a keyed hash, no address): the worker sends
            // it only while it is still the identity's working code.
            send.push(self.queue_message(Queue::LoginCodes, &message, Some(&id))?);
        }
        self.upsert_record_with(
            RecordKind::LoginCode.name(),
            &id,
            |_| {
                Ok(RecordRow {
                    created: now,
                    updated: now,
                    expires: Some(now + CODE_LIFETIME),
                    meta: serde_json::to_vec(&json!({"hash": hash, "tries": 0})).ok(),
                    ..RecordRow::default()
                })
            },
            event,
            &send,
        )
        .await?;
        if !send.is_empty() {
            return Ok(None);
        }
        Ok(subject.map(|_| Delivery {
            mode,
            address,
            code,
        }))
    }

    /// Whether `code` is the working code kept under `id`: the newest prelogin's,
    /// not yet used, expired or dropped after wrong tries.
    pub(crate) async fn is_current_login_code(&self, id: &str, code: &str) -> Result<bool> {
        let kind = RecordKind::LoginCode.name();
        let Some(row) = self.store.record(&self.tenant, kind, id).await? else {
            return Ok(false);
        };
        if row.expires.is_none_or(|e| e <= self.now()) {
            return Ok(false);
        }
        let meta: serde_json::Value = row
            .meta
            .as_deref()
            .and_then(|m| serde_json::from_slice(m).ok())
            .unwrap_or_default();
        if meta["tries"].as_i64().unwrap_or(MAX_CODE_TRIES) >= MAX_CODE_TRIES {
            return Ok(false);
        }
        let stored = hex::decode(meta["hash"].as_str().unwrap_or("")).unwrap_or_default();
        let given = self.keyed("login-code", &format!("{id}\0{code}"));
        Ok(bool::from(given.as_slice().ct_eq(&stored)))
    }

    /// Where the login code of `{index}/{value}` is kept: a keyed hash, so the table
    /// holds no address.
    fn login_code_id(&self, index: &str, value: &str) -> String {
        hex::encode(self.keyed("login-code-id", &format!("{index}\0{value}")))
    }

    /// Databunker's login: trades the code of the last prelogin of `{mode}/{identity}`
    /// for a user access token. Any failure (no prelogin, wrong, expired or used code,
    /// too many tries, no such person) gives the same error.
    ///
    /// `consents`: legal bases (briefs) the person agreed to on the login page. They
    /// are recorded only now that the code proved the address is theirs, as the person
    /// (their new token), with method `login` and the time. Only the active legal
    /// bases of module `login` (what the page offers) are accepted; anything else is
    /// refused before the code is looked at, so a typo spends nothing. If they cannot
    /// be recorded, the new token is revoked and the error returned: a login either
    /// records every consent given or none is left behind as a working session.
    pub async fn login(
        &self,
        mode: Mode,
        identity: &str,
        code: &str,
        consents: &[String],
    ) -> Result<IssuedToken> {
        let index = login_mode(mode)?;
        let briefs = self.login_consents(consents).await?;
        let address = self.login_address(index, identity);
        let id = self.login_code_id(index, &address);
        let kind = RecordKind::LoginCode.name();
        let now = self.now();
        let Some(row) = self.store.record(&self.tenant, kind, &id).await? else {
            return Err(self.login_refused(index, None).await);
        };
        let meta: serde_json::Value = row
            .meta
            .as_deref()
            .and_then(|m| serde_json::from_slice(m).ok())
            .unwrap_or_default();
        let tries = meta["tries"].as_i64().unwrap_or(MAX_CODE_TRIES);
        if row.expires.is_none_or(|e| e <= now) || tries >= MAX_CODE_TRIES {
            return Err(self.login_refused(index, None).await);
        }
        let stored = hex::decode(meta["hash"].as_str().unwrap_or("")).unwrap_or_default();
        let given = self.keyed("login-code", &format!("{id}\0{code}"));
        let right = is_code(code) && bool::from(given.as_slice().ct_eq(&stored));
        // The code is spent (right) or charged a try (wrong) by a write that expects
        // the version read: of two logins racing with the same code, one wins.
        let used = RecordRow {
            updated: now,
            version: row.version + 1,
            expires: if right || tries + 1 >= MAX_CODE_TRIES {
                Some(now)
            } else {
                row.expires
            },
            meta: serde_json::to_vec(&json!({"hash": meta["hash"], "tries": tries + 1})).ok(),
            ..row.clone()
        };
        let charged = self
            .store
            .write(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: used,
                expected_version: Some(row.version),
            })
            .await;
        match charged {
            Ok(()) => {}
            Err(StoreError::Stale) => return Err(self.login_refused(index, None).await),
            Err(e) => return Err(e.into()),
        }
        if !right {
            return Err(self.login_refused(index, None).await);
        }
        let user = self.find_by_index(index, &address).await?;
        let Some(user) = user.filter(|u| u.erased.is_none()) else {
            return Err(self.login_refused(index, None).await);
        };
        let event = self.new_event(
            &Principal::Anonymous,
            Action::Login.with([&index]),
            Some(&user.token),
            "ok",
        );
        let issued = self.create_access_token(&user.token, None, event).await?;
        if !briefs.is_empty() {
            let person = self.user_principal(&issued.xtoken).await?;
            if let Err(e) = self
                .record_login_consents(&person, &user.token, &briefs, now)
                .await
            {
                if let Err(revoke) = self.revoke_user_token(&person, &issued.xtoken).await {
                    tracing::error!(error = %revoke, "a login's token could not be revoked after its consents failed");
                }
                return Err(e);
            }
        }
        Ok(issued)
    }

    /// The briefs of `?consent=`, checked against the login page's offer (the active
    /// legal bases of module `login`), without repeats.
    async fn login_consents(&self, consents: &[String]) -> Result<Vec<String>> {
        if consents.is_empty() {
            return Ok(Vec::new());
        }
        if consents.len() > MAX_LOGIN_CONSENTS {
            return Err(Error::bad_request("too many consents"));
        }
        let offered = self.active_legal_bases("login").await?;
        let mut briefs: Vec<String> = Vec::new();
        for brief in consents {
            let brief = crate::consent::parse_brief(brief, "incorrect brief format")?;
            if !offered.iter().any(|b| b["brief"] == brief.as_str()) {
                return Err(Error::not_found(
                    "no consent of the login page has that brief",
                ));
            }
            if !briefs.contains(&brief) {
                briefs.push(brief);
            }
        }
        Ok(briefs)
    }

    async fn record_login_consents(
        &self,
        person: &Principal,
        token: &str,
        briefs: &[String],
        now: i64,
    ) -> Result<()> {
        for brief in briefs {
            let mut body = serde_json::Map::new();
            body.insert("agreementmethod".into(), "login".into());
            body.insert("lastmodifiedby".into(), "login".into());
            body.insert("starttime".into(), now.into());
            self.accept_agreement(person, brief, Mode::Token, token, body)
                .await?;
        }
        Ok(())
    }

    /// Audits a refused login and returns its error; if the refusal cannot be
    /// audited, that error instead (no login attempt goes unrecorded).
    async fn login_refused(&self, index: &str, token: Option<&str>) -> Error {
        let event = self.new_event(
            &Principal::Anonymous,
            Action::Login.with([&index]),
            token,
            "denied",
        );
        match self.audit(event).await {
            Ok(()) => login_failed(),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_without_a_leading_zero() {
        for _ in 0..1000 {
            let c = six_digits().unwrap();
            assert!(is_code(&c) && !c.starts_with('0'), "{c}");
        }
    }

    #[test]
    fn only_six_ascii_digits_are_codes() {
        for bad in [
            "",
            "0",
            "00",
            "4444",
            "12345",
            "1234567",
            "12345a",
            "١٢٣٤٥٦",
        ] {
            assert!(!is_code(bad), "{bad}");
        }
        assert!(is_code("000000") && is_code("123456"));
    }
}
