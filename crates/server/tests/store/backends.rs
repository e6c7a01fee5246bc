//! Test databases: each test owns one, so tests run in parallel.

use std::sync::Arc;

use socket_hub::store::{self, Store};

use crate::support::TestDatabase;

/// A store backend plus what it takes to open more stores on the same data (another
/// "instance") and to clean up.
pub struct Backend {
    pub url: String,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg_database: Option<TestDatabase>,
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
        let db = TestDatabase::create().await;
        let store = store::connect(&db.url).await.expect("postgres opens");
        Self {
            url: db.url.clone(),
            store,
            _dir: None,
            pg_database: Some(db),
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
        drop(self.store);
        if let Some(db) = self.pg_database {
            db.drop_database().await;
        }
    }
}
