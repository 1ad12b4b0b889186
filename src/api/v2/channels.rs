//! `/v2/accounts/{A}/channels`: the account's calls in progress, and running a metaflow node on
//! one of them (`PUT .../channels/{CALL_ID}` with `{"action": "metaflow", "data": {node}}`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::envelope::Reply;
use super::nodes::check_node;
use super::{ApiError, V2State};
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

/// `GET`: the account's channels as the call core reports them.
pub(super) async fn list(
    State(state): State<V2State>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    state
        .blocking(move |state| {
            require_account(state, &account_id)?;
            Ok(Reply::ok(
                Value::Array(state.shared.live.list(&account_id)),
                None,
            ))
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

/// `PUT`: validates the node and hands it to the call; 404 when the call is unknown.
pub(super) async fn act(
    State(state): State<V2State>,
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
    state
        .blocking(move |state| {
            require_account(state, &account_id)?;
            let node = check_node(state, node, "data").map_err(ApiError::Validation)?;
            match state.shared.live.run_metaflow(&call_id, node) {
                Ok(()) => Ok(Reply {
                    status: StatusCode::ACCEPTED,
                    data: Value::Object(Map::new()),
                    revision: None,
                }),
                Err(reason) => {
                    tracing::debug!(%call_id, %reason, "channel action refused");
                    Err(ApiError::NotFound {
                        kind: "call",
                        id: call_id,
                    })
                }
            }
        })
        .await
}
