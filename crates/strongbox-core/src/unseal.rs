//! Unsealing: collecting the Shamir shares of the root key until enough are in.
//!
//! A store initialized with `--shares N --threshold K` keeps only a hash of each
//! share ([`SealConfig`]). [`Unsealing`] takes shares one at a time: each is parsed
//! (its checksum catches typing errors), checked against those hashes (anything
//! that is not one of this split's shares is refused without touching the others'
//! progress), and counted once. When K are in they are combined into a candidate
//! root key, which the caller must still check against the store's canary by
//! opening the vault. Shares given longer ago than the timeout expire (logged).
//! Share material lives in memory reserved once and wiped when dropped.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use strongbox_crypto::RootKey;
use strongbox_crypto::shamir::Share;

use strongbox_store::Store;

use crate::error::Error;

/// The `meta` entry saying how the root key is kept (absent: the operator supplies it).
pub const META_SEAL: &str = "seal";

/// How the root key is kept when it is not supplied whole: split into Shamir shares.
/// The store keeps a hash of each share (by its x), so a share that is not one of
/// this split is refused on arrival instead of spoiling an unseal; the hashes reveal
/// nothing about the key (a missing share is as hard to guess as the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealConfig {
    pub shares: u8,
    pub threshold: u8,
    /// Hex SHA-256 of each share's text form, share 1 first.
    pub hashes: Vec<String>,
}

impl SealConfig {
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "type": "shamir",
            "shares": self.shares,
            "threshold": self.threshold,
            "hashes": self.hashes,
        })
        .to_string()
    }

    /// Whether `text` is share `x` of this split.
    pub fn knows(&self, x: u8, text: &str) -> bool {
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(text.trim().as_bytes()));
        x >= 1
            && self
                .hashes
                .get(usize::from(x) - 1)
                .is_some_and(|h| *h == hash)
    }

    /// The hash stored for a share's text form.
    pub fn hash_share(text: &str) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(text.trim().as_bytes()))
    }

    /// The configuration stored in `store`, if the store was initialized with shares.
    pub async fn of(store: &Store) -> crate::error::Result<Option<SealConfig>> {
        let Some(bytes) = store.meta_value(META_SEAL).await? else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(Error::internal)?;
        let n = |k: &str| v[k].as_u64().and_then(|x| u8::try_from(x).ok());
        let hashes: Option<Vec<String>> = v["hashes"].as_array().map(|a| {
            a.iter()
                .filter_map(|h| h.as_str().map(str::to_string))
                .collect()
        });
        match (v["type"].as_str(), n("shares"), n("threshold"), hashes) {
            (Some("shamir"), Some(shares), Some(threshold), Some(hashes))
                if hashes.len() == usize::from(shares) =>
            {
                Ok(Some(SealConfig {
                    shares,
                    threshold,
                    hashes,
                }))
            }
            _ => Err(Error::internal(
                "the stored seal configuration is not understood",
            )),
        }
    }
}

/// Why a share was not taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("not a valid share (mistyped or damaged: its checksum does not match)")]
    Malformed,
    #[error("not a share of this vault's key")]
    NotOurs,
    #[error("this share was given already")]
    AlreadyGiven,
    /// The threshold was met and the vault is being opened with the shares in.
    #[error("the vault is being unsealed with the shares already given")]
    Busy,
    #[error("the shares do not fit together")]
    DoNotFit,
}

/// What giving a share led to.
pub enum Given<'a> {
    /// More are needed.
    Counted,
    /// The threshold is met: the combined key, to be checked by opening the vault.
    Ready(Attempt<'a>),
}

/// An attempt to open the vault with the combined key. While it lives, further
/// shares wait (409); when it ends, however it ends (opened, refused, or the request
/// abandoned mid-way), the collection starts over from nothing.
pub struct Attempt<'a> {
    root: Option<RootKey>,
    unsealing: &'a Unsealing,
}

impl Attempt<'_> {
    /// The combined key (once).
    pub fn take_key(&mut self) -> Option<RootKey> {
        self.root.take()
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.unsealing.finished();
    }
}

#[derive(Default)]
struct Progress {
    shares: Vec<Share>,
    started: Option<Instant>,
    opening: bool,
}

/// The shares given so far to a sealed vault.
pub struct Unsealing {
    config: SealConfig,
    timeout: Duration,
    progress: Mutex<Progress>,
}

impl Unsealing {
    pub fn new(config: SealConfig, timeout: Duration) -> Unsealing {
        Unsealing {
            config,
            timeout,
            progress: Mutex::new(Progress::default()),
        }
    }

    pub fn config(&self) -> &SealConfig {
        &self.config
    }

    // Each change to the progress is one assignment, so a panic elsewhere never
    // leaves it half-done behind a poisoned lock.
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expire_locked(&self, p: &mut Progress) {
        if !p.opening && p.started.is_some_and(|t| t.elapsed() > self.timeout) {
            tracing::warn!(
                dropped = p.shares.len(),
                timeout_secs = self.timeout.as_secs(),
                "unseal shares expired before the threshold was met; the keepers must start again"
            );
            *p = Progress::default();
        }
    }

    /// Drops the shares if they were given longer ago than the timeout.
    pub fn expire(&self) {
        self.expire_locked(&mut self.lock());
    }

    /// Shares in so far (after expiry).
    pub fn given(&self) -> usize {
        let mut p = self.lock();
        self.expire_locked(&mut p);
        p.shares.len()
    }

    /// Whether the vault is being opened with the shares in.
    pub fn opening(&self) -> bool {
        self.lock().opening
    }

    /// Takes one share in its text form.
    pub fn give(&self, text: &str) -> Result<Given<'_>, ShareError> {
        let share = Share::parse(text).map_err(|_| ShareError::Malformed)?;
        if share.threshold != self.config.threshold || !self.config.knows(share.x, text) {
            return Err(ShareError::NotOurs);
        }
        let shares = {
            let mut p = self.lock();
            if p.opening {
                return Err(ShareError::Busy);
            }
            self.expire_locked(&mut p);
            if p.shares.iter().any(|s| s.x == share.x) {
                return Err(ShareError::AlreadyGiven);
            }
            if p.shares.capacity() == 0 {
                // Reserved once: growing would copy shares to new memory and leave
                // the old copy unwiped.
                p.shares.reserve_exact(usize::from(self.config.threshold));
            }
            p.started.get_or_insert_with(Instant::now);
            p.shares.push(share);
            if p.shares.len() < usize::from(self.config.threshold) {
                return Ok(Given::Counted);
            }
            p.opening = true;
            std::mem::take(&mut p.shares)
        };
        let root = RootKey::from_shares(&shares);
        drop(shares);
        match root {
            Ok(root) => Ok(Given::Ready(Attempt {
                root: Some(root),
                unsealing: self,
            })),
            Err(_) => {
                self.finished();
                Err(ShareError::DoNotFit)
            }
        }
    }

    /// Starts the collection over from nothing.
    fn finished(&self) {
        *self.lock() = Progress::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(k: u8, n: u8) -> (Unsealing, Vec<String>, RootKey) {
        let root = RootKey::generate().unwrap();
        let texts: Vec<String> = root
            .split(n, k)
            .unwrap()
            .iter()
            .map(|s| s.to_text().to_string())
            .collect();
        let config = SealConfig {
            shares: n,
            threshold: k,
            hashes: texts.iter().map(|t| SealConfig::hash_share(t)).collect(),
        };
        (Unsealing::new(config, Duration::from_secs(60)), texts, root)
    }

    #[test]
    fn collects_checks_and_combines() {
        let (u, texts, root) = setup(2, 3);
        assert_eq!(u.give("sbx1-nonsense").err(), Some(ShareError::Malformed));
        let (_, others, _) = setup(2, 3);
        assert_eq!(u.give(&others[0]).err(), Some(ShareError::NotOurs));
        assert!(matches!(u.give(&texts[1]), Ok(Given::Counted)));
        assert_eq!(u.give(&texts[1]).err(), Some(ShareError::AlreadyGiven));
        assert_eq!(u.given(), 1);
        let Ok(Given::Ready(mut attempt)) = u.give(&texts[2]) else {
            panic!("two shares of a 2-of-3 split must combine");
        };
        assert!(u.opening());
        assert_eq!(u.give(&texts[0]).err(), Some(ShareError::Busy));
        let key = attempt.take_key().unwrap();
        assert!(key.check_canary(&root.make_canary().unwrap()));
        // However the attempt ends, the collection starts over.
        drop(attempt);
        assert!(!u.opening());
        assert_eq!(u.given(), 0);
    }

    #[test]
    fn shares_expire() {
        let (mut u, texts, _) = setup(2, 2);
        u.timeout = Duration::ZERO;
        assert!(matches!(u.give(&texts[0]), Ok(Given::Counted)));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(u.given(), 0);
    }
}
