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
