//! Validation of a Kazoo metaflow JSON object into [`Metaflows`], reporting every problem at once.
//!
//! Rules follow the Kazoo `metaflows` schema: `binding_digit` one of `0-9 * #`, `digit_timeout`
//! an integer of milliseconds (`minimum: 0`), `listen_on` one of `self`/`peer`/`both`, `numbers`
//! keys of digits only, `patterns` keys that compile as regular expressions, and nodes with a
//! `module` of 1..=64 characters naming a known module, an optional `data` object and optional
//! `children` nodes. `patterns` are bounded in number, length and compiled size ([`crate::metaflow::limits`]).
//! Unknown top-level keys are tolerated (as Kazoo does); `null` means "absent".

use std::time::Duration;

use crate::base::{Problem, Problems};
use crate::metaflow::limits::{MAX_PATTERNS_PER_DOCUMENT, compile_pattern};
use crate::metaflow::pattern::Pattern;
use crate::modules::ModuleSpec;
use serde_json::{Map, Value, json};

use crate::metaflow::model::{
    DEFAULT_BINDING_DIGIT, DEFAULT_DIGIT_TIMEOUT, InbandMode, ListenOn, MetaflowNode, Metaflows,
};

/// Longest module name the schema accepts (`string(1..64)`).
const MODULE_NAME_MAX_CHARS: usize = 64;
/// Digits a `binding_digit` may be, in the order of Kazoo's `enum` (its error's `target`).
const BINDING_DIGITS: &str = "1234567890*#";

/// Validates a Kazoo metaflow object; on failure returns every violation found, not only the first.
pub fn parse_metaflows(value: &Value) -> Result<Metaflows, Vec<Problem>> {
    let mut problems = Problems(Vec::new());
    let Some(object) = value.as_object() else {
        problems.add("", "type", "metaflows must be a JSON object");
        return Err(problems.0);
    };
    let binding_digit = parse_binding_digit(present(object, "binding_digit"), &mut problems);
    let digit_timeout = parse_digit_timeout(present(object, "digit_timeout"), &mut problems);
    let listen_on = parse_listen_on(present(object, "listen_on"), &mut problems);
    let numbers = parse_numbers(present(object, "numbers"), &mut problems);
    let patterns = parse_patterns(present(object, "patterns"), &mut problems);
    let suppress = match present(object, "suppress_dtmf") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            wrong_type(&mut problems, "suppress_dtmf", "boolean");
            false
        }
    };
    let inband = match present(object, "inband_dtmf") {
        None => InbandMode::Auto,
        Some(Value::String(text)) => InbandMode::from_json_str(text).unwrap_or_else(|| {
            not_in_enum(&mut problems, "inband_dtmf", json!(["auto", "on", "off"]));
            InbandMode::Auto
        }),
        Some(_) => {
            wrong_type(&mut problems, "inband_dtmf", "string");
            InbandMode::Auto
        }
    };
    if !problems.0.is_empty() {
        return Err(problems.0);
    }
    let flows = Metaflows {
        inband,
        binding_digit,
        digit_timeout,
        listen_on,
        numbers,
        patterns,
        suppress,
        ..Metaflows::default()
    };
    // Build the prefix automata now, so that a call's first digit does not pay for them.
    flows.automata();
    Ok(flows)
}

/// Reads and validates a `--metaflows` file; the error text lists every problem.
pub fn load_metaflows_file(path: &std::path::Path) -> Result<Metaflows, String> {
    load_metaflows_document(path).map(|(flows, _)| flows)
}

/// Like [`load_metaflows_file`], also returning the document as read, for a caller that stores
/// it: the file is read and parsed once.
pub fn load_metaflows_document(path: &std::path::Path) -> Result<(Metaflows, Value), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read metaflows file {}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("metaflows file {} is not valid JSON: {e}", path.display()))?;
    let flows = parse_metaflows(&value).map_err(|errors| {
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
    })?;
    Ok((flows, value))
}

/// Records Kazoo's `type` violation: `path` is not of JSON type `wanted`.
fn wrong_type(problems: &mut Problems, path: &str, wanted: &str) {
    let message = format!("Value did not match type(s): {wanted}");
    problems.add_target(path, "type", message, Value::String(wanted.to_owned()));
}

/// Records Kazoo's `enum` violation: `path` is not one of `allowed`.
fn not_in_enum(problems: &mut Problems, path: &str, allowed: Value) {
    let message = "Value not found in enumerated list of values";
    problems.add_target(path, "enum", message, allowed);
}

/// The value under `key`, treating JSON `null` as absent.
fn present<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

fn parse_binding_digit(value: Option<&Value>, problems: &mut Problems) -> char {
    let Some(value) = value else {
        return DEFAULT_BINDING_DIGIT;
    };
    let Some(text) = value.as_str() else {
        wrong_type(problems, "binding_digit", "string");
        return DEFAULT_BINDING_DIGIT;
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(digit), None) if BINDING_DIGITS.contains(digit) => digit,
        _ => {
            let allowed = BINDING_DIGITS.chars().map(|digit| json!(digit.to_string()));
            not_in_enum(problems, "binding_digit", Value::Array(allowed.collect()));
            DEFAULT_BINDING_DIGIT
        }
    }
}

fn parse_digit_timeout(value: Option<&Value>, problems: &mut Problems) -> Duration {
    let Some(value) = value else {
        return DEFAULT_DIGIT_TIMEOUT;
    };
    // Kazoo's schema: an integer, `minimum: 0` (0 analyses the digits at once).
    if let Some(millis) = value.as_u64() {
        return Duration::from_millis(millis);
    }
    if value.as_i64().is_none() {
        wrong_type(problems, "digit_timeout", "integer");
        return DEFAULT_DIGIT_TIMEOUT;
    }
    problems.add_target(
        "digit_timeout",
        "minimum",
        "Value must be at least 0",
        json!(0),
    );
    DEFAULT_DIGIT_TIMEOUT
}

fn parse_listen_on(value: Option<&Value>, problems: &mut Problems) -> ListenOn {
    let Some(value) = value else {
        return ListenOn::default();
    };
    let Some(text) = value.as_str() else {
        wrong_type(problems, "listen_on", "string");
        return ListenOn::default();
    };
    ListenOn::from_json_str(text).unwrap_or_else(|| {
        not_in_enum(problems, "listen_on", json!(["both", "self", "peer"]));
        ListenOn::default()
    })
}

/// The entries of an optional object-valued key, reporting a type problem otherwise.
fn object_entries<'a>(
    value: Option<&'a Value>,
    path: &str,
    problems: &mut Problems,
) -> Option<&'a Map<String, Value>> {
    match value? {
        Value::Object(entries) => Some(entries),
        _ => {
            wrong_type(problems, path, "object");
            None
        }
    }
}

fn parse_numbers(value: Option<&Value>, problems: &mut Problems) -> Vec<(String, MetaflowNode)> {
    let Some(entries) = object_entries(value, "numbers", problems) else {
        return Vec::new();
    };
    let mut numbers = Vec::with_capacity(entries.len());
    for (key, node_value) in entries {
        let path = format!("numbers.{key}");
        let key_ok = !key.is_empty() && key.bytes().all(|byte| byte.is_ascii_digit());
        if !key_ok {
            // Kazoo: `numbers` has `additionalProperties: false` beside `^[0-9]+$` keys.
            let message = "Strict checking of data is enabled; only include schema-defined \
                           properties";
            problems.add(&path, "additionalProperties", message);
        }
        let node = parse_node(node_value, &path, problems);
        if let (true, Some(node)) = (key_ok, node) {
            numbers.push((key.clone(), node));
        }
    }
    numbers
}

fn parse_patterns(
    value: Option<&Value>,
    problems: &mut Problems,
) -> Vec<(String, Pattern, MetaflowNode)> {
    let Some(entries) = object_entries(value, "patterns", problems) else {
        return Vec::new();
    };
    if entries.len() > MAX_PATTERNS_PER_DOCUMENT {
        // Refused before compiling anything, so that a huge set costs nothing.
        problems.add(
            "patterns",
            "maxProperties",
            format!(
                "patterns has {} entries; at most {MAX_PATTERNS_PER_DOCUMENT} are allowed",
                entries.len()
            ),
        );
        return Vec::new();
    }
    let mut patterns = Vec::with_capacity(entries.len());
    for (key, node_value) in entries {
        let path = format!("patterns.{key}");
        let regex = if key.is_empty() {
            problems.add(&path, "pattern", "patterns keys must not be empty");
            None
        } else {
            compile_pattern(key)
                .map_err(|error| problems.add(&path, error.rule(), error.to_string()))
                .ok()
        };
        let node = parse_node(node_value, &path, problems);
        if let (Some(regex), Some(node)) = (regex, node) {
            patterns.push((key.clone(), regex, node));
        }
    }
    patterns
}

/// Validates one node and, recursively, its children; `None` when anything in it is invalid.
fn parse_node(value: &Value, path: &str, problems: &mut Problems) -> Option<MetaflowNode> {
    let Some(object) = value.as_object() else {
        wrong_type(problems, path, "object");
        return None;
    };
    let before = problems.0.len();
    let module = parse_module(present(object, "module"), path, problems);
    let data_path = format!("{path}.data");
    let data = object_entries(present(object, "data"), &data_path, problems)
        .cloned()
        .unwrap_or_default();
    let children_path = format!("{path}.children");
    let mut children = Vec::new();
    if let Some(entries) = object_entries(present(object, "children"), &children_path, problems) {
        for (outcome, child_value) in entries {
            let child_path = format!("{children_path}.{outcome}");
            if outcome.is_empty() {
                problems.add(&child_path, "pattern", "children keys must not be empty");
            }
            if let Some(child) = parse_node(child_value, &child_path, problems) {
                children.push((outcome.clone(), child));
            }
        }
    }
    let module = module?;
    let spec = match ModuleSpec::parse(&module, &data) {
        Some(Ok(spec)) => Some(std::sync::Arc::new(spec)),
        Some(Err(found)) => {
            for problem in found {
                problems.add(
                    &format!("{path}.{}", problem.path),
                    &problem.rule,
                    problem.message,
                );
            }
            None
        }
        None => None,
    };
    let spec = spec?;
    (problems.0.len() == before).then_some(MetaflowNode {
        module,
        data,
        spec,
        children,
    })
}

fn parse_module(value: Option<&Value>, node_path: &str, problems: &mut Problems) -> Option<String> {
    let path = format!("{node_path}.module");
    let Some(value) = value else {
        problems.add(&path, "required", "Field is required but missing");
        return None;
    };
    let Some(name) = value.as_str() else {
        wrong_type(problems, &path, "string");
        return None;
    };
    let length = name.chars().count();
    if length == 0 {
        let message = "String must be at least 1 characters";
        problems.add_target(&path, "minLength", message, json!(1));
        return None;
    }
    if length > MODULE_NAME_MAX_CHARS {
        let message = format!("String must not be more than {MODULE_NAME_MAX_CHARS} characters");
        problems.add_target(&path, "maxLength", message, json!(MODULE_NAME_MAX_CHARS));
        return None;
    }
    if !ModuleSpec::NAMES.contains(&name) {
        // Kazoo's `kazoo-validation` of `module`: no `metaflows.<module>` schema.
        let message = format!("unable to find metaflow schema for module {name}");
        problems.add(&path, "error", message);
        return None;
    }
    Some(name.to_owned())
}
