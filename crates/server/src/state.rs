//! The one `Clone` state every handler and connection shares: `Arc`s of the services,
//! and [`Store`], the services' stores over one database.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{TokenKeys, TokenStore};
use crate::broker::Broker;
use crate::config::Config;
use crate::gateway::Hub;
use crate::rooms::{MessageStore, RoomStore};
use crate::store::{Backend, Db, DbOptions, StoreError};
use crate::users::UserStore;

/// Everything the server persists: each service's store over one shared [`Db`].
/// It lives here, above the services, so `store` itself knows none of them.
#[derive(Clone)]
pub struct Store {
    pub users: UserStore,
    pub tokens: TokenStore,
    pub rooms: RoomStore,
    pub messages: MessageStore,
    db: Db,
}

impl Store {
    /// Opens (creating and migrating) the database named by `url`.
    pub async fn open(url: &str, options: &DbOptions) -> Result<Self, StoreError> {
        Ok(Self::new(Db::open(url, options).await?))
    }

    /// The services' stores over `db`.
    pub fn new(db: Db) -> Self {
        Self {
            users: UserStore::new(db.clone()),
            tokens: TokenStore::new(db.clone()),
            rooms: RoomStore::new(db.clone()),
            messages: MessageStore::new(db.clone()),
            db,
        }
    }

    /// Succeeds when the writer can commit a write now; backs `/readyz`.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.db.probe_write().await
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// The database handle, for what no service owns (tests, probes).
    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// Shared application state; cloning is a handful of reference-count bumps.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub broker: Arc<dyn Broker>,
    pub tokens: Arc<TokenKeys>,
    /// This process's WebSocket rooms and their local members.
    pub hub: Arc<Hub>,
    /// Cancelled on SIGTERM/Ctrl-C: every connection closes with 1012.
    pub shutdown: CancellationToken,
    /// Tracks live WebSocket connections so shutdown can wait for them to drain.
    pub connections: TaskTracker,
    /// Caps concurrent WebSocket connections.
    pub connection_slots: Arc<Semaphore>,
    pub metrics: Option<PrometheusHandle>,
}
