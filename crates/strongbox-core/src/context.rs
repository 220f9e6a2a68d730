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

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// Largest `request_metadata` recorded, as JSON.
pub const MAX_METADATA_BYTES: usize = 4096;

tokio::task_local! {
    static METADATA: Arc<Mutex<Option<Value>>>;
}

/// Runs `f` (a request's handling) with an empty metadata slot.
pub async fn with_request<F: Future>(f: F) -> F::Output {
    METADATA.scope(Arc::new(Mutex::new(None)), f).await
}

/// Records the request's metadata (an empty object is none). Outside
/// [`with_request`] it is dropped.
pub fn set_request_metadata(value: Value) {
    if value.as_object().is_some_and(|m| m.is_empty()) {
        return;
    }
    let _ = METADATA.try_with(|slot| {
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    });
}

/// The current request's metadata, if any.
pub(crate) fn request_metadata() -> Option<Value> {
    METADATA
        .try_with(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).clone())
        .ok()
        .flatten()
}
