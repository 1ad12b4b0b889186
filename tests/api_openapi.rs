//! The OpenAPI document: valid OpenAPI 3.0.3 by a real validator (Python's
//! `openapi-spec-validator`, installed by `tests/run`), served without a token, identical to
//! `docs/openapi.json`, and in step with the router (every route documented, every documented
//! `/v2` operation served).
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use std::path::Path;
use std::process::{Command, Output};

use axum::http::StatusCode;
use metaflow_proxy::api::v2::ROUTE_PATHS;
use serde_json::Value;

use api_support::api;

/// The document in the source tree.
const DOCUMENT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

fn document() -> Value {
    let text = std::fs::read_to_string(DOCUMENT_PATH).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs `python3 -m openapi_spec_validator FILE`; panics naming the missing tool (and how to
/// install it) when python3 or the validator is not there, so the check never passes silently.
fn validate(file: &Path) -> Output {
    const INSTALL: &str = "python3 -m pip install openapi-spec-validator (tests/run does it)";
    let probe = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .unwrap_or_else(|err| panic!("python3 not found ({err}); then {INSTALL}"));
    assert!(
        probe.status.success(),
        "the OpenAPI validator openapi-spec-validator is not installed: {INSTALL}\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn document_is_valid_openapi_3_0_3() {
    assert_eq!(document()["openapi"], "3.0.3");
    let output = validate(Path::new(DOCUMENT_PATH));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.contains("OK"),
        "docs/openapi.json is not valid OpenAPI 3.0.3:\n{said}"
    );
}

#[test]
fn the_validator_refuses_what_3_0_lacks() {
    // A JSON Schema keyword that OpenAPI 3.0 does not have, where docs/openapi.json had one.
    let mut broken = document();
    broken["components"]["schemas"]["Metaflows"]["properties"]["numbers"]["propertyNames"] =
        serde_json::json!({ "pattern": "^[0-9]+$" });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, broken.to_string()).unwrap();
    let output = validate(&file);
    assert!(
        !output.status.success(),
        "the validator accepted propertyNames in an OpenAPI 3.0.3 document:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test]
async fn served_document_is_the_file_and_needs_no_token() {
    let api = api();
    let served = api.call_with("GET", "/v2/openapi.json", None, &[]).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body, document());
    assert!(served.body["openapi"].as_str().unwrap().starts_with("3."));
}

#[tokio::test]
async fn every_route_is_documented_and_every_operation_served() {
    let document = document();
    let paths = document["paths"].as_object().unwrap();
    for route in ROUTE_PATHS {
        assert!(
            paths.contains_key(*route),
            "{route} is not in docs/openapi.json"
        );
    }
    for health in ["/live", "/ready", "/metrics"] {
        assert!(paths.contains_key(health), "{health}");
    }
    let api = api();
    for (path, operations) in paths {
        if !path.starts_with("/v2/") {
            continue;
        }
        assert!(
            ROUTE_PATHS.contains(&path.as_str()),
            "{path} documented but not routed"
        );
        let concrete = path
            .replace("{account_id}", "default")
            .replace("{user_id}", "u")
            .replace("{device_id}", "d")
            .replace("{callflow_id}", "c")
            .replace("{call_id}", "call")
            .replace("{recording_id}", "r")
            .replace("{media_id}", "m");
        for method in operations.as_object().unwrap().keys() {
            let answer = api
                .call(&method.to_uppercase(), &concrete, Some("{}"))
                .await;
            assert_ne!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert!(
                answer.body.is_object(),
                "{method} {path} answered without JSON"
            );
        }
    }
}
