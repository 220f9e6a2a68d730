//! What a request carries into the core beside its arguments: a v2 caller's
//! `request_metadata` (free-form, say `{"purpose": "support"}`), recorded in every
//! audit event the request makes. It may hold personal data, so it is sealed: into
//! the event's detail under the subject's DEK where the event has one (erased with
//! the person), otherwise under a DEK of its own wrapped by the tenant's KEK.
//!
//! The HTTP layer opens a slot per request ([`with_request`]) and fills it once the
//! body is parsed ([`set_request_metadata`]); `Vault::new_event` and
//! `Vault::with_detail` read it. Work outside a request (the sweeper, imports) has
//! no slot and records none.
//!
//! A v2 request also names its method ([`set_method`]), which a role token's
//! policies are asked about, and collects the policy decisions made for it, which
//! its audit events record beside the actor.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// Largest `request_metadata` recorded, as JSON.
pub const MAX_METADATA_BYTES: usize = 4096;

/// What one request carries.
#[derive(Default)]
struct Slot {
    metadata: Option<Value>,
    /// The v2 method being called (`UserGet`): what a role's policies are asked about.
    method: Option<String>,
    /// The policy decisions made for the request since its last audit event, as
    /// the audit records them (`allow:policy/7`, `deny:policy/3`, `deny:no-policy`).
    decisions: Vec<String>,
    /// The audit label of a role refused by its policies, until an audit event
    /// records the refusal.
    refused: Option<String>,
    /// An audit event carried the decisions.
    audited: bool,
}

tokio::task_local! {
    static SLOT: Arc<Mutex<Slot>>;
}

fn with_slot<T>(f: impl FnOnce(&mut Slot) -> T) -> Option<T> {
    SLOT.try_with(|slot| f(&mut slot.lock().unwrap_or_else(PoisonError::into_inner)))
        .ok()
}

/// Runs `f` (a request's handling) with an empty slot.
pub async fn with_request<F: Future>(f: F) -> F::Output {
    SLOT.scope(Arc::new(Mutex::new(Slot::default())), f).await
}

/// Records the request's metadata (an empty object is none). Outside
/// [`with_request`] it is dropped.
pub fn set_request_metadata(value: Value) {
    if value.as_object().is_some_and(|m| m.is_empty()) {
        return;
    }
    with_slot(|s| s.metadata = Some(value));
}

/// The current request's metadata, if any.
pub(crate) fn request_metadata() -> Option<Value> {
    with_slot(|s| s.metadata.clone()).flatten()
}

/// Records the v2 method the request calls.
pub fn set_method(method: &str) {
    with_slot(|s| s.method = Some(method.to_string()));
}

/// The v2 method of the current request (`None` outside v2: a role may call v2
/// methods only).
pub(crate) fn method() -> Option<String> {
    with_slot(|s| s.method.clone()).flatten()
}

/// Records a policy decision of the current request (kept once).
pub(crate) fn record_decision(decision: String) {
    with_slot(|s| {
        if !s.decisions.contains(&decision) {
            s.decisions.push(decision);
        }
    });
}

/// Records that the policies of the role labelled `label` refused the request.
pub(crate) fn record_refusal(label: &str) {
    with_slot(|s| s.refused = Some(label.to_string()));
}

/// Longest list of decisions one audit event records (its actor column holds 255
/// characters, the role's label included); the rest are counted.
const MAX_DECISIONS_CHARS: usize = 160;

/// The policy decisions made since the last audit event, space-separated, for the
/// next one (which then counts as recording them). Each event carries only its
/// own: a listing's event for one person does not repeat the decisions about the
/// person before.
pub(crate) fn decisions() -> Option<String> {
    with_slot(|s| {
        if s.decisions.is_empty() {
            return None;
        }
        s.audited = true;
        let taken = std::mem::take(&mut s.decisions);
        let mut out = String::new();
        for (i, d) in taken.iter().enumerate() {
            if out.len() + d.len() + 1 > MAX_DECISIONS_CHARS {
                out.push_str(&format!(" +{}", taken.len() - i));
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(d);
        }
        Some(out)
    })
    .flatten()
}

/// A refusal by a role's policies that no audit event has recorded yet: the
/// role's label and the method (the HTTP layer then records it).
pub fn unrecorded_refusal() -> Option<(String, String)> {
    with_slot(|s| match (&s.refused, &s.method, s.audited) {
        (Some(label), Some(method), false) => Some((label.clone(), method.clone())),
        _ => None,
    })
    .flatten()
}
