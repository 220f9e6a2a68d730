//! Domain services of Strongbox. Everything here is independent of HTTP: the v1 REST
//! API (and later the v2 RPC API) are thin adapters over these functions.

pub mod error;
pub mod normalize;
pub mod users;
pub mod vault;

pub use error::{Error, ErrorKind, Result};
pub use normalize::{Normalizer, parse_country};
pub use users::{Change, Mode, UserView};
pub use vault::{OpenError, Principal, Vault, VaultConfig};
