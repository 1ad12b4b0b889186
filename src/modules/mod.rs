//! Metaflow modules: what runs on a live call when a code matches.
//!
//! The call core executes modules; this module names the ones the proxy knows, validates their
//! `data` on top of the generic metaflow schema, and normalises stored nodes the way Kazoo does.

pub mod record;
pub mod transfer;

use serde_json::{Map, Value};

use crate::base::Problem;
use crate::metaflow::{Metaflows, parse_metaflows};

/// Names of the modules a metaflow node may use.
pub const KNOWN: &[&str] = &["hangup", transfer::MODULE_NAME, record::MODULE_NAME];

/// Module-specific checks of a node's `data`: (path below the node such as `data.target`,
/// rule, message) for every problem.
pub fn validate_node_data(
    module: &str,
    data: &Map<String, Value>,
) -> Vec<(String, String, String)> {
    match module {
        transfer::MODULE_NAME => match transfer::parse_params(data) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .into_iter()
                .map(|e| (e.path, e.rule, e.message))
                .collect(),
        },
        record::MODULE_NAME => match record::parse_params(data) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .into_iter()
                .map(|e| (e.path, e.rule, e.message))
                .collect(),
        },
        _ => Vec::new(),
    }
}

/// Fills in the defaults a stored node gets (Kazoo's normalised form, e.g. a transfer node's
/// `transfer_type` and `captures`).
pub fn normalise_node_data(module: &str, data: &mut Map<String, Value>) {
    if module == transfer::MODULE_NAME {
        transfer::normalise(data);
    }
}

/// Validates a metaflow object: the generic schema, then every node's module data.
/// Every problem is reported with its JSON path.
pub fn validate_metaflows(value: &Value) -> Result<Metaflows, Vec<Problem>> {
    let parsed = parse_metaflows(value, KNOWN);
    let mut problems = match &parsed {
        Ok(_) => Vec::new(),
        Err(errors) => errors.clone(),
    };
    if let Some(object) = value.as_object() {
        for group in ["numbers", "patterns"] {
            if let Some(Value::Object(nodes)) = object.get(group) {
                for (key, node) in nodes {
                    check_node(&format!("{group}.{key}"), node, &mut problems);
                }
            }
        }
    }
    match parsed {
        Ok(flows) if problems.is_empty() => Ok(flows),
        _ => Err(problems),
    }
}

/// Validates one node given alone (e.g. the `data` of an API-triggered metaflow).
pub fn validate_node(node: &Value) -> Vec<Problem> {
    let wrapper = serde_json::json!({ "numbers": { "0": node } });
    match validate_metaflows(&wrapper) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|mut e| {
                e.path = e
                    .path
                    .trim_start_matches("numbers.0")
                    .trim_start_matches('.')
                    .to_string();
                e
            })
            .collect(),
    }
}

fn check_node(path: &str, node: &Value, problems: &mut Vec<Problem>) {
    let Some(node) = node.as_object() else {
        return;
    };
    if let Some(Value::String(module)) = node.get("module") {
        let empty = Map::new();
        let data = match node.get("data") {
            Some(Value::Object(data)) => data,
            _ => &empty,
        };
        for (suffix, rule, message) in validate_node_data(module, data) {
            problems.push(Problem {
                path: format!("{path}.{suffix}"),
                rule,
                message,
            });
        }
    }
    if let Some(Value::Object(children)) = node.get("children") {
        for (key, child) in children {
            check_node(&format!("{path}.children.{key}"), child, problems);
        }
    }
}

/// Reads and validates a `--metaflows` file; the error text lists every problem.
pub fn load_metaflows_file(path: &std::path::Path) -> Result<Metaflows, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read metaflows file {}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("metaflows file {} is not valid JSON: {e}", path.display()))?;
    validate_metaflows(&value).map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| {
                let path = if e.path.is_empty() { "(root)" } else { &e.path };
                format!("  {path}: {} ({})", e.message, e.rule)
            })
            .collect();
        format!(
            "metaflows file {} is invalid:\n{}",
            path.display(),
            lines.join("\n")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transfer_data_is_validated_with_its_path() {
        let bad = json!({"patterns": {"2(\\d+)": {"module": "transfer", "data": {"transfer_type": "attended"}},
                         "9": {"module": "hangup", "children": {"_": {"module": "transfer", "data": {"target": 5}}}}}});
        let errors = validate_metaflows(&bad).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.contains(&"patterns.2(\\d+).data.transfer_type"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"patterns.9.children._.data.target"),
            "{paths:?}"
        );
    }

    #[test]
    fn unknown_modules_are_refused_and_known_ones_pass() {
        let ok = json!({"numbers": {"0": {"module": "hangup"}}, "patterns": {"^2(\\d+)$": {"module": "transfer"}}});
        assert!(validate_metaflows(&ok).is_ok());
        let bad = json!({"numbers": {"0": {"module": "fax"}}});
        let errors = validate_metaflows(&bad).unwrap_err();
        assert_eq!(errors[0].path, "numbers.0.module");
    }

    #[test]
    fn a_lone_node_is_validated_relative_to_itself() {
        let errors = validate_node(&json!({"module": "transfer", "data": {"transfer_type": "x"}}));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "data.transfer_type");
        assert!(validate_node(&json!({"module": "hangup"})).is_empty());
    }
}
