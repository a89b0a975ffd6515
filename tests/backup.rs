//! The PostgreSQL backup drill (issue #18): `pg_dump -Fc` of a server with field work, restored
//! with `pg_restore` into a fresh database, a server started on it, and the phone syncs: what
//! was acknowledged before the backup is there, what came after is uploaded again by the phone.
//!
//! It fails at the last step (ignored until fixed): the phone's push protocol only finds the
//! server's loss when it pushes a change that depends on what was lost.

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use tournee_e2e::{backends, drop_postgres, fresh_postgres, Backend, Phone, TestServer};
use tournee_server::db::Table;
use tournee_sync_core::fixtures;

/// A database made for the test, dropped whether the test passes or fails.
struct Scratch {
    admin: String,
    name: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Dropped on a thread of its own: a runtime cannot be started inside the test's.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(drop_postgres(&admin, &name));
        })
        .join();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "fails today: a phone with nothing new to push does not upload again what a restored \
            server lost (ARCHITECTURE.md, known limits); run with --ignored"]
async fn a_postgresql_dump_restores_into_a_server_the_phones_bring_up_to_date() {
    let Some(admin) = backends().into_iter().find_map(|b| match b {
        Backend::Postgres(admin) => Some(admin),
        Backend::Sqlite => None,
    }) else {
        eprintln!("TEST_DATABASE_URL not set: the PostgreSQL backup drill needs PostgreSQL");
        return;
    };
    let (restored_url, name) = fresh_postgres(&admin).await;
    let _restored = Scratch {
        admin: admin.clone(),
        name,
    };
    let server = TestServer::start(&Backend::Postgres(admin.clone())).await;
    let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
    phone.sync(&server).await;
    let before = phone
        .store
        .record_attempt(
            &fixtures::s10(1),
            &fixtures::absent_attempt("dev-1", "pm-1", 1),
        )
        .unwrap();
    let report = phone.sync(&server).await;
    assert!(report.acknowledged.iter().any(|i| i.id == before.id));

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("tournee.dump");
    let dump = dump.to_str().unwrap();
    run(
        "pg_dump",
        &["--format=custom", "--file", dump, &server.database_url],
    );

    let after = phone
        .store
        .record_attempt(
            &fixtures::s10(0),
            &fixtures::delivered_attempt("dev-1", "pm-1", 0),
        )
        .unwrap();
    let report = phone.sync(&server).await;
    assert!(report.acknowledged.iter().any(|i| i.id == after.id));
    server.stop().await;

    run(
        "pg_restore",
        &[
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            &restored_url,
            dump,
        ],
    );
    let restored = TestServer::start_on(&restored_url, tempfile::tempdir().unwrap()).await;
    assert_eq!(
        restored.state.db.count(Table::Attempts).await.unwrap(),
        1,
        "the backup holds what was acknowledged before it"
    );
    let report = phone.sync(&restored).await;
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(phone.store.pending_interactions().is_empty());
    assert_eq!(
        restored.state.db.count(Table::Attempts).await.unwrap(),
        2,
        "the attempt acknowledged after the backup was uploaded again"
    );
    let docs = restored
        .state
        .docs
        .load(
            &restored.state.db,
            &tournee_sync_core::DocId::item(&fixtures::s10(0)),
        )
        .await
        .unwrap()
        .unwrap();
    let item = tournee_sync_core::operations::read_item(&docs).unwrap();
    assert_eq!(
        item.attempts.len(),
        1,
        "the re-uploaded attempt is in the document"
    );
    restored.stop().await;
}
