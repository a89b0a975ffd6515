//! The storm: every device's end-of-round sync released at once (issue #3's benchmark).

use std::process::{Command, Stdio};
use std::time::Duration;

use tournee_server::db::Table;

use crate::locks;
use crate::measure::{ms, Floor};
use crate::server::ServerProcess;
use crate::syncs::Schedule;
use crate::{Args, Today};

pub async fn run(args: &Args) {
    let Today {
        db,
        server,
        client,
        mut phones,
    } = crate::today_worked_offline(args).await;

    let interactions: usize = phones.iter().map(|p| p.pushes.len()).sum();
    let upload: usize = phones
        .iter()
        .map(|p| {
            tournee_sync_core::sync::wire::encode_request(
                &tournee_sync_core::sync::wire::SyncRequest {
                    since: p.since,
                    history: p.history,
                    docs: p.pushes.clone(),
                },
            )
            .len()
        })
        .sum();
    // More instances of the server on the same database, if asked for.
    let others: Vec<ServerProcess> = (1..args.instances.max(1))
        .map(|_| ServerProcess::start(&args.launch(false)))
        .collect();
    let bases: Vec<String> = std::iter::once(server.base.clone())
        .chain(others.iter().map(|o| o.base.clone()))
        .collect();
    // One sync per device carrying its whole round, all sent at once.
    let storm = Schedule::new(&phones, args.items as usize);
    if args.server_wrapper.iter().any(|a| a.contains("callgrind")) {
        let zeroed = Command::new("callgrind_control")
            .args(["--zero", &server.pid.to_string()])
            .stdout(Stdio::null())
            .status();
        assert!(
            zeroed.is_ok_and(|s| s.success()),
            "callgrind_control --zero failed"
        );
    }
    let sampler = locks::LockSampler::start(&args.database_url).await;
    let phase = storm
        .closed_loop(&client, &bases, storm.len(), Duration::from_secs(24 * 3600))
        .await;
    let lock_waits = match sampler {
        Some(sampler) => Some(sampler.stop().await),
        None => None,
    };
    let peak_kib = server.memory_kib("VmHWM:");
    let others_peak_kib: Vec<u64> = others.iter().map(|o| o.memory_kib("VmHWM:")).collect();
    server.stop();
    for other in others {
        other.stop();
    }
    assert_eq!(phase.failed, 0, "syncs of the storm failed");
    let stored = db.count(Table::Attempts).await.unwrap();
    let floor = Floor::measure(&db, &mut phones, &storm.pushed_per_phone()).await;
    let acked = phase.acknowledged;
    let wall = phase.wall;
    let per_interaction = wall.as_secs_f64() / acked.max(1) as f64;

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
        ms(phase.latencies.percentile(0.50)),
        ms(phase.latencies.percentile(0.99)),
        ms(phase.latencies.percentile(1.0))
    );
    println!(
        "bytes uploaded per interaction {:.0}",
        upload as f64 / interactions as f64
    );
    println!(
        "server peak memory (VmHWM)     {:.0} MiB",
        peak_kib as f64 / 1024.0
    );
    for (n, kib) in others_peak_kib.iter().enumerate() {
        println!(
            "instance {} peak memory        {:.0} MiB",
            n + 2,
            *kib as f64 / 1024.0
        );
    }
    if let Some(waits) = lock_waits {
        println!("lock waits (PostgreSQL)        {}", waits.summary());
    }
    println!("floor per interaction          {}", floor.summary());
    println!(
        "server cost / floor            {:.1}×",
        per_interaction / floor.per_interaction().as_secs_f64()
    );
}
