//! The file vault's content outside the database (`--file-store DIR`): each sealed
//! chunk is one file, `DIR/<tenant>/<file uuid>/<seq>`. The chunk's record stays
//! in the database (owner, label, and no body); the bytes here are ciphertext only
//! (sealed by the caller under the person's key), so losing or copying the directory
//! reveals nothing but sizes. A chunk is durable before its record commits: written
//! to a temporary name, synced, renamed, and the directory synced.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Result, StoreError};

/// A directory of sealed file chunks.
#[derive(Debug)]
pub struct ChunkDir {
    root: PathBuf,
}

fn io(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("file store: {what}: {e}"))
}

/// A path component made of what a tenant may be named: hex, so nothing in it
/// can climb out of the directory.
fn tenant_dir(tenant: &str) -> String {
    let mut out = String::from("t");
    for b in tenant.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A file uuid as a path component (only hex digits and dashes).
fn uuid_dir(uuid: &str) -> Result<&str> {
    if uuid.len() == 36 && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        Ok(uuid)
    } else {
        Err(StoreError::Backend("file store: not a file uuid".into()))
    }
}

/// Runs filesystem work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("file store: {e}")))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl ChunkDir {
    /// The store in `root`, created (mode 0700) if missing.
    pub fn open(root: &Path) -> Result<ChunkDir> {
        std::fs::create_dir_all(root).map_err(|e| io("cannot create the directory", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("cannot restrict the directory", e))?;
        }
        Ok(ChunkDir {
            root: root.to_path_buf(),
        })
    }

    fn file_path(&self, tenant: &str, uuid: &str) -> Result<PathBuf> {
        Ok(self.root.join(tenant_dir(tenant)).join(uuid_dir(uuid)?))
    }

    /// Stores chunk `seq` of file `uuid`, durably, replacing one there.
    pub async fn put(&self, tenant: &str, uuid: &str, seq: u64, sealed: Vec<u8>) -> Result<()> {
        let dir = self.file_path(tenant, uuid)?;
        let tenant_root = self.root.join(tenant_dir(tenant));
        let root = self.root.clone();
        blocking(move || -> std::io::Result<()> {
            if !dir.exists() {
                std::fs::create_dir_all(&dir)?;
                sync_dir(&tenant_root)?;
                sync_dir(&root)?;
            }
            let tmp = dir.join(format!("{seq}.tmp"));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&sealed)?;
            f.sync_all()?;
            std::fs::rename(&tmp, dir.join(seq.to_string()))?;
            sync_dir(&dir)
        })
        .await?
        .map_err(|e| io("cannot write a chunk", e))
    }

    /// Chunk `seq` of file `uuid`; `None` if it is not there.
    pub async fn get(&self, tenant: &str, uuid: &str, seq: u64) -> Result<Option<Vec<u8>>> {
        let path = self.file_path(tenant, uuid)?.join(seq.to_string());
        match blocking(move || std::fs::read(&path)).await? {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read a chunk", e)),
        }
    }

    /// Deletes every chunk of file `uuid` (nothing if there are none).
    pub async fn remove(&self, tenant: &str, uuid: &str) -> Result<()> {
        let dir = self.file_path(tenant, uuid)?;
        match blocking(move || std::fs::remove_dir_all(&dir)).await? {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("cannot delete a file's chunks", e)),
        }
    }

    /// Deletes every chunk of a tenant (the tenant is gone).
    pub async fn remove_tenant(&self, tenant: &str) -> Result<()> {
        let dir = self.root.join(tenant_dir(tenant));
        match blocking(move || std::fs::remove_dir_all(&dir)).await? {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("cannot delete a tenant's chunks", e)),
        }
    }

    /// The uuids of the files with chunks here, in one tenant.
    pub async fn files(&self, tenant: &str) -> Result<Vec<String>> {
        let dir = self.root.join(tenant_dir(tenant));
        let names = blocking(move || -> std::io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                if let Some(name) = entry?.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
            Ok(names)
        })
        .await?;
        let out = match names {
            Ok(names) => names.into_iter().filter(|n| uuid_dir(n).is_ok()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("cannot list the directory", e)),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_round_trip_and_go_with_their_file() {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let d = ChunkDir::open(&tmp.path().join("files")).expect("opened");
        let uuid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
        d.put("acme", uuid, 0, b"sealed".to_vec())
            .await
            .expect("put");
        assert_eq!(
            d.get("acme", uuid, 0).await.expect("get"),
            Some(b"sealed".to_vec())
        );
        assert_eq!(
            d.get("other", uuid, 0).await.expect("get"),
            None,
            "per tenant"
        );
        assert_eq!(d.files("acme").await.expect("files"), [uuid]);
        d.remove("acme", uuid).await.expect("removed");
        assert_eq!(d.get("acme", uuid, 0).await.expect("get"), None);
        assert!(d.put("acme", "../../etc", 0, vec![]).await.is_err());
    }
}
