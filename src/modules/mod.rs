//! Metaflow modules: what runs on a live call when a code matches.
//!
//! The call core executes modules; this module names the ones the proxy knows, validates their
//! `data` on top of the generic metaflow schema, and normalises stored nodes the way Kazoo does.

use serde_json::Value;

use crate::metaflow::{Metaflows, ValidationError, parse_metaflows};

/// Names of the modules a metaflow node may use.
pub const KNOWN: &[&str] = &["hangup"];

/// Module-specific checks of a node's `data`; returns (path suffix below the node, rule, message).
pub fn validate_node_data(
    module: &str,
    data: &serde_json::Map<String, Value>,
) -> Vec<(String, String, String)> {
    match module {
        "hangup" => {
            let _ = data;
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Validates a metaflow object: the generic schema, then every node's module data.
/// Every problem is reported with its JSON path.
pub fn validate_metaflows(value: &Value) -> Result<Metaflows, Vec<ValidationError>> {
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

fn check_node(path: &str, node: &Value, problems: &mut Vec<ValidationError>) {
    let Some(node) = node.as_object() else {
        return;
    };
    if let (Some(Value::String(module)), Some(Value::Object(data))) =
        (node.get("module"), node.get("data"))
    {
        for (suffix, rule, message) in validate_node_data(module, data) {
            problems.push(ValidationError {
                path: format!("{path}.data.{suffix}"),
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
                format!(
                    "  {}: {} ({})",
                    if e.path.is_empty() { "(root)" } else { &e.path },
                    e.message,
                    e.rule
                )
            })
            .collect();
        format!(
            "metaflows file {} is invalid:\n{}",
            path.display(),
            lines.join("\n")
        )
    })
}
