//! Login-code delivery: sends the codes prelogins queued in the login-code outbox,
//! by email (SMTP) or SMS (an HTTP gateway), outside the request path, so a slow or
//! dead mail server never slows a prelogin nor shows in its answer. A failed send is
//! retried with backoff until the code would have expired.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use strongbox_core::Vault;
use strongbox_core::notify::{Notification, Queue};
use zeroize::Zeroizing;

use crate::sms::Sms;
use crate::smtp::Smtp;

/// Pause when nothing is due.
const IDLE: Duration = Duration::from_millis(250);
/// How often the outbox is counted again (its gauge).
const RECOUNT: Duration = Duration::from_secs(5);

/// The ways codes leave the vault.
#[derive(Clone, Default)]
pub struct Channels {
    pub email: Option<Arc<Smtp>>,
    pub sms: Option<Arc<Sms>>,
}

/// The sealed payload a prelogin queued.
#[derive(Deserialize)]
struct Message {
    mode: String,
    to: String,
    code: String,
}

impl Drop for Message {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.to);
        zeroize::Zeroize::zeroize(&mut self.code);
    }
}

pub async fn run(vault: Arc<Vault>, channels: Channels) {
    let mut counted: Option<std::time::Instant> = None;
    loop {
        if counted.is_none_or(|at| at.elapsed() >= RECOUNT) {
            match vault.count_queue(Queue::LoginCodes).await {
                Ok(_) => counted = Some(std::time::Instant::now()),
                Err(e) => tracing::warn!(error = %e, "counting the login-code outbox failed"),
            }
        }
        let due = match vault.due(Queue::LoginCodes, 16).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reading the login-code outbox failed");
                tokio::time::sleep(IDLE * 4).await;
                continue;
            }
        };
        if due.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        // Sent side by side: one slow server does not hold the others' codes back.
        let mut sending = tokio::task::JoinSet::new();
        for n in due {
            let channels = channels.clone();
            sending.spawn_blocking(move || {
                let sent = send(&channels, &n.payload);
                (n, sent)
            });
        }
        while let Some(done) = sending.join_next().await {
            let Ok((n, sent)) = done else { continue };
            if let Err(e) = settle(&vault, &n, sent).await {
                tracing::warn!(error = %e, "updating the login-code outbox failed");
            }
        }
    }
}

/// Records the outcome of one send. Errors name the step and the server's answer,
/// never the address or the code.
async fn settle(
    vault: &Vault,
    n: &Notification,
    sent: Result<&'static str, String>,
) -> strongbox_core::Result<()> {
    match sent {
        Ok(mode) => {
            tracing::info!(id = %n.id, mode, "login code sent");
            vault.delivered(n).await
        }
        Err(error) => {
            if vault.delivery_failed(n).await? {
                tracing::error!(id = %n.id, error, "login code given up: it expired unsent");
            } else {
                tracing::warn!(id = %n.id, attempt = n.attempts + 1, error, "login code not sent; will retry");
            }
            Ok(())
        }
    }
}

fn send(channels: &Channels, payload: &Zeroizing<Vec<u8>>) -> Result<&'static str, String> {
    let m: Message =
        serde_json::from_slice(payload).map_err(|_| "a queued login code is unreadable")?;
    match m.mode.as_str() {
        "email" => {
            let smtp = channels.email.as_ref().ok_or("no SMTP is configured")?;
            let text = Zeroizing::new(format!(
                "Your access code is {}.\n\nIt works once, within 5 minutes. If you did not ask for it, ignore this message.\n",
                m.code
            ));
            smtp.send(&m.to, "Your access code", &text)?;
            Ok("email")
        }
        "phone" => {
            let sms = channels
                .sms
                .as_ref()
                .ok_or("no SMS gateway is configured")?;
            let text = Zeroizing::new(format!("Your access code is {}", m.code));
            sms.send(&m.to, &text)?;
            Ok("phone")
        }
        _ => Err("a queued login code has an unknown mode".into()),
    }
}
