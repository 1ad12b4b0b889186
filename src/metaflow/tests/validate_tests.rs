use std::time::Duration;

use serde_json::json;

use crate::metaflow::{ListenOn, parse_metaflows, to_json};

/// The sorted (path, rule) pairs of a document that must be invalid.
fn problems(json: serde_json::Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = parse_metaflows(&json)
        .unwrap_err()
        .into_iter()
        .map(|error| (error.path, error.rule))
        .collect();
    found.sort();
    found
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(path, rule)| (path.to_string(), rule.to_string()))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn empty_object_gets_kazoo_defaults() {
    let flows = parse_metaflows(&json!({})).unwrap();
    assert_eq!(flows.binding_digit, '*');
    assert_eq!(flows.digit_timeout, Duration::from_millis(800));
    assert_eq!(flows.listen_on, ListenOn::SelfLeg);
    assert!(flows.numbers.is_empty() && flows.patterns.is_empty());
    assert!(!flows.suppress);
}

#[test]
fn seed_request_and_response_examples_parse() {
    let request = json!({"binding_digit":"*", "patterns":{"2(\\d+)":{"module":"transfer", "data":{"takeback_dtmf":"*1"}}}});
    let flows = parse_metaflows(&request).unwrap();
    assert_eq!(flows.patterns.len(), 1);
    let (text, regex, node) = &flows.patterns[0];
    assert_eq!(text, "2(\\d+)");
    assert!(regex.is_match("21234"));
    assert_eq!(node.module, "transfer");
    assert_eq!(node.data["takeback_dtmf"], "*1");

    let response = json!({
        "binding_digit": "*",
        "patterns": {"2(\\d+)": {
            "data": {"captures": ["no_match"], "takeback_dtmf": "*1", "transfer_type": "blind"},
            "module": "transfer"
        }}
    });
    let flows = parse_metaflows(&response).unwrap();
    assert_eq!(flows.patterns[0].2.data["transfer_type"], "blind");
}

#[test]
fn every_field_is_read() {
    let flows = parse_metaflows(
        &json!({"binding_digit": "#", "digit_timeout": 1500, "listen_on": "both",
                "numbers": {"9": {"module": "record_call", "data": {"action": "toggle"},
                                  "children": {"_": {"module": "hangup"}}}},
                "suppress_dtmf": true, "unknown_key": [1, 2]}),
    )
    .unwrap();
    assert_eq!(flows.binding_digit, '#');
    assert_eq!(flows.digit_timeout, Duration::from_millis(1500));
    assert_eq!(flows.listen_on, ListenOn::Both);
    assert!(flows.suppress);
    let (key, node) = &flows.numbers[0];
    assert_eq!((key.as_str(), node.module.as_str()), ("9", "record_call"));
    assert_eq!(node.children[0].0, "_");
    assert_eq!(node.children[0].1.module, "hangup");
}

#[test]
fn nulls_count_as_absent() {
    let flows = parse_metaflows(&json!({"binding_digit": null, "listen_on": null,
                "numbers": {"9": {"module": "hangup", "data": null}}}))
    .unwrap();
    assert_eq!(flows.binding_digit, '*');
    assert!(flows.numbers[0].1.data.is_empty());
}

#[test]
fn every_top_level_rule_is_reported_at_once() {
    let found = problems(json!({
        "binding_digit": "x", "digit_timeout": "800", "listen_on": "everyone",
        "numbers": {"9a": {"module": "hangup"}, "": {"module": "hangup"}},
        "patterns": {"2(": {"module": "hangup"}, "": {"module": "hangup"}},
        "suppress_dtmf": "yes"
    }));
    let expected = pairs(&[
        ("binding_digit", "enum"),
        ("digit_timeout", "type"),
        ("listen_on", "enum"),
        ("numbers.9a", "additionalProperties"),
        ("numbers.", "additionalProperties"),
        ("patterns.2(", "regex"),
        ("patterns.", "pattern"),
        ("suppress_dtmf", "type"),
    ]);
    assert_eq!(found, expected);
}

#[test]
fn wrong_types_are_type_problems() {
    let found = problems(json!({
        "binding_digit": 5, "digit_timeout": 1.5, "listen_on": 1,
        "numbers": [], "patterns": "2(\\d+)"
    }));
    let expected = pairs(&[
        ("binding_digit", "type"),
        ("digit_timeout", "type"),
        ("listen_on", "type"),
        ("numbers", "type"),
        ("patterns", "type"),
    ]);
    assert_eq!(found, expected);
    assert_eq!(problems(json!([1])), pairs(&[("", "type")]));
}

#[test]
fn digit_timeout_and_binding_digit_bounds() {
    // Kazoo's schema: `minimum: 0`.
    let immediate = parse_metaflows(&json!({"digit_timeout": 0})).unwrap();
    assert_eq!(immediate.digit_timeout, Duration::ZERO);
    assert_eq!(
        problems(json!({"digit_timeout": -5})),
        pairs(&[("digit_timeout", "minimum")])
    );
    assert_eq!(
        problems(json!({"binding_digit": "**"})),
        pairs(&[("binding_digit", "enum")])
    );
    assert_eq!(
        problems(json!({"binding_digit": ""})),
        pairs(&[("binding_digit", "enum")])
    );
}

#[test]
fn node_rules_have_exact_paths() {
    let long_name = "m".repeat(65);
    let found = problems(json!({
        "numbers": {
            "1": "hangup",
            "2": {"data": {}},
            "3": {"module": 5},
            "4": {"module": ""},
            "5": {"module": long_name},
            "6": {"module": "dance"},
            "7": {"module": "hangup", "data": []},
            "8": {"module": "hangup", "children": "x"}
        },
        "patterns": {
            "2(\\d+)": {"module": "transfer", "children": {
                "failure": {"module": "dance"},
                "_": {"module": "hangup", "children": {"": {"module": "hangup"}, "x": 1}}
            }}
        }
    }));
    let expected = pairs(&[
        ("numbers.1", "type"),
        ("numbers.2.module", "required"),
        ("numbers.3.module", "type"),
        ("numbers.4.module", "minLength"),
        ("numbers.5.module", "maxLength"),
        ("numbers.6.module", "error"),
        ("numbers.7.data", "type"),
        ("numbers.8.children", "type"),
        ("patterns.2(\\d+).children.failure.module", "error"),
        ("patterns.2(\\d+).children._.children.", "pattern"),
        ("patterns.2(\\d+).children._.children.x", "type"),
    ]);
    assert_eq!(found, expected);
}

#[test]
fn module_names_count_characters_not_bytes() {
    let document = json!({"numbers": {"1": {"module": "é".repeat(64)}}});
    let paths: Vec<(String, String)> = parse_metaflows(&document)
        .unwrap_err()
        .into_iter()
        .map(|p| (p.path, p.rule))
        .collect();
    // 64 two-byte characters are within the length limit: the only complaint is the name.
    assert_eq!(
        paths,
        [("numbers.1.module".to_string(), "error".to_string())]
    );
}

#[test]
fn errors_render_path_rule_and_message() {
    let errors = parse_metaflows(&json!({"listen_on": "x"})).unwrap_err();
    let text = errors[0].to_string();
    assert!(
        text.starts_with("listen_on: ") && text.ends_with("(enum)"),
        "{text}"
    );
}

#[test]
fn to_json_round_trips_in_order() {
    let document = json!({
        "binding_digit": "#", "digit_timeout": 1200, "listen_on": "peer",
        "numbers": {"9": {"module": "record_call", "data": {"action": "start"}},
                    "1": {"module": "hangup", "data": {}}},
        "patterns": {"^3(\\d+)$": {"module": "transfer", "data": {},
                                   "children": {"failure": {"module": "hangup", "data": {}}}},
                     "2(\\d+)": {"module": "transfer", "data": {"takeback_dtmf": "*1"}}},
        "suppress_dtmf": true
    });
    let flows = parse_metaflows(&document).unwrap();
    let rendered = to_json(&flows);
    assert_eq!(rendered, document);
    let keys: Vec<&String> = rendered["patterns"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["^3(\\d+)$", "2(\\d+)"]);
    let again = to_json(&parse_metaflows(&rendered).unwrap());
    assert_eq!(again, rendered);
}

#[test]
fn module_data_is_validated_with_its_path() {
    let bad = json!({"patterns": {"2(\\d+)": {"module": "transfer", "data": {"transfer_type": "sideways"}},
                     "9": {"module": "hangup", "children": {"_": {"module": "transfer", "data": {"target": 5}}}}}});
    let errors = parse_metaflows(&bad).unwrap_err();
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
fn nodes_carry_their_parsed_module() {
    let ok = json!({"numbers": {"0": {"module": "hangup"}}, "patterns": {"^2(\\d+)$": {"module": "transfer"}}});
    let flows = parse_metaflows(&ok).unwrap();
    assert_eq!(flows.numbers[0].1.spec.name(), "hangup");
    assert_eq!(flows.patterns[0].2.spec.name(), "transfer");
}

#[test]
fn too_many_patterns_are_refused_before_any_compiles() {
    use crate::metaflow::limits::MAX_PATTERNS_PER_DOCUMENT;
    let patterns: serde_json::Map<String, serde_json::Value> = (0..3000)
        .map(|index| {
            (
                format!("^(\\d{{1,9}})*{index}(\\w+)$"),
                json!({"module": "hangup"}),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    assert_eq!(
        problems(json!({ "patterns": patterns })),
        pairs(&[("patterns", "maxProperties")])
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let allowed: serde_json::Map<String, serde_json::Value> = (0..MAX_PATTERNS_PER_DOCUMENT)
        .map(|index| {
            (
                format!("^{index}(\\d{{2,4}})$"),
                json!({"module": "hangup"}),
            )
        })
        .collect();
    assert_eq!(
        parse_metaflows(&json!({ "patterns": allowed }))
            .unwrap()
            .patterns
            .len(),
        MAX_PATTERNS_PER_DOCUMENT
    );
}

#[test]
fn a_costly_pattern_is_named_in_the_error() {
    let long = "1".repeat(300);
    assert_eq!(
        problems(json!({ "patterns": {
            "(\\w{1,100}){1,100}": {"module": "hangup"},
            long.clone(): {"module": "hangup"},
            "^9(\\d)$": {"module": "hangup"},
        }})),
        pairs(&[
            ("patterns.(\\w{1,100}){1,100}", "size"),
            (&format!("patterns.{long}"), "maxLength"),
        ])
    );
}
