//! Auto-unseal through AWS KMS (`--features kms`), against a real KMS API on loopback:
//! moto's server (`pip install 'moto[server]'`, which `.ci/run` does). On every
//! backend: init wraps the root key with a KMS key, serve unseals through KMS (also
//! after a restart), and KMS being unreachable at start is a clear, prompt failure.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::backend_tests;
use crate::harness::{BIN, Backend, Server, StoreLoc};

backend_tests!(kms_auto_unseal, kms_unreachable_at_start_fails_clearly);

/// A moto server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn moto() -> Moto {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is needed for the KMS tests: pip install 'moto[server]'");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// The AWS settings that point the SDK at `endpoint`.
fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ]
}

fn create_key(endpoint: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import boto3,sys\n\
             c=boto3.client('kms',endpoint_url=sys.argv[1],region_name='us-east-1',\
             aws_access_key_id='test',aws_secret_access_key='test')\n\
             print(c.create_key()['KeyMetadata']['KeyId'])",
            endpoint,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `strongbox init --kms-key-id`: returns the root token.
fn init_with_kms(store: &StoreLoc, endpoint: &str, key: &str) -> String {
    let out = Command::new(BIN)
        .args(["init", "--kms-key-id", key])
        .args(&store.args)
        .envs(aws_env(endpoint))
        .env_remove("STRONGBOX_ROOT_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kept by the AWS KMS key"), "{stdout}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root token: "))
        .unwrap()
        .to_string()
}

fn env_args(endpoint: &str) -> Vec<String> {
    aws_env(endpoint)
        .into_iter()
        .map(|(k, v)| format!("env:{k}={v}"))
        .collect()
}

fn kms_auto_unseal(b: &Backend) {
    let kms = moto();
    let key = create_key(&kms.url);
    let store = StoreLoc::new(b);
    let token = init_with_kms(&store, &kms.url, &key);
    let s = Server::serve(store, String::new(), token, env_args(&kms.url));
    let t = s.create_user(json!({"email": "kms@example.com"}));
    let mut s = s.restart();
    s.get_user("token", &t).expect(200);
    // Rotating the root key keeps it with KMS: the old one comes from KMS, the new
    // one goes there, and the vault still unseals by itself.
    s.stop();
    let out = Command::new(BIN)
        .args(["rotate", "root-key"])
        .args(&s.store.args)
        .envs(aws_env(&kms.url))
        .env_remove("STRONGBOX_ROOT_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kept by the same key service"), "{stdout}");
    let s = s.restart();
    s.get_user("token", &t).expect(200);
}

fn kms_unreachable_at_start_fails_clearly(b: &Backend) {
    let kms = moto();
    let key = create_key(&kms.url);
    let store = StoreLoc::new(b);
    init_with_kms(&store, &kms.url, &key);
    let closed = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(&store.args)
        .envs(aws_env(&closed))
        .env_remove("STRONGBOX_ROOT_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: cannot unseal"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "it never serves without its key"
    );
}
