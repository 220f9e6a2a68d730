//! A data subject's export (the GDPR right of access, Article 15, and data
//! portability, Article 20): everything the vault holds about one person in one
//! JSON document — profile, application documents, consents, requests, sessions,
//! and the audit trail of who did what to their records — read as one audited
//! action. Root, or the person with their own token.

use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::kinds::Action;
use crate::principal::Principal;
use crate::subjects::Mode;
use crate::vault::Vault;

/// Most audit events an export carries (the newest); `audit.total` says how many
/// there are.
pub const EXPORT_AUDIT_LIMIT: usize = 1000;

impl Vault {
    /// Everything held about `{mode}/{identity}`.
    pub async fn export_person(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
    ) -> Result<Value> {
        let action = Action::UserExport.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let profile = self.profile_of(&subject).await?;
        let apps = self.app_documents(&subject).await?;
        let agreements = self.agreements_of(&subject).await?;
        let requests = self.requests_of(&subject).await?;
        let sessions: Vec<Value> = self
            .sessions_of(&subject)
            .await?
            .into_iter()
            .map(|s| json!({"sessionuuid": s.session, "sessiondata": s.data, "when": s.when}))
            .collect();
        let (total, events) = self
            .store
            .audit_page(&self.tenant, Some(&subject.token), 0, EXPORT_AUDIT_LIMIT)
            .await?;
        let events: Vec<Value> = events.iter().map(Self::listed).collect();
        let generated = self.now();
        let mut out = Map::new();
        out.insert("type".into(), Value::from("subject-export"));
        out.insert("version".into(), Value::from(1));
        out.insert("token".into(), Value::from(subject.token.clone()));
        out.insert("generated".into(), Value::from(generated));
        out.insert(
            "generated_at".into(),
            Value::from(crate::expiry::rfc3339(generated)),
        );
        out.insert("profile".into(), profile);
        out.insert("apps".into(), Value::Object(apps));
        out.insert("agreements".into(), Value::from(agreements));
        out.insert("requests".into(), Value::from(requests));
        out.insert("sessions".into(), Value::from(sessions));
        out.insert(
            "audit".into(),
            json!({"total": total, "complete": (total as usize) <= EXPORT_AUDIT_LIMIT, "events": events}),
        );
        // Audited before it leaves, like every read.
        self.audit(self.new_event(who, &action, Some(&subject.token), "ok"))
            .await?;
        Ok(Value::Object(out))
    }
}
