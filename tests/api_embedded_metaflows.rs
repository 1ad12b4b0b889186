//! The `metaflows` member of account, user and device documents is the data the `/metaflows`
//! routes serve (Kazoo keeps it in the document): validated the same way, stored in the same
//! transaction, shown on reads, cleared by `{}` or `null`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use axum::http::StatusCode;
use serde_json::{Value, json};

use api_support::{api, assert_error, assert_success};

const USERS: &str = "/v2/accounts/default/users";

fn record_on_nine() -> Value {
    json!({"numbers": {"9": {"module": "record_call"}}})
}

#[tokio::test]
async fn a_users_metaflows_member_is_its_metaflows() {
    let api = api();
    let made_up = json!({"data": {"first_name": "A", "last_name": "B",
        "metaflows": {"numbers": {"1": {"module": "park"}}}}});
    let refused = api.call("PUT", USERS, Some(&made_up.to_string())).await;
    let data = assert_error(&refused, StatusCode::BAD_REQUEST);
    assert_eq!(
        data["metaflows.numbers.1.module"]["error"]["message"],
        "unable to find metaflow schema for module park"
    );
    assert_eq!(
        api.call("GET", USERS, None).await.data(),
        &json!([]),
        "nothing stored"
    );

    let user =
        json!({"data": {"first_name": "A", "last_name": "B", "metaflows": record_on_nine()}});
    let created = api.call("PUT", USERS, Some(&user.to_string())).await;
    assert_success(&created, StatusCode::CREATED);
    let id = created.data()["id"].as_str().unwrap().to_owned();
    let flows_path = format!("{USERS}/{id}/metaflows");
    let served = api.call("GET", &flows_path, None).await;
    assert_eq!(served.data(), &created.data()["metaflows"]);
    assert_eq!(served.data()["binding_digit"], "*");
    assert_eq!(served.data()["numbers"]["9"]["data"]["action"], "toggle");

    let changed = json!({"data": {"numbers": {"5": {"module": "hangup"}}}});
    api.call("POST", &flows_path, Some(&changed.to_string()))
        .await;
    let user_doc = api.call("GET", &format!("{USERS}/{id}"), None).await;
    assert_eq!(
        user_doc.data()["metaflows"]["numbers"]["5"]["module"],
        "hangup"
    );
    assert!(user_doc.data()["metaflows"]["numbers"].get("9").is_none());

    let patch = json!({"data": {"metaflows": {"numbers": {"7": {"module": "hangup"}}}}});
    let patched = api
        .call("PATCH", &format!("{USERS}/{id}"), Some(&patch.to_string()))
        .await;
    assert_success(&patched, StatusCode::OK);
    let numbers = &patched.data()["metaflows"]["numbers"];
    assert!(
        numbers.get("5").is_some() && numbers.get("7").is_some(),
        "{numbers}"
    );
    assert_eq!(patched.data()["first_name"], "A");

    let clear = json!({"data": {"metaflows": null}});
    api.call("PATCH", &format!("{USERS}/{id}"), Some(&clear.to_string()))
        .await;
    assert_eq!(api.call("GET", &flows_path, None).await.data(), &json!({}));
    let user_doc = api.call("GET", &format!("{USERS}/{id}"), None).await;
    assert!(
        user_doc.data().get("metaflows").is_none(),
        "{}",
        user_doc.body
    );
}

#[tokio::test]
async fn account_and_device_documents_carry_their_metaflows_too() {
    let api = api();
    let account = "/v2/accounts/default";
    let patch = json!({"data": {"metaflows": record_on_nine()}});
    let patched = api.call("PATCH", account, Some(&patch.to_string())).await;
    assert_success(&patched, StatusCode::OK);
    let served = api.call("GET", &format!("{account}/metaflows"), None).await;
    assert_eq!(served.data()["numbers"]["9"]["module"], "record_call");
    assert_eq!(patched.data()["metaflows"], *served.data());

    let device = json!({"data": {"name": "desk", "metaflows": {"digit_timeout": "x"}}});
    let refused = api
        .call(
            "PUT",
            "/v2/accounts/default/devices",
            Some(&device.to_string()),
        )
        .await;
    let data = assert_error(&refused, StatusCode::BAD_REQUEST);
    assert_eq!(data["metaflows.digit_timeout"]["type"]["target"], "integer");

    let device = json!({"data": {"name": "desk", "metaflows": {"digit_timeout": 1500}}});
    let created = api
        .call(
            "PUT",
            "/v2/accounts/default/devices",
            Some(&device.to_string()),
        )
        .await;
    assert_success(&created, StatusCode::CREATED);
    let id = created.data()["id"].as_str().unwrap();
    let served = api
        .call(
            "GET",
            &format!("/v2/accounts/default/devices/{id}/metaflows"),
            None,
        )
        .await;
    assert_eq!(served.data()["digit_timeout"], 1500);

    let replaced = json!({"data": {"name": "desk", "metaflows": {}}});
    let path = format!("/v2/accounts/default/devices/{id}");
    api.call("POST", &path, Some(&replaced.to_string())).await;
    let served = api.call("GET", &format!("{path}/metaflows"), None).await;
    assert_eq!(served.data(), &json!({}), "{{}} clears");
}
