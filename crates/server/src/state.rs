//! The app's router state, [`AppState`]: each service's context, from which axum hands
//! every handler its own (`FromRef`), plus what only the app and ops routes use; and
//! [`Store`], the services' stores over one database. It lives above the services, so
//! none of them knows it.

use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{Auth, TokenStore, UserStore};
use crate::broker::Broker;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::notifications::{NotificationStore, Notifier};
use crate::presence::{Presence, PresenceStore};
use crate::rooms::{AppendOptions, MessageStore, RoomStore, Rooms};
use crate::store::{Backend, Db, DbOptions, StoreError};
use crate::uploads::{UploadStore, Uploads};
use crate::users::{People, ProfileStore};

/// Everything the server persists: each service's store over one shared [`Db`].
/// It lives here, above the services, so `store` itself knows none of them.
#[derive(Clone)]
pub struct Store {
    pub users: UserStore,
    pub tokens: TokenStore,
    pub rooms: RoomStore,
    pub messages: MessageStore,
    pub notifications: NotificationStore,
    pub profiles: ProfileStore,
    pub presence: PresenceStore,
    pub uploads: UploadStore,
    db: Db,
}

impl Store {
    /// Opens (creating and migrating) the database named by `url`.
    pub async fn open(url: &str, options: &DbOptions) -> Result<Self, StoreError> {
        Ok(Self::new(Db::open(url, options).await?))
    }

    /// The services' stores over `db`.
    pub fn new(db: Db) -> Self {
        let users = UserStore::new(db.clone());
        Self {
            presence: PresenceStore::new(db.clone(), users.last_seen_writes()),
            users,
            tokens: TokenStore::new(db.clone()),
            rooms: RoomStore::new(db.clone()),
            messages: MessageStore::new(db.clone()),
            notifications: NotificationStore::new(db.clone()),
            profiles: ProfileStore::new(db.clone()),
            uploads: UploadStore::new(db.clone()),
            db,
        }
    }

    /// The same stores, with message appends batched as `options` say.
    pub fn with_append_options(mut self, options: AppendOptions) -> Self {
        self.messages = MessageStore::with_options(self.db.clone(), options);
        self
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

/// The router's state; cloning is a handful of reference-count bumps. Handlers extract
/// the context of their service (`State<Auth>`, `State<Rooms>`, `State<Gateway>`);
/// the process-level routes (`ops`, `web`) take it whole.
#[derive(Clone, FromRef)]
pub struct AppState {
    #[from_ref(skip)]
    pub config: Arc<Config>,
    /// For readiness, and for tests that look inside.
    #[from_ref(skip)]
    pub store: Store,
    #[from_ref(skip)]
    pub broker: Arc<dyn Broker>,
    #[from_ref(skip)]
    pub metrics: Option<PrometheusHandle>,
    pub auth: Auth,
    pub rooms: Rooms,
    pub notifier: Notifier,
    pub people: People,
    pub presence: Presence,
    pub uploads: Uploads,
    /// Its shutdown token and connection tracker are the process's too.
    pub gateway: Gateway,
}
