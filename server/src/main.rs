//! `tournee-server`: run the server, mint development tokens, revoke devices.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tournee_server::auth::{Keys, TokenRole};
use tournee_server::db::Database;
use tournee_server::settings::{AuthSettings, Settings};
use tournee_server::{demo, launch_with_tcp_listener, AppState};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Tournée: the postmen's field-work server")]
struct Cli {
    /// `human` lines, or `json` (one object per line) for log collectors. Logs go to standard
    /// error; standard output is left to what a command prints (tokens, the demo's help).
    #[arg(long, global = true, env = "TOURNEE_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
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
    /// Prints a development token (HS256 secret only).
    Token {
        #[command(flatten)]
        auth: AuthSettings,
        /// postman, customer or back_office.
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
    /// Refuses every token of a device from now on.
    RevokeDevice {
        /// The device id.
        device: String,
        /// The database.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tournee.db")]
        database_url: String,
    },
}

fn parse_role(s: &str) -> Result<TokenRole, String> {
    match s {
        "postman" => Ok(TokenRole::Postman),
        "customer" => Ok(TokenRole::Customer),
        "back_office" | "back-office" => Ok(TokenRole::BackOffice),
        other => Err(format!(
            "unknown role {other}: postman, customer or back_office"
        )),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        // Colour only for a person at a terminal, and never with NO_COLOR.
        let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        logs.with_ansi(colour).init();
    }
    match run(cli).await {
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
            let state = AppState::new(&settings).await.map_err(|e| e.to_string())?;
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
            let listener = TcpListener::bind(settings.listen)
                .await
                .map_err(|e| format!("{}: {e}", settings.listen))?;
            let address = listener.local_addr().map_err(|e| e.to_string())?;
            if demo {
                print_demo_help(&address.to_string(), &state.keys);
            }
            launch_with_tcp_listener(state, listener, shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
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
        Command::RevokeDevice {
            device,
            database_url,
        } => {
            let db = Database::connect(&database_url)
                .await
                .map_err(|e| e.to_string())?;
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
