//! The `strongbox` binary: parses the command line and the configuration file,
//! takes secrets out of the environment, and runs one command: the vault (`demo`,
//! `init`, `serve`), direct store work (`import`, `backup`, `restore`, the root-key
//! rotation), a running vault's operations (`unseal`, `seal`, the online
//! rotations) or the key-less verifiers (`audit verify`, `receipt verify`). The
//! other modules of this crate each hold one family of commands.

mod backup;
mod config;
mod import;
mod jobs;
mod keeper;
mod login_codes;
mod progress;
mod secrets;
mod sms;
mod smtp;
mod unseal;
mod verify;
mod webhooks;

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use strongbox_core::expiry::parse_duration;
use strongbox_core::unseal::{META_SEAL, SealConfig};
use strongbox_core::{
    Normalizer, Policy, SelfService, UserSchema, Vault, VaultConfig, parse_country,
};
use strongbox_core::{OpenError, Principal, Secret};
use strongbox_crypto::shamir::Share;
use strongbox_crypto::{RootKey, parse_record_token};
use strongbox_server::HttpConfig;
use strongbox_server::guard::{Cidr, Guard, GuardConfig};
use strongbox_server::seal::{Gate, Opening, Unsealer, gated_router};
use strongbox_server::tls::{Tls, TlsFiles};
use strongbox_store::{Location, OpenOptions, Store, StoreError};
use zeroize::Zeroizing;

use crate::config::{
    AuditCommand, Cli, Command, DEFAULT_LISTEN, ReceiptCommand, RotateCommand, StoreArgs,
    TenantCommand, VaultArgs,
};

fn main() -> ExitCode {
    // The configuration file's values become the defaults of the arguments they
    // name; clap then parses flags and environment over them.
    let (command, from_file) = match config::with_file(Cli::command()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let matches = command.clone().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Before any other thread exists: secrets leave the environment block.
    let unscrubbed = secrets::take();
    if let Command::Serve {
        print_config: true, ..
    } = &cli.command
        && let (Some(serve), Some(("serve", serve_matches))) =
            (command.find_subcommand("serve"), matches.subcommand())
    {
        print!(
            "{}",
            config::print_config(serve, serve_matches, &from_file, |name| {
                secrets::var(name).is_some()
            })
        );
        return ExitCode::SUCCESS;
    }
    let filter = cli.log.clone().unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .init();
    if !unscrubbed.is_empty() {
        tracing::warn!(
            variables = ?unscrubbed,
            "secrets in the environment could not be cleared and stay readable in \
             /proc/PID/environ: prefer --root-key-file and --token-file"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Found) => ExitCode::from(1),
        Err(Failure::Error(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Exit status 2, as for every error a command meets (1 means a verifier found
/// what it looks for: tampering).
fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// How a command failed: it found what it looks for (a verifier found tampering),
/// or it could not do its work.
enum Failure {
    Found,
    Error(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Error(e)
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Openapi => {
            print!("{}", strongbox_server::openapi_document());
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    from_checkpoint,
                    public_key,
                    backup: from_backup,
                    tenant,
                    store,
                },
        } => {
            let source = match from_backup {
                Some(path) => verify::Source::Backup(path),
                None => verify::Source::Store(store.location()?),
            };
            verify::audit(
                &source,
                &tenant,
                from_checkpoint.as_deref(),
                public_key.as_deref(),
            )
            .await
        }
        Command::Rotate {
            what:
                RotateCommand::RootKey {
                    root_key_file,
                    shares,
                    threshold,
                    store,
                },
        } => {
            let location = store.location()?;
            let key_file = root_key_file;
            rotate_root_key(
                &location,
                store.durability(),
                key_file.as_deref(),
                shares.zip(threshold),
            )
            .await
            .map_err(Failure::Error)
        }
        Command::Rotate {
            what: RotateCommand::Kek { addr, token },
        } => unseal::rotate_kek(&addr, &token.required()?)
            .await
            .map_err(Failure::Error),
        Command::Rotate {
            what: RotateCommand::Index { addr, token },
        } => unseal::rotate_index(&addr, &token.required()?)
            .await
            .map_err(Failure::Error),
        Command::Rotate {
            what: RotateCommand::RootToken { addr, token },
        } => unseal::rotate_root_token(&addr, &token.required()?)
            .await
            .map_err(Failure::Error),
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    org,
                    addr,
                    token,
                    root_key_file,
                    store,
                },
        } => {
            let (id, admin) = match addr {
                Some(addr) => unseal::create_tenant(&addr, &token.required()?, &name, &org).await?,
                None => {
                    let vault =
                        open_vault(&store, root_key_file.as_deref(), &VaultArgs::default()).await?;
                    vault
                        .create_tenant(&Principal::Root, &name, &org)
                        .await
                        .map_err(|e| e.to_string())?
                }
            };
            println!("Tenant: {name}");
            println!("Tenant id: {id}");
            println!("Admin token: {admin}");
            eprintln!(
                "Use it with the header X-Bunker-Tenant: {name}. Store the admin token now: it is not shown again."
            );
            Ok(())
        }
        Command::Unseal { addr } => unseal::unseal(&addr).await.map_err(Failure::Error),
        Command::Seal { addr, token } => unseal::seal(&addr, &token.required()?)
            .await
            .map_err(Failure::Error),
        Command::Backup {
            out,
            addr,
            token,
            store,
            file_store,
        } => {
            let source = match addr {
                Some(addr) => backup::Source::Remote {
                    addr,
                    token: token.required()?.to_string(),
                },
                None => backup::Source::Store(store.location()?, file_store),
            };
            backup::backup(&source, &out).await.map_err(Failure::Error)
        }
        Command::Restore {
            input,
            force,
            store,
        } => {
            let location = store.location()?;
            backup::restore(&input, &location, store.durability(), force)
                .await
                .map_err(Failure::Error)
        }
        Command::Receipt {
            command:
                ReceiptCommand::Verify {
                    file: receipt,
                    public_key,
                    store,
                },
        } => {
            // Without a key or a store named, the default data directory, as
            // `--help` shows, when it holds a store.
            let location = if store.given() || public_key.is_none() {
                Some(store.location()?).filter(|l| store.given() || l.exists_locally())
            } else {
                None
            };
            verify::receipt(&receipt, public_key.as_deref(), location.as_ref()).await
        }
        other => run_vault(other).await.map_err(Failure::Error),
    }
}

async fn run_vault(command: Command) -> Result<(), String> {
    match command {
        Command::Demo { listen, vault } => demo(listen, &vault).await,
        Command::Init {
            shares,
            threshold,
            kms_key_id,
            store,
        } => {
            let location = store.location()?;
            let seal = match (shares, threshold) {
                (Some(shares), Some(threshold)) => {
                    if threshold < 2 || shares < threshold {
                        return Err("--threshold must be at least 2 and at most --shares".into());
                    }
                    Some((shares, threshold))
                }
                _ => None,
            };
            init(&location, &store.durability(), seal, kms_key_id.as_deref()).await
        }
        Command::Serve {
            listen,
            root_key_file,
            bench_endpoints,
            metrics_public,
            unseal_timeout,
            print_config: _,
            store,
            vault: args,
        } => {
            let timeout = Duration::from_secs(
                unseal_timeout
                    .unwrap_or(strongbox_server::seal::UNSEAL_TIMEOUT.as_secs())
                    .max(1),
            );
            let addr = listen.unwrap_or(default_listen());
            let mut http = http_config(&args)?;
            http.bench_endpoints = bench_endpoints.unwrap_or(false);
            http.metrics_public = metrics_public.unwrap_or(false);
            let location = store.location()?;
            let db = Store::open(
                &location,
                &OpenOptions {
                    create: false,
                    read_only: false,
                    durability: store.durability(),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            let seal = SealConfig::of(&db).await.map_err(|e| e.to_string())?;
            let key_file = root_key_file;
            let supplied = match supplied_root_key(key_file.as_deref())? {
                Some(root) => Some(root),
                // Auto-unseal: the key service unwraps it (or start fails, clearly).
                None => match keeper::stored(&db).await? {
                    Some((k, blob)) => Some(keeper::unwrap_with_retries(k.as_ref(), &blob).await?),
                    None => None,
                },
            };
            let root = match (supplied, &seal) {
                (Some(root), _) => Some(root),
                (None, Some(_)) => None,
                (None, None) => {
                    return Err(
                        "no root key: set STRONGBOX_ROOT_KEY or pass --root-key-file".into(),
                    );
                }
            };
            let opener = Opener {
                store: db,
                config: vault_config(&args)?,
                jobs: background(&args)?,
            };
            serve(opener, root, seal, addr, http, timeout).await
        }
        Command::Import {
            root_key_file,
            batch_size,
            jobs,
            store,
            profiles,
        } => {
            let args = profiles.vault_args();
            let vault = open_vault(&store, root_key_file.as_deref(), &args).await?;
            import::run(Arc::new(vault), batch_size.max(1), jobs.max(1)).await
        }
        Command::Audit { .. }
        | Command::Receipt { .. }
        | Command::Openapi
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Unseal { .. }
        | Command::Tenant { .. }
        | Command::Seal { .. }
        | Command::Rotate { .. } => {
            Err("internal: a verifier command reached the vault runner".into())
        }
    }
}

/// Opens an initialized store with the root key (checked against the canary).
async fn open_vault(
    store: &StoreArgs,
    root_key_file: Option<&Path>,
    args: &VaultArgs,
) -> Result<Vault, String> {
    let location = store.location()?;
    let root = root_key(root_key_file)?;
    let opts = OpenOptions {
        create: false,
        read_only: false,
        durability: store.durability(),
    };
    let db = Store::open(&location, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let vault = Vault::open(db, &root, vault_config(args)?)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(store = %location.describe(), "vault opened");
    Ok(vault)
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 3000)))
}

fn vault_config(args: &VaultArgs) -> Result<VaultConfig, String> {
    let country = args.default_country.clone();
    let normalizer = match country {
        None => Normalizer::default(),
        Some(c) => Normalizer {
            default_country: parse_country(&c).ok_or_else(|| {
                format!("unknown default country `{c}` (use a two-letter region code such as GB)")
            })?,
        },
    };
    let mut policy = Policy::default();
    let durations = [
        (
            "max_session_retention",
            &args.max_session_retention,
            &mut policy.max_session_retention,
        ),
        (
            "max_user_retention",
            &args.max_user_retention,
            &mut policy.max_user_retention,
        ),
        (
            "max_shareable_record_retention",
            &args.max_shareable_record_retention,
            &mut policy.max_shareable_record_retention,
        ),
        (
            "max_user_token_lifetime",
            &args.max_user_token_lifetime,
            &mut policy.max_user_token_lifetime,
        ),
    ];
    for (name, value, slot) in durations {
        if let Some(d) = value {
            *slot = parse_duration(d)
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("bad {name} `{d}` (use e.g. 3600, 12h, 7d, 1m)"))?;
        }
    }
    let mut versioning = strongbox_core::Versioning {
        enabled: args.versioning.unwrap_or(false),
        ..strongbox_core::Versioning::default()
    };
    if let Some(n) = args.versioning_max_versions {
        versioning.max_versions = n;
    }
    if let Some(d) = &args.versioning_max_age {
        versioning.max_age = parse_duration(d)
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("bad versioning_max_age `{d}` (use e.g. 3600, 12h, 7d, 1m)"))?;
    }
    let soft_delete_grace = match &args.soft_delete_grace {
        None => strongbox_core::VaultConfig::default().soft_delete_grace,
        Some(d) => parse_duration(d)
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("bad soft_delete_grace `{d}` (use e.g. 3600, 12h, 7d, 1m)"))?,
    };
    let self_service = SelfService {
        forget_me: args.self_service_forget_me.unwrap_or(false),
        user_record_change: args.self_service_user_record_change.unwrap_or(false),
        app_record_change: args
            .self_service_app_record_change
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect(),
    };
    let notification_url = args
        .notification_url
        .clone()
        .filter(|u| !u.trim().is_empty());
    if let Some(url) = &notification_url {
        webhooks::check_url(url)?;
    }
    let schema = match args.user_record_schema.clone() {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read user_record_schema {}: {e}", path.display()))?;
            let schema = UserSchema::parse(&text)
                .map_err(|e| format!("user_record_schema {}: {e}", path.display()))?;
            Some(Arc::new(schema))
        }
    };
    Ok(VaultConfig {
        // A change may not produce a document larger than a body could carry.
        max_document_bytes: args
            .max_body_bytes
            .unwrap_or(HttpConfig::default().max_body_bytes),
        max_file_bytes: args
            .max_file_bytes
            .unwrap_or(strongbox_core::config::DEFAULT_MAX_FILE_BYTES),
        file_store: match &args.file_store {
            None => None,
            Some(dir) => Some(std::sync::Arc::new(
                strongbox_store::ChunkDir::open(dir)
                    .map_err(|e| format!("bad file_store {}: {e}", dir.display()))?,
            )),
        },
        versioning,
        soft_delete_grace,
        search: args.search.unwrap_or(false),
        schema,
        notification_url,
        notification_outbox_max: args
            .notification_outbox_max
            .unwrap_or(strongbox_core::config::DEFAULT_OUTBOX_MAX),
        list_users: args.list_users.unwrap_or(false),
        audit_fail_open_reads: args.audit_fail_open_reads.unwrap_or(false),
        policy,
        self_service,
        normalizer,
        create_user_without_access_token: args.create_user_without_access_token.unwrap_or(false),
        // The same test as `login_channels` makes: a channel is configured.
        login_delivery: strongbox_core::LoginDelivery {
            email: configured(&args.smtp_url),
            phone: configured(&args.sms_url),
        },
        ..VaultConfig::default()
    })
}

fn configured(setting: &Option<String>) -> bool {
    setting.as_deref().is_some_and(|v| !v.trim().is_empty())
}

/// The ways login codes are sent, from the settings (refused at start when wrong).
fn login_channels(args: &VaultArgs) -> Result<login_codes::Channels, String> {
    let mut channels = login_codes::Channels::default();
    if configured(&args.smtp_url) {
        let url = args.smtp_url.as_deref().unwrap_or_default();
        let from = args
            .smtp_from
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .ok_or("smtp_url needs smtp_from (the sender of login-code mail)")?;
        let password = secrets::var("STRONGBOX_SMTP_PASSWORD").map(|p| Secret::new(p.as_str()));
        let roots = webhooks::trust_roots(args.smtp_ca.as_deref(), "smtp_ca")?;
        channels.email = Some(Arc::new(smtp::Smtp::new(url, password, from, roots)?));
    }
    if configured(&args.sms_url) {
        let roots = webhooks::trust_roots(None, "the system CA bundle")?;
        let https = args
            .sms_url
            .as_deref()
            .is_some_and(|u| u.trim_start().to_ascii_lowercase().starts_with("https://"));
        if https && roots.is_empty() {
            return Err(
                "sms_url is https:// but this system has no CA bundle to check the gateway's certificate"
                    .into(),
            );
        }
        let settings = sms::SmsSettings {
            url: args.sms_url.clone().unwrap_or_default(),
            method: args.sms_method.clone(),
            body: args.sms_body.clone(),
            content_type: args.sms_content_type.clone(),
            from: args.sms_from.clone(),
            token: secrets::var("STRONGBOX_SMS_TOKEN").map(|t| Secret::new(t.as_str())),
            basic_auth: secrets::var("STRONGBOX_SMS_BASIC_AUTH").map(|t| Secret::new(t.as_str())),
            header: args.sms_header.clone(),
        };
        channels.sms = Some(Arc::new(sms::Sms::new(settings, webhooks::agent(roots))?));
    }
    Ok(channels)
}

fn http_config(args: &VaultArgs) -> Result<HttpConfig, String> {
    let mut http = HttpConfig {
        // The scraper's secret comes from the environment only, like the root key.
        metrics_token: secrets::var("STRONGBOX_METRICS_TOKEN").map(|t| Secret::new(t.as_str())),
        ..HttpConfig::default()
    };
    if let Some(n) = args.max_body_bytes {
        http.max_body_bytes = n;
    }
    let limits = &mut http.limits;
    let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
    limits.max_connections = args
        .max_connections
        .unwrap_or(limits.max_connections)
        .max(1);
    limits.header_read_timeout = secs(args.header_read_timeout, limits.header_read_timeout);
    limits.max_headers = args.max_headers.unwrap_or(limits.max_headers).max(1);
    limits.max_header_bytes = args.max_header_bytes.unwrap_or(limits.max_header_bytes);
    limits.drain_timeout = secs(args.drain_timeout, limits.drain_timeout);
    limits.request_timeout =
        secs(args.request_timeout, limits.request_timeout).max(Duration::from_secs(1));
    http.body_read_timeout = secs(args.body_read_timeout, http.body_read_timeout);
    let defaults = GuardConfig::default();
    let trusted_proxies = args
        .trusted_proxies
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(Cidr::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("trusted_proxies: {e}"))?;
    http.guard = Arc::new(Guard::new(GuardConfig {
        per_minute: args
            .failed_attempts_per_minute
            .unwrap_or(defaults.per_minute),
        burst: args.failed_attempts_burst.unwrap_or(defaults.burst),
        trusted_proxies,
        token_per_second: args
            .token_requests_per_second
            .unwrap_or(defaults.token_per_second),
        token_burst: args.token_burst.unwrap_or(defaults.token_burst),
        prelogin_per_identity: args
            .login_prelogin_per_identity
            .unwrap_or(defaults.prelogin_per_identity),
        prelogin_per_address: args
            .login_prelogin_per_address
            .unwrap_or(defaults.prelogin_per_address),
    }));
    http.login_captcha = args.login_captcha.unwrap_or(http.login_captcha);
    http.tls = match (&args.tls_cert, &args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(Arc::new(Tls::load(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        })?)),
        _ => return Err("tls_cert and tls_key go together: give both, or neither".into()),
    };
    if http.tls.is_none() && args.tls_client_ca.is_some() {
        return Err("tls_client_ca needs tls_cert and tls_key".into());
    }
    Ok(http)
}

/// The root key from STRONGBOX_ROOT_KEY or a key file.
fn root_key(file: Option<&Path>) -> Result<RootKey, String> {
    supplied_root_key(file)?
        .ok_or_else(|| "no root key: set STRONGBOX_ROOT_KEY or pass --root-key-file".into())
}

/// The root key from STRONGBOX_ROOT_KEY or a key file, if one is given.
fn supplied_root_key(file: Option<&Path>) -> Result<Option<RootKey>, String> {
    let text = match (secrets::var("STRONGBOX_ROOT_KEY"), file) {
        (Some(k), _) => k,
        (None, Some(path)) => {
            check_private(path)?;
            Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read root key file {}: {e}", path.display()))?,
            )
        }
        (None, None) => return Ok(None),
    };
    RootKey::from_hex(&text)
        .map(Some)
        .map_err(|e| format!("invalid root key: {e}"))
}

/// Refuses a key file that other users of the machine may read (as ssh does).
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read root key file {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "root key file {} is readable or writable by other users (mode {:o}): \
             make it private with chmod 600",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

/// The split of `root` into `n` shares of which `k` unseal, and its configuration.
fn split_key(root: &RootKey, n: u8, k: u8) -> Result<(Vec<Share>, SealConfig), String> {
    if k < 2 || n < k {
        return Err("--threshold must be at least 2 and at most --shares".into());
    }
    let shares = root.split(n, k).map_err(|e| e.to_string())?;
    let config = SealConfig {
        shares: n,
        threshold: k,
        hashes: shares
            .iter()
            .map(|s| SealConfig::hash_share(&s.to_text()))
            .collect(),
    };
    Ok((shares, config))
}

/// Prints the new key's shares, once.
fn print_shares(out: &mut impl Write, shares: &[Share], c: &SealConfig) {
    for (i, share) in shares.iter().enumerate() {
        let _ = writeln!(out, "Share {}: {}", i + 1, share.to_text().as_str());
    }
    let _ = writeln!(
        out,
        "The root key was split into {} shares; any {} of them unseal the vault \
         (strongbox unseal). Give each share to a different person.",
        c.shares, c.threshold
    );
}

/// `strongbox rotate root-key`.
async fn rotate_root_key(
    location: &Location,
    durability: strongbox_store::Durability,
    key_file: Option<&Path>,
    split: Option<(u8, u8)>,
) -> Result<(), String> {
    let store = Store::open(
        location,
        &OpenOptions {
            create: false,
            read_only: false,
            durability,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let current = SealConfig::of(&store).await.map_err(|e| e.to_string())?;
    let kept = keeper::stored(&store).await?;
    let old = match (supplied_root_key(key_file)?, &kept, &current) {
        (Some(k), _, _) => k,
        (None, Some((k, blob)), _) => keeper::unwrap_with_retries(k.as_ref(), blob).await?,
        (None, None, Some(c)) => shares_from_stdin(c)?,
        (None, None, None) => {
            return Err("no root key: set STRONGBOX_ROOT_KEY or pass --root-key-file".into());
        }
    };
    let new = RootKey::generate().map_err(|e| e.to_string())?;
    let split = match split {
        Some((n, k)) => Some(split_key(&new, n, k)?),
        None => None,
    };
    // How the new key is kept: in new shares if asked; else by the same key service
    // as the old one; else printed once.
    let rewrapped = match (&split, &kept) {
        (None, Some((k, _))) => Some(keeper::entry(k.as_ref(), &k.wrap(&new).await?)),
        _ => None,
    };
    let meta = vec![
        (
            META_SEAL.to_string(),
            split.as_ref().map(|(_, c)| c.to_json().into_bytes()),
        ),
        (keeper::META_AUTOUNSEAL.to_string(), rewrapped.clone()),
    ];
    let rotated = strongbox_core::rotate::rotate_root_key(&store, &old, &new, meta).await;
    let mut out = std::io::stdout().lock();
    match rotated {
        Ok(()) => {
            let _ = writeln!(out, "Root key rotated: {}", location.describe());
        }
        // The commit may have happened: the new key must not be lost with it.
        Err(OpenError::Store(StoreError::CommitUnknown(_))) => {
            let _ = writeln!(
                out,
                "WARNING: the database failed while committing; the rotation may or may not \
                 have happened. Try the old key first; if it no longer opens the store, this is \
                 the new one:"
            );
        }
        Err(e) => return Err(e.to_string()),
    }
    match (&split, &rewrapped) {
        (Some((shares, c)), _) => print_shares(&mut out, shares, c),
        (None, Some(_)) => {
            let _ = writeln!(
                out,
                "Root key: (kept by the same key service as before; not shown)"
            );
        }
        (None, None) => {
            let _ = writeln!(out, "Root key: {}", new.to_hex().as_str());
        }
    }
    let _ = writeln!(
        out,
        "The old key (and its shares) no longer open this store; running servers keep working."
    );
    Ok(())
}

/// The current root key from shares on stdin (one per line, as many as needed).
fn shares_from_stdin(c: &SealConfig) -> Result<RootKey, String> {
    let mut shares: Vec<Share> = Vec::with_capacity(usize::from(c.threshold));
    for line in std::io::stdin().lock().lines() {
        let line = Zeroizing::new(line.map_err(|e| e.to_string())?);
        if line.trim().is_empty() {
            continue;
        }
        let share = Share::parse(&line).map_err(|e| e.to_string())?;
        if !c.knows(share.x, &line) {
            return Err("a share on stdin is not one of this vault's".into());
        }
        if !shares.iter().any(|s| s.x == share.x) {
            shares.push(share);
        }
        if shares.len() == usize::from(c.threshold) {
            return RootKey::from_shares(&shares).map_err(|e| e.to_string());
        }
    }
    Err(format!(
        "the store's key is kept in shares: give {} of them on stdin, one per line",
        c.threshold
    ))
}

/// The keeper for `init --kms-key-id`.
#[cfg(feature = "kms")]
fn kms_keeper(key_id: &str) -> Result<Box<dyn keeper::KeyKeeper>, String> {
    Ok(keeper::aws_kms(key_id))
}

#[cfg(not(feature = "kms"))]
fn kms_keeper(_: &str) -> Result<Box<dyn keeper::KeyKeeper>, String> {
    Err("this build has no AWS KMS support: build with `--features kms`".into())
}

async fn init(
    location: &Location,
    durability: &strongbox_store::Durability,
    seal: Option<(u8, u8)>,
    kms_key_id: Option<&str>,
) -> Result<(), String> {
    let (root, generated_key) = match secrets::var("STRONGBOX_ROOT_KEY") {
        Some(k) => (
            RootKey::from_hex(&k).map_err(|e| format!("invalid STRONGBOX_ROOT_KEY: {e}"))?,
            false,
        ),
        None => (RootKey::generate().map_err(|e| e.to_string())?, true),
    };
    let (token, generated_token) = match secrets::var("STRONGBOX_ROOT_TOKEN") {
        Some(t) => (
            parse_record_token(&t)
                .ok_or("invalid STRONGBOX_ROOT_TOKEN: it must be a UUID (8-4-4-4-12 hex digits)")?,
            false,
        ),
        None => (strongbox_crypto::new_record_token(), true),
    };
    let opts = OpenOptions {
        create: true,
        read_only: false,
        durability: *durability,
    };
    let store = Store::open(location, &opts)
        .await
        .map_err(|e| e.to_string())?;
    // Split before anything is written: a failure leaves no store without shares.
    let split = match seal {
        Some((n, k)) => Some(split_key(&root, n, k)?),
        None => None,
    };
    let config = split.as_ref().map(|(_, c)| c.clone());
    let mut meta = Vec::new();
    if let Some(c) = &config {
        meta.push((META_SEAL.to_string(), c.to_json().into_bytes()));
    }
    // With a key service, the key is wrapped there before anything is written.
    let kept = match kms_key_id {
        Some(id) => {
            let k = kms_keeper(id)?;
            let blob = k.wrap(&root).await?;
            meta.push((
                keeper::META_AUTOUNSEAL.to_string(),
                keeper::entry(k.as_ref(), &blob),
            ));
            Some(id.to_string())
        }
        None => None,
    };
    Vault::initialize(&store, &root, &token, meta)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Strongbox initialized: {}", location.describe());
    if let Some(id) = &kept {
        let _ = writeln!(
            out,
            "Root key: (kept by the AWS KMS key {id}; not shown — the vault unseals through KMS)"
        );
    } else if let Some((shares, c)) = &split {
        print_shares(&mut out, shares, c);
    } else if generated_key {
        let _ = writeln!(out, "Root key: {}", root.to_hex().as_str());
    } else {
        let _ = writeln!(out, "Root key: (supplied by STRONGBOX_ROOT_KEY, not shown)");
    }
    if generated_token {
        let _ = writeln!(out, "Root token: {token}");
    } else {
        let _ = writeln!(
            out,
            "Root token: (supplied by STRONGBOX_ROOT_TOKEN, not shown)"
        );
    }
    if generated_key || generated_token {
        let _ = writeln!(
            out,
            "These are shown once and stored nowhere in readable form: keep them in a secret manager."
        );
    }
    Ok(())
}

/// The person `strongbox demo` starts with.
const DEMO_PERSON: &str = "demo@example.com";

async fn demo(listen: Option<std::net::SocketAddr>, args: &VaultArgs) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("strongbox-demo-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let location = Location::data_dir(dir.path());
    let root = RootKey::generate().map_err(|e| e.to_string())?;
    let opts = OpenOptions {
        create: true,
        read_only: false,
        durability: Default::default(),
    };
    let store = Store::open(&location, &opts)
        .await
        .map_err(|e| e.to_string())?;
    Vault::initialize(&store, &root, "DEMO", Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "WARNING: demo mode. Data lives in a temporary store that is deleted on exit; \
         the root token is DEMO and the root key is random and never shown. \
         Do not put real personal data here."
    );
    let addr = listen.unwrap_or(default_listen());
    let config = vault_config(args)?;
    // A person to sign in as, so the pages can be tried at once.
    let vault = Vault::open(store.clone(), &root, config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut person = serde_json::Map::new();
    person.insert("email".into(), DEMO_PERSON.into());
    person.insert("name".into(), "Demo Person".into());
    vault
        .create_user(&strongbox_core::Principal::Root, person)
        .await
        .map_err(|e| e.to_string())?;
    drop(vault);
    eprintln!(
        "Sign in at http://{addr}/ as {DEMO_PERSON}: its login code is printed here, marked DEMO LOGIN CODE."
    );
    let opener = Opener {
        store,
        config,
        jobs: background(args)?,
    };
    let mut http = http_config(args)?;
    // Only the demo shows login codes (on standard error), so a newcomer can log in.
    http.print_login_codes = true;
    let result = serve(
        opener,
        Some(root),
        None,
        addr,
        http,
        strongbox_server::seal::UNSEAL_TIMEOUT,
    )
    .await;
    drop(dir);
    result
}

/// How often the background jobs run.
struct Background {
    sweep_every: Duration,
    /// `None`: no periodic checkpoints.
    checkpoint_every: Option<Duration>,
    /// DEKs re-wrapped per tick after a KEK rotation.
    rewrap_batch: usize,
    /// Seconds before unused old KEKs are retired.
    kek_retire_after: i64,
    /// Seconds between scheduled KEK rotations (erasure epochs); `None`: off.
    kek_rotate_every: Option<i64>,
    /// The client of webhook delivery (its TLS roots loaded at start).
    webhooks: ureq::Agent,
    /// How login codes are sent.
    login_codes: login_codes::Channels,
}

/// Default length of an erasure epoch: the KEK is rotated every 30 days.
const DEFAULT_KEK_ROTATE_EVERY: i64 = 30 * 24 * 3600;

fn background(args: &VaultArgs) -> Result<Background, String> {
    let sweep = args.sweep_interval.unwrap_or(DEFAULT_SWEEP_SECONDS).max(1);
    let checkpoint = args
        .audit_checkpoint_interval
        .unwrap_or(DEFAULT_CHECKPOINT_SECONDS);
    let kek_rotate_every = match args.kek_rotate_every.as_ref() {
        None => Some(DEFAULT_KEK_ROTATE_EVERY),
        Some(d) => match parse_duration(d) {
            Some(0) => None,
            Some(s) if s > 0 => Some(s),
            _ => {
                return Err(format!(
                    "bad kek_rotate_every `{d}` (use e.g. 30d, 12h, 3600, or 0 to turn it off)"
                ));
            }
        },
    };
    Ok(Background {
        sweep_every: Duration::from_secs(sweep),
        checkpoint_every: (checkpoint > 0).then(|| Duration::from_secs(checkpoint)),
        rewrap_batch: args.rewrap_batch.unwrap_or(500).max(1),
        kek_retire_after: args.kek_retire_after.unwrap_or(3600).min(i64::MAX as u64) as i64,
        kek_rotate_every,
        webhooks: webhooks::agent(webhooks::trust_roots(
            args.notification_ca.as_deref(),
            "notification_ca",
        )?),
        login_codes: login_channels(args)?,
    })
}

/// Opens the vault from a root key and runs its background jobs: what the seal gate
/// calls at start (key supplied) or once enough shares are in.
struct Opener {
    store: Store,
    config: VaultConfig,
    jobs: Background,
}

impl Unsealer for Opener {
    fn open(&self, root: RootKey) -> Opening {
        let (store, config) = (self.store.clone(), self.config.clone());
        Box::pin(async move {
            let vault = Vault::open(store, &root, config)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!("vault opened");
            Ok(Arc::new(vault))
        })
    }

    fn start(&self, vault: Arc<Vault>) -> Vec<tokio::task::AbortHandle> {
        let mut jobs = vec![
            tokio::spawn(jobs::sweeper(vault.clone(), self.jobs.sweep_every)).abort_handle(),
            tokio::spawn(jobs::sealer(vault.clone(), self.jobs.checkpoint_every)).abort_handle(),
            tokio::spawn(jobs::key_reloader(vault.clone())).abort_handle(),
            tokio::spawn(jobs::search_indexer(vault.clone(), self.jobs.rewrap_batch))
                .abort_handle(),
            tokio::spawn(jobs::rewrapper(
                vault.clone(),
                self.jobs.rewrap_batch,
                self.jobs.kek_retire_after,
            ))
            .abort_handle(),
        ];
        if let Some(every) = self.jobs.kek_rotate_every {
            jobs.push(tokio::spawn(jobs::kek_rotator(vault.clone(), every)).abort_handle());
        }
        let channels = self.jobs.login_codes.clone();
        if channels.email.is_some() || channels.sms.is_some() {
            jobs.push(tokio::spawn(login_codes::run(vault.clone(), channels)).abort_handle());
        }
        if let Some(url) = vault.config().notification_url.clone() {
            let secret =
                secrets::var("STRONGBOX_NOTIFICATION_SECRET").map(|s| Secret::new(s.as_str()));
            if secret.is_none() {
                tracing::warn!(
                    "webhooks are not signed: set STRONGBOX_NOTIFICATION_SECRET so receivers can verify them"
                );
            }
            let agent = self.jobs.webhooks.clone();
            jobs.push(tokio::spawn(webhooks::run(vault, url, secret, agent)).abort_handle());
        }
        jobs
    }
}

/// Serves the vault: opened now with `root`, or sealed until its shares are given.
async fn serve(
    opener: Opener,
    root: Option<RootKey>,
    seal: Option<SealConfig>,
    addr: SocketAddr,
    http: HttpConfig,
    unseal_timeout: Duration,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let tls = http.tls.clone();
    if tls.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            address = %local,
            "serving plain HTTP beyond loopback: tokens and personal data cross the network \
             unencrypted unless a TLS-terminating proxy is in front"
        );
    }
    let opened = match root {
        Some(root) => Some(opener.open(root).await?),
        None => None,
    };
    let c = seal.as_ref().map_or((0, 0), |c| (c.threshold, c.shares));
    let gate = Arc::new(Gate::new(seal, Box::new(opener), http, unseal_timeout));
    match opened {
        Some(vault) => gate.install(vault),
        None => {
            tracing::warn!(
                threshold = c.0,
                shares = c.1,
                "the vault is sealed: give the shares with `strongbox unseal`"
            );
        }
    }
    // Shares given to a sealed vault expire on a timer, not only on the next request.
    let expiring = {
        let gate = gate.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                gate.expire_shares();
            }
        })
    };
    let limits = gate.http_limits();
    let router = gated_router(gate.clone());
    {
        let mut out = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let _ = writeln!(out, "Strongbox listening on {scheme}://{local}");
        let _ = out.flush();
    }
    tracing::info!(%local, "listening");
    // SIGHUP reads the certificate and key again; a bad file keeps the old ones.
    let reloading = tls.clone().map(|tls| {
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate and key reloaded"),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "TLS reload refused; the certificate in use stays"
                    ),
                }
            }
        })
    });
    let served = strongbox_server::serve(listener, router, limits, tls, shutdown_signal())
        .await
        .map_err(|e| e.to_string());
    expiring.abort();
    if let Some(r) = reloading {
        r.abort();
    }
    // Leave nothing unsealed behind on a clean stop.
    if let Some(vault) = strongbox_server::seal::shut(&gate)
        && let Err(e) = vault.seal_audit().await
    {
        tracing::warn!(error = %e, "sealing the audit chain at shutdown failed");
    }
    served
}

/// Default seconds between two sweeps of expired data.
const DEFAULT_SWEEP_SECONDS: u64 = 60;
/// Default seconds between two periodic audit checkpoints.
const DEFAULT_CHECKPOINT_SECONDS: u64 = 3600;
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
