//! The domain services without HTTP: a vault over a temporary SQLite store, on a
//! manual clock, so that expiry and retention are tested by moving time instead of
//! sleeping through it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly at the first surprise; unwrap is how it says so"
)]

use std::sync::Arc;

use serde_json::{Map, Value, json};
use strongbox_core::clock::{Clock, ManualClock, SystemClock};
use strongbox_core::{ErrorKind, Mode, Page, Principal, RootKey, Vault, VaultConfig};
use strongbox_store::{Location, OpenOptions, Store};

const ROOT: &str = "b2f1a1e4-6d2c-4d6a-9a51-6f2a3c1d9e70";

struct Fixture {
    vault: Vault,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        create: true,
        read_only: false,
        durability: Default::default(),
    };
    let store = Store::open(&Location::data_dir(dir.path()), &opts)
        .await
        .unwrap();
    let root = RootKey::generate().unwrap();
    Vault::initialize(&store, &root, ROOT, Vec::new())
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::at(SystemClock.now()));
    let config = VaultConfig {
        clock: clock.clone(),
        ..VaultConfig::default()
    };
    let vault = Vault::open(store, &root, config).await.unwrap();
    Fixture {
        vault,
        clock,
        _dir: dir,
    }
}

/// The error of a call whose answer holds personal data (and so has no `Debug`).
fn refused<T>(r: strongbox_core::Result<T>) -> strongbox_core::Error {
    match r {
        Ok(_) => panic!("the call succeeded"),
        Err(e) => e,
    }
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn events_of(vault: &Vault, token: &str) -> Vec<Value> {
    let page = Page {
        offset: 0,
        limit: 100,
    };
    vault
        .list_audit_of(&Principal::Root, token, page)
        .await
        .unwrap()
        .1
}

#[tokio::test]
async fn events_carry_the_clocks_time_and_their_action_names() {
    let f = fixture().await;
    let t = f
        .vault
        .create_user(&Principal::Root, object(json!({"login": "ann"})))
        .await
        .unwrap();
    f.clock.advance(90);
    f.vault
        .get_user(&Principal::Root, Mode::Login, "ann", None)
        .await
        .unwrap();
    let events = events_of(&f.vault, &t).await;
    let created = f.clock.now() - 90;
    let seen: Vec<(&str, &str, i64)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["title"].as_str().unwrap(),
                e["when"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("user.get", "get user record by login", created + 90),
            ("user.create", "create user record", created),
        ]
    );
}

#[tokio::test]
async fn sessions_end_when_the_clock_passes_their_expiry() {
    let f = fixture().await;
    let short = "7b1f7c8e-3a44-4f0e-9d2a-1c5b6e7f8a90";
    let long = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f";
    for (sid, expiration) in [(short, "600"), (long, "12m")] {
        f.vault
            .put_session(
                &Principal::Root,
                sid,
                object(json!({"expiration": expiration, "cart": 3})),
            )
            .await
            .unwrap();
    }
    f.clock.advance(599);
    let s = f.vault.get_session(&Principal::Root, short).await.unwrap();
    assert_eq!(s.data["cart"], 3);
    f.clock.advance(1);
    let e = refused(f.vault.get_session(&Principal::Root, short).await);
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::NotFound, "session expired")
    );
    // It is gone, not only hidden.
    let e = refused(f.vault.get_session(&Principal::Root, short).await);
    assert_eq!(e.message, "not found");
    // Twelve months were asked for; the policy's hour is what it got.
    f.vault.get_session(&Principal::Root, long).await.unwrap();
    f.clock.advance(3000);
    let e = refused(f.vault.get_session(&Principal::Root, long).await);
    assert_eq!(e.message, "session expired");
}

#[tokio::test]
async fn access_tokens_stop_at_their_expiry() {
    let f = fixture().await;
    let t = f
        .vault
        .create_user(&Principal::Root, object(json!({"login": "bob"})))
        .await
        .unwrap();
    let issued = f
        .vault
        .issue_user_token(&Principal::Root, Mode::Token, &t, Some(&json!("1h")))
        .await
        .unwrap();
    assert_eq!(issued.expires, f.clock.now() + 3600);
    let who = f.vault.authenticate(Some(&issued.xtoken)).await.unwrap();
    assert!(matches!(&who, Principal::User { token, .. } if *token == t));
    f.vault.get_user(&who, Mode::Token, &t, None).await.unwrap();
    f.clock.advance(3600);
    let e = f
        .vault
        .authenticate(Some(&issued.xtoken))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::Forbidden, "access token expired")
    );
}

#[tokio::test]
async fn retention_erases_a_person_once_their_time_is_up() {
    let f = fixture().await;
    let t = f
        .vault
        .create_user(
            &Principal::Root,
            object(json!({"login": "cyd", "email": "c@example.com"})),
        )
        .await
        .unwrap();
    f.vault
        .start_expiration(
            &Principal::Root,
            Mode::Token,
            &t,
            object(json!({"expiration": "1d"})),
        )
        .await
        .unwrap();
    // The sweeper runs before the day is over: nothing happens.
    f.clock.advance(24 * 3600 - 1);
    f.vault.sweep().await.unwrap();
    f.vault
        .get_user(&Principal::Root, Mode::Email, "c@example.com", None)
        .await
        .unwrap();
    assert!(f.vault.receipt_of(&t).await.unwrap().is_none());
    // After it: erased, with a signed receipt, and the erasure is audited.
    f.clock.advance(1);
    f.vault.sweep().await.unwrap();
    let e = refused(
        f.vault
            .get_user(&Principal::Root, Mode::Email, "c@example.com", None)
            .await,
    );
    assert_eq!(e.kind, ErrorKind::NotFound);
    let receipt = f.vault.receipt_of(&t).await.unwrap().expect("a receipt");
    assert_eq!(receipt["receipt"]["erased"], f.clock.now());
    let events = events_of(&f.vault, &t).await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "user.delete-by-expiration" && e["identity"] == "system"),
        "{events:?}"
    );
}
