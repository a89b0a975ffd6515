//! A silent network partition between two server instances and their PostgreSQL, made by a TCP
//! proxy inside the test that forwards, blackholes (holds every byte, closes nothing) or
//! refuses. While it lasts, requests fail within their deadline instead of hanging; when it
//! heals, both instances answer normally without a restart; every acknowledged interaction is
//! stored once and the phones drain.
//!
//! Runs when `TEST_DATABASE_URL` names a PostgreSQL server.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tournee_e2e::{Backend, Phone, TestServer};
use tournee_server::settings::Settings;
use tournee_server::AppState;
use tournee_sync_core::fixtures;

const PASS: u8 = 0;
const BLACKHOLE: u8 = 1;

/// A TCP proxy to PostgreSQL whose mode the test switches.
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, shared.clone()));
                tokio::spawn(pump(server_read, client_write, shared.clone()));
            }
        });
        Self { port, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Copies bytes one way; while blackholed, holds them (as a partition does) and delivers them
/// when it heals, as TCP's retransmissions would.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: Arc<AtomicU8>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        while mode.load(Ordering::SeqCst) == BLACKHOLE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

fn settings_via(proxy: &Proxy, database: &str) -> Settings {
    let mut settings = tournee_e2e::settings(&format!(
        "postgres://postgres@127.0.0.1:{}/{database}",
        proxy.port
    ));
    // A request may take 5 s in all: a partition costs a client that much, not forever.
    settings.guards.request_timeout_secs = 5;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_partition_to_postgresql_fails_requests_in_time_and_heals_without_a_restart() {
    let Some(Backend::Postgres(admin)) = tournee_e2e::backends().into_iter().nth(1) else {
        return;
    };
    let (url, name) = tournee_e2e::fresh_postgres(&admin).await;
    let upstream = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    let proxy = Proxy::start(upstream).await;
    let seed = AppState::new(&tournee_e2e::settings(&url)).await.unwrap();
    tournee_server::demo::seed(&seed.db, &seed.clock)
        .await
        .unwrap();
    drop(seed);
    let mut instances = Vec::new();
    for _ in 0..2 {
        let state = AppState::new(&settings_via(&proxy, &name)).await.unwrap();
        instances.push(TestServer::serve_state(state, &url, tempfile::tempdir().unwrap()).await);
    }
    let mut phone = Phone::postman(&instances[0], "pm-1", "dev-1").await;
    phone.sync(&instances[0]).await;
    let items: Vec<_> = phone.store.manifest().unwrap().stops[0].items.clone();
    let record = |phone: &mut Phone, n: u32| {
        let item = tournee_sync_core::S10::parse(&items[n as usize % items.len()]).unwrap();
        phone
            .store
            .record_attempt(&item, &fixtures::absent_attempt("dev-1", "pm-1", n))
            .unwrap();
    };

    // The partition: syncs on either instance fail within their deadline, acknowledging
    // nothing; readiness says so within a second.
    proxy.set(BLACKHOLE);
    for (n, server) in instances.iter().enumerate() {
        record(&mut phone, n as u32);
        let pending = phone.store.pending_interactions().len();
        let started = Instant::now();
        let outcome = phone.try_sync(server).await;
        assert!(outcome.is_err(), "a sync through a partition succeeded");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(phone.store.pending_interactions().len(), pending);
        let started = Instant::now();
        let ready = reqwest::get(format!("{}/readyz", server.base))
            .await
            .unwrap();
        assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    // Healed: both instances answer normally without a restart, and the phone drains.
    proxy.set(PASS);
    let healed = Instant::now();
    for (n, server) in instances.iter().enumerate() {
        record(&mut phone, 10 + n as u32);
        loop {
            match phone.try_sync(server).await {
                Ok(_) => break,
                Err((status, body)) => {
                    assert!(
                        healed.elapsed() < Duration::from_secs(30),
                        "still failing 30 s after the partition healed: {status} {body}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    assert!(phone.store.pending_interactions().is_empty());
    let stored: i64 = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM attempts")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(stored, 4, "every attempt stored once");
    for server in instances {
        server.stop().await;
    }
    tournee_e2e::drop_postgres(&admin, &name).await;
}
