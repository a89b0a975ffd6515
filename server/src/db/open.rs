//! Opening a database: which backend a URL names, whether the command may create it, and its
//! migrations, applied one at a time with a progress line each, or required to be applied
//! already. Every failure names its cause and the path or server it concerns.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection;

use super::Database;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a connection to PostgreSQL is awaited, at start-up and from the pool.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Copies an SQLite database into a new file (`$1`), consistent while it is written.
const VACUUM_INTO: &str = "VACUUM INTO $1";

const APPLIED_MIGRATIONS: &str = "SELECT version FROM _sqlx_migrations WHERE success";

/// Settings of every PostgreSQL session, so that no failure holds the others up for long: a
/// statement that runs away, a lock that is not granted, and a session left idle inside a
/// transaction (a client cut off mid-commit, still holding the lock every writer takes) end
/// with an error; keepalives let the server notice a peer that vanished without a word.
const PG_SESSION: [(&str, &str); 6] = [
    ("statement_timeout", "30s"),
    ("lock_timeout", "10s"),
    ("idle_in_transaction_session_timeout", "15s"),
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
];

/// Whether a connection returned to the pool may serve again: its pending rollback flushed, it
/// must be outside any transaction. A commit that failed (SQLite's "database or disk is full"
/// at COMMIT) leaves the driver counting a transaction that its rollback could not end; such
/// a connection would turn every later transaction into a savepoint of one that never commits,
/// holding the write lock. It is closed instead, and the pool opens a fresh one.
///
/// A connection outside any transaction has no rollback pending (one is queued only inside a
/// transaction), so it goes back at once: waiting for a ping first cost every statement run on
/// the pool a round trip more (to PostgreSQL, or to SQLite's worker thread).
async fn still_clean<C: sqlx::Connection>(conn: &mut C) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("closing a database connection left inside a transaction");
    }
    Ok(clean)
}

/// What to do about migrations when opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply the pending ones (`migrate`, and `serve` by default).
    Run,
    /// Refuse a database with migrations pending (`serve --no-migrate`, maintenance commands).
    RequireCurrent,
}

/// How a command opens its database.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Migrations: applied, or required.
    pub migrations: Migrations,
    /// Whether a missing SQLite file may be created (commands that need an existing database
    /// refuse to create an empty one).
    pub create: bool,
    /// Connections in the pool; the backend's default (SQLite 4, PostgreSQL 16) if `None`.
    pub pool_size: Option<u32>,
}

impl Default for OpenOptions {
    /// As the server opens it: created if missing, migrated.
    fn default() -> Self {
        Self {
            migrations: Migrations::Run,
            create: true,
            pool_size: None,
        }
    }
}

impl OpenOptions {
    /// For commands that work on an existing, migrated database.
    pub fn existing() -> Self {
        Self {
            migrations: Migrations::RequireCurrent,
            create: false,
            pool_size: Some(2),
        }
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL names a database this server does not support.
    #[error(
        "{url}: unsupported database URL (use sqlite://PATH, or postgres://USER@HOST/DATABASE)"
    )]
    UnsupportedUrl {
        /// The URL as given (a PostgreSQL password is never in it: those are not refused).
        url: String,
    },
    /// The SQLite file's directory does not exist.
    #[error("{}: cannot create the SQLite database: the directory {} does not exist", path.display(), directory.display())]
    MissingDirectory {
        /// The database file.
        path: PathBuf,
        /// Its directory.
        directory: PathBuf,
    },
    /// The command needs an existing database and there is none.
    #[error("{}: no such database (this command does not create one: run `tournee-server migrate` first)", path.display())]
    MissingDatabase {
        /// The database file.
        path: PathBuf,
    },
    /// Migrations are pending and the command may not apply them.
    #[error("{target}: {count} migration(s) not applied yet, from {first}: run `tournee-server migrate` first")]
    NotMigrated {
        /// The database.
        target: String,
        /// How many are pending.
        count: usize,
        /// The first pending one, `version description`.
        first: String,
    },
    /// The database server did not answer in time.
    #[error("{target}: no answer within {seconds} s")]
    NoAnswer {
        /// The database.
        target: String,
        /// How long it was given.
        seconds: u64,
    },
    /// Connecting failed.
    #[error("{target}: {source}")]
    Connect {
        /// The database (a PostgreSQL URL without its password).
        target: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// A migration failed; those before it are applied.
    #[error("{target}: migration {migration} failed: {source}")]
    Migrate {
        /// The database.
        target: String,
        /// The migration, `version description`.
        migration: String,
        /// What failed.
        source: sqlx::migrate::MigrateError,
    },
    /// A query after the migrations failed.
    #[error("{target}: {source}")]
    Query {
        /// The database.
        target: String,
        /// What the driver said.
        source: sqlx::Error,
    },
}

impl Database {
    /// Opens the database as the server does: created if missing, migrated.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::open(url, OpenOptions::default()).await
    }

    /// Opens the database at `url` as `options` say.
    pub async fn open(url: &str, options: OpenOptions) -> Result<Self, OpenError> {
        let (db, target, migrator) = match Backend::of(url)? {
            Backend::Postgres => open_postgres(url, options).await?,
            Backend::Sqlite => open_sqlite(url, options).await?,
        };
        db.migrate(migrator, options.migrations, &target).await?;
        Ok(db)
    }

    /// Applies the pending migrations one at a time, with a line before and after each, or
    /// refuses a database that has any pending.
    async fn migrate(
        &self,
        migrator: &'static Migrator,
        mode: Migrations,
        target: &str,
    ) -> Result<(), OpenError> {
        if mode == Migrations::RequireCurrent {
            // Read only: a database never migrated has no table of migrations, all are pending.
            let applied: Vec<i64> = match with_pool!(self, pool => {
                sqlx::query_scalar(APPLIED_MIGRATIONS).fetch_all(pool).await
            }) {
                Ok(applied) => applied,
                // The database answered with an error: no table of migrations yet.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(source) => {
                    return Err(OpenError::Query {
                        target: target.to_string(),
                        source,
                    })
                }
            };
            let applied: BTreeSet<i64> = applied.into_iter().collect();
            let mut pending = migrator
                .iter()
                .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version));
            return match pending.next() {
                None => Ok(()),
                Some(first) => Err(OpenError::NotMigrated {
                    target: target.to_string(),
                    count: 1 + pending.count(),
                    first: format!("{} {}", first.version, first.description),
                }),
            };
        }
        let bound_before = self.actors_table_exists().await;
        let result = with_pool!(self, pool => {
            match pool.acquire().await {
                Ok(mut conn) => apply_pending(&mut *conn, migrator, target).await,
                Err(source) => Err(OpenError::Connect { target: target.to_string(), source }),
            }
        });
        result?;
        self.after_migrations(bound_before)
            .await
            .map_err(|source| OpenError::Query {
                target: target.to_string(),
                source,
            })
    }
}

/// The backends a database URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` URLs: an embedded file.
    Sqlite,
    /// `postgres:` or `postgresql:` URLs.
    Postgres,
}

impl Backend {
    /// The backend `url` names, or why it names none.
    pub fn of(url: &str) -> Result<Self, OpenError> {
        match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(OpenError::UnsupportedUrl {
                url: url.to_string(),
            }),
        }
    }
}

/// Why connecting to `target` failed, as an [`OpenError`].
fn unreachable(target: &str) -> impl FnOnce(sqlx::Error) -> OpenError + '_ {
    move |source| OpenError::Connect {
        target: target.to_string(),
        source,
    }
}

/// Connects to PostgreSQL: one connection first, for the real cause when the server cannot be
/// reached (the pool would only say it timed out), then the pool.
async fn open_postgres(
    url: &str,
    options: OpenOptions,
) -> Result<(Database, String, &'static Migrator), OpenError> {
    let connect = PgConnectOptions::from_str(url).map_err(unreachable("the PostgreSQL URL"))?;
    let target = format!(
        "postgres://{}@{}:{}/{}",
        connect.get_username(),
        connect.get_host(),
        connect.get_port(),
        connect.get_database().unwrap_or_default()
    );
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&connect))
        .await
        .map_err(|_| OpenError::NoAnswer {
            target: target.clone(),
            seconds: CONNECT_TIMEOUT.as_secs(),
        })?
        .map_err(unreachable(&target))?;
    let _ = probe.close().await;
    let pool = PgPoolOptions::new()
        // Every acquire reports its wait (the pool-wait histogram, `telemetry`).
        .acquire_time_level(log::LevelFilter::Debug)
        .max_connections(options.pool_size.unwrap_or(16))
        .acquire_timeout(CONNECT_TIMEOUT)
        .after_release(|conn, _| Box::pin(still_clean(conn)))
        .connect_with(connect.options(PG_SESSION))
        .await
        .map_err(unreachable(&target))?;
    Ok((Database::Postgres(pool), target, &POSTGRES_MIGRATIONS))
}

/// Opens a SQLite file, refusing to create it when `options` say so, and naming a missing
/// directory rather than SQLite's "unable to open database file".
async fn open_sqlite(
    url: &str,
    options: OpenOptions,
) -> Result<(Database, String, &'static Migrator), OpenError> {
    let connect = SqliteConnectOptions::from_str(url).map_err(unreachable(url))?;
    let path = connect.get_filename().to_path_buf();
    let target = path.display().to_string();
    let in_memory = target == ":memory:" || url.contains("mode=memory");
    if !in_memory && !path.exists() {
        if !options.create {
            return Err(OpenError::MissingDatabase { path });
        }
        let directory = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !directory.is_dir() {
            return Err(OpenError::MissingDirectory { path, directory });
        }
    }
    let pool = SqlitePoolOptions::new()
        // Every acquire reports its wait (the pool-wait histogram, `telemetry`).
        .acquire_time_level(log::LevelFilter::Debug)
        .max_connections(options.pool_size.unwrap_or(4))
        // A SQLite connection is a file opened in this process: it cannot be lost the way a
        // network connection is, so it is not pinged before every use (PostgreSQL's are, so
        // that a restarted server's dead connections are replaced, not handed out).
        .test_before_acquire(false)
        .after_release(|conn, _| Box::pin(still_clean(conn)))
        .connect_with(
            connect
                .create_if_missing(options.create)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                // 16 MiB of pages per connection (SQLite's default is 2 MiB): bulk imports and
                // news reads then read their indexes from memory, not with a syscall a page.
                .pragma("cache_size", "-16384")
                .foreign_keys(true),
        )
        .await
        .map_err(unreachable(&target))?;
    Ok((Database::Sqlite(pool), target, &SQLITE_MIGRATIONS))
}

/// Applies `migrator`'s pending migrations under its lock, one at a time, each with a line
/// before (so a long one is seen running) and after; an applied migration whose text changed
/// since is refused, as sqlx's own runner does.
async fn apply_pending<C: Migrate>(
    conn: &mut C,
    migrator: &Migrator,
    target: &str,
) -> Result<(), OpenError> {
    let failed = |migration: &str| {
        let migration = migration.to_string();
        move |source: MigrateError| OpenError::Migrate {
            target: target.to_string(),
            migration,
            source,
        }
    };
    conn.lock().await.map_err(failed("(taking the lock)"))?;
    conn.ensure_migrations_table()
        .await
        .map_err(failed("(creating the table of migrations)"))?;
    if let Some(version) = conn.dirty_version().await.map_err(failed("(checking)"))? {
        return Err(failed(&version.to_string())(MigrateError::Dirty(version)));
    }
    let applied: HashMap<i64, Vec<u8>> = conn
        .list_applied_migrations()
        .await
        .map_err(failed("(listing)"))?
        .into_iter()
        .map(|m| (m.version, m.checksum.into_owned()))
        .collect();
    let mut pending = Vec::new();
    for migration in migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        let name = format!("{} {}", migration.version, migration.description);
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != *migration.checksum => {
                return Err(failed(&name)(MigrateError::VersionMismatch(
                    migration.version,
                )))
            }
            Some(_) => {}
            None => pending.push((name, migration)),
        }
    }
    let count = pending.len();
    for (step, (name, migration)) in pending.into_iter().enumerate() {
        let started = Instant::now();
        tracing::info!(
            database = target,
            "migration {}/{count}: applying {name}",
            step + 1
        );
        conn.apply(migration).await.map_err(failed(&name))?;
        tracing::info!(
            database = target,
            "migration {}/{count}: applied {name} in {:.1} s",
            step + 1,
            started.elapsed().as_secs_f64()
        );
    }
    conn.unlock()
        .await
        .map_err(failed("(releasing the lock)"))?;
    Ok(())
}

/// Why a backup was not made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The target exists: a backup never overwrites anything.
    #[error("{}: exists already (a backup never overwrites a file)", .0.display())]
    Exists(PathBuf),
    /// PostgreSQL is backed up with its own tools.
    #[error("PostgreSQL is backed up with its own tools: pg_dump --format=custom --file=FILE DATABASE (see the README, 'Backups')")]
    Postgres,
    /// SQLite failed.
    #[error("{}: {source}", target.display())]
    Sqlite {
        /// The backup file.
        target: PathBuf,
        /// What SQLite said.
        source: sqlx::Error,
    },
}

impl Database {
    /// Writes a consistent copy of a SQLite database to `target` while the server runs
    /// (`VACUUM INTO`: one read transaction, so the copy is the database as of one commit, and
    /// compact). The copy is a complete database: start a server on it to restore. It begins a
    /// history of its own ([`Database::begin_history`]): a server restored from it recognises
    /// the cursors the original issued after the copy, and the phones holding them re-check
    /// what it holds.
    pub async fn backup_to(
        &self,
        target: &std::path::Path,
        now_ms: i64,
    ) -> Result<(), BackupError> {
        if target.exists() {
            return Err(BackupError::Exists(target.to_path_buf()));
        }
        let Database::Sqlite(pool) = self else {
            return Err(BackupError::Postgres);
        };
        let path = target.to_string_lossy().into_owned();
        sqlx::query(VACUUM_INTO)
            .bind(&path)
            .execute(pool)
            .await
            .map_err(|source| BackupError::Sqlite {
                target: target.to_path_buf(),
                source,
            })?;
        let failed = |source| BackupError::Sqlite {
            target: target.to_path_buf(),
            source,
        };
        let copy = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::new().filename(target))
            .await
            .map_err(failed)?;
        let copy = Database::Sqlite(copy);
        let began = copy.begin_history(now_ms).await;
        if let Database::Sqlite(pool) = copy {
            pool.close().await;
        }
        if let Err(source) = began {
            // A copy still in the original's history would not make phones re-check what a
            // server restored from it lost: no copy rather than that one.
            let _ = std::fs::remove_file(target);
            return Err(failed(source));
        }
        Ok(())
    }
}
