//! Liveness, readiness and metrics handlers, unauthenticated so that probes and scrapers work.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::ApiState;

/// Content type of the Prometheus text exposition format.
pub(super) const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /live`: the process is up and the API answers.
pub(super) async fn live() -> &'static str {
    "ok"
}

/// `GET /ready`: 200 once every listener is serving, 503 before that, during shutdown, and while
/// the store cannot write (the body then names the store's problem).
pub(super) async fn ready(State(state): State<ApiState>) -> (StatusCode, String) {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready".to_owned());
    }
    match state.store.as_ref().and_then(|store| store.problem()) {
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: degraded: the store cannot write ({problem}); calls go on"),
        ),
        None => (StatusCode::OK, "ready".to_owned()),
    }
}

/// `GET /metrics`: every counter in the Prometheus text format 0.0.4.
pub(super) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}
