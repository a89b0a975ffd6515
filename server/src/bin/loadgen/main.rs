//! Load generator: postmen's phones syncing with a Tournée server over HTTP, in three modes.
//!
//! - `storm` (the default): N devices download their rounds, record one attempt per item
//!   offline, and release every end-of-round sync at the same moment. It reports interactions
//!   reconciled per second, the latency of those syncs, the server's peak memory and — in the
//!   same run — the floor: raw Automerge apply of the same changes plus a raw SQL insert of one
//!   row per interaction.
//! - `steady`: a day of rounds, phones syncing a few interactions at a time. First the capacity,
//!   closed loop; then open loop at fractions of it (syncs sent on schedule whether or not earlier
//!   ones were answered, latency counted from the scheduled time), with latency percentiles and
//!   the achieved rate of each.
//! - `growth`: N simulated days on one database, the server's clock moved a day at a time: each
//!   day rounds published, downloaded, worked and synced (a probe at a fixed rate, the rest as
//!   fast as the server answers), the server's purge waited for; per day the probe's latency,
//!   the floor, the server's memory and the database's bytes per interaction.
//!
//! `cargo run --release -p tournee-server --bin loadgen -- --devices 200 --database-url sqlite:///tmp/load.db`
//! (BENCHMARKS.md gives each mode's command). The server runs as a process of its own.
//!
//! Wall-clock figures drift with the machine; `--server-wrapper "valgrind --tool=callgrind
//! --callgrind-out-file=storm.out"` counts the server's instructions during the storm instead,
//! which repeat to within a fraction of a percent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod growth;
mod locks;
mod measure;
mod server;
mod steady;
mod storm;
mod syncs;
mod town;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Every device's end-of-round sync at once.
    Storm,
    /// Capacity, then syncs at a fixed rate at fractions of it.
    Steady,
    /// Simulated days of rounds on one database.
    Growth,
}

#[derive(Parser)]
#[command(
    about = "Postmen's phones syncing with a Tournée server: a storm, a steady day, or days of growth"
)]
struct Args {
    #[arg(long, value_enum, default_value_t = Mode::Storm)]
    mode: Mode,
    /// Devices (postmen), each with a round of its own.
    #[arg(long, default_value_t = 200)]
    devices: u32,
    /// Items (one attempt each) per device and day.
    #[arg(long, default_value_t = 150)]
    items: u32,
    /// A fresh database: `sqlite:///path/load.db` or `postgres://…/db`.
    #[arg(long)]
    database_url: String,
    /// A command to run the server under, e.g. `valgrind --tool=callgrind
    /// --callgrind-out-file=storm.out`. Under callgrind the counters are zeroed when the storm
    /// starts, so the profile holds the storm alone; the server is stopped with SIGTERM, so
    /// the tool writes its output.
    #[arg(long, value_delimiter = ' ', num_args = 1..)]
    server_wrapper: Vec<String>,
    /// More flags for `tournee-server serve`, e.g. `--document-cache-bytes 33554432
    /// --sync-concurrency 4` (the server's defaults otherwise).
    #[arg(long, value_delimiter = ' ', num_args = 1.., allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Steady and growth: interactions each sync carries (those recorded since the last one).
    #[arg(long, default_value_t = 3)]
    per_sync: usize,
    /// Steady: clients of the closed loop that measures the capacity (growth: that sends the
    /// rest of a day's syncs after the probe).
    #[arg(long, default_value_t = 16)]
    capacity_clients: usize,
    /// Steady: seconds the capacity is measured for.
    #[arg(long, default_value_t = 20)]
    capacity_secs: u64,
    /// Steady: the open-loop rates, as fractions of the measured capacity.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.9")]
    fractions: Vec<f64>,
    /// Steady: seconds each open-loop rate is held.
    #[arg(long, default_value_t = 30)]
    phase_secs: u64,
    /// Growth: simulated days.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Growth: syncs per second, open loop, while a day's phones sync.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Growth: seconds of each day's syncs sent open loop at `--rate` and measured (the probe);
    /// the rest of the day's syncs then go closed loop (`--capacity-clients` clients), so that a
    /// day of national size takes minutes. 0: the whole day open loop at `--rate`.
    #[arg(long, default_value_t = 0)]
    probe_secs: u64,
    /// Growth: the server's retention period (`--retention-days`, its purge checked every 5 s);
    /// each day waits until the purge has archived and anonymised what the period allows, so that
    /// days compressed into minutes measure a database the purge keeps up with. 0: no purge.
    #[arg(long, default_value_t = 7)]
    retention_days: u32,
    /// Growth: days (counted from 1) on which `perf record` samples the server during the probe
    /// (at most 10 s, 499 Hz, DWARF call graphs), written to `--perf-dir`.
    #[arg(long, value_delimiter = ',')]
    perf_days: Vec<u32>,
    /// Growth: where the profiles of `--perf-days` are written.
    #[arg(long, default_value = ".")]
    perf_dir: std::path::PathBuf,
    /// Every device registers a signing key and signs each change it pushes (wire version 4),
    /// so the server verifies one signature per change: run with and without to measure what
    /// verification costs.
    #[arg(long)]
    signed: bool,
    /// Storm: instances of the server on the one database, each sent every `instances`-th sync
    /// (several instances share a PostgreSQL database; SQLite has one writer).
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(server::HOST_SERVER) {
        server::host();
        return;
    }
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            match args.mode {
                Mode::Storm => storm::run(&args).await,
                Mode::Steady => steady::run(&args).await,
                Mode::Growth => growth::run(&args).await,
            }
        });
}

/// Connects to the load's database, and the server's "today" on the system clock.
async fn database_and_today(args: &Args) -> (tournee_server::db::Database, jiff::civil::Date) {
    let db = tournee_server::db::Database::connect(&args.database_url)
        .await
        .expect("database");
    let zone = tournee_server::clock::time_zone(tournee_server::settings::DEFAULT_TIME_ZONE)
        .expect("time zone");
    (db, tournee_server::clock::Clock::system(zone).today())
}

/// Today's rounds published, served, downloaded and worked offline ("addressee absent" on every
/// item): where the storm and the steady day begin.
struct Today {
    db: tournee_server::db::Database,
    server: server::ServerProcess,
    client: reqwest::Client,
    phones: Vec<town::Phone>,
}

async fn today_worked_offline(args: &Args) -> Today {
    let (db, today) = database_and_today(args).await;
    let today = today.to_string();
    let town = args.town();
    town.seed_devices_and_points(&db).await;
    town.publish_rounds(&db, &today, 0).await;
    let server = server::ServerProcess::start(&args.launch(false));
    let client = http_client();
    let phones = download_all(args, &client, &server.base, &today, town::absent).await;
    Today {
        db,
        server,
        client,
        phones,
    }
}

/// Every device's phone downloads its round of `date` and records `attempt(d, i)` on each item.
async fn download_all(
    args: &Args,
    client: &reqwest::Client,
    base: &str,
    date: &str,
    attempt: impl Fn(u32, u32) -> tournee_sync_core::model::Attempt + Copy,
) -> Vec<town::Phone> {
    use futures_util::StreamExt;
    let keys = town::development_keys();
    let downloading = town::progress(u64::from(args.devices), "download + record");
    // A few phones download at once, as they do in the morning; each phone's place is kept.
    let phones = futures_util::stream::iter(0..args.devices)
        .map(|d| {
            let (keys, downloading) = (&keys, &downloading);
            async move {
                let phone = town::Phone::download_and_record(
                    client,
                    base,
                    keys,
                    d,
                    date,
                    attempt,
                    args.signed,
                )
                .await;
                downloading.inc(1);
                phone
            }
        })
        .buffered(DOWNLOADS_AT_ONCE)
        .collect()
        .await;
    downloading.finish();
    phones
}

/// Phones downloading their rounds at once before a storm, a steady day or a day of growth.
const DOWNLOADS_AT_ONCE: usize = 4;

/// An HTTP client that keeps as many connections as the load opens.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .unwrap()
}

impl Args {
    fn town(&self) -> town::Town {
        town::Town {
            devices: self.devices,
            items: self.items,
            signed: self.signed,
        }
    }

    fn launch(&self, movable_clock: bool) -> server::Launch<'_> {
        server::Launch {
            database_url: &self.database_url,
            wrapper: &self.server_wrapper,
            server_args: &self.server_args,
            movable_clock,
        }
    }
}
