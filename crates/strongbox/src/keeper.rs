//! Auto-unseal: the root key kept wrapped by an external key service, and unwrapped
//! at start, so no person has to hand it over.
//!
//! [`KeyKeeper`] is the seam: AWS KMS is one implementation (cargo feature `kms`); a
//! HashiCorp Vault / OpenBao transit engine or a PKCS#11 token would be others. The
//! store keeps only the service's ciphertext (meta `autounseal`), never the key.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use strongbox_crypto::RootKey;
use strongbox_store::Store;

/// The `meta` entry describing the keeper and holding the wrapped root key.
pub const META_AUTOUNSEAL: &str = "autounseal";

pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Something that wraps the root key for storage and unwraps it at start.
pub trait KeyKeeper: Send + Sync {
    /// How the keeper is described in the store (its type and key id; no secret).
    fn describe(&self) -> Value;
    fn wrap<'a>(&'a self, root: &'a RootKey) -> Pending<'a, Vec<u8>>;
    fn unwrap<'a>(&'a self, blob: &'a [u8]) -> Pending<'a, RootKey>;
}

/// The keeper a store names, and the wrapped key it holds, if it auto-unseals.
pub async fn stored(store: &Store) -> Result<Option<(Box<dyn KeyKeeper>, Vec<u8>)>, String> {
    let Some(bytes) = store
        .meta_value(META_AUTOUNSEAL)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|_| "the auto-unseal entry is damaged")?;
    let blob = hex::decode(v["blob"].as_str().unwrap_or(""))
        .map_err(|_| "the auto-unseal entry is damaged")?;
    Ok(Some((from_description(&v)?, blob)))
}

/// The meta value recording `keeper` and the root key it wrapped.
pub fn entry(keeper: &dyn KeyKeeper, blob: &[u8]) -> Vec<u8> {
    let mut v = keeper.describe();
    v["blob"] = Value::from(hex::encode(blob));
    v.to_string().into_bytes()
}

#[cfg(feature = "kms")]
fn from_description(v: &Value) -> Result<Box<dyn KeyKeeper>, String> {
    match (v["type"].as_str(), v["key_id"].as_str()) {
        (Some("awskms"), Some(key_id)) => Ok(Box::new(aws::AwsKms::new(key_id))),
        _ => Err("the store names a key keeper this build does not know".into()),
    }
}

#[cfg(not(feature = "kms"))]
fn from_description(v: &Value) -> Result<Box<dyn KeyKeeper>, String> {
    Err(format!(
        "this store unseals through {}, which this build lacks: build with `--features kms`",
        v["type"].as_str().unwrap_or("an unknown key service")
    ))
}

/// The keeper for `strongbox init --kms-key-id`.
#[cfg(feature = "kms")]
pub fn aws_kms(key_id: &str) -> Box<dyn KeyKeeper> {
    Box::new(aws::AwsKms::new(key_id))
}

/// Unwraps the root key, retrying a few times (the service may be starting too),
/// then giving up with the service's error: a clear failure, not a crash loop.
pub async fn unwrap_with_retries(keeper: &dyn KeyKeeper, blob: &[u8]) -> Result<RootKey, String> {
    let mut delay = std::time::Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 1..=4 {
        match keeper.unwrap(blob).await {
            Ok(root) => return Ok(root),
            Err(e) => {
                tracing::warn!(attempt, error = %e, "unsealing through the key service failed");
                last = e;
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    Err(format!(
        "cannot unseal: the key service ({}) did not unwrap the root key: {last}",
        keeper.describe()
    ))
}

#[cfg(feature = "kms")]
mod aws {
    use aws_sdk_kms::primitives::Blob;
    use serde_json::{Value, json};
    use strongbox_crypto::RootKey;
    use zeroize::Zeroizing;

    use super::{KeyKeeper, Pending};

    /// AWS KMS (or anything speaking its API, e.g. LocalStack or moto). Region,
    /// credentials and endpoint come from the usual AWS settings (`AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, profiles, instance roles).
    pub struct AwsKms {
        key_id: String,
    }

    impl AwsKms {
        pub fn new(key_id: &str) -> Self {
            AwsKms {
                key_id: key_id.to_string(),
            }
        }

        async fn client(&self) -> aws_sdk_kms::Client {
            let config = aws_config::load_from_env().await;
            aws_sdk_kms::Client::new(&config)
        }
    }

    fn error(e: impl std::fmt::Display) -> String {
        // The SDK's display text names the operation and the service's message; it
        // holds no key material.
        e.to_string()
    }

    impl KeyKeeper for AwsKms {
        fn describe(&self) -> Value {
            json!({"type": "awskms", "key_id": self.key_id})
        }

        fn wrap<'a>(&'a self, root: &'a RootKey) -> Pending<'a, Vec<u8>> {
            Box::pin(async move {
                let plain = root.to_hex();
                let out = self
                    .client()
                    .await
                    .encrypt()
                    .key_id(&self.key_id)
                    .plaintext(Blob::new(plain.as_bytes().to_vec()))
                    .send()
                    .await
                    .map_err(|e| error(aws_sdk_kms::error::DisplayErrorContext(e)))?;
                out.ciphertext_blob()
                    .map(|b| b.as_ref().to_vec())
                    .ok_or_else(|| "KMS returned no ciphertext".to_string())
            })
        }

        fn unwrap<'a>(&'a self, blob: &'a [u8]) -> Pending<'a, RootKey> {
            Box::pin(async move {
                let out = self
                    .client()
                    .await
                    .decrypt()
                    .key_id(&self.key_id)
                    .ciphertext_blob(Blob::new(blob.to_vec()))
                    .send()
                    .await
                    .map_err(|e| error(aws_sdk_kms::error::DisplayErrorContext(e)))?;
                let plain = Zeroizing::new(
                    out.plaintext()
                        .map(|b| b.as_ref().to_vec())
                        .ok_or_else(|| "KMS returned no plaintext".to_string())?,
                );
                let text = std::str::from_utf8(&plain).map_err(|_| "KMS returned garbage")?;
                RootKey::from_hex(text)
                    .map_err(|_| "KMS returned something that is not a root key".into())
            })
        }
    }
}
