//! One channel of `/v2/accounts/{A}/channels/{CALL_ID}` as Kazoo's `cb_channels` serves it:
//! `GET` reads the call, `POST` with `{"data": {"action": ...}}` acts on it (`transfer`,
//! `callflow`, `intercept`, `hangup`, `break`; 202 "... initiated"). Each action becomes the metaflow node a dialed code
//! would run, so it behaves exactly as the code would, events included.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::channels::{require_account, run_node};
use super::envelope::Reply;
use super::{ApiError, V2State};

/// `GET`: the channel of the account with this Call-ID (the caller's), as in the list; in a
/// cluster, another node's channel too. 404 when no node has it.
pub(super) async fn read(
    State(state): State<V2State>,
    Path((account_id, call_id)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let (account, wanted) = (account_id.clone(), call_id.clone());
    let local = state
        .blocking(move |state| {
            require_account(state, &account)?;
            Ok(find(state.shared.live.list(&account), &wanted))
        })
        .await?;
    if let Some(channel) = local {
        return Ok(Reply::ok(channel, None));
    }
    let remote = match state.cluster() {
        Some(cluster) => cluster
            .remote_channels(&account_id)
            .await
            .ok()
            .and_then(|channels| find(channels, &call_id)),
        None => None,
    };
    remote
        .map(|channel| Reply::ok(channel, None))
        .ok_or(ApiError::NotFound {
            kind: "call",
            id: call_id,
        })
}

/// The channel whose `call_id` is `call_id`.
fn find(channels: Vec<Value>, call_id: &str) -> Option<Value> {
    channels
        .into_iter()
        .find(|channel| channel.get("call_id").and_then(Value::as_str) == Some(call_id))
}

/// `POST`: runs the action on the call (this node's calls only) and answers 202 with Kazoo's
/// "`action` initiated".
pub(super) async fn command(
    State(state): State<V2State>,
    Path((account_id, call_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request = request_data(&body)?;
    let (action, node) = node_for(&request)?;
    let outcome = run_node(&state, &account_id, &call_id, node).await?;
    match outcome {
        Ok(()) => Ok(Reply {
            status: StatusCode::ACCEPTED,
            data: json!(format!("{action} initiated")),
            revision: None,
        }),
        Err(reason) => {
            tracing::debug!(%call_id, %reason, "channel command refused");
            Err(ApiError::NotFound {
                kind: "call",
                id: call_id,
            })
        }
    }
}

/// The request's fields: Kazoo's envelope `{"data": {...}}`, or the bare object.
fn request_data(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    match value {
        Value::Object(mut outer) => match outer.remove("data") {
            Some(Value::Object(inner)) => Ok(inner),
            Some(_) => Err(ApiError::field("data", "type", "data must be an object")),
            None => Ok(outer),
        },
        _ => Err(ApiError::BadRequest(
            "request body must be a JSON object like {\"data\": {\"action\": \"hangup\"}}".into(),
        )),
    }
}

/// The action's name and the metaflow node that performs it, or Kazoo's 400 naming the field.
fn node_for(request: &Map<String, Value>) -> Result<(String, Value), ApiError> {
    let action = match request.get("action") {
        Some(Value::String(action)) => action.clone(),
        Some(_) => return Err(ApiError::field("action", "type", "action must be a string")),
        None => return Err(ApiError::field("action", "required", "action is required")),
    };
    let text = |key: &str| request.get(key).and_then(Value::as_str);
    let node = match action.as_str() {
        "transfer" => {
            let Some(target) = text("target").filter(|t| !t.is_empty()) else {
                return Err(ApiError::field(
                    "target",
                    "required",
                    "No target destination specified",
                ));
            };
            let mut data = Map::new();
            data.insert("target".into(), json!(target));
            // Kazoo's request says `transfer-type`; its metaflow node says `transfer_type`.
            if let Some(kind) = text("transfer-type").or(text("transfer_type")) {
                data.insert("transfer_type".into(), json!(kind));
            }
            for key in ["takeback_dtmf", "moh", "ringback"] {
                if let Some(value) = request.get(key).filter(|v| !v.is_null()) {
                    data.insert(key.into(), value.clone());
                }
            }
            json!({"module": "transfer", "data": data})
        }
        "callflow" => {
            let mut data = Map::new();
            if let Some(id) = text("id").filter(|id| !id.is_empty()) {
                data.insert("id".into(), json!(id));
            } else if let Some(captures) = request.get("captures").filter(|c| c.is_array()) {
                data.insert("captures".into(), captures.clone());
            } else {
                return Err(ApiError::field(
                    "id",
                    "required",
                    "No callflow id (or captures) specified",
                ));
            }
            json!({"module": "callflow", "data": data})
        }
        "intercept" => {
            let mut data = Map::new();
            for key in ["target_type", "target_id"] {
                let Some(value) = text(key).filter(|v| !v.is_empty()) else {
                    let message = format!("No {} specified", key.replace('_', " "));
                    return Err(ApiError::field(key, "required", message));
                };
                data.insert(key.into(), json!(value));
            }
            for key in ["unbridged_only", "auto_answer", "can_call_self"] {
                if let Some(value) = request.get(key).filter(|v| v.is_boolean()) {
                    data.insert(key.into(), value.clone());
                }
            }
            json!({"module": "intercept", "data": data})
        }
        "hangup" => json!({"module": "hangup", "data": {}}),
        "break" => json!({"module": "break", "data": {}}),
        _ => {
            return Err(ApiError::field(
                "action",
                "enum",
                "action must be one of transfer, callflow, intercept, hangup, break",
            ));
        }
    };
    Ok((action, node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(request: Value) -> Result<(String, Value), ApiError> {
        let Value::Object(map) = request else {
            unreachable!()
        };
        node_for(&map)
    }

    #[test]
    fn a_transfer_becomes_the_transfer_node_kazoo_would_run() {
        let (action, node) = node(json!({"action": "transfer", "target": "1234",
            "transfer-type": "blind", "takeback_dtmf": "*1", "moh": null}))
        .unwrap();
        assert_eq!(action, "transfer");
        assert_eq!(
            node,
            json!({"module": "transfer", "data": {"target": "1234", "transfer_type": "blind", "takeback_dtmf": "*1"}})
        );
    }

    #[test]
    fn a_transfer_without_target_names_the_field() {
        let Err(ApiError::Validation(problems)) = node(json!({"action": "transfer"})) else {
            panic!("expected a validation error");
        };
        assert_eq!(problems[0].path, "target");
        assert_eq!(problems[0].rule, "required");
    }

    #[test]
    fn hangup_and_break_need_no_data_and_unknown_actions_are_refused() {
        assert_eq!(
            node(json!({"action": "hangup"})).unwrap().1,
            json!({"module": "hangup", "data": {}})
        );
        assert_eq!(
            node(json!({"action": "break"})).unwrap().1,
            json!({"module": "break", "data": {}})
        );
        assert_eq!(
            node(json!({"action": "callflow", "id": "cf1"})).unwrap().1,
            json!({"module": "callflow", "data": {"id": "cf1"}})
        );
        let Err(ApiError::Validation(problems)) = node(json!({"action": "callflow"})) else {
            panic!("a callflow without id must be refused");
        };
        assert_eq!(problems[0].path, "id");
        assert_eq!(
            node(json!({"action": "intercept", "target_type": "device", "target_id": "d1", "unbridged_only": false}))
                .unwrap()
                .1,
            json!({"module": "intercept", "data": {"target_type": "device", "target_id": "d1", "unbridged_only": false}})
        );
        let Err(ApiError::Validation(problems)) = node(json!({"action": "dance"})) else {
            panic!("an unknown action must be refused");
        };
        assert_eq!(problems[0].path, "action");
    }

    #[test]
    fn kazoo_envelopes_are_unwrapped() {
        let data = request_data(br#"{"data": {"action": "hangup"}}"#).unwrap();
        assert_eq!(data.get("action"), Some(&json!("hangup")));
        let bare = request_data(br#"{"action": "break"}"#).unwrap();
        assert_eq!(bare.get("action"), Some(&json!("break")));
    }
}
