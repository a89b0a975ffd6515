//! The steady day: phones syncing a few interactions at a time during their rounds. The
//! capacity first (closed loop), then open loop at fractions of it, on one server and database.

use std::time::Duration;

use crate::measure::{Floor, Latencies};
use crate::syncs::{Phase, Schedule};
use crate::{Args, Today};

pub async fn run(args: &Args) {
    let Today {
        db,
        server,
        client,
        mut phones,
    } = crate::today_worked_offline(args).await;
    let schedule = Schedule::new(&phones, args.per_sync);
    eprintln!(
        "{} syncs of {} interactions scheduled; capacity for {} s with {} clients",
        schedule.len(),
        args.per_sync,
        args.capacity_secs,
        args.capacity_clients
    );

    let capacity = schedule
        .closed_loop(
            &client,
            std::slice::from_ref(&server.base),
            args.capacity_clients,
            Duration::from_secs(args.capacity_secs),
        )
        .await;
    let capacity_rate = capacity.answered_per_second();
    let mut open = Vec::new();
    for &fraction in &args.fractions {
        let rate = fraction * capacity_rate;
        eprintln!(
            "open loop at {:.0}% of capacity: {rate:.1} syncs/s for {} s",
            fraction * 100.0,
            args.phase_secs
        );
        let phase = schedule
            .open_loop(
                &client,
                &server.base,
                rate,
                Duration::from_secs(args.phase_secs),
            )
            .await;
        open.push((fraction, rate, phase));
    }
    let peak_kib = server.memory_kib("VmHWM:");
    server.stop();
    let floor = Floor::measure(&db, &mut phones, &schedule.pushed_per_phone()).await;

    println!("\nbackend                        {}", db.backend());
    println!(
        "devices, interactions per sync {}, {} (each device's round: {} items)",
        args.devices, args.per_sync, args.items
    );
    println!(
        "capacity (closed loop, {} clients, {} s)",
        args.capacity_clients, args.capacity_secs
    );
    println!("  syncs answered / s           {capacity_rate:.1}");
    println!(
        "  interactions / s             {:.0}",
        capacity.acknowledged as f64 / capacity.wall.as_secs_f64()
    );
    print_latencies("  latency", &capacity.latencies);
    println!("  failed syncs                 {}", capacity.failed);
    let capacity_cost = capacity.wall.as_secs_f64() / capacity.acknowledged.max(1) as f64;
    println!(
        "  server cost / floor          {:.1}×",
        capacity_cost / floor.per_interaction().as_secs_f64()
    );
    for (fraction, rate, phase) in &open {
        print_open_loop(*fraction, *rate, phase);
    }
    println!(
        "server peak memory (VmHWM)     {:.0} MiB",
        peak_kib as f64 / 1024.0
    );
    println!("floor per interaction          {}", floor.summary());
}

fn print_latencies(what: &str, latencies: &Latencies) {
    println!("{what:<31}{}", latencies.summary());
}

fn print_open_loop(fraction: f64, rate: f64, phase: &Phase) {
    println!(
        "open loop at {:.0}% ({rate:.1} syncs/s scheduled, {} syncs)",
        fraction * 100.0,
        phase.latencies.len()
    );
    println!(
        "  achieved                     {:.1} syncs/s sent, {:.1} answered/s{}",
        phase.latencies.len() as f64 / phase.sending.as_secs_f64(),
        phase.answered_per_second(),
        if phase.ran_out {
            " (schedule ran out: seed more items)"
        } else {
            ""
        }
    );
    print_latencies("  latency from schedule", &phase.latencies);
    println!("  failed syncs                 {}", phase.failed);
}
