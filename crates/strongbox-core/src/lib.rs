//! Domain services of Strongbox. Everything here is independent of HTTP: the v1 REST
//! API (and later the v2 RPC API) are thin adapters over these functions.

pub mod apps;
mod audit;
pub mod backup;
pub mod chain;
pub mod change;
pub mod clock;
pub mod consent;
pub mod error;
pub mod expiry;
pub mod kek;
pub mod kinds;
pub mod normalize;
pub mod notify;
mod receipts;
mod records;
pub mod reindex;
pub mod requests;
pub mod retention;
pub mod rotate;
pub mod schema;
pub mod secret;
pub mod sessions;
pub mod shares;
pub mod tokens;
pub mod unseal;
pub mod users;
pub mod vault;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
pub use expiry::Page;
pub use normalize::{Normalizer, parse_country};
pub use requests::Outcome;
pub use retention::ExpirationStatus;
pub use schema::UserSchema;
pub use secret::Secret;
pub use sessions::SessionView;
pub use shares::SharedView;
pub use strongbox_crypto::RootKey;
pub use strongbox_store::metrics as store_metrics;
pub use tokens::IssuedToken;
pub use users::{Change, Mode, UserView};
pub use vault::{CRYPTO_TIMINGS, OpenError, Policy, Principal, SelfService, Vault, VaultConfig};
