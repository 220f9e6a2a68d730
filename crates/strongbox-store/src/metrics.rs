//! Latency histograms for the `/v1/metrics` endpoint: lock-free counters, rendered
//! in Prometheus' text format. They carry no labels derived from data.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// A latency histogram.
pub struct Histogram {
    /// Per-bucket counts (not cumulative); the last slot is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub const fn new() -> Self {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of metric `name` with the
    /// given label pairs (already escaped: `a="b",c="d"`, or empty).
    pub fn render(&self, name: &str, labels: &str, out: &mut String) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// Time spent in store reads and in durable writes (commit included).
pub static STORE_READS: Histogram = Histogram::new();
pub static STORE_WRITES: Histogram = Histogram::new();

/// Whether writes — every one of which carries its audit event — currently succeed.
pub struct WriteHealth {
    /// Unix milliseconds of the last failed and the last successful write (0: none).
    last_failure: AtomicU64,
    last_success: AtomicU64,
    failures: AtomicU64,
}

impl WriteHealth {
    pub const fn new() -> Self {
        WriteHealth {
            last_failure: AtomicU64::new(0),
            last_success: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    pub fn failed(&self) {
        self.last_failure.store(Self::now_ms(), Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn succeeded(&self) {
        self.last_success.store(Self::now_ms(), Ordering::Relaxed);
    }

    /// True when the most recent write attempt failed, within the last `window`.
    pub fn failing(&self, window: Duration) -> bool {
        let failure = self.last_failure.load(Ordering::Relaxed);
        failure > self.last_success.load(Ordering::Relaxed)
            && Self::now_ms().saturating_sub(failure) < window.as_millis() as u64
    }

    /// Writes refused by the database since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

impl Default for WriteHealth {
    fn default() -> Self {
        Self::new()
    }
}

/// The process's store writes.
pub static WRITE_HEALTH: WriteHealth = WriteHealth::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5));
        let mut out = String::new();
        h.render("x_seconds", "op=\"r\"", &mut out);
        assert!(
            out.contains("x_seconds_bucket{op=\"r\",le=\"0.0001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{op=\"r\",le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{op=\"r\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_count{op=\"r\"} 3\n"), "{out}");
    }
}
