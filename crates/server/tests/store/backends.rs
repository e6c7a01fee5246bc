//! Test databases: each test owns one, so tests run in parallel.

use socket_hub::state::Store;
use socket_hub::store::DbOptions;

use crate::support::TestDatabase;

/// A store backend plus what it takes to open more stores on the same data (another
/// "instance") and to clean up.
pub struct Backend {
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_database: Option<TestDatabase>,
}

impl Backend {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::open(&url, &DbOptions::default())
            .await
            .expect("sqlite opens");
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
        let db = TestDatabase::create().await;
        let store = Store::open(&db.url, &DbOptions::default())
            .await
            .expect("postgres opens");
        Self {
            url: db.url.clone(),
            store,
            _dir: None,
            pg_database: Some(db),
        }
    }

    /// Another store on the same data, as a second server instance would have.
    pub async fn another_instance(&self) -> Store {
        Store::open(&self.url, &DbOptions::default())
            .await
            .expect("second instance opens")
    }

    /// Drops the test database (PostgreSQL); the SQLite temp dir goes with `self`.
    pub async fn cleanup(self) {
        self.store.db().close().await;
        if let Some(db) = self.pg_database {
            db.drop_database().await;
        }
    }
}
