//! Growth: simulated days of rounds on one database. The server runs on a clock the load
//! generator moves a day at a time, so its scheduled purge (`--retention-days`) archives the
//! items delivered before the retention period as it would in service. Each day: rounds
//! published, every phone downloading its round and delivering every item, the syncs sent open
//! loop at `--rate` (for `--probe-secs`, the rest closed loop as fast as the server answers);
//! then a wait for the purge to catch up (a day of minutes gives it minutes, not a day), and the
//! day's sync latency, the floor on the day's interactions, the server's memory and the
//! database's size, and on `--perf-days` a profile of the server during the probe.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::ToSpan;
use tournee_server::db::Table;
use tournee_sync_core::fixtures;

use crate::measure::{database_bytes, ms, Floor, Latencies};
use crate::server::{Launch, ServerProcess};
use crate::syncs::Schedule;
use crate::{town, Args};

/// What one simulated day measured.
struct Day {
    /// The probe's syncs (open loop at `--rate`).
    latencies: Latencies,
    failed: usize,
    /// Syncs answered per second by the rest of the day's, closed loop (0 without a probe).
    rest_per_second: f64,
    /// How long the day waited for the server's purge to catch up.
    purge_wait: Duration,
    floor: Floor,
    rss_kib: u64,
    database_bytes: u64,
    interactions_so_far: i64,
}

pub async fn run(args: &Args) {
    let (db, first_day) = crate::database_and_today(args).await;
    let zone = tournee_server::clock::time_zone(tournee_server::settings::DEFAULT_TIME_ZONE)
        .expect("time zone");
    let town = args.town();
    town.seed_devices_and_points(&db).await;
    let mut server_args = args.server_args.clone();
    if args.retention_days > 0 {
        server_args.extend([
            "--retention-days".to_string(),
            args.retention_days.to_string(),
            "--retention-check-secs".to_string(),
            PURGE_CHECK_SECS.to_string(),
        ]);
    }
    let mut server = ServerProcess::start(&Launch {
        server_args: &server_args,
        ..args.launch(true)
    });
    let client = crate::http_client();
    let mut days: Vec<Day> = Vec::new();
    // The database before the first day: its delivery points, and the server's own tables.
    let mut bytes_before_day = database_bytes(&db, &args.database_url).await;
    let mut interactions_before_day = 0;
    println!(
        "\nday  interactions  sync p50  sync p99  failed  rest syncs/s  floor µs  purge s  server RSS  database  bytes/interaction  bytes/interaction that day"
    );
    for day in 0..args.days {
        let date = first_day.checked_add(i64::from(day).days()).unwrap();
        // The day begins at 08:00 in the service's time zone.
        let morning_ms = zone
            .to_timestamp(date.at(8, 0, 0, 0))
            .unwrap()
            .as_millisecond();
        server.set_clock(morning_ms);
        let date = date.to_string();
        town.publish_rounds(&db, &date, day).await;
        let delivered = move |d: u32, i: u32| {
            let mut attempt =
                fixtures::delivered_attempt(&town::device_id(d), &town::postman_id(d), i);
            attempt.recorded_at_ms = morning_ms + i64::from(i) * 60_000;
            attempt
        };
        let mut phones = crate::download_all(args, &client, &server.base, &date, delivered).await;
        let schedule = Schedule::new(&phones, args.per_sync);
        let whole_day = Duration::from_secs_f64(schedule.len() as f64 / args.rate + 1.0);
        let probing = match args.probe_secs {
            0 => whole_day,
            secs => Duration::from_secs(secs).min(whole_day),
        };
        let profile = args
            .perf_days
            .contains(&(day + 1))
            .then(|| Profile::start(server.pid, &args.perf_dir, day + 1, probing));
        let probe = schedule
            .open_loop(&client, &server.base, args.rate, probing)
            .await;
        if let Some(profile) = profile {
            profile.finish();
        }
        // The rest of the day's syncs, as fast as the server answers them.
        let rest = schedule
            .closed_loop(
                &client,
                std::slice::from_ref(&server.base),
                args.capacity_clients,
                Duration::from_secs(24 * 3600),
            )
            .await;
        let floor = Floor::measure(&db, &mut phones, &schedule.pushed_per_phone()).await;
        let purge_wait = match args.retention_days {
            0 => Duration::ZERO,
            days => purge_caught_up(&db, morning_ms - i64::from(days) * DAY_MS).await,
        };
        let measured = Day {
            purge_wait,
            rss_kib: server.memory_kib("VmRSS:"),
            database_bytes: database_bytes(&db, &args.database_url).await,
            interactions_so_far: db.count(Table::Attempts).await.unwrap(),
            latencies: probe.latencies,
            failed: probe.failed + rest.failed,
            rest_per_second: if rest.answered == 0 {
                0.0
            } else {
                rest.answered_per_second()
            },
            floor,
        };
        println!(
            "{:>3}  {:>12}  {:>5.0} ms  {:>5.0} ms  {:>6}  {:>12.1}  {:>8.1}  {:>7.0}  {:>6.0} MiB  {:>4.0} MiB  {:>17.0}  {:>26.0}",
            day + 1,
            measured.interactions_so_far,
            ms(measured.latencies.percentile(0.5)),
            ms(measured.latencies.percentile(0.99)),
            measured.failed,
            measured.rest_per_second,
            measured.floor.per_interaction().as_secs_f64() * 1e6,
            measured.purge_wait.as_secs_f64(),
            measured.rss_kib as f64 / 1024.0,
            measured.database_bytes as f64 / 1048576.0,
            measured.database_bytes as f64 / measured.interactions_so_far.max(1) as f64,
            (measured.database_bytes as f64 - bytes_before_day as f64)
                / (measured.interactions_so_far - interactions_before_day).max(1) as f64
        );
        bytes_before_day = measured.database_bytes;
        interactions_before_day = measured.interactions_so_far;
        days.push(measured);
    }
    let peak_kib = server.memory_kib("VmHWM:");
    server.stop();
    let documents_left = db.count(Table::Documents).await.unwrap();
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return;
    };
    let change = |a: f64, b: f64| (b / a - 1.0) * 100.0;
    println!("\nbackend                        {}", db.backend());
    println!(
        "devices × items a day × days   {} × {} × {}, {} interactions per sync, {} syncs/s",
        args.devices, args.items, args.days, args.per_sync, args.rate
    );
    println!("documents left in the database {documents_left}");
    println!(
        "last day against the first     sync p50 {:+.0}%, p99 {:+.0}%, server RSS {:+.0}%, floor {:+.0}%",
        change(
            ms(first.latencies.percentile(0.5)),
            ms(last.latencies.percentile(0.5))
        ),
        change(
            ms(first.latencies.percentile(0.99)),
            ms(last.latencies.percentile(0.99))
        ),
        change(first.rss_kib as f64, last.rss_kib as f64),
        change(
            first.floor.per_interaction().as_secs_f64(),
            last.floor.per_interaction().as_secs_f64()
        )
    );
    println!(
        "server peak memory (VmHWM)     {:.0} MiB",
        peak_kib as f64 / 1024.0
    );
}

/// Seconds between the server's purges (`--retention-check-secs`).
const PURGE_CHECK_SECS: u64 = 5;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The longest a day waits for the purge: one that has not caught up by then is reported and
/// the run goes on (the server logs why a purge fails).
const PURGE_WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Waits until nothing delivered or recorded before `cutoff_ms` is left for the server's purge to
/// archive or anonymise (counted as `tournee-server purge --dry-run` counts it), at most
/// [`PURGE_WAIT_LIMIT`]; how long it waited.
async fn purge_caught_up(db: &tournee_server::db::Database, cutoff_ms: i64) -> Duration {
    let started = Instant::now();
    loop {
        let left = db
            .purge(cutoff_ms, cutoff_ms, "loadgen", true, |_| {})
            .await
            .unwrap();
        if left.items_archived == 0 && left.attempts_anonymised == 0 {
            return started.elapsed();
        }
        if started.elapsed() >= PURGE_WAIT_LIMIT {
            eprintln!(
                "the purge has not caught up after {} s ({} items to archive, {} attempts to \
                 anonymise): the day is measured without it",
                PURGE_WAIT_LIMIT.as_secs(),
                left.items_archived,
                left.attempts_anonymised
            );
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `perf record` attached to the server for (at most 10 s of) a day's probe.
struct Profile {
    perf: Child,
    output: PathBuf,
}

impl Profile {
    fn start(pid: u32, dir: &Path, day: u32, probing: Duration) -> Profile {
        let output = dir.join(format!("growth-day-{day}.perf.data"));
        let seconds = probing.min(Duration::from_secs(10)).as_secs().max(1);
        let perf = Command::new("perf")
            .args(["record", "-F", "499", "--call-graph", "dwarf", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&output)
            .args(["--", "sleep"])
            .arg(seconds.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf record (linux-perf) could not start");
        Profile { perf, output }
    }

    fn finish(mut self) {
        let status = self.perf.wait().expect("perf record");
        eprintln!(
            "profile {} ({status}): perf report -i {} --no-children",
            self.output.display(),
            self.output.display()
        );
    }
}
