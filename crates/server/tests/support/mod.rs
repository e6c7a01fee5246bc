//! What several test binaries share: throwaway PostgreSQL databases, private Redis
//! servers, and real `socket-hub` processes. Every test owns its database, Redis and
//! instances, so tests run in parallel. Missing PostgreSQL or Redis fails a test; it
//! never skips.
#![allow(dead_code)]

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// PostgreSQL server the tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("SOCKET_HUB_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

/// A database of one test's own, dropped by [`TestDatabase::drop_database`].
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = format!("sockethub_test_{:016x}", rand::random::<u64>());
        let admin = pg_admin_url();
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
        Self { name, url }
    }

    pub async fn drop_database(self) {
        let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&pg_admin_url()).await
        else {
            return;
        };
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await;
    }
}

/// `admin` with its database name replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A TCP path from a server to PostgreSQL that a test can cut, as a network partition
/// or a database host going away would: on `cut` every open connection drops and new
/// ones are closed as soon as they are accepted, until `mend`.
pub struct Partition {
    /// `database.url` with its host and port replaced by this forwarder's.
    pub url: String,
    cut: tokio::sync::watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Partition {
    /// A forwarder to `database`'s server, listening on a loopback port of its own.
    pub async fn to(database: &TestDatabase) -> Self {
        let mut url = reqwest::Url::parse(&database.url).expect("database url");
        let target = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind partition");
        let port = listener.local_addr().expect("partition address").port();
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(port)).expect("port");
        let (cut, _) = tokio::sync::watch::channel(false);
        let watch = cut.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watch.borrow() {
                    continue;
                }
                let mut cut = watch.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self {
            url: url.to_string(),
            cut,
            accept,
        }
    }

    /// Drops every connection through the forwarder and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Lets connections through again.
    pub fn mend(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.accept.abort();
    }
}

/// A port free right now on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A Redis server of one test's own, so it can be stopped and restarted freely.
pub struct TestRedis {
    pub port: u16,
    child: Option<Child>,
}

impl TestRedis {
    pub async fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client connection, for tests that look at what the instances keep in Redis.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis connects")
    }

    /// Starts (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is required on PATH (Debian package redis-server)");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        let ready = async {
            loop {
                if let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await {
                    use tokio::io::AsyncWriteExt;
                    let mut reply = [0u8; 7];
                    if stream.write_all(b"PING\r\n").await.is_ok()
                        && tokio::io::AsyncReadExt::read_exact(&mut stream, &mut reply)
                            .await
                            .is_ok()
                        && &reply == b"+PONG\r\n"
                    {
                        return;
                    }
                }
                // Redis needs a moment to bind; there is no event to wait on.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), ready)
            .await
            .expect("redis starts");
    }

    /// Kills the server (as a crash would).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing answers, as
    /// with a Redis stuck on a slow disk or a long fork.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Lets a paused server run again (`SIGCONT`).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("redis-server is running")
    }
}

/// Sends `SIGNAL` to `pid` with kill(1): the tests forbid unsafe code, so no libc.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Shared settings of one test's cluster.
#[derive(Clone)]
pub struct ClusterConfig {
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub jwt_secret: String,
}

impl ClusterConfig {
    /// One process on its embedded SQLite database, with in-process fan-out.
    pub fn standalone() -> Self {
        Self::new("", "")
    }

    pub fn new(database_url: &str, redis_url: &str) -> Self {
        Self {
            database_url: database_url.into(),
            redis_url: redis_url.into(),
            redis_prefix: format!("t{:08x}:", rand::random::<u32>()),
            jwt_secret: format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            ),
        }
    }
}

/// The `socket-hub` binary with none of the developer's server settings in its
/// environment (`DATABASE_URL`, `REDIS_URL`, `SOCKET_HUB_*`): a test says everything
/// its server uses, so tests never share a Redis or database by accident.
pub fn server_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_socket-hub"));
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        if name_str.starts_with("SOCKET_HUB_")
            || name_str == "DATABASE_URL"
            || name_str == "REDIS_URL"
        {
            command.env_remove(&name);
        }
    }
    command
}

/// One `socket-hub` process.
pub struct Instance {
    pub url: String,
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Instance {
    /// Starts the binary with `extra` flags and waits for its "listening" log line.
    pub async fn start(cluster: &ClusterConfig, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut instance = Self::start_in(dir.path(), cluster, extra).await;
        instance._dir = Some(dir);
        instance
    }

    /// [`Instance::start`] with a data directory the caller keeps, so a later process
    /// can start on the same data.
    pub async fn start_in(data_dir: &Path, cluster: &ClusterConfig, extra: &[&str]) -> Self {
        let mut command = server_command();
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--database-url", &cluster.database_url])
            .args(["--redis-url", &cluster.redis_url])
            .args(["--redis-prefix", &cluster.redis_prefix])
            .args(["--jwt-secret", &cluster.jwt_secret])
            // Short, so a killed instance's users go offline within a test's wait, but
            // not so short that a live instance loses its records: its upkeep runs every
            // third of the lease, and under a full test run on 2 cores three missed
            // beats in a row (1.5 s) happened once, announcing a live user offline.
            .args(["--presence-lease-ms", "3000"]);
        Self::launch(command, extra).await
    }

    /// Starts the binary as a newcomer runs it: the embedded SQLite database (and the
    /// generated JWT secret) in `data_dir`, no PostgreSQL, no Redis. Starting again on
    /// the same directory is a restart.
    pub async fn start_embedded(data_dir: &Path, extra: &[&str]) -> Self {
        let mut command = server_command();
        command.arg("serve").arg("--data-dir").arg(data_dir).args([
            "--database-url",
            "",
            "--redis-url",
            "",
        ]);
        Self::launch(command, extra).await
    }

    async fn launch(mut command: Command, extra: &[&str]) -> Self {
        let port = free_port();
        let mut child = command
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--rate-per-sec", "100000", "--rate-burst", "100000"])
            .args([
                "--user-send-per-sec",
                "100000",
                "--user-send-burst",
                "100000",
            ])
            .args(["--register-burst", "10000", "--room-create-burst", "10000"])
            .args(["--log-format", "json"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("socket-hub binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let listening = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("listening") {
                    return true;
                }
            }
            false
        };
        let started = tokio::time::timeout(Duration::from_secs(30), listening).await;
        assert!(
            matches!(started, Ok(true)),
            "instance on port {port} did not start"
        );
        // Keep draining the log so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: None,
        }
    }

    /// `kill -9`: no goodbye to anyone.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// `kill -TERM`: the signal an orchestrator sends to stop a process gracefully.
    pub fn terminate(&self) {
        signal(self.child.id().expect("instance is running"), "TERM");
    }

    /// Waits for the process to exit by itself; fails the test after `limit`.
    pub async fn exited_within(mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("the instance exits by itself")
            .expect("wait for the instance")
    }
}

/// What a `message_send` came back with: the ack, or the error frame's code and ref.
#[allow(clippy::large_enum_variant)] // test code: moved once per send
pub enum Outcome {
    Acked(socket_hub_protocol::Message),
    Refused(socket_hub_protocol::ErrorCode, Option<String>),
}

/// Sends one message and waits (up to `wait`) for its ack or an error frame.
pub async fn send_for_outcome(
    ws: &mut socket_hub_client::Connection,
    room_id: i64,
    id: &str,
    content: &str,
    wait: Duration,
) -> Outcome {
    use socket_hub_protocol::{ClientFrame, ServerFrame};
    ws.send(&ClientFrame::MessageSend {
        room_id,
        client_msg_id: id.into(),
        content: content.into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await
    .expect("send");
    ws.wait_for(wait, |f| match f {
        ServerFrame::Ack {
            client_msg_id,
            message,
        } if client_msg_id == id => Some(Outcome::Acked(message.clone())),
        ServerFrame::Error {
            code, reference, ..
        } => Some(Outcome::Refused(*code, reference.clone())),
        _ => None,
    })
    .await
    .expect("ack or error")
}
