//! `/v2/accounts/{A}/channels`: the account's calls in progress, and running a metaflow node on
//! one of them (`PUT .../channels/{CALL_ID}` with `{"action": "metaflow", "data": {node}}`).
//! With a shared PostgreSQL store both are cluster-wide: the list adds the channels of the
//! other alive nodes, and an action on a call another node holds is forwarded to that node.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value};

use super::envelope::Reply;
use super::forwarded;
use super::nodes::check_node;
use super::{ApiError, V2State};
use crate::cluster::with_node;
use crate::store::Collection;

/// 404 unless `account_id` exists (shared by the routes under an account).
pub(super) fn require_account(state: &V2State, account_id: &str) -> Result<(), ApiError> {
    match state
        .shared
        .store
        .read()?
        .get(Collection::Accounts, account_id, "")?
    {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound {
            kind: "account",
            id: account_id.to_owned(),
        }),
    }
}

/// `GET`: the account's channels as the call core reports them, plus, in a cluster, those of
/// the other alive nodes (each channel then names its `node`). While the cluster database is
/// away the local channels alone are listed.
pub(super) async fn list(
    State(state): State<V2State>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    let account = account_id.clone();
    let local = state
        .blocking(move |state| {
            require_account(state, &account)?;
            Ok(state.shared.live.list(&account))
        })
        .await?;
    let Some(cluster) = state.cluster() else {
        return Ok(Reply::ok(Value::Array(local), None));
    };
    let mut channels: Vec<Value> = local
        .into_iter()
        .map(|channel| with_node(channel, cluster.node_id()))
        .collect();
    match cluster.remote_channels(&account_id).await {
        Ok(remote) => channels.extend(remote),
        Err(error) => {
            let error = crate::base::ErrorChain(&error);
            tracing::debug!(%error, "channels listed from this node only");
        }
    }
    Ok(Reply::ok(Value::Array(channels), None))
}

/// Validates `node` (its problems named under `data`) and hands it to call `call_id` of
/// `account_id`: the outer `Err` is the API's answer (no such account, a bad node), the inner
/// one why this node's call core did not take it (no such call here).
pub(super) async fn run_node(
    state: &V2State,
    account_id: &str,
    call_id: &str,
    node: Value,
) -> Result<Result<(), String>, ApiError> {
    let (account, call) = (account_id.to_owned(), call_id.to_owned());
    state
        .blocking(move |state| {
            require_account(state, &account)?;
            let node = check_node(state, node, "data").map_err(ApiError::Validation)?;
            Ok(state.shared.live.run_metaflow(&account, &call, node))
        })
        .await
}

/// The action request: `{"action": .., "data": node}`, either bare or inside Kazoo's `data`.
fn action_request(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    let Value::Object(mut outer) = value else {
        return Err(ApiError::BadRequest(
            "request body must be a JSON object like {\"action\": \"metaflow\", \"data\": {...}}"
                .into(),
        ));
    };
    if outer.contains_key("action") {
        return Ok(outer);
    }
    match outer.remove("data") {
        Some(Value::Object(inner)) => Ok(inner),
        _ => Err(ApiError::field("action", "required", "action is required")),
    }
}

/// `PUT`: validates the node and hands it to the call; a call another node of the cluster
/// holds is forwarded to that node (unless this request is itself a forwarded one), whose
/// answer is given back. 404 when no node knows the call.
pub(super) async fn act(
    State(state): State<V2State>,
    headers: HeaderMap,
    Path((account_id, call_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let mut request = action_request(&body)?;
    match request.get("action") {
        Some(Value::String(action)) if action == "metaflow" => {}
        Some(Value::String(_)) => {
            return Err(ApiError::field("action", "enum", "action must be metaflow"));
        }
        Some(_) => return Err(ApiError::field("action", "type", "action must be a string")),
        None => return Err(ApiError::field("action", "required", "action is required")),
    }
    let node = request.remove("data").unwrap_or(Value::Null);
    let local = run_node(&state, &account_id, &call_id, node).await?;
    let reason = match local {
        Ok(()) => return Ok(accepted(Value::Object(Map::new()))),
        Err(reason) => reason,
    };
    tracing::debug!(%call_id, %reason, "channel action refused locally");
    let unknown = || ApiError::NotFound {
        kind: "call",
        id: call_id.clone(),
    };
    let Some(cluster) = state.cluster() else {
        return Err(unknown());
    };
    if forwarded::from_another_node(&headers) {
        return Err(unknown()); // already forwarded once: never again
    }
    let owner = match cluster.call_owner(&account_id, &call_id).await {
        Ok(Some(owner)) => owner,
        Ok(None) => return Err(unknown()),
        Err(error) => {
            let error = crate::base::ErrorChain(&error);
            tracing::debug!(%error, %call_id, "call owner unknown: answering from this node only");
            return Err(unknown());
        }
    };
    let path = forwarded::path(&account_id, "channels", &call_id);
    let text = String::from_utf8_lossy(&body).into_owned();
    let what = format!("call {call_id}");
    let (status, data) =
        forwarded::envelope(cluster, &owner, Method::PUT, &path, text, &what).await?;
    match status {
        status if status.is_success() => Ok(Reply {
            status,
            data,
            revision: None,
        }),
        StatusCode::NOT_FOUND => Err(unknown()),
        other => Err(forwarded::refused(&owner, &what, other)),
    }
}

/// The 202 of an action handed to the call.
fn accepted(data: Value) -> Reply {
    Reply {
        status: StatusCode::ACCEPTED,
        data,
        revision: None,
    }
}
