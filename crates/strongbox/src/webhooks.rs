//! Webhook delivery: sends the notifications the vault queued in its outbox to
//! `notification_url`, outside the request path, so a slow or dead receiver never
//! slows or fails the API. Each POST carries `X-Strongbox-Signature:
//! t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the operator's secret
//! (`STRONGBOX_NOTIFICATION_SECRET`), so receivers can check where it came from.

use std::sync::Arc;
use std::time::Duration;

use strongbox_core::notify::{MAX_ATTEMPTS, Queue};
use strongbox_core::{Secret, Vault};
use ureq::http;

/// Time a receiver gets to answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Pause when nothing is due.
const IDLE: Duration = Duration::from_millis(500);
/// How often the outbox is counted again (its bound and its gauge).
const RECOUNT: Duration = Duration::from_secs(5);

/// Checks a notification URL: http:// or https:// with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed: http::Uri = url
        .parse()
        .map_err(|_| format!("notification_url `{url}` is not a URL"))?;
    match parsed.scheme_str() {
        Some("http" | "https") if parsed.host().is_some() => Ok(()),
        _ => Err(format!(
            "notification_url `{url}` must be an http:// or https:// URL"
        )),
    }
}

/// Where the system keeps its CA bundle (Debian/Ubuntu, RHEL/Fedora, Alpine/BSD).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The certificates an outgoing TLS connection trusts: those in `ca` when given (a
/// private CA: then only it is trusted), else the system's CA bundle (empty when the
/// system has none). `setting` names `ca` in errors.
pub fn trust_roots(
    ca: Option<&std::path::Path>,
    setting: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let (path, pem) = match ca {
        Some(path) => (
            path.display().to_string(),
            std::fs::read(path)
                .map_err(|e| format!("cannot read {setting} {}: {e}", path.display()))?,
        ),
        None => SYSTEM_CA_BUNDLES
            .iter()
            .find_map(|p| std::fs::read(p).ok().map(|b| (p.to_string(), b)))
            .unwrap_or_default(),
    };
    let roots = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{setting} {path}: {e}"))?;
    if ca.is_some() && roots.is_empty() {
        return Err(format!("{setting} {path}: no certificate in it"));
    }
    Ok(roots)
}

/// The HTTP client of webhook and SMS delivery: TLS 1.2 and 1.3 with rustls (ring),
/// as on the listener, trusting `roots` (see [`trust_roots`]); https receivers
/// cannot be verified when it is empty, http ones still work. Redirects are not
/// followed (a 3xx is a failed delivery): a redirect would carry the payload, and
/// headers such as a gateway's API key, to a host nobody configured.
pub fn agent(roots: Vec<rustls::pki_types::CertificateDer<'static>>) -> ureq::Agent {
    let roots = roots
        .into_iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(TIMEOUT))
        .tls_config(tls)
        .build()
        .new_agent()
}

pub async fn run(vault: Arc<Vault>, url: String, secret: Option<Secret>, agent: ureq::Agent) {
    let mut counted: Option<std::time::Instant> = None;
    loop {
        if counted.is_none_or(|at| at.elapsed() >= RECOUNT) {
            match vault.count_queue(Queue::Webhooks).await {
                Ok(_) => counted = Some(std::time::Instant::now()),
                Err(e) => tracing::warn!(error = %e, "counting the webhook outbox failed"),
            }
        }
        let due = match vault.due(Queue::Webhooks, 32).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reading the webhook outbox failed");
                tokio::time::sleep(IDLE * 4).await;
                continue;
            }
        };
        if due.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        for n in due {
            let (agent, url, secret) = (agent.clone(), url.clone(), secret.clone());
            let body = n.payload.to_vec();
            let sent = tokio::task::spawn_blocking(move || {
                post(&agent, &url, secret.as_ref().map(Secret::expose), body)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            // An error names the receiver's answer or the network, never the payload.
            let result = match sent {
                Ok(()) => vault.delivered(&n).await,
                Err(error) => vault.delivery_failed(&n).await.map(|given_up| {
                    if given_up {
                        tracing::error!(id = %n.id, error, "webhook given up after {MAX_ATTEMPTS} attempts");
                    } else {
                        tracing::warn!(id = %n.id, attempt = n.attempts + 1, error, "webhook delivery failed; will retry");
                    }
                }),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "updating the webhook outbox failed");
            }
        }
    }
}

fn post(agent: &ureq::Agent, url: &str, secret: Option<&str>, body: Vec<u8>) -> Result<(), String> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .header("User-Agent", "strongbox-webhooks");
    if let Some(secret) = secret {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(&body);
        let mac: String = strongbox_crypto::hmac_sha256(secret.as_bytes(), &signed)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        req = req.header("X-Strongbox-Signature", format!("t={t},v1={mac}"));
    }
    let req = req.body(body).map_err(|e| e.to_string())?;
    // The client's error text can name the URL (and credentials written into it),
    // so only the kind of failure is reported.
    let resp = agent.run(req).map_err(|e| match e {
        ureq::Error::Timeout(_) => "the receiver did not answer in time".to_string(),
        ureq::Error::StatusCode(code) => format!("receiver answered {code}"),
        _ => "the receiver could not be reached".to_string(),
    })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered {}", resp.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls() {
        assert!(super::check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(super::check_url("https://example.com/hook").is_ok());
        assert!(super::check_url("https:///hook").is_err());
        assert!(super::check_url("ftp://x/").is_err());
        assert!(super::check_url("not a url").is_err());
    }
}
