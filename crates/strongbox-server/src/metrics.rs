//! Request metrics for `/v1/metrics`: counts and latency histograms per method,
//! route *template* and status. Paths never become labels (they can hold an email
//! address), so the label set is bounded by the routes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strongbox_core::notify::{LOGIN_CODE_STATS as CODES, OUTBOX_STATS as OUTBOX};
use strongbox_core::store_metrics::Histogram;

/// Histograms keyed by `"<method> <status> <route>"` (routes hold no spaces). The
/// hot path takes a read lock and allocates nothing once a key exists.
#[derive(Default)]
pub struct HttpMetrics {
    routes: RwLock<HashMap<String, Histogram>>,
}

thread_local! {
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl HttpMetrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, latency: Duration) {
        KEY.with(|key| {
            let mut key = key.borrow_mut();
            key.clear();
            let _ = write!(key, "{method} {status} {route}");
            if let Ok(routes) = self.routes.read()
                && let Some(h) = routes.get(key.as_str())
            {
                h.observe(latency);
                return;
            }
            if let Ok(mut routes) = self.routes.write() {
                routes.entry(key.clone()).or_default().observe(latency);
            }
        });
    }

    /// The Prometheus text exposition of everything Strongbox measures.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // One pass over the routes, rendered twice: the latency histograms, and the
        // request counter under the name Databunker Pro documents (its clients look
        // for `http_requests_total`), `path` being the route template.
        let mut counts = String::new();
        let _ = writeln!(
            out,
            "# HELP strongbox_http_request_duration_seconds Time to answer a request, by method, route template and status.\n\
             # TYPE strongbox_http_request_duration_seconds histogram"
        );
        let _ = writeln!(
            counts,
            "# HELP http_requests_total Requests answered, by method, route template and status.\n\
             # TYPE http_requests_total counter"
        );
        if let Ok(routes) = self.routes.read() {
            let mut keys: Vec<&String> = routes.keys().collect();
            keys.sort();
            for key in keys {
                let Some(h) = routes.get(key) else { continue };
                let mut parts = key.splitn(3, ' ');
                let (method, status, route) = (
                    escape(parts.next().unwrap_or("")),
                    escape(parts.next().unwrap_or("")),
                    escape(parts.next().unwrap_or("")),
                );
                let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
                h.render("strongbox_http_request_duration_seconds", &labels, &mut out);
                let _ = writeln!(
                    counts,
                    "http_requests_total{{method=\"{method}\",path=\"{route}\",status=\"{status}\"}} {}",
                    h.count()
                );
            }
        }
        out.push_str(&counts);
        for (name, help, h) in [
            (
                "strongbox_store_read_duration_seconds",
                "Time of store reads.",
                &strongbox_core::store_metrics::STORE_READS,
            ),
            (
                "strongbox_store_write_duration_seconds",
                "Time of durable store writes, commit included.",
                &strongbox_core::store_metrics::STORE_WRITES,
            ),
            (
                "strongbox_crypto_duration_seconds",
                "Time sealing and opening records.",
                &strongbox_core::CRYPTO_TIMINGS,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            h.render(name, "", &mut out);
        }
        let chain = &strongbox_core::chain::CHAIN_STATS;
        for (name, kind, help, value) in [
            (
                "strongbox_audit_sealed_events",
                "gauge",
                "Position of the last audit event sealed into the hash chain.",
                chain.sealed.load(Ordering::Relaxed) as u64,
            ),
            (
                "strongbox_audit_seal_failures_total",
                "counter",
                "Sealing passes of the audit chain that failed.",
                chain.failures.load(Ordering::Relaxed),
            ),
            (
                "strongbox_kek_rewrapped_total",
                "counter",
                "DEKs re-wrapped under a newer KEK by this node.",
                strongbox_core::kek::REWRAP_STATS
                    .done
                    .load(Ordering::Relaxed),
            ),
            (
                "strongbox_kek_rewrap_skipped_total",
                "counter",
                "DEKs the re-wrap left as they were because they did not open.",
                strongbox_core::kek::REWRAP_STATS
                    .skipped
                    .load(Ordering::Relaxed),
            ),
            (
                "strongbox_kek_rewrap_remaining",
                "gauge",
                "DEKs still under an older KEK, as last counted.",
                strongbox_core::kek::REWRAP_STATS
                    .remaining
                    .load(Ordering::Relaxed)
                    .max(0) as u64,
            ),
            (
                "strongbox_index_backfilled_total",
                "counter",
                "Users whose index entries this node wrote under a new index key.",
                strongbox_core::reindex::REINDEX_STATS
                    .done
                    .load(Ordering::Relaxed),
            ),
            (
                "strongbox_index_backfill_skipped_total",
                "counter",
                "Users and pending consents the index backfill left as they were (they did not open).",
                strongbox_core::reindex::REINDEX_STATS
                    .skipped
                    .load(Ordering::Relaxed),
            ),
            (
                "strongbox_index_backfill_remaining",
                "gauge",
                "Index entries not yet under the new index key, as last counted.",
                strongbox_core::reindex::REINDEX_STATS
                    .remaining
                    .load(Ordering::Relaxed)
                    .max(0) as u64,
            ),
            (
                "strongbox_http_connections_open",
                "gauge",
                "Connections being served.",
                crate::listen::CONNECTIONS_OPEN.load(Ordering::Relaxed),
            ),
            (
                "strongbox_http_connections_refused_total",
                "counter",
                "Connections closed on arrival because --max-connections were open.",
                crate::listen::CONNECTIONS_REFUSED.load(Ordering::Relaxed),
            ),
            (
                "strongbox_http_requests_timed_out_total",
                "counter",
                "Requests answered 503 because they passed --request-timeout.",
                crate::listen::REQUESTS_TIMED_OUT.load(Ordering::Relaxed),
            ),
            (
                "strongbox_http_rate_limited_total",
                "counter",
                "Failed attempts refused with 429 because their address was over its limit.",
                crate::guard::LIMITED.load(Ordering::Relaxed),
            ),
            (
                "strongbox_http_token_rate_limited_total",
                "counter",
                "Requests with a valid token refused with 429 by --token-requests-per-second.",
                crate::guard::TOKEN_LIMITED.load(Ordering::Relaxed),
            ),
            (
                "strongbox_login_prelogin_limited_total",
                "counter",
                "Prelogins refused with 429 by the per-identity or per-address limit.",
                crate::guard::PRELOGIN_LIMITED.load(Ordering::Relaxed),
            ),
            (
                "strongbox_webhook_outbox_queued",
                "gauge",
                "Webhook notifications waiting in the outbox, as last counted.",
                OUTBOX.queued.load(Ordering::Relaxed).max(0) as u64,
            ),
            (
                "strongbox_webhook_delivered_total",
                "counter",
                "Webhook notifications the receiver took (2xx).",
                OUTBOX.delivered.load(Ordering::Relaxed),
            ),
            (
                "strongbox_webhook_failures_total",
                "counter",
                "Webhook deliveries that failed (each is tried again, or given up after its last attempt).",
                OUTBOX.failed.load(Ordering::Relaxed),
            ),
            (
                "strongbox_webhook_given_up_total",
                "counter",
                "Webhook notifications given up after their last attempt.",
                OUTBOX.given_up.load(Ordering::Relaxed),
            ),
            (
                "strongbox_webhook_dropped_total",
                "counter",
                "Webhook notifications not queued because the outbox was full.",
                OUTBOX.dropped.load(Ordering::Relaxed),
            ),
            (
                "strongbox_login_code_outbox_queued",
                "gauge",
                "Login codes waiting to be sent by email or SMS, as last counted.",
                CODES.queued.load(Ordering::Relaxed).max(0) as u64,
            ),
            (
                "strongbox_login_code_sent_total",
                "counter",
                "Login codes a mail server or SMS gateway took.",
                CODES.delivered.load(Ordering::Relaxed),
            ),
            (
                "strongbox_login_code_failures_total",
                "counter",
                "Login-code sends that failed (each is tried again, or given up once the code expired).",
                CODES.failed.load(Ordering::Relaxed),
            ),
            (
                "strongbox_login_code_given_up_total",
                "counter",
                "Login codes not sent because they expired, were used or were replaced by a newer prelogin.",
                CODES.given_up.load(Ordering::Relaxed),
            ),
            (
                "strongbox_store_write_failures_total",
                "counter",
                "Writes (each with its audit event) the database refused.",
                strongbox_core::store_metrics::WRITE_HEALTH.failures(),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                 # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
            );
        }
        out
    }
}

/// Resident set size from `/proc/self/statm` (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
