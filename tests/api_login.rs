//! Kazoo's logins: `PUT /v2/user_auth` (MD5 or SHA-1 of `username:password`) and
//! `PUT /v2/api_auth` (the account's `api_key`) hand out tokens bound to one account;
//! `GET`/`DELETE /v2/token_auth`; users' passwords kept only as hashes; refusals counted.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use axum::http::StatusCode;
use metaflow_proxy::metrics::MetricsSource;
use serde_json::json;

use api_support::{api, assert_error, assert_success};

/// Kazoo's `credentials`: hex MD5 of `username:password` (python's hashlib agrees).
const ALICE_MD5: &str = "6f622058968bb90757e6c6ed79e5df81";

async fn login(api: &api_support::Api, path: &str, data: serde_json::Value) -> api_support::Answer {
    let body = json!({ "data": data }).to_string();
    api.call_with("PUT", path, Some(&body), &[]).await
}

#[tokio::test]
async fn user_auth_tokens_open_their_account_only() {
    let api = api();
    let user =
        json!({"first_name": "Alice", "last_name": "L", "username": "alice", "password": "secret"});
    let id = api.create("/v2/accounts/default/users", user).await;
    let fetched = api
        .call("GET", &format!("/v2/accounts/default/users/{id}"), None)
        .await;
    assert!(fetched.data().get("password").is_none(), "{}", fetched.body);
    assert!(
        !fetched.body.to_string().contains("pvt_"),
        "{}",
        fetched.body
    );

    let wrong = login(
        &api,
        "/v2/user_auth",
        json!({"credentials": "0".repeat(32), "account_name": "Default"}),
    )
    .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["message"], "invalid credentials");
    assert_eq!(
        wrong.data(),
        &json!({"message": "invalid credentials"}),
        "Kazoo's body"
    );

    let answer = login(
        &api,
        "/v2/user_auth",
        json!({"credentials": ALICE_MD5, "account_name": "default"}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["status"], "success");
    assert_eq!(answer.data()["account_id"], "default");
    assert_eq!(answer.data()["owner_id"], id.as_str());
    let token = answer.body["auth_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);

    let mine = api
        .call_with(
            "GET",
            "/v2/accounts/default/users",
            None,
            &[("X-Auth-Token", &token)],
        )
        .await;
    assert_success_with(&mine, &token);
    let other = api.create("/v2/accounts", json!({"name": "Other"})).await;
    for path in [format!("/v2/accounts/{other}"), "/v2/accounts".to_owned()] {
        let refused = api
            .call_with("GET", &path, None, &[("X-Auth-Token", &token)])
            .await;
        assert_error(&refused, StatusCode::FORBIDDEN);
    }

    let info = api
        .call_with("GET", "/v2/token_auth", None, &[("X-Auth-Token", &token)])
        .await;
    assert_eq!(info.data()["owner_id"], id.as_str());
    let sha1 = login(&api, "/v2/user_auth", json!({"credentials": "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4", "method": "sha", "account_realm": "default"})).await;
    assert_eq!(
        sha1.status,
        StatusCode::UNAUTHORIZED,
        "sha1 of another pair: {}",
        sha1.body
    );

    let out = api
        .call_with(
            "DELETE",
            "/v2/token_auth",
            None,
            &[("X-Auth-Token", &token)],
        )
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    let after = api
        .call_with(
            "GET",
            "/v2/accounts/default/users",
            None,
            &[("X-Auth-Token", &token)],
        )
        .await;
    assert_error(&after, StatusCode::UNAUTHORIZED);

    let mut metrics = String::new();
    api.state.sessions().render_prometheus(&mut metrics);
    for reason in ["invalid_credentials", "other_account", "unknown_token"] {
        let line = format!("metaflow_proxy_api_auth_refusals_total{{reason=\"{reason}\"}} ");
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap()
            .parse()
            .unwrap();
        assert!(count >= 1, "{reason}: {metrics}");
    }
}

fn assert_success_with(answer: &api_support::Answer, token: &str) {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["auth_token"], token);
}

#[tokio::test]
async fn api_auth_takes_the_accounts_generated_key() {
    let api = api();
    let account = api.call("GET", "/v2/accounts/default", None).await;
    assert_success(&account, StatusCode::OK);
    let key = account.data()["api_key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));

    let created = api.create("/v2/accounts", json!({"name": "Second"})).await;
    let second = api
        .call("GET", &format!("/v2/accounts/{created}"), None)
        .await;
    assert_ne!(second.data()["api_key"], key.as_str());

    let answer = login(&api, "/v2/api_auth", json!({"api_key": key})).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.data()["account_id"], "default");
    let refused = login(&api, "/v2/api_auth", json!({"api_key": "f".repeat(64)})).await;
    assert_error(&refused, StatusCode::UNAUTHORIZED);
    let missing = login(&api, "/v2/api_auth", json!({})).await;
    let data = assert_error(&missing, StatusCode::BAD_REQUEST);
    assert!(data["api_key"]["required"].is_object(), "{data}");

    let served = api.call("GET", "/v2/accounts/default/api_key", None).await;
    assert_eq!(served.data(), &json!({"api_key": key}));
    let renewed = api.call("PUT", "/v2/accounts/default/api_key", None).await;
    assert_success(&renewed, StatusCode::OK);
    let new_key = renewed.data()["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    let stale = login(&api, "/v2/api_auth", json!({"api_key": key})).await;
    assert_error(&stale, StatusCode::UNAUTHORIZED);
    let key = new_key;

    // A replace without the key keeps it (it is the server's, not the client's).
    let body = json!({"data": {"name": "Default", "realm": "default", "api_key": "mine"}});
    let replaced = api
        .call("POST", "/v2/accounts/default", Some(&body.to_string()))
        .await;
    assert_eq!(
        replaced.data()["api_key"],
        key.as_str(),
        "{}",
        replaced.body
    );
}
