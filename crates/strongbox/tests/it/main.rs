//! End-to-end tests over HTTP against real `strongbox` processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod cli;
mod hostile;
mod import;
mod security;
mod users;
