//! Retention inside `serve` (issue #18): the scheduled purge archives delivered items past the
//! retention period, and their documents are then as unknown to phones and customers' apps as
//! documents that never existed, while their central rows still answer.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use tournee_e2e::{backends, customer_view, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_sync_core::fixtures;
use tournee_sync_core::sync::wire::RefusalCode;
use tournee_sync_core::DocId;

async fn archived(server: &TestServer, s10: &str) -> bool {
    use tournee_server::db::Database;
    let sql = "SELECT COUNT(*) FROM items WHERE id = $1 AND archived_ms IS NOT NULL";
    let n: i64 = match &server.state.db {
        Database::Sqlite(pool) => sqlx::query_scalar(sql).bind(s10).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(sql).bind(s10).fetch_one(pool).await,
    }
    .unwrap();
    n == 1
}

#[tokio::test]
async fn the_scheduled_purge_archives_delivered_items_and_their_documents_become_unknown() {
    for backend in backends() {
        // The fixtures' field work is dated days ago: a retention of one day reaches it.
        let server = TestServer::start_configured(
            &backend,
            |s| {
                s.retention_days = 1;
                s.retention_check_secs = 1;
            },
            None,
        )
        .await;
        let delivered = fixtures::s10(0);
        let absent = fixtures::s10(1);
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        phone
            .store
            .record_attempt(&delivered, &fixtures::delivered_attempt("dev-1", "pm-1", 0))
            .unwrap();
        phone
            .store
            .record_attempt(&absent, &fixtures::absent_attempt("dev-1", "pm-1", 1))
            .unwrap();
        let report = phone.sync(&server).await;
        assert!(
            report.refused.is_empty(),
            "{backend:?}: {:?}",
            report.refused
        );
        // Its document was in the cache: the sync loaded and wrote it.
        let mut waited = 0;
        while !archived(&server, delivered.as_str()).await {
            assert!(waited < 100, "{backend:?}: not archived within 10 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        assert!(
            !archived(&server, absent.as_str()).await,
            "{backend:?}: not finished"
        );

        // A phone and a customer's app asking for it now hear what they would of a document
        // that never existed; the item still out stays theirs.
        let item = DocId::parse(&format!("item:{delivered}")).unwrap();
        let unknown = |refused: &[(DocId, RefusalCode, String)]| {
            refused.iter().any(|(id, code, message)| {
                id == &item
                    && *code == RefusalCode::UnknownDocument
                    && message == &format!("{item} does not exist")
            })
        };
        let mut fresh = Phone::postman(&server, "pm-1", "dev-1").await;
        let report = fresh.sync(&server).await;
        assert!(
            unknown(&report.refused),
            "{backend:?}: {:?}",
            report.refused
        );
        assert_eq!(report.refused.len(), 1, "{backend:?}: {:?}", report.refused);
        let mut app = Phone::customer(&server, "cust-1", customer_view());
        let report = app.sync(&server).await;
        assert!(
            unknown(&report.refused),
            "{backend:?}: {:?}",
            report.refused
        );
        assert_eq!(report.refused.len(), 1, "{backend:?}: {:?}", report.refused);

        // The central rows stay: the customer still sees the item delivered.
        let token = server.token(TokenRole::Customer, "cust-1", None);
        let item: serde_json::Value = tournee_e2e::get_json(
            &server.base,
            &token,
            &format!("/v1/customer/items/{delivered}"),
        )
        .await;
        assert_eq!(item["status_code"], "EMI", "{backend:?}: {item}");
        server.stop().await;
    }
}
