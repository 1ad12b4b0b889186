//! The recordings of `record_call` through the API: a real call recorded with `*9`, then
//! `GET /v2/accounts/{A}/recordings` lists it, `GET .../recordings/{id}` answers its metadata
//! or (with `Accept: audio/wav`) the file itself, byte for byte, and `DELETE` removes the file
//! and its sidecar. Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::time::Duration;

use common::calls::{MetaflowsProxy, run_call, spawn_call, wait_call, wait_for_events};
use common::raw_http::{RawReply, request};

/// `*9` starts a WAV recording labelled `sales`.
const RECORD_ON_9: &str =
    r#"{"numbers":{"9":{"module":"record_call","data":{"action":"start","label":"sales"}}}}"#;
const RECORDINGS: &str = "/v2/accounts/default/recordings";

fn token(proxy: &MetaflowsProxy) -> String {
    std::fs::read_to_string(proxy.data_dir().join("api-token"))
        .unwrap()
        .trim()
        .to_owned()
}

fn call_api(proxy: &MetaflowsProxy, method: &str, path: &str, accept: Option<&str>) -> RawReply {
    let token = token(proxy);
    let mut headers = vec![("X-Auth-Token", token.as_str())];
    if let Some(accept) = accept {
        headers.push(("Accept", accept));
    }
    request(&proxy.api_addr(), method, path, &headers)
        .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

#[test]
fn a_recorded_call_is_listed_fetched_and_deleted_through_the_api() {
    common::require_tool("sipp");
    let proxy = MetaflowsProxy::start(RECORD_ON_9);
    run_call(
        &proxy,
        "uas_wait_bye.xml",
        "record_uac_star9_pcap.xml",
        18,
        Duration::from_secs(20),
    );
    wait_for_events(
        &proxy,
        &["call_ended", "recording_stopped"],
        Duration::from_secs(5),
    );

    let listed = call_api(&proxy, "GET", RECORDINGS, None);
    assert_eq!(listed.status, 200, "{:?}", listed.json());
    let items = listed.json()["data"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:#?}");
    let item = &items[0];
    let id = item["id"].as_str().unwrap().to_owned();
    assert_eq!(item["leg"], "a", "{item}");
    assert_eq!(item["account_id"], "default", "{item}");
    assert_eq!(item["label"], "sales", "{item}");
    assert_eq!(item["media_type"], "audio/wav", "{item}");
    assert_eq!(item["status"], "complete", "{item}");
    assert!(item["call_id"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(item["started"].as_str().is_some_and(|s| s.ends_with('Z')));
    let size = item["size"].as_u64().unwrap();
    let duration_ms = item["duration_ms"].as_u64().unwrap();

    let one = call_api(&proxy, "GET", &format!("{RECORDINGS}/{id}"), None);
    assert_eq!(one.status, 200);
    let meta = one.json();
    assert_eq!(meta["status"], "success");
    assert_eq!(meta["data"]["id"], id.as_str());
    assert_eq!(meta["data"]["sample_rate"], 8000);
    let file_name = meta["data"]["file"].as_str().unwrap().to_owned();

    let media = call_api(
        &proxy,
        "GET",
        &format!("{RECORDINGS}/{id}"),
        Some("audio/wav"),
    );
    assert_eq!(media.status, 200);
    assert_eq!(media.header("content-type"), Some("audio/wav"));
    assert_eq!(media.body.len() as u64, size);
    let on_disk = find_file(proxy.data_dir(), &file_name);
    assert_eq!(
        media.body,
        std::fs::read(&on_disk).unwrap(),
        "byte-identical"
    );
    // The sidecar's duration is the WAV's length.
    let frames = (media.body.len() as u64 - 44) / 4;
    assert_eq!(duration_ms, frames * 1000 / 8000, "{meta:#}");

    for bad in [
        "missing".to_owned(),
        "..%2F..%2Fapi-token".to_owned(),
        format!("..%2F{id}"),
        ".hidden".to_owned(),
    ] {
        let refused = call_api(&proxy, "GET", &format!("{RECORDINGS}/{bad}"), None);
        assert_eq!(refused.status, 404, "{bad}");
        assert_eq!(refused.json()["error"], "404", "{bad}");
        assert_eq!(refused.json()["status"], "error", "{bad}");
    }
    let no_token = request(&proxy.api_addr(), "GET", RECORDINGS, &[]).unwrap();
    assert_eq!(no_token.status, 401);
    let no_account = call_api(&proxy, "GET", "/v2/accounts/nobody/recordings", None);
    assert_eq!(no_account.status, 404);
    // Another account sees none of the default account's recordings.
    let created = common::proxy::http_request(
        proxy.api_addr().parse().unwrap(),
        "PUT",
        "/v2/accounts",
        Some(&token(&proxy)),
        Some(r#"{"data":{"name":"Acme","realm":"acme.example"}}"#),
    )
    .unwrap()
    .json();
    let acme = created["data"]["id"].as_str().unwrap().to_owned();
    let theirs = call_api(
        &proxy,
        "GET",
        &format!("/v2/accounts/{acme}/recordings"),
        None,
    );
    assert_eq!(theirs.json()["data"], serde_json::json!([]));
    let not_theirs = call_api(
        &proxy,
        "GET",
        &format!("/v2/accounts/{acme}/recordings/{id}"),
        None,
    );
    assert_eq!(not_theirs.status, 404);

    let deleted = call_api(&proxy, "DELETE", &format!("{RECORDINGS}/{id}"), None);
    assert_eq!(deleted.status, 200, "{:?}", deleted.json());
    assert!(!on_disk.exists());
    assert!(!on_disk.with_extension("json").exists());
    let again = call_api(&proxy, "DELETE", &format!("{RECORDINGS}/{id}"), None);
    assert_eq!(again.status, 404);
    let empty = call_api(&proxy, "GET", RECORDINGS, None);
    assert_eq!(empty.json()["data"], serde_json::json!([]));
}

/// The Call-ID of the default account's only answered channel, once there is one.
fn answered_call_id(proxy: &MetaflowsProxy) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let listed = call_api(proxy, "GET", "/v2/accounts/default/channels", None).json();
        let channels = listed["data"].as_array().cloned().unwrap_or_default();
        if let Some(channel) = channels.iter().find(|c| c["answered"] == true) {
            return channel["call_id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answered channel: {listed:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn put_node(proxy: &MetaflowsProxy, call_id: &str, node: &str) {
    let token = token(proxy);
    let body = format!(r#"{{"data":{{"action":"metaflow","data":{node}}}}}"#);
    let reply = common::proxy::http_request(
        proxy.api_addr().parse().unwrap(),
        "PUT",
        &format!("/v2/accounts/default/channels/{call_id}"),
        Some(&token),
        Some(&body),
    )
    .unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[test]
fn a_recording_started_through_the_api_says_so() {
    common::require_tool("sipp");
    let proxy = MetaflowsProxy::start("{}");
    let (caller, callee) = spawn_call(&proxy, "uas_wait_bye.xml", "uac_wait_bye.xml", 12);
    let call_id = answered_call_id(&proxy);
    put_node(
        &proxy,
        &call_id,
        r#"{"module":"record_call","data":{"action":"start"}}"#,
    );
    wait_for_events(&proxy, &["recording_started"], Duration::from_secs(5));
    put_node(&proxy, &call_id, r#"{"module":"hangup"}"#);
    let (caller, callee) = wait_call(caller, callee, Duration::from_secs(15));
    common::calls::assert_both_succeeded(&caller, &callee);
    wait_for_events(&proxy, &["recording_stopped"], Duration::from_secs(5));
    let listed = call_api(&proxy, "GET", RECORDINGS, None).json();
    let item = &listed["data"][0];
    assert_eq!(item["started_by"], "api", "{listed:#}");
    assert_eq!(item["leg"], serde_json::Value::Null, "{listed:#}");
    assert_eq!(item["call_id"], call_id.as_str(), "{listed:#}");
}

fn find_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    search(dir, name).unwrap_or_else(|| panic!("{name} not under {}", dir.display()))
}

fn search(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = search(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}
