//! The OpenAPI document: served without a token, identical to `docs/openapi.json`, and in step
//! with the router (every route documented, every documented `/v2` operation served).
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use axum::http::StatusCode;
use metaflow_proxy::api::v2::ROUTE_PATHS;
use serde_json::Value;

use api_support::api;

fn document() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    serde_json::from_str(&text).unwrap()
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
            .replace("{call_id}", "call");
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
