//! End-to-end tests over HTTP against real `strongbox` processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod apps;
mod cli;
mod hostile;
mod import;
mod security;
mod sessions;
mod users;
