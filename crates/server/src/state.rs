//! The one `Clone` state every handler and connection shares: `Arc`s of the services.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenKeys;
use crate::broker::Broker;
use crate::config::Config;
use crate::gateway::Hub;
use crate::store::Store;

/// Shared application state; cloning is a handful of reference-count bumps.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
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
