//! Secrets handed to the process in its environment (the root key, tokens, a
//! database URL with a password).
//!
//! Environment variables stay readable in `/proc/PID/environ` to the same user and
//! root for the life of the process, and `unsetenv` does not help: that file shows
//! the block the process started with, not the C library's current list. So at
//! start, once the command line is parsed (clap reads some of these), [`take`]
//! copies the secrets it knows into memory that is wiped on drop, and overwrites
//! their values in that block through `/proc/self/mem`, before any other thread
//! exists. Where the kernel refuses, a warning says so and suggests a file instead.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::OnceLock;

use zeroize::Zeroizing;

/// The environment variables that hold secrets.
/// (AWS credentials for the optional KMS unseal are read by the AWS SDK itself,
/// later, so they stay: give that process a role instead of keys where possible.)
const SECRET_VARS: [&str; 12] = [
    "STRONGBOX_ROOT_KEY",
    "STRONGBOX_ROOT_TOKEN",
    "STRONGBOX_TOKEN",
    "STRONGBOX_METRICS_TOKEN",
    "STRONGBOX_NOTIFICATION_SECRET",
    "STRONGBOX_DATABASE_URL",
    "STRONGBOX_SMTP_URL",
    "STRONGBOX_SMTP_PASSWORD",
    "STRONGBOX_SMS_TOKEN",
    "STRONGBOX_SMS_BASIC_AUTH",
    "STRONGBOX_SMS_URL",
    "STRONGBOX_SMS_HEADER",
];

static TAKEN: OnceLock<HashMap<&'static str, Zeroizing<String>>> = OnceLock::new();

/// Copies the secret variables and scrubs them from the process's environment
/// block. Call once, early, while the process has a single thread. Returns the
/// names it could not scrub (to warn about once logging is up).
pub fn take() -> Vec<&'static str> {
    let mut found = HashMap::new();
    for name in SECRET_VARS {
        if let Some(v) = std::env::var_os(name) {
            found.insert(name, Zeroizing::new(v.to_string_lossy().into_owned()));
        }
    }
    let names: Vec<&'static str> = found.keys().copied().collect();
    let _ = TAKEN.set(found);
    if names.is_empty() {
        return Vec::new();
    }
    match scrub(&names) {
        Ok(()) => Vec::new(),
        Err(_) => names,
    }
}

/// The value a secret variable had at start (non-empty), after [`take`].
pub fn var(name: &str) -> Option<Zeroizing<String>> {
    TAKEN
        .get()?
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| Zeroizing::new(v.as_str().to_owned()))
}

/// Overwrites the values of `names` in the environment block the process started
/// with (`env_start`..`env_end` in `/proc/self/stat`) with NUL bytes.
fn scrub(names: &[&str]) -> std::io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let bad = || std::io::Error::other("unexpected /proc/self/stat");
    // Fields after the command name (which may hold spaces) start at field 3;
    // env_start and env_end are fields 50 and 51 (proc(5)).
    let rest = stat.rsplit_once(')').ok_or_else(bad)?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> std::io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(bad)
    };
    let (start, end) = (field(50)?, field(51)?);
    if end <= start || end - start > 16 << 20 {
        return Err(bad());
    }
    let mut mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/proc/self/mem")?;
    // Holds the secrets while it is scanned: wiped on drop, on every path.
    let mut block = Zeroizing::new(vec![0u8; (end - start) as usize]);
    mem.seek(SeekFrom::Start(start))?;
    mem.read_exact(&mut block)?;
    let mut offset = 0usize;
    for entry in block.split(|b| *b == 0) {
        let value_at = names.iter().find_map(|name| {
            let prefix = name.len();
            (entry.len() > prefix && entry.starts_with(name.as_bytes()) && entry[prefix] == b'=')
                .then_some(prefix + 1)
        });
        if let Some(at) = value_at {
            let zeros = vec![0u8; entry.len() - at];
            mem.seek(SeekFrom::Start(start + (offset + at) as u64))?;
            mem.write_all(&zeros)?;
        }
        offset += entry.len() + 1;
    }
    Ok(())
}
