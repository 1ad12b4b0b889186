//! Counts every API request by route template, method and status, so that a path carrying ids
//! (`/v2/accounts/4f...`) never becomes a series of its own.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
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

/// The method as a label: extension methods a client makes up share `other`, so that no
/// request can add a series of its own.
fn method_label(method: &Method) -> &'static str {
    let known = [
        (Method::GET, "GET"),
        (Method::PUT, "PUT"),
        (Method::POST, "POST"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
    ];
    known
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| *label)
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
    let method = method_label(request.method());
    let response = next.run(request).await;
    metrics
        .feature()
        .api_request(&route, method, response.status().as_u16());
    response
}
