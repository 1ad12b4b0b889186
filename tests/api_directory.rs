//! `MetaflowDirectory`: device > user > account precedence for a leg, realm selection, callflow
//! matching for a dialed number, and that API writes apply to the next lookup at once.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use serde_json::json;

use api_support::{TOKEN, api, api_in};
use metaflow_proxy::metaflow::Metaflows;

/// The codes a metaflow object defines, to tell resolved objects apart.
fn codes(flows: &Metaflows) -> Vec<String> {
    let numbers = flows.numbers.iter().map(|(code, _)| code.clone());
    numbers
        .chain(flows.patterns.iter().map(|(code, _, _)| code.clone()))
        .collect()
}

fn metaflow_body(code: &str) -> String {
    json!({"data": {"numbers": {code: {"module": "hangup"}}}}).to_string()
}

#[tokio::test]
async fn device_then_owner_then_account_precedence() {
    let api = api();
    let directory = api.directory.clone();
    assert!(
        directory.for_leg("1001", "default").is_none(),
        "nothing configured yet"
    );

    api.call(
        "POST",
        "/v2/accounts/default/metaflows",
        Some(&metaflow_body("1")),
    )
    .await;
    let user = api
        .create(
            "/v2/accounts/default/users",
            json!({"first_name": "A", "last_name": "B"}),
        )
        .await;
    let device = api
        .create(
            "/v2/accounts/default/devices",
            json!({"name": "d", "owner_id": user, "sip": {"username": "1001"}}),
        )
        .await;
    let plain = api
        .create(
            "/v2/accounts/default/devices",
            json!({"name": "p", "sip": {"username": "1002"}}),
        )
        .await;
    let (flows, scope) = directory.for_leg("1001", "default").unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (vec!["1".to_owned()], "account")
    );

    let user_path = format!("/v2/accounts/default/users/{user}/metaflows");
    api.call("POST", &user_path, Some(&metaflow_body("2")))
        .await;
    let (flows, scope) = directory.for_leg("1001", "default").unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (vec!["2".to_owned()], "user")
    );

    let device_path = format!("/v2/accounts/default/devices/{device}/metaflows");
    api.call("POST", &device_path, Some(&metaflow_body("3")))
        .await;
    let (flows, scope) = directory.for_leg("1001", "default").unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (vec!["3".to_owned()], "device")
    );

    // Other devices and unknown parties still get the account's; an unknown host the default's.
    assert_eq!(directory.for_leg("1002", "default").unwrap().1, "account");
    assert_eq!(
        directory.for_leg("9999", "unknown.example").unwrap().1,
        "account"
    );
    let _ = plain;

    // Emptying the device's metaflows falls back to the owner's at once.
    api.call("DELETE", &device_path, None).await;
    assert_eq!(directory.for_leg("1001", "default").unwrap().1, "user");
    api.call("DELETE", &user_path, None).await;
    assert_eq!(directory.for_leg("1001", "default").unwrap().1, "account");
    api.call("DELETE", "/v2/accounts/default/metaflows", None)
        .await;
    assert!(directory.for_leg("1001", "default").is_none());
}

#[tokio::test]
async fn the_host_selects_the_account_by_realm() {
    let api = api();
    let acme = api
        .create(
            "/v2/accounts",
            json!({"name": "Acme", "realm": "acme.example"}),
        )
        .await;
    api.call(
        "POST",
        &format!("/v2/accounts/{acme}/metaflows"),
        Some(&metaflow_body("7")),
    )
    .await;
    api.call(
        "POST",
        "/v2/accounts/default/metaflows",
        Some(&metaflow_body("8")),
    )
    .await;
    let (flows, _) = api.directory.for_leg("anyone", "acme.example").unwrap();
    assert_eq!(codes(&flows), ["7"]);
    let (flows, _) = api.directory.for_leg("anyone", "10.0.0.1").unwrap();
    assert_eq!(codes(&flows), ["8"]);
}

#[tokio::test]
async fn dialed_numbers_match_exact_numbers_before_patterns() {
    let api = api();
    let callflows = "/v2/accounts/default/callflows";
    let with_code = |code: &str| json!({"numbers": {code: {"module": "hangup"}}});
    api.create(
        callflows,
        json!({"patterns": ["^1\\d+$"], "metaflow": with_code("5")}),
    )
    .await;
    api.create(
        callflows,
        json!({"numbers": ["1000"], "metaflow": with_code("6")}),
    )
    .await;
    api.create(callflows, json!({"numbers": ["2000"]})).await;
    let directory = &api.directory;
    assert_eq!(
        codes(&directory.for_dialed("default", "1000").unwrap()),
        ["6"],
        "exact wins"
    );
    assert_eq!(
        codes(&directory.for_dialed("default", "1234").unwrap()),
        ["5"],
        "pattern"
    );
    assert!(
        directory.for_dialed("default", "2000").is_none(),
        "matched callflow without metaflow"
    );
    assert!(directory.for_dialed("default", "3000").is_none());
    assert!(directory.for_dialed("nope", "1000").is_none());
}

#[tokio::test]
async fn a_reopened_store_resolves_the_same() {
    let api = api();
    api.call(
        "POST",
        "/v2/accounts/default/metaflows",
        Some(&metaflow_body("4")),
    )
    .await;
    let dir = api.dir;
    drop((api.router, api.state, api.directory));
    let reopened = api_in(dir, vec![TOKEN.to_owned()]);
    let (flows, scope) = reopened.directory.for_leg("x", "default").unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (vec!["4".to_owned()], "account")
    );
}
