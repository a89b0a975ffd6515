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
    let address = listening_address(&mut child);
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

/// The address the server logs it listens on (its standard error is read to the end meanwhile,
/// so the server never blocks on it).
fn listening_address(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(address) = address_in(&line) {
                let _ = tx.send(address);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap()
}

/// A development token from the binary's `token` command.
fn mint(secret: &str, role: &str, subject: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tournee-server"))
        .args(["token", "--role", role, "--subject", subject])
        .env("TOURNEE_JWT_SECRET", secret)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// The `address=…` a log line names, if any.
fn address_in(line: &str) -> Option<String> {
    let at = line.find("address=")?;
    Some(
        line[at + 8..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect(),
    )
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
fn json_logs_carry_requests_and_decisions_without_personal_data_and_metrics_count_per_route() {
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
    let token = mint(secret, "customer", "cust-1");
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
    // As Prometheus reads it: every family parses, typed, with the values the requests made.
    let body = metrics.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let families = parsed_metrics(body);
    let sample = |family: &str, kind: &str, labels: serde_json::Value| {
        let family = &families[family];
        assert_eq!(family["type"], kind, "{family}");
        family["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                labels
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| &s[1][k] == v)
            })
            .map(|s| s[2].as_f64().unwrap())
    };
    let customer_items = serde_json::json!({"route": "/v1/customer/items", "status": "200"});
    assert_eq!(
        sample("tournee_http_requests", "counter", customer_items),
        Some(1.0)
    );
    let missing = serde_json::json!({"code": "token_missing"});
    assert_eq!(
        sample("tournee_auth_failures", "counter", missing),
        Some(1.0)
    );
    assert!(sample(
        "tournee_db_pool_acquire_seconds",
        "histogram",
        serde_json::json!({})
    )
    .is_some());

    // A decision is one info line naming the action, the document and who: never the comment,
    // which may name people.
    let staff = mint(secret, "back_office", "bo-7");
    let staff = staff.trim();
    let queue = http(
        &address,
        &format!(
            "GET /v1/backoffice/queue?kind=correction HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {staff}\r\n\r\n"
        ),
    );
    let (_, body) = queue.split_once("\r\n\r\n").unwrap();
    let entries: serde_json::Value = serde_json::from_str(body).unwrap();
    let entry = entries[0]["id"].as_i64().unwrap();
    let decision = r#"{"decision":"approve","comment":"Checked with Mme Dupont, door 4B"}"#;
    let answer = http(
        &address,
        &format!(
            "POST /v1/backoffice/queue/{entry}/decision HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {staff}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{decision}",
            decision.len()
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let written = loop {
        let line = lines();
        assert!(!line.contains("Dupont"), "personal data logged: {line}");
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        if entry["fields"]["message"] == "written" {
            break entry;
        }
    };
    assert_eq!(
        written["fields"]["action"], "correction.approved",
        "{written}"
    );
    assert_eq!(written["fields"]["principal"], "bo-7", "{written}");
    assert_eq!(written["fields"]["subject"], "dp:dp-00001", "{written}");
    let _ = child.kill();
    let _ = child.wait();
}

const SECRET: &str = "a-secret-of-our-own-that-is-long-enough-0123456789";

/// `tournee-server ARGS` in `dir`, with our secret and no database settings from the
/// environment; its exit status, standard output and standard error.
fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tournee-server"))
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("TOURNEE_INSECURE_DEVELOPMENT")
        .env("TOURNEE_JWT_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue #18: every start-up error names its cause and the path or address, and nothing is
/// created on the way: an unsupported URL scheme, a missing directory, a busy port (found before
/// any database is created), a command that needs an existing database.
#[test]
fn start_up_errors_name_the_cause_and_the_path_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(dir.path(), &["serve", "--database-url", "mysql://x"]);
    assert!(!ok);
    assert!(
        stderr.contains("mysql://x: unsupported database URL"),
        "{stderr}"
    );

    // PostgreSQL that nobody answers on: the driver's own reason, not the pool's timeout.
    let (ok, _, stderr) = run(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://tournee@127.0.0.1:1/t",
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("postgres://tournee@127.0.0.1:1/t:") && stderr.contains("refused"),
        "{stderr}"
    );

    let missing = dir.path().join("no/such/dir/t.db");
    let url = format!("sqlite://{}", missing.display());
    let (ok, _, stderr) = run(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--database-url", &url],
    );
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "the directory {} does not exist",
            dir.path().join("no/such/dir").display()
        )),
        "{stderr}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (ok, _, stderr) = run(dir.path(), &["serve", "--listen", &address]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(
        !dir.path().join("tournee.db").exists(),
        "no database created"
    );

    let (ok, _, stderr) = run(dir.path(), &["revoke-device", "dev-1"]);
    assert!(!ok);
    assert!(stderr.contains("tournee.db: no such database"), "{stderr}");
    assert!(stderr.contains("tournee-server migrate"), "{stderr}");
    assert!(
        !dir.path().join("tournee.db").exists(),
        "no database created"
    );
}

/// Issue #18: `migrate` applies the migrations with a line each; `serve --no-migrate` refuses a
/// database that needs any, and starts on a migrated one; a second `migrate` has nothing to do.
#[test]
fn migrate_applies_migrations_with_progress_and_serve_can_leave_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--no-migrate"],
    );
    assert!(!ok);
    assert!(
        stderr.contains("no such database") || stderr.contains("not applied yet"),
        "{stderr}"
    );
    assert!(!dir.path().join("tournee.db").exists());

    let (ok, stdout, stderr) = run(dir.path(), &["migrate"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("up to date"), "{stdout}");
    assert!(stderr.contains("migration 1/"), "{stderr}");
    assert!(stderr.contains("applied 1 init"), "{stderr}");
    let (ok, _, stderr) = run(dir.path(), &["migrate"]);
    assert!(ok);
    assert!(
        !stderr.contains("applying"),
        "nothing left to apply: {stderr}"
    );

    let child = Command::new(env!("CARGO_BIN_EXE_tournee-server"))
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("TOURNEE_JWT_SECRET", SECRET)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-migrate"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(listens(child));
    // revoke-device works on it, and says what it did.
    let (ok, _, stderr) = run(dir.path(), &["revoke-device", "dev-unknown"]);
    assert!(!ok);
    assert!(stderr.contains("dev-unknown is unknown"), "{stderr}");
}

/// Issue #18: `check-config` prints every effective setting with secrets masked, and refuses
/// settings that cannot work, naming them.
#[test]
fn check_config_prints_the_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run(
        dir.path(),
        &[
            "check-config",
            "--database-url",
            "postgres://tournee:hunter2@db.internal/tournee",
            "--rate-per-address",
            "7",
            "--proof-store",
            "s3://tournee-proofs/prod",
            "--proof-s3-endpoint",
            "https://s3.fr-par.example",
            "--proof-s3-access-key-id",
            "AKIDPROOFS",
            "--proof-s3-secret-access-key",
            "proof-secret-hunter3",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("rate_per_address = 7"), "{stdout}");
    assert!(
        stdout.contains("proof_store = s3://tournee-proofs/prod")
            && stdout.contains("proof_s3_secret_access_key = (set, 20 bytes)")
            && stdout.contains("proof_s3_access_key_id = (set)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("proof-secret-hunter3") && !stdout.contains("AKIDPROOFS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("database_url = postgres://tournee:***@db.internal/tournee"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("jwt_secret = (set, {} bytes)", SECRET.len())),
        "{stdout}"
    );
    assert!(
        !stdout.contains(SECRET) && !stdout.contains("hunter2"),
        "{stdout}"
    );
    assert!(!dir.path().join("tournee.db").exists(), "nothing created");

    let (ok, _, stderr) = run(
        dir.path(),
        &[
            "check-config",
            "--time-zone",
            "Mars/Olympus",
            "--database-url",
            "mysql://x",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("time_zone"), "{stderr}");
    assert!(
        stderr.contains("database_url: mysql://x: unsupported"),
        "{stderr}"
    );
}

/// Issue #18: with `--metrics-listen`, `/metrics` is served on that address only (the public
/// port answers 404), and it carries the pool, the cache, the review queue by kind, the
/// background runs, the process and the build.
#[test]
fn metrics_can_be_served_apart_and_cover_the_pool_cache_queue_and_build() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--demo",
        ],
        Some(SECRET),
    )
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(address) = address_in(&line) {
                let _ = tx.send((line.contains("metrics listening"), address));
            }
        }
    });
    let (mut public, mut metrics) = (None, None);
    while public.is_none() || metrics.is_none() {
        let (is_metrics, address) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        if is_metrics {
            metrics = Some(address);
        } else {
            public = Some(address);
        }
    }
    let get = |address: &str| {
        http(
            address,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    };
    let on_public = get(&public.unwrap());
    assert!(on_public.starts_with("HTTP/1.1 404"), "{on_public}");
    assert!(on_public.contains("--metrics-listen"), "{on_public}");
    let body = get(&metrics.unwrap());
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for family in [
        "tournee_db_connections{state=\"in_use\"}",
        "tournee_db_connections{state=\"idle\"}",
        "tournee_db_connections_max ",
        "tournee_document_cache_documents ",
        "tournee_document_cache_bytes ",
        "tournee_document_cache_hits_total ",
        "tournee_document_cache_misses_total ",
        "tournee_document_cache_evictions_total ",
        "tournee_review_queue_open{kind=\"correction\"} 1",
        "tournee_compaction_runs_total ",
        "tournee_corroboration_runs_total ",
        "tournee_process_resident_memory_bytes ",
        "tournee_process_cpu_seconds ",
        "tournee_process_open_fds ",
        "tournee_process_start_time_seconds ",
        &format!(
            "tournee_build{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(body.contains(family), "{family} missing from:\n{body}");
    }
    // Every query's wait for a pooled connection is measured (sqlx's acquire events): the
    // demo's start-up ran some.
    let acquires: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("tournee_db_pool_acquire_seconds_count "))
        .unwrap_or_else(|| panic!("no pool-wait histogram in:\n{body}"))
        .trim()
        .parse()
        .unwrap();
    assert!(acquires > 0.0, "{body}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Issue #18: `backup` copies a SQLite database consistently while the server runs; a server
/// started on the copy finds a complete, migrated database (the demo's devices are there);
/// `backup` never overwrites a file.
#[test]
fn a_backup_taken_while_serving_restores_into_a_working_server() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut child = server(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--demo"],
        Some(SECRET),
    )
    .spawn()
    .unwrap();
    listening_address(&mut child);
    let copy = dir.path().join("backup.db");
    let copy_arg = copy.display().to_string();
    let (ok, stdout, stderr) = run(
        dir.path(),
        &["backup", "--database-url", &url, "--to", &copy_arg],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("backed up to"), "{stdout}");
    let (ok, _, stderr) = run(
        dir.path(),
        &["backup", "--database-url", &url, "--to", &copy_arg],
    );
    assert!(!ok);
    assert!(stderr.contains("exists already"), "{stderr}");
    let _ = child.kill();
    let _ = child.wait();

    // The copy begins a history of its own (the original's cursors mean nothing there), and
    // `mark-restored` begins another.
    let restored = format!("sqlite://{copy_arg}");
    let rt = runtime();
    let history = |url: &str| {
        let options = tournee_server::db::OpenOptions::existing();
        let db = rt
            .block_on(tournee_server::db::Database::open(url, options))
            .unwrap();
        number(&rt, &db, "SELECT history FROM server_history WHERE id = 1")
    };
    let copied = history(&restored);
    assert_ne!(history(&url), copied);
    let (ok, stdout, stderr) = run(dir.path(), &["mark-restored", "--database-url", &restored]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("re-checks its documents"), "{stdout}");
    assert_ne!(history(&restored), copied);

    // Restored: the copy is a migrated database with the demo's devices and field work.
    let (ok, stdout, stderr) = run(
        dir.path(),
        &["revoke-device", "dev-2", "--database-url", &restored],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("device dev-2 revoked"), "{stdout}");
    let child = Command::new(env!("CARGO_BIN_EXE_tournee-server"))
        .current_dir(dir.path())
        .env("TOURNEE_JWT_SECRET", SECRET)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-migrate",
            "--database-url",
            &restored,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(listens(child));
}

/// An OTLP/HTTP collector stand-in: answers 200 to every request and hands each one's path,
/// content type and body to the test.
fn fake_collector() -> (String, mpsc::Receiver<(String, String, Vec<u8>)>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                head.push(line.trim_end().to_string());
                line.clear();
            }
            let header = |name: &str| {
                head.iter()
                    .find_map(|h| {
                        let (key, value) = h.split_once(':')?;
                        key.eq_ignore_ascii_case(name)
                            .then(|| value.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let mut body = vec![0; header("content-length").parse().unwrap_or(0)];
            let _ = reader.read_exact(&mut body);
            let path = head
                .first()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or_default()
                .to_string();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            let _ = tx.send((path, header("content-type"), body));
        }
    });
    (address, rx)
}

/// Issue #18: with `--otlp-endpoint`, a sync's steps (decode, prepare, validate, commit) and its
/// SQL are spans exported over OTLP/HTTP, flushed at shutdown.
#[test]
fn traces_of_a_sync_reach_an_otlp_collector() {
    use std::io::{Read, Write};
    use tournee_sync_core::sync::wire::{self, SyncRequest};
    let (collector, received) = fake_collector();
    let dir = tempfile::tempdir().unwrap();
    let mut child = server(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "--otlp-endpoint",
            &collector,
        ],
        Some(SECRET),
    )
    .spawn()
    .unwrap();
    let address = listening_address(&mut child);
    let mint = |role: &str, subject: &str, device: Option<&str>| {
        let mut args = vec!["token", "--role", role, "--subject", subject];
        if let Some(device) = device {
            args.extend(["--device", device]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_tournee-server"))
            .args(args)
            .env("TOURNEE_JWT_SECRET", SECRET)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let send = |method: &str, path: &str, token: &str, content_type: &str, body: &[u8]| {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{method} {path}: {}",
            String::from_utf8_lossy(&answer)
        );
    };
    let frame = wire::encode_request(&SyncRequest {
        since: Some(0),
        history: None,
        docs: Vec::new(),
    });
    send(
        "POST",
        "/v1/sync",
        &mint("postman", "pm-1", Some("dev-1")),
        wire::MEDIA_TYPE,
        &frame,
    );
    // A customer's write on the one write pipeline, and a reviewer's read.
    let preferences = format!(
        "/v1/customer/delivery-points/{}/preferences",
        tournee_sync_core::fixtures::delivery_point_id(0)
    );
    send(
        "PUT",
        &preferences,
        &mint("customer", "cust-1", None),
        "application/json",
        br#"{"safe_place":"garden shed","preferred_neighbour":null,"preferred_pickup_point":null,"never_to_neighbour":false}"#,
    );
    send(
        "GET",
        "/v1/backoffice/queue",
        &mint("back_office", "reviewer-1", None),
        "application/json",
        b"",
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    let mut exported = Vec::new();
    while let Ok((path, content_type, body)) = received.recv_timeout(Duration::from_secs(5)) {
        assert_eq!(path, "/v1/traces");
        assert_eq!(content_type, "application/x-protobuf");
        exported.extend(body);
    }
    // Protobuf keeps strings as they are: the span names and the service's name.
    let has = |name: &str| exported.windows(name.len()).any(|w| w == name.as_bytes());
    for name in [
        "tournee-server",
        "sync.decode",
        "sync.prepare",
        "sync.validate",
        "sync.commit",
        "sql.cursor_bound",
        "sql.claims",
        "customer.preferences",
        "write.as",
        "write.commit",
        "sql.commit_group",
        "backoffice.queue",
    ] {
        assert!(
            has(name),
            "no span {name} among {} bytes exported",
            exported.len()
        );
    }
}

/// A database made for one test on the PostgreSQL server of `TEST_DATABASE_URL`, dropped when
/// this goes out of scope, whether the test passed or failed.
struct ScratchPostgres {
    admin: String,
    name: String,
    url: String,
}

impl ScratchPostgres {
    fn create(admin: &str, purpose: &str) -> Self {
        use sqlx::Connection;
        let name = format!("tournee_{purpose}_{}", std::process::id());
        runtime().block_on(async {
            let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
        });
        let (base, _) = admin.rsplit_once('/').unwrap();
        Self {
            admin: admin.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        use sqlx::Connection;
        runtime().block_on(async {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&mut conn)
                .await;
            }
        });
    }
}

/// `/metrics` as the Prometheus client library's strict OpenMetrics parser reads it (PyPI
/// `prometheus-client`, installed by `.ci/run`): family → `{type, samples: [[name, labels,
/// value]]}`. A body it cannot parse fails the test with the parser's message.
fn parsed_metrics(body: &str) -> serde_json::Value {
    use std::io::Write;
    const READ: &str = r"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {'type': f.type, 'samples': [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
";
    let mut child = Command::new("python3")
        .args(["-c", READ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The counts a `purge` printed after `prefix`.
fn purge_counts(stdout: &str, prefix: &str) -> serde_json::Value {
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {stdout:?}"));
    serde_json::from_str(json).unwrap()
}

/// One number a SQL query answers.
fn number(rt: &tokio::runtime::Runtime, db: &tournee_server::db::Database, sql: &str) -> i64 {
    use tournee_server::db::Database;
    rt.block_on(async {
        match db {
            Database::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
            Database::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

/// Issue #18: `purge` on the demo's field work, on SQLite and PostgreSQL, with the real binary:
/// nothing younger than the period is touched; a dry run counts and changes nothing; the purge
/// clears positions, texts and audit details, deletes personal events and the documents of
/// delivered items, keeps the delivery facts (items, UPU events, attempts' outcomes and times)
/// and the delivery points' documents, writes one audit line with counts only, and a second run
/// finds nothing left.
#[test]
fn purge_anonymises_personal_data_and_archives_delivered_items_on_both_databases() {
    let postgres = std::env::var("TEST_DATABASE_URL")
        .ok()
        .map(|admin| ScratchPostgres::create(&admin, "purge"));
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}", dir.path().join("t.db").display())];
    urls.extend(postgres.as_ref().map(|p| p.url.clone()));
    for url in &urls {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tournee-server"))
            .current_dir(dir.path())
            .env("TOURNEE_JWT_SECRET", SECRET)
            .env("NO_COLOR", "1")
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--demo",
                "--database-url",
                url,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The demo's field work is committed before the server listens.
        listening_address(&mut child);
        let _ = child.kill();
        let _ = child.wait();

        let purge = |extra: &[&str]| {
            let mut args = vec!["purge", "--database-url", url.as_str()];
            args.extend_from_slice(extra);
            let (ok, stdout, stderr) = run(dir.path(), &args);
            assert!(ok, "{url}: {stderr}");
            (stdout, stderr)
        };
        let (stdout, _) = purge(&["--older-than", "3650"]);
        let counts = purge_counts(&stdout, "purged: ");
        for (what, n) in counts.as_object().unwrap() {
            assert_eq!(n, 0, "{url}: {what} younger than ten years was purged");
        }

        let db = rt.block_on(async {
            tournee_server::db::Database::open(url, tournee_server::db::OpenOptions::existing())
                .await
                .unwrap()
        });
        let positions = "SELECT COUNT(*) FROM attempts WHERE lat IS NOT NULL";
        let with_position = number(&rt, &db, positions);
        assert!(with_position >= 2, "{url}: the demo records positions");
        let upu_events = number(&rt, &db, "SELECT COUNT(*) FROM item_events");
        let delivered_documents = "SELECT COUNT(*) FROM items i JOIN documents d ON d.id = 'item:' || i.id WHERE i.status = 'EMI'";
        assert!(number(&rt, &db, delivered_documents) >= 1, "{url}");

        let (stdout, _) = purge(&["--older-than", "0", "--dry-run"]);
        let planned = purge_counts(&stdout, "would purge (dry run, nothing changed): ");
        assert!(
            planned["items_archived"].as_u64().unwrap() >= 1,
            "{planned}"
        );
        assert_eq!(
            planned["attempts_anonymised"].as_i64().unwrap(),
            with_position,
            "{url}: {planned}"
        );
        assert_eq!(
            number(&rt, &db, positions),
            with_position,
            "{url}: the dry run wrote"
        );

        let (stdout, stderr) = purge(&["--older-than", "0"]);
        let done = purge_counts(&stdout, "purged: ");
        for what in [
            "items_archived",
            "attempts_anonymised",
            "choices_anonymised",
            "corrections_anonymised",
            "queue_entries_cleared",
            "audit_details_cleared",
            "events_deleted",
        ] {
            assert_eq!(
                done[what], planned[what],
                "{url}: {what}: {done} vs {planned}"
            );
        }
        assert!(done["documents_deleted"].as_u64().unwrap() >= 1, "{done}");
        assert!(done["changes_deleted"].as_u64().unwrap() >= 1, "{done}");
        assert!(stderr.contains("purged"), "{url}: no log line: {stderr}");

        // Personal data gone…
        assert_eq!(number(&rt, &db, positions), 0, "{url}");
        let in_records = "SELECT COUNT(*) FROM attempts WHERE record LIKE '%\"lat\"%'";
        assert_eq!(
            number(&rt, &db, in_records),
            0,
            "{url}: a position left in a record"
        );
        let personal_events = "SELECT COUNT(*) FROM events WHERE type IN ('attempt.recorded', 'correction.proposed', 'choice.made')";
        assert_eq!(number(&rt, &db, personal_events), 0, "{url}");
        let details =
            "SELECT COUNT(*) FROM audit_log WHERE detail <> '{}' AND action <> 'retention.purged'";
        assert_eq!(number(&rt, &db, details), 0, "{url}");
        assert_eq!(number(&rt, &db, delivered_documents), 0, "{url}");
        // …the delivery facts and the delivery points' documents kept…
        assert_eq!(
            number(&rt, &db, "SELECT COUNT(*) FROM item_events"),
            upu_events
        );
        assert!(number(&rt, &db, "SELECT COUNT(*) FROM attempts") >= with_position);
        assert!(
            number(
                &rt,
                &db,
                "SELECT COUNT(*) FROM documents WHERE id LIKE 'dp:%'"
            ) >= 1
        );
        assert!(
            number(
                &rt,
                &db,
                "SELECT COUNT(*) FROM events WHERE type LIKE 'item.%'"
            ) >= 1
        );
        // …one audit line with the counts, and nothing left for the next run.
        assert_eq!(
            number(
                &rt,
                &db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'retention.purged'"
            ),
            1,
            "{url}"
        );
        let (stdout, _) = purge(&["--older-than", "0"]);
        let again = purge_counts(&stdout, "purged: ");
        for (what, n) in again.as_object().unwrap() {
            assert_eq!(n, 0, "{url}: {what} purged twice: {again}");
        }
        rt.block_on(async {
            if let tournee_server::db::Database::Postgres(pool) = &db {
                pool.close().await;
            }
        });
    }
}

/// What the container image runs, read from the `Dockerfile`: its environment (`ENV`), its user
/// (`USER uid:gid`) and its command (`ENTRYPOINT` + `CMD`).
struct ImageStartUp {
    env: Vec<(String, String)>,
    user: (u32, u32),
    command: Vec<String>,
}

fn image_start_up() -> ImageStartUp {
    let dockerfile = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile"),
    )
    .unwrap();
    // Continuation lines joined; only the last stage (the image) counts.
    let joined = dockerfile.replace("\\\n", " ");
    let image = joined.rsplit("\nFROM ").next().unwrap();
    let (mut env, mut user, mut command) = (Vec::new(), None, Vec::new());
    for line in image.lines().map(str::trim) {
        if let Some(pairs) = line.strip_prefix("ENV ") {
            for pair in pairs.split_whitespace() {
                let (key, value) = pair.split_once('=').unwrap();
                env.push((key.to_string(), value.to_string()));
            }
        } else if let Some(ids) = line.strip_prefix("USER ") {
            let (uid, gid) = ids.trim().split_once(':').unwrap();
            user = Some((uid.parse().unwrap(), gid.parse().unwrap()));
        } else if let Some(words) = line
            .strip_prefix("ENTRYPOINT ")
            .or_else(|| line.strip_prefix("CMD "))
        {
            let words: Vec<String> = serde_json::from_str(words).unwrap();
            command.extend(words);
        }
    }
    ImageStartUp {
        env,
        user: user.expect("the image names its user"),
        command,
    }
}

/// Issue #18: the start-up the image runs, without a container daemon: the binary started as the
/// image's user (not root), with the image's command and environment and nothing else (no
/// argument, no inherited variable), pointed at PostgreSQL and given a secret the way compose
/// does, logs JSON, migrates the new database, answers ready, and writes its proofs where the
/// image's environment says. (The image builds the release profile of this same binary.)
#[test]
fn the_images_start_up_runs_as_its_user_from_its_environment_alone_on_postgresql() {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL not set: the image's start-up is tried on PostgreSQL");
        return;
    };
    let image = image_start_up();
    assert_eq!(image.command.last().map(String::as_str), Some("serve"));
    let (uid, gid) = image.user;
    assert_ne!(uid, 0, "the image does not run as root");
    let database = ScratchPostgres::create(&admin, "image");
    // The image's /data, owned by its user.
    let data = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(data.path(), Some(uid), Some(gid)).unwrap();
    let data_dir = data.path().display().to_string();
    let mut command = Command::new("setpriv");
    command
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
        ])
        .arg(env!("CARGO_BIN_EXE_tournee-server"))
        .args(image.command.iter().skip(1))
        .env_clear()
        .current_dir(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in &image.env {
        command.env(key, value.replace("/data", &data_dir));
    }
    // What a deployment adds (compose.yaml): the database and the secret; and a free port.
    command
        .env("DATABASE_URL", &database.url)
        .env("TOURNEE_JWT_SECRET", SECRET)
        .env("TOURNEE_LISTEN", "127.0.0.1:0");
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let parsed = serde_json::from_str(&line)
                .unwrap_or_else(|_| serde_json::json!({ "not json": line }));
            let _ = tx.send(parsed);
        }
    });
    let address = loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(
            line.get("not json").is_none(),
            "every log line is JSON: {line}"
        );
        if line["fields"]["message"] == "listening" {
            assert_eq!(line["fields"]["backend"], "postgres", "{line}");
            break line["fields"]["address"].as_str().unwrap().to_string();
        }
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|id| id == uid.to_string()),
        "runs as the image's user: {uid_line}"
    );
    let ready = http(
        &address,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(
        data.path().join("proofs").is_dir(),
        "the proof store is where the image's environment puts it"
    );
    let _ = child.kill();
    let _ = child.wait();
}
