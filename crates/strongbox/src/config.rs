//! Configuration: defaults < TOML file (`--config`) < `STRONGBOX_*` environment < flags.
//!
//! Every setting is declared once, as a clap argument (its flag, its environment
//! variable, its help). The file's keys are those arguments' names (`data_dir` for
//! `--data-dir`); [`with_file`] turns each into the argument's default value before
//! the command line is parsed, so clap applies one order everywhere: a flag beats
//! the environment, which beats the file, which beats the built-in default. A key
//! that names no argument of any command is an error, so a typo never goes unnoticed.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use strongbox_core::Secret;
use strongbox_store::{Durability, Location};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "./strongbox-data";

#[derive(Parser, Debug)]
#[command(
    name = "strongbox",
    version,
    about = "Strongbox: a self-hosted privacy vault, compatible with Databunker's API",
    long_about = "Strongbox keeps personal data (PII, PHI, KYC, PCI) out of your application's \
                  database: records are encrypted under per-person keys, found through blind \
                  indexes, and every access is audited.\n\n\
                  Configuration comes from defaults, then the TOML file given by --config, then \
                  STRONGBOX_* environment variables, then flags (each later source wins)."
)]
pub struct Cli {
    /// TOML configuration file; its keys are the long flag names with `_` for `-`
    /// (e.g. `data_dir = "/var/lib/strongbox"`).
    #[arg(long, global = true, env = "STRONGBOX_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter (e.g. `info`, `warn`, `strongbox::access=off,info`). File key: `log`.
    #[arg(long, global = true, env = "STRONGBOX_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a throw-away vault: temporary SQLite store, root token DEMO, nothing kept.
    Demo {
        /// Address to listen on [default: 127.0.0.1:3000]. File key: `listen`.
        #[arg(long, env = "STRONGBOX_LISTEN", value_name = "ADDR")]
        listen: Option<SocketAddr>,
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Initialize an empty store; prints the new root key and root token once.
    ///
    /// STRONGBOX_ROOT_KEY (64 hex chars) and STRONGBOX_ROOT_TOKEN (a UUID) in the
    /// environment supply them instead of generating new ones.
    Init {
        /// Split the root key into this many Shamir shares (printed once each as
        /// `Share N: …`) instead of printing the key; `serve` then starts sealed until
        /// --threshold of them are given (`strongbox unseal`). 2 to 255.
        #[arg(long, value_name = "N", requires = "threshold")]
        shares: Option<u8>,
        /// How many shares unseal the vault (2 to --shares).
        #[arg(long, value_name = "K", requires = "shares")]
        threshold: Option<u8>,
        /// Keep the root key wrapped by this AWS KMS key (id, ARN or alias) instead of
        /// printing it; `serve` then unseals through KMS at start. Needs a build with
        /// `--features kms`; region, credentials and endpoint come from the usual AWS
        /// settings (AWS_REGION, AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, …).
        #[arg(long, value_name = "KEY", conflicts_with = "shares")]
        kms_key_id: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Serve the vault over HTTP. The root key comes from STRONGBOX_ROOT_KEY or
    /// --root-key-file.
    Serve {
        /// Address to listen on [default: 127.0.0.1:3000]. File key: `listen`.
        #[arg(long, env = "STRONGBOX_LISTEN", value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// File holding the root key (64 hex chars). File key: `root_key_file`.
        #[arg(long, env = "STRONGBOX_ROOT_KEY_FILE", value_name = "FILE")]
        root_key_file: Option<PathBuf>,
        /// Serve the benchmark reference endpoint GET /bench/lookup/{token} (a user-row
        /// read without decryption or audit) [default: false]. File key: `bench_endpoints`.
        #[arg(long, env = "STRONGBOX_BENCH_ENDPOINTS", value_name = "BOOL")]
        bench_endpoints: Option<bool>,
        /// Serve /v1/metrics without a token (Databunker does) [default: false]. File
        /// key: `metrics_public`.
        #[arg(long, env = "STRONGBOX_METRICS_PUBLIC", value_name = "BOOL")]
        metrics_public: Option<bool>,
        /// Seconds a sealed vault keeps the key shares given so far while it waits
        /// for the rest [default: 600]. File key: `unseal_timeout`.
        #[arg(long, env = "STRONGBOX_UNSEAL_TIMEOUT", value_name = "SECONDS")]
        unseal_timeout: Option<u64>,
        /// Print the effective configuration (each setting's value and where it came
        /// from: flag, env, file or default; secrets masked) and exit.
        #[arg(long)]
        print_config: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Bulk-create users from JSON lines on stdin (one profile object per line); prints
    /// one line per input line to stdout: the new token, or `error: <message>`.
    ///
    /// Writes directly to the store (the root key comes from STRONGBOX_ROOT_KEY or
    /// --root-key-file); each user is audited like a POST /v1/user. Exits non-zero if
    /// any line was refused.
    Import {
        /// File holding the root key (64 hex chars). File key: `root_key_file`.
        #[arg(long, env = "STRONGBOX_ROOT_KEY_FILE", value_name = "FILE")]
        root_key_file: Option<PathBuf>,
        /// Users per transaction.
        #[arg(long, default_value_t = 1000, value_name = "N")]
        batch_size: usize,
        /// Transactions written concurrently.
        #[arg(long, default_value_t = 4, value_name = "N")]
        jobs: usize,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        profiles: ImportArgs,
    },
    /// Write a backup of the whole store to one file while the vault keeps serving:
    /// ciphertexts, wrapped keys, index digests, audit rows and links, and a manifest
    /// with row counts and a SHA-256 checksum. Never the root key. From a running
    /// vault (--addr and --token: GET /v1/sys/backup) or from the store directly.
    Backup {
        /// Where to write the backup (created with mode 0600; an existing file is
        /// replaced only once the new one is complete). `-`: stdout, once the
        /// backup is complete and checked (the summary then goes to stderr).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// A running vault's base URL, e.g. http://127.0.0.1:3000 (with the root token
        /// in STRONGBOX_TOKEN or --token-file).
        #[arg(long, value_name = "URL")]
        addr: Option<String>,
        #[command(flatten)]
        token: TokenArgs,
        #[command(flatten)]
        store: StoreArgs,
        /// The vault's `--file-store DIR`, when it keeps file content there: the
        /// backup then holds that content too. File key: `file_store`.
        #[arg(long, env = "STRONGBOX_FILE_STORE", value_name = "DIR")]
        file_store: Option<PathBuf>,
    },
    /// Restore a backup into an empty store of any backend (SQLite to PostgreSQL is a
    /// migration), after checking its checksum. With --force it replaces an existing
    /// store's contents, keeping that store's erasure ledger and applying it: nobody
    /// erased there comes back from the backup.
    Restore {
        /// The backup file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Replace the contents of a store that is not empty.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give a sealed vault its key shares: one per line on stdin, or at a prompt on a
    /// terminal, until the threshold is met. Prints the progress (`k of n`).
    Unseal {
        /// The vault's base URL, e.g. http://127.0.0.1:3000.
        #[arg(long, value_name = "URL")]
        addr: String,
    },
    /// Seal a running vault: it drops its keys from memory and answers 503 until it
    /// is unsealed again (stores initialized with --shares only).
    Seal {
        /// The vault's base URL.
        #[arg(long, value_name = "URL")]
        addr: String,
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Key rotation.
    Rotate {
        #[command(subcommand)]
        what: RotateCommand,
    },
    /// The audit log's hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Signed erasure receipts.
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// Tenants (the v2 API's multi-tenancy).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Print the API document (OpenAPI 3.1) that a running vault serves at
    /// `/openapi.json`; `docs/openapi.json` is its committed copy.
    Openapi,
}

#[derive(Subcommand, Debug)]
pub enum RotateCommand {
    /// Rotate the KEK of a running vault: a new version wraps new DEKs within
    /// seconds, and every DEK is re-wrapped to it in the background while the vault
    /// keeps serving. Shows the progress until done (Ctrl-C only stops watching).
    Kek {
        /// The vault's base URL.
        #[arg(long, value_name = "URL")]
        addr: String,
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Rotate the blind-index key of a running vault: every node writes and looks up
    /// under both versions within a second, the entries of every person are
    /// backfilled under the new one in the background, then the old version is
    /// retired and its entries purged. Shows the progress until done (Ctrl-C only
    /// stops watching).
    Index {
        /// The vault's base URL.
        #[arg(long, value_name = "URL")]
        addr: String,
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Replace the root token of a running vault: prints the new one once; the old
    /// one stops working on every node within a second.
    RootToken {
        /// The vault's base URL.
        #[arg(long, value_name = "URL")]
        addr: String,
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Replace the root key: re-wrap the key ring under a new one and print it once
    /// (or its new shares). Data, tokens and running servers are unaffected; servers
    /// started later need the new key. The current key comes from STRONGBOX_ROOT_KEY
    /// or --root-key-file, or, for a store kept in shares, from enough of them on
    /// stdin (one per line).
    RootKey {
        /// File holding the current root key (64 hex chars).
        #[arg(long, env = "STRONGBOX_ROOT_KEY_FILE", value_name = "FILE")]
        root_key_file: Option<PathBuf>,
        /// Split the new key into this many shares instead of printing it.
        #[arg(long, value_name = "N", requires = "threshold")]
        shares: Option<u8>,
        /// How many of the new shares unseal the vault.
        #[arg(long, value_name = "K", requires = "shares")]
        threshold: Option<u8>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant and print its id and admin token (shown once): through a
    /// running vault (--addr with the root token, as v2's TenantCreate) or on the
    /// store directly (--data-dir or --database-url, with the root key from
    /// STRONGBOX_ROOT_KEY or --root-key-file). Prints `Tenant: NAME`,
    /// `Tenant id: N` and `Admin token: …`.
    Create {
        /// The tenant's name: 2–64 of a-z and 0-9.
        name: String,
        /// The organisation it belongs to.
        #[arg(long, value_name = "ORG")]
        org: String,
        /// A running vault's base URL, e.g. http://127.0.0.1:3000 (with the root token
        /// in STRONGBOX_TOKEN, --token-file or --token).
        /// Given, the store arguments are not used.
        #[arg(long, value_name = "URL")]
        addr: Option<String>,
        #[command(flatten)]
        token: TokenArgs,
        /// File holding the root key (64 hex chars), for a store opened directly.
        #[arg(long, env = "STRONGBOX_ROOT_KEY_FILE", value_name = "FILE")]
        root_key_file: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the audit chain and report every event that was modified, deleted,
    /// inserted or reordered, a truncated tail, and whether the chain matches its
    /// signed checkpoints. Needs no root key. Exit status: 0 intact, 1 tampering
    /// found, 2 the check could not run.
    Verify {
        /// A checkpoint kept outside the store (the answer of GET
        /// /v1/audit/checkpoint saved to a file).
        #[arg(long, value_name = "FILE")]
        from_checkpoint: Option<PathBuf>,
        /// The vault's public key as kept outside the store (64 hex characters, or
        /// the answer of GET /v1/audit/publickey): signatures are checked with it.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Check the chain inside a backup file instead of a live store.
        #[arg(long, value_name = "FILE")]
        backup: Option<PathBuf>,
        /// The tenant whose chain to check.
        #[arg(long, default_value = "default", value_name = "NAME")]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReceiptCommand {
    /// Check an erasure receipt's signature (with --public-key, or the key of the
    /// store given) and, given a store, that its audit chain holds the erasure event.
    /// A signed access report (GET /v1/audit/report/…) is checked the same way.
    /// Exit status: 0 valid, 1 invalid, 2 the check could not run.
    Verify {
        /// The receipt: the answer of DELETE /v1/user/… or GET /v1/audit/receipt/…,
        /// or the `{"receipt": …, "signature": …}` object itself.
        file: PathBuf,
        /// The vault's public key: 64 hex characters, or the answer of GET
        /// /v1/audit/publickey.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The root token for commands that talk to a running vault. Best from the
/// environment or a file: a `--token` value is visible to every user in `ps`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The root token (prefer STRONGBOX_TOKEN or --token-file: command-line
    /// arguments are visible to other users of the machine).
    #[arg(
        long,
        env = "STRONGBOX_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,
    /// File holding the root token (`-`: the first line of stdin).
    #[arg(long, env = "STRONGBOX_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token, if one was given.
    pub fn get(&self) -> Result<Option<zeroize::Zeroizing<String>>, String> {
        if let Some(t) = self.token.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(zeroize::Zeroizing::new(t.expose().to_string())));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = if path.as_os_str() == "-" {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
            zeroize::Zeroizing::new(line)
        } else {
            zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?,
            )
        };
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("token file {} is empty", path.display()));
        }
        Ok(Some(zeroize::Zeroizing::new(token.to_string())))
    }

    /// The token; an error that says how to give it when there is none.
    pub fn required(&self) -> Result<zeroize::Zeroizing<String>, String> {
        self.get()?.ok_or_else(|| {
            "no root token: set STRONGBOX_TOKEN, or pass --token-file FILE (or --token)".into()
        })
    }
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite store [default: ./strongbox-data]. File key: `data_dir`.
    #[arg(long, env = "STRONGBOX_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://FILE, postgres://… or mysql://… File key: `database_url`.
    #[arg(
        long,
        env = "STRONGBOX_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<Secret>,
    /// SQLite durability: `full` (default: every acknowledged write survives power
    /// loss) or `normal` (faster; survives a crash of Strongbox but not of the
    /// machine). File key: `sqlite_durability`.
    #[arg(long, env = "STRONGBOX_SQLITE_DURABILITY", value_name = "MODE")]
    pub sqlite_durability: Option<DurabilityArg>,
    /// PostgreSQL only: keep Strongbox's tables in this schema (created by `init`)
    /// instead of the role's default (usually `public`, shared with whatever else
    /// is in the database). Every command on that store needs the same value. File
    /// key: `database_schema`.
    #[arg(long, env = "STRONGBOX_DATABASE_SCHEMA", value_name = "NAME")]
    pub database_schema: Option<String>,
}

/// The settings that shape how `import` reads profiles and what it queues (the
/// server's others do not apply to it); the configuration file's keys of these
/// settings apply to it as to `serve`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Largest profile in bytes [default: 1048576]. File key: `max_body_bytes`.
    #[arg(long, env = "STRONGBOX_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Region for phone numbers without a +country prefix [default: GB]. File key:
    /// `default_country`.
    #[arg(long, env = "STRONGBOX_DEFAULT_COUNTRY", value_name = "CC")]
    pub default_country: Option<String>,
    /// JSON Schema file that every profile must satisfy. File key:
    /// `user_record_schema`.
    #[arg(long, env = "STRONGBOX_USER_RECORD_SCHEMA", value_name = "FILE")]
    pub user_record_schema: Option<PathBuf>,
    /// Where the `profilenew` webhooks of imported users go (queued by the import,
    /// sent by a running server). File key: `notification_url`.
    #[arg(long, env = "STRONGBOX_NOTIFICATION_URL", value_name = "URL")]
    pub notification_url: Option<String>,
}

impl ImportArgs {
    /// The vault settings these stand for; the rest come from the file or defaults.
    pub fn vault_args(&self) -> VaultArgs {
        VaultArgs {
            max_body_bytes: self.max_body_bytes,
            default_country: self.default_country.clone(),
            user_record_schema: self.user_record_schema.clone(),
            notification_url: self.notification_url.clone(),
            ..VaultArgs::default()
        }
    }
}

#[derive(Args, Debug, Default)]
pub struct VaultArgs {
    /// Largest request body in bytes [default: 1048576]. File key: `max_body_bytes`.
    #[arg(long, env = "STRONGBOX_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Keep each earlier version of a profile when it changes (UserListVersions,
    /// UserGet `version`) [default: false]. File key: `versioning`.
    #[arg(long, env = "STRONGBOX_VERSIONING", value_name = "BOOL")]
    pub versioning: Option<bool>,
    /// Earlier versions kept per person; the oldest goes first [default: 10]. File
    /// key: `versioning_max_versions`.
    #[arg(long, env = "STRONGBOX_VERSIONING_MAX_VERSIONS", value_name = "N")]
    pub versioning_max_versions: Option<usize>,
    /// How long an earlier version is kept [default: 1m, a month]. File key:
    /// `versioning_max_age`.
    #[arg(long, env = "STRONGBOX_VERSIONING_MAX_AGE", value_name = "DURATION")]
    pub versioning_max_age: Option<String>,
    /// Fuzzy search (UserSearch, SystemSearchUserProfiles) over keyed trigram
    /// digests of login, email, phone and custom; turning it on builds the index in
    /// the background, turning it off drops it [default: false]. File key: `search`.
    #[arg(long, env = "STRONGBOX_SEARCH", value_name = "BOOL")]
    pub search: Option<bool>,
    /// How long a profile soft-deleted by SystemDeleteUserProfiles stays
    /// restorable before it is erased [default: 30d]. File key: `soft_delete_grace`.
    #[arg(long, env = "STRONGBOX_SOFT_DELETE_GRACE", value_name = "DURATION")]
    pub soft_delete_grace: Option<String>,
    /// Keep the file vault's content (sealed chunks) in this directory, created
    /// with mode 0700, instead of the database; the metadata stays in the database.
    /// `strongbox backup` from the store needs the same flag [default: in the
    /// database]. File key: `file_store`.
    #[arg(long, env = "STRONGBOX_FILE_STORE", value_name = "DIR")]
    pub file_store: Option<PathBuf>,
    /// Largest file the file vault stores, in bytes; larger uploads get 413
    /// [default: 134217728]. File key: `max_file_bytes`.
    #[arg(long, env = "STRONGBOX_MAX_FILE_BYTES", value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Connections served at once; more are closed on arrival [default: 1024]. File
    /// key: `max_connections`.
    #[arg(long, env = "STRONGBOX_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers, also between two requests
    /// on a kept-alive connection; a client slower than that is disconnected
    /// [default: 10]. File key: `header_read_timeout`.
    #[arg(long, env = "STRONGBOX_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<u64>,
    /// Seconds a client has to send a request's body once its headers are in; 408
    /// after that [default: 30]. File key: `body_read_timeout`.
    #[arg(long, env = "STRONGBOX_BODY_READ_TIMEOUT", value_name = "SECONDS")]
    pub body_read_timeout: Option<u64>,
    /// Most header fields in one request; more get 431 [default: 100]. File key:
    /// `max_headers`.
    #[arg(long, env = "STRONGBOX_MAX_HEADERS", value_name = "N")]
    pub max_headers: Option<usize>,
    /// Largest request head (request line and headers) in bytes; larger gets 431
    /// [default: 16384]. File key: `max_header_bytes`.
    #[arg(long, env = "STRONGBOX_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Seconds from a request's headers to its answer; a request still working then
    /// (a database that does not answer) gets 503 and finishes in the background
    /// [default: 60]. File key: `request_timeout`.
    #[arg(long, env = "STRONGBOX_REQUEST_TIMEOUT", value_name = "SECONDS")]
    pub request_timeout: Option<u64>,
    /// Seconds a stopping server (SIGTERM, SIGINT) waits for requests in flight
    /// [default: 10]. File key: `drain_timeout`.
    #[arg(long, env = "STRONGBOX_DRAIN_TIMEOUT", value_name = "SECONDS")]
    pub drain_timeout: Option<u64>,
    /// Failed attempts (a token that does not authenticate, a shared record or
    /// retention link that does not exist, a wrong unseal share) an address regains
    /// per minute; beyond its burst it gets 429 [default: 10]. File key:
    /// `failed_attempts_per_minute`.
    #[arg(long, env = "STRONGBOX_FAILED_ATTEMPTS_PER_MINUTE", value_name = "N")]
    pub failed_attempts_per_minute: Option<u32>,
    /// Failed attempts an address may make in a burst [default: 20]. File key:
    /// `failed_attempts_burst`.
    #[arg(long, env = "STRONGBOX_FAILED_ATTEMPTS_BURST", value_name = "N")]
    pub failed_attempts_burst: Option<u32>,
    /// Requests per second each valid access token may make (its own token
    /// bucket); over it, 429 with Retry-After. `0` turns the limit off [default: 0].
    /// File key: `token_requests_per_second`.
    #[arg(long, env = "STRONGBOX_TOKEN_REQUESTS_PER_SECOND", value_name = "N")]
    pub token_requests_per_second: Option<u32>,
    /// Requests a valid access token may make in a burst when the per-token limit
    /// is on [default: 100]. File key: `token_burst`.
    #[arg(long, env = "STRONGBOX_TOKEN_BURST", value_name = "N")]
    pub token_burst: Option<u32>,
    /// Prelogin (`/v1/prelogin/…`) checks a captcha; `false` for applications with
    /// their own bot defence, which then leave the two captcha path segments
    /// unchecked [default: true]. File key: `login_captcha`.
    #[arg(long, env = "STRONGBOX_LOGIN_CAPTCHA", value_name = "BOOL")]
    pub login_captcha: Option<bool>,
    /// Login codes one email or phone may be sent per 15 minutes; beyond, 429
    /// [default: 5]. File key: `login_prelogin_per_identity`.
    #[arg(long, env = "STRONGBOX_LOGIN_PRELOGIN_PER_IDENTITY", value_name = "N")]
    pub login_prelogin_per_identity: Option<u32>,
    /// Prelogins one client address may make per 15 minutes; beyond, 429
    /// [default: 30]. File key: `login_prelogin_per_address`.
    #[arg(long, env = "STRONGBOX_LOGIN_PRELOGIN_PER_ADDRESS", value_name = "N")]
    pub login_prelogin_per_address: Option<u32>,
    /// Certificate chain (PEM, leaf first) for HTTPS: with `--tls-key`, `serve`
    /// speaks HTTPS only; SIGHUP reads both files again [default: none, plain HTTP].
    /// File key: `tls_cert`.
    #[arg(long, env = "STRONGBOX_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM) [default: none]. File key: `tls_key`.
    #[arg(long, env = "STRONGBOX_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) whose client certificates are required: a client
    /// without one cannot complete the handshake (mTLS) [default: none]. File key:
    /// `tls_client_ca`.
    #[arg(long, env = "STRONGBOX_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Proxies (addresses or networks, comma-separated: `10.0.0.0/8,::1`) whose
    /// `X-Forwarded-For` / `Forwarded` headers name the client; nobody else's are
    /// believed [default: none]. File key: `trusted_proxies`.
    #[arg(long, env = "STRONGBOX_TRUSTED_PROXIES", value_name = "CIDR,…")]
    pub trusted_proxies: Option<String>,
    /// Region for phone numbers without a +country prefix [default: GB]. File key:
    /// `default_country`.
    #[arg(long, env = "STRONGBOX_DEFAULT_COUNTRY", value_name = "CC")]
    pub default_country: Option<String>,
    /// Allow POST /v1/user without an access token [default: false]. File key:
    /// `create_user_without_access_token`.
    #[arg(
        long,
        env = "STRONGBOX_CREATE_USER_WITHOUT_ACCESS_TOKEN",
        value_name = "BOOL"
    )]
    pub create_user_without_access_token: Option<bool>,
    /// Longest lifetime of a session, as a duration: `3600`, `12h`, `7d`, `1m` (a
    /// month of 31 days, as in Databunker) [default: 1h]. File key:
    /// `max_session_retention`.
    #[arg(long, env = "STRONGBOX_MAX_SESSION_RETENTION", value_name = "DURATION")]
    pub max_session_retention: Option<String>,
    /// Longest expiry POST /v1/exp/start may set [default: 1m] (a month). File key:
    /// `max_user_retention`.
    #[arg(long, env = "STRONGBOX_MAX_USER_RETENTION", value_name = "DURATION")]
    pub max_user_retention: Option<String>,
    /// Longest life of a shared record [default: 1m] (a month). File key:
    /// `max_shareable_record_retention`.
    #[arg(
        long,
        env = "STRONGBOX_MAX_SHAREABLE_RECORD_RETENTION",
        value_name = "DURATION"
    )]
    pub max_shareable_record_retention: Option<String>,
    /// Longest lifetime of a user access token [default: 1d]. File key:
    /// `max_user_token_lifetime`.
    #[arg(
        long,
        env = "STRONGBOX_MAX_USER_TOKEN_LIFETIME",
        value_name = "DURATION"
    )]
    pub max_user_token_lifetime: Option<String>,
    /// Seconds between two sweeps of expired data (sessions, tokens, shared records,
    /// users past their retention, consents past their end) [default: 60]. File key:
    /// `sweep_interval`.
    #[arg(long, env = "STRONGBOX_SWEEP_INTERVAL", value_name = "SECONDS")]
    pub sweep_interval: Option<u64>,
    /// Seconds between two signed checkpoints of the audit chain (made only when the
    /// chain moved; 0 turns periodic checkpoints off) [default: 3600]. File key:
    /// `audit_checkpoint_interval`.
    #[arg(
        long,
        env = "STRONGBOX_AUDIT_CHECKPOINT_INTERVAL",
        value_name = "SECONDS"
    )]
    pub audit_checkpoint_interval: Option<u64>,
    /// DEKs re-wrapped per 100 ms after a KEK rotation (the background job's pace)
    /// [default: 500]. File key: `rewrap_batch`.
    #[arg(long, env = "STRONGBOX_REWRAP_BATCH", value_name = "N")]
    pub rewrap_batch: Option<usize>,
    /// Seconds a new KEK must have been current, with no DEK left under an older one,
    /// before the older versions are deleted from the key ring [default: 3600]. File
    /// key: `kek_retire_after`.
    #[arg(long, env = "STRONGBOX_KEK_RETIRE_AFTER", value_name = "SECONDS")]
    pub kek_retire_after: Option<u64>,
    /// Erasure epochs: how often the KEK is rotated on a schedule, so what an erasure
    /// leaves on disk (dead row versions, database logs) is wrapped under a KEK that
    /// is retired at the end of its epoch; `0` turns it off [default: 30d]. File key:
    /// `kek_rotate_every`.
    #[arg(long, env = "STRONGBOX_KEK_ROTATE_EVERY", value_name = "DURATION")]
    pub kek_rotate_every: Option<String>,
    /// Answer reads of personal data even when their audit event cannot be written
    /// (each such read is logged). Changes always fail closed; by default reads
    /// fail closed too [default: false]. File key: `audit_fail_open_reads`.
    #[arg(long, env = "STRONGBOX_AUDIT_FAIL_OPEN_READS", value_name = "BOOL")]
    pub audit_fail_open_reads: Option<bool>,
    /// Where webhooks go (Databunker's `notification_url`): profile created, changed,
    /// erased, consent withdrawn or expired. http:// or https://. The signing secret
    /// comes from STRONGBOX_NOTIFICATION_SECRET. File key: `notification_url`.
    #[arg(long, env = "STRONGBOX_NOTIFICATION_URL", value_name = "URL")]
    pub notification_url: Option<String>,
    /// CA certificate(s) (PEM) an https webhook receiver's certificate must chain to;
    /// then only these are trusted [default: the system's CA bundle]. File key:
    /// `notification_ca`.
    #[arg(long, env = "STRONGBOX_NOTIFICATION_CA", value_name = "FILE")]
    pub notification_ca: Option<PathBuf>,
    /// Most webhook notifications waiting in the outbox; while a receiver is down
    /// for long, the ones past it are dropped (counted in /v1/metrics, logged) and
    /// the changes still commit [default: 100000]. File key:
    /// `notification_outbox_max`.
    #[arg(long, env = "STRONGBOX_NOTIFICATION_OUTBOX_MAX", value_name = "N")]
    pub notification_outbox_max: Option<u64>,
    /// Where login codes are mailed: `smtp://host:port` (plain, for a relay on the
    /// same host or network), `smtp://host:port?tls=required` (STARTTLS),
    /// `smtps://host:port` (implicit TLS); credentials as `user:password@` in it or
    /// the password from STRONGBOX_SMTP_PASSWORD [default: none, codes by email are
    /// not sent]. File key: `smtp_url`.
    #[arg(
        long,
        env = "STRONGBOX_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// The sender of login-code mail: an address or `Name <address>`; needed with
    /// `smtp_url`. File key: `smtp_from`.
    #[arg(long, env = "STRONGBOX_SMTP_FROM", value_name = "ADDRESS")]
    pub smtp_from: Option<String>,
    /// CA certificate(s) (PEM) the mail server's certificate must chain to; then only
    /// these are trusted [default: the system's CA bundle]. File key: `smtp_ca`.
    #[arg(long, env = "STRONGBOX_SMTP_CA", value_name = "FILE")]
    pub smtp_ca: Option<PathBuf>,
    /// The SMS gateway for login codes by phone (Databunker's `sms.url`): http:// or
    /// https://, in which `_PHONE_`, `_MSG_`, `_FROM_` and `_TOKEN_` are replaced
    /// (URL-escaped); the token comes from STRONGBOX_SMS_TOKEN, basic auth
    /// `user:password` from STRONGBOX_SMS_BASIC_AUTH [default: none, codes by SMS are
    /// not sent]. File key: `sms_url`.
    #[arg(
        long,
        env = "STRONGBOX_SMS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub sms_url: Option<String>,
    /// GET or POST [default: GET]. File key: `sms_method`.
    #[arg(long, env = "STRONGBOX_SMS_METHOD", value_name = "METHOD")]
    pub sms_method: Option<String>,
    /// The POST body template, with the same placeholders. File key: `sms_body`.
    #[arg(long, env = "STRONGBOX_SMS_BODY", value_name = "TEMPLATE")]
    pub sms_body: Option<String>,
    /// `json` or `form`: how the body is sent and its values escaped [default: form].
    /// File key: `sms_content_type`.
    #[arg(long, env = "STRONGBOX_SMS_CONTENT_TYPE", value_name = "TYPE")]
    pub sms_content_type: Option<String>,
    /// The sender the gateway shows (`_FROM_`). File key: `sms_from`.
    #[arg(long, env = "STRONGBOX_SMS_FROM", value_name = "FROM")]
    pub sms_from: Option<String>,
    /// One extra header for the gateway, `Name: value` (an API key, typically: it is
    /// kept like the other secrets). File key: `sms_header`.
    #[arg(
        long,
        env = "STRONGBOX_SMS_HEADER",
        value_name = "HEADER",
        hide_env_values = true
    )]
    pub sms_header: Option<String>,
    /// JSON Schema file for user profiles (Databunker's `user_record_schema`), with
    /// the keywords `admin`, `locked`, `preserve` and `classification` on properties.
    /// File key: `user_record_schema`.
    #[arg(long, env = "STRONGBOX_USER_RECORD_SCHEMA", value_name = "FILE")]
    pub user_record_schema: Option<PathBuf>,
    /// Allow the bulk listing POST /v1/users (root token) [default: false]. File key:
    /// `list_users`.
    #[arg(long, env = "STRONGBOX_LIST_USERS", value_name = "BOOL")]
    pub list_users: Option<bool>,
    /// Let users erase themselves with their own access token; otherwise that files
    /// a request for the DPO [default: false]. File key: `self_service_forget_me`.
    #[arg(long, env = "STRONGBOX_SELF_SERVICE_FORGET_ME", value_name = "BOOL")]
    pub self_service_forget_me: Option<bool>,
    /// Let users change their own profile; otherwise that files a request for the
    /// DPO [default: false]. File key: `self_service_user_record_change`.
    #[arg(
        long,
        env = "STRONGBOX_SELF_SERVICE_USER_RECORD_CHANGE",
        value_name = "BOOL"
    )]
    pub self_service_user_record_change: Option<bool>,
    /// App names whose documents users may change themselves, comma-separated:
    /// names or patterns `*`, `prefix*`, `*suffix`, `*infix*` [default: none]. File
    /// key: `self_service_app_record_change` (a list).
    #[arg(
        long,
        env = "STRONGBOX_SELF_SERVICE_APP_RECORD_CHANGE",
        value_name = "PATTERNS",
        value_delimiter = ','
    )]
    pub self_service_app_record_change: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DurabilityArg {
    Full,
    Normal,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Normal => Durability::Normal,
        }
    }
}

/// The settings read from the TOML file: (key, value as the command line would
/// give it).
pub struct FileSettings {
    pub path: Option<PathBuf>,
    pub keys: Vec<String>,
}

/// The file named by `--config` or `STRONGBOX_CONFIG` (looked up before clap parses
/// anything, since its values become clap's defaults).
fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        if a == "--" {
            break;
        }
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("STRONGBOX_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A TOML value as command-line text (arrays: one text per element).
fn as_args(key: &str, value: &toml::Value) -> Result<Vec<String>, String> {
    Ok(match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Integer(n) => vec![n.to_string()],
        toml::Value::Float(f) => vec![f.to_string()],
        toml::Value::Boolean(b) => vec![b.to_string()],
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(as_args(key, item)?);
            }
            out
        }
        _ => return Err(format!("`{key}` must be a string, number, boolean or list")),
    })
}

/// Sets `value` as the default of argument `key` in `cmd` and all its subcommands;
/// whether any of them has that argument.
fn set_default(cmd: clap::Command, key: &str, value: &[String]) -> (clap::Command, bool) {
    let mut found = cmd.get_arguments().any(|a| a.get_id() == key);
    let mut cmd = if found {
        let values: Vec<clap::builder::OsStr> = value
            .iter()
            .map(|v| clap::builder::OsStr::from(v.clone()))
            .collect();
        // A secret from the file must not show up as a default in --help.
        let secret = SECRET_SETTINGS.contains(&key);
        cmd.mut_arg(key, |a| a.default_values(values).hide_default_value(secret))
    } else {
        cmd
    };
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        let mut hit = false;
        cmd = cmd.mut_subcommand(&name, |sub| {
            let (sub, h) = set_default(sub, key, value);
            hit = h;
            sub
        });
        found |= hit;
    }
    (cmd, found)
}

/// The command line definition with the configuration file's values as defaults.
pub fn with_file(cmd: clap::Command) -> Result<(clap::Command, FileSettings), String> {
    let Some(path) = config_path() else {
        return Ok((
            cmd,
            FileSettings {
                path: None,
                keys: Vec::new(),
            },
        ));
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
    let mut cmd = cmd;
    let mut keys = Vec::new();
    for (key, value) in &table {
        if key == "config" {
            return Err(format!(
                "config file {}: `config` cannot be set in a file",
                path.display()
            ));
        }
        let values =
            as_args(key, value).map_err(|e| format!("config file {}: {e}", path.display()))?;
        let (next, found) = set_default(cmd, key, &values);
        cmd = next;
        if !found {
            return Err(format!(
                "config file {}: unknown field `{key}` (keys are the long flag names with _ for -)",
                path.display()
            ));
        }
        keys.push(key.clone());
    }
    Ok((
        cmd,
        FileSettings {
            path: Some(path),
            keys,
        },
    ))
}

impl StoreArgs {
    /// Where the store is. Both a directory and a URL is an error rather than a
    /// guess.
    pub fn location(&self) -> Result<Location, String> {
        let dir = self.data_dir.clone();
        let url = self.database_url.as_ref().map(|u| u.expose().to_string());
        match (dir, url) {
            (Some(_), Some(_)) => {
                Err("give either a data directory or a database URL, not both".into())
            }
            (None, Some(url)) => Location::from_url(&url)
                .and_then(|l| l.with_schema(self.database_schema.clone()))
                .map_err(|e| e.to_string()),
            (Some(_), None) | (None, None) if self.database_schema.is_some() => {
                Err("--database-schema is for PostgreSQL (with --database-url)".into())
            }
            (Some(dir), None) => Ok(Location::data_dir(dir)),
            (None, None) => Ok(Location::data_dir(DEFAULT_DATA_DIR)),
        }
    }

    /// Whether a store was named at all (by flag, environment or file).
    pub fn given(&self) -> bool {
        self.data_dir.is_some() || self.database_url.is_some()
    }

    pub fn durability(&self) -> Durability {
        self.sqlite_durability
            .map(Durability::from)
            .unwrap_or_default()
    }
}

/// Settings whose values are never printed.
const SECRET_SETTINGS: &[&str] = &["token", "database_url", "smtp_url", "sms_url", "sms_header"];

/// Secrets that only come from the environment: printed as set or not.
const SECRET_ENV: &[&str] = &[
    "STRONGBOX_ROOT_KEY",
    "STRONGBOX_METRICS_TOKEN",
    "STRONGBOX_NOTIFICATION_SECRET",
    "STRONGBOX_SMTP_PASSWORD",
    "STRONGBOX_SMS_TOKEN",
    "STRONGBOX_SMS_BASIC_AUTH",
];

/// A database URL with its password masked, in the user-info part and in a
/// `password=` query parameter.
fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, None), |(r, q)| (r, Some(q)));
    // The user info ends at the last `@` (a password may hold `/` or `@`).
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => rest.to_string(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{rest}?{q}"),
        None => format!("{scheme}://{rest}"),
    }
}

/// What `serve --print-config` prints: one `key = value  # source` line per
/// setting of `serve`, in the file's syntax, so the output can seed a file.
pub fn print_config(
    serve: &clap::Command,
    matches: &clap::ArgMatches,
    file: &FileSettings,
    secret_set: impl Fn(&str) -> bool,
) -> String {
    use clap::parser::ValueSource;
    let mut out = match &file.path {
        Some(p) => format!(
            "# effective configuration of `strongbox serve` (file: {})\n",
            p.display()
        ),
        None => "# effective configuration of `strongbox serve` (no configuration file)\n".into(),
    };
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "print_config" | "config") || arg.get_long().is_none() {
            continue;
        }
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|x| x.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "env",
            Some(ValueSource::DefaultValue) if file.keys.iter().any(|k| k == id) => "file",
            Some(_) => "default",
            None => "",
        };
        let quote = |v: &str| -> String {
            if v.parse::<f64>().is_ok() || v == "true" || v == "false" {
                v.to_string()
            } else {
                serde_json::Value::from(v).to_string()
            }
        };
        let shown = |v: &str| -> String {
            if id == "database_url" || id == "smtp_url" {
                quote(&mask_url(v))
            } else if SECRET_SETTINGS.contains(&id) {
                "\"***\"".into()
            } else {
                quote(v)
            }
        };
        let line = match values.as_slice() {
            [] => {
                // Not set anywhere: the built-in default its help states, if any.
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                match help
                    .split("[default: ")
                    .nth(1)
                    .and_then(|r| r.split(']').next())
                {
                    Some(d) => format!("{id} = {}  # built-in default", quote(d)),
                    None => format!("# {id}: not set"),
                }
            }
            [one] if arg.get_value_delimiter().is_none() => {
                format!("{id} = {}  # {source}", shown(one))
            }
            many => format!(
                "{id} = [{}]  # {source}",
                many.iter().map(|v| shown(v)).collect::<Vec<_>>().join(", ")
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("# secrets from the environment (never shown):\n");
    for name in SECRET_ENV {
        let state = if secret_set(name) { "set" } else { "not set" };
        out.push_str(&format!("#   {name}: {state}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://u:p/w@d@db:5432/vault?sslmode=require&password=x"),
            "postgres://u:***@db:5432/vault?sslmode=require&password=***"
        );
        assert_eq!(mask_url("mysql://root@db/test"), "mysql://root@db/test");
        assert_eq!(mask_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
