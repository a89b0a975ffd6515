//! Server settings, from flags or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// The development HS256 secret: public, for laptops and tests only.
pub const DEV_JWT_SECRET: &str = "tournee-development-secret-change-me";

/// How a server instance runs. Every flag has an environment variable, for containers.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Where to listen.
    #[arg(long, env = "TOURNEE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// `sqlite://path.db` (created if missing) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tournee.db")]
    pub database_url: String,
    /// Token settings.
    #[command(flatten)]
    pub auth: AuthSettings,
    /// Largest sync request accepted, in bytes.
    #[arg(long, env = "TOURNEE_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// An attempt farther than this from the delivery point's pin is flagged, in metres.
    #[arg(long, env = "TOURNEE_FAR_ATTEMPT_METRES", default_value_t = 150.0)]
    pub far_attempt_metres: f64,
    /// Documents kept in memory.
    #[arg(long, env = "TOURNEE_DOCUMENT_CACHE", default_value_t = 20_000)]
    pub document_cache: usize,
    /// How many days an item waits at the office, from its first unsuccessful delivery, when
    /// its notice names no last day; a redelivery date later than that is refused.
    #[arg(long, env = "TOURNEE_HOLDING_DAYS", default_value_t = 15)]
    pub holding_days: u32,
    /// How many postmen must propose the same correction, independently, for it to be approved
    /// without a reviewer; 0 turns automatic approval off.
    #[arg(long, env = "TOURNEE_CORROBORATION", default_value_t = 2)]
    pub corroboration: u32,
}

/// How tokens are checked (and, for development, minted).
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// HS256 shared secret. The development default is public: set your own outside a laptop.
    #[arg(
        long,
        env = "TOURNEE_JWT_SECRET",
        default_value = "tournee-development-secret-change-me"
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
}
