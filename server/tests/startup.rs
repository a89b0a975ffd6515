//! The `tournee-server` binary as an operator starts it: it refuses the public development
//! secret and short secrets (on loopback and on every interface) and says why, creating
//! nothing; it starts with a secret of its own, and with `--demo`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn server(dir: &std::path::Path, args: &[&str], secret: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tournee-server"));
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("TOURNEE_JWT_SECRET")
        .env_remove("TOURNEE_INSECURE_DEVELOPMENT")
        .env("NO_COLOR", "1")
        .args(["serve", "--database-url"])
        .arg(format!("sqlite://{}", dir.join("t.db").display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = secret {
        command.env("TOURNEE_JWT_SECRET", secret);
    }
    command
}

/// Waits for the line saying where the server listens, then stops it.
fn listens(mut child: Child) -> bool {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening") {
                let _ = tx.send(());
            }
        }
    });
    let listened = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    listened
}

#[test]
fn the_public_development_secret_and_short_secrets_are_refused_with_the_reason() {
    for listen in ["127.0.0.1:0", "0.0.0.0:0"] {
        for (secret, says) in [
            (None, "public development JWT secret"),
            (Some("only-twenty-bytes-00"), "20 bytes"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let out = server(dir.path(), &["--listen", listen], secret)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{listen} {secret:?} started");
            assert!(stderr.contains(says), "{listen}: {stderr}");
            assert!(stderr.contains("TOURNEE_JWT_SECRET"), "{stderr}");
            assert!(!dir.path().join("t.db").exists(), "nothing is created");
        }
    }
}

#[test]
fn it_starts_with_a_secret_of_its_own_and_in_demo_mode() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-secret-of-our-own-that-is-long-enough-0123456789";
    let child = server(dir.path(), &["--listen", "127.0.0.1:0"], Some(secret))
        .spawn()
        .unwrap();
    assert!(listens(child));
    let child = server(dir.path(), &["--listen", "127.0.0.1:0", "--demo"], None)
        .spawn()
        .unwrap();
    assert!(listens(child));
}

#[test]
fn sigterm_with_a_stalled_client_stops_within_the_grace_period() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-secret-of-our-own-that-is-long-enough-0123456789";
    let mut child = server(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--shutdown-grace-secs", "1"],
        Some(secret),
    )
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("address=") {
                let address: String = line[at + 8..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(address);
            }
        }
    });
    let address = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    // A client that sends half a body and stops.
    let mut stalled = std::net::TcpStream::connect(&address).unwrap();
    stalled
        .write_all(b"POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stalled);
}
