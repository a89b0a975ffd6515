//! Measures the server-side validator alone on an end-of-round batch: 150 item documents, one
//! "addressee absent" attempt recorded on each by a phone, each change validated against its
//! stored document as the server does (`validate_claimed`: fork, apply, paths, values, rules).
//!
//! `cargo run --release -p tournee-sync-core --example validate_batch [items] [repeats]` prints
//! microseconds per change. For instruction counts, which this machine repeats exactly:
//! `valgrind --tool=callgrind --toggle-collect='*validate_claimed*' target/release/examples/validate_batch 150 1`.

use std::collections::HashSet;
use std::time::Instant;

use tournee_sync_core::automerge::{ActorId, Automerge, Change};
use tournee_sync_core::fixtures::{absent_attempt, item_doc, s10};
use tournee_sync_core::operations::record_attempt;
use tournee_sync_core::validator::{validate_claimed, Claims, Role, Scope, Sender};
use tournee_sync_core::DocId;

fn main() {
    let mut args = std::env::args().skip(1);
    let items: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(150);
    let repeats: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let phone = ActorId::from(&[7u8; 16][..]);
    let batch: Vec<(DocId, Automerge, Change)> = (0..items)
        .map(|n| {
            let stored = item_doc(n, n / 3).expect("fixture");
            let mut local = stored.fork().with_actor(phone.clone());
            record_attempt(
                &mut local,
                &format!("a{n}"),
                &absent_attempt("dev-1", "pm-1", n),
            )
            .expect("attempt");
            let change = local
                .get_changes(&stored.get_heads())
                .into_iter()
                .next()
                .expect("one change");
            (DocId::item(&s10(n)), stored, change)
        })
        .collect();
    let sender = Sender {
        role: Role::Postman,
        principal: "pm-1".into(),
        device: Some("dev-1".into()),
        scope: Scope::Documents(
            batch
                .iter()
                .map(|(id, _, _)| id.clone())
                .collect::<HashSet<_>>(),
        ),
    };
    let claims = Claims::default();
    let started = Instant::now();
    for _ in 0..repeats {
        for (id, doc, change) in &batch {
            let accepted = validate_claimed(id, doc, vec![change.clone()], &sender, &claims)
                .expect("an honest attempt is accepted");
            assert_eq!(accepted.records.len(), 1);
        }
    }
    let per_change = started.elapsed().as_secs_f64() * 1e6 / f64::from(items * repeats);
    println!("validate one attempt change: {per_change:.1} µs ({items} items × {repeats})");
}
