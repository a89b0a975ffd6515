//! `test_server`: the real Tournée server in a process of its own, for tests that kill it.
//!
//! `test_server <DATABASE_URL> [--seed]` (or `DATABASE_URL` in the environment) runs the server
//! with the end-to-end tests' settings (`tournee_e2e::settings`: test JWT secret, small cache) on
//! `127.0.0.1:0`. With `--seed` it first creates the demo town if missing. Once it listens it
//! prints one line, `listening on 127.0.0.1:PORT`, on stdout, then serves until it is killed.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::ExitCode;

use tokio::net::TcpListener;
use tournee_server::{demo, launch_with_tcp_listener, AppState};

const USAGE: &str = "usage: test_server <DATABASE_URL> [--seed]";

#[tokio::main]
async fn main() -> ExitCode {
    let mut url = std::env::var("DATABASE_URL").ok();
    let mut seed = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--seed" => seed = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other if other.starts_with("--") => {
                eprintln!("test_server: unknown flag {other}\n{USAGE}");
                return ExitCode::FAILURE;
            }
            other => url = Some(other.to_string()),
        }
    }
    let Some(url) = url else {
        eprintln!("test_server: no database URL\n{USAGE}");
        return ExitCode::FAILURE;
    };
    match run(&url, seed).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test_server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(url: &str, seed: bool) -> Result<(), String> {
    let settings = tournee_e2e::settings(url);
    let state = AppState::new(&settings).await.map_err(|e| e.to_string())?;
    if seed {
        demo::seed(&state.db, &state.clock)
            .await
            .map_err(|e| e.to_string())?;
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("{}: {e}", settings.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {address}").map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    drop(stdout);
    launch_with_tcp_listener(state, listener, std::future::pending())
        .await
        .map_err(|e| e.to_string())
}
