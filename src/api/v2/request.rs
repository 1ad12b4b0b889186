//! Reading a Kazoo request envelope (`{"data": {...}}`), the revision a write expects, and the
//! merge rules of `PATCH`.

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::ApiError;
use crate::base::Problem;

/// Kazoo's `type` violation of `path`, which should have been a `wanted`.
pub(super) fn wrong_type(path: &str, wanted: &str, value: Option<Value>) -> ApiError {
    ApiError::Validation(vec![Problem {
        path: path.to_owned(),
        rule: "type".into(),
        message: format!("Value did not match type(s): {wanted}"),
        target: Some(Value::String(wanted.to_owned())),
        value,
    }])
}

/// What a write request carries: the document and, optionally, the revision it was based on.
pub(super) struct Submitted {
    /// The `data` object without private (`_`/`pvt_` prefixed) keys and without `id`.
    pub data: Map<String, Value>,
    /// The revision from `If-Match` or `data._rev`, if the client sent one.
    pub expected_rev: Option<String>,
}

/// Parses a write request body as Kazoo's `api_util` does: no body is an empty `data`; JSON
/// that does not parse is `json.invalid`; otherwise the envelope must hold an object under
/// `data` (Kazoo's envelope schema: `data` required).
pub(super) fn submitted(headers: &HeaderMap, body: &[u8]) -> Result<Submitted, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Submitted {
            data: Map::new(),
            expected_rev: if_match(headers),
        });
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    let Value::Object(mut envelope) = value else {
        return Err(wrong_type("data", "object", None));
    };
    let mut data = match envelope.remove("data") {
        Some(Value::Object(data)) => data,
        Some(other) => return Err(wrong_type("data", "object", Some(other))),
        None => {
            return Err(ApiError::Validation(vec![Problem {
                path: "data".into(),
                rule: "required".into(),
                message: "Field is required but missing".into(),
                target: None,
                value: Some(Value::String("data".into())),
            }]));
        }
    };
    let from_body = match data.get("_rev") {
        Some(Value::String(rev)) => Some(rev.clone()),
        _ => None,
    };
    data.retain(|key, _| !(key.starts_with('_') || key.starts_with("pvt_") || key == "id"));
    Ok(Submitted {
        data,
        expected_rev: if_match(headers).or(from_body),
    })
}

/// The revision named by an `If-Match` header (quotes and a weak `W/` prefix removed; `*` none).
pub(super) fn if_match(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::IF_MATCH)?.to_str().ok()?.trim();
    let unquoted = raw.trim_start_matches("W/").trim_matches('"');
    (!unquoted.is_empty() && unquoted != "*").then(|| unquoted.to_owned())
}

/// Refuses a write whose expected revision is not the current one (`None` = no document).
pub(super) fn check_revision(
    expected: Option<&str>,
    current: Option<&str>,
) -> Result<(), ApiError> {
    match expected {
        Some(expected) if Some(expected) != current => Err(ApiError::Conflict {
            current: current.map(str::to_owned),
        }),
        _ => Ok(()),
    }
}

/// RFC 7396 JSON merge patch: objects merge recursively, `null` removes, anything else replaces.
pub(super) fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(inner_patch) => {
                let slot = target
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(inner_target) = slot {
                    merge_patch(inner_target, inner_patch);
                } else {
                    let mut fresh = Map::new();
                    merge_patch(&mut fresh, inner_patch);
                    *slot = Value::Object(fresh);
                }
            }
            other => {
                target.insert(key, other);
            }
        }
    }
}

/// Metaflow `PATCH`: top-level keys replace (or with `null` remove); `numbers` and `patterns`
/// merge code by code, each code's node replaced whole (or removed by `null`).
pub(super) fn merge_metaflows(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        let by_code = key == "numbers" || key == "patterns";
        match (value, target.get_mut(&key)) {
            (Value::Null, _) => {
                target.remove(&key);
            }
            (Value::Object(codes), Some(Value::Object(existing))) if by_code => {
                for (code, node) in codes {
                    if node.is_null() {
                        existing.remove(&code);
                    } else {
                        existing.insert(code, node);
                    }
                }
            }
            (Value::Object(mut codes), _) if by_code => {
                codes.retain(|_, node| !node.is_null());
                target.insert(key, Value::Object(codes));
            }
            (other, _) => {
                target.insert(key, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = object(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}));
        merge_patch(
            &mut target,
            object(json!({"b": {"c": null, "x": 5}, "e": null, "f": [1]})),
        );
        assert_eq!(
            Value::Object(target),
            json!({"a": 1, "b": {"d": 3, "x": 5}, "f": [1]})
        );
    }

    #[test]
    fn metaflow_merge_replaces_nodes_whole() {
        let mut target = object(json!({
            "binding_digit": "*",
            "numbers": {"1": {"module": "hangup", "data": {"x": 1}}, "2": {"module": "hangup"}}
        }));
        let patch =
            json!({"binding_digit": "#", "numbers": {"1": {"module": "record_call"}, "2": null}});
        merge_metaflows(&mut target, object(patch));
        let expected = json!({"binding_digit": "#", "numbers": {"1": {"module": "record_call"}}});
        assert_eq!(Value::Object(target), expected);
    }

    #[test]
    fn revision_check_compares_with_current() {
        assert!(check_revision(None, Some("1-a")).is_ok());
        assert!(check_revision(Some("1-a"), Some("1-a")).is_ok());
        assert!(check_revision(Some("1-a"), Some("2-b")).is_err());
        assert!(check_revision(Some("1-a"), None).is_err());
    }
}
