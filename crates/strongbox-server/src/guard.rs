//! Rate limits that stop guessing, not traffic. Failed attempts — a token that does
//! not authenticate, a shared record or retention link that does not exist, a share
//! that is not the vault's — take one unit from their client address's bucket; a
//! bucket refills at `per_minute`, holds at most `burst`. While it is empty, failing
//! requests from that address answer 429 with `Retry-After` instead of their usual
//! answer (so nothing more is learnt by guessing faster), and requests that succeed
//! are never slowed: valid-token traffic from a shared address is not limited.
//!
//! Optionally (off by default) each valid access token has a bucket of its own too,
//! refilled at `token_per_second`: a client, or a stolen token, cannot monopolise
//! the vault. Tokens are kept only as keyed 64-bit hashes, never as text.
//!
//! The client address is the peer's, unless the peer is one of the trusted proxies:
//! then it is the nearest address in `X-Forwarded-For` (or `Forwarded: for=`) that is
//! not a trusted proxy itself. Anyone else's forwarding headers are ignored.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::error::error_response;

/// Failed attempts refused with 429.
pub static LIMITED: AtomicU64 = AtomicU64::new(0);
/// Requests with a valid token refused with 429 (the optional per-token limit).
pub static TOKEN_LIMITED: AtomicU64 = AtomicU64::new(0);
/// Prelogins refused by the per-identity or per-address limit.
pub static PRELOGIN_LIMITED: AtomicU64 = AtomicU64::new(0);

/// A network, `10.0.0.0/8` or `::1/128` (a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let bad = || format!("not an address or network: {s:?} (expected e.g. 10.0.0.0/8)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> Option<u128> {
            match (self.net, ip) {
                (IpAddr::V4(_), IpAddr::V4(v)) => Some(u128::from(u32::from(v)) << 96),
                (IpAddr::V6(_), IpAddr::V6(v)) => Some(u128::from(v)),
                _ => None,
            }
        };
        let (Some(net), Some(ip)) = (bits(self.net), bits(ip)) else {
            return false;
        };
        let mask = if self.prefix == 0 {
            0
        } else {
            let width = if self.net.is_ipv4() { 32 } else { 128 };
            let shift = 128 - u32::from(self.prefix.min(width));
            let top = if self.net.is_ipv4() { 96 } else { 0 };
            (u128::MAX << shift) & (u128::MAX << top)
        };
        net & mask == ip & mask
    }
}

/// The limit's settings.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// Failed attempts per minute an address regains.
    pub per_minute: u32,
    /// Failed attempts an address may make in a burst.
    pub burst: u32,
    /// Peers whose forwarding headers name the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Requests per second each valid token regains; 0 turns the limit off.
    pub token_per_second: u32,
    /// Requests a valid token may make in a burst.
    pub token_burst: u32,
    /// Login codes one identity may be sent per [`PRELOGIN_WINDOW`].
    pub prelogin_per_identity: u32,
    /// Login codes one address may ask for per [`PRELOGIN_WINDOW`].
    pub prelogin_per_address: u32,
}

/// The window of the prelogin limits, in seconds: a limit of n lets n through at
/// once, then one every window/n seconds.
pub const PRELOGIN_WINDOW: f64 = 900.0;

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            per_minute: 10,
            burst: 20,
            trusted_proxies: Vec::new(),
            token_per_second: 0,
            token_burst: 100,
            prelogin_per_identity: 5,
            prelogin_per_address: 30,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// Refusing now (set by a refusal, cleared when an attempt is allowed again).
    refusing: bool,
}

/// A failed attempt over its address's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Seconds until the address may try again.
    pub retry_after: u64,
    /// The first refusal of this episode (what the audit log records).
    pub first: bool,
}

/// Token buckets by key, in bounded memory.
struct Buckets<K> {
    map: Mutex<HashMap<K, Bucket>>,
    /// What the keys are, for the log line when too many are tracked.
    what: &'static str,
}

impl<K: Hash + Eq> Buckets<K> {
    fn new(what: &'static str) -> Self {
        Buckets {
            map: Mutex::new(HashMap::new()),
            what,
        }
    }

    /// Takes one unit from `key`'s bucket (refilled at `rate` per second, holding
    /// at most `burst`), or says how long until one is there.
    fn take(&self, key: K, rate: f64, burst: f64) -> Result<(), Refused> {
        let now = Instant::now();
        let mut buckets = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= TRACKED {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= TRACKED_MAX {
                tracing::warn!(
                    tracked = buckets.len(),
                    "too many {} to track their limits; their counts start over",
                    self.what
                );
                buckets.clear();
            }
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
            refusing: false,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.refusing = false;
            Ok(())
        } else {
            let first = !b.refusing;
            b.refusing = true;
            Err(Refused {
                retry_after: ((1.0 - b.tokens) / rate).ceil().max(1.0) as u64,
                first,
            })
        }
    }
}

/// The per-address buckets of failed attempts, and the optional per-token ones.
pub struct Guard {
    config: GuardConfig,
    buckets: Buckets<IpAddr>,
    tokens: Buckets<u64>,
    prelogin_addresses: Buckets<IpAddr>,
    prelogin_identities: Buckets<u64>,
    /// Keys the tokens' and identities' hashes (SipHash under a key drawn at start).
    token_keys: RandomState,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("config", &self.config)
            .finish()
    }
}

/// Addresses tracked before full buckets are dropped.
const TRACKED: usize = 10_000;
/// Addresses tracked at most: past this even partly used buckets are dropped, so a
/// flood from many addresses costs bounded memory (the limit then restarts for all).
const TRACKED_MAX: usize = 4 * TRACKED;

/// The bucket an address counts in: itself, or its /64 for IPv6 (one host usually
/// holds a whole /64, and could otherwise use a fresh address per attempt).
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
    }
}

impl Guard {
    pub fn new(config: GuardConfig) -> Guard {
        Guard {
            config,
            buckets: Buckets::new("addresses with failed attempts"),
            tokens: Buckets::new("access tokens"),
            prelogin_addresses: Buckets::new("addresses asking for login codes"),
            prelogin_identities: Buckets::new("identities sent login codes"),
            token_keys: RandomState::new(),
        }
    }

    /// The client's address (see the module's text).
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip();
        let trusted = |ip: IpAddr| self.config.trusted_proxies.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            return Some(peer);
        }
        // Hops as the proxies appended them, nearest last.
        let mut hops: Vec<IpAddr> = Vec::new();
        for v in headers.get_all(header::FORWARDED) {
            for part in v.to_str().unwrap_or("").split([',', ';']) {
                if let Some(addr) = part.trim().strip_prefix("for=") {
                    let addr = addr.trim_matches('"').trim_start_matches('[');
                    let addr = addr.split(']').next().unwrap_or(addr);
                    if let Ok(ip) = addr.parse::<IpAddr>() {
                        hops.push(ip);
                    } else if let Ok(sa) = addr.parse::<SocketAddr>() {
                        hops.push(sa.ip());
                    }
                }
            }
        }
        if hops.is_empty() {
            for v in headers.get_all("x-forwarded-for") {
                for part in v.to_str().unwrap_or("").split(',') {
                    if let Ok(ip) = part.trim().parse::<IpAddr>() {
                        hops.push(ip);
                    }
                }
            }
        }
        Some(
            hops.into_iter()
                .rev()
                .find(|ip| !trusted(*ip))
                .unwrap_or(peer),
        )
    }

    /// Records a failed attempt from `ip`; refused when the address is over its limit.
    pub fn failed(&self, ip: IpAddr) -> Result<(), Refused> {
        let rate = f64::from(self.config.per_minute.max(1)) / 60.0;
        let burst = f64::from(self.config.burst.max(1));
        self.buckets
            .take(bucket_key(ip), rate, burst)
            .inspect_err(|_| {
                LIMITED.fetch_add(1, Ordering::Relaxed);
            })
    }

    /// Counts a prelogin from `ip`; refused when the address is over its limit.
    pub fn prelogin_address(&self, ip: IpAddr) -> Result<(), Refused> {
        let n = self.config.prelogin_per_address;
        prelogin_take(&self.prelogin_addresses, bucket_key(ip), n)
    }

    /// Counts a login code for `identity` (its mode and normalized value); refused
    /// when that identity is over its limit.
    pub fn prelogin_identity(&self, identity: &str) -> Result<(), Refused> {
        let key = self.token_keys.hash_one(identity);
        let n = self.config.prelogin_per_identity;
        prelogin_take(&self.prelogin_identities, key, n)
    }

    /// Counts a request made with a valid `token`; refused when the per-token limit
    /// is on and the token is over it.
    pub fn token_used(&self, token: &str) -> Result<(), Refused> {
        if self.config.token_per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(self.config.token_per_second);
        let burst = f64::from(self.config.token_burst.max(1));
        self.tokens
            .take(self.token_keys.hash_one(token), rate, burst)
            .inspect_err(|_| {
                TOKEN_LIMITED.fetch_add(1, Ordering::Relaxed);
            })
    }
}

/// Takes one unit from a prelogin bucket that holds `per_window` and refills as much
/// per [`PRELOGIN_WINDOW`].
fn prelogin_take<K: Hash + Eq>(
    buckets: &Buckets<K>,
    key: K,
    per_window: u32,
) -> Result<(), Refused> {
    let n = f64::from(per_window.max(1));
    buckets.take(key, n / PRELOGIN_WINDOW, n).inspect_err(|_| {
        PRELOGIN_LIMITED.fetch_add(1, Ordering::Relaxed);
    })
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Failed attempts from one address.
    Address,
    /// Requests with one valid access token.
    Token,
    /// Login codes asked for one identity or from one address.
    Prelogin,
}

/// 429 with `Retry-After` and a JSON error naming the limit.
pub fn too_many(retry_after: u64, limit: Limit) -> Response {
    let message = match limit {
        Limit::Address => "too many failed attempts from this address: wait before trying again",
        Limit::Token => "too many requests with this access token: wait before trying again",
        Limit::Prelogin => "too many login codes asked for: wait before trying again",
    };
    let mut resp = error_response(StatusCode::TOO_MANY_REQUESTS, message);
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "a test fails loudly at the first surprise; unwrap is how it says so"
    )]

    use super::*;

    #[test]
    fn networks() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let g = Guard::new(GuardConfig {
            trusted_proxies: vec![Cidr::parse("10.0.0.0/8").unwrap()],
            ..GuardConfig::default()
        });
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
        let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.4:5000".parse().unwrap();
        assert_eq!(
            g.client(Some(proxy), &h),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(g.client(Some(stranger), &h), Some(stranger.ip()));
        let mut f = HeaderMap::new();
        f.insert(
            "forwarded",
            "for=\"[2001:db8::1]:443\";proto=https".parse().unwrap(),
        );
        assert_eq!(
            g.client(Some(proxy), &f),
            Some("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn a_burst_then_refusals_with_a_wait() {
        let g = Guard::new(GuardConfig {
            per_minute: 6,
            burst: 3,
            ..GuardConfig::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(g.failed(ip).is_ok());
        }
        let refused = g.failed(ip).unwrap_err();
        assert!((1..=10).contains(&refused.retry_after), "{refused:?}");
        assert!(refused.first);
        assert!(!g.failed(ip).unwrap_err().first);
        // Another address has its own bucket; an IPv6 /64 is one.
        assert!(g.failed("192.0.2.2".parse().unwrap()).is_ok());
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            let _ = g.failed(host.parse().unwrap());
        }
        assert!(g.failed("2001:db8:1:2::77".parse().unwrap()).is_err());
        assert!(g.failed("2001:db8:1:3::1".parse().unwrap()).is_ok());
        // The per-token limit is off unless configured.
        for _ in 0..1000 {
            assert!(g.token_used("some-token").is_ok());
        }
    }

    #[test]
    fn each_token_has_its_own_bucket() {
        let g = Guard::new(GuardConfig {
            token_per_second: 1,
            token_burst: 2,
            ..GuardConfig::default()
        });
        assert!(g.token_used("a").is_ok());
        assert!(g.token_used("a").is_ok());
        let refused = g.token_used("a").unwrap_err();
        assert_eq!(refused.retry_after, 1);
        assert!(refused.first);
        assert!(g.token_used("b").is_ok());
        // Failed attempts of an address are counted apart.
        assert!(g.failed("192.0.2.1".parse().unwrap()).is_ok());
    }
}
