//! Fuzzy search over keyed trigram digests (`--search`, off by default).
//!
//! Each indexed field (`login`, `email`, `phone`, `custom`) of a live profile is
//! cut into padded, lower-case trigrams (`"  a"`, `" an"`, `"ann"`, `"nn "` for
//! `ann`); each distinct trigram becomes one entry of the user index under the
//! name `g:<field>`, whose digest is the first 16 bytes of an HMAC of the trigram
//! under a key derived from the index secret for that field, followed by the 16
//! bytes of the person's token (so that many people can hold one trigram). A search
//! cuts the query the same way, looks each trigram's digest prefix up (a range of
//! the primary key), counts per person how many of the query's rarer trigrams they
//! hold (one held by more than [`COMMON_GRAM`] people finds no candidates), and then
//! opens the best candidates and checks them on the plaintext the caller may see,
//! with every trigram, so what comes back never depends on the digests alone.
//!
//! The entries ride on the blind-index machinery: written with the profile's own
//! entries in the same statement (create, update, restore), under every index-key
//! version in the ring (rotation backfills and purges them), and dropped with them
//! (erasure, soft delete). Turning search on builds them for everyone already in
//! the vault (a background pass; searches answer 503 until it is done); turning it
//! off drops them all. `docs/security-model.md` says what they reveal.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use strongbox_crypto::IndexSecret;
use strongbox_store::{IndexEntry, RecordRow, Reindexed, UserRow, WriteOp};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::kinds::{Action, RecordKind};
use crate::normalize::USER_INDEXES;
use crate::principal::Principal;
use crate::trash::Hidden;
use crate::vault::Vault;

/// The index names of the trigram entries, one per indexed field.
pub const GRAM_INDEXES: [&str; 4] = ["g:login", "g:email", "g:phone", "g:custom"];

/// Characters of a value (or query) that are cut into trigrams; the rest of a
/// longer value is not searchable.
pub const MAX_GRAM_CHARS: usize = 128;

/// Share of the query's trigrams a person must hold in one field to match.
pub const MATCH_THRESHOLD: f64 = 0.5;

/// Most people a search returns.
pub const MAX_RESULTS: usize = 100;

/// Holders past which a trigram is too common to find candidates by (`"  a"`,
/// `"com"`, a shared domain's): it is not read further, and counts only when the
/// candidates found by the rarer ones are checked. This bounds a search's reads
/// and memory whatever the vault's size.
pub const COMMON_GRAM: usize = 2_000;

/// Most candidates opened and checked on their plaintext.
const MAX_CANDIDATES: usize = 400;

/// Bytes of a trigram's HMAC kept in an entry's digest (before the token's 16).
const GRAM_DIGEST_BYTES: usize = 16;

/// The marker record (kind `search`): present while entries exist; its label says
/// whether every person has theirs (`built`) or the build pass is still running.
const MARKER_ID: &str = "index";
const BUILT: &str = "built";
const BUILDING: &str = "building";

/// The trigram index name of field `name`.
pub(crate) fn gram_index(name: &str) -> Option<&'static str> {
    USER_INDEXES
        .iter()
        .position(|n| *n == name)
        .map(|i| GRAM_INDEXES[i])
}

/// The distinct padded trigrams of a value: lower case, NFC, its first
/// [`MAX_GRAM_CHARS`] characters, two spaces before and one after.
pub fn trigrams(value: &str) -> BTreeSet<String> {
    let lower: String = value.trim().nfc().collect::<String>().to_lowercase();
    let chars: Vec<char> = "  "
        .chars()
        .chain(lower.chars().take(MAX_GRAM_CHARS))
        .chain(" ".chars())
        .collect();
    chars.windows(3).map(|w| w.iter().collect()).collect()
}

/// The share of `query`'s trigrams that `held` has.
fn share(query: &BTreeSet<String>, held: &BTreeSet<String>) -> f64 {
    if query.is_empty() {
        return 0.0;
    }
    query.intersection(held).count() as f64 / query.len() as f64
}

/// The 16 bytes that end a person's entries: their token's UUID bytes.
fn token_bytes(token: &str) -> Vec<u8> {
    match hex::decode(token.replace('-', "")) {
        Ok(b) if b.len() == 16 => b,
        _ => Sha256::digest(token.as_bytes())[..16].to_vec(),
    }
}

/// One person's trigram entries under `secret` for their indexed values.
fn entries_under(
    secret: &IndexSecret,
    token: &str,
    indexes: &[(&'static str, String)],
) -> Vec<IndexEntry> {
    let suffix = token_bytes(token);
    let mut out = Vec::new();
    for (field, value) in indexes {
        let Some(name) = gram_index(field) else {
            continue;
        };
        let key = secret.index_key(&format!("gram/{field}"));
        for gram in trigrams(value) {
            let mut digest = key.digest(&gram)[..GRAM_DIGEST_BYTES].to_vec();
            digest.extend_from_slice(&suffix);
            out.push(IndexEntry {
                name,
                digest,
                key_version: secret.version,
            });
        }
    }
    out
}

/// A person found by a search: how well, and what the caller sees of them.
#[derive(Debug)]
pub struct Found {
    pub token: String,
    pub version: i64,
    pub profile: Zeroizing<Vec<u8>>,
    /// The best share of the query's trigrams one of the searched fields holds.
    pub score: f64,
}

/// Where the build pass stands in one tenant (the job that runs it owns it).
#[derive(Default)]
pub struct Cursor {
    /// Nothing left to do in this process (built, or dropped, or never on).
    settled: bool,
    after: String,
}

impl Vault {
    /// The trigram entries of a person's indexed values, under every index-key
    /// version in the ring; none while search is off.
    pub(crate) fn gram_entries(
        &self,
        token: &str,
        indexes: &[(&'static str, String)],
    ) -> Result<Vec<IndexEntry>> {
        if !self.config.search {
            return Ok(Vec::new());
        }
        let ring = self.keys.indexes();
        ring.usable()?;
        Ok(ring
            .all
            .values()
            .flat_map(|s| entries_under(s, token, indexes))
            .collect())
    }

    /// The trigram entries under one index secret (a rotation's backfill).
    pub(crate) fn gram_entries_under(
        &self,
        secret: &IndexSecret,
        token: &str,
        indexes: &[(&'static str, String)],
    ) -> Vec<IndexEntry> {
        if !self.config.search {
            return Vec::new();
        }
        entries_under(secret, token, indexes)
    }

    async fn search_marker(&self) -> Result<Option<RecordRow>> {
        Ok(self
            .store
            .record(&self.tenant, RecordKind::SearchIndex.name(), MARKER_ID)
            .await?)
    }

    fn marker_op(&self, state: &str, expected_version: Option<i64>) -> WriteOp {
        let now = self.now();
        WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: RecordRow {
                kind: RecordKind::SearchIndex.name().into(),
                id: MARKER_ID.into(),
                label: Some(state.into()),
                created: now,
                updated: now,
                ..RecordRow::default()
            },
            expected_version,
        }
    }

    /// One step of the search index's upkeep: with search on, the trigram entries
    /// of up to `batch` people who may not have them yet; with it off, every entry
    /// dropped. The number of people done (0: nothing left).
    pub async fn search_pass(&self, cursor: &mut Cursor, batch: usize) -> Result<usize> {
        if cursor.settled {
            return Ok(0);
        }
        let marker = self.search_marker().await?;
        if !self.config.search {
            if let Some(m) = marker {
                let ops = vec![
                    WriteOp::DropIndexes {
                        tenant: self.tenant.clone(),
                        names: GRAM_INDEXES.to_vec(),
                    },
                    WriteOp::DeleteRecordAt {
                        tenant: self.tenant.clone(),
                        kind: RecordKind::SearchIndex.name().into(),
                        id: MARKER_ID.into(),
                        version: m.version,
                    },
                    WriteOp::Audit {
                        tenant: self.tenant.clone(),
                        audit: self.new_event(&Principal::System, Action::SearchDrop, None, "ok"),
                    },
                ];
                self.store.write(WriteOp::Atomic(ops)).await?;
            }
            cursor.settled = true;
            return Ok(0);
        }
        let marker = match marker {
            Some(m) if m.label.as_deref() == Some(BUILT) => {
                cursor.settled = true;
                return Ok(0);
            }
            Some(m) => m,
            None => {
                // The marker goes first: entries may exist from here on, so that
                // turning search off later finds them.
                match self.store.write(self.marker_op(BUILDING, None)).await {
                    Ok(()) | Err(strongbox_store::StoreError::Duplicate(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                return Ok(1);
            }
        };
        let users = self
            .store
            .users_after(&self.tenant, &cursor.after, batch)
            .await?;
        let Some(last) = users.last() else {
            // Every person was walked after the marker was set: anyone written since
            // then has their entries from that write.
            match self
                .store
                .write(self.marker_op(BUILT, Some(marker.version)))
                .await
            {
                Ok(()) | Err(strongbox_store::StoreError::Stale) => {}
                Err(e) => return Err(e.into()),
            }
            cursor.settled = true;
            return Ok(0);
        };
        cursor.after = last.token.clone();
        let done = users.len();
        let mut rows = Vec::new();
        for user in users {
            if let Some(r) = self.gram_backfill(&user)? {
                rows.push(r);
            }
        }
        if !rows.is_empty() {
            self.store
                .write(WriteOp::Reindex {
                    tenant: self.tenant.clone(),
                    rows,
                    audit: self.new_event(&Principal::System, Action::SearchBuild, None, "ok"),
                })
                .await?;
        }
        Ok(done)
    }

    /// The entries a live person should have, written only if their row is still
    /// at the version read. `None` for the erased and the soft-deleted.
    fn gram_backfill(&self, user: &UserRow) -> Result<Option<Reindexed>> {
        if user.erased.is_some() || user.data.is_none() {
            return Ok(None);
        }
        let Some(dek) = self.dek_of(user)? else {
            return Ok(None);
        };
        let plain = self.decrypt_profile(user, &dek)?;
        let profile: Map<String, Value> =
            serde_json::from_slice(&plain).map_err(Error::internal)?;
        let entries = self.gram_entries(&user.token, &self.indexes_of(&profile))?;
        Ok((!entries.is_empty()).then(|| Reindexed {
            token: user.token.clone(),
            version: user.version,
            entries,
        }))
    }

    /// `UserSearch`: the people whose login, phone or custom value (or email, when
    /// `identity` holds an `@`) is close to `identity`, best first, at most
    /// `limit` (≤ [`MAX_RESULTS`]); each profile as `who` may see it, each an
    /// audited read. Root, or a role whose policies allow the listing.
    pub async fn search_users(
        &self,
        who: &Principal,
        identity: &str,
        limit: usize,
    ) -> Result<Vec<Found>> {
        who.may_list()?;
        if !self.config.search {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "search is disabled: the vault runs without --search",
            ));
        }
        match self.search_marker().await? {
            Some(m) if m.label.as_deref() == Some(BUILT) => {}
            _ => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the search index is still being built; try again shortly",
                ));
            }
        }
        let query = identity.trim();
        if query.chars().count() < 3 {
            return Err(Error::bad_request(
                "identity must have at least 3 characters",
            ));
        }
        let fields: &[&'static str] = if query.contains('@') {
            &["email"]
        } else {
            &["login", "phone", "custom"]
        };
        let queries: Vec<(&'static str, BTreeSet<String>)> = fields
            .iter()
            .map(|f| (*f, trigrams(&self.query_form(f, query))))
            .collect();
        let secrets: Vec<_> = {
            let ring = self.keys.indexes();
            ring.usable()?;
            ring.all.values().cloned().collect()
        };
        // Per person, the best share of one field's rarer query trigrams they hold.
        let mut best: HashMap<String, f64> = HashMap::new();
        let (mut any_rare, mut any_common) = (false, false);
        for (field, grams) in &queries {
            let Some(name) = gram_index(field) else {
                continue;
            };
            let mut held: HashMap<String, usize> = HashMap::new();
            let mut rare = 0usize;
            let keys: Vec<_> = secrets
                .iter()
                .map(|s| s.index_key(&format!("gram/{field}")))
                .collect();
            for gram in grams {
                let mut holders = BTreeSet::new();
                for key in &keys {
                    let prefix = key.digest(gram)[..GRAM_DIGEST_BYTES].to_vec();
                    let (mut lo, mut hi) = (prefix.clone(), prefix);
                    lo.extend_from_slice(&[0u8; 16]);
                    hi.extend_from_slice(&[0xffu8; 16]);
                    holders.extend(
                        self.store
                            .index_range_tokens(&self.tenant, name, (&lo, &hi), COMMON_GRAM + 1)
                            .await?,
                    );
                }
                // Held by nobody: it finds no one (and a typo's trigrams are such).
                if holders.is_empty() {
                    continue;
                }
                if holders.len() > COMMON_GRAM {
                    any_common = true;
                    continue;
                }
                rare += 1;
                for token in holders {
                    *held.entry(token).or_default() += 1;
                }
            }
            if rare == 0 {
                continue;
            }
            any_rare = true;
            for (token, n) in held {
                let s = n as f64 / rare as f64;
                let b = best.entry(token).or_default();
                *b = b.max(s);
            }
        }
        if !any_rare && any_common {
            return Err(Error::bad_request(
                "The identity is too common to search: give more of it",
            ));
        }
        let mut candidates: Vec<(String, f64)> = best
            .into_iter()
            .filter(|(_, s)| *s >= MATCH_THRESHOLD)
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        candidates.truncate(MAX_CANDIDATES);
        // Opened and checked on what the caller may see; only those returned are
        // audited as read.
        let mut found = Vec::new();
        for (token, _) in candidates {
            let Some(row) = self.store.user(&self.tenant, &token).await? else {
                continue;
            };
            if row.erased.is_some() || row.data.is_none() {
                continue;
            }
            let Some(dek) = self.dek_of(&row)? else {
                continue;
            };
            let plain = self.decrypt_profile(&row, &dek)?;
            let whole: Map<String, Value> =
                serde_json::from_slice(&plain).map_err(Error::internal)?;
            let Some(seen) = self.as_seen(who, &row.token, plain).await? else {
                continue;
            };
            let profile: Map<String, Value> =
                serde_json::from_slice(&seen).map_err(Error::internal)?;
            // Only fields the caller sees as they are count: a starred or dropped
            // one must not match (a query holding the stars would, and tell what
            // is behind them).
            let score = queries
                .iter()
                .filter(|(field, _)| profile.get(*field) == whole.get(*field))
                .filter_map(|(field, grams)| {
                    self.config
                        .normalizer
                        .field(field, profile.get(*field))
                        .map(|v| share(grams, &trigrams(&v)))
                })
                .fold(0.0, f64::max);
            if score >= MATCH_THRESHOLD {
                found.push(Found {
                    token: row.token,
                    version: row.version,
                    profile: seen,
                    score,
                });
            }
        }
        found.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.token.cmp(&b.token))
        });
        found.truncate(limit.clamp(1, MAX_RESULTS));
        if !found.is_empty() {
            let events = found
                .iter()
                .map(|f| WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: self.new_event(who, Action::UserSearch, Some(&f.token), "ok"),
                })
                .collect();
            self.store.write(WriteOp::Atomic(events)).await?;
        }
        Ok(found)
    }

    /// `SystemSearchUserProfiles`: [`Vault::search_users`] in every tenant (the
    /// main vault's root), the main tenant first, each tenant's best first.
    pub async fn system_search_profiles(
        &self,
        who: &Principal,
        identity: &str,
        limit: usize,
    ) -> Result<Vec<(Hidden, Found)>> {
        let mut out = Vec::new();
        for (info, vault) in self.tenants_for(who, None).await? {
            let v: &Vault = vault.as_deref().unwrap_or(self);
            for f in v.search_users(who, identity, limit).await? {
                out.push((
                    Hidden {
                        token: f.token.clone(),
                        tenant_id: info.id,
                        tenant_name: info.name.clone(),
                    },
                    f,
                ));
            }
        }
        Ok(out)
    }

    /// The query as field `field` holds values: a phone query keeps its digits
    /// (and a leading `+`), or its E.164 form when it is a whole number.
    fn query_form(&self, field: &str, query: &str) -> String {
        if field != "phone" {
            return query.to_string();
        }
        if let Some(e164) = self.config.normalizer.normalize("phone", query) {
            return e164;
        }
        query
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_are_padded_lower_case_and_distinct() {
        let g = trigrams(" Ann ");
        let want: BTreeSet<String> = ["  a", " an", "ann", "nn "]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(g, want);
        assert_eq!(trigrams("aaaa").len(), 4, "  a, ' aa', aaa, 'aa '");
        let long = "x".repeat(1000) + "y";
        assert!(!trigrams(&long).iter().any(|g| g.contains('y')));
    }

    #[test]
    fn a_typo_or_a_part_still_matches_and_a_stranger_does_not() {
        let q = trigrams("jon");
        assert!(share(&q, &trigrams("john")) >= MATCH_THRESHOLD);
        let q = trigrams("ann.smith@exmple.com");
        assert!(share(&q, &trigrams("ann.smith@example.com")) >= 0.8);
        assert!(share(&q, &trigrams("bob.jones@example.org")) < MATCH_THRESHOLD);
        assert_eq!(share(&BTreeSet::new(), &q), 0.0);
    }

    #[test]
    fn entries_hold_the_token_after_the_gram_digest() {
        let secret = IndexSecret::new(1, strongbox_crypto::SecretKey::generate().expect("a key"));
        let token = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
        let e = entries_under(&secret, token, &[("login", "ann".into())]);
        assert_eq!(e.len(), 4);
        assert!(
            e.iter()
                .all(|e| e.name == "g:login" && e.digest.len() == 32)
        );
        assert!(e.iter().all(|e| e.digest[16..] == token_bytes(token)[..]));
        // Another field's key gives other digests for the same trigram.
        let f = entries_under(&secret, token, &[("custom", "ann".into())]);
        assert_ne!(e[0].digest, f[0].digest);
    }
}
