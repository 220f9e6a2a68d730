//! `strongbox unseal`, `strongbox seal` and `strongbox rotate kek`: talk to a running
//! vault.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs `body` to `url`; returns the status and the JSON answer.
fn post(url: &str, token: Option<&str>, body: &Value) -> Result<(u16, Value), String> {
    let mut req = agent().post(url);
    if let Some(t) = token {
        req = req.header("X-Bunker-Token", t);
    }
    let mut resp = req
        .send_json(body)
        .map_err(|e| format!("cannot reach the vault: {e}"))?;
    let status = resp.status().as_u16();
    let v = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    Ok((status, v))
}

/// Turns the terminal's echo off or on (`stty`), so a typed share is not shown.
fn echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}

fn progress(v: &Value) -> String {
    format!("{} of {}", v["progress"], v["threshold"])
}

/// POSTs one share, retrying with growing pauses for up to a minute while the vault
/// cannot take it yet: unreachable (restarting), busy (429), or opening with the
/// shares already given (409).
fn give_share(url: &str, share: &str) -> Result<(u16, Value), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pause = Duration::from_millis(250);
    loop {
        let answer = post(url, None, &serde_json::json!({ "share": share }));
        let transient = match &answer {
            Err(_) => true,
            Ok((status, _)) => matches!(status, 409 | 429 | 502 | 503 | 504),
        };
        if !transient || Instant::now() + pause > deadline {
            return answer;
        }
        let why = match &answer {
            Err(e) => e.clone(),
            Ok((_, v)) => v["message"].as_str().unwrap_or("busy").to_string(),
        };
        eprintln!("The vault cannot take the share yet ({why}); trying again.");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// `strongbox unseal`: gives the shares on standard input (or typed at the prompt),
/// one per line. Each keeper may give just their own: when the input ends with the
/// vault still sealed, the shares given so far stay with the vault (until its
/// unseal timeout) and the command says how many more are needed.
pub async fn unseal(addr: &str) -> Result<(), String> {
    let url = format!("{}/v1/sys/unseal", addr.trim_end_matches('/'));
    let status_url = format!("{}/v1/sys/seal-status", addr.trim_end_matches('/'));
    tokio::task::spawn_blocking(move || {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        let mut lines = stdin.lock().lines();
        let mut last: Option<Value> = None;
        loop {
            if interactive {
                eprint!("Share (not echoed): ");
                let _ = std::io::stderr().flush();
                echo(false);
            }
            let line = lines.next();
            if interactive {
                echo(true);
                eprintln!();
            }
            let Some(line) = line else {
                return match last {
                    Some(v) => {
                        let needed = v["threshold"].as_u64().unwrap_or(0)
                            .saturating_sub(v["progress"].as_u64().unwrap_or(0));
                        println!(
                            "The vault is still sealed: {needed} more share(s) needed from other keepers \
                             (strongbox unseal); the shares given are kept until the unseal timeout."
                        );
                        Ok(())
                    }
                    None => Err("no share on the input, and the vault is still sealed".into()),
                };
            };
            let line = zeroize::Zeroizing::new(line.map_err(|e| e.to_string())?);
            let share = line.trim();
            if share.is_empty() {
                continue;
            }
            let (status, v) = give_share(&url, share)?;
            let message = v["message"].as_str().unwrap_or("unexpected answer");
            if status == 400 && message.contains("given already") {
                // Another keeper (or an earlier run) gave it: not a reason to stop.
                eprintln!("This share was given already.");
                last = get(&status_url, "").ok().map(|(_, v)| v);
                continue;
            }
            if status != 200 {
                return Err(format!("the vault refused the share: {message}"));
            }
            if v["sealed"] == false {
                println!("Unsealed.");
                return Ok(());
            }
            println!("Unseal progress: {}", progress(&v));
            last = Some(v);
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

pub async fn seal(addr: &str, token: &str) -> Result<(), String> {
    let url = format!("{}/v1/sys/seal", addr.trim_end_matches('/'));
    let token = token.to_string();
    tokio::task::spawn_blocking(move || {
        let (status, v) = post(&url, Some(&token), &serde_json::json!({}))?;
        if status != 200 {
            let message = v["message"].as_str().unwrap_or("unexpected answer");
            return Err(format!("the vault refused to seal: {message}"));
        }
        println!("Sealed.");
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Replaces the root token of a running vault and prints the new one, once. The
/// new token is made here and sent, so if the answer is lost (the connection drops
/// after the vault committed) the operator still has it.
pub async fn rotate_root_token(addr: &str, token: &str) -> Result<(), String> {
    let url = format!("{}/v1/sys/rotate/root-token", addr.trim_end_matches('/'));
    let token = token.to_string();
    let new = strongbox_crypto::new_record_token();
    tokio::task::spawn_blocking(move || {
        let (status, v) = match post(&url, Some(&token), &serde_json::json!({ "token": new })) {
            Ok(answer) => answer,
            Err(e) => {
                eprintln!(
                    "No answer from the vault: it may or may not have switched to the new root \
                     token. Try the old one first; if it is refused, this is the new one:"
                );
                println!("Root token: {new}");
                return Err(e);
            }
        };
        if status != 200 || v["token"].as_str() != Some(new.as_str()) {
            let message = v["message"].as_str().unwrap_or("unexpected answer");
            return Err(format!(
                "the vault refused to rotate the root token: {message}"
            ));
        }
        println!("Root token: {new}");
        eprintln!(
            "The old root token no longer works (on every node within a second). \
             Store the new one now: it is not shown again."
        );
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Creates a tenant through a running vault (v2's `TenantCreate`): its id and admin
/// token.
pub async fn create_tenant(
    addr: &str,
    token: &str,
    name: &str,
    org: &str,
) -> Result<(i64, String), String> {
    let url = format!("{}/v2/TenantCreate", addr.trim_end_matches('/'));
    let token = token.to_string();
    let body = serde_json::json!({"tenantname": name, "tenantorg": org});
    tokio::task::spawn_blocking(move || {
        let (status, v) = post(&url, Some(&token), &body)?;
        match (status, v["tenantid"].as_i64(), v["xtoken"].as_str()) {
            (200, Some(id), Some(admin)) => Ok((id, admin.to_string())),
            _ => Err(format!(
                "the vault refused to create the tenant: {}",
                v["message"].as_str().unwrap_or("unexpected answer")
            )),
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

fn get(url: &str, token: &str) -> Result<(u16, Value), String> {
    let mut resp = agent()
        .get(url)
        .header("X-Bunker-Token", token)
        .call()
        .map_err(|e| format!("cannot reach the vault: {e}"))?;
    let status = resp.status().as_u16();
    let v = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    Ok((status, v))
}

/// A progress bar: `[#######.............]  35 %  (350 of 1000 DEKs)`.
fn bar(done: i64, total: i64, what: &str) -> String {
    let pct = if total > 0 { done * 100 / total } else { 100 };
    let filled = (pct.clamp(0, 100) / 5) as usize;
    format!(
        "[{}{}] {pct:>3} %  ({done} of {total} {what})",
        "#".repeat(filled),
        ".".repeat(20 - filled)
    )
}

/// What one look at a rotation's progress says.
enum Step {
    /// Still going: the line to show.
    Going(String),
    /// Finished: the closing line.
    Done(String),
    /// Given up on: why.
    Failed(String),
}

/// Starts a rotation (`POST /v1/sys/rotate/<what>`) and watches its progress twice
/// a second, showing what `step` makes of each status until it says done or failed.
async fn rotate(
    addr: &str,
    token: &str,
    what: &'static str,
    announce: fn(i64) -> String,
    mut step: impl FnMut(i64, &Value) -> Step + Send + 'static,
) -> Result<(), String> {
    let url = format!("{}/v1/sys/rotate/{what}", addr.trim_end_matches('/'));
    let token = token.to_string();
    tokio::task::spawn_blocking(move || {
        let (status, v) = post(&url, Some(&token), &serde_json::json!({}))?;
        if status != 200 {
            let message = v["message"].as_str().unwrap_or("unexpected answer");
            return Err(format!("the vault refused to rotate: {message}"));
        }
        let version = v["version"].as_i64().unwrap_or(0);
        println!("{}", announce(version));
        let tty = std::io::stderr().is_terminal();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let (status, s) = get(&url, &token)?;
            if status != 200 {
                let message = s["message"].as_str().unwrap_or("unexpected answer");
                return Err(format!("cannot read the rotation's progress: {message}"));
            }
            let line = match step(version, &s) {
                Step::Going(line) => line,
                end => {
                    if tty {
                        eprintln!();
                    }
                    return match end {
                        Step::Done(line) => {
                            println!("{line}");
                            Ok(())
                        }
                        Step::Failed(why) | Step::Going(why) => Err(why),
                    };
                }
            };
            if tty {
                eprint!("\r{line}");
            } else {
                eprintln!("{line}");
            }
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

fn int(s: &Value, key: &str) -> i64 {
    s[key].as_i64().unwrap_or(0)
}

pub async fn rotate_kek(addr: &str, token: &str) -> Result<(), String> {
    let announce = |version| {
        format!("KEK version {version} created; re-wrapping every DEK to it in the background.")
    };
    rotate(addr, token, "kek", announce, |version, s| {
        let (current, remaining, total) = (int(s, "current"), int(s, "remaining"), int(s, "total"));
        if current < version {
            Step::Going(format!(
                "waiting for KEK version {version} to become current…"
            ))
        } else if remaining == 0 {
            Step::Done(format!(
                "Done: every DEK is wrapped by KEK version {version}."
            ))
        } else {
            Step::Going(bar(total - remaining, total, "DEKs"))
        }
    })
    .await
}

pub async fn rotate_index(addr: &str, token: &str) -> Result<(), String> {
    let announce = |version| {
        format!(
            "Index key version {version} created; backfilling every index entry under it in the background."
        )
    };
    // (remaining, when it last changed): a backfill that stops moving with entries
    // it cannot write is reported instead of watched forever.
    let mut progress = (i64::MAX, std::time::Instant::now());
    rotate(addr, token, "index", announce, move |version, s| {
        let (current, remaining, total) = (int(s, "current"), int(s, "remaining"), int(s, "total"));
        let (pending, stuck) = (int(s, "pending_consents"), int(s, "stuck"));
        let versions = s["versions"].as_array().map_or(0, Vec::len);
        if versions == 1 && current >= version {
            return Step::Done(format!(
                "Done: every lookup uses index key version {version}; the old one is retired."
            ));
        }
        if remaining != progress.0 {
            progress = (remaining, std::time::Instant::now());
        } else if stuck > 0 && progress.1.elapsed() > std::time::Duration::from_secs(30) {
            return Step::Failed(format!(
                "the backfill is stalled: {stuck} people's index entries cannot be written under \
                 version {version} (a profile that does not open, or a value another person \
                 holds); both versions stay in use, lookups keep working. See the server log."
            ));
        }
        if current < version {
            Step::Going(format!(
                "waiting for index key version {version} to become current…"
            ))
        } else if remaining > 0 || pending > 0 || total == 0 {
            let mut line = bar(total - remaining, total, "index entries");
            if pending > 0 {
                line.push_str(&format!(", {pending} pending consents to re-key"));
            }
            Step::Going(line)
        } else {
            Step::Going("every entry backfilled; retiring the old version…".to_string())
        }
    })
    .await
}
