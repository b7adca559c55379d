//! Runs each repository test against SQLite (a temp file) and PostgreSQL (a fresh
//! database per test on the local server), so every test body is written once.
//!
//! PostgreSQL: `SWITCHBOARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`)
//! names the server; each test creates `sb_test_<random>` through the `postgres`
//! database and drops it afterwards, even when the test fails. An unreachable server
//! fails the test, unless `SWITCHBOARD_TEST_SKIP_PG=1` is set, which skips it with a
//! note on stderr.

// Shared by several test binaries; each uses a different subset.
#![allow(dead_code)]

use std::future::Future;
use std::panic::resume_unwind;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use switchboard_store::Store;

/// The secret key every test store uses.
pub const TEST_KEY: [u8; 32] = *b"switchboard-test-secret-key-0001";

/// What a test body gets.
pub struct Ctx {
    /// The store under test.
    pub store: Store,
    /// Its database URL, for tests that inspect raw rows or reconnect.
    pub url: String,
}

async fn run_body<F, Fut>(store: Store, url: String, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let closer = store.clone();
    // Run the body as its own task so a failing assertion still lets us clean up.
    let outcome = tokio::spawn(body(Ctx { store, url })).await;
    closer.close().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

pub async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::connect(&url, TEST_KEY)
        .await
        .expect("connect sqlite");
    run_body(store, url, body).await;
    drop(dir);
}

pub async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server = std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let server = server.trim_end_matches('/').to_owned();
    let mut admin = match PgConnection::connect(&format!("{server}/postgres")).await {
        Ok(conn) => conn,
        Err(e) if std::env::var("SWITCHBOARD_TEST_SKIP_PG").as_deref() == Ok("1") => {
            eprintln!(
                "note: PostgreSQL at {server} unreachable ({e}); skipped because SWITCHBOARD_TEST_SKIP_PG=1"
            );
            return;
        }
        Err(e) => panic!(
            "PostgreSQL at {server} is unreachable: {e}\n\
             start it, point SWITCHBOARD_TEST_PG_URL at one, or set SWITCHBOARD_TEST_SKIP_PG=1 to skip"
        ),
    };
    let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = format!("{server}/{name}");
    let outcome = tokio::spawn(async move {
        let store = Store::connect(&url, TEST_KEY)
            .await
            .expect("connect postgres");
        run_body(store, url, body).await;
    })
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("drop test database");
    let _ = admin.close().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// Declares, for each named `async fn name(ctx: Ctx)` in scope, a module `name` with
/// two tests, `sqlite` and `postgres`, running that body on each backend:
///
/// ```ignore
/// async fn merge_then_unmerge_restores_exactly(ctx: Ctx) { … }
/// store_tests!(merge_then_unmerge_restores_exactly);
/// ```
///
/// Test bodies run on a two-thread runtime; `store_tests!(current_thread: name, …)`
/// runs them on a single-threaded one (for tests that need deterministic scheduling).
#[macro_export]
macro_rules! store_tests {
    (@one $flavor:tt $name:ident) => {
        mod $name {
            #[tokio::test $flavor]
            async fn sqlite() {
                $crate::common::on_sqlite(super::$name).await;
            }

            #[tokio::test $flavor]
            async fn postgres() {
                $crate::common::on_postgres(super::$name).await;
            }
        }
    };
    (current_thread: $($name:ident),* $(,)?) => {
        $( $crate::store_tests!(@one (flavor = "current_thread") $name); )*
    };
    ($($name:ident),* $(,)?) => {
        $( $crate::store_tests!(@one (flavor = "multi_thread", worker_threads = 2) $name); )*
    };
}

/// Runs one SQL statement on the test database behind the store's back (to inspect or
/// sabotage raw rows).
pub async fn raw_execute(url: &str, sql: String) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("raw connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .expect("raw statement");
    pool.close().await;
}
