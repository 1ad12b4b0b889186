//! HTTP API on `api-listen`: health checks and metrics here, Kazoo-style `/v2` routes beside them.

mod conn;
mod health;
mod tracking;
pub mod v2;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;

use crate::connlimit::ConnectionBudget;
use crate::metrics::Metrics;
use crate::store::StoreHealth;

pub use conn::{ApiConnStats, ApiLimits, serve_with_limits};
pub use tracking::{UNMATCHED_ROUTE, with_request_metrics};

/// What the health and metrics handlers read.
#[derive(Clone)]
pub struct ApiState {
    /// Set to true once SIP, media and the API are all serving; `/ready` answers 503 until then.
    pub ready: Arc<AtomicBool>,
    /// The process counters rendered on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The store's write health: `/ready` answers 503 naming the problem while it cannot write.
    pub store: Option<Arc<StoreHealth>>,
}

/// The API routes: `GET /live`, `GET /ready`, `GET /metrics`, and a JSON 404 for anything else.
/// More routes join with `router(state).merge(other)`; `other` must not set its own fallback.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/live", get(health::live))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .with_state(state)
}

/// Serves `router` on `listener` with the default [`ApiLimits`] and no shared budget until
/// `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(
        listener,
        router,
        shutdown,
        ApiLimits::default(),
        ConnectionBudget::unlimited(),
        Arc::new(ApiConnStats::default()),
    )
    .await
}

/// Kazoo's error envelope (with `request_id`, `node`, ...) for a path no route serves.
async fn not_found(headers: HeaderMap, uri: Uri) -> Response {
    v2::unknown_route(&headers, uri.path())
}
