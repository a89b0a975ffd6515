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
    let stdout = child.stderr.take().unwrap();
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
    let stdout = child.stderr.take().unwrap();
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

/// One HTTP/1.1 exchange over a plain socket: the answer's head and body.
fn http(address: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn json_logs_carry_the_request_id_route_and_caller_and_metrics_count_per_route() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-secret-of-our-own-that-is-long-enough-0123456789";
    let mut child = server(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--log-format", "json", "--demo"],
        Some(secret),
    )
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let lines = || rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let address = loop {
        let line = lines();
        let entry: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["address"].as_str().unwrap().to_string();
        }
    };
    let token = Command::new(env!("CARGO_BIN_EXE_tournee-server"))
        .args(["token", "--role", "customer", "--subject", "cust-1"])
        .env("TOURNEE_JWT_SECRET", secret)
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap();
    let answer = http(
        &address,
        &format!(
            "GET /v1/customer/items?private=search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {}\r\nx-request-id: req-42.a\r\n\r\n",
            token.trim()
        ),
    );
    assert!(answer.contains("x-request-id: req-42.a"), "{answer}");
    let logged = loop {
        let line = lines();
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        if entry["fields"]["message"] == "answered" && entry["span"]["request_id"] == "req-42.a" {
            break entry;
        }
    };
    assert_eq!(logged["span"]["route"], "/v1/customer/items", "{logged}");
    assert_eq!(logged["span"]["method"], "GET");
    assert_eq!(logged["span"]["role"], "customer");
    assert_eq!(logged["span"]["principal"], "cust-1");
    assert_eq!(logged["fields"]["status"], 200);
    assert!(logged["fields"]["latency_ms"].as_f64().is_some());
    assert!(
        !logged.to_string().contains("private=search"),
        "no query string in logs"
    );

    // A refusal is logged with its code; a request without an id gets one.
    let answer = http(
        &address,
        "GET /v1/backoffice/items/RR12 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id: "),
        "{answer}"
    );
    let refused = loop {
        let entry: serde_json::Value = serde_json::from_str(&lines()).unwrap();
        if entry["fields"]["message"] == "answered" && entry["fields"]["status"] == 401 {
            break entry;
        }
    };
    assert_eq!(refused["fields"]["code"], "token_missing", "{refused}");

    let metrics = http(
        &address,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        metrics.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tournee_http_requests_total{method="GET",route="/v1/customer/items",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tournee_auth_failures_total{code="token_missing"} 1"#),
        "{metrics}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
