//! The backup drills (issue #18): a server with field work is backed up (SQLite: `backup_to`,
//! what `tournee-server backup` runs, while the server runs; PostgreSQL: `pg_dump -Fc`, restored
//! with `pg_restore` into a fresh database), the phone goes on working and syncing, the server
//! is stopped and restored from the backup, a server starts on it, and the phone syncs: what was
//! acknowledged before the backup is there, what came after is uploaded again by the phone,
//! though it has nothing new to push (the restored server answers in a history of its own, and
//! the phone re-checks every document it holds). The phone signs its changes, and the customer's
//! choice the server wrote after the backup comes back too, signed by the server's own key.

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use std::sync::Arc;

use serde_json::json;
use tournee_e2e::{
    backends, drop_postgres, enroll_key, fresh_postgres, local_day, Backend, Phone, TestServer,
};
use tournee_server::auth::TokenRole;
use tournee_server::db::Table;
use tournee_sync_core::fixtures;
use tournee_sync_core::signing::SoftwareKey;

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

#[tokio::test]
async fn a_backup_restores_into_a_server_the_phones_bring_up_to_date() {
    for backend in backends() {
        drill(&backend).await;
    }
}

/// Where a backup went, and what restores it.
enum Backup {
    Sqlite(tempfile::TempDir),
    Postgres {
        dump: tempfile::TempDir,
        admin: String,
    },
}

impl Backup {
    async fn take(server: &TestServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match server.backend() {
            Backend::Sqlite => {
                let now = jiff::Timestamp::now().as_millisecond();
                server
                    .state
                    .db
                    .backup_to(&dir.path().join("tournee.db"), now)
                    .await
                    .unwrap();
                Backup::Sqlite(dir)
            }
            Backend::Postgres(admin) => {
                let dump = dir.path().join("tournee.dump");
                run(
                    "pg_dump",
                    &[
                        "--format=custom",
                        "--file",
                        dump.to_str().unwrap(),
                        &server.database_url,
                    ],
                );
                Backup::Postgres { dump: dir, admin }
            }
        }
    }

    /// Starts a server on the restored backup (and the scratch database to drop after).
    async fn restore(self) -> (TestServer, Option<Scratch>) {
        match self {
            Backup::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("tournee.db").display());
                (TestServer::start_on(&url, dir).await, None)
            }
            Backup::Postgres { dump, admin } => {
                let (url, name) = fresh_postgres(&admin).await;
                let scratch = Scratch { admin, name };
                let file = dump.path().join("tournee.dump");
                run(
                    "pg_restore",
                    &[
                        "--no-owner",
                        "--exit-on-error",
                        "--dbname",
                        &url,
                        file.to_str().unwrap(),
                    ],
                );
                (
                    TestServer::start_on(&url, tempfile::tempdir().unwrap()).await,
                    Some(scratch),
                )
            }
        }
    }
}

async fn drill(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
    let key = SoftwareKey::generate();
    assert_eq!(enroll_key(&server, &phone.token, &key).await, 201);
    phone.store.set_signer(Arc::new(key));
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

    let backup = Backup::take(&server).await;

    let after = phone
        .store
        .record_attempt(
            &fixtures::s10(0),
            &fixtures::delivered_attempt("dev-1", "pm-1", 0),
        )
        .unwrap();
    let report = phone.sync(&server).await;
    assert!(report.acknowledged.iter().any(|i| i.id == after.id));
    assert!(phone.store.pending_interactions().is_empty());
    // The server writes the customer's choice after the backup; the phone receives it.
    let choice = reqwest::Client::new()
        .post(format!(
            "{}/v1/customer/items/{}/choice",
            server.base,
            fixtures::s10(1)
        ))
        .bearer_auth(server.token(TokenRole::Customer, "cust-1", None))
        .json(&json!({ "kind": "redeliver_on", "date": local_day(2) }))
        .send()
        .await
        .unwrap();
    assert_eq!(choice.status(), 201, "{}", choice.text().await.unwrap());
    let report = phone.sync(&server).await;
    assert!(report
        .changed_documents
        .contains(&tournee_sync_core::DocId::item(&fixtures::s10(1))));
    server.stop().await;

    let (restored, _scratch) = backup.restore().await;
    assert_eq!(
        restored.state.db.count(Table::Attempts).await.unwrap(),
        1,
        "{backend:?}: the backup holds what was acknowledged before it"
    );
    let report = phone.sync(&restored).await;
    assert!(
        report.refused.is_empty(),
        "{backend:?}: {:?}",
        report.refused
    );
    assert!(phone.store.pending_interactions().is_empty());
    assert!(!phone.store.recheck_pending(), "{backend:?}");
    assert_eq!(
        restored.state.db.count(Table::Attempts).await.unwrap(),
        2,
        "{backend:?}: the attempt acknowledged after the backup was uploaded again"
    );
    assert_eq!(
        restored.state.db.count(Table::Choices).await.unwrap(),
        1,
        "{backend:?}: the choice the server wrote after the backup came back from the phone"
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
        "{backend:?}: the re-uploaded attempt is in the document"
    );
    // Re-checked once: the next sync is an idle poll again.
    let report = phone.sync(&restored).await;
    assert_eq!(report.exchanges, 1, "{backend:?}");
    restored.stop().await;
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
