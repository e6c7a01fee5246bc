//! Building and running the server: `App::build` binds and wires everything, so tests
//! and the load generator start the real thing on port 0 in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::auth::lockout::{FailureCounter, LockoutError, RedisCounter, StoreCounter};
use crate::auth::{
    Auth, CodeLimits, Guard, Hasher, Lockout, LoginLimits, Policy, Revocations, TokenKeys,
    load_or_create_secret,
};
use crate::broker::local::LocalBroker;
use crate::broker::redis::{RedisBroker, RedisSettings};
use crate::broker::{Broker, BrokerError};
use crate::client_addr::{self, TrustedProxies};
use crate::config::{Config, ConfigError};
use crate::gateway::{Gateway, Hub};
use crate::notifications::Notifier;
use crate::presence::Presence;
use crate::quota::Quotas;
use crate::rooms::{AppendOptions, Linger, Rooms};
use crate::state::{AppState, Store};
use crate::store::{DbOptions, StoreError};
use crate::uploads::{LinkSigner, LocalDisk, UploadLimits, Uploads};
use crate::users::People;
use crate::{auth, gateway, notifications, ops, presence, rooms, telemetry, uploads, users, web};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Lockout(#[from] LockoutError),
    #[error("cannot read or create the JWT secret in {dir}: {source}")]
    Secret { dir: String, source: std::io::Error },
    #[error("cannot create the upload directory {dir}: {source}")]
    Uploads { dir: String, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, fully wired server that has not started serving yet.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl App {
    /// Validates the config, opens the store, binds the listener.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let secret = load_or_create_secret(config.jwt_secret.as_deref(), &config.data_dir)
            .map_err(|source| StartError::Secret {
                dir: config.data_dir.display().to_string(),
                source,
            })?;
        let tokens = TokenKeys::new(
            &secret,
            Duration::from_secs(config.access_ttl_secs),
            Duration::from_secs(config.refresh_ttl_secs),
        )
        .with_refresh_grace(Duration::from_secs(config.refresh_grace_secs));
        let db_options = DbOptions {
            sqlite_max_pages: config.sqlite_max_pages,
        };
        let store = Store::open(&config.database_url(), &db_options)
            .await?
            .with_append_options(AppendOptions {
                batch: config.append_batch,
                queue: config.append_queue,
                linger: Linger::while_busy_us(config.append_linger_us),
                index_idle: Duration::from_millis(config.search_index_idle_ms),
            });
        let broker: Arc<dyn Broker> = if config.redis_url.is_empty() {
            Arc::new(LocalBroker::new())
        } else {
            Arc::new(RedisBroker::start(RedisSettings {
                url: config.redis_url.clone(),
                prefix: config.redis_prefix.clone(),
                presence_lease: Duration::from_millis(config.presence_lease_ms),
                timeout: Duration::from_millis(config.redis_timeout_ms),
            })?)
        };
        let upload_dir = config.upload_dir();
        let blobs = LocalDisk::open(&upload_dir).map_err(|source| StartError::Uploads {
            dir: upload_dir.display().to_string(),
            source,
        })?;
        let uploads = Uploads {
            store: store.uploads.clone(),
            blobs: Arc::new(blobs),
            links: Arc::new(LinkSigner::new(
                &secret,
                Duration::from_secs(config.upload_link_ttl_secs),
            )),
            limits: UploadLimits {
                max_bytes: config.upload_max_bytes,
                quota_bytes: config.upload_quota_bytes,
                max_pixels: config.upload_max_pixels,
            },
            thumbnailers: Arc::new(tokio::sync::Semaphore::new(uploads::THUMBNAIL_WORKERS)),
        };
        let hub = Hub::new(store.messages.clone(), broker.clone());
        let listener =
            listen(config.bind, config.listen_backlog).map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        // With Redis configured the counts live there (one key per lock, expiring by
        // itself); otherwise in the database, which several instances may share too.
        let counter: Arc<dyn FailureCounter> = if config.redis_url.is_empty() {
            Arc::new(StoreCounter::new(store.db().clone()))
        } else {
            Arc::new(RedisCounter::new(
                &config.redis_url,
                &config.redis_prefix,
                Duration::from_millis(config.redis_timeout_ms),
            )?)
        };
        let guard = Arc::new(Guard {
            hasher: Hasher::new(config.hash_queue, config.hash_queue_reserved),
            lockout: Lockout::new(counter),
            login: LoginLimits {
                pair: lockout_policy(&config, config.login_lockout_failures),
                user: lockout_policy(&config, config.login_lockout_user_failures),
                addr: lockout_policy(&config, config.login_lockout_addr_failures),
            },
            access_code: CodeLimits {
                member: lockout_policy(&config, config.code_lockout_failures),
                room: lockout_policy(&config, config.code_lockout_room_failures),
            },
            quotas: Quotas::new(&config),
        });
        let config = Arc::new(config);
        let revocations = Arc::new(Revocations::new(
            broker.clone(),
            Duration::from_secs(config.access_ttl_secs),
        ));
        // Before serving: a restarted instance must not accept a logged-out token.
        let newest_revocation = revocations.load(&store.tokens).await?;
        let auth = Auth {
            keys: Arc::new(tokens),
            tokens: store.tokens.clone(),
            users: store.users.clone(),
            db: store.db().clone(),
            guard: guard.clone(),
            revocations: revocations.clone(),
        };
        let notifier = Notifier {
            store: store.notifications.clone(),
            broker: broker.clone(),
        };
        let rooms = Rooms {
            store: store.rooms.clone(),
            messages: store.messages.clone(),
            broker: broker.clone(),
            max_content_chars: config.max_content_chars,
            edit_window_secs: config.edit_window_secs,
            guard: guard.clone(),
            notifier: notifier.clone(),
            uploads: store.uploads.clone(),
            blobs: uploads.blobs.clone(),
        };
        let people = People {
            profiles: store.profiles.clone(),
            guard,
        };
        let presence = Presence::new(broker.clone(), store.presence.clone());
        let gateway = Gateway::new(
            hub,
            auth.clone(),
            rooms.clone(),
            presence.clone(),
            config.clone(),
        );
        tokio::spawn(presence.clone().run(gateway.shutdown.clone()));
        tokio::spawn(revocations.sync(
            store.tokens.clone(),
            newest_revocation,
            gateway.shutdown.clone(),
        ));
        tokio::spawn(gateway::close_revoked_sessions(gateway.clone()));
        tokio::spawn(gateway::deliver_user_frames(gateway.clone()));
        let state = AppState {
            config,
            store,
            broker,
            metrics: telemetry::metrics_handle(),
            auth,
            rooms,
            notifier,
            people,
            presence,
            uploads,
            gateway,
        };
        let router = router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    /// The address actually bound (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config.bind)
    }

    /// Cancelling this token shuts the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.gateway.shutdown.clone()
    }

    /// Shared state, for tests that need to look inside (e.g. sign a token).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until the shutdown token is cancelled, then stops accepting, closes every
    /// WebSocket with 1012 after the frames already queued for it (acks of messages
    /// stored meanwhile included), and waits for connections to finish, at most
    /// `--shutdown-grace-secs` after the signal.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state;
        let shutdown = state.gateway.shutdown.clone();
        // Chat frames are small and latency-bound: never let Nagle hold one back.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
        });
        let connections = state.gateway.connections.clone();
        let drained = async {
            // Returns once the shutdown is signalled and plain HTTP connections are done;
            // WebSocket sessions were handed off at their upgrade and are tracked apart.
            let router = self
                .router
                .into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .await?;
            connections.close();
            connections.wait().await;
            Ok::<_, std::io::Error>(())
        };
        let grace = Duration::from_secs(state.config.shutdown_grace_secs);
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = drained => result?,
            () = deadline => tracing::warn!(
                left = state.gateway.connections.len(),
                "connections still open after the grace period"
            ),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The brute-force policy locking after `threshold` failures, with the configured
/// backoff.
fn lockout_policy(config: &Config, threshold: u32) -> Policy {
    Policy {
        threshold,
        base: Duration::from_millis(config.lockout_base_ms),
        max: Duration::from_millis(config.lockout_max_ms),
        window: Duration::from_secs(config.lockout_window_secs),
    }
}

/// Binds with an explicit backlog: `TcpListener::bind` asks for only 128, which a
/// connect storm overflows (PERF-FINDINGS.md §3).
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server rebinds despite TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

fn router(state: AppState) -> Router {
    let role = state.config.role;
    let mut http = Router::new().merge(ops::routes());
    if role.serves_api() {
        let cookie = auth::cookie::CookieTransport::new(
            &state.config.allowed_origins,
            state.auth.keys.refresh_ttl(),
        );
        let api = Router::new()
            .merge(
                auth::routes::<AppState>().layer(axum::middleware::from_fn_with_state(
                    cookie,
                    auth::cookie::transport,
                )),
            )
            .merge(users::routes::<AppState>())
            .merge(rooms::routes::<AppState>())
            .merge(notifications::routes::<AppState>())
            .merge(presence::routes::<AppState>())
            .merge(uploads::routes::<AppState>());
        http = http
            .nest("/api/v1", api)
            .merge(gateway::spaces::broadcast_routes::<AppState>())
            .merge(web::routes());
    }
    let http = http
        .layer(DefaultBodyLimit::max(state.config.max_frame_bytes))
        .layer(CompressionLayer::new());
    let mut router = Router::new();
    if role.serves_gateway() {
        router = router.merge(gateway::routes::<AppState>());
    }
    let mut router = router.merge(http);
    if role.serves_gateway() {
        // Socket.IO answers `/socket.io/` itself, inside the layers below (client
        // address, tracing), and passes every other request on.
        router = router.layer(gateway::socketio::layer(&state.gateway));
    }
    router
        // Applied per route (after routing), so the matched route is known.
        .layer(axum::middleware::from_fn(crate::http::record_duration))
        .layer(axum::middleware::from_fn(crate::browser::security_headers))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            TrustedProxies::new(&state.config.trusted_proxies),
            client_addr::resolve,
        ))
        .with_state(state)
}
