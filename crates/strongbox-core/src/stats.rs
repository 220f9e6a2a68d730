//! How much the vault holds (Databunker Pro's `SystemGetSystemStats`): counts only,
//! no personal data.

use crate::error::Result;
use crate::kinds::RecordKind;
use crate::principal::Principal;
use crate::vault::Vault;

/// The counts of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemStats {
    /// People in the vault (erased ones not counted).
    pub users: u64,
    /// Sessions stored (expired ones count until the sweeper deletes them).
    pub sessions: u64,
    /// Tenants this vault serves (the main tenant counts them all; a tenant itself).
    pub tenants: u64,
    /// Tokenized values (expired ones count until the sweeper deletes them).
    pub tokens: u64,
}

impl Vault {
    /// This tenant's counts (root only).
    pub async fn system_stats(&self, who: &Principal) -> Result<SystemStats> {
        who.require_root()?;
        let users = self.store.count_users(&self.tenant).await?;
        let sessions = self
            .store
            .count_records(&self.tenant, RecordKind::Session.name())
            .await?;
        let tenants = if self.is_main() {
            crate::tenants::store_keys(&self.store).await?.len() as u64 + 1
        } else {
            1
        };
        Ok(SystemStats {
            users,
            sessions: sessions.max(0) as u64,
            tenants,
            tokens: self.count_tokens().await?,
        })
    }
}
