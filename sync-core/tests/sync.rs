//! End-to-end sync between phone stores and an in-memory server, through the wire format.

#![allow(clippy::unwrap_used)]

mod common;

use tournee_sync_core::fixtures;
use tournee_sync_core::operations;
use tournee_sync_core::store::InteractionKind;
use tournee_sync_core::sync::wire::{Limits, RefusalCode};
use tournee_sync_core::sync::{MemoryHost, Need, SyncSession};
use tournee_sync_core::validator::{Role, Scope, Sender};
use tournee_sync_core::DocId;

#[test]
fn a_round_is_downloaded_worked_offline_and_acknowledged() {
    let (mut host, manifest) = common::town(5, 3);
    let dir = tempfile::tempdir().unwrap();
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);

    let (report, _, down) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(phone.document_ids().count(), 20, "5 points and 15 items");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(down > 0);

    // Offline: two attempts and a correction.
    let item = DocId::item(&fixtures::s10(1));
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", 1);
    let recorded = phone
        .commit(&item, InteractionKind::Attempt, |doc| {
            Ok((
                "att-1".into(),
                operations::record_attempt(doc, "att-1", &attempt)?,
            ))
        })
        .unwrap()
        .unwrap();
    let item2 = DocId::item(&fixtures::s10(2));
    let delivered = fixtures::delivered_attempt("dev-1", "pm-1", 2);
    phone
        .commit(&item2, InteractionKind::Attempt, |doc| {
            Ok((
                "att-2".into(),
                operations::record_attempt(doc, "att-2", &delivered)?,
            ))
        })
        .unwrap();
    let dp = DocId::delivery_point(&fixtures::delivery_point_id(0)).unwrap();
    let correction = fixtures::number_correction("dev-1", "pm-1");
    phone
        .commit(&dp, InteractionKind::Correction, |doc| {
            Ok((
                "cor-1".into(),
                operations::propose_correction(doc, "cor-1", &correction)?,
            ))
        })
        .unwrap();
    assert_eq!(phone.pending_interactions().len(), 3);

    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.acknowledged.len(), 3, "{report:?}");
    assert!(report.acknowledged.contains(&recorded));
    assert!(phone.pending_interactions().is_empty());
    let on_server = operations::read_item(host.get(&item).unwrap()).unwrap();
    assert_eq!(on_server.attempts["att-1"], attempt);
    let point = operations::read_delivery_point(host.get(&dp).unwrap()).unwrap();
    assert_eq!(point.corrections["cor-1"], correction);

    // Nothing left: the next session is one poll with no documents in it; the phone's own
    // changes coming back as news change nothing, and are not reported as changes.
    let (report, up, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.exchanges, 1);
    assert!(report.changed_documents.is_empty(), "{report:?}");
    assert!(up < 64, "an idle sync sends {up} bytes");
}

#[test]
fn a_customer_choice_made_while_the_postman_is_offline_reaches_the_phone_and_both_stand() {
    let (mut host, manifest) = common::town(2, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    common::sync(&mut phone, &mut host, &sender);

    let item = DocId::item(&fixtures::s10(1));
    // The customer's app writes a choice on the server's copy.
    let choice = fixtures::redeliver_choice("cust-1", "2026-11-25");
    host.apply_local(&item, |doc| {
        operations::choose_for_item(doc, "ch-1", &choice).unwrap();
    });
    // Meanwhile the postman, offline, records an attempt on the same item.
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", 1);
    phone
        .commit(&item, InteractionKind::Attempt, |doc| {
            Ok((
                "att-1".into(),
                operations::record_attempt(doc, "att-1", &attempt)?,
            ))
        })
        .unwrap();

    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.acknowledged.len(), 1);
    let on_phone = operations::read_item(phone.document(&item).unwrap()).unwrap();
    let on_server = operations::read_item(host.get(&item).unwrap()).unwrap();
    assert_eq!(on_phone, on_server);
    assert_eq!(on_phone.choices["ch-1"], choice);
    assert_eq!(on_phone.attempts["att-1"], attempt);
}

#[test]
fn a_forged_change_is_refused_stored_nowhere_and_pushed_again_only_next_session() {
    let (mut host, manifest) = common::town(1, 1);
    let dir = tempfile::tempdir().unwrap();
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    common::sync(&mut phone, &mut host, &sender);
    let item = DocId::item(&fixtures::s10(0));
    let before = host.get(&item).unwrap().get_heads();

    // The phone itself would refuse to commit a customer's choice; the server sees it as a
    // postman writing a customer's path, whoever built the change.
    let mut forged = host.get(&item).unwrap().fork();
    operations::choose_for_item(
        &mut forged,
        "ch-x",
        &fixtures::redeliver_choice("pm-1", "2026-11-25"),
    )
    .unwrap();
    let change = forged.get_changes(&before).pop().unwrap();
    let customer = Sender {
        role: Role::Customer,
        principal: "pm-1".into(),
        device: None,
        scope: Scope::All,
    };
    // Sanity: the same change from a customer would pass.
    assert!(tournee_sync_core::validator::validate_changes(
        &item,
        host.get(&item).unwrap(),
        vec![change.clone()],
        &customer
    )
    .is_ok());

    let refusal = phone.commit(&item, InteractionKind::Choice, |doc| {
        let hash = operations::choose_for_item(
            doc,
            "ch-x",
            &fixtures::redeliver_choice("pm-1", "2026-11-25"),
        )?;
        Ok(("ch-x".into(), hash))
    });
    assert!(
        refusal.is_err(),
        "the phone must refuse to commit what the server would refuse"
    );
    assert!(phone.pending_interactions().is_empty());

    // A tampered phone slips the change in anyway: the server refuses it whole.
    let acked = phone.sync_state(&item).unwrap().clone();
    phone
        .apply_remote(&item, &[change.raw_bytes().to_vec()], |_| acked)
        .unwrap();
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].1, RefusalCode::Forbidden);
    assert!(
        report.refused[0].2.contains("choices/ch-x"),
        "{}",
        report.refused[0].2
    );
    assert_eq!(
        host.get(&item).unwrap().get_heads(),
        before,
        "nothing of it is stored"
    );
    assert!(matches!(
        phone.sync_state(&item).unwrap().need,
        Need::Refused { .. }
    ));

    // Not again in the same session; at the next one it is pushed once more (a refusal of a
    // change's bytes may come from an alteration on the way, which the next push does not
    // repeat), refused again, and still stored nowhere.
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.exchanges, 1, "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].1, RefusalCode::Forbidden);
    assert_eq!(host.get(&item).unwrap().get_heads(), before);
}

/// Records an absent attempt on item `n`'s document and returns it.
fn record_absent(
    phone: &mut tournee_sync_core::store::PhoneStore,
    n: u32,
) -> tournee_sync_core::store::Interaction {
    let item = DocId::item(&fixtures::s10(n));
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
    let key = format!("att-{n}");
    phone
        .commit(&item, InteractionKind::Attempt, |doc| {
            Ok((
                key.clone(),
                operations::record_attempt(doc, &key, &attempt)?,
            ))
        })
        .unwrap()
        .unwrap()
}

#[test]
fn a_server_restored_from_an_older_backup_gets_back_what_it_acknowledged_since() {
    let (mut host, manifest) = common::town(3, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    common::sync(&mut phone, &mut host, &sender);
    let before = record_absent(&mut phone, 1);
    common::sync(&mut phone, &mut host, &sender);
    let backup = host.clone();

    // Acknowledged after the backup: the phone has nothing pending any more.
    let after = record_absent(&mut phone, 2);
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.acknowledged.contains(&after));
    assert!(phone.pending_interactions().is_empty());

    // The server is restored from the backup; another phone writes on it first.
    let mut host = MemoryHost::restored(&backup);
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = common::phone(other_dir.path(), "dev-2", "pm-1", &manifest);
    let other_sender = common::postman_sender("dev-2", "pm-1", &manifest);
    common::sync(&mut other, &mut host, &other_sender);
    let item3 = DocId::item(&fixtures::s10(3));
    let third = fixtures::delivered_attempt("dev-2", "pm-1", 3);
    other
        .commit(&item3, InteractionKind::Attempt, |doc| {
            Ok((
                "att-3".into(),
                operations::record_attempt(doc, "att-3", &third)?,
            ))
        })
        .unwrap();
    common::sync(&mut other, &mut host, &other_sender);

    // The phone has nothing new to push: its next sync still gives the server back what it
    // lost, and brings what was written on the restored server, whose cursors it never held.
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(!phone.recheck_pending(), "the re-check is finished");
    let item2 = DocId::item(&fixtures::s10(2));
    let on_server = operations::read_item(host.get(&item2).unwrap()).unwrap();
    assert!(on_server.attempts.contains_key("att-2"), "re-uploaded");
    let item1 = DocId::item(&fixtures::s10(1));
    let kept = operations::read_item(host.get(&item1).unwrap()).unwrap();
    assert!(
        kept.attempts.contains_key("att-1"),
        "{before:?} was in the backup"
    );
    let on_phone = operations::read_item(phone.document(&item3).unwrap()).unwrap();
    assert_eq!(on_phone.attempts["att-3"], third, "news of the new history");
    for id in phone.document_ids().cloned().collect::<Vec<_>>() {
        let server = host.get(&id).unwrap();
        assert_eq!(
            phone.document(&id).unwrap().get_heads(),
            server.get_heads(),
            "{id}: phone and server converge"
        );
    }

    // Once re-checked, the phone is back to idle polls.
    let (report, up, _) = common::sync(&mut phone, &mut host, &sender);
    assert_eq!(report.exchanges, 1);
    assert!(up < 64, "an idle sync sends {up} bytes");
}

#[test]
fn a_re_check_cut_off_by_a_crash_is_taken_up_again_when_the_store_reopens() {
    let (mut host, manifest) = common::town(2, 2);
    let dir = tempfile::tempdir().unwrap();
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let backup = {
        let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
        common::sync(&mut phone, &mut host, &sender);
        let backup = host.clone();
        record_absent(&mut phone, 1);
        common::sync(&mut phone, &mut host, &sender);
        backup
    };
    let mut host = MemoryHost::restored(&backup);
    {
        // One exchange only: the answer names the new history; the phone dies before the next.
        let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
        let limits = Limits::default();
        let mut session = SyncSession::new(&mut phone, limits);
        let request = session.next_request().unwrap().unwrap();
        let answer = host.respond(request, &sender, &limits);
        session.apply_response(answer.response).unwrap();
        assert!(phone.recheck_pending());
    }
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    assert!(phone.recheck_pending(), "the re-check outlives the process");
    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(!phone.recheck_pending());
    let item = DocId::item(&fixtures::s10(1));
    let on_server = operations::read_item(host.get(&item).unwrap()).unwrap();
    assert!(on_server.attempts.contains_key("att-1"), "re-uploaded");
}

#[test]
fn a_phone_whose_cursor_is_below_the_pruned_change_log_re_checks_and_misses_nothing() {
    let (mut host, manifest) = common::town(2, 2);
    let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut phone = common::phone(dir.path(), "dev-1", "pm-1", &manifest);
    let mut other = common::phone(other_dir.path(), "dev-2", "pm-1", &manifest);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let other_sender = common::postman_sender("dev-2", "pm-1", &manifest);
    common::sync(&mut phone, &mut host, &sender);
    common::sync(&mut other, &mut host, &other_sender);

    // While the first phone is away, the other records an attempt, and the server prunes the
    // change log past it.
    let item = DocId::item(&fixtures::s10(1));
    let attempt = fixtures::delivered_attempt("dev-2", "pm-1", 1);
    other
        .commit(&item, InteractionKind::Attempt, |doc| {
            Ok((
                "att-9".into(),
                operations::record_attempt(doc, "att-9", &attempt)?,
            ))
        })
        .unwrap();
    common::sync(&mut other, &mut host, &other_sender);
    host.prune_log();

    let (report, _, _) = common::sync(&mut phone, &mut host, &sender);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(!phone.recheck_pending());
    let on_phone = operations::read_item(phone.document(&item).unwrap()).unwrap();
    assert_eq!(
        on_phone.attempts["att-9"], attempt,
        "not lost with the news"
    );
}
