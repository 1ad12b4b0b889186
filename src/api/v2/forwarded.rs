//! Requests another node of the cluster answers: a channel action on a call it holds, a
//! recording it keeps. The request goes to the owner with the cluster secret; its answer comes
//! back as this node's (its envelope's `data` and status, or the media stream as it is).

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::ApiError;
use crate::cluster::{Cluster, FORWARD_TIMEOUT, NODE_TOKEN_HEADER, Owner, encode_segment};

/// Largest envelope of another node's answer that is read.
const ENVELOPE_LIMIT: usize = 64 * 1024;

/// Whether this request came from another node: it is then answered locally, never forwarded
/// again.
pub(super) fn from_another_node(headers: &HeaderMap) -> bool {
    headers.contains_key(NODE_TOKEN_HEADER)
}

/// `/v2/accounts/{account}/{collection}/{id}`, each part encoded as one segment.
pub(super) fn path(account: &str, collection: &str, id: &str) -> String {
    format!(
        "/v2/accounts/{}/{collection}/{}",
        encode_segment(account),
        encode_segment(id)
    )
}

/// What is said when the owner cannot be asked.
fn unreachable(owner: &Owner, what: &str, error: &dyn std::error::Error) -> ApiError {
    let error = crate::base::ErrorChain(error);
    tracing::warn!(%error, node = %owner.node_id, what, "request not forwarded");
    ApiError::Unavailable(format!(
        "node {} holding {what} did not answer",
        owner.node_id
    ))
}

/// Sends the request and reads the owner's envelope: its status and `data`.
pub(super) async fn envelope(
    cluster: &Cluster,
    owner: &Owner,
    method: Method,
    path: &str,
    body: String,
    what: &str,
) -> Result<(StatusCode, Value), ApiError> {
    let response = cluster
        .forward(owner, method, path, None, body)
        .await
        .map_err(|e| unreachable(owner, what, &e))?;
    let status = response.status();
    let reading = axum::body::to_bytes(Body::new(response.into_body()), ENVELOPE_LIMIT);
    let answer = tokio::time::timeout(FORWARD_TIMEOUT, reading)
        .await
        .map_err(|e| unreachable(owner, what, &e))?
        .map_err(|e| unreachable(owner, what, &e))?;
    let data = serde_json::from_slice::<Value>(&answer)
        .ok()
        .and_then(|mut envelope| envelope.get_mut("data").map(Value::take))
        .unwrap_or(Value::Object(Map::new()));
    Ok((status, data))
}

/// What an answer other than 2xx or 404 from the owner becomes.
pub(super) fn refused(owner: &Owner, what: &str, status: StatusCode) -> ApiError {
    ApiError::Unavailable(format!(
        "node {} holding {what} answered {status}",
        owner.node_id
    ))
}

/// Sends a `GET` for media and streams the owner's answer back as it is (status, type, length,
/// file name and body); a 404 there is `not_found`.
pub(super) async fn media(
    cluster: &Cluster,
    owner: &Owner,
    path: &str,
    accept: Option<&str>,
    what: &str,
    not_found: ApiError,
) -> Result<Response, ApiError> {
    let answer = cluster
        .forward(owner, Method::GET, path, accept, String::new())
        .await
        .map_err(|e| unreachable(owner, what, &e))?;
    let status = answer.status();
    if status == StatusCode::NOT_FOUND {
        return Err(not_found);
    }
    if !status.is_success() {
        return Err(refused(owner, what, status));
    }
    let (parts, body) = answer.into_parts();
    let mut response = (status, Body::new(body)).into_response();
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_DISPOSITION,
    ] {
        if let Some(value) = parts.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    Ok(response)
}
