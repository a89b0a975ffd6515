//! The storm: every device's end-of-round sync released at once (issue #3's benchmark).

use std::process::{Command, Stdio};
use std::time::Duration;

use tournee_server::db::Table;

use crate::measure::{ms, Floor};
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
    let phase = storm
        .closed_loop(
            &client,
            &server.base,
            storm.len(),
            Duration::from_secs(24 * 3600),
        )
        .await;
    let peak_kib = server.memory_kib("VmHWM:");
    server.stop();
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
    println!("floor per interaction          {}", floor.summary());
    println!(
        "server cost / floor            {:.1}×",
        per_interaction / floor.per_interaction().as_secs_f64()
    );
}
