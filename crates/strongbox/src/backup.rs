//! `strongbox backup` and `strongbox restore`.

use std::io::{Seek, Write};
use std::path::Path;

use strongbox_core::backup::{
    Sink, check_backup, read_backup, restore as restore_into, write_backup,
};
use strongbox_store::{Durability, Location, OpenOptions, Store};

/// Where a backup comes from.
pub enum Source {
    /// A running vault: GET {addr}/v1/sys/backup with the root token.
    Remote { addr: String, token: String },
    /// The store itself, and the directory of file content if it has one.
    Store(Location, Option<std::path::PathBuf>),
}

/// `--out -`: the backup goes to stdout, once it is complete and checked.
const TO_STDOUT: &str = "-";

/// A file beside `path` (mode 0600) that becomes `path` only once complete (or,
/// for `-`, a scratch file that is copied to stdout then).
struct Pending {
    file: std::io::BufWriter<std::fs::File>,
    tmp: tempfile::TempPath,
}

impl Pending {
    fn create(path: &Path) -> Result<Pending, String> {
        let scratch = std::env::temp_dir();
        let dir = if path == TO_STDOUT {
            scratch.as_path()
        } else {
            path.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
        };
        let tmp = tempfile::Builder::new()
            .prefix(".strongbox-backup")
            .tempfile_in(dir)
            .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
        let (file, tmp) = tmp.into_parts();
        Ok(Pending {
            file: std::io::BufWriter::new(file),
            tmp,
        })
    }

    fn finish(self, path: &Path) -> Result<(), String> {
        if path == TO_STDOUT {
            // Complete and checked: now it goes out, and the scratch file is deleted
            // when `tmp` drops.
            let mut file = self
                .file
                .into_inner()
                .map_err(|e| format!("cannot write the backup: {e}"))?;
            file.rewind()
                .map_err(|e| format!("cannot read the backup back: {e}"))?;
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut file, &mut out)
                .and_then(|_| out.flush())
                .map_err(|e| format!("cannot write the backup to stdout: {e}"))?;
            return Ok(());
        }
        let file = self
            .file
            .into_inner()
            .map_err(|e| format!("cannot write the backup: {e}"))?;
        file.sync_all()
            .map_err(|e| format!("cannot write the backup: {e}"))?;
        self.tmp
            .persist(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

pub async fn backup(source: &Source, out: &Path) -> Result<(), String> {
    let manifest = match source {
        Source::Remote { addr, token } => {
            let url = format!("{}/v1/sys/backup", addr.trim_end_matches('/'));
            // Streamed into the file as it comes, then checked there: what is
            // kept is a backup that restores.
            let pending = Pending::create(out)?;
            let pending = tokio::task::spawn_blocking({
                let token = token.clone();
                move || fetch(&url, &token, pending)
            })
            .await
            .map_err(|e| e.to_string())??;
            let written = std::fs::File::open(&pending.tmp)
                .map_err(|e| format!("cannot read the backup back: {e}"))?;
            let manifest =
                check_backup(std::io::BufReader::new(written)).map_err(|e| e.to_string())?;
            pending.finish(out)?;
            manifest
        }
        Source::Store(location, file_store) => {
            let chunks = match file_store {
                Some(dir) => Some(
                    strongbox_store::ChunkDir::open(dir)
                        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?,
                ),
                None => None,
            };
            let store = Store::open(
                location,
                &OpenOptions {
                    create: false,
                    read_only: true,
                    durability: Durability::default(),
                },
            )
            .await
            .map_err(|e| format!("cannot open {}: {e}", location.describe()))?;
            // Streamed to the file as it is read, not held in memory.
            let mut pending = Pending::create(out)?;
            let mut counting = crate::progress::Counting::new(&mut pending.file, "backup written");
            let manifest = write_backup(&store, chunks.as_ref(), Sink::Writer(&mut counting))
                .await
                .map_err(|e| e.to_string())?;
            counting.finish();
            pending.finish(out)?;
            manifest
        }
    };
    let total: u64 = manifest.rows.values().sum();
    let line = format!(
        "backup written: {} ({total} rows, {} users, {} audit events; sha256 {})",
        if out == TO_STDOUT {
            "stdout".into()
        } else {
            out.display().to_string()
        },
        manifest.rows.get("users").copied().unwrap_or(0),
        manifest.rows.get("audit").copied().unwrap_or(0),
        manifest.sha256
    );
    // With the backup on stdout, the summary goes to stderr.
    if out == TO_STDOUT {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(())
}

fn fetch(url: &str, token: &str, mut pending: Pending) -> Result<Pending, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .header("X-Bunker-Token", token)
        .call()
        .map_err(|e| format!("cannot reach the vault: {e}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body = resp.body_mut().read_to_vec().unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_default();
        return Err(format!("the vault answered {status}: {message}"));
    }
    let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    let mut counting = crate::progress::Counting::new(&mut pending.file, "backup received");
    std::io::copy(&mut reader, &mut counting)
        .map_err(|e| format!("reading the backup failed: {e}"))?;
    counting.finish();
    pending
        .file
        .flush()
        .map_err(|e| format!("cannot write the backup: {e}"))?;
    Ok(pending)
}

pub async fn restore(
    input: &Path,
    location: &Location,
    durability: Durability,
    force: bool,
) -> Result<(), String> {
    let bytes =
        std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    eprintln!(
        "checking {} ({:.1} MB)…",
        input.display(),
        bytes.len() as f64 / 1e6
    );
    let backup = read_backup(&bytes).map_err(|e| e.to_string())?;
    let rows: u64 = backup.manifest.rows.values().sum();
    eprintln!("writing {rows} rows in one transaction (all or nothing)…");
    let store = Store::open(
        location,
        &OpenOptions {
            create: true,
            read_only: false,
            durability,
        },
    )
    .await
    .map_err(|e| format!("cannot open {}: {e}", location.describe()))?;
    let done = restore_into(&store, backup, force)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "restored {} rows into {}; erasure ledger: {} subject(s) erased again, {} receipt(s) carried over",
        done.rows,
        location.describe(),
        done.erased_again,
        done.ledger
    );
    Ok(())
}

/// Loads a backup file into a fresh SQLite store under `dir` (for the verifier).
pub async fn load_scratch(path: &Path, dir: &Path) -> Result<Store, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let backup = read_backup(&bytes).map_err(|e| e.to_string())?;
    let store = Store::open(
        &Location::data_dir(dir),
        &OpenOptions {
            create: true,
            read_only: false,
            durability: Durability::Normal,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    restore_into(&store, backup, false)
        .await
        .map_err(|e| e.to_string())?;
    Ok(store)
}
