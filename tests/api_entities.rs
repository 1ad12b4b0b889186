//! Kazoo CRUD on accounts, users, devices and callflows, and the channels routes.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use axum::http::StatusCode;
use serde_json::{Value, json};

use api_support::{api, assert_error, assert_success};

#[tokio::test]
async fn the_default_account_exists_and_accounts_have_unique_realms() {
    let api = api();
    let listed = api.call("GET", "/v2/accounts", None).await;
    assert_success(&listed, StatusCode::OK);
    assert_eq!(
        listed.data(),
        &json!([{"id": "default", "name": "Default", "realm": "default"}])
    );

    let id = api
        .create(
            "/v2/accounts",
            json!({"name": "Acme", "realm": "acme.example"}),
        )
        .await;
    let path = format!("/v2/accounts/{id}");
    let fetched = api.call("GET", &path, None).await;
    assert_eq!(fetched.data()["realm"], "acme.example");
    assert_eq!(fetched.data()["id"], id.as_str());

    let clash = api
        .call(
            "PUT",
            "/v2/accounts",
            Some(r#"{"data":{"name":"B","realm":"acme.example"}}"#),
        )
        .await;
    assert!(assert_error(&clash, StatusCode::BAD_REQUEST)["realm"]["unique"].is_object());
    let nameless = api
        .call("PUT", "/v2/accounts", Some(r#"{"data":{"realm":"x"}}"#))
        .await;
    assert!(assert_error(&nameless, StatusCode::BAD_REQUEST)["name"]["required"].is_object());
    assert_eq!(
        api.call("GET", "/v2/accounts", None)
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let patched = api
        .call("PATCH", &path, Some(r#"{"data":{"name":"Acme Ltd"}}"#))
        .await;
    assert_success(&patched, StatusCode::OK);
    assert_eq!(
        patched.data()["realm"],
        "acme.example",
        "merge keeps other members"
    );
    let replaced = api
        .call("POST", &path, Some(r#"{"data":{"name":"Only"}}"#))
        .await;
    assert!(replaced.data().get("realm").is_none(), "POST replaces");

    assert_error(
        &api.call("DELETE", "/v2/accounts/default", None).await,
        StatusCode::FORBIDDEN,
    );
    assert_success(&api.call("DELETE", &path, None).await, StatusCode::OK);
    assert_error(&api.call("GET", &path, None).await, StatusCode::NOT_FOUND);
}

/// `pbx_auth` (the credentials the proxy answers the PBX's challenges with on calls it places
/// for the account) is checked like any member: an object with string `username` and
/// `password`.
#[tokio::test]
async fn account_pbx_auth_is_an_object_with_username_and_password() {
    let api = api();
    let bad = api
        .call(
            "PUT",
            "/v2/accounts",
            Some(r#"{"data":{"name":"A","pbx_auth":{"username":"u","password":5}}}"#),
        )
        .await;
    assert!(assert_error(&bad, StatusCode::BAD_REQUEST)["pbx_auth.password"]["type"].is_object());
    let missing = api
        .call(
            "PUT",
            "/v2/accounts",
            Some(r#"{"data":{"name":"A","pbx_auth":{"password":"p"}}}"#),
        )
        .await;
    assert!(
        assert_error(&missing, StatusCode::BAD_REQUEST)["pbx_auth.username"]["required"]
            .is_object()
    );
    let not_object = api
        .call(
            "PUT",
            "/v2/accounts",
            Some(r#"{"data":{"name":"A","pbx_auth":"u:p"}}"#),
        )
        .await;
    assert!(assert_error(&not_object, StatusCode::BAD_REQUEST)["pbx_auth"]["type"].is_object());
    let id = api
        .create(
            "/v2/accounts",
            json!({"name": "A", "pbx_auth": {"username": "proxy", "password": "s3cret"}}),
        )
        .await;
    let fetched = api.call("GET", &format!("/v2/accounts/{id}"), None).await;
    assert_eq!(fetched.data()["pbx_auth"]["username"], "proxy");
}

#[tokio::test]
async fn users_and_devices_check_types_owners_and_sip_usernames() {
    let api = api();
    let users = "/v2/accounts/default/users";
    let wrong = json!({"data": {"first_name": 1, "last_name": [], "username": {}}});
    let answer = api.call("PUT", users, Some(&wrong.to_string())).await;
    let data = assert_error(&answer, StatusCode::BAD_REQUEST);
    for field in ["first_name", "last_name", "username"] {
        assert!(data[field]["type"].is_object(), "{field}: {data}");
    }
    let user = api
        .create(
            users,
            json!({"first_name": "Ann", "last_name": "Lee", "username": "ann"}),
        )
        .await;
    let listed = api.call("GET", users, None).await;
    assert_eq!(
        listed.data(),
        &json!([{"id": user, "first_name": "Ann", "last_name": "Lee", "username": "ann"}])
    );

    let devices = "/v2/accounts/default/devices";
    let wrong = json!({"data": {"name": 5, "owner_id": 3, "sip": {"username": 9}}});
    let data = assert_error(
        &api.call("PUT", devices, Some(&wrong.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    for (field, rule) in [
        ("name", "type"),
        ("owner_id", "type"),
        ("sip.username", "type"),
    ] {
        assert!(data[field][rule].is_object(), "{field}: {data}");
    }
    let orphan = json!({"data": {"name": "x", "owner_id": "ghost"}});
    let data = assert_error(
        &api.call("PUT", devices, Some(&orphan.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    assert!(data["owner_id"]["not_found"].is_object());
    let device = api
        .create(
            devices,
            json!({"name": "desk", "owner_id": user, "sip": {"username": "1001"}}),
        )
        .await;
    let twin = json!({"data": {"name": "twin", "sip": {"username": "1001"}}});
    let data = assert_error(
        &api.call("PUT", devices, Some(&twin.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    assert!(data["sip.username"]["unique"].is_object());
    // The device itself may keep its username.
    let path = format!("{devices}/{device}");
    let renamed = api
        .call("PATCH", &path, Some(r#"{"data":{"name":"desk 2"}}"#))
        .await;
    assert_success(&renamed, StatusCode::OK);
    assert_eq!(renamed.data()["sip"]["username"], "1001");
    assert_error(
        &api.call("GET", "/v2/accounts/nope/devices", None).await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &api.call("PUT", "/v2/accounts/nope/users", Some(&wrong.to_string()))
            .await,
        StatusCode::NOT_FOUND,
    );
    let bad_for_unknown = api
        .call(
            "POST",
            "/v2/accounts/nope/metaflows",
            Some(r#"{"data":{"binding_digit":5}}"#),
        )
        .await;
    assert_error(&bad_for_unknown, StatusCode::NOT_FOUND);
    assert_error(
        &api.call("GET", &format!("/v2/accounts/nope/devices/{device}"), None)
            .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn callflows_follow_the_seed_verbs_and_schema() {
    let api = api();
    let callflows = "/v2/accounts/default/callflows";
    assert_eq!(api.call("GET", callflows, None).await.data(), &json!([]));
    let flow = json!({"module": "user", "data": {"id": "abc"}, "children": {}});
    let created = json!({
        "numbers": ["1000"], "patterns": ["^\\*9(\\d+)$"], "flow": flow,
        "metaflow": {"patterns": {"2(\\d+)": {"module": "transfer"}}}
    });
    let id = api.create(callflows, created).await;
    let path = format!("{callflows}/{id}");
    let fetched = api.call("GET", &path, None).await;
    assert_success(&fetched, StatusCode::OK);
    assert_eq!(fetched.data()["flow"], flow, "flow is kept as-is");
    assert_eq!(
        fetched.data()["metaflow"]["patterns"]["2(\\d+)"]["data"]["transfer_type"],
        "blind"
    );

    let wrong = json!({"data": {
        "numbers": "1000", "patterns": ["(", 4], "flow": [],
        "metaflow": {"binding_digit": "x", "numbers": {"1": {"module": "nope"}}}
    }});
    let data = assert_error(
        &api.call("POST", &path, Some(&wrong.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    for (field, rule) in [
        ("numbers", "type"),
        ("patterns.0", "regex"),
        ("patterns.1", "type"),
        ("flow", "type"),
        ("metaflow.binding_digit", "enum"),
        ("metaflow.numbers.1.module", "error"),
    ] {
        assert!(data[field][rule].is_object(), "{field}/{rule}: {data}");
    }
    let taken = json!({"data": {"numbers": ["1000"]}});
    let data = assert_error(
        &api.call("PUT", callflows, Some(&taken.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    assert!(data["numbers.0"]["unique"].is_object());
    let unchanged = api.call("GET", &path, None).await;
    assert_eq!(unchanged.body["revision"], fetched.body["revision"]);

    let patched = api
        .call(
            "PATCH",
            &path,
            Some(r#"{"data":{"numbers":["1000","1001"]}}"#),
        )
        .await;
    assert_success(&patched, StatusCode::OK);
    assert_eq!(patched.data()["numbers"], json!(["1000", "1001"]));
    assert!(patched.data()["metaflow"].is_object());
    let stale = api
        .call_with(
            "POST",
            &path,
            Some(r#"{"data":{}}"#),
            &[
                ("X-Auth-Token", api_support::TOKEN),
                ("If-Match", &fetched.revision()),
            ],
        )
        .await;
    assert_error(&stale, StatusCode::CONFLICT);
    let removed = api.call("DELETE", &path, None).await;
    assert_success(&removed, StatusCode::OK);
    assert_eq!(removed.data()["id"], id.as_str());
    assert_error(
        &api.call("DELETE", &path, None).await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn channels_list_and_run_validated_metaflow_nodes() {
    let api = api();
    let listed = api.call("GET", "/v2/accounts/default/channels", None).await;
    assert_success(&listed, StatusCode::OK);
    assert_eq!(listed.data()[0]["uuid"], "call-1");

    let path = "/v2/accounts/default/channels/call-1";
    let bare =
        json!({"action": "metaflow", "data": {"module": "transfer", "data": {"target": "1234"}}});
    let accepted = api.call("PUT", path, Some(&bare.to_string())).await;
    assert_success(&accepted, StatusCode::ACCEPTED);
    let wrapped = json!({"data": {"action": "metaflow", "data": {"module": "hangup"}}});
    assert_success(
        &api.call("PUT", path, Some(&wrapped.to_string())).await,
        StatusCode::ACCEPTED,
    );
    let ran = api.calls.ran.lock().unwrap().clone();
    assert_eq!(ran.len(), 2);
    assert_eq!(
        ran[0].1["data"]["transfer_type"], "blind",
        "normalised before running"
    );
    assert_eq!(ran[1].1, json!({"module": "hangup", "data": {}}));

    let bad = json!({"action": "metaflow", "data": {"module": "transfer", "data": {"transfer_type": 1}, "children": {"_": {"module": "x"}}}});
    let data = assert_error(
        &api.call("PUT", path, Some(&bad.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    assert!(
        data["data.children._.module"]["error"].is_object(),
        "{data}"
    );
    let bad_data =
        json!({"action": "metaflow", "data": {"module": "transfer", "data": {"transfer_type": 1}}});
    let data = assert_error(
        &api.call("PUT", path, Some(&bad_data.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    assert!(
        data["data.data.transfer_type"]["type"].is_object(),
        "{data}"
    );
    let other_action = json!({"action": "eavesdrop", "data": {}});
    assert_error(
        &api.call("PUT", path, Some(&other_action.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    let unknown = api
        .call(
            "PUT",
            "/v2/accounts/default/channels/ghost",
            Some(&wrapped.to_string()),
        )
        .await;
    assert_eq!(
        assert_error(&unknown, StatusCode::NOT_FOUND)["cause"],
        "ghost"
    );
    assert_eq!(
        api.calls.ran.lock().unwrap().len(),
        2,
        "refused actions never reach a call"
    );
    assert_error(
        &api.call("GET", "/v2/accounts/nope/channels", None).await,
        StatusCode::NOT_FOUND,
    );
    let _: Value = listed.body;
}
