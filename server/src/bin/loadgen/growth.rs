//! Growth: simulated days of rounds on one database. The server runs on a clock the load
//! generator moves a day at a time, so its scheduled purge (`--retention-days`) archives the
//! items delivered before the retention period as it would in service. Each day: rounds
//! published, every phone downloading its round and delivering every item, the syncs sent open
//! loop at `--rate`; then the day's sync latency, the server's memory and the database's size.

use std::time::Duration;

use jiff::ToSpan;
use tournee_server::db::Table;
use tournee_sync_core::fixtures;

use crate::measure::{database_bytes, ms, Latencies};
use crate::server::ServerProcess;
use crate::syncs::Schedule;
use crate::{town, Args};

/// What one simulated day measured.
struct Day {
    latencies: Latencies,
    failed: usize,
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
    let mut server = ServerProcess::start(&args.launch(true));
    let client = crate::http_client();
    let mut days: Vec<Day> = Vec::new();
    // The database before the first day: its delivery points, and the server's own tables.
    let mut bytes_before_day = database_bytes(&db, &args.database_url).await;
    let mut interactions_before_day = 0;
    println!(
        "\nday  interactions  sync p50  sync p99  failed  server RSS  database  bytes/interaction  bytes/interaction that day"
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
        let phones = crate::download_all(args, &client, &server.base, &date, delivered).await;
        let schedule = Schedule::new(&phones, args.per_sync);
        let duration = Duration::from_secs_f64(schedule.len() as f64 / args.rate + 1.0);
        let phase = schedule
            .open_loop(&client, &server.base, args.rate, duration)
            .await;
        let measured = Day {
            rss_kib: server.memory_kib("VmRSS:"),
            database_bytes: database_bytes(&db, &args.database_url).await,
            interactions_so_far: db.count(Table::Attempts).await.unwrap(),
            latencies: phase.latencies,
            failed: phase.failed,
        };
        println!(
            "{:>3}  {:>12}  {:>5.0} ms  {:>5.0} ms  {:>6}  {:>6.0} MiB  {:>4.0} MiB  {:>17.0}  {:>26.0}",
            day + 1,
            measured.interactions_so_far,
            ms(measured.latencies.percentile(0.5)),
            ms(measured.latencies.percentile(0.99)),
            measured.failed,
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
        "last day against the first     sync p50 {:+.0}%, p99 {:+.0}%, server RSS {:+.0}%",
        change(
            ms(first.latencies.percentile(0.5)),
            ms(last.latencies.percentile(0.5))
        ),
        change(
            ms(first.latencies.percentile(0.99)),
            ms(last.latencies.percentile(0.99))
        ),
        change(first.rss_kib as f64, last.rss_kib as f64)
    );
    println!(
        "server peak memory (VmHWM)     {:.0} MiB",
        peak_kib as f64 / 1024.0
    );
}
