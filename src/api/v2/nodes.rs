//! Checking a metaflow object (or a single node) against the schema and the module-specific
//! validator, then filling in module defaults with the normaliser: the form that is stored.

use serde_json::{Map, Value, json};

use super::V2State;
use crate::base::Problem;
use crate::metaflow::parse_metaflows;

/// Validates a metaflow object and returns its stored form: every node gets a `data` object
/// normalised for its module; top-level `null` members are dropped. Problem paths are prefixed
/// with `prefix` (e.g. `metaflow.` inside a callflow).
pub(super) fn check_metaflows(
    state: &V2State,
    mut doc: Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>, Vec<Problem>> {
    doc.retain(|_, value| !value.is_null());
    let prefixed = |problems: Vec<Problem>| -> Vec<Problem> {
        problems
            .into_iter()
            .map(|problem| Problem {
                path: join(prefix, &problem.path),
                ..problem
            })
            .collect()
    };
    parse_metaflows(&Value::Object(doc.clone())).map_err(prefixed)?;
    let mut problems = Vec::new();
    for group in ["numbers", "patterns"] {
        if let Some(Value::Object(codes)) = doc.get_mut(group) {
            for (code, node) in codes.iter_mut() {
                let path = join(prefix, &format!("{group}.{code}"));
                prepare_node(state, node, &path, &mut problems);
            }
        }
    }
    if problems.is_empty() {
        Ok(doc)
    } else {
        Err(problems)
    }
}

/// Validates one node (as sent to a live call) and returns its normalised form; problem paths
/// start with `path`.
pub(super) fn check_node(state: &V2State, node: Value, path: &str) -> Result<Value, Vec<Problem>> {
    let wrapped = json!({ "numbers": { "0": node.clone() } });
    parse_metaflows(&wrapped).map_err(|problems| {
        problems
            .into_iter()
            .map(|problem| {
                let rest = problem.path.strip_prefix("numbers.0").unwrap_or_default();
                Problem {
                    path: format!("{path}{rest}"),
                    ..problem
                }
            })
            .collect::<Vec<_>>()
    })?;
    let mut node = node;
    let mut problems = Vec::new();
    prepare_node(state, &mut node, path, &mut problems);
    if problems.is_empty() {
        Ok(node)
    } else {
        Err(problems)
    }
}

/// Runs the module validator on a schema-valid node and its children, then the normaliser.
fn prepare_node(state: &V2State, node: &mut Value, path: &str, problems: &mut Vec<Problem>) {
    let Value::Object(node) = node else {
        return;
    };
    let module = node
        .get("module")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !matches!(node.get("data"), Some(Value::Object(_))) {
        node.insert("data".into(), Value::Object(Map::new()));
    }
    if let Some(Value::Object(data)) = node.get_mut("data") {
        let found = (state.shared.validator)(&module, data);
        let clean = found.is_empty();
        problems.extend(found.into_iter().map(|problem| Problem {
            path: format!("{path}.{}", problem.path),
            ..problem
        }));
        if clean {
            (state.shared.normaliser)(&module, data);
        }
    }
    match node.get_mut("children") {
        Some(Value::Object(children)) => {
            for (outcome, child) in children.iter_mut() {
                prepare_node(
                    state,
                    child,
                    &format!("{path}.children.{outcome}"),
                    problems,
                );
            }
        }
        Some(Value::Null) => {
            node.remove("children");
        }
        _ => {}
    }
}

/// `prefix` and `path` joined by a dot (either may be empty).
fn join(prefix: &str, path: &str) -> String {
    match (prefix.trim_end_matches('.'), path) {
        ("", path) => path.to_owned(),
        (prefix, "") => prefix.to_owned(),
        (prefix, path) => format!("{prefix}.{path}"),
    }
}
