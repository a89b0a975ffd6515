//! Measures what a materialised document costs in memory, to calibrate the server's document
//! cache, which weighs documents by their operations and changes (`server/src/documents.rs`).
//!
//! `cargo run --release -p tournee-sync-core --example document_memory [count]` builds `count`
//! documents of each kind of the fixtures' shape (delivery point, item, item with one attempt),
//! each kind in a process of its own, reads resident memory before and after, and prints bytes
//! per document beside the kind's operations and changes.

use tournee_sync_core::automerge::{Automerge, ReadDoc};
use tournee_sync_core::fixtures::{absent_attempt, delivery_point_doc, item_doc};
use tournee_sync_core::operations::record_attempt;

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn measure(name: &str, count: u32, make: impl Fn(u32) -> Automerge) {
    let before = resident_bytes();
    let docs: Vec<Automerge> = (0..count).map(&make).collect();
    let after = resident_bytes();
    let stats = docs[0].stats();
    let saved = docs[0].save().len();
    println!(
        "{name}: {} bytes resident per document; {} ops, {} changes, {saved} bytes saved",
        (after.saturating_sub(before)) / u64::from(count),
        stats.num_ops,
        stats.num_changes,
    );
    drop(docs);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    // Each kind is measured in a process of its own: memory freed by one measurement would
    // otherwise be reused by the next and hide its cost.
    let Some(kind) = args.next() else {
        let me = std::env::current_exe().expect("own path");
        for kind in ["delivery-point", "item", "item-with-attempt"] {
            let status = std::process::Command::new(&me)
                .args([count.to_string(), kind.to_string()])
                .status()
                .expect("measurement process");
            assert!(status.success(), "{kind}: {status}");
        }
        return;
    };
    match kind.as_str() {
        "delivery-point" => measure(&kind, count, |n| delivery_point_doc(n).expect("fixture")),
        "item" => measure(&kind, count, |n| item_doc(n, n / 3).expect("fixture")),
        _ => measure(&kind, count, |n| {
            let mut doc = item_doc(n, n / 3).expect("fixture");
            record_attempt(
                &mut doc,
                &format!("a{n}"),
                &absent_attempt("dev-1", "pm-1", n),
            )
            .expect("attempt");
            doc
        }),
    }
}
