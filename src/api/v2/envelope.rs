//! The Kazoo response envelope: handlers answer with a [`Reply`] or an [`ApiError`]; the
//! [`wrap`] middleware checks the token (or, on the routes another node of the cluster forwards
//! to, the cluster secret) and adds the fields every reply carries (`auth_token`,
//! `node`, `request_id`, `status`, `timestamp`, `version`).

use std::time::SystemTime;

use axum::extract::{Request, State};
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Map, Value, json};

use super::V2State;
use super::access::{admit, forwardable};
use crate::base::Problem;
use crate::cluster::NODE_TOKEN_HEADER;
use crate::events::clock::format_rfc3339_seconds;
use crate::store::StoreError;

/// Header carrying the API token, as in Kazoo.
pub(super) const AUTH_TOKEN_HEADER: &str = "x-auth-token";
/// Largest error body of a non-envelope response that is quoted in the envelope.
const QUOTED_BODY_LIMIT: usize = 4096;

/// Why a `/v2` request failed; each variant maps to an HTTP status and a Kazoo error envelope.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Fields that break the schema; every one is named in `data`.
    #[error("validation failed")]
    Validation(Vec<Problem>),
    /// The body is not JSON; the text says where parsing stopped (Kazoo's `json.invalid`).
    #[error("validation error")]
    InvalidJson(String),
    /// The request is well-formed JSON but not what the route takes.
    #[error("{0}")]
    BadRequest(String),
    /// No or an unknown `X-Auth-Token`; `how` tells the client how to get in (where the
    /// generated token is kept, or that a configured one is needed).
    #[error("invalid credentials")]
    Unauthorized {
        /// Shown as `data.message`.
        how: String,
    },
    /// The operation is never allowed on this document.
    #[error("{0}")]
    Forbidden(String),
    /// The account, user, device, callflow or call does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked for (`account`, `user`, ...).
        kind: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The write named a revision that is not the document's current one.
    #[error("conflicting revision")]
    Conflict {
        /// The current revision, `None` when the document does not exist.
        current: Option<String>,
    },
    /// The request is understood but cannot be carried out as things are (a reload whose
    /// configuration does not load).
    #[error("{0}")]
    Unprocessable(String),
    /// The operation is not available in this process right now.
    #[error("{0}")]
    Unavailable(String),
    /// The upload is larger or longer than the proxy accepts (a media file).
    #[error("{0}")]
    TooLarge(String),
    /// The store failed; nothing was changed.
    #[error(
        "{}",
        if matches!(.0, StoreError::Unavailable { .. }) {
            "datastore unavailable"
        } else {
            "datastore fault"
        }
    )]
    Store(#[from] StoreError),
    /// A worker thread failed.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A single-field validation failure.
    pub fn field(path: &str, rule: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![Problem {
            path: path.to_owned(),
            rule: rule.to_owned(),
            message: message.into(),
            target: None,
            value: None,
        }])
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::InvalidJson(_) | Self::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) | Self::Store(StoreError::Unavailable { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Store(_) | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `data` member: per-field rules for validation, a message (and more) otherwise.
    fn data(&self) -> Value {
        match self {
            Self::Validation(problems) => {
                let mut fields = Map::new();
                for problem in problems {
                    let rules = fields
                        .entry(problem.path.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(rules) = rules {
                        let mut detail = Map::new();
                        detail.insert("message".into(), json!(problem.message));
                        if let Some(target) = &problem.target {
                            detail.insert("target".into(), target.clone());
                        }
                        if let Some(value) = &problem.value {
                            detail.insert("value".into(), value.clone());
                        }
                        rules.insert(problem.rule.clone(), Value::Object(detail));
                    }
                }
                Value::Object(fields)
            }
            Self::InvalidJson(message) => json!({
                "json": { "invalid": { "message": message, "target": "body" } }
            }),
            Self::NotFound { kind, id } => {
                json!({ "message": self.to_string(), "cause": id, "kind": kind })
            }
            Self::Unauthorized { how } if how.is_empty() => json!({ "message": self.to_string() }),
            Self::Unauthorized { how } => json!({ "message": format!("{self}: {how}") }),
            Self::Conflict { current } => json!({
                "message": "the document was changed since that revision; fetch it and retry",
                "current_revision": current,
            }),
            Self::Store(StoreError::Unavailable { reason }) => {
                tracing::warn!(%reason, "API write refused: the store cannot take writes");
                json!({ "message": format!("datastore unavailable: {reason}") })
            }
            Self::Store(error) => {
                let error = crate::base::ErrorChain(error);
                tracing::error!(%error, "store failure on an API request");
                json!({ "message": "datastore fault" })
            }
            other => json!({ "message": other.to_string() }),
        }
    }
}

/// The token a login issued, put in the reply's envelope as `auth_token`.
#[derive(Clone)]
pub(super) struct IssuedToken(pub String);

/// A successful reply: status, `data` and, when a document was returned or changed, its revision.
pub(super) struct Reply {
    /// HTTP status (200, or 201 for a creation, 202 for an accepted channel action).
    pub status: StatusCode,
    /// The `data` member.
    pub data: Value,
    /// The document's revision, when there is one.
    pub revision: Option<String>,
}

impl Reply {
    /// A 200 reply.
    pub(super) fn ok(data: Value, revision: Option<String>) -> Self {
        Self {
            status: StatusCode::OK,
            data,
            revision,
        }
    }
}

/// The reply-specific part of an envelope, handed from a handler to [`wrap`].
#[derive(Clone)]
struct Pending {
    status: StatusCode,
    members: Map<String, Value>,
    revision: Option<String>,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut members = Map::new();
        members.insert("data".into(), self.data);
        let pending = Pending {
            status: self.status,
            members,
            revision: self.revision,
        };
        (self.status, axum::Extension(pending)).into_response()
    }
}

impl From<&ApiError> for Pending {
    fn from(error: &ApiError) -> Self {
        let status = error.status();
        let mut members = Map::new();
        members.insert("data".into(), error.data());
        members.insert("error".into(), Value::String(status.as_u16().to_string()));
        members.insert("message".into(), Value::String(error.to_string()));
        let revision = match error {
            ApiError::Conflict { current } => current.clone(),
            _ => None,
        };
        Pending {
            status,
            members,
            revision,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let pending = Pending::from(&self);
        (pending.status, axum::Extension(pending)).into_response()
    }
}

/// Middleware on every `/v2` route: refuses requests without a configured token (except the
/// OpenAPI document) and renders every reply, axum's own rejections included, as an envelope.
pub(super) async fn wrap(State(state): State<V2State>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(AUTH_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let from_node = forwardable(request.method(), request.uri().path())
        && state.cluster().is_some_and(|cluster| {
            request
                .headers()
                .get(NODE_TOKEN_HEADER)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|offered| cluster.accepts_node_token(offered))
        });
    if !from_node
        && let Err(refused) = admit(&state, request.method(), request.uri().path(), &token)
    {
        return render(&token, Pending::from(&refused));
    }
    let mut response = next.run(request).await;
    // A login answers with the token it issued, as Kazoo's envelope does.
    let token = match response.extensions_mut().remove::<IssuedToken>() {
        Some(IssuedToken(issued)) => issued,
        None => token,
    };
    if let Some(pending) = response.extensions_mut().remove::<Pending>() {
        return render(&token, pending);
    }
    if response.status().is_success() {
        return response;
    }
    let status = response.status();
    let error = if status == StatusCode::METHOD_NOT_ALLOWED {
        ApiError::MethodNotAllowed
    } else {
        let quoted = axum::body::to_bytes(response.into_body(), QUOTED_BODY_LIMIT)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let reason = status.canonical_reason().unwrap_or("error");
        ApiError::BadRequest(if quoted.is_empty() {
            reason.to_owned()
        } else {
            quoted
        })
    };
    let mut pending = Pending::from(&error);
    pending.status = status;
    pending
        .members
        .insert("error".into(), Value::String(status.as_u16().to_string()));
    render(&token, pending)
}

/// The `node` every envelope of this process names (Kazoo: the Erlang node that answered).
fn node_name() -> &'static str {
    static NODE: OnceLock<String> = OnceLock::new();
    NODE.get_or_init(|| format!("metaflow-proxy@{:016x}", fastrand::u64(..)))
}

/// The 404 envelope for a path no route serves, so that a Kazoo client reads `request_id` and
/// the rest as from any other reply (the API router's fallback).
pub fn unknown_route(headers: &HeaderMap, path: &str) -> Response {
    let token = headers
        .get(AUTH_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let error = ApiError::NotFound {
        kind: "route",
        id: path.to_owned(),
    };
    let mut pending = Pending::from(&error);
    pending
        .members
        .insert("message".into(), Value::String("not_found".into()));
    render(token, pending)
}

/// Builds the full envelope, keys in Kazoo's (alphabetical) order.
fn render(token: &str, pending: Pending) -> Response {
    let request_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let mut body = Map::new();
    body.insert("auth_token".into(), Value::String(token.to_owned()));
    let mut members = pending.members;
    body.insert("data".into(), members.remove("data").unwrap_or(Value::Null));
    if let Some(error) = members.remove("error") {
        body.insert("error".into(), error);
    }
    if let Some(message) = members.remove("message") {
        body.insert("message".into(), message);
    }
    body.insert("node".into(), Value::String(node_name().to_owned()));
    body.insert("request_id".into(), Value::String(request_id.clone()));
    if let Some(revision) = &pending.revision {
        body.insert("revision".into(), Value::String(revision.clone()));
    }
    let status = if pending.status.is_success() {
        "success"
    } else {
        "error"
    };
    body.insert("status".into(), Value::String(status.into()));
    body.insert(
        "timestamp".into(),
        Value::String(format_rfc3339_seconds(SystemTime::now())),
    );
    body.insert(
        "version".into(),
        Value::String(env!("CARGO_PKG_VERSION").into()),
    );
    let mut response = (pending.status, Json(Value::Object(body))).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    let etag = pending
        .revision
        .as_deref()
        .filter(|_| pending.status.is_success());
    if let Some(Ok(value)) = etag.map(|rev| HeaderValue::from_str(&format!("\"{rev}\""))) {
        headers.insert(header::ETAG, value);
    }
    response
}
