//! `strongbox import`: bulk creation of users from JSON lines on stdin.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use strongbox_core::{Principal, Vault};

/// One input line: a profile, or why the line is unusable.
type Line = Result<Map<String, Value>, String>;

/// Progress on stderr while an import runs: a bar by bytes when stdin is a file of
/// known size, else a running count.
struct Progress {
    ticker: crate::progress::Ticker,
    total_bytes: Option<u64>,
    read_bytes: u64,
}

impl Progress {
    fn new() -> Progress {
        let total_bytes = std::fs::metadata("/proc/self/fd/0")
            .ok()
            .filter(|m| m.is_file() && m.len() > 0)
            .map(|m| m.len());
        Progress {
            ticker: crate::progress::Ticker::new(),
            total_bytes,
            read_bytes: 0,
        }
    }

    fn show(&mut self, created: u64, refused: u64) {
        let (total, read) = (self.total_bytes, self.read_bytes);
        self.ticker.tick(|t| {
            let rate = created as f64 / t.elapsed().max(1e-9);
            match total {
                Some(total) => {
                    let pct = (read.min(total) * 100 / total) as usize;
                    format!(
                        "[{}{}] {pct:>3} %  {created} imported, {refused} refused ({rate:.0}/s)",
                        "#".repeat(pct / 5),
                        ".".repeat(20 - pct / 5)
                    )
                }
                None => format!("{created} imported, {refused} refused ({rate:.0}/s)"),
            }
        });
    }

    fn finish(&self) {
        self.ticker.finish();
    }
}

pub async fn run(vault: Arc<Vault>, batch_size: usize, jobs: usize) -> Result<(), String> {
    if vault.config().notification_url.is_some() {
        // The outbox's bound holds for what an import queues too.
        vault
            .count_queue(strongbox_core::notify::Queue::Webhooks)
            .await
            .map_err(|e| format!("cannot count the webhook outbox: {e}"))?;
    }
    let started = Instant::now();
    let mut progress = Progress::new();
    let (mut created, mut refused) = (0u64, 0u64);
    let mut lines = std::io::stdin().lock().lines();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    loop {
        // Read one wave of `jobs` batches, write them concurrently, print in order.
        let mut wave: Vec<Vec<Line>> = Vec::with_capacity(jobs);
        'read: for _ in 0..jobs {
            let mut batch = Vec::with_capacity(batch_size);
            while batch.len() < batch_size {
                match lines.next() {
                    Some(Ok(line)) => {
                        progress.read_bytes += line.len() as u64 + 1;
                        batch.push(parse(&line));
                    }
                    Some(Err(e)) => return Err(format!("cannot read stdin: {e}")),
                    None => {
                        if !batch.is_empty() {
                            wave.push(batch);
                        }
                        break 'read;
                    }
                }
            }
            wave.push(batch);
        }
        if wave.is_empty() {
            break;
        }
        let handles: Vec<_> = wave
            .into_iter()
            .map(|batch| {
                let vault = vault.clone();
                tokio::spawn(async move { import_batch(&vault, batch).await })
            })
            .collect();
        for h in handles {
            let results = h.await.map_err(|e| format!("import task failed: {e}"))??;
            for r in results {
                let line = match r {
                    Ok(token) => {
                        created += 1;
                        token
                    }
                    Err(message) => {
                        refused += 1;
                        format!("error: {message}")
                    }
                };
                writeln!(out, "{line}").map_err(|e| format!("cannot write stdout: {e}"))?;
            }
        }
        progress.show(created, refused);
    }
    progress.finish();
    out.flush()
        .map_err(|e| format!("cannot write stdout: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "imported {created} users in {secs:.1} s ({:.0}/s); {refused} refused",
        created as f64 / secs.max(1e-9)
    );
    if refused > 0 {
        return Err(format!("{refused} input lines were refused"));
    }
    Ok(())
}

fn parse(line: &str) -> Line {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("expected a JSON object".into()),
        Err(e) => Err(format!("invalid JSON at column {}", e.column())),
    }
}

async fn import_batch(
    vault: &Vault,
    batch: Vec<Line>,
) -> Result<Vec<Result<String, String>>, String> {
    let mut out: Vec<Result<String, String>> = Vec::with_capacity(batch.len());
    let mut profiles = Vec::new();
    let mut slots = Vec::new();
    for line in batch {
        match line {
            Ok(p) => {
                slots.push(out.len());
                out.push(Ok(String::new()));
                profiles.push(p);
            }
            Err(e) => out.push(Err(e)),
        }
    }
    let results = vault
        .import_users(&Principal::Root, profiles)
        .await
        .map_err(|e| e.message)?;
    for (slot, r) in slots.into_iter().zip(results) {
        out[slot] = r.map_err(|e| e.message);
    }
    Ok(out)
}
