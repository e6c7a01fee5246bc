//! Test databases: each test owns one, so tests run in parallel.

use std::sync::Arc;

use socket_hub::store::{self, Store};

/// PostgreSQL server the tests create their databases on.
fn admin_url() -> String {
    std::env::var("SOCKET_HUB_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

/// A store backend plus what it takes to open more stores on the same data (another
/// "instance") and to clean up.
pub struct Backend {
    pub url: String,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg_database: Option<String>,
}

impl Backend {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = store::connect(&url).await.expect("sqlite opens");
        Self {
            url,
            store,
            _dir: Some(dir),
            pg_database: None,
        }
    }

    /// A fresh database on the local PostgreSQL. Fails (never skips) when PostgreSQL is
    /// not reachable: `.ci/run` starts it.
    pub async fn postgres() -> Self {
        let name = format!("sockethub_test_{:016x}", rand::random::<u64>());
        let admin = admin_url();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required at {admin} (start it, or set SOCKET_HUB_TEST_PG): {e}"
                )
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = database_url(&admin, &name);
        let store = store::connect(&url).await.expect("postgres opens");
        Self {
            url,
            store,
            _dir: None,
            pg_database: Some(name),
        }
    }

    /// Another store on the same data, as a second server instance would have.
    pub async fn another_instance(&self) -> Arc<dyn Store> {
        store::connect(&self.url)
            .await
            .expect("second instance opens")
    }

    /// Drops the test database (PostgreSQL); the SQLite temp dir goes with `self`.
    pub async fn cleanup(self) {
        let Some(name) = self.pg_database else {
            return;
        };
        drop(self.store);
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url())
            .await
            .expect("admin connection");
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

/// `admin` with its database name replaced by `name`.
pub fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
