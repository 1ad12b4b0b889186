//! Validation of a Kazoo metaflow JSON object into [`Metaflows`], reporting every problem at once.
//!
//! Rules follow the Kazoo `metaflows` schema: `binding_digit` one of `0-9 * #`, `digit_timeout`
//! a positive integer of milliseconds, `listen_on` one of `self`/`peer`/`both`, `numbers` keys of
//! digits only, `patterns` keys that compile as regular expressions, and nodes with a `module` of
//! 1..=64 characters naming a known module, an optional `data` object and optional `children`
//! nodes. `patterns` are bounded in number, length and compiled size ([`crate::metaflow::limits`]).
//! Unknown top-level keys are tolerated (as Kazoo does); `null` means "absent".

use std::time::Duration;

use crate::base::{Problem, Problems};
use crate::metaflow::limits::{MAX_PATTERNS_PER_DOCUMENT, compile_pattern};
use crate::metaflow::pattern::Pattern;
use crate::modules::ModuleSpec;
use serde_json::{Map, Value};

use crate::metaflow::model::{
    DEFAULT_BINDING_DIGIT, DEFAULT_DIGIT_TIMEOUT, InbandMode, ListenOn, MetaflowNode, Metaflows,
};

/// Longest module name the schema accepts (`string(1..64)`).
const MODULE_NAME_MAX_CHARS: usize = 64;
/// Digits a `binding_digit` may be.
const BINDING_DIGITS: &str = "0123456789*#";

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
            problems.add("suppress_dtmf", "type", "suppress_dtmf must be a boolean");
            false
        }
    };
    let inband = match present(object, "inband_dtmf") {
        None => InbandMode::Auto,
        Some(Value::String(text)) => InbandMode::from_json_str(text).unwrap_or_else(|| {
            let message = "inband_dtmf must be auto, on or off";
            problems.add("inband_dtmf", "enum", message);
            InbandMode::Auto
        }),
        Some(_) => {
            problems.add("inband_dtmf", "type", "inband_dtmf must be a string");
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

/// The value under `key`, treating JSON `null` as absent.
fn present<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

fn parse_binding_digit(value: Option<&Value>, problems: &mut Problems) -> char {
    let Some(value) = value else {
        return DEFAULT_BINDING_DIGIT;
    };
    let Some(text) = value.as_str() else {
        problems.add("binding_digit", "type", "binding_digit must be a string");
        return DEFAULT_BINDING_DIGIT;
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(digit), None) if BINDING_DIGITS.contains(digit) => digit,
        _ => {
            problems.add(
                "binding_digit",
                "enum",
                "binding_digit must be one of 0-9, * or #",
            );
            DEFAULT_BINDING_DIGIT
        }
    }
}

fn parse_digit_timeout(value: Option<&Value>, problems: &mut Problems) -> Duration {
    let Some(value) = value else {
        return DEFAULT_DIGIT_TIMEOUT;
    };
    if let Some(millis) = value.as_u64() {
        if millis > 0 {
            return Duration::from_millis(millis);
        }
    } else if value.as_i64().is_none() {
        problems.add(
            "digit_timeout",
            "type",
            "digit_timeout must be an integer (milliseconds)",
        );
        return DEFAULT_DIGIT_TIMEOUT;
    }
    problems.add(
        "digit_timeout",
        "minimum",
        "digit_timeout must be at least 1 ms",
    );
    DEFAULT_DIGIT_TIMEOUT
}

fn parse_listen_on(value: Option<&Value>, problems: &mut Problems) -> ListenOn {
    let Some(value) = value else {
        return ListenOn::default();
    };
    let Some(text) = value.as_str() else {
        problems.add("listen_on", "type", "listen_on must be a string");
        return ListenOn::default();
    };
    ListenOn::from_json_str(text).unwrap_or_else(|| {
        problems.add("listen_on", "enum", "listen_on must be self, peer or both");
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
            problems.add(path, "type", format!("{path} must be an object"));
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
            problems.add(&path, "pattern", "numbers keys must match ^[0-9]+$");
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
        problems.add(path, "type", "a metaflow node must be an object");
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
        problems.add(&path, "required", "module is required");
        return None;
    };
    let Some(name) = value.as_str() else {
        problems.add(&path, "type", "module must be a string");
        return None;
    };
    let length = name.chars().count();
    if length == 0 {
        problems.add(&path, "minLength", "module must not be empty");
        return None;
    }
    if length > MODULE_NAME_MAX_CHARS {
        problems.add(&path, "maxLength", "module must be at most 64 characters");
        return None;
    }
    if !ModuleSpec::NAMES.contains(&name) {
        let known = ModuleSpec::NAMES.join(", ");
        problems.add(
            &path,
            "enum",
            format!("unknown module {name:?}; known modules: {known}"),
        );
        return None;
    }
    Some(name.to_owned())
}
