//! The server under load, always a process of its own so that its memory is its own: either the
//! `tournee-server` binary, or — for the growth mode, whose days must pass — the same server
//! hosted by this binary (`loadgen host-server …`) on a clock that the load generator moves.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::net::TcpListener;
use tournee_server::clock::Clock;
use tournee_server::settings::Settings;
use tournee_server::telemetry::Telemetry;
use tournee_server::AppState;

/// The first argument that makes this binary host a server instead of generating load.
pub const HOST_SERVER: &str = "host-server";

/// How the load generator starts the server.
pub struct Launch<'a> {
    pub database_url: &'a str,
    /// A command to run the server under (valgrind…).
    pub wrapper: &'a [String],
    /// More `serve` flags.
    pub server_args: &'a [String],
    /// Host the server on a clock the load generator sets ([`ServerProcess::set_clock`]).
    pub movable_clock: bool,
}

/// A running server.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub base: String,
    clock: Option<ChildStdin>,
}

impl ServerProcess {
    pub fn start(launch: &Launch) -> ServerProcess {
        let this = std::env::current_exe().unwrap();
        let (exe, subcommand) = if launch.movable_clock {
            (this, HOST_SERVER)
        } else {
            (this.with_file_name("tournee-server"), "serve")
        };
        let mut command = match launch.wrapper.split_first() {
            Some((tool, tool_args)) => {
                let mut command = Command::new(tool);
                command.args(tool_args).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        let mut child = command
            .args([
                subcommand,
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                launch.database_url,
                // The load's tokens are minted with the development secret…
                "--insecure-development",
                // …and every device syncs from this one address, as fast as it can.
                "--rate-per-address",
                "0",
                "--rate-per-principal",
                "0",
            ])
            .args(launch.server_args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn,tournee_server=info")
            .stdin(if launch.movable_clock {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (build it: cargo build --release -p tournee-server --bins)",
                    exe.display()
                )
            });
        let pid = child.id();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("server exited").unwrap();
            if let Some(at) = line.find("address=") {
                break line[at + 8..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        ServerProcess {
            clock: child.stdin.take(),
            child,
            pid,
            base: format!("http://{address}"),
        }
    }

    /// Stands the hosted server's clock at `at_ms` (Unix milliseconds), from where it runs on.
    pub fn set_clock(&mut self, at_ms: i64) {
        let clock = self.clock.as_mut().expect("a server on a movable clock");
        writeln!(clock, "{at_ms}").unwrap();
        clock.flush().unwrap();
    }

    /// A line of `/proc/<pid>/status` in KiB: `VmHWM:` (peak resident) or `VmRSS:` (now).
    pub fn memory_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with(field)).map(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .unwrap_or("0")
                        .parse::<u64>()
                        .unwrap_or(0)
                })
            })
            .unwrap_or(0)
    }

    /// SIGTERM: the server shuts down gracefully (and a profiling wrapper writes its output).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[derive(Parser)]
#[command(about = "tournee-server's serve, on a clock set by lines of Unix milliseconds on stdin")]
struct HostedServer {
    #[command(flatten)]
    settings: Settings,
}

/// `loadgen host-server <serve flags>`: the server as `tournee-server serve` runs it, except that
/// its clock stands where the last line read on standard input puts it (Unix milliseconds) and
/// runs on from there at the real pace. It stops on SIGTERM, or when standard input closes.
pub fn host() {
    let hosted = HostedServer::parse_from(std::env::args().skip(1));
    let telemetry = Telemetry::init("human", None).unwrap();
    let zone = tournee_server::clock::time_zone(&hosted.settings.time_zone).unwrap();
    let clock = Clock::manual(jiff::Timestamp::now(), zone);
    let set_at = Arc::new(Mutex::new((
        jiff::Timestamp::now().as_millisecond(),
        Instant::now(),
    )));
    std::thread::spawn({
        let set_at = set_at.clone();
        move || {
            for line in std::io::stdin().lines() {
                let at_ms: i64 = line.unwrap().trim().parse().unwrap();
                *set_at.lock().unwrap() = (at_ms, Instant::now());
            }
            std::process::exit(0);
        }
    });
    std::thread::spawn({
        let clock = clock.clone();
        move || loop {
            let (at_ms, since) = *set_at.lock().unwrap();
            let now_ms = at_ms + since.elapsed().as_millis() as i64;
            clock.set(jiff::Timestamp::from_millisecond(now_ms).unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let settings = &hosted.settings;
            let listener = TcpListener::bind(settings.listen).await.unwrap();
            let state = AppState::with_clock(settings, clock).await.unwrap();
            let stop = async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .unwrap();
                term.recv().await;
            };
            tournee_server::launch_with_tcp_listener(state, listener, stop)
                .await
                .unwrap();
        });
    telemetry.shutdown();
}
