//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use socket_hub_protocol::rest::Readiness;

use crate::state::AppState;

/// `/healthz`, `/readyz`, `/metrics`, `/api/openapi.json`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
}

/// Alive: the process answers HTTP.
async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the writer can commit a write right now (a probe write through the same
/// path as every message), so messages can be stored and acknowledged; 503 otherwise
/// (disk full, database unreachable), so a load balancer sends no new connections here.
/// The broker's state is reported.
async fn readyz(State(state): State<AppState>) -> Response {
    let store_ok = match state.store.ready().await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "readiness probe write failed");
            false
        }
    };
    let broker_ok = state.broker.is_connected();
    // Fan-out being down degrades live delivery but loses nothing (messages are stored
    // and refilled), so it is reported without taking the instance out of rotation.
    let ready = store_ok && !state.gateway.shutdown.is_cancelled();
    let describe =
        |name: &str, ok: bool| format!("{name}: {}", if ok { "ok" } else { "unavailable" });
    let body = Readiness {
        ready,
        store: describe(state.store.backend().name(), store_ok),
        broker: describe(state.broker.backend(), broker_ok),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed").into_response(),
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}
