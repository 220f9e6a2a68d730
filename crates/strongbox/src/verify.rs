//! `strongbox audit verify` and `strongbox receipt verify`: key-less checks of the
//! audit chain and of erasure receipts. They print one line per finding and exit 1
//! when they find tampering (see `Failure`).

use std::path::Path;

use strongbox_core::verify::{
    Checkpoint, VerifyError, parse_public_key, parse_strict, verify_chain, verify_receipt,
};
use strongbox_store::{Location, OpenOptions, Store};

use crate::Failure;

async fn open(location: &Location) -> Result<Store, String> {
    let opts = OpenOptions {
        create: false,
        read_only: true,
        durability: Default::default(),
    };
    Store::open(location, &opts)
        .await
        .map_err(|e| format!("cannot open {}: {e}", location.describe()))
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_strict(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_public_key(&text)
}

/// What `audit verify` checks: a store, or a backup file.
pub enum Source {
    Store(Location),
    Backup(std::path::PathBuf),
}

pub async fn audit(
    source: &Source,
    tenant: &str,
    checkpoint: Option<&Path>,
    public_key: Option<&Path>,
) -> Result<(), Failure> {
    let external = match checkpoint {
        Some(path) => Some(Checkpoint::from_json(&read_json(path)?)?),
        None => None,
    };
    let pinned = public_key.map(read_key).transpose()?;
    // A backup is checked (checksum, counts) and loaded into a scratch SQLite store.
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot make a scratch directory: {e}"))?;
    let store = match source {
        Source::Store(location) => open(location).await?,
        Source::Backup(path) => crate::backup::load_scratch(path, scratch.path()).await?,
    };
    let v = verify_chain(&store, tenant, external.as_ref(), pinned.as_deref())
        .await
        .map_err(|e| Failure::Error(e.to_string()))?;
    println!(
        "audit chain of tenant {}: {} events sealed, {} pending",
        v.tenant, v.sealed, v.pending
    );
    println!(
        "checkpoints: {} verified, covering the chain up to seq {}",
        v.checkpoints, v.anchored
    );
    if !v.key_pinned {
        println!(
            "note: signatures were checked with the key stored beside the chain; give \
             --public-key or --from-checkpoint (kept off this machine) to detect a replaced key"
        );
    }
    for f in &v.findings {
        println!("{f}");
    }
    if v.findings.is_empty() {
        println!("OK: the audit chain is intact");
        Ok(())
    } else {
        println!("FAILED: {} problem(s) found", v.findings.len());
        Err(Failure::Found)
    }
}

pub async fn receipt(
    file: &Path,
    public_key: Option<&Path>,
    location: Option<&Location>,
) -> Result<(), Failure> {
    if public_key.is_none() && location.is_none() {
        return Err(Failure::Error(format!(
            "give --public-key FILE, or the store (--data-dir or --database-url): \
                 there is none in the default data directory {}",
            crate::config::DEFAULT_DATA_DIR
        )));
    }
    let doc = read_json(file)?;
    let key = public_key.map(read_key).transpose()?;
    let store = match location {
        Some(l) => Some(open(l).await?),
        None => None,
    };
    match verify_receipt(&doc, key.as_deref(), store.as_ref()).await {
        Ok(check) => {
            println!(
                "signature: valid (subject {}, dated {})",
                check.subject,
                strongbox_core::expiry::rfc3339(check.erased)
            );
            if let Some(seq) = check.chain_seq {
                println!("chain: the audit chain holds the document's event or head at seq {seq}");
            }
            println!("OK: the document is valid");
            Ok(())
        }
        Err(VerifyError::Invalid(why)) => {
            println!("INVALID: {why}");
            Err(Failure::Found)
        }
        Err(VerifyError::Unavailable(why)) => Err(Failure::Error(why)),
    }
}
