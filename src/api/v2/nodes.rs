//! Checking a metaflow object (or a single node) against the schema and the module-specific
//! validator, then filling in module defaults with the normaliser: the form that is stored.

use serde_json::{Map, Value, json};

use super::V2State;
use super::defaults::{fill_metaflow_defaults, fill_node_defaults};
use super::located::{fix_types, locate};
use crate::base::Problem;
use crate::metaflow::parse_metaflows;

/// Validates `doc` as a metaflow object, first as sent, then (when a `type` problem names a
/// string that spells the wanted type) once more after Kazoo's lenient type fixing.
fn parse_lenient(doc: &mut Map<String, Value>) -> Result<(), Vec<Problem>> {
    match parse_metaflows(&Value::Object(doc.clone())) {
        Ok(_) => Ok(()),
        Err(problems) if fix_types(doc, &problems) => parse_metaflows(&Value::Object(doc.clone()))
            .map(|_| ())
            .map_err(|problems| locate(doc, problems)),
        Err(problems) => Err(locate(doc, problems)),
    }
}

/// Validates a metaflow object and returns its stored form: every node gets a `data` object
/// normalised for its module; top-level `null` members are dropped. Problem paths are prefixed
/// with `prefix` (e.g. `metaflow.` inside a callflow).
pub(super) fn check_metaflows(
    state: &V2State,
    mut doc: Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>, Vec<Problem>> {
    doc.retain(|_, value| !value.is_null());
    fill_metaflow_defaults(&mut doc);
    let prefixed = |problems: Vec<Problem>| -> Vec<Problem> {
        problems
            .into_iter()
            .map(|problem| Problem {
                path: join(prefix, &problem.path),
                ..problem
            })
            .collect()
    };
    parse_lenient(&mut doc).map_err(prefixed)?;
    let mut problems = Vec::new();
    for group in ["numbers", "patterns"] {
        if let Some(Value::Object(codes)) = doc.get_mut(group) {
            for (code, node) in codes.iter_mut() {
                let path = format!("{group}.{code}");
                prepare_node(state, node, &path, &mut problems);
            }
        }
    }
    if problems.is_empty() {
        Ok(doc)
    } else {
        Err(prefixed(locate(&doc, problems)))
    }
}

/// Validates one node (as sent to a live call) and returns its normalised form; problem paths
/// start with `path`.
pub(super) fn check_node(state: &V2State, node: Value, path: &str) -> Result<Value, Vec<Problem>> {
    let mut node = node;
    fill_node_defaults(&mut node);
    let mut wrapped = Map::new();
    wrapped.insert("numbers".into(), json!({ "0": node }));
    let moved = |problems: Vec<Problem>| -> Vec<Problem> {
        problems
            .into_iter()
            .map(|problem| {
                let rest = problem.path.strip_prefix("numbers.0").unwrap_or_default();
                Problem {
                    path: format!("{path}{rest}"),
                    ..problem
                }
            })
            .collect()
    };
    parse_lenient(&mut wrapped).map_err(moved)?;
    let mut problems = Vec::new();
    if let Some(Value::Object(codes)) = wrapped.get_mut("numbers")
        && let Some(node) = codes.get_mut("0")
    {
        prepare_node(state, node, "numbers.0", &mut problems);
    }
    if !problems.is_empty() {
        return Err(moved(locate(&wrapped, problems)));
    }
    let node = match wrapped.remove("numbers") {
        Some(Value::Object(mut codes)) => codes.remove("0"),
        _ => None,
    };
    node.ok_or_else(Vec::new)
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
