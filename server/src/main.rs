//! `tournee-server`: run the server, migrate its database, check its settings, mint development
//! tokens, revoke devices, manage webhook subscriptions, purge personal data past retention.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tournee_server::auth::{Keys, TokenRole};
use tournee_server::db::{Backend, Database, OpenOptions};
use tournee_server::proofs::ProofStore;
use tournee_server::settings::{AuthSettings, ProofSettings, Settings};
use tournee_server::telemetry::Telemetry;
use tournee_server::webhooks::{self, Start};
use tournee_server::{demo, launch_with_tcp_listener, AppState};

#[derive(Parser)]
#[command(version, about = "Tournée: the postmen's field-work server")]
struct Cli {
    /// `human` lines, or `json` (one object per line) for log collectors. Logs go to standard
    /// error; standard output is left to what a command prints (tokens, the demo's help).
    #[arg(long, global = true, env = "TOURNEE_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
    /// Export traces to this OpenTelemetry collector over OTLP/HTTP (its base URL, e.g.
    /// `http://collector:4318`; spans go to `/v1/traces`). Off when unset.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        #[command(flatten)]
        settings: Settings,
        /// Create a demo town (customers, delivery points, items, today's rounds) if missing.
        #[arg(long)]
        demo: bool,
    },
    /// Applies the database's pending migrations (creating a SQLite file if missing), with a
    /// line per migration, and exits.
    Migrate {
        /// The database.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tournee.db")]
        database_url: String,
    },
    /// Prints the effective settings (flags, environment and defaults), secrets masked, and
    /// checks those that can be checked without starting: exits non-zero if any is wrong.
    CheckConfig {
        #[command(flatten)]
        settings: Settings,
    },
    /// Prints a development token (HS256 secret only).
    Token {
        #[command(flatten)]
        auth: AuthSettings,
        /// postman, customer, back_office or integration (the operator's systems: imports,
        /// the event feed, webhooks).
        #[arg(long, value_parser = parse_role)]
        role: TokenRole,
        /// The postman, customer or staff id.
        #[arg(long)]
        subject: String,
        /// The device, for a postman.
        #[arg(long)]
        device: Option<String>,
        /// Validity in hours.
        #[arg(long, default_value_t = 12)]
        hours: u64,
    },
    /// Loads reference data from an NDJSON file (`-`: stdin), one object per line, each an
    /// upsert by its natural key: directly on the database, or to a server with --server.
    /// Refused lines are printed on stdout as NDJSON; exits non-zero if any line was refused.
    Import {
        /// delivery-points, customers, items, pickup-points, rounds or devices.
        kind: String,
        /// The NDJSON file, or `-` for stdin.
        file: String,
        /// Report what each line would do; apply nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply nothing if any line is refused.
        #[arg(long)]
        all_or_nothing: bool,
        /// Send to this server's API (e.g. http://127.0.0.1:8080) instead of the database.
        #[arg(long)]
        server: Option<String>,
        /// The integration token for --server.
        #[arg(long, env = "TOURNEE_TOKEN")]
        token: Option<String>,
        /// Who imports, for the audit (directly on the database).
        #[arg(long, default_value = "command-line")]
        principal: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Writes a consistent copy of a SQLite database while the server runs; restore by starting
    /// a server on the copy. (PostgreSQL: pg_dump, see the README.)
    Backup {
        /// The file to write; it must not exist.
        #[arg(long)]
        to: std::path::PathBuf,
        /// The database: an existing one, migrated.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tournee.db")]
        database_url: String,
    },
    /// After restoring a database by a means the server cannot recognise (a physical PostgreSQL
    /// backup or point-in-time recovery, an SQLite file copied by hand): begins a new history, so
    /// that every phone re-checks at its next sync what the restored server holds and uploads
    /// again what it lost. (`backup` copies and `pg_restore` are recognised without it.)
    MarkRestored {
        /// The database: an existing one, migrated.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tournee.db")]
        database_url: String,
    },
    /// Anonymises personal data recorded more than DAYS days ago and archives the documents of
    /// items delivered before then, and deletes the proof files stored more than
    /// `--proof-retention-days` ago (what `serve` runs every hour); prints the counts and writes
    /// them to the audit log.
    Purge {
        /// The retention period in days; 0 purges everything recorded before now.
        #[arg(long)]
        older_than: u32,
        /// Count what would be purged; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The database: an existing one, migrated.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tournee.db")]
        database_url: String,
        /// The proof store and its retention, as `serve` has them (0 days: proofs are kept).
        #[command(flatten)]
        proofs: ProofSettings,
    },
    /// Adds, lists or removes webhook subscriptions, directly on the database (as
    /// `/v1/webhooks` does).
    Webhooks {
        /// The database: an existing one, migrated.
        #[arg(
            long,
            global = true,
            env = "DATABASE_URL",
            default_value = "sqlite://tournee.db"
        )]
        database_url: String,
        #[command(subcommand)]
        action: WebhookAction,
    },
    /// Refuses every token of a device from now on.
    RevokeDevice {
        /// The device id.
        device: String,
        /// The database: an existing one, migrated.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tournee.db")]
        database_url: String,
    },
}

#[derive(Subcommand)]
enum WebhookAction {
    /// Subscribes a URL to events; prints the subscription and its signing secret (shown
    /// this once).
    Add {
        /// Where to POST events: an absolute http URL (this build cannot deliver over TLS).
        #[arg(long)]
        url: String,
        /// An event type to deliver (repeat the flag for several); every type when none.
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        /// Deliver only events recorded from now on, not the feed from its beginning.
        #[arg(long)]
        from_now: bool,
    },
    /// Lists the subscriptions with their deliveries.
    List,
    /// Removes a subscription and its deliveries.
    Remove {
        /// The subscription's id.
        id: String,
    },
}

fn parse_role(s: &str) -> Result<TokenRole, String> {
    match s {
        "postman" => Ok(TokenRole::Postman),
        "customer" => Ok(TokenRole::Customer),
        "back_office" | "back-office" => Ok(TokenRole::BackOffice),
        "integration" => Ok(TokenRole::Integration),
        other => Err(format!(
            "unknown role {other}: postman, customer, back_office or integration"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before the runtime: the trace exporter's HTTP client blocks on a thread of its own.
    let telemetry = match Telemetry::init(&cli.log_format, cli.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("tournee-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| runtime.block_on(run(cli)));
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tournee-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { mut settings, demo } => {
            // The demo runs on a laptop with the development secret it prints tokens of.
            settings.auth.insecure_development |= demo;
            if settings.auth.insecure_development && settings.auth.jwt_public_key.is_none() {
                tracing::warn!(
                    "insecure development mode: the JWT secret may be the public development one; \
                     anyone who knows it can mint any token"
                );
            }
            // The port first: a busy one is reported before any database is created.
            let listener = TcpListener::bind(settings.listen)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
            let metrics_listener = match settings.metrics_listen {
                Some(address) => Some(
                    TcpListener::bind(address)
                        .await
                        .map_err(|e| format!("cannot listen on {address} for metrics: {e}"))?,
                ),
                None => None,
            };
            let state = AppState::new(&settings).await.map_err(|e| e.to_string())?;
            if let Some(listener) = metrics_listener {
                let address = listener.local_addr().map_err(|e| e.to_string())?;
                tracing::info!(%address, "metrics listening");
                let router = tournee_server::metrics_router(state.clone());
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router).await {
                        tracing::error!(error = %e, "the metrics listener stopped");
                    }
                });
            }
            if demo
                && demo::seed(&state.db, &state.clock)
                    .await
                    .map_err(|e| e.to_string())?
            {
                demo::field_work(&state)
                    .await
                    .map_err(|e| format!("demo: {e}"))?;
                tracing::info!(
                    "created the demo town, today's rounds and some field work to review"
                );
            }
            let address = listener.local_addr().map_err(|e| e.to_string())?;
            if demo {
                print_demo_help(&address.to_string(), &state.keys);
            }
            launch_with_tcp_listener(state, listener, shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
        Command::Migrate { database_url } => {
            let options = OpenOptions {
                pool_size: Some(1),
                ..OpenOptions::default()
            };
            Database::open(&database_url, options)
                .await
                .map_err(|e| format!("database: {e}"))?;
            println!("the database is up to date");
            Ok(())
        }
        Command::CheckConfig { settings } => check_config(&settings),
        Command::Token {
            mut auth,
            role,
            subject,
            device,
            hours,
        } => {
            // Minting for development with whatever secret is given; serving is what refuses
            // a weak one.
            auth.insecure_development = true;
            let keys = Keys::from_settings(&auth)?;
            if role == TokenRole::Postman && device.is_none() {
                return Err("a postman token needs --device".into());
            }
            let token = keys
                .mint(&subject, role, device.as_deref(), hours * 3600)
                .ok_or("tokens can only be minted with the HS256 secret (no --jwt-public-key)")?;
            println!("{token}");
            Ok(())
        }
        Command::Import {
            kind,
            file,
            dry_run,
            all_or_nothing,
            server,
            token,
            principal,
            mut settings,
        } => {
            use tournee_server::import::{self, command::Target, Kind, Options};
            let kind = Kind::parse(&kind)
                .ok_or_else(|| format!("{kind:?} is not an import kind: {}", Kind::names()))?;
            let target = match server {
                Some(url) => Target::Server {
                    url,
                    token: token
                        .ok_or("--server needs --token (or TOURNEE_TOKEN): an integration token")?,
                },
                None => {
                    // Keys are not used on the database directly.
                    settings.auth.insecure_development = true;
                    Target::Database(AppState::new(&settings).await.map_err(|e| e.to_string())?)
                }
            };
            let options = Options {
                all_or_nothing,
                dry_run,
            };
            let totals = import::command::import(target, kind, &file, &principal, options).await?;
            eprintln!(
                "{} lines: {} created, {} updated, {} unchanged, {} refused; {}",
                totals.lines,
                totals.created,
                totals.updated,
                totals.unchanged,
                totals.refused,
                if totals.applied {
                    "applied"
                } else if dry_run {
                    "dry run, nothing applied"
                } else {
                    "nothing applied"
                }
            );
            if totals.refused > 0 {
                return Err(format!("{} lines refused (printed above)", totals.refused));
            }
            Ok(())
        }
        Command::Backup { to, database_url } => {
            let db = Database::open(&database_url, OpenOptions::existing())
                .await
                .map_err(|e| format!("database: {e}"))?;
            db.backup_to(&to, jiff::Timestamp::now().as_millisecond())
                .await
                .map_err(|e| format!("backup: {e}"))?;
            println!("backed up to {}", to.display());
            Ok(())
        }
        Command::MarkRestored { database_url } => {
            let db = Database::open(&database_url, OpenOptions::existing())
                .await
                .map_err(|e| format!("database: {e}"))?;
            let history = db
                .begin_history(jiff::Timestamp::now().as_millisecond())
                .await
                .map_err(|e| format!("database: {e}"))?;
            println!(
                "history {history:016x} begun: every phone re-checks its documents at its next sync"
            );
            Ok(())
        }
        Command::Purge {
            older_than,
            dry_run,
            database_url,
            proofs,
        } => {
            let db = Database::open(&database_url, OpenOptions::existing())
                .await
                .map_err(|e| format!("database: {e}"))?;
            let now = jiff::Timestamp::now().as_millisecond();
            let counts = tournee_server::retention::purge(
                &db,
                None,
                older_than,
                now,
                "command-line:purge",
                dry_run,
            )
            .await
            .map_err(|e| format!("purge: {e}"))?;
            print_purged("", &counts, dry_run)?;
            if proofs.retention_days > 0 {
                let store = ProofStore::from_settings(&proofs)?;
                let counts = tournee_server::proofs::purge(
                    &db,
                    &store,
                    proofs.retention_days,
                    now,
                    "command-line:purge",
                    dry_run,
                )
                .await
                .map_err(|e| format!("purge of proofs: {e}"))?;
                print_purged(" proofs", &counts, dry_run)?;
            }
            Ok(())
        }
        Command::Webhooks {
            database_url,
            action,
        } => {
            let db = Database::open(&database_url, OpenOptions::existing())
                .await
                .map_err(|e| format!("database: {e}"))?;
            webhook_command(&db, action).await
        }
        Command::RevokeDevice {
            device,
            database_url,
        } => {
            let db = Database::open(&database_url, OpenOptions::existing())
                .await
                .map_err(|e| format!("database: {e}"))?;
            if db
                .revoke_device(&device, jiff::Timestamp::now().as_millisecond())
                .await
                .map_err(|e| e.to_string())?
            {
                println!("device {device} revoked");
                Ok(())
            } else {
                Err(format!("device {device} is unknown or already revoked"))
            }
        }
    }
}

/// Prints a purge's counts: `purged<what>: {…}`, or what a dry run would purge.
fn print_purged(what: &str, counts: &impl serde::Serialize, dry_run: bool) -> Result<(), String> {
    let counts = serde_json::to_string(counts).map_err(|e| e.to_string())?;
    if dry_run {
        println!("would purge{what} (dry run, nothing changed): {counts}");
    } else {
        println!("purged{what}: {counts}");
    }
    Ok(())
}

/// Runs a `webhooks` subcommand on the database.
async fn webhook_command(db: &Database, action: WebhookAction) -> Result<(), String> {
    let now = jiff::Timestamp::now().as_millisecond();
    match action {
        WebhookAction::Add {
            url,
            event_types,
            from_now,
        } => {
            let start = if from_now {
                Start::Now
            } else {
                Start::Beginning
            };
            let created = webhooks::subscribe(db, &url, event_types, start, now)
                .await
                .map_err(|e| e.to_string())?;
            let s = &created.subscription;
            println!("added {} for {}", s.id, s.url);
            println!("signing secret (shown this once): {}", created.secret);
            Ok(())
        }
        WebhookAction::List => {
            for s in webhooks::list(db).await.map_err(|e| e.to_string())? {
                let status = webhooks::status(db, &s.id)
                    .await
                    .map_err(|e| e.to_string())?;
                let d = status.deliveries;
                let types = if s.event_types.is_empty() {
                    "every type".to_string()
                } else {
                    s.event_types.join(",")
                };
                let state = match &s.disabled_reason {
                    _ if s.enabled => "enabled".to_string(),
                    Some(reason) => format!("disabled: {reason}"),
                    None => "disabled".to_string(),
                };
                println!(
                    "{}\t{}\t{types}\t{state}\tpending {} delivered {} failed {}",
                    s.id, s.url, d.pending, d.delivered, d.failed
                );
            }
            Ok(())
        }
        WebhookAction::Remove { id } => {
            webhooks::remove(db, &id).await.map_err(|e| e.to_string())?;
            println!("removed {id}");
            Ok(())
        }
    }
}

/// Prints every setting as `name = value` (secrets masked) and checks what can be checked
/// without side effects: the token keys, the time zone, the rate limits, the database URL's
/// form.
fn check_config(settings: &Settings) -> Result<(), String> {
    let s = settings;
    let g = &s.guards;
    let a = &s.auth;
    let masked = |secret: &str| {
        if secret == tournee_server::settings::DEV_JWT_SECRET {
            "(the public development secret)".to_string()
        } else {
            format!("(set, {} bytes)", secret.len())
        }
    };
    let optional = |value: Option<String>| value.unwrap_or_else(|| "(unset)".into());
    let lines = [
        ("listen", s.listen.to_string()),
        (
            "metrics_listen",
            optional(s.metrics_listen.map(|a| a.to_string())),
        ),
        ("database_url", redact_password(&s.database_url)),
        (
            "database_pool_size",
            optional(s.database_pool_size.map(|n| n.to_string())),
        ),
        ("no_migrate", s.no_migrate.to_string()),
        ("time_zone", s.time_zone.clone()),
        ("max_body_bytes", s.max_body_bytes.to_string()),
        ("import_max_bytes", s.import_max_bytes.to_string()),
        ("far_attempt_metres", s.far_attempt_metres.to_string()),
        ("document_cache_bytes", s.document_cache_bytes.to_string()),
        ("sync_concurrency", s.sync_concurrency.to_string()),
        ("holding_days", s.holding_days.to_string()),
        ("corroboration", s.corroboration.to_string()),
        ("retention_days", s.retention_days.to_string()),
        ("retention_check_secs", s.retention_check_secs.to_string()),
        ("change_log_days", s.change_log_days.to_string()),
        ("jwt_secret", masked(&a.jwt_secret)),
        (
            "jwt_public_key",
            optional(a.jwt_public_key.as_ref().map(|p| p.display().to_string())),
        ),
        ("jwt_algorithm", a.jwt_algorithm.clone()),
        ("jwt_audience", a.jwt_audience.clone()),
        ("jwt_issuer", a.jwt_issuer.clone()),
        ("insecure_development", a.insecure_development.to_string()),
        ("rate_per_address", g.rate_per_address.to_string()),
        ("rate_per_principal", g.rate_per_principal.to_string()),
        (
            "auth_failures_per_minute",
            g.auth_failures_per_minute.to_string(),
        ),
        (
            "public_lookups_per_minute",
            g.public_lookups_per_minute.to_string(),
        ),
        (
            "client_address_header",
            optional(g.client_address_header.clone()),
        ),
        ("header_timeout_secs", g.header_timeout_secs.to_string()),
        ("body_timeout_secs", g.body_timeout_secs.to_string()),
        ("request_timeout_secs", g.request_timeout_secs.to_string()),
        ("shutdown_grace_secs", g.shutdown_grace_secs.to_string()),
        ("upload_budget_bytes", g.upload_budget_bytes.to_string()),
        ("cors_origins", g.cors_origins.join(",")),
        ("webhook_retry_hours", s.webhooks.retry_hours.to_string()),
        (
            "webhook_backoff_base_ms",
            s.webhooks.backoff_base_ms.to_string(),
        ),
        (
            "webhook_backoff_cap_secs",
            s.webhooks.backoff_cap_secs.to_string(),
        ),
        ("webhook_poll_ms", s.webhooks.poll_ms.to_string()),
        ("webhook_timeout_secs", s.webhooks.timeout_secs.to_string()),
        ("map_tiles_url", optional(s.map.tiles_url.clone())),
        (
            "map_tiles_attribution",
            optional(s.map.tiles_attribution.clone()),
        ),
        ("proof_store", redact_password(&s.proofs.store)),
        (
            "proof_s3_endpoint",
            optional(s.proofs.s3_endpoint.as_deref().map(redact_password)),
        ),
        ("proof_s3_region", optional(s.proofs.s3_region.clone())),
        (
            "proof_s3_access_key_id",
            optional(
                s.proofs
                    .s3_access_key_id
                    .as_ref()
                    .map(|_| "(set)".to_string()),
            ),
        ),
        (
            "proof_s3_secret_access_key",
            optional(
                s.proofs
                    .s3_secret_access_key
                    .as_ref()
                    .map(|k| format!("(set, {} bytes)", k.len())),
            ),
        ),
        ("proof_max_bytes", s.proofs.max_bytes.to_string()),
        ("proof_retention_days", s.proofs.retention_days.to_string()),
    ];
    for (name, value) in lines {
        println!("{name} = {value}");
    }
    let mut problems = Vec::new();
    if let Err(e) = Keys::from_settings(a) {
        problems.push(format!("token keys: {e}"));
    }
    if let Err(e) = tournee_server::clock::time_zone(&s.time_zone) {
        problems.push(format!("time_zone: {e}"));
    }
    if let Err(e) = tournee_server::access::RateLimits::new(g) {
        problems.push(e);
    }
    if let Err(e) = tournee_server::web::MapTiles::from_settings(&s.map) {
        problems.push(format!("map_tiles_url: {e}"));
    }
    if let Err(e) = check_proof_store(&s.proofs) {
        problems.push(e);
    }
    if Backend::of(&s.database_url).is_err() {
        // Named as printed above: never with its password.
        problems.push(format!(
            "database_url: {}: unsupported (use sqlite://PATH or postgres://…)",
            redact_password(&s.database_url)
        ));
    }
    if problems.is_empty() {
        println!("\nthe settings are valid");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Whether the proof store can be used, without writing: a directory must be one (or be
/// creatable: it is not created here); an S3 URL must name a bucket and build a client (its
/// credentials are only tried by the server's first upload).
fn check_proof_store(proofs: &ProofSettings) -> Result<(), String> {
    let spec = proofs.store.trim();
    if spec.starts_with("s3://") {
        return ProofStore::from_settings(proofs).map(drop);
    }
    if spec.contains("://") && !spec.starts_with("file://") {
        return Err(format!(
            "proof_store: {}: use a directory or s3://BUCKET/PREFIX",
            redact_password(spec)
        ));
    }
    let dir = std::path::Path::new(spec.strip_prefix("file://").unwrap_or(spec));
    if dir.exists() && !dir.is_dir() {
        return Err(format!("proof_store: {} is not a directory", dir.display()));
    }
    Ok(())
}

/// A URL with its password, if any, replaced by `***`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    match path {
        Some(path) => format!("{scheme}://{authority}/{path}"),
        None => format!("{scheme}://{authority}"),
    }
}

fn print_demo_help(address: &str, keys: &Keys) {
    let token = keys
        .mint("pm-1", TokenRole::Postman, Some("dev-1"), 12 * 3600)
        .unwrap_or_default();
    let staff = keys
        .mint("bo-1", TokenRole::BackOffice, None, 12 * 3600)
        .unwrap_or_default();
    println!(
        "\nTournée demo is running on http://{address}\n\
         \n  A postman token (pm-1 on dev-1), valid 12 hours:\n    {token}\n\
         \n  The back-office page: http://{address}/backoffice\n  sign in with this back-office token (bo-1), valid 12 hours:\n    {staff}\n\
         \n  Try:\n    curl -H \"Authorization: Bearer $TOKEN\" http://{address}/v1/rounds\n    curl http://{address}/metrics\n    curl http://{address}/openapi.json\n\
         \n  More tokens: cargo run -p tournee-server -- token --role customer --subject cust-1\n"
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
}
