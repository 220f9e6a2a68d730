//! Expiration times as Databunker reads them, and list paging.
//!
//! A duration string is `<n>[ymhds]`: `m` is a **month** (31 days, Databunker has no
//! minutes), `y` a year of 365 days (Databunker Pro's clients send `1y`), `h` an
//! hour, `d` a day, `s` or nothing seconds. A JSON number greater
//! than now is an absolute Unix time; a smaller one is relative seconds.

use serde_json::Value;

use crate::error::{Error, Result};

const DAY: i64 = 24 * 3600;
const MONTH: i64 = 31 * DAY;

/// Seconds a duration string stands for; `None` if it is not one.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], Some(c)),
        _ => (s, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let scale = match unit {
        None | Some('s') => 1,
        Some('h') => 3600,
        Some('d') => DAY,
        Some('m') => MONTH,
        Some('y') => 365 * DAY,
        Some(_) => return None,
    };
    n.checked_mul(scale)
}

/// A Unix time as a civil date and time in UTC: (year, month 1–12, day 1–31, hour,
/// minute, second).
pub fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(DAY), secs.rem_euclid(DAY));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A Unix time as RFC 3339 in UTC (`2026-12-04T17:29:52Z`), for people reading
/// receipts, reports and command output.
pub fn rfc3339(secs: i64) -> String {
    let (year, month, day, h, m, s) = civil(secs);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Relative seconds a request's `expiration` value asks for. `None` when absent;
/// an error when present but unreadable (Databunker silently reads it as 0).
pub fn requested_seconds(value: Option<&Value>, now: i64) -> Result<Option<i64>> {
    let bad = || {
        Error::bad_request(
            "bad expiration: use a duration like 30d, 12h, 3600, 1m (a month) or 1y, or a Unix time",
        )
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => parse_duration(s).map(Some).ok_or_else(bad),
        Some(Value::Number(n)) => {
            let n = n.as_i64().filter(|n| *n >= 0).ok_or_else(bad)?;
            Ok(Some(if n > now { n - now } else { n }))
        }
        Some(_) => Err(bad()),
    }
}

/// Absolute expiry for a request that asked for `requested` seconds under a policy
/// maximum of `max` seconds: the maximum when nothing (or zero) was asked, never more
/// than the maximum.
pub fn capped_expiry(now: i64, max: i64, requested: Option<i64>) -> i64 {
    let wanted = match requested {
        None | Some(0) => max,
        Some(r) => r.min(max),
    };
    now.saturating_add(wanted)
}

/// (expiry, absolute `finaltime`) of something with a `slidingtime` and a
/// `finaltime` (seconds; tokens, files) (re)started at `now`.
pub(crate) fn expiry(
    now: i64,
    sliding: Option<i64>,
    final_after: Option<i64>,
) -> (Option<i64>, Option<i64>) {
    let final_at = final_after.map(|f| now.saturating_add(f));
    let by_sliding = sliding.map(|s| now.saturating_add(s));
    let expires = match (by_sliding, final_at) {
        (Some(s), Some(f)) => Some(s.min(f)),
        (s, f) => s.or(f),
    };
    (expires, final_at)
}

/// The new expiry a read at `now` gives what expires at `current`: `sliding`
/// seconds on, never past `final_at`; `None` when it would move by less than a
/// step (a minute, or 1 % of a shorter window), which saves a write per read at
/// the cost of expiring up to one step early.
pub(crate) fn slid(
    now: i64,
    current: i64,
    sliding: Option<i64>,
    final_at: Option<i64>,
) -> Option<i64> {
    let sliding = sliding?;
    let wanted = match final_at {
        Some(f) => now.saturating_add(sliding).min(f),
        None => now.saturating_add(sliding),
    };
    let step = (sliding / 100).clamp(1, 60);
    (wanted - current >= step).then_some(wanted)
}

/// `offset`/`limit` of a list request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

/// Default and largest page sizes (as in Databunker).
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;

impl Page {
    /// Reads `offset` and `limit` query values. Missing means 0 and the default;
    /// a limit above the maximum is capped; `limit=0` means the largest page (in
    /// Databunker it means "everything", which no list should allow).
    pub fn parse(offset: Option<&str>, limit: Option<&str>) -> Result<Page> {
        let num = |v: Option<&str>, name: &str| -> Result<Option<usize>> {
            match v {
                None => Ok(None),
                Some("") => Ok(None),
                Some(s) => match s.parse::<usize>() {
                    // Bound by what every backend binds (a signed 64-bit integer).
                    Ok(n) if i64::try_from(n).is_ok() => Ok(Some(n)),
                    Ok(_) => Err(Error::bad_request(format!(
                        "bad {name}: at most {}",
                        i64::MAX
                    ))),
                    Err(_) => Err(Error::bad_request(format!(
                        "bad {name}: expected a non-negative integer"
                    ))),
                },
            }
        };
        let offset = num(offset, "offset")?.unwrap_or(0);
        let limit = match num(limit, "limit")? {
            None => DEFAULT_LIMIT,
            Some(0) => MAX_LIMIT,
            Some(n) => n.min(MAX_LIMIT),
        };
        Ok(Page { offset, limit })
    }

    /// The page's slice of `items`.
    pub fn apply<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect()
    }
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: DEFAULT_LIMIT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_405_392), "2026-12-04T17:29:52Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn durations_read_like_databunker() {
        assert_eq!(parse_duration("10"), Some(10));
        assert_eq!(parse_duration("10s"), Some(10));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("3d"), Some(3 * DAY));
        assert_eq!(parse_duration("1m"), Some(31 * DAY));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("-5"), None);
        assert_eq!(parse_duration("1.5h"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn numbers_are_absolute_when_in_the_future() {
        let now = 1_700_000_000;
        assert_eq!(requested_seconds(Some(&json!(60)), now).unwrap(), Some(60));
        assert_eq!(
            requested_seconds(Some(&json!(now + 90)), now).unwrap(),
            Some(90)
        );
        assert_eq!(
            requested_seconds(Some(&json!("1h")), now).unwrap(),
            Some(3600)
        );
        assert_eq!(requested_seconds(None, now).unwrap(), None);
        assert!(requested_seconds(Some(&json!("soon")), now).is_err());
        assert!(requested_seconds(Some(&json!(-1)), now).is_err());
        assert!(requested_seconds(Some(&json!([1])), now).is_err());
    }

    #[test]
    fn expiry_is_capped_by_policy() {
        assert_eq!(capped_expiry(100, 3600, None), 3700);
        assert_eq!(capped_expiry(100, 3600, Some(0)), 3700);
        assert_eq!(capped_expiry(100, 3600, Some(60)), 160);
        assert_eq!(capped_expiry(100, 3600, Some(99999)), 3700);
    }

    #[test]
    fn pages() {
        assert_eq!(
            Page::parse(None, None).unwrap(),
            Page {
                offset: 0,
                limit: 10
            }
        );
        assert_eq!(
            Page::parse(Some("5"), Some("500")).unwrap(),
            Page {
                offset: 5,
                limit: 100
            }
        );
        assert_eq!(Page::parse(None, Some("0")).unwrap().limit, 100);
        assert!(Page::parse(Some("1a"), None).is_err());
        assert_eq!(
            Page {
                offset: 1,
                limit: 2
            }
            .apply(vec![1, 2, 3, 4]),
            vec![2, 3]
        );
    }
}
