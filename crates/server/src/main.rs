//! The `socket-hub` binary: parse the config, start the app, stop on SIGTERM/Ctrl-C.

use anyhow::Context;

/// jemalloc returns freed memory to the system and keeps per-connection overhead small;
/// glibc's allocator kept every thread's 19 MiB argon2 buffer for good.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use clap::Parser;
use socket_hub::config::Cli;
use socket_hub::{App, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Cli::parse().into_config();
    telemetry::init_logging(config.log_format);
    raise_open_files_limit();
    #[cfg(all(unix, not(target_env = "msvc")))]
    tokio::spawn(allocator_stats_on_sigusr1());
    // Named in the log without its password.
    let database = socket_hub::store::redact(&config.database_url());
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("socket-hub: {err}");
            std::process::exit(2);
        }
    };
    tracing::info!(
        url = %format!("http://{}", app.local_addr()),
        database = %database,
        "Socket-Hub listening; data kept in the database shown"
    );
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; draining connections");
        shutdown.cancel();
    });
    app.run_until_stopped().await.context("server failed")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Every connection is a file descriptor: take the whole hard limit, not the soft one
/// the shell happened to set (often 1024).
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(open_files = limit, "open-files limit"),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-files limit"),
    }
}

/// `kill -USR1 <pid>` logs the allocator's totals and prints jemalloc's full statistics
/// (size classes included) to stderr: how memory per connection is accounted
/// (BENCHMARKS.md, "Memory per connection").
#[cfg(all(unix, not(target_env = "msvc")))]
async fn allocator_stats_on_sigusr1() {
    use tikv_jemalloc_ctl::{epoch, stats, stats_print};
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        return;
    };
    while usr1.recv().await.is_some() {
        if epoch::advance().is_err() {
            continue;
        }
        tracing::info!(
            allocated = stats::allocated::read().unwrap_or(0),
            active = stats::active::read().unwrap_or(0),
            metadata = stats::metadata::read().unwrap_or(0),
            resident = stats::resident::read().unwrap_or(0),
            mapped = stats::mapped::read().unwrap_or(0),
            "allocator statistics (bytes)"
        );
        let mut options = stats_print::Options::default();
        options.skip_per_arena = true;
        options.skip_mutex_statistics = true;
        let _ = stats_print::stats_print(std::io::stderr(), options);
    }
}
