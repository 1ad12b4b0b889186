//! Counts every API request by route template, method and status, so that a path carrying ids
//! (`/v2/accounts/4f...`) never becomes a series of its own.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::metrics::Metrics;

/// Route label of a request that matched no route (answered by the fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Wraps every route of `router` (and its fallback) with the request counter; call it last,
/// after every `merge`, so that each route is covered.
pub fn with_request_metrics(router: Router, metrics: Arc<Metrics>) -> Router {
    router.layer(middleware::from_fn_with_state(metrics, count_request))
}

async fn count_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    metrics
        .feature()
        .api_request(&route, &method, response.status().as_u16());
    response
}
