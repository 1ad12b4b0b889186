//! The defaults Kazoo's validator writes into a stored metaflow document: `binding_digit: "*"`
//! from `metaflows.json` and, per node, the `default`s of its module's `metaflows.<module>.json`
//! (only for the modules the proxy runs). A member the client sent is never replaced.

use serde_json::{Map, Value, json};

/// The `default` members of Kazoo's `metaflows.<module>.json` schema for `module`.
fn module_defaults(module: &str) -> Vec<(&'static str, Value)> {
    match module {
        "record_call" => vec![
            ("action", json!("toggle")),
            ("record_on_answer", json!(false)),
            ("record_on_bridge", json!(false)),
        ],
        "transfer" => vec![
            ("captures", json!(["no_match"])),
            ("transfer_type", json!("blind")),
        ],
        "hold" => vec![("unhold_key", json!("1"))],
        "play" => vec![("leg", json!("both"))],
        "tts" => vec![
            ("engine", json!("flite")),
            ("leg", json!("self")),
            (
                "terminators",
                json!(["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]),
            ),
            ("voice", json!("female")),
        ],
        _ => Vec::new(),
    }
}

/// Fills the schema defaults into a metaflow object and every node in it; members that are
/// present (even with a wrong type, which validation then reports) are left alone.
pub(super) fn fill_metaflow_defaults(doc: &mut Map<String, Value>) {
    doc.entry("binding_digit").or_insert_with(|| json!("*"));
    for group in ["numbers", "patterns"] {
        if let Some(Value::Object(codes)) = doc.get_mut(group) {
            codes.values_mut().for_each(fill_node_defaults);
        }
    }
}

/// Fills the defaults of one node (`data: {}` and its module's) and of its children.
pub(super) fn fill_node_defaults(node: &mut Value) {
    let Value::Object(node) = node else {
        return;
    };
    let module = node
        .get("module")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let data = node.entry("data").or_insert_with(|| json!({}));
    if let Value::Object(data) = data {
        for (key, value) in module_defaults(&module) {
            if data.get(key).is_none_or(Value::is_null) {
                data.insert(key.to_owned(), value);
            }
        }
    }
    if let Some(Value::Object(children)) = node.get_mut("children") {
        children.values_mut().for_each(fill_node_defaults);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_only_what_is_missing() {
        let mut doc = json!({"numbers": {"9": {"module": "record_call",
            "data": {"action": "start"},
            "children": {"_": {"module": "hold"}}}}});
        if let Value::Object(doc) = &mut doc {
            fill_metaflow_defaults(doc);
        }
        assert_eq!(doc["binding_digit"], "*");
        let node = &doc["numbers"]["9"];
        assert_eq!(
            node["data"],
            json!({"action": "start", "record_on_answer": false, "record_on_bridge": false})
        );
        assert_eq!(node["children"]["_"]["data"], json!({"unhold_key": "1"}));
    }
}
