//! Problems placed in the submitted document the way Kazoo's validator reports them: each key of
//! the path with its dots escaped as `%2E`, the offending `value` attached, and Kazoo's lenient
//! (non-strict) type fixing: a string holding an integer, a number or a boolean where the schema
//! wants one is converted and the document validated again.

use serde_json::{Map, Value};

use crate::base::Problem;

/// The keys of `path` found in `doc` (longest key first, so that a pattern key holding dots is
/// one key) and what is left of the path when a key is missing.
fn walk(doc: &Value, path: &str) -> (Vec<String>, Option<String>) {
    let mut keys = Vec::new();
    let mut current = doc;
    let mut rest = path;
    while !rest.is_empty() {
        let found = match current {
            Value::Object(map) => map
                .iter()
                .filter(|(key, _)| {
                    rest == key.as_str()
                        || rest
                            .strip_prefix(key.as_str())
                            .is_some_and(|tail| tail.starts_with('.'))
                })
                .max_by_key(|(key, _)| key.len())
                .map(|(key, value)| (key.clone(), value)),
            Value::Array(items) => rest.split('.').next().and_then(|index| {
                let item = items.get(index.parse::<usize>().ok()?)?;
                Some((index.to_owned(), item))
            }),
            _ => None,
        };
        let Some((key, next)) = found else {
            return (keys, Some(rest.to_owned()));
        };
        current = next;
        let tail = rest.get(key.len()..).unwrap_or_default();
        rest = tail.strip_prefix('.').unwrap_or(tail);
        keys.push(key);
    }
    (keys, None)
}

/// The value at `keys` below `doc`.
fn get<'a>(doc: &'a Value, keys: &[String]) -> Option<&'a Value> {
    keys.iter().try_fold(doc, |value, key| match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// The value at `keys` below `doc`, for changing it.
fn get_mut<'a>(doc: &'a mut Value, keys: &[String]) -> Option<&'a mut Value> {
    keys.iter().try_fold(doc, |value, key| match value {
        Value::Object(map) => map.get_mut(key),
        Value::Array(items) => items.get_mut(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// `problems` found in `doc`, with Kazoo's escaped paths and their offending `value`.
pub(super) fn locate(doc: &Map<String, Value>, problems: Vec<Problem>) -> Vec<Problem> {
    let doc = Value::Object(doc.clone());
    problems
        .into_iter()
        .map(|mut problem| {
            let (keys, missing) = walk(&doc, &problem.path);
            let mut parts: Vec<String> = keys.iter().map(|key| key.replace('.', "%2E")).collect();
            if let Some(missing) = &missing {
                parts.push(missing.clone());
            }
            problem.path = parts.join(".");
            if problem.value.is_none() {
                problem.value = match missing {
                    None => get(&doc, &keys).cloned(),
                    // Kazoo names a missing required key by its name.
                    Some(name) if problem.rule == "required" => Some(Value::String(name)),
                    Some(_) => None,
                };
            }
            problem
        })
        .collect()
}

/// The JSON type a `type` problem asked for: its `target`, else the type its message names.
fn wanted_type(problem: &Problem) -> Option<&'static str> {
    let named = match &problem.target {
        Some(Value::String(target)) => target.as_str(),
        _ => problem.message.as_str(),
    };
    ["integer", "number", "boolean"]
        .into_iter()
        .find(|kind| named.contains(kind))
}

/// Kazoo's `fix_js_types`: converts each string a `type` problem points at into the integer,
/// number or boolean it spells; `true` when anything changed (then validate again).
pub(super) fn fix_types(doc: &mut Map<String, Value>, problems: &[Problem]) -> bool {
    let mut whole = Value::Object(std::mem::take(doc));
    let mut changed = false;
    for problem in problems.iter().filter(|problem| problem.rule == "type") {
        let Some(kind) = wanted_type(problem) else {
            continue;
        };
        let (keys, missing) = walk(&whole, &problem.path);
        if missing.is_some() {
            continue;
        }
        let Some(slot) = get_mut(&mut whole, &keys) else {
            continue;
        };
        let Some(text) = slot.as_str().map(str::trim) else {
            continue;
        };
        let fixed = match kind {
            "integer" => text.parse::<i64>().ok().map(Value::from),
            "number" => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            _ => text.parse::<bool>().ok().map(Value::Bool),
        };
        if let Some(fixed) = fixed {
            *slot = fixed;
            changed = true;
        }
    }
    if let Value::Object(map) = whole {
        *doc = map;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(path: &str, rule: &str, message: &str) -> Problem {
        let mut problems = crate::base::Problems::default();
        problems.add(path, rule, message);
        problems.0.remove(0)
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn dotted_keys_are_escaped_and_values_attached() {
        let doc = object(json!({"patterns": {"^\\*1.+$": {"module": "park"}}}));
        let located = locate(
            &doc,
            vec![
                problem("patterns.^\\*1.+$.module", "error", "x"),
                problem("first_name", "required", "y"),
            ],
        );
        assert_eq!(located[0].path, "patterns.^\\*1%2E+$.module");
        assert_eq!(located[0].value, Some(json!("park")));
        assert_eq!(located[1].path, "first_name");
        assert_eq!(located[1].value, Some(json!("first_name")));
    }

    #[test]
    fn strings_are_fixed_into_the_types_asked_for() {
        let mut doc = object(json!({"digit_timeout": "800", "x": {"on": "true"}, "n": "soon"}));
        let problems = [
            problem(
                "digit_timeout",
                "type",
                "Value did not match type(s): integer",
            ),
            problem("x.on", "type", "must be a boolean"),
            problem("n", "type", "must be an integer"),
        ];
        assert!(fix_types(&mut doc, &problems));
        assert_eq!(
            Value::Object(doc),
            json!({"digit_timeout": 800, "x": {"on": true}, "n": "soon"})
        );
    }
}
