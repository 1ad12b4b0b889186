//! `/v2/.../metaflows`: the Kazoo seed examples, PATCH merging, DELETE, user and device scope,
//! bad input, authentication and revision conflicts.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use axum::http::StatusCode;
use serde_json::{Value, json};

use api_support::{TOKEN, api, api_in, assert_error, assert_success, keys};

const ACCOUNT: &str = "/v2/accounts/default/metaflows";

/// The body of the seed's `curl -d '...'` for "Set metaflows on the account" (shell quoting
/// removed: the JSON text holds `2(\\d+)`, the regex `2(\d+)`).
const SEED_POST_BODY: &str = r#"{"data":{"binding_digit":"*", "patterns":{"2(\\d+)":{"module":"transfer", "data":{"takeback_dtmf":"*1"}}}}}"#;

/// The seed's response to that request.
const SEED_POST_RESPONSE: &str = r#"{
    "auth_token": "{AUTH_TOKEN}",
    "data": {
        "binding_digit": "*",
        "patterns": {
            "2(\\d+)": {
                "data": {"captures": ["no_match"], "takeback_dtmf": "*1", "transfer_type": "blind"},
                "module": "transfer"
            }
        }
    },
    "node": "{NODE_HASH}",
    "request_id": "{REQUEST_ID}",
    "revision": "{REVISION}",
    "status": "success",
    "timestamp": "{TIMESTAMP}",
    "version": "4.2.42"
}"#;

/// The seed's "No metaflows assigned" response (the DELETE response adds `revision`).
const SEED_EMPTY_RESPONSE: &str = r#"{
    "auth_token": "{AUTH_TOKEN}", "data": {}, "node": "{NODE_HASH}", "request_id": "{REQUEST_ID}",
    "status": "success", "timestamp": "{TIMESTAMP}", "version": "4.2.42"
}"#;

/// Sorts object keys recursively so that data can be compared regardless of member order.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn seed_fetch_set_and_remove_match_the_kazoo_examples() {
    let api = api();
    let seed_empty: Value = serde_json::from_str(SEED_EMPTY_RESPONSE).unwrap();
    let fetched = api.call("GET", ACCOUNT, None).await;
    assert_success(&fetched, StatusCode::OK);
    assert_eq!(keys(&fetched.body), keys(&seed_empty));
    assert_eq!(fetched.data(), &json!({}));

    let seed_set: Value = serde_json::from_str(SEED_POST_RESPONSE).unwrap();
    let set = api.call("POST", ACCOUNT, Some(SEED_POST_BODY)).await;
    assert_success(&set, StatusCode::OK);
    assert_eq!(keys(&set.body), keys(&seed_set));
    assert_eq!(canonical(set.data()), canonical(&seed_set["data"]));
    let revision = set.revision();
    assert!(revision.starts_with("1-"), "{revision}");
    assert_eq!(set.headers["etag"], format!("\"{revision}\"").as_str());

    let again = api.call("GET", ACCOUNT, None).await;
    assert_eq!(again.data(), set.data(), "GET returns the stored form");
    assert_eq!(again.revision(), revision);

    let removed = api.call("DELETE", ACCOUNT, None).await;
    assert_success(&removed, StatusCode::OK);
    let mut seed_removed = keys(&seed_empty);
    seed_removed.push("revision".into());
    seed_removed.sort();
    assert_eq!(keys(&removed.body), seed_removed);
    assert_eq!(removed.data(), &json!({}));
    assert_ne!(removed.revision(), revision);
    assert_eq!(api.call("GET", ACCOUNT, None).await.data(), &json!({}));
}

#[tokio::test]
async fn every_reply_is_fresh_and_echoes_the_token() {
    let api = api();
    let first = api.call("GET", ACCOUNT, None).await;
    let second = api.call("GET", ACCOUNT, None).await;
    assert_ne!(first.body["request_id"], second.body["request_id"]);
    assert_eq!(first.body["node"], second.body["node"]);
    assert_eq!(first.body["version"], env!("CARGO_PKG_VERSION"));
    let timestamp = first.body["timestamp"].as_str().unwrap();
    assert_eq!(timestamp.len(), 20, "{timestamp}");
    assert!(timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T');
}

#[tokio::test]
async fn patch_merges_codes_and_top_level_keys() {
    let api = api();
    api.call("POST", ACCOUNT, Some(SEED_POST_BODY)).await;
    let patch = json!({"data": {
        "binding_digit": "#",
        "numbers": {"9": {"module": "record_call"}},
        "patterns": {"^3$": {"module": "hangup"}}
    }});
    let merged = api.call("PATCH", ACCOUNT, Some(&patch.to_string())).await;
    assert_success(&merged, StatusCode::OK);
    let data = merged.data();
    assert_eq!(data["binding_digit"], "#");
    // Kazoo's validator stores the module's schema defaults.
    let record_defaults =
        json!({"action": "toggle", "record_on_answer": false, "record_on_bridge": false});
    assert_eq!(
        data["numbers"]["9"],
        json!({"module": "record_call", "data": record_defaults})
    );
    assert_eq!(
        data["patterns"]["2(\\d+)"]["data"]["transfer_type"], "blind",
        "kept"
    );
    assert_eq!(data["patterns"]["^3$"]["module"], "hangup", "added");
    assert!(merged.revision().starts_with("2-"));

    let removal = json!({"data": {"patterns": {"2(\\d+)": null}, "binding_digit": null}});
    let trimmed = api.call("PATCH", ACCOUNT, Some(&removal.to_string())).await;
    assert_success(&trimmed, StatusCode::OK);
    assert_eq!(keys(&trimmed.data()["patterns"]), ["^3$"]);
    assert_eq!(
        trimmed.data()["binding_digit"],
        "*",
        "a removed binding_digit is stored with Kazoo's default"
    );
}

#[tokio::test]
async fn user_and_device_metaflows_are_separate_scopes() {
    let api = api();
    let user = api
        .create(
            "/v2/accounts/default/users",
            json!({"first_name": "Ann", "last_name": "Lee"}),
        )
        .await;
    let device = api
        .create(
            "/v2/accounts/default/devices",
            json!({"name": "desk", "owner_id": user}),
        )
        .await;
    let user_path = format!("/v2/accounts/default/users/{user}/metaflows");
    let device_path = format!("/v2/accounts/default/devices/{device}/metaflows");
    let user_body = r#"{"data":{"numbers":{"9":{"module":"record_call"}}}}"#;
    assert_success(
        &api.call("POST", &user_path, Some(user_body)).await,
        StatusCode::OK,
    );
    let device_body = r##"{"data":{"binding_digit":"#","numbers":{"1":{"module":"hangup"}}}}"##;
    assert_success(
        &api.call("POST", &device_path, Some(device_body)).await,
        StatusCode::OK,
    );

    assert_eq!(
        api.call("GET", &user_path, None).await.data()["numbers"]["9"]["module"],
        "record_call"
    );
    assert_eq!(
        api.call("GET", &device_path, None).await.data()["binding_digit"],
        "#"
    );
    assert_eq!(
        api.call("GET", ACCOUNT, None).await.data(),
        &json!({}),
        "account untouched"
    );

    let missing = api
        .call("GET", "/v2/accounts/default/users/nobody/metaflows", None)
        .await;
    let data = assert_error(&missing, StatusCode::NOT_FOUND);
    assert_eq!(data["cause"], "nobody");
    let stray = api
        .call(
            "POST",
            "/v2/accounts/default/devices/nothing/metaflows",
            Some(user_body),
        )
        .await;
    assert_error(&stray, StatusCode::NOT_FOUND);

    // Deleting the user removes its metaflows with it.
    api.call(
        "DELETE",
        &format!("/v2/accounts/default/users/{user}"),
        None,
    )
    .await;
    assert_error(
        &api.call("GET", &user_path, None).await,
        StatusCode::NOT_FOUND,
    );
}

/// Asserts that the account metaflows are still exactly `expected` (nothing stored).
async fn assert_unchanged(api: &api_support::Api, expected: &Value) {
    let now = api.call("GET", ACCOUNT, None).await;
    assert_eq!(&now.body["data"], &expected["data"]);
    assert_eq!(now.body.get("revision"), expected.get("revision"));
}

#[tokio::test]
async fn bad_input_is_a_clear_400_and_stores_nothing() {
    let api = api();
    let before = api.call("POST", ACCOUNT, Some(SEED_POST_BODY)).await.body;

    let broken = api
        .call("POST", ACCOUNT, Some(r#"{"data": {"binding_digit": "*",}"#))
        .await;
    let data = assert_error(&broken, StatusCode::BAD_REQUEST);
    assert_eq!(broken.body["message"], "validation error");
    let invalid = &data["json"]["invalid"];
    assert_eq!(invalid["target"], "body");
    assert!(
        invalid["message"].as_str().unwrap().contains("line 1"),
        "{invalid}"
    );

    for wrong in ["[1,2]", r#"{"binding_digit": "*"}"#, r#"{"data": "text"}"#] {
        let answer = api.call("POST", ACCOUNT, Some(wrong)).await;
        assert_error(&answer, StatusCode::BAD_REQUEST);
    }

    let every_field_wrong = json!({"data": {
        "binding_digit": 5,
        "digit_timeout": "soon",
        "listen_on": "everyone",
        "suppress_dtmf": "yes",
        "numbers": {"12a": {"module": "hangup"}, "1": {"module": 7, "data": [], "children": 3}},
        "patterns": {"2(\\d+": {"module": "transfer"}, "^4$": {"module": "teleport"},
                     "^5$": {"module": "transfer", "data": {"transfer_type": "sideways"}}}
    }});
    let answer = api
        .call("POST", ACCOUNT, Some(&every_field_wrong.to_string()))
        .await;
    let data = assert_error(&answer, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["message"], "validation failed");
    let expected = [
        ("binding_digit", "type"),
        ("digit_timeout", "type"),
        ("listen_on", "enum"),
        ("suppress_dtmf", "type"),
        ("numbers.12a", "additionalProperties"),
        ("numbers.1.module", "type"),
        ("numbers.1.data", "type"),
        ("numbers.1.children", "type"),
        ("patterns.2(\\d+", "regex"),
        ("patterns.^4$.module", "error"),
    ];
    for (field, rule) in expected {
        assert!(
            data[field][rule]["message"].is_string(),
            "{field}/{rule} in {data}"
        );
    }
    // Module data is checked only once the schema passes; then its paths are named too.
    let bad_data = json!({"data": {"patterns": {"^5$": {"module": "transfer", "data": {"transfer_type": "sideways"}}}}});
    let answer = api.call("POST", ACCOUNT, Some(&bad_data.to_string())).await;
    let data = assert_error(&answer, StatusCode::BAD_REQUEST);
    assert!(
        data["patterns.^5$.data.transfer_type"]["enum"]["message"].is_string(),
        "{data}"
    );
    // record_call's Kazoo keys: an mp3 format and an unsupported sample rate are refused by name.
    let bad_record = json!({"data": {"numbers": {"9": {"module": "record_call",
        "data": {"format": "mp3", "record_sample_rate": 12345, "action": "mask"}}}}});
    let answer = api
        .call("POST", ACCOUNT, Some(&bad_record.to_string()))
        .await;
    let data = assert_error(&answer, StatusCode::BAD_REQUEST);
    assert!(
        data["numbers.9.data.format"]["enum"]["message"].is_string(),
        "{data}"
    );
    assert!(
        data["numbers.9.data.record_sample_rate"]["enum"]["message"].is_string(),
        "{data}"
    );
    assert!(
        data.get("numbers.9.data.action").is_none(),
        "mask is Kazoo's: {data}"
    );

    let bad_patch = json!({"data": {"numbers": {"x": {"module": "hangup"}}}});
    let answer = api
        .call("PATCH", ACCOUNT, Some(&bad_patch.to_string()))
        .await;
    assert!(
        assert_error(&answer, StatusCode::BAD_REQUEST)["numbers.x"]["additionalProperties"]
            .is_object()
    );
    assert_unchanged(&api, &before).await;
}

#[tokio::test]
async fn authentication_and_unknown_accounts() {
    let api = api();
    let before = api.call("GET", ACCOUNT, None).await.body;
    let no_token = api
        .call_with("POST", ACCOUNT, Some(SEED_POST_BODY), &[])
        .await;
    assert_error(&no_token, StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.body["message"], "invalid credentials");
    let wrong = api
        .call_with("GET", ACCOUNT, None, &[("X-Auth-Token", "guess")])
        .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["auth_token"], "guess");
    assert_unchanged(&api, &before).await;

    let unknown = api
        .call("POST", "/v2/accounts/nope/metaflows", Some(SEED_POST_BODY))
        .await;
    let data = assert_error(&unknown, StatusCode::NOT_FOUND);
    assert_eq!(data["cause"], "nope");
    let not_allowed = api.call("PUT", ACCOUNT, Some(SEED_POST_BODY)).await;
    assert_error(&not_allowed, StatusCode::METHOD_NOT_ALLOWED);

    // With no token configured every request is refused.
    let closed = api_in(tempfile::tempdir().unwrap(), Vec::new());
    assert_error(
        &closed.call("GET", ACCOUNT, None).await,
        StatusCode::UNAUTHORIZED,
    );
    let empty = closed
        .call_with("GET", ACCOUNT, None, &[("X-Auth-Token", "")])
        .await;
    assert_error(&empty, StatusCode::UNAUTHORIZED);
    assert_eq!(
        TOKEN,
        api.call("GET", ACCOUNT, None).await.body["auth_token"]
    );
}

#[tokio::test]
async fn a_stale_revision_is_a_409_conflict() {
    let api = api();
    let first = api
        .call("POST", ACCOUNT, Some(SEED_POST_BODY))
        .await
        .revision();
    let body = r#"{"data":{"numbers":{"1":{"module":"hangup"}}}}"#;
    let second = api
        .call_with(
            "POST",
            ACCOUNT,
            Some(body),
            &[
                ("X-Auth-Token", TOKEN),
                ("If-Match", &format!("\"{first}\"")),
            ],
        )
        .await;
    assert_success(&second, StatusCode::OK);
    let stored = api.call("GET", ACCOUNT, None).await.body;

    let stale_header = api
        .call_with(
            "PATCH",
            ACCOUNT,
            Some(body),
            &[("X-Auth-Token", TOKEN), ("If-Match", &first)],
        )
        .await;
    let data = assert_error(&stale_header, StatusCode::CONFLICT);
    assert_eq!(data["current_revision"], second.body["revision"]);
    let stale_body = json!({"data": {"_rev": first, "numbers": {}}});
    let answer = api
        .call("POST", ACCOUNT, Some(&stale_body.to_string()))
        .await;
    assert_error(&answer, StatusCode::CONFLICT);
    let stale_delete = api
        .call_with(
            "DELETE",
            ACCOUNT,
            None,
            &[("X-Auth-Token", TOKEN), ("If-Match", &first)],
        )
        .await;
    assert_error(&stale_delete, StatusCode::CONFLICT);
    assert_unchanged(&api, &stored).await;

    // The current revision in data._rev is accepted and not stored.
    let fresh = json!({"data": {"_rev": second.revision(), "numbers": {}}});
    let answer = api.call("POST", ACCOUNT, Some(&fresh.to_string())).await;
    assert_success(&answer, StatusCode::OK);
    assert!(answer.data().get("_rev").is_none());
}

#[tokio::test]
async fn stored_metaflows_survive_a_restart() {
    let api = api();
    let set = api.call("POST", ACCOUNT, Some(SEED_POST_BODY)).await.body;
    let dir = api.dir;
    drop(api.router);
    drop(api.state);
    drop(api.directory);
    let reopened = api_in(dir, vec![TOKEN.to_owned()]);
    let fetched = reopened.call("GET", ACCOUNT, None).await;
    assert_eq!(fetched.body["data"], set["data"]);
    assert_eq!(fetched.body["revision"], set["revision"]);
}

#[tokio::test]
async fn a_huge_pattern_set_is_a_quick_400_naming_the_limit() {
    let api = api();
    let patterns: serde_json::Map<String, Value> = (0..3000)
        .map(|index| {
            (
                format!("^(\\d{{1,9}})*{index}(\\w+\\d{{3}}){{1,5}}$"),
                json!({"module": "hangup"}),
            )
        })
        .collect();
    let body = json!({ "data": { "patterns": patterns } }).to_string();
    let started = std::time::Instant::now();
    let answer = api.call("POST", ACCOUNT, Some(&body)).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let data = assert_error(&answer, StatusCode::BAD_REQUEST);
    assert!(
        data["patterns"]["maxProperties"]["message"].is_string(),
        "{data}"
    );

    let costly = json!({ "data": { "patterns": {
        "(\\w{1,100}){1,100}": {"module": "hangup"},
        "^9(\\d)$": {"module": "hangup"},
    }}})
    .to_string();
    let answer = api.call("POST", ACCOUNT, Some(&costly)).await;
    let data = assert_error(&answer, StatusCode::BAD_REQUEST);
    assert!(
        data["patterns.(\\w{1,100}){1,100}"]["size"]["message"].is_string(),
        "{data}"
    );
}

#[tokio::test]
async fn patterns_beyond_the_in_memory_limit_are_a_400() {
    use metaflow_proxy::metaflow::limits::{MAX_LOADED_PATTERNS, MAX_PATTERNS_PER_DOCUMENT};
    let api = api();
    let full = |offset: usize| {
        let patterns: serde_json::Map<String, Value> = (0..MAX_PATTERNS_PER_DOCUMENT)
            .map(|index| {
                (
                    format!("^{}#$", offset + index),
                    json!({"module": "hangup"}),
                )
            })
            .collect();
        json!({ "data": { "patterns": patterns } }).to_string()
    };
    let mut first = None;
    let mut last = None;
    for user in 0..=MAX_LOADED_PATTERNS / MAX_PATTERNS_PER_DOCUMENT {
        let id = api
            .create(
                "/v2/accounts/default/users",
                json!({"first_name": format!("U{user}"), "last_name": "Limit"}),
            )
            .await;
        let path = format!("/v2/accounts/default/users/{id}/metaflows");
        let answer = api
            .call("POST", &path, Some(&full(user * MAX_PATTERNS_PER_DOCUMENT)))
            .await;
        first.get_or_insert_with(|| path.clone());
        last = Some(answer);
    }
    let answer = last.unwrap();
    let data = assert_error(&answer, StatusCode::BAD_REQUEST);
    assert!(
        data["patterns"]["maxTotal"]["message"].is_string(),
        "{data}"
    );
    // Shrinking stays possible, so an operator can always make room.
    let small = r#"{"data":{"patterns":{"^1#$":{"module":"hangup"}}}}"#;
    let first = first.unwrap();
    assert_success(&api.call("POST", &first, Some(small)).await, StatusCode::OK);
}
