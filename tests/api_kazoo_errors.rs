//! Kazoo's own error bodies, as its validator writes them (`kz_json_schema:error_to_jobj/2`,
//! `api_util:stop_on_invalid_envelope/3`, `kz_json_schema_extensions` for an unknown module),
//! against ours: the same `data` for the same mistake. Also Kazoo's lenient type fixing and the
//! envelope on replies that no handler wrote (unknown route, 405, 401).
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use axum::http::StatusCode;
use serde_json::{Value, json};

use api_support::{api, assert_error};

const ACCOUNT: &str = "/v2/accounts/default/metaflows";

/// (request `data`, Kazoo's response `data`) for `POST .../metaflows`.
fn metaflow_table() -> Vec<(Value, Value)> {
    vec![
        (
            json!({"binding_digit": "x"}),
            json!({"binding_digit": {"enum": {
                "message": "Value not found in enumerated list of values",
                "target": ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "*", "#"],
                "value": "x"}}}),
        ),
        (
            json!({"digit_timeout": -1}),
            json!({"digit_timeout": {"minimum": {
                "message": "Value must be at least 0", "target": 0, "value": -1}}}),
        ),
        (
            json!({"digit_timeout": "soon"}),
            json!({"digit_timeout": {"type": {
                "message": "Value did not match type(s): integer",
                "target": "integer", "value": "soon"}}}),
        ),
        (
            json!({"listen_on": "everyone"}),
            json!({"listen_on": {"enum": {
                "message": "Value not found in enumerated list of values",
                "target": ["both", "self", "peer"], "value": "everyone"}}}),
        ),
        (
            json!({"numbers": {"1a": {"module": "hangup"}}}),
            json!({"numbers.1a": {"additionalProperties": {
                "message": "Strict checking of data is enabled; only include schema-defined properties",
                "value": {"module": "hangup", "data": {}}}}}),
        ),
        (
            json!({"numbers": {"1": {"module": "park"}}}),
            json!({"numbers.1.module": {"error": {
                "message": "unable to find metaflow schema for module park", "value": "park"}}}),
        ),
        (
            json!({"numbers": {"1": {"data": {}}}}),
            json!({"numbers.1.module": {"required": {
                "message": "Field is required but missing", "value": "module"}}}),
        ),
        (
            json!({"numbers": {"1": {"module": ""}}}),
            json!({"numbers.1.module": {"minLength": {
                "message": "String must be at least 1 characters", "target": 1, "value": ""}}}),
        ),
        (
            json!({"patterns": {"^\\*1.+$": {"module": "park"}}}),
            json!({"patterns.^\\*1%2E+$.module": {"error": {
                "message": "unable to find metaflow schema for module park", "value": "park"}}}),
        ),
    ]
}

#[tokio::test]
async fn metaflow_errors_are_kazoos() {
    let api = api();
    for (sent, expected) in metaflow_table() {
        let body = json!({ "data": sent }).to_string();
        let answer = api.call("POST", ACCOUNT, Some(&body)).await;
        let data = assert_error(&answer, StatusCode::BAD_REQUEST);
        assert_eq!(answer.body["message"], "validation failed", "{sent}");
        assert_eq!(data, expected, "for {sent}");
    }
}

#[tokio::test]
async fn envelope_errors_are_kazoos() {
    let api = api();
    let broken = api.call("POST", ACCOUNT, Some(r#"{"data": {"#)).await;
    let data = assert_error(&broken, StatusCode::BAD_REQUEST);
    assert_eq!(data["json"]["invalid"]["target"], "body");
    assert!(data["json"]["invalid"]["message"].is_string(), "{data}");

    let bare = api
        .call("POST", ACCOUNT, Some(r##"{"binding_digit": "#"}"##))
        .await;
    let data = assert_error(&bare, StatusCode::BAD_REQUEST);
    assert_eq!(
        data,
        json!({"data": {"required": {"message": "Field is required but missing", "value": "data"}}})
    );

    let user = json!({"data": {"last_name": "Doe"}}).to_string();
    let answer = api
        .call("PUT", "/v2/accounts/default/users", Some(&user))
        .await;
    let data = assert_error(&answer, StatusCode::BAD_REQUEST);
    assert_eq!(
        data["first_name"],
        json!({"required": {"message": "Field is required but missing", "value": "first_name"}})
    );
}

#[tokio::test]
async fn strings_are_fixed_into_the_schema_types_as_kazoo_does() {
    let api = api();
    let sent = json!({"data": {"digit_timeout": "800", "numbers": {"9": {"module": "record_call",
        "data": {"record_on_answer": "true", "time_limit": "60"}}}}});
    let answer = api.call("POST", ACCOUNT, Some(&sent.to_string())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let data = answer.data();
    assert_eq!(data["digit_timeout"], 800);
    assert_eq!(data["numbers"]["9"]["data"]["record_on_answer"], true);
    assert_eq!(data["numbers"]["9"]["data"]["time_limit"], 60);

    let immediate = json!({"data": {"digit_timeout": 0}}).to_string();
    let answer = api.call("POST", ACCOUNT, Some(&immediate)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.data()["digit_timeout"], 0);
    assert_eq!(answer.data()["binding_digit"], "*", "Kazoo's default");
}

#[tokio::test]
async fn replies_no_handler_wrote_carry_the_envelope() {
    let api = api();
    let with_token: &[(&str, &str)] = &[("X-Auth-Token", api_support::TOKEN)];
    let not_allowed = api.call_with("PUT", ACCOUNT, None, with_token).await;
    assert_error(&not_allowed, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(not_allowed.body["auth_token"], api_support::TOKEN);
    let refused = api.call_with("GET", ACCOUNT, None, &[]).await;
    assert_error(&refused, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["auth_token"], "");

    // Unknown routes are answered by the API router's fallback, which renders this.
    let response = metaflow_proxy::api::v2::unknown_route(&Default::default(), "/v2/nope");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    for key in ["auth_token", "node", "request_id", "timestamp", "version"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"], "404");
}

#[tokio::test]
async fn every_modules_schema_defaults_are_stored_and_valid() {
    let api = api();
    let mut numbers = serde_json::Map::new();
    let modules = [
        "hangup",
        "transfer",
        "record_call",
        "hold",
        "resume",
        "play",
        "tts",
        "say",
        "break",
        "audio_level",
    ];
    for (index, module) in modules.iter().enumerate() {
        let node = json!({"module": module, "data": {"id": "greeting", "text": "hello"}});
        numbers.insert(index.to_string(), node);
    }
    let body = json!({"data": {"numbers": numbers}}).to_string();
    let answer = api.call("POST", ACCOUNT, Some(&body)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let stored = &answer.data()["numbers"];
    assert_eq!(stored["2"]["data"]["record_on_bridge"], false);
    assert_eq!(stored["3"]["data"]["unhold_key"], "1");
    assert_eq!(stored["5"]["data"]["leg"], "both");
    assert_eq!(stored["6"]["data"]["engine"], "flite");
    assert_eq!(stored["6"]["data"]["voice"], "female");
}
