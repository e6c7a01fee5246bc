//! Logs and metrics setup.

use metrics_exporter_prometheus::PrometheusHandle;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global log subscriber (`RUST_LOG` filters; default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    // Already installed (tests start many apps in one process): keep the first.
    let _ = result;
}

/// The process-wide Prometheus recorder, installed on first use with every metric of
/// [`crate::metrics`] registered; `None` if another recorder was installed first.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    let handle = crate::metrics::recorder();
    crate::metrics::register_all();
    handle
}
