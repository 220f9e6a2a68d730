//! End-to-end tests over HTTP against real `strongbox` processes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly at the first surprise; unwrap is how it says so"
)]

mod harness;

mod apps;
mod audit;
mod backup;
mod chain;
mod cli;
mod consent;
mod delivery;
mod failures;
mod files;
mod hostile;
mod import;
#[cfg(feature = "kms")]
mod kms;
mod limits;
mod login;
mod node_clients;
mod policies;
mod pro_clients;
mod probes;
mod requests;
mod retention;
mod rotate;
mod schema;
mod search;
mod security;
mod sessions;
mod setup;
mod shares;
mod system;
mod tenants;
mod tls;
mod tokenization;
mod tokens;
mod trash;
mod ui;
mod unseal;
mod users;
mod v2;
mod versions;
mod webhooks;
