//! The harness of the end-to-end tests: a real server on port 0 over a real database, and phones
//! that talk to it over HTTP with sync-core.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bindings_api;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tournee_server::auth::TokenRole;
use tournee_server::clock::Clock;
use tournee_server::settings::{
    AuthSettings, GuardSettings, MapSettings, ProofSettings, Settings, WebhookSettings,
};
use tournee_server::{demo, launch_with_tcp_listener, AppState};
use tournee_sync_core::model::{RoundManifest, Stop};
use tournee_sync_core::store::{DeviceIdentity, Interaction, PhoneStore, StoreOptions, StoreRole};
use tournee_sync_core::sync::wire::{self, Limits};
use tournee_sync_core::sync::{SyncReport, SyncSession};

/// Where a test's database lives.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh database on the PostgreSQL server of `TEST_DATABASE_URL`.
    Postgres(String),
}

impl Backend {
    /// `sqlite` or `postgres`, for file names and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// SQLite always; PostgreSQL too when `TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        all.push(Backend::Postgres(url));
    }
    all
}

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The server's state (database, keys…).
    pub state: Arc<AppState>,
    /// The database URL, to start another instance on the same data.
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The PostgreSQL server and the database created for this test, dropped at the end.
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// The settings tests run with.
pub fn settings(database_url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        database_url: database_url.to_string(),
        database_pool_size: None,
        no_migrate: false,
        auth: AuthSettings {
            jwt_secret: "test-secret-for-tournee-e2e-at-least-32-bytes".into(),
            jwt_public_key: None,
            jwt_algorithm: "RS256".into(),
            jwt_audience: "tournee".into(),
            jwt_issuer: "tournee-dev".into(),
            insecure_development: false,
        },
        max_body_bytes: 4 * 1024 * 1024,
        import_max_bytes: 64 * 1024 * 1024,
        far_attempt_metres: 150.0,
        document_cache_bytes: 32 * 1024 * 1024,
        sync_concurrency: 8,
        holding_days: 15,
        corroboration: 2,
        // Off: the fixtures' field work has fixed dates, which a scheduled purge would reach
        // one day; the tests of retention turn it on.
        retention_days: 0,
        retention_check_secs: 3600,
        change_log_days: 14,
        require_signatures: false,
        time_zone: "Europe/Paris".into(),
        // Tests drive many clients from 127.0.0.1 as fast as they can: the rate limits are off
        // but where a test turns them on (`guards.rs`).
        guards: GuardSettings {
            rate_per_address: 0,
            rate_per_principal: 0,
            auth_failures_per_minute: 0,
            public_lookups_per_minute: 0,
            ..GuardSettings::default()
        },
        // Webhooks are looked for and retried quickly, so tests wait milliseconds, not seconds.
        webhooks: WebhookSettings {
            poll_ms: 50,
            backoff_base_ms: 20,
            backoff_cap_secs: 1,
            timeout_secs: 2,
            ..WebhookSettings::default()
        },
        // No tile server: the back-office page draws its sketch unless a test gives one.
        map: MapSettings::default(),
        // A directory of its own: beside a SQLite file (`start_configured` puts it in the test's
        // directory), else in the system's; and the scheduled purge of proofs off, as the purge
        // of personal data is.
        proofs: ProofSettings {
            store: match database_url
                .strip_prefix("sqlite://")
                .and_then(|file| std::path::Path::new(file).parent())
            {
                Some(dir) => dir.join("proofs"),
                None => std::env::temp_dir().join(format!(
                    "tournee-e2e-proofs-{}",
                    uuid::Uuid::new_v4().simple()
                )),
            }
            .display()
            .to_string(),
            retention_days: 0,
            ..ProofSettings::default()
        },
    }
}

impl TestServer {
    /// The backend the server runs on (for PostgreSQL, the server the test's database is on).
    pub fn backend(&self) -> Backend {
        match &self.postgres {
            Some((admin, _)) => Backend::Postgres(admin.clone()),
            None => Backend::Sqlite,
        }
    }

    /// Starts a server with the demo town on a fresh database.
    pub async fn start(backend: &Backend) -> Self {
        Self::start_configured(backend, |_| {}, None).await
    }

    /// Starts a server with the demo town on a fresh database, with the tests' settings as
    /// `configure` changes them, on `clock` (the system clock in Europe/Paris when `None`).
    pub async fn start_configured(
        backend: &Backend,
        configure: impl FnOnce(&mut Settings),
        clock: Option<Clock>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("tournee.db").display()),
                None,
            ),
            Backend::Postgres(admin) => {
                let (url, name) = fresh_postgres(admin).await;
                (url, Some((admin.clone(), name)))
            }
        };
        let mut settings = settings(&database_url);
        settings.proofs.store = dir.path().join("proofs").display().to_string();
        configure(&mut settings);
        let clock = clock.unwrap_or_else(|| {
            Clock::system(tournee_server::clock::time_zone(&settings.time_zone).unwrap())
        });
        let state = AppState::with_clock(&settings, clock).await.unwrap();
        let mut server = Self::serve_state(state, &database_url, dir).await;
        server.postgres = postgres;
        demo::seed(&server.state.db, &server.state.clock)
            .await
            .unwrap();
        server
    }

    /// Starts a server on an existing database.
    pub async fn start_on(database_url: &str, dir: tempfile::TempDir) -> Self {
        let state = AppState::new(&settings(database_url)).await.unwrap();
        Self::serve_state(state, database_url, dir).await
    }

    /// Serves a state the test built itself (its own settings or clock) on port 0.
    pub async fn serve_state(
        state: Arc<AppState>,
        database_url: &str,
        dir: tempfile::TempDir,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(launch_with_tcp_listener(state.clone(), listener, async {
            let _ = rx.await;
        }));
        let task = tokio::spawn(async move {
            task.await.unwrap().unwrap();
        });
        Self {
            base,
            state,
            database_url: database_url.into(),
            shutdown: Some(tx),
            task: Some(task),
            postgres: None,
            _dir: dir,
        }
    }

    /// A token for a role.
    pub fn token(&self, role: TokenRole, subject: &str, device: Option<&str>) -> String {
        self.state.keys.mint(subject, role, device, 3600).unwrap()
    }

    /// Stops the server and hands back its files (a SQLite database) and URL, to start it again
    /// on the same data.
    pub async fn stop_keeping_files(mut self) -> (tempfile::TempDir, String) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        if let tournee_server::db::Database::Sqlite(pool) = &self.state.db {
            pool.close().await;
        }
        (self._dir, self.database_url)
    }

    /// Stops the server, waiting for requests in flight.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        if let Some((admin, name)) = self.postgres.take() {
            use sqlx::Connection;
            if let tournee_server::db::Database::Postgres(pool) = &self.state.db {
                pool.close().await;
            }
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// Creates a database of its own for one test on the PostgreSQL server at `admin`; returns its
/// URL and name. The caller drops it with [`drop_postgres`].
pub async fn fresh_postgres(admin: &str) -> (String, String) {
    use sqlx::Connection;
    let name = format!("tournee_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    (format!("{base}/{name}"), name)
}

/// Drops a database made by [`fresh_postgres`], whoever is still connected to it.
pub async fn drop_postgres(admin: &str, name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// The rounds a postman's token gets from `GET /v1/rounds` at `base`.
pub async fn rounds(base: &str, token: &str) -> Vec<RoundManifest> {
    get_json(base, token, "/v1/rounds").await
}

/// `GET base + path` with a bearer token; panics unless it succeeds with JSON of type `T`.
pub async fn get_json<T: serde::de::DeserializeOwned>(base: &str, token: &str, path: &str) -> T {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Registers a phone's signing key with the server (`PUT /v1/devices/signing-key`), as the
/// app does once; the answer's status.
pub async fn enroll_key(
    server: &TestServer,
    token: &str,
    key: &tournee_sync_core::signing::SoftwareKey,
) -> u16 {
    use base64::Engine;
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key().to_sec1());
    reqwest::Client::new()
        .put(format!("{}/v1/devices/signing-key", server.base))
        .bearer_auth(token)
        .json(&serde_json::json!({ "public_key": public }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A phone: its store on disk and the token of its postman (or customer).
pub struct Phone {
    /// The store.
    pub store: PhoneStore,
    /// `Bearer` token.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// A postman's phone with the rounds the server publishes to it.
    pub async fn postman(server: &TestServer, postman: &str, device: &str) -> Self {
        let token = server.token(TokenRole::Postman, postman, Some(device));
        let dir = tempfile::tempdir().unwrap();
        let identity = DeviceIdentity {
            device: device.into(),
            principal: postman.into(),
            role: StoreRole::Postman,
        };
        let mut store =
            PhoneStore::open(dir.path(), identity, StoreOptions { fsync: false }).unwrap();
        let rounds = rounds(&server.base, &token).await;
        store
            .set_manifest(
                rounds
                    .into_iter()
                    .next()
                    .expect("the demo publishes a round"),
            )
            .unwrap();
        Self {
            store,
            token,
            _dir: dir,
        }
    }

    /// A customer's app holding their own documents (`docs` as the customer API will list them).
    pub fn customer(server: &TestServer, customer: &str, manifest: RoundManifest) -> Self {
        let token = server.token(TokenRole::Customer, customer, None);
        let dir = tempfile::tempdir().unwrap();
        let identity = DeviceIdentity {
            device: format!("{customer}-app"),
            principal: customer.into(),
            role: StoreRole::Customer,
        };
        let mut store =
            PhoneStore::open(dir.path(), identity, StoreOptions { fsync: false }).unwrap();
        store.set_manifest(manifest).unwrap();
        Self {
            store,
            token,
            _dir: dir,
        }
    }

    /// A whole sync session over HTTP; panics unless every answer is a success.
    pub async fn sync(&mut self, server: &TestServer) -> SyncReport {
        match self.try_sync(server).await {
            Ok(report) => report,
            Err((status, body)) => panic!("sync answered {status}: {body}"),
        }
    }

    /// A whole sync session over HTTP, abandoned at the first answer that is not a success
    /// (as an app does): that answer's status and body.
    pub async fn try_sync(
        &mut self,
        server: &TestServer,
    ) -> Result<SyncReport, (reqwest::StatusCode, String)> {
        let client = reqwest::Client::new();
        let limits = Limits::default();
        let mut session = SyncSession::new(&mut self.store, limits);
        while let Some(request) = session.next_request().unwrap() {
            let response = client
                .post(format!("{}/v1/sync", server.base))
                .bearer_auth(&self.token)
                .body(wire::encode_request(&request))
                .send()
                .await
                .unwrap();
            if !response.status().is_success() {
                return Err((response.status(), response.text().await.unwrap()));
            }
            let frame = response.bytes().await.unwrap();
            session
                .apply_response(wire::decode_response(&frame, &limits).unwrap())
                .unwrap();
        }
        Ok(session.finish())
    }
}

/// What cust-1's app holds: their delivery point and its two items (the demo's first two).
pub fn customer_view() -> RoundManifest {
    RoundManifest {
        round_id: "customer-view".into(),
        date: "2026-11-23".into(),
        postman: "cust-1".into(),
        device: "cust-1-app".into(),
        stops: vec![Stop {
            order: 1,
            delivery_point: tournee_sync_core::fixtures::delivery_point_id(0),
            items: vec![
                tournee_sync_core::fixtures::s10(0).to_string(),
                tournee_sync_core::fixtures::s10(1).to_string(),
            ],
        }],
    }
}

/// The day `offset` days from today in the tests' service time zone (Europe/Paris), as
/// `YYYY-MM-DD`: what the server calls today on the system clock.
pub fn local_day(offset: i64) -> String {
    let zone = tournee_server::clock::time_zone("Europe/Paris").unwrap();
    tournee_server::clock::Clock::system(zone)
        .today_plus(offset)
        .to_string()
}

/// pm-1's phone, synced, after nobody answered for item 1 (cust-1's) and a notice was left;
/// the attempt as the phone recorded it.
pub async fn after_an_absence(server: &TestServer) -> (Phone, Interaction) {
    let mut phone = Phone::postman(server, "pm-1", "dev-1").await;
    phone.sync(server).await;
    let attempt = phone
        .store
        .record_attempt(
            &tournee_sync_core::fixtures::s10(1),
            &tournee_sync_core::fixtures::absent_attempt("dev-1", "pm-1", 1),
        )
        .unwrap();
    phone.sync(server).await;
    (phone, attempt)
}

/// A `test_server` process; killed (SIGKILL) when dropped, so a failing test leaves none behind.
pub struct ServerProcess {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts the `test_server` binary at `exe` (a test's `env!("CARGO_BIN_EXE_test_server")`)
    /// on `url`, creating the demo town first with `seed`, and waits until it listens.
    pub async fn spawn(exe: &'static str, url: &str, seed: bool) -> Self {
        let url = url.to_string();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(exe);
            command
                .arg(&url)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if seed {
                command.arg("--seed");
            }
            let mut child = command.spawn().expect("start test_server");
            let mut stdout = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let Some(address) = line.trim().strip_prefix("listening on ") else {
                let status = child.wait().unwrap();
                panic!("test_server did not start ({status}); it printed {line:?}");
            };
            ServerProcess {
                base: format!("http://{address}"),
                child: Some(child),
                _stdout: stdout,
            }
        })
        .await
        .unwrap()
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` is SIGKILL on Unix.
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert!(!status.success(), "the server was killed: {status}");
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A partner's webhook receiver (`tests/webhook_receiver.py`, verifying every request with the
/// Standard Webhooks reference library); killed when dropped.
pub struct Receiver {
    child: std::process::Child,
    /// Where it listens.
    pub url: String,
    out: std::path::PathBuf,
    secret_file: std::path::PathBuf,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts `tests/webhook_receiver.py` with its `flags` (e.g. `--fail-every-other`).
    pub fn start(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("deliveries.jsonl");
        let secret_file = dir.path().join("secret");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("webhook_receiver.py");
        let mut child = std::process::Command::new(&python)
            .arg(script)
            .arg("--secret-file")
            .arg(&secret_file)
            .arg("--out")
            .arg(&out)
            .args(flags)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{python} does not run: {e}"));
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut port = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut port).unwrap();
        let port: u16 = port.trim().parse().unwrap_or_else(|_| {
            panic!("the receiver did not start (is standardwebhooks installed? pip install -r tests/requirements.txt): {port:?}")
        });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/hooks/tournee"),
            out,
            secret_file,
            _stdout: stdout,
            _dir: dir,
        }
    }

    /// The secret the receiver verifies with, as the subscription's answer gave it.
    pub fn give_secret(&self, secret: &str) {
        let partial = self.secret_file.with_extension("partial");
        std::fs::write(&partial, secret).unwrap();
        std::fs::rename(partial, &self.secret_file).unwrap();
    }

    /// Every request it got, in order.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The deliveries it acknowledged (204), in order.
    pub fn acknowledged(&self) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["answer"] == 204)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An S3-compatible object store for a test: moto's server mode (`pip install
/// 'moto[server]'`, in `tests/requirements.txt`) on a port of its own; killed when dropped.
pub struct ObjectStoreServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl ObjectStoreServer {
    /// Starts moto's server on port 0 and waits until it says where it listens.
    pub fn start() -> Self {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{python} does not run: {e}"));
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let endpoint = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!(
                    "moto's server did not start (pip install -r tests/requirements.txt): {seen}"
                );
            }
            seen.push_str(&line);
            if let Some(at) = line.find("Running on http://") {
                break line[at + "Running on ".len()..].trim().to_string();
            }
        };
        // Its request log goes on to stderr: read it, or the pipe fills and moto stalls.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Self { child, endpoint }
    }

    /// Creates a bucket; the proof settings that keep files there under `prefix`.
    pub async fn bucket(&self, bucket: &str, prefix: &str) -> ProofSettings {
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{}", created.status());
        ProofSettings {
            store: format!("s3://{bucket}/{prefix}"),
            s3_endpoint: Some(self.endpoint.clone()),
            s3_region: Some("us-east-1".into()),
            s3_access_key_id: Some("testing".into()),
            s3_secret_access_key: Some("testing".into()),
            retention_days: 0,
            ..ProofSettings::default()
        }
    }
}

impl Drop for ObjectStoreServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proof stores the proof tests run against: a directory of the test's own (`None`: the
/// server's default in the test's directory), and a bucket of an S3-compatible server.
pub async fn proof_stores(s3: &ObjectStoreServer) -> Vec<(&'static str, Option<ProofSettings>)> {
    let bucket = format!("proofs-{}", uuid::Uuid::new_v4().simple());
    vec![
        ("directory", None),
        ("s3", Some(s3.bucket(&bucket, "tournee/proofs").await)),
    ]
}

/// Points a test server's `settings` at a proof store of [`proof_stores`] (`None`: the test's
/// own directory, as `start_configured` set it) with files of at most `max_bytes`.
pub fn keep_proofs_in(settings: &mut Settings, store: Option<ProofSettings>, max_bytes: usize) {
    if let Some(store) = store {
        settings.proofs = store;
    }
    settings.proofs.max_bytes = max_bytes;
}

/// cust-1 disputes pm-1's attempt `attempt` on item 1 (the demo's first delivery point) with
/// `comment`; the answer (with the queue entry's `queue_id`).
pub async fn dispute_as_cust_1(
    server: &TestServer,
    attempt: &str,
    comment: &str,
) -> serde_json::Value {
    let customer = server.token(TokenRole::Customer, "cust-1", None);
    reqwest::Client::new()
        .post(format!(
            "{}/v1/customer/items/{}/attempts/{attempt}/dispute",
            server.base,
            tournee_sync_core::fixtures::s10(1)
        ))
        .bearer_auth(&customer)
        .json(&serde_json::json!({ "comment": comment }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs `script` of `tests/browser` with node and `env`; panics unless it succeeds; its last line
/// of output, as JSON.
pub async fn run_browser_script(
    script: &str,
    env: Vec<(&'static str, String)>,
) -> serde_json::Value {
    let mut node = Command::new("node");
    node.arg(script).current_dir(browser_dir()).envs(env);
    let output = tokio::task::spawn_blocking(move || node.output().expect("node runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

/// `tests/browser`: the browser tests' scripts and their `node_modules`.
pub fn browser_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs `tests/browser/install.sh` (a no-op when Chromium and playwright-core are there), so the
/// README's test command works on a fresh machine.
pub fn install_browser() {
    let status = std::process::Command::new("bash")
        .arg(browser_dir().join("install.sh"))
        .status()
        .expect("bash runs");
    assert!(
        status.success(),
        "tests/browser/install.sh failed: the browser test cannot run"
    );
}

/// [`generate_python_bindings`] on a blocking thread, for async tests.
pub async fn python_bindings_in(out: &std::path::Path) -> std::path::PathBuf {
    let out = out.to_owned();
    tokio::task::spawn_blocking(move || generate_python_bindings(&out))
        .await
        .unwrap()
}

/// Generates the mobile bindings into `out` with the documented command
/// (`mobile-ffi/generate-bindings.sh`); the directory of the Python module, for `PYTHONPATH`.
pub fn generate_python_bindings(out: &std::path::Path) -> std::path::PathBuf {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mobile-ffi/generate-bindings.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(out)
        .status()
        .expect("bash runs");
    assert!(status.success(), "generate-bindings.sh failed: {status}");
    out.join("python")
}

/// Runs the Python suite `module` (of `mobile-ffi/tests/python`) with the generated `bindings`
/// against `server`, as pm-1 on dev-1 with `env` besides (`PYTHON` names the interpreter,
/// `python3` by default); panics unless it passes; what it wrote to `results`.
pub async fn run_python_suite(
    bindings: &std::path::Path,
    module: &str,
    server: &TestServer,
    results: &std::path::Path,
    env: &[(&str, String)],
) -> serde_json::Value {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut command = Command::new(&python);
    command
        .args(["-m", "unittest", "-v", module])
        .current_dir(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mobile-ffi/tests/python"),
        )
        .env("PYTHONPATH", bindings)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("TOURNEE_SERVER", &server.base)
        .env(
            "TOURNEE_POSTMAN_TOKEN",
            server.token(TokenRole::Postman, "pm-1", Some("dev-1")),
        )
        .env("TOURNEE_RESULTS", results)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .expect("the suite's thread ends")
        .unwrap_or_else(|e| panic!("{python} does not run: {e}"));
    assert!(
        status.success(),
        "the Python suite {module} failed: {status}"
    );
    let recorded = std::fs::read_to_string(results).expect("the suite writes its results");
    serde_json::from_str(&recorded).expect("the suite's results are JSON")
}

/// A PNG of `width` × `height` RGB pixels, `pixel(x, y)` each: pictures the browser tests can
/// decode and a person can see on their screenshots (map tiles, a doorstep photo). Deflate's
/// stored blocks keep the encoder a few lines long.
pub fn png(width: usize, height: usize, pixel: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(height * (width * 3 + 1));
    for y in 0..height {
        raw.push(0); // no filter
        for x in 0..width {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    for side in [width, height] {
        header.extend_from_slice(&u32::try_from(side).unwrap_or(u32::MAX).to_be_bytes());
    }
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    for (kind, data) in [(b"IHDR", header), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(&data);
        let crc = crc32fast::hash(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}
