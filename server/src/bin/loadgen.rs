//! Load generator: N postmen's devices end their rounds at once over HTTP.
//!
//! It seeds a town of N rounds (each device 150 items over 50 delivery points, by default) into
//! the database, starts `tournee-server` on it as a separate process, has every device download
//! its round and record one attempt per item offline, then releases every device's end-of-round
//! sync at the same moment. It reports interactions reconciled per second, the distribution of
//! end-of-round sync latency, the server's peak memory, and — in the same run — the floor: raw
//! Automerge apply of the same changes plus a raw SQL insert of one row per interaction.
//!
//! `cargo run --release -p tournee-server --bin loadgen -- --devices 200 --database-url sqlite:///tmp/load.db`
//!
//! Wall-clock figures drift with the machine; `--server-wrapper "valgrind --tool=callgrind
//! --callgrind-out-file=storm.out"` counts the server's instructions during the storm instead,
//! which repeat to within a fraction of a percent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use tournee_server::auth::{Keys, TokenRole};
use tournee_server::db::Database;
use tournee_server::settings::{AuthSettings, DEV_JWT_SECRET};
use tournee_sync_core::automerge::{Automerge, Change, ReadDoc};
use tournee_sync_core::fixtures;
use tournee_sync_core::model::{RoundManifest, Stop};
use tournee_sync_core::operations;
use tournee_sync_core::sync::wire::{
    self, DocRequest, Limits, RequestBody, ResponseBody, SyncRequest,
};
use tournee_sync_core::DocId;

#[derive(Parser)]
#[command(about = "Simulates N devices ending their rounds at once against a Tournée server")]
struct Args {
    /// Devices syncing at once.
    #[arg(long, default_value_t = 200)]
    devices: u32,
    /// Items (one attempt each) per device.
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
}

const ITEMS_PER_POINT: u32 = 3;

struct Device {
    token: String,
    docs: Vec<(DocId, Automerge)>,
    push: Vec<u8>,
    changes: Vec<(DocId, Change)>,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let db = Database::connect(&args.database_url)
        .await
        .expect("database");
    let zone = tournee_server::clock::time_zone(tournee_server::settings::DEFAULT_TIME_ZONE)
        .expect("time zone");
    let today = tournee_server::clock::Clock::system(zone)
        .today()
        .to_string();

    // 1. The town: every device its own round.
    let points_per_device = args.items.div_ceil(ITEMS_PER_POINT);
    let seeding = bar(u64::from(args.devices), "seeding rounds");
    for d in 0..args.devices {
        let (postman, device) = (format!("pm-{d}"), format!("dev-{d}"));
        db.register_device(&device, &postman).await.unwrap();
        let mut stops = Vec::new();
        for k in 0..points_per_device {
            let p = d * points_per_device + k;
            let reference = fixtures::reference_address(p);
            let pin = reference.pin.map(|g| (g.lat, g.lon));
            db.insert_delivery_point(
                &fixtures::delivery_point_id(p),
                None,
                &reference.lines,
                pin,
                1,
            )
            .await
            .unwrap();
            db.insert_document(
                &DocId::delivery_point(&fixtures::delivery_point_id(p)).unwrap(),
                &fixtures::delivery_point_doc(p).unwrap().save(),
            )
            .await
            .unwrap();
            let mut items = Vec::new();
            for i in 0..ITEMS_PER_POINT {
                let n = p * ITEMS_PER_POINT + i;
                if items.len() as u32 + k * ITEMS_PER_POINT >= args.items {
                    break;
                }
                db.insert_item(
                    fixtures::s10(n).as_str(),
                    &fixtures::delivery_point_id(p),
                    None,
                    false,
                    0,
                )
                .await
                .unwrap();
                // Plain items: attempts of the storm are all allowed.
                let doc = operations::new_item(
                    fixtures::server_actor(),
                    &fixtures::s10(n),
                    &fixtures::delivery_point_id(p),
                    Default::default(),
                )
                .unwrap();
                db.insert_document(&DocId::item(&fixtures::s10(n)), &doc.save())
                    .await
                    .unwrap();
                items.push(fixtures::s10(n).to_string());
            }
            stops.push(Stop {
                order: k + 1,
                delivery_point: fixtures::delivery_point_id(p),
                items,
            });
        }
        db.insert_round(&RoundManifest {
            round_id: format!("load-{today}-{d}"),
            date: today.clone(),
            postman,
            device,
            stops,
        })
        .await
        .unwrap();
        seeding.inc(1);
    }
    seeding.finish();

    // 2. The server, as its own process.
    let exe = std::env::current_exe()
        .unwrap()
        .with_file_name("tournee-server");
    let mut command = match args.server_wrapper.split_first() {
        Some((tool, tool_args)) => {
            let mut command = Command::new(tool);
            command.args(tool_args).arg(&exe);
            command
        }
        None => Command::new(&exe),
    };
    let mut server = command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &args.database_url,
            // The storm mints its tokens with the development secret…
            "--insecure-development",
            // …and every device syncs from this one address, as fast as it can.
            "--rate-per-address",
            "0",
            "--rate-per-principal",
            "0",
        ])
        .args(&args.server_args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn,tournee_server=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build it: cargo build --release -p tournee-server)",
                exe.display()
            )
        });
    let pid = server.id();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(at) = line.find("address=") {
            break line[at + 8..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let base = format!("http://{address}");
    let keys = Keys::from_settings(&AuthSettings {
        jwt_secret: DEV_JWT_SECRET.into(),
        jwt_public_key: None,
        jwt_algorithm: "RS256".into(),
        jwt_audience: "tournee".into(),
        jwt_issuer: "tournee-dev".into(),
        insecure_development: true,
    })
    .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .unwrap();
    let limits = Limits::default();

    // 3. Every device downloads its round and records one attempt per item, offline.
    let downloading = bar(u64::from(args.devices), "download + record");
    let mut devices = Vec::new();
    for d in 0..args.devices {
        let token = keys
            .mint(
                &format!("pm-{d}"),
                TokenRole::Postman,
                Some(&format!("dev-{d}")),
                3600,
            )
            .unwrap();
        let rounds: Vec<RoundManifest> = client
            .get(format!("{base}/v1/rounds"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let round = rounds.into_iter().next().expect("a round");
        let items: Vec<DocId> = round
            .documents()
            .unwrap()
            .into_iter()
            .filter(|id| id.as_str().starts_with("item:"))
            .collect();
        let fetch = SyncRequest {
            since: None,
            history: None,
            docs: items
                .iter()
                .map(|id| DocRequest {
                    doc: id.clone(),
                    body: RequestBody::Fetch,
                })
                .collect(),
        };
        let answer = client
            .post(format!("{base}/v1/sync"))
            .bearer_auth(&token)
            .body(wire::encode_request(&fetch))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let answer = wire::decode_response(&answer, &limits).unwrap();
        let mut device = Device {
            token,
            docs: Vec::new(),
            push: Vec::new(),
            changes: Vec::new(),
        };
        let mut entries = Vec::new();
        for entry in answer.docs {
            let ResponseBody::Update { chunks, .. } = entry.body else {
                panic!("fetch refused: {:?}", entry.body)
            };
            let mut doc = Automerge::new();
            for chunk in chunks {
                doc.load_incremental(&chunk).unwrap();
            }
            let mut phone = doc.fork();
            let attempt = fixtures::absent_attempt(
                &format!("dev-{d}"),
                &format!("pm-{d}"),
                entries.len() as u32,
            );
            let id = operations::new_entry_id();
            let hash = operations::record_attempt(&mut phone, &id, &attempt)
                .unwrap()
                .unwrap();
            let change = phone.get_change_by_hash(&hash).unwrap();
            entries.push(DocRequest {
                doc: entry.doc.clone(),
                body: RequestBody::Push {
                    changes: vec![change.raw_bytes().to_vec().into()],
                    extra_heads: Default::default(),
                },
            });
            device.changes.push((entry.doc.clone(), change));
            device.docs.push((entry.doc, doc));
        }
        device.push = wire::encode_request(&SyncRequest {
            since: answer.cursor.into(),
            history: None,
            docs: entries,
        });
        devices.push(device);
        downloading.inc(1);
    }
    downloading.finish();

    // 4. The storm: every device's end-of-round sync released at once.
    let interactions: usize = devices.iter().map(|d| d.changes.len()).sum();
    let upload: usize = devices.iter().map(|d| d.push.len()).sum();
    let storm = bar(u64::from(args.devices), "end-of-round storm");
    let barrier = Arc::new(tokio::sync::Barrier::new(devices.len()));
    if args.server_wrapper.iter().any(|a| a.contains("callgrind")) {
        let zeroed = Command::new("callgrind_control")
            .args(["--zero", &pid.to_string()])
            .stdout(Stdio::null())
            .status();
        assert!(
            zeroed.is_ok_and(|s| s.success()),
            "callgrind_control --zero failed"
        );
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for device in &devices {
        let (client, base, token, frame, barrier, storm) = (
            client.clone(),
            base.clone(),
            device.token.clone(),
            device.push.clone(),
            barrier.clone(),
            storm.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let t = Instant::now();
            let response = client
                .post(format!("{base}/v1/sync"))
                .bearer_auth(token)
                .body(frame)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            let answer =
                wire::decode_response(&response.bytes().await.unwrap(), &Limits::default())
                    .unwrap();
            let acked = answer
                .docs
                .iter()
                .filter(|d| matches!(d.body, ResponseBody::Update { .. }))
                .count();
            storm.inc(1);
            (t.elapsed(), acked)
        }));
    }
    let mut latencies = Vec::new();
    let mut acked = 0;
    for task in tasks {
        let (latency, n) = task.await.unwrap();
        latencies.push(latency);
        acked += n;
    }
    let wall = started.elapsed();
    storm.finish();
    let peak_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    // SIGTERM: the server shuts down gracefully (and a profiling wrapper writes its output).
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = server.kill();
            let _ = server.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stored = db.count(tournee_server::db::Table::Attempts).await.unwrap();

    // 5. The floor, on the same changes and the same database.
    let mut apply = Duration::ZERO;
    for device in &mut devices {
        for ((_, doc), (_, change)) in device.docs.iter_mut().zip(&device.changes) {
            let t = Instant::now();
            doc.apply_changes(vec![change.clone()]).unwrap();
            apply += t.elapsed();
        }
    }
    let insert = raw_insert_floor(&db, interactions).await;
    let floor = (apply + insert).as_secs_f64() / interactions as f64;
    let per_interaction = wall.as_secs_f64() / acked.max(1) as f64;

    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!("\nbackend                        {}", db.backend());
    println!(
        "devices × interactions         {} × {} = {interactions}",
        args.devices, args.items
    );
    println!("acknowledged / stored          {acked} / {stored}");
    println!("storm wall time                {:.2} s", wall.as_secs_f64());
    println!(
        "interactions reconciled / s    {:.0}",
        acked as f64 / wall.as_secs_f64()
    );
    println!(
        "end-of-round sync latency      p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    println!(
        "bytes uploaded per interaction {:.0}",
        upload as f64 / interactions as f64
    );
    println!(
        "server peak memory (VmHWM)     {:.0} MiB",
        peak_kib as f64 / 1024.0
    );
    println!(
        "floor per interaction          {:.1} µs (automerge apply {:.1} µs + SQL insert {:.1} µs)",
        floor * 1e6,
        apply.as_secs_f64() * 1e6 / interactions as f64,
        insert.as_secs_f64() * 1e6 / interactions as f64
    );
    println!(
        "server cost / floor            {:.1}×",
        per_interaction / floor
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One row per interaction into a scratch table, in transactions of 150 (one device's round).
async fn raw_insert_floor(db: &Database, rows: usize) -> Duration {
    /// The same inserts on whichever pool the database has; only the table's types differ.
    macro_rules! timed_inserts {
        ($pool:expr, $create:literal) => {{
            sqlx::query($create).execute($pool).await.unwrap();
            let started = Instant::now();
            for chunk in 0..rows.div_ceil(150) {
                let mut tx = $pool.begin().await.unwrap();
                for i in chunk * 150..((chunk + 1) * 150).min(rows) {
                    sqlx::query("INSERT INTO floor_rows VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(format!("r{i}"))
                        .bind("RR000000005FR")
                        .bind("addressee_absent")
                        .bind(i as i64)
                        .bind(48.85)
                        .bind(2.37)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
            started.elapsed()
        }};
    }
    match db {
        Database::Sqlite(pool) => timed_inserts!(pool, "CREATE TABLE IF NOT EXISTS floor_rows (id TEXT PRIMARY KEY, item_id TEXT, outcome TEXT, at_ms INTEGER, lat REAL, lon REAL)"),
        Database::Postgres(pool) => timed_inserts!(pool, "CREATE TABLE IF NOT EXISTS floor_rows (id TEXT PRIMARY KEY, item_id TEXT, outcome TEXT, at_ms BIGINT, lat DOUBLE PRECISION, lon DOUBLE PRECISION)"),
    }
}
