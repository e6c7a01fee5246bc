//! Every scenario of the load tool on a tiny size, against the real Socket-Hub started
//! in-process on port 0 and against a minimal in-test peer hub speaking the protocol of
//! `bench/peers/README.md`. Counts are asserted; timings never are.

mod peer;

use socket_hub::{App, Config};
use socket_hub_load::{Options, Report, run};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// A Socket-Hub owned by one test (embedded SQLite in a temp dir, default durability).
struct Hub {
    url: String,
    _dir: TempDir,
    shutdown: CancellationToken,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn spawn_hub() -> Hub {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::for_data_dir(dir.path());
    config.database_url = String::new();
    // The load tool sends faster than a person; the per-connection limit is not under test.
    config.rate_per_sec = 10_000;
    config.rate_burst = 10_000;
    // Nor are the per-user and setup quotas (accounts shared, all from one address).
    config.user_send_per_sec = 10_000.0;
    config.user_send_burst = 10_000;
    config.register_burst = 10_000;
    config.room_create_burst = 10_000;
    let app = App::build(config).await.expect("app builds");
    let url = format!("http://{}", app.local_addr());
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        app.run_until_stopped().await.expect("server runs");
    });
    Hub {
        url,
        _dir: dir,
        shutdown,
    }
}

async fn load(target: &str, url: &str, args: &[&str]) -> Report {
    let pid = std::process::id().to_string();
    let mut argv = vec![
        "socket-hub-load",
        "--target",
        target,
        "--url",
        url,
        "--server-pid",
        &pid,
        "--users",
        "3",
        "--duration-secs",
        "1",
        "--drain-secs",
        "10",
    ];
    argv.extend_from_slice(args);
    run(options(&argv)).await.expect("scenario completes")
}

fn options(argv: &[&str]) -> Options {
    <Options as clap::Parser>::try_parse_from(argv).expect("valid arguments")
}

fn assert_held(report: &Report, connections: u64) {
    assert_eq!(report.connections_up, Some(connections), "{report}");
    assert_eq!(report.failed, 0, "{report}");
    assert_eq!(report.dropped, 0, "{report}");
    let ready = report.ready_ms.expect("time-to-ready samples");
    assert_eq!(ready.samples, connections);
    let server = report.server.as_ref().expect("server usage sampled");
    assert!(server.rss_kib_after > 0);
}

fn assert_traffic(report: &Report, sent: u64, deliveries: u64) {
    assert_eq!(report.messages_sent, Some(sent), "{report}");
    assert_eq!(report.messages_acked, Some(sent), "{report}");
    assert_eq!(report.expected_deliveries, Some(deliveries), "{report}");
    assert_eq!(report.deliveries, Some(deliveries), "{report}");
    assert_eq!(report.order_errors, 0, "{report}");
    assert_eq!(report.error_frames, 0, "{report}");
    assert_eq!(report.timed_out, 0, "{report}");
    assert_eq!(
        report.delivery_ms.expect("delivery latency").samples,
        deliveries
    );
    assert_eq!(report.ack_ms.expect("ack latency").samples, sent);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON result");
    assert_eq!(json["deliveries"], deliveries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_on_socket_hub() {
    let hub = spawn_hub().await;
    let report = load(
        "socket-hub",
        &hub.url,
        &["--scenario", "idle", "--connections", "5"],
    )
    .await;
    assert_held(&report, 5);
    assert_eq!(report.rooms, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_over_two_worker_processes() {
    let hub = spawn_hub().await;
    let exe = env!("CARGO_BIN_EXE_socket-hub-load");
    let args = [
        "--scenario",
        "idle",
        "--connections",
        "6",
        "--procs",
        "2",
        "--exe",
        exe,
    ];
    let report = load("socket-hub", &hub.url, &args).await;
    assert_held(&report, 6);
    assert_eq!(report.procs, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_storm_on_socket_hub() {
    let hub = spawn_hub().await;
    let args = ["--scenario", "connect-storm", "--connections", "8"];
    let report = load("socket-hub", &hub.url, &args).await;
    assert_held(&report, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_room_on_socket_hub() {
    let hub = spawn_hub().await;
    let args = [
        "--scenario",
        "hot-room",
        "--members",
        "5",
        "--senders",
        "2",
        "--rate",
        "5",
    ];
    let report = load("socket-hub", &hub.url, &args).await;
    // 2 senders x 5 messages, each delivered to all 5 members (senders included).
    assert_traffic(&report, 10, 50);
    assert!(report.server.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rooms_on_socket_hub() {
    let hub = spawn_hub().await;
    let args = [
        "--scenario",
        "many-rooms",
        "--rooms",
        "3",
        "--room-size",
        "2",
        "--rate",
        "3",
    ];
    let report = load("socket-hub", &hub.url, &args).await;
    // 6 senders x 3 messages, each delivered to the 2 members of its room.
    assert_traffic(&report, 18, 36);
    assert_eq!(report.rooms, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_on_a_peer_hub() {
    let peer = peer::spawn().await;
    let idle = load("peer", &peer, &["--scenario", "idle", "--connections", "5"]).await;
    assert_held(&idle, 5);
    let storm = load(
        "peer",
        &peer,
        &["--scenario", "connect-storm", "--connections", "8"],
    )
    .await;
    assert_held(&storm, 8);
    let hot = [
        "--scenario",
        "hot-room",
        "--members",
        "5",
        "--senders",
        "2",
        "--rate",
        "5",
    ];
    assert_traffic(&load("peer", &peer, &hot).await, 10, 50);
    let many = [
        "--scenario",
        "many-rooms",
        "--rooms",
        "3",
        "--room-size",
        "2",
        "--rate",
        "3",
    ];
    assert_traffic(&load("peer", &peer, &many).await, 18, 36);
}

/// A room-mate's message can reach a connection before that connection has seen the
/// start signal (its thread preempted between looking at the start and reading its
/// socket): it is the run's and must be counted, not read and dropped as pre-start
/// chatter (which showed as a few deliveries "timed out" on a busy machine, on every
/// server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_read_before_the_start_signal_is_counted() {
    let peer = peer::spawn_with(peer::Order::SecondSpeaksFirst).await;
    let many = [
        "--scenario",
        "many-rooms",
        "--rooms",
        "1",
        "--room-size",
        "2",
        "--rate",
        "1",
    ];
    assert_traffic(&load("peer", &peer, &many).await, 2, 4);
}

#[tokio::test]
async fn refuses_servers_off_this_machine() {
    let options = options(&[
        "socket-hub-load",
        "--url",
        "http://192.0.2.1:80",
        "--scenario",
        "idle",
        "--connections",
        "1",
    ]);
    let err = run(options).await.expect_err("non-loopback target refused");
    assert!(err.to_string().contains("loopback"), "{err}");
}
