//! The one typed configuration: CLI flags with environment fallbacks, laptop defaults,
//! validated once at start so a bad value fails with a clear message, not at first use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use ipnet::IpNet;

use crate::rooms::appender::MAX_BATCH;

/// Command line of the `socket-hub` binary.
#[derive(Debug, Parser)]
#[command(
    name = "socket-hub",
    version,
    about = "Self-hosted real-time chat server"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags for `serve`, accepted without the subcommand since bare `socket-hub` serves.
    #[command(flatten)]
    pub serve: Config,
}

/// Subcommands; `serve` is the default.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the chat server.
    Serve(Config),
}

impl Cli {
    /// The server configuration, whichever way it was given.
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(config)) => config,
            None => self.serve,
        }
    }
}

/// Everything the server can be told. Field defaults work on a laptop with nothing set.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SOCKET_HUB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for the embedded database and the generated JWT secret.
    #[arg(long, env = "SOCKET_HUB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://…` to share one database between instances; empty means
    /// the embedded SQLite file `<data-dir>/socket-hub.db`.
    #[arg(long, env = "DATABASE_URL", default_value = "")]
    pub database_url: String,

    /// Redis for fan-out and presence across instances (`redis://host:6379`); empty
    /// means in-process fan-out, for a single instance.
    #[arg(long, env = "REDIS_URL", default_value = "")]
    pub redis_url: String,

    /// Prefix of every Redis key and channel, so several deployments can share a Redis.
    #[arg(long, env = "SOCKET_HUB_REDIS_PREFIX", default_value = "sockethub:")]
    pub redis_prefix: String,

    /// Milliseconds a presence entry lives without renewal: how long the users of a
    /// crashed instance can appear online.
    #[arg(long, env = "SOCKET_HUB_PRESENCE_LEASE_MS", default_value_t = 30_000)]
    pub presence_lease_ms: u64,

    /// Milliseconds one Redis command may take before it counts as failed. Nothing
    /// waits on it but the broker's own tasks: acks and delivery do not.
    #[arg(long, env = "SOCKET_HUB_REDIS_TIMEOUT_MS", default_value_t = 2_000)]
    pub redis_timeout_ms: u64,

    /// What this process serves: `all`, `gateway` (the WebSocket) or `api` (REST and the
    /// web client). Split roles need shared PostgreSQL and Redis.
    #[arg(long, env = "SOCKET_HUB_ROLE", default_value = "all")]
    pub role: Role,

    /// HS256 signing secret for access tokens (at least 32 bytes). When unset, one is
    /// generated and kept in `<data-dir>/jwt-secret` so tokens survive restarts.
    #[arg(long, env = "SOCKET_HUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Access token lifetime in seconds.
    #[arg(long, env = "SOCKET_HUB_ACCESS_TTL_SECS", default_value_t = 900)]
    pub access_ttl_secs: u64,

    /// Refresh token lifetime in seconds.
    #[arg(long, env = "SOCKET_HUB_REFRESH_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl_secs: u64,

    /// Seconds during which a just-rotated refresh token, presented again, returns the
    /// same successor instead of counting as reuse: two tabs refreshing with one token
    /// at once both stay signed in. Reuse after the window still revokes the family;
    /// 0 disables the window.
    #[arg(long, env = "SOCKET_HUB_REFRESH_GRACE_SECS", default_value_t = 30)]
    pub refresh_grace_secs: u64,

    /// Embedded SQLite only: the most pages (4 KiB each) the database file may grow to.
    /// Past it writes fail as `unavailable`, exactly as on a full disk; unset means no
    /// limit but the disk's.
    #[arg(long, env = "SOCKET_HUB_SQLITE_MAX_PAGES")]
    pub sqlite_max_pages: Option<u32>,

    /// Most messages stored in one transaction by the batching writer (group commit),
    /// 1 to 4096.
    #[arg(long, env = "SOCKET_HUB_APPEND_BATCH", default_value_t = 512)]
    pub append_batch: usize,

    /// Messages waiting for the batching writer before senders wait to queue
    /// (backpressure: they wait, they are not refused).
    #[arg(long, env = "SOCKET_HUB_APPEND_QUEUE", default_value_t = 8192)]
    pub append_queue: usize,

    /// Microseconds the batching writer waits for more messages after taking what is
    /// queued, while messages arrive faster than one per batch (a lone message is never
    /// delayed). 0 never waits: batches still form while the previous one commits.
    #[arg(long, env = "SOCKET_HUB_APPEND_LINGER_US", default_value_t = 0)]
    pub append_linger_us: u64,

    /// Embedded SQLite: milliseconds without appends after which the message writer
    /// adds the latest messages to the search index (it also does once 2048 wait, and
    /// every search first indexes what it must see), 1 to 60000.
    #[arg(long, env = "SOCKET_HUB_SEARCH_INDEX_IDLE_MS", default_value_t = 200)]
    pub search_index_idle_ms: u64,

    /// Largest WebSocket frame accepted, in bytes.
    #[arg(long, env = "SOCKET_HUB_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Longest message content, in characters.
    #[arg(long, env = "SOCKET_HUB_MAX_CONTENT_CHARS", default_value_t = 4000)]
    pub max_content_chars: usize,

    /// How long after sending its author may edit a message, in seconds; 0 means for
    /// ever. Deleting is not limited.
    #[arg(long, env = "SOCKET_HUB_EDIT_WINDOW_SECS", default_value_t = 86_400)]
    pub edit_window_secs: u64,

    /// Sustained frames per second a connection may send.
    #[arg(long, env = "SOCKET_HUB_RATE_PER_SEC", default_value_t = 20)]
    pub rate_per_sec: u32,

    /// Frames a connection may send in a burst above the sustained rate.
    #[arg(long, env = "SOCKET_HUB_RATE_BURST", default_value_t = 40)]
    pub rate_burst: u32,

    /// Messages per second one user may send, REST and WebSocket together, across all
    /// their connections (per instance). Refused sends get `rate_limited` with
    /// `Retry-After` / `retry_after_ms`.
    /// Fractions allowed (`0.5` is one every two seconds).
    #[arg(long, env = "SOCKET_HUB_USER_SEND_PER_SEC", default_value_t = 20.0)]
    pub user_send_per_sec: f64,

    /// Messages one user may send in a burst above `--user-send-per-sec`.
    #[arg(long, env = "SOCKET_HUB_USER_SEND_BURST", default_value_t = 40)]
    pub user_send_burst: u32,

    /// User searches (`GET /users?query=`) per second one user may make (per instance).
    #[arg(long, env = "SOCKET_HUB_USER_SEARCH_PER_SEC", default_value_t = 5.0)]
    pub user_search_per_sec: f64,

    /// User searches one user may make in a burst above `--user-search-per-sec`.
    #[arg(long, env = "SOCKET_HUB_USER_SEARCH_BURST", default_value_t = 20)]
    pub user_search_burst: u32,

    /// Rooms one user may create per hour (per instance), after the burst.
    #[arg(long, env = "SOCKET_HUB_ROOM_CREATE_PER_HOUR", default_value_t = 60)]
    pub room_create_per_hour: u32,

    /// Rooms one user may create in a burst above `--room-create-per-hour`.
    #[arg(long, env = "SOCKET_HUB_ROOM_CREATE_BURST", default_value_t = 30)]
    pub room_create_burst: u32,

    /// Accounts one client address (an IPv6 /64) may register per hour (per instance),
    /// after the burst. Behind a proxy set `--trusted-proxies`, or every client shares
    /// the proxy's address and this allowance.
    #[arg(long, env = "SOCKET_HUB_REGISTER_PER_HOUR", default_value_t = 30)]
    pub register_per_hour: u32,

    /// Accounts one client address may register in a burst.
    #[arg(long, env = "SOCKET_HUB_REGISTER_BURST", default_value_t = 10)]
    pub register_burst: u32,

    /// Users (or addresses) each quota above tracks at most; idle ones are forgotten
    /// first. Bounds the quotas' memory (about 64 bytes an entry).
    #[arg(long, env = "SOCKET_HUB_QUOTA_MAX_KEYS", default_value_t = 100_000)]
    pub quota_max_keys: usize,

    /// Rooms one WebSocket connection may have joined at once; more get
    /// `too_many_rooms`. Bounds what one connection can make the server hold.
    #[arg(
        long,
        env = "SOCKET_HUB_MAX_ROOMS_PER_CONNECTION",
        default_value_t = 100
    )]
    pub max_rooms_per_connection: usize,

    /// Frames of one connection queued for sending before it counts as too slow and is
    /// closed with 1013.
    #[arg(long, env = "SOCKET_HUB_OUTBOUND_QUEUE", default_value_t = 256)]
    pub outbound_queue: usize,

    /// Seconds one socket write may take before the client counts as too slow.
    #[arg(long, env = "SOCKET_HUB_WRITE_TIMEOUT_SECS", default_value_t = 10)]
    pub write_timeout_secs: u64,

    /// Least time between two socket writes of one connection, in microseconds. A
    /// connection that was written to more recently than this waits out the rest before
    /// its next write, so the frames of a busy room leave in fewer, larger writes (each
    /// loopback or LAN write costs the server about as much as several frames); a quiet
    /// connection never waits. 0 writes as soon as anything is queued. BENCHMARKS.md.
    #[arg(long, env = "SOCKET_HUB_WRITE_SPACING_US", default_value_t = 2_000)]
    pub write_spacing_us: u64,

    /// Seconds between server pings.
    #[arg(long, env = "SOCKET_HUB_PING_INTERVAL_SECS", default_value_t = 25)]
    pub ping_interval_secs: u64,

    /// Seconds without any frame from the client (pongs included) before closing.
    #[arg(long, env = "SOCKET_HUB_KEEPALIVE_TIMEOUT_SECS", default_value_t = 60)]
    pub keepalive_timeout_secs: u64,

    /// Milliseconds a connection whose handshake carried no token has to authenticate
    /// with a first `auth` frame. Short: until then it holds a slot for nobody.
    #[arg(long, env = "SOCKET_HUB_AUTH_TIMEOUT_MS", default_value_t = 5_000)]
    pub auth_timeout_ms: u64,

    /// Most WebSocket connections served at once; more are refused with 503.
    #[arg(long, env = "SOCKET_HUB_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Connections one client address may hold while not authenticated yet (no token
    /// at the handshake); more get 429. Keyed on the client behind `--trusted-proxies`.
    #[arg(
        long,
        env = "SOCKET_HUB_MAX_UNAUTHENTICATED_PER_ADDRESS",
        default_value_t = 16
    )]
    pub max_unauthenticated_per_address: usize,

    /// Percent of `--max-connections` that connections not authenticated yet may hold
    /// together; the rest is kept for authenticated ones, so silent sockets cannot take
    /// every slot.
    #[arg(
        long,
        env = "SOCKET_HUB_MAX_UNAUTHENTICATED_PERCENT",
        default_value_t = 20
    )]
    pub max_unauthenticated_percent: u8,

    /// WebSocket connections one user may hold on this instance (tabs and devices);
    /// more are refused with a `rate_limited` error and close code 1008.
    #[arg(
        long,
        env = "SOCKET_HUB_MAX_CONNECTIONS_PER_USER",
        default_value_t = 32
    )]
    pub max_connections_per_user: usize,

    /// Pending TCP connections the kernel queues before `accept` (capped by
    /// `net.core.somaxconn`). Too small a queue drops SYNs in a reconnect storm, and a
    /// dropped SYN is retried only after a second.
    #[arg(long, env = "SOCKET_HUB_LISTEN_BACKLOG", default_value_t = 4096)]
    pub listen_backlog: u32,

    /// Seconds to wait for connections to finish after a shutdown signal.
    #[arg(long, env = "SOCKET_HUB_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Log format: `json` for machines, `pretty` for people.
    #[arg(long, env = "SOCKET_HUB_LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,

    /// Failed logins for one username from one client address before that pair is
    /// locked (brute force from one place). Each failure past it doubles the lock.
    #[arg(long, env = "SOCKET_HUB_LOGIN_LOCKOUT_FAILURES", default_value_t = 10)]
    pub login_lockout_failures: u32,

    /// Failed logins for one username from any address before the username is locked
    /// for everyone (distributed guessing). Looser than the pair limit so an attacker
    /// cannot lock a victim out by name alone without a botnet's worth of tries.
    #[arg(
        long,
        env = "SOCKET_HUB_LOGIN_LOCKOUT_USER_FAILURES",
        default_value_t = 100
    )]
    pub login_lockout_user_failures: u32,

    /// Failed logins from one client address, over any usernames, before the address is
    /// locked (password spraying).
    #[arg(
        long,
        env = "SOCKET_HUB_LOGIN_LOCKOUT_ADDR_FAILURES",
        default_value_t = 100
    )]
    pub login_lockout_addr_failures: u32,

    /// Wrong access codes by one user for one private room before that user is locked
    /// out of joining it.
    #[arg(long, env = "SOCKET_HUB_CODE_LOCKOUT_FAILURES", default_value_t = 5)]
    pub code_lockout_failures: u32,

    /// Wrong access codes for one private room, by anyone, before joining it by code is
    /// locked (many accounts guessing together). Members already in are unaffected.
    #[arg(
        long,
        env = "SOCKET_HUB_CODE_LOCKOUT_ROOM_FAILURES",
        default_value_t = 50
    )]
    pub code_lockout_room_failures: u32,

    /// Milliseconds of the first brute-force lock; each further failure doubles it.
    #[arg(long, env = "SOCKET_HUB_LOCKOUT_BASE_MS", default_value_t = 60_000)]
    pub lockout_base_ms: u64,

    /// Longest brute-force lock, in milliseconds.
    #[arg(long, env = "SOCKET_HUB_LOCKOUT_MAX_MS", default_value_t = 900_000)]
    pub lockout_max_ms: u64,

    /// Seconds without a failure (once any lock has ended) after which a key's failures
    /// are forgotten.
    #[arg(long, env = "SOCKET_HUB_LOCKOUT_WINDOW_SECS", default_value_t = 3600)]
    pub lockout_window_secs: u64,

    /// Argon2 computations (password and access-code hashing and checking) running or
    /// waiting at once; more are refused with 429 and `Retry-After`.
    #[arg(long, env = "SOCKET_HUB_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,

    /// Places of `--hash-queue` only verifications (logins, access codes) may take, so
    /// a registration flood cannot stop logins.
    #[arg(long, env = "SOCKET_HUB_HASH_QUEUE_RESERVED", default_value_t = 16)]
    pub hash_queue_reserved: usize,

    /// Reverse proxies (comma-separated addresses or networks, e.g. `127.0.0.1` or
    /// `172.28.0.0/16`) whose `X-Forwarded-For` names the client. Per-address limits key
    /// on the client: behind a proxy that is not listed, every client shares its address.
    #[arg(long, env = "SOCKET_HUB_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,

    /// Spaces API (`/v1/ws/spaces/{space_id}`): seconds one write may take before the
    /// client counts as too slow (the seed hub's `writeWait`).
    #[arg(long, env = "SOCKET_HUB_SPACES_WRITE_WAIT_SECS", default_value_t = 10)]
    pub spaces_write_wait_secs: u64,

    /// Spaces API: seconds without any message or pong from the client before the
    /// connection is closed (the seed hub's `pongWait`).
    #[arg(long, env = "SOCKET_HUB_SPACES_PONG_WAIT_SECS", default_value_t = 60)]
    pub spaces_pong_wait_secs: u64,

    /// Spaces API: seconds between the server's WebSocket pings (the seed hub's
    /// `pingPeriod`); less than the pong wait.
    #[arg(long, env = "SOCKET_HUB_SPACES_PING_PERIOD_SECS", default_value_t = 54)]
    pub spaces_ping_period_secs: u64,

    /// Spaces API: largest message a client may send, in bytes (the seed hub's
    /// `maxMessageSize`); a larger one is answered with `frame_too_large` and close 1009.
    #[arg(
        long,
        env = "SOCKET_HUB_SPACES_MAX_MESSAGE_BYTES",
        default_value_t = 512
    )]
    pub spaces_max_message_bytes: usize,

    /// Server API keys (comma-separated, 24 characters or more each) with which back-end
    /// services and bots may send to a space as any user
    /// (`POST /v1/ws/spaces/{space_id}/broadcast` with `X-API-Key`). None by default.
    #[arg(
        long,
        env = "SOCKET_HUB_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Browser origins besides the server's own (comma-separated, e.g.
    /// `https://chat.example.com`) whose pages may open `/ws` and use the refresh
    /// cookie. Pages of other origins get 403; clients that send no `Origin` (SDKs)
    /// are not affected.
    #[arg(long, env = "SOCKET_HUB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Directory of uploaded files (attachments); `<data-dir>/uploads` when unset.
    /// Instances serving one database must share it (a shared volume).
    #[arg(long, env = "SOCKET_HUB_UPLOAD_DIR")]
    pub upload_dir: Option<PathBuf>,

    /// Largest uploaded file, in bytes; counted as it arrives, whatever the request
    /// declares. Larger ones get 413 `file_too_large`.
    #[arg(long, env = "SOCKET_HUB_UPLOAD_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub upload_max_bytes: u64,

    /// Bytes of uploads one user may have stored in all; past it uploads get 413
    /// `quota_exceeded` (deleting unattached uploads frees room).
    #[arg(long, env = "SOCKET_HUB_UPLOAD_QUOTA_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub upload_quota_bytes: u64,

    /// Largest image (width × height) decoded for a thumbnail; a larger image is
    /// refused (a small file can claim billions of pixels: a decompression bomb).
    #[arg(
        long,
        env = "SOCKET_HUB_UPLOAD_MAX_PIXELS",
        default_value_t = 40_000_000
    )]
    pub upload_max_pixels: u64,

    /// Seconds a signed download link (`GET /uploads/{id}/link`) stays valid.
    #[arg(long, env = "SOCKET_HUB_UPLOAD_LINK_TTL_SECS", default_value_t = 600)]
    pub upload_link_ttl_secs: u64,
}

/// Which services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Everything: REST, WebSocket, web client.
    All,
    /// The WebSocket endpoint only.
    Gateway,
    /// REST and the web client only.
    Api,
}

impl Role {
    /// Whether this process serves `/ws`.
    pub fn serves_gateway(self) -> bool {
        matches!(self, Self::All | Self::Gateway)
    }

    /// Whether this process serves REST and the web client.
    pub fn serves_api(self) -> bool {
        matches!(self, Self::All | Self::Api)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A configuration value that cannot work, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults for tests and embedding: port 0 on loopback, data in `data_dir`.
    ///
    /// Built from the flags' defaults alone, never from the environment: a developer's
    /// `REDIS_URL` or `DATABASE_URL` must not leak into tests or an embedding program.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let matches = Cli::command()
            .mut_args(|arg| arg.env(None::<&str>))
            .get_matches_from(["socket-hub"]);
        let mut config = Cli::from_arg_matches(&matches)
            .map(Cli::into_config)
            .unwrap_or_else(|err| unreachable!("the flags' defaults parse: {err}"));
        config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = data_dir.into();
        config
    }

    /// Rejects values that would make the server misbehave rather than fail loudly.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if let Some(secret) = &self.jwt_secret
            && let Err(why) = check_jwt_secret(secret)
        {
            return fail(format!(
                "--jwt-secret / SOCKET_HUB_JWT_SECRET {why}: anyone who knows it can sign tokens \
                 for any user. Generate one with `openssl rand -hex 32`, or leave it unset and \
                 a random secret is generated in <data-dir>/jwt-secret"
            ));
        }
        if self.access_ttl_secs == 0 || self.refresh_ttl_secs < self.access_ttl_secs {
            return fail("token TTLs must be positive, refresh at least as long as access".into());
        }
        if self.refresh_grace_secs >= self.refresh_ttl_secs {
            return fail("--refresh-grace-secs must be shorter than the refresh token TTL".into());
        }
        if self.sqlite_max_pages.is_some() && self.database_url.starts_with("postgres") {
            return fail("--sqlite-max-pages applies to the embedded SQLite database only".into());
        }
        if !(1..=MAX_BATCH).contains(&self.append_batch) {
            return fail(format!("--append-batch must be 1 to {MAX_BATCH}"));
        }
        if self.append_queue == 0 {
            return fail("--append-queue must be positive".into());
        }
        if self.append_linger_us > 100_000 {
            return fail("--append-linger-us must be at most 100000 (0.1 s)".into());
        }
        if !(1..=60_000).contains(&self.search_index_idle_ms) {
            return fail("--search-index-idle-ms must be 1 to 60000".into());
        }
        if self.max_frame_bytes < 1024 {
            return fail("--max-frame-bytes must be at least 1024".into());
        }
        if self.max_content_chars == 0 || self.max_content_chars * 4 + 512 > self.max_frame_bytes {
            return fail(format!(
                "--max-content-chars {} does not fit in --max-frame-bytes {} (4 bytes per char plus envelope)",
                self.max_content_chars, self.max_frame_bytes
            ));
        }
        if self.rate_per_sec == 0 || self.rate_burst == 0 {
            return fail("--rate-per-sec and --rate-burst must be positive".into());
        }
        if !(self.user_send_per_sec.is_finite() && self.user_send_per_sec > 0.0)
            || self.user_send_burst == 0
        {
            return fail("--user-send-per-sec and --user-send-burst must be positive".into());
        }
        if !(self.user_search_per_sec.is_finite() && self.user_search_per_sec > 0.0)
            || self.user_search_burst == 0
        {
            return fail("--user-search-per-sec and --user-search-burst must be positive".into());
        }
        if self.room_create_per_hour == 0 || self.room_create_burst == 0 {
            return fail("--room-create-per-hour and --room-create-burst must be positive".into());
        }
        if self.register_per_hour == 0 || self.register_burst == 0 {
            return fail("--register-per-hour and --register-burst must be positive".into());
        }
        if self.quota_max_keys < 64 {
            return fail("--quota-max-keys must be at least 64".into());
        }
        if self.max_rooms_per_connection == 0 {
            return fail("--max-rooms-per-connection must be positive".into());
        }
        if self.redis_timeout_ms == 0 {
            return fail("--redis-timeout-ms must be positive".into());
        }
        if self.write_spacing_us > MAX_WRITE_SPACING_US {
            return fail(format!(
                "--write-spacing-us must be at most {MAX_WRITE_SPACING_US} (0.1 s); 2000 is the default"
            ));
        }
        if self.outbound_queue < 4 {
            return fail("--outbound-queue must be at least 4".into());
        }
        if self.max_connections == 0 || self.max_connections_per_user == 0 {
            return fail(
                "--max-connections and --max-connections-per-user must be positive".into(),
            );
        }
        if self.max_unauthenticated_per_address == 0 {
            return fail("--max-unauthenticated-per-address must be positive".into());
        }
        if !(1..=100).contains(&self.max_unauthenticated_percent) {
            return fail("--max-unauthenticated-percent must be 1 to 100".into());
        }
        if self.auth_timeout_ms == 0 || self.auth_timeout_ms > 60_000 {
            return fail("--auth-timeout-ms must be 1 to 60000".into());
        }
        if self.keepalive_timeout_secs <= self.ping_interval_secs {
            return fail("--keepalive-timeout-secs must exceed --ping-interval-secs".into());
        }
        if [
            self.login_lockout_failures,
            self.login_lockout_user_failures,
            self.login_lockout_addr_failures,
            self.code_lockout_failures,
            self.code_lockout_room_failures,
        ]
        .contains(&0)
        {
            return fail(
                "the --login-lockout-* and --code-lockout-* failure counts must be positive".into(),
            );
        }
        if self.lockout_base_ms == 0 || self.lockout_max_ms < self.lockout_base_ms {
            return fail("--lockout-base-ms must be positive and at most --lockout-max-ms".into());
        }
        if self.lockout_window_secs == 0 {
            return fail("--lockout-window-secs must be positive".into());
        }
        if self.hash_queue_reserved == 0 || self.hash_queue <= self.hash_queue_reserved {
            return fail(
                "--hash-queue-reserved must be positive and less than --hash-queue".into(),
            );
        }
        let supported = ["sqlite:", "postgres:", "postgresql:"];
        if !(self.database_url.is_empty()
            || supported.iter().any(|s| self.database_url.starts_with(s)))
        {
            return fail(format!(
                "DATABASE_URL must be sqlite:, postgres: or postgresql:, not {}:",
                self.database_url.split(':').next().unwrap_or_default()
            ));
        }
        if !(self.redis_url.is_empty() || self.redis_url.starts_with("redis://")) {
            return fail("REDIS_URL must start with redis://".into());
        }
        if self.presence_lease_ms < 300 {
            return fail("--presence-lease-ms must be at least 300".into());
        }
        if self.spaces_write_wait_secs == 0
            || self.spaces_ping_period_secs == 0
            || self.spaces_ping_period_secs >= self.spaces_pong_wait_secs
        {
            return fail(
                "--spaces-write-wait-secs and --spaces-ping-period-secs must be positive, \
                 and the ping period shorter than --spaces-pong-wait-secs"
                    .into(),
            );
        }
        if !(64..=self.max_frame_bytes).contains(&self.spaces_max_message_bytes) {
            return fail("--spaces-max-message-bytes must be 64 to --max-frame-bytes".into());
        }
        if self.api_keys.iter().any(|key| key.trim().len() < 24) {
            return fail(
                "each of --api-keys / SOCKET_HUB_API_KEYS must be 24 characters or more \
                 (`openssl rand -hex 32`)"
                    .into(),
            );
        }
        if self.upload_max_bytes == 0 || self.upload_quota_bytes < self.upload_max_bytes {
            return fail(
                "--upload-max-bytes must be positive and at most --upload-quota-bytes".into(),
            );
        }
        if self.upload_max_pixels == 0 || self.upload_max_pixels > 200_000_000 {
            return fail("--upload-max-pixels must be 1 to 200000000".into());
        }
        if !(10..=86_400).contains(&self.upload_link_ttl_secs) {
            return fail("--upload-link-ttl-secs must be 10 to 86400".into());
        }
        for origin in &self.allowed_origins {
            crate::browser::validate_origin(origin).map_err(ConfigError)?;
        }
        let shared_db = self.database_url.starts_with("postgres");
        if self.role != Role::All && (self.redis_url.is_empty() || !shared_db) {
            return fail(format!(
                "--role {:?} needs REDIS_URL and a postgres:// DATABASE_URL shared with the other roles",
                self.role
            ));
        }
        Ok(())
    }

    /// The database to open: the configured URL or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("socket-hub.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// Where uploaded files are stored.
    pub fn upload_dir(&self) -> PathBuf {
        self.upload_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("uploads"))
    }

    pub(crate) fn write_spacing(&self) -> Duration {
        Duration::from_micros(self.write_spacing_us)
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs)
    }

    pub(crate) fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }

    pub(crate) fn keepalive_timeout(&self) -> Duration {
        Duration::from_secs(self.keepalive_timeout_secs)
    }

    pub(crate) fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms)
    }

    /// Slots connections not authenticated yet may hold together (at least one).
    pub(crate) fn max_unauthenticated(&self) -> usize {
        (self.max_connections / 100 * usize::from(self.max_unauthenticated_percent)
            + self.max_connections % 100 * usize::from(self.max_unauthenticated_percent) / 100)
            .max(1)
    }
}

/// Largest `--write-spacing-us`: beyond it the spacing would be felt as lag, not saved
/// as CPU.
const MAX_WRITE_SPACING_US: u64 = 100_000;

/// Secrets shipped in examples (compose files, manifests, docs, tutorials): the server
/// refuses them however long they are, since they are public.
const PLACEHOLDER_SECRETS: &[&str] = &[
    "change-me-to-a-long-random-secret-of-32-bytes-or-more",
    "secret",
    "changeme",
    "your-256-bit-secret",
];

/// Words that mark a secret as written by a person for an example, not generated.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "replace-me",
    "replaceme",
    "your-secret",
    "your_secret",
    "example",
    "insecure",
];

/// Bits of entropy a JWT secret must carry (32 random bytes).
pub const MIN_SECRET_BITS: f64 = 256.0;

/// Why a configured JWT secret cannot be trusted, if it cannot: a known placeholder,
/// a word marking one, a repeated pattern, or under [`MIN_SECRET_BITS`] by
/// [`secret_entropy_bits`]. An estimate, generous to generated secrets (64 hex
/// characters from `openssl rand -hex 32` are exactly 256 bits) and hard on typed ones.
pub fn check_jwt_secret(secret: &str) -> Result<(), String> {
    let lower = secret.to_ascii_lowercase();
    if PLACEHOLDER_SECRETS.contains(&lower.as_str())
        || PLACEHOLDER_MARKERS.iter().any(|m| lower.contains(m))
    {
        return Err("is a placeholder from an example".into());
    }
    let chars: Vec<char> = secret.chars().collect();
    let repeats = (1..=chars.len() / 2)
        .any(|p| chars.len().is_multiple_of(p) && chars.chunks(p).all(|c| c == &chars[..p]));
    if repeats {
        return Err("is a repeated pattern".into());
    }
    let bits = secret_entropy_bits(secret);
    if bits < MIN_SECRET_BITS {
        return Err(format!(
            "has about {bits:.0} bits of entropy; at least {MIN_SECRET_BITS:.0} (32 random bytes) are required"
        ));
    }
    Ok(())
}

/// Estimated entropy of a secret in bits: its length times the bits per character of
/// the smallest alphabet it fits (hex, then the character classes it uses), or of the
/// characters it actually uses when they are too few for a generated secret.
pub fn secret_entropy_bits(secret: &str) -> f64 {
    let hex = !secret.is_empty() && secret.chars().all(|c| c.is_ascii_hexdigit());
    let alphabet = if hex
        && (secret.chars().all(|c| !c.is_ascii_uppercase())
            || secret.chars().all(|c| !c.is_ascii_lowercase()))
    {
        16
    } else {
        type Class = (fn(&char) -> bool, usize);
        let classes: [Class; 4] = [
            (char::is_ascii_lowercase, 26),
            (char::is_ascii_uppercase, 26),
            (char::is_ascii_digit, 10),
            (|c: &char| !c.is_ascii_alphanumeric(), 33),
        ];
        let used: usize = classes
            .iter()
            .filter(|(member, _)| secret.chars().any(|c| member(&c)))
            .map(|(_, size)| size)
            .sum();
        // Both cases of letters: base64, whose digits a short draw may happen to miss.
        if used >= 52 { used.max(62) } else { used }
    };
    let mut distinct: Vec<char> = secret.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    // A generated secret uses a good part of its alphabet (64 random hex characters
    // nearly always show 13 or more of the 16 digits); far fewer means a pattern, and
    // then only the characters actually used count.
    let used = distinct.len().max(1);
    let alphabet = if used < 8 || used * 3 < alphabet.min(secret.chars().count()) {
        used
    } else {
        alphabet
    };
    #[allow(clippy::cast_precision_loss)]
    let bits_per_char = (alphabet as f64).log2();
    #[allow(clippy::cast_precision_loss)]
    let length = secret.chars().count() as f64;
    length * bits_per_char
}

/// Parses one `--trusted-proxies` entry: an address (`127.0.0.1`, `::1`) or a network
/// (`10.0.0.0/8`).
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if text.contains('/') {
        IpNet::from_str(text).map_err(|err| format!("`{text}` is not an IP network: {err}"))
    } else {
        IpAddr::from_str(text)
            .map(IpNet::from)
            .map_err(|err| format!("`{text}` is not an IP address or network: {err}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxy_entries_must_be_addresses_or_networks() {
        assert!(super::parse_proxy("10.0.0.0/8").is_ok());
        assert!(super::parse_proxy(" ::1 ").is_ok());
        assert!(super::parse_proxy("nginx").is_err());
        assert!(super::parse_proxy("10.0.0.0/33").is_err());
    }

    use super::*;

    /// Runs [`defaults_probe`] in a child process whose environment names another
    /// Redis, database and rate: the test defaults must not pick any of them up.
    #[test]
    fn test_defaults_ignore_the_environment() {
        let exe = std::env::current_exe().expect("test binary path");
        let output = std::process::Command::new(exe)
            .args(["config::tests::defaults_probe", "--exact", "--ignored"])
            .env("REDIS_URL", "redis://leaked.invalid:6379")
            .env("DATABASE_URL", "postgres://leaked.invalid/db")
            .env("SOCKET_HUB_RATE_PER_SEC", "1")
            .output()
            .expect("test binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "probe failed: {stdout}");
        assert!(stdout.contains("1 passed"), "probe did not run: {stdout}");
    }

    #[test]
    #[ignore = "run by test_defaults_ignore_the_environment with a polluted environment"]
    fn defaults_probe() {
        assert!(
            std::env::var("REDIS_URL").is_ok(),
            "the probe sees the environment"
        );
        let config = Config::for_data_dir("/tmp/x");
        assert_eq!(config.redis_url, "");
        assert_eq!(config.database_url, "");
        assert_eq!(config.rate_per_sec, 20);
    }

    #[test]
    fn bare_command_and_serve_subcommand_parse_alike() {
        let bare = Cli::parse_from(["socket-hub", "--bind", "0.0.0.0:9000"]).into_config();
        let serve =
            Cli::parse_from(["socket-hub", "serve", "--bind", "0.0.0.0:9000"]).into_config();
        assert_eq!(bare.bind, serve.bind);
        assert!(bare.validate().is_ok());
    }

    #[test]
    fn short_secret_is_rejected_with_its_name() {
        let mut config = Config::for_data_dir("/tmp/x");
        config.jwt_secret = Some("short".into());
        let err = config.validate().expect_err("short secret");
        assert!(err.to_string().contains("SOCKET_HUB_JWT_SECRET"));
    }

    #[test]
    fn allowed_origins_must_be_origins() {
        let mut config = Config::for_data_dir("/tmp/x");
        config.allowed_origins = vec!["https://chat.example.com".into()];
        assert!(config.validate().is_ok());
        config.allowed_origins.push("chat.example.com/app".into());
        let err = config.validate().expect_err("not an origin");
        assert!(err.to_string().contains("--allowed-origins"), "{err}");
        let parsed = Cli::parse_from([
            "socket-hub",
            "--allowed-origins",
            "https://a.example,http://localhost:5173",
        ])
        .into_config();
        assert_eq!(parsed.allowed_origins.len(), 2);
    }

    #[test]
    fn lockout_and_hash_queue_limits_are_validated() {
        let mut config = Config::for_data_dir("/tmp/x");
        config.login_lockout_failures = 0;
        assert!(config.validate().is_err());
        let mut config = Config::for_data_dir("/tmp/x");
        config.lockout_max_ms = config.lockout_base_ms - 1;
        assert!(config.validate().is_err());
        let mut config = Config::for_data_dir("/tmp/x");
        config.hash_queue_reserved = config.hash_queue;
        assert!(config.validate().is_err());
    }

    #[test]
    fn generated_secrets_pass_and_placeholders_do_not() {
        use base64::Engine;
        // Whatever the dice give: a flaky check would refuse a good secret at random.
        for _ in 0..2_000 {
            let bytes: [u8; 32] = rand::random();
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(check_jwt_secret(&hex), Ok(()), "{hex}");
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            assert_eq!(check_jwt_secret(&b64), Ok(()), "{b64}");
            let std64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            assert_eq!(check_jwt_secret(&std64), Ok(()), "{std64}");
        }
        let hex: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        for bad in [
            "change-me-to-a-long-random-secret-of-32-bytes-or-more",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            &"a".repeat(100),
            "abcdefghijklmnopqrstuvwxyzabcdef",
            &hex[..40],
        ] {
            assert!(check_jwt_secret(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn write_spacing_is_bounded() {
        let mut config = Config::for_data_dir("/tmp/x");
        assert_eq!(config.write_spacing(), Duration::from_millis(2));
        config.write_spacing_us = 0;
        assert!(config.validate().is_ok());
        config.write_spacing_us = MAX_WRITE_SPACING_US + 1;
        let err = config.validate().expect_err("a spacing felt as lag");
        assert!(err.to_string().contains("--write-spacing-us"), "{err}");
    }

    #[test]
    fn content_limit_must_fit_frame_limit() {
        let mut config = Config::for_data_dir("/tmp/x");
        config.max_content_chars = 100_000;
        assert!(config.validate().is_err());
    }
}
