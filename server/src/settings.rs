//! Server settings, from flags or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// The development HS256 secret: public, for laptops and tests only.
pub const DEV_JWT_SECRET: &str = "tournee-development-secret-change-me";

/// The service's time zone unless configured.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Paris";

/// How a server instance runs. Every flag has an environment variable, for containers.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Where to listen.
    #[arg(long, env = "TOURNEE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve `/metrics` on this address only (e.g. an internal interface), not on the public
    /// port, where it then answers 404.
    #[arg(long, env = "TOURNEE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// `sqlite://path.db` (created if missing) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tournee.db")]
    pub database_url: String,
    /// Connections in the database pool (default: 4 on SQLite, 16 on PostgreSQL).
    #[arg(long, env = "TOURNEE_DATABASE_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..))]
    pub database_pool_size: Option<u32>,
    /// Do not apply migrations at start-up: refuse to start on a database that needs any (run
    /// `tournee-server migrate` first, e.g. once per deployment rather than per instance).
    #[arg(long, env = "TOURNEE_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Token settings.
    #[command(flatten)]
    pub auth: AuthSettings,
    /// Largest sync request accepted, in bytes.
    #[arg(long, env = "TOURNEE_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest import accepted over the API, in bytes (the command line on the database has no
    /// limit). An upload that declares more is refused before it is read.
    #[arg(long, env = "TOURNEE_IMPORT_MAX_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub import_max_bytes: usize,
    /// An attempt farther than this from the delivery point's pin is flagged, in metres.
    #[arg(long, env = "TOURNEE_FAR_ATTEMPT_METRES", default_value_t = 150.0)]
    pub far_attempt_metres: f64,
    /// Memory for the document cache, in bytes, as documents weigh materialised (about 20 KB
    /// each). A round's documents that do not fit are read again from the database.
    #[arg(long, env = "TOURNEE_DOCUMENT_CACHE_BYTES", default_value_t = 96 * 1024 * 1024)]
    pub document_cache_bytes: u64,
    /// Syncs prepared and validated at once; more wait their turn, holding only their request,
    /// so the documents syncs hold besides the cache stay bounded.
    #[arg(long, env = "TOURNEE_SYNC_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub sync_concurrency: u32,
    /// How many days an item waits at the office, from its first unsuccessful delivery, when
    /// its notice names no last day; a redelivery date later than that is refused.
    #[arg(long, env = "TOURNEE_HOLDING_DAYS", default_value_t = 15)]
    pub holding_days: u32,
    /// How many postmen must propose the same correction, independently, for it to be approved
    /// without a reviewer; 0 turns automatic approval off.
    #[arg(long, env = "TOURNEE_CORROBORATION", default_value_t = 2)]
    pub corroboration: u32,
    /// Days personal data is kept: older positions, customers' and reviewers' texts and door
    /// codes are anonymised, and delivered items' documents archived, by a run every hour
    /// (`--retention-check-secs`; `tournee-server purge` runs it by hand); 0 turns the scheduled run off.
    #[arg(long, env = "TOURNEE_RETENTION_DAYS", default_value_t = 90)]
    pub retention_days: u32,
    /// Seconds between two scheduled purges.
    #[arg(long, env = "TOURNEE_RETENTION_CHECK_SECS", default_value_t = 3600)]
    pub retention_check_secs: u64,
    /// Days a change its document's snapshot holds stays in the change log (for devices whose
    /// news cursor is older; a device away longer re-checks every document it holds at its next
    /// sync instead); pruned by the compaction task. 0 keeps every change.
    #[arg(long, env = "TOURNEE_CHANGE_LOG_DAYS", default_value_t = 14)]
    pub change_log_days: u32,
    /// Refuse changes from postmen's phones that are not signed by their device's registered key
    /// (once every phone of the fleet runs an app that signs). Without it, a push carrying no
    /// signature at all, from an older app, is accepted as its uploader's, as before.
    #[arg(long, env = "TOURNEE_REQUIRE_SIGNATURES")]
    pub require_signatures: bool,
    /// The service's time zone (IANA name): what "today" is for rounds, holding periods and
    /// customers' dates.
    #[arg(long, env = "TOURNEE_TIME_ZONE", default_value = DEFAULT_TIME_ZONE)]
    pub time_zone: String,
    /// Guards of a server exposed to the internet.
    #[command(flatten)]
    pub guards: GuardSettings,
    /// Webhook deliveries.
    #[command(flatten)]
    pub webhooks: WebhookSettings,
    /// The back-office page's map.
    #[command(flatten)]
    pub map: MapSettings,
    /// Proofs of delivery: where their files are kept, how large, how long.
    #[command(flatten)]
    pub proofs: ProofSettings,
}

/// Where the back-office page's map takes its tiles. There is no default: without a tile
/// server the page draws the attempt against the pin on a sketch, and fetches nothing.
#[derive(Debug, Clone, Default, Args)]
pub struct MapSettings {
    /// A tile server's URL template, `{z}`, `{x}` and `{y}` standing for the zoom and the tile,
    /// e.g. `https://tile.example/{z}/{x}/{y}.png` (one host: no `{s}`). Its use must be allowed
    /// by the tile server's terms; reviewers' browsers fetch the tiles from it directly.
    #[arg(long = "map-tiles-url", env = "TOURNEE_MAP_TILES_URL")]
    pub tiles_url: Option<String>,
    /// The attribution the tile server's terms ask for, shown on the map (plain text), e.g.
    /// `© OpenStreetMap contributors`.
    #[arg(long = "map-tiles-attribution", env = "TOURNEE_MAP_TILES_ATTRIBUTION")]
    pub tiles_attribution: Option<String>,
}

/// Where proofs of delivery (photos, signatures) are kept, how large they may be and for how
/// long.
#[derive(Debug, Clone, Args)]
pub struct ProofSettings {
    /// Where proof files are kept: a directory (created if missing), or `s3://BUCKET/PREFIX` for
    /// an S3-compatible object store shared by several instances (endpoint, region and
    /// credentials from the flags below or the usual `AWS_*` environment variables).
    #[arg(
        id = "proof_store",
        long = "proof-store",
        env = "TOURNEE_PROOF_STORE",
        default_value = "proofs"
    )]
    pub store: String,
    /// The S3-compatible store's endpoint, e.g. `https://s3.fr-par.scw.cloud` (default: AWS,
    /// or `AWS_ENDPOINT_URL`). Plain `http://` is allowed for a store on the local network.
    #[arg(
        id = "proof_s3_endpoint",
        long = "proof-s3-endpoint",
        env = "TOURNEE_PROOF_S3_ENDPOINT"
    )]
    pub s3_endpoint: Option<String>,
    /// The store's region (default: `AWS_REGION`, else `us-east-1`).
    #[arg(
        id = "proof_s3_region",
        long = "proof-s3-region",
        env = "TOURNEE_PROOF_S3_REGION"
    )]
    pub s3_region: Option<String>,
    /// The access key id (default: `AWS_ACCESS_KEY_ID`).
    #[arg(
        id = "proof_s3_access_key_id",
        long = "proof-s3-access-key-id",
        env = "TOURNEE_PROOF_S3_ACCESS_KEY_ID"
    )]
    pub s3_access_key_id: Option<String>,
    /// The secret access key (default: `AWS_SECRET_ACCESS_KEY`).
    #[arg(
        id = "proof_s3_secret_access_key",
        long = "proof-s3-secret-access-key",
        env = "TOURNEE_PROOF_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
    /// The largest proof file accepted, in bytes; a larger one gets 413 `proof_too_large`.
    /// An upload in flight holds up to this much of the upload budget.
    #[arg(id = "proof_max_bytes",
        long = "proof-max-bytes", env = "TOURNEE_PROOF_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_bytes: usize,
    /// Days a proof file is kept after it was stored; then it is deleted (the attempt keeps its
    /// hash) by the scheduled purge and `tournee-server purge`. 0 keeps proofs for ever.
    #[arg(
        id = "proof_retention_days",
        long = "proof-retention-days",
        env = "TOURNEE_PROOF_RETENTION_DAYS",
        default_value_t = 90
    )]
    pub retention_days: u32,
}

impl Default for ProofSettings {
    fn default() -> Self {
        Self {
            store: "proofs".into(),
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            max_bytes: 10 * 1024 * 1024,
            retention_days: 90,
        }
    }
}

/// How webhook deliveries are sent and retried.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Hours a delivery is retried before it is given up and its subscription disabled (a
    /// fraction is allowed).
    #[arg(
        long = "webhook-retry-hours",
        env = "TOURNEE_WEBHOOK_RETRY_HOURS",
        default_value_t = 24.0
    )]
    pub retry_hours: f64,
    /// The first retry's largest delay, in milliseconds; it doubles with every failure (full
    /// jitter: the delay is drawn between 0 and that).
    #[arg(
        long = "webhook-backoff-base-ms",
        env = "TOURNEE_WEBHOOK_BACKOFF_BASE_MS",
        default_value_t = 5_000
    )]
    pub backoff_base_ms: u64,
    /// The largest delay between two attempts, in seconds.
    #[arg(
        long = "webhook-backoff-cap-secs",
        env = "TOURNEE_WEBHOOK_BACKOFF_CAP_SECS",
        default_value_t = 3_600
    )]
    pub backoff_cap_secs: u64,
    /// How often the worker looks for new events and due deliveries, in milliseconds.
    #[arg(
        long = "webhook-poll-ms",
        env = "TOURNEE_WEBHOOK_POLL_MS",
        default_value_t = 1_000
    )]
    pub poll_ms: u64,
    /// Seconds a receiver has to answer a delivery before it counts as failed.
    #[arg(
        long = "webhook-timeout-secs",
        env = "TOURNEE_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub timeout_secs: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_hours: 24.0,
            backoff_base_ms: 5_000,
            backoff_cap_secs: 3_600,
            poll_ms: 1_000,
            timeout_secs: 10,
        }
    }
}

/// Rate limits, timeouts and cross-origin access.
#[derive(Debug, Clone, Args)]
pub struct GuardSettings {
    /// Requests per second one client address may make, in bursts of up to twice that; 0 turns
    /// the limit off.
    #[arg(long, env = "TOURNEE_RATE_PER_ADDRESS", default_value_t = 100)]
    pub rate_per_address: u32,
    /// Requests per second one principal (a token's subject and role) may make, in bursts of up
    /// to three times that; 0 turns the limit off.
    #[arg(long, env = "TOURNEE_RATE_PER_PRINCIPAL", default_value_t = 20)]
    pub rate_per_principal: u32,
    /// Failed authentications one client address may make per minute (in bursts of up to that
    /// many) before it gets 429; 0 turns the limit off.
    #[arg(long, env = "TOURNEE_AUTH_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub auth_failures_per_minute: u32,
    /// Public lookups (tracking, notice cards, pickup points: the routes that take no token)
    /// one client address may make per minute, in bursts of up to that many, so that numbers
    /// cannot be tried in bulk; 0 turns the limit off.
    #[arg(long, env = "TOURNEE_PUBLIC_LOOKUPS_PER_MINUTE", default_value_t = 30)]
    pub public_lookups_per_minute: u32,
    /// Behind a reverse proxy: the header it sets to the client's address (e.g.
    /// `x-forwarded-for`, whose last address is used). Unset: the TCP peer's address. Set it
    /// only when every request comes through that proxy, or clients can choose their address.
    #[arg(long, env = "TOURNEE_CLIENT_ADDRESS_HEADER")]
    pub client_address_header: Option<String>,
    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long, env = "TOURNEE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body before it gets 408.
    #[arg(long, env = "TOURNEE_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Seconds a request may take in all before it gets 503.
    #[arg(long, env = "TOURNEE_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,
    /// Seconds requests in flight get to finish after a shutdown signal.
    #[arg(long, env = "TOURNEE_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
    /// Bytes that request bodies in flight may hold together; a request that finds them spent
    /// waits up to 2 s, then gets 503 with Retry-After.
    #[arg(long, env = "TOURNEE_UPLOAD_BUDGET_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub upload_budget_bytes: usize,
    /// Origins whose pages may call the API from a browser (CORS), comma separated, e.g.
    /// `https://suivi.example.fr`. None by default: cross-origin calls are refused.
    #[arg(long, env = "TOURNEE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            rate_per_address: 100,
            rate_per_principal: 20,
            auth_failures_per_minute: 10,
            public_lookups_per_minute: 30,
            client_address_header: None,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            request_timeout_secs: 60,
            shutdown_grace_secs: 20,
            upload_budget_bytes: 64 * 1024 * 1024,
            cors_origins: Vec::new(),
        }
    }
}

/// How tokens are checked (and, for development, minted).
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// HS256 shared secret. The development default is public: set your own outside a laptop.
    #[arg(
        long,
        env = "TOURNEE_JWT_SECRET",
        default_value = DEV_JWT_SECRET,
        hide_env_values = true
    )]
    pub jwt_secret: String,
    /// A PEM public key (RS256, ES256 or EdDSA, per `--jwt-algorithm`) to verify tokens issued by
    /// an identity provider; when set, HS256 is not accepted.
    #[arg(long, env = "TOURNEE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// The algorithm of `--jwt-public-key`.
    #[arg(long, env = "TOURNEE_JWT_ALGORITHM", default_value = "RS256")]
    pub jwt_algorithm: String,
    /// The audience tokens must name.
    #[arg(long, env = "TOURNEE_JWT_AUDIENCE", default_value = "tournee")]
    pub jwt_audience: String,
    /// The issuer tokens must name.
    #[arg(long, env = "TOURNEE_JWT_ISSUER", default_value = "tournee-dev")]
    pub jwt_issuer: String,
    /// Accept the public development secret, or a secret shorter than 32 bytes. Anyone who
    /// knows the secret can mint any token, the back office's included: for a laptop only.
    /// `serve --demo` implies it.
    #[arg(long, env = "TOURNEE_INSECURE_DEVELOPMENT")]
    pub insecure_development: bool,
}

/// The shortest HS256 secret accepted outside development: 256 bits, as RFC 7518 §3.2 asks.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
