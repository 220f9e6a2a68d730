//! Test harness: real `strongbox` processes on 127.0.0.1:0, one fresh store each, on
//! SQLite always and on PostgreSQL / MariaDB when `STRONGBOX_TEST_POSTGRES_URL` /
//! `STRONGBOX_TEST_MYSQL_URL` are set. Each test gets its own database.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http;

pub const BIN: &str = env!("CARGO_BIN_EXE_strongbox");

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// Admin URL of a PostgreSQL server (databases are created under it).
    Postgres(String),
    /// Admin URL of a MySQL/MariaDB server.
    Mysql(String),
}

impl Backend {
    pub fn postgres() -> Option<Backend> {
        std::env::var("STRONGBOX_TEST_POSTGRES_URL")
            .ok()
            .map(Backend::Postgres)
    }

    pub fn mysql() -> Option<Backend> {
        std::env::var("STRONGBOX_TEST_MYSQL_URL")
            .ok()
            .map(Backend::Mysql)
    }
}

/// A fresh, empty store location.
pub struct StoreLoc {
    pub backend: Backend,
    /// The CLI arguments that select it.
    pub args: Vec<String>,
    /// Scratch directory (the SQLite data dir, logs).
    pub dir: tempfile::TempDir,
    /// Database name on a server backend.
    pub db: Option<String>,
    pub url: Option<String>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "sbt_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// Parses `mysql://user[:pass]@host[:port]/db` into mariadb client arguments.
fn mysql_client_args(url: &str) -> Vec<String> {
    let rest = url.split("://").nth(1).unwrap();
    let (auth, hostpart) = rest.rsplit_once('@').unwrap_or(("root", rest));
    let hostport = hostpart.split('/').next().unwrap();
    let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
    let mut args = vec![
        format!("-h{host}"),
        format!("-P{port}"),
        format!("-u{user}"),
    ];
    if !pass.is_empty() {
        args.push(format!("-p{pass}"));
    }
    args
}

/// The URL with its database path replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (hostpart, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let host = hostpart.split('/').next().unwrap();
    let mut out = format!("{scheme}://{host}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl StoreLoc {
    pub fn new(backend: &Backend) -> StoreLoc {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => StoreLoc {
                backend: backend.clone(),
                args: vec![
                    "--data-dir".into(),
                    dir.path().join("data").display().to_string(),
                ],
                dir,
                db: None,
                url: None,
            },
            Backend::Postgres(admin) | Backend::Mysql(admin) => {
                let db = unique_name();
                let create = format!("CREATE DATABASE {db}");
                if matches!(backend, Backend::Postgres(_)) {
                    run_ok(Command::new("psql").args([admin.as_str(), "-qc", &create]));
                } else {
                    run_ok(
                        Command::new("mariadb")
                            .args(mysql_client_args(admin))
                            .args(["-e", &create]),
                    );
                }
                let url = with_database(admin, &db);
                StoreLoc {
                    backend: backend.clone(),
                    args: vec!["--database-url".into(), url.clone()],
                    dir,
                    db: Some(db),
                    url: Some(url),
                }
            }
        }
    }

    /// Every byte the store holds: the SQLite files (WAL included) or a full dump of
    /// the server database.
    pub fn raw_contents(&self) -> Vec<u8> {
        match &self.backend {
            Backend::Sqlite => {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(self.dir.path().join("data")).unwrap() {
                    let mut f = std::fs::File::open(entry.unwrap().path()).unwrap();
                    f.read_to_end(&mut all).unwrap();
                }
                all
            }
            Backend::Postgres(_) => run_ok(Command::new("pg_dump").args([
                "--data-only",
                "--inserts",
                self.url.as_deref().unwrap(),
            ]))
            .into_bytes(),
            Backend::Mysql(admin) => run_ok(
                Command::new("mariadb-dump")
                    .args(mysql_client_args(admin))
                    .args(["--hex-blob", self.db.as_deref().unwrap()]),
            )
            .into_bytes(),
        }
    }

    /// The bytes on disk of one table, written out first (a checkpoint, a flush), so
    /// that what the engine keeps of deleted rows shows. SQLite: every file of the
    /// data directory. `None` where the files cannot be read (the test does not run
    /// as the database's owner or as root).
    pub fn table_file_bytes(&self, table: &str) -> Option<Vec<u8>> {
        let path = match &self.backend {
            Backend::Sqlite => return Some(self.raw_contents()),
            Backend::Postgres(_) => {
                self.sql("CHECKPOINT");
                let dir = self.sql("SHOW data_directory");
                let file = self.sql(&format!("SELECT pg_relation_filepath('{table}')"));
                std::path::Path::new(dir.trim()).join(file.trim())
            }
            Backend::Mysql(_) => {
                self.sql(&format!("FLUSH TABLES {table} FOR EXPORT; UNLOCK TABLES"));
                let dir = self.sql("SELECT @@datadir");
                std::path::Path::new(dir.trim())
                    .join(self.db.as_deref().unwrap())
                    .join(format!("{table}.ibd"))
            }
        };
        std::fs::read(path).ok()
    }

    /// Runs SQL against the store directly (for tampering tests).
    /// Runs one statement; rows come back one per line, columns joined by `|`.
    pub fn sql(&self, statement: &str) -> String {
        match &self.backend {
            // The bundled SQLite has no CLI here; Python's sqlite3 module is on the
            // machine and speaks the same file format.
            Backend::Sqlite => run_ok(
                Command::new("python3").args([
                    "-c",
                    "import sqlite3,sys\n\
                 c=sqlite3.connect(sys.argv[1],timeout=10)\n\
                 rows=c.execute(sys.argv[2]).fetchall()\n\
                 c.commit()\n\
                 print('\\n'.join('|'.join(str(x) for x in r) for r in rows))",
                    &self
                        .dir
                        .path()
                        .join("data/strongbox.sqlite3")
                        .display()
                        .to_string(),
                    statement,
                ]),
            ),
            Backend::Postgres(_) => run_ok(Command::new("psql").args([
                self.url.as_deref().unwrap(),
                "-qAtc",
                statement,
            ])),
            Backend::Mysql(admin) => run_ok(
                Command::new("mariadb")
                    .args(mysql_client_args(admin))
                    .args([
                        "-N",
                        "-B",
                        "-D",
                        self.db.as_deref().unwrap(),
                        "-e",
                        statement,
                    ]),
            )
            // Columns separated as the other two backends print them.
            .replace('\t', "|"),
        }
    }
}

impl Drop for StoreLoc {
    fn drop(&mut self) {
        let Some(db) = &self.db else { return };
        let drop = format!("DROP DATABASE IF EXISTS {db}");
        let _ = match &self.backend {
            Backend::Postgres(admin) => Command::new("psql")
                .args([admin.as_str(), "-qc", &format!("{drop} WITH (FORCE)")])
                .output(),
            Backend::Mysql(admin) => Command::new("mariadb")
                .args(mysql_client_args(admin))
                .args(["-e", &drop])
                .output(),
            Backend::Sqlite => return,
        };
    }
}

/// Output of `strongbox init`.
pub struct InitOutput {
    pub root_key: String,
    pub root_token: String,
}

pub fn init(store: &StoreLoc) -> InitOutput {
    let out = Command::new(BIN)
        .arg("init")
        .args(&store.args)
        .env_remove("STRONGBOX_ROOT_KEY")
        .env_remove("STRONGBOX_ROOT_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no `{label}` line in {stdout}"))
            .trim()
            .to_string()
    };
    InitOutput {
        root_key: field("Root key:"),
        root_token: field("Root token:"),
    }
}

/// A running `strongbox serve`.
pub struct Server {
    pub child: Option<Child>,
    pub base: String,
    pub token: String,
    pub root_key: String,
    pub store: StoreLoc,
    pub extra_args: Vec<String>,
    log: PathBuf,
    agent: ureq::Agent,
}

/// An HTTP answer: status and parsed JSON (or `Value::String` for non-JSON bodies).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub json: Value,
    pub content_type: String,
    pub headers: http::HeaderMap,
}

impl Reply {
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.json
        );
        self.json
    }
}

/// A request body.
pub enum Body<'a> {
    None,
    Json(Value),
    Raw(&'a str, Vec<u8>),
}

impl Server {
    /// A fresh store on `backend`, initialized, served.
    pub fn start(backend: &Backend) -> Server {
        Self::start_with(backend, &[])
    }

    pub fn start_with(backend: &Backend, extra_args: &[&str]) -> Server {
        let store = StoreLoc::new(backend);
        let init = init(&store);
        Self::serve(
            store,
            init.root_key,
            init.root_token,
            extra_args.iter().map(|s| s.to_string()).collect(),
        )
    }

    /// Serves `store`. An extra argument `env:NAME=VALUE` sets an environment
    /// variable of the server instead (for settings that have no flag).
    pub fn serve(
        store: StoreLoc,
        root_key: String,
        token: String,
        extra_args: Vec<String>,
    ) -> Server {
        let log = store.dir.path().join(format!(
            "server-{}.log",
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let (env, args): (Vec<&String>, Vec<&String>) =
            extra_args.iter().partition(|a| a.starts_with("env:"));
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&store.args)
            .args(args)
            .envs(env.iter().filter_map(|e| e["env:".len()..].split_once('=')))
            .env("STRONGBOX_ROOT_KEY", &root_key)
            .env("STRONGBOX_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait_listening(&mut child)));
        let base = started.unwrap_or_else(|_| {
            let _ = child.wait();
            panic!(
                "server did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let agent = agent();
        Server {
            child: Some(child),
            base,
            token,
            root_key,
            store,
            extra_args,
            log,
            agent,
        }
    }

    /// A running `strongbox demo` (root token `DEMO`, a temporary SQLite store); its
    /// standard error is what [`Server::log`] reads.
    pub fn demo(extra_args: &[&str]) -> Server {
        let store = StoreLoc::placeholder();
        let log = store.dir.path().join("demo.log");
        let mut child = Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env_remove("STRONGBOX_ROOT_KEY")
            .env("STRONGBOX_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let base = wait_listening(&mut child);
        Server {
            child: Some(child),
            base,
            token: "DEMO".into(),
            root_key: String::new(),
            store,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            log,
            agent: agent(),
        }
    }

    /// Sends a request with the root token.
    pub fn call(&self, method: &str, path: &str, body: Body) -> Reply {
        self.call_as(Some(&self.token), method, path, body)
    }

    pub fn call_as(&self, token: Option<&str>, method: &str, path: &str, body: Body) -> Reply {
        self.try_call_as(token, method, path, body).unwrap()
    }

    /// Like [`Server::call_as`], but a connection failure is `None` instead of a panic
    /// (for requests racing a crash).
    pub fn try_call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Body,
    ) -> Option<Reply> {
        self.send(token, method, path, &[], body)
    }

    /// Like [`Server::call_as`], with extra request headers.
    pub fn call_with(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Reply {
        self.send(token, method, path, headers, body).unwrap()
    }

    fn send(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Option<Reply> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = token {
            req = req.header("X-Bunker-Token", t);
        }
        let bytes = match body {
            Body::None => Vec::new(),
            Body::Json(v) => {
                req = req.header("Content-Type", "application/json");
                serde_json::to_vec(&v).unwrap()
            }
            Body::Raw(ct, bytes) => {
                if !ct.is_empty() {
                    req = req.header("Content-Type", ct);
                }
                bytes
            }
        };
        let mut resp = self.agent.run(req.body(bytes).unwrap()).ok()?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.body_mut().read_to_string().ok()?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Some(Reply {
            status,
            json,
            content_type,
            headers,
        })
    }

    pub fn create_user(&self, profile: Value) -> String {
        let v = self
            .call("POST", "/v1/user", Body::Json(profile))
            .expect(200);
        assert_eq!(v["status"], "ok");
        v["token"].as_str().unwrap().to_string()
    }

    pub fn get_user(&self, mode: &str, identity: &str) -> Reply {
        self.call(
            "GET",
            &format!("/v1/user/{mode}/{}", encode(identity)),
            Body::None,
        )
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            c.wait().unwrap();
        }
    }

    /// Sends SIGKILL while other threads may be using the server.
    pub fn sigkill(&self) {
        if let Some(c) = &self.child {
            let status = Command::new("kill")
                .args(["-9", &c.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// Sends SIGTERM and returns at once (the server drains and exits by itself).
    pub fn sigterm(&self) {
        if let Some(c) = &self.child {
            let status = Command::new("kill")
                .arg(c.id().to_string())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// Sends SIGHUP (TLS files are read again).
    pub fn sighup(&self) {
        if let Some(c) = &self.child {
            let status = Command::new("kill")
                .args(["-HUP", &c.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// The exit status, once the process has exited within `within`.
    pub fn exited(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the process (SIGTERM) and starts a new one on the same store.
    pub fn restart(mut self) -> Server {
        self.stop();
        self.respawn()
    }

    /// Kills the process with SIGKILL and starts a new one on the same store.
    pub fn crash_and_restart(mut self) -> Server {
        self.kill9();
        self.respawn()
    }

    fn respawn(mut self) -> Server {
        let store = std::mem::replace(&mut self.store, StoreLoc::placeholder());
        Server::serve(
            store,
            self.root_key.clone(),
            self.token.clone(),
            self.extra_args.clone(),
        )
    }

    /// The server's log so far.
    /// Where the server's standard error goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl StoreLoc {
    pub fn placeholder() -> StoreLoc {
        StoreLoc {
            backend: Backend::Sqlite,
            args: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
            db: None,
            url: None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits for a spawned `strongbox` to print its listening line; returns its base URL.
pub fn wait_listening(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find_map(|l| {
            l.strip_prefix("Strongbox listening on ")
                .map(str::to_string)
        })
        .expect("the server exited before listening");
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    base
}

/// An HTTP agent that returns 4xx/5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// Percent-encodes a path segment.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Generates, for each listed test function `fn name(&Backend)`, one `#[test]` per
/// backend: `sqlite::name` always, `postgres::name` and `mysql::name` when the
/// backend's URL is set (otherwise they report that they skipped).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&$crate::harness::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                match $crate::harness::Backend::postgres() {
                    Some(b) => super::$name(&b),
                    None => eprintln!("skipped: STRONGBOX_TEST_POSTGRES_URL is not set"),
                }
            } )*
        }
        mod mysql {
            $( #[test] fn $name() {
                match $crate::harness::Backend::mysql() {
                    Some(b) => super::$name(&b),
                    None => eprintln!("skipped: STRONGBOX_TEST_MYSQL_URL is not set"),
                }
            } )*
        }
    };
}

/// Runs the `strongbox` binary with `args`, the environment changes `env` (a `None`
/// value removes the variable) and `stdin`; returns its exit code and its stdout
/// followed by its stderr.
pub fn run_bin(args: &[&str], env: &[(&str, Option<&str>)], stdin: &str) -> (i32, String) {
    use std::io::Write;
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
