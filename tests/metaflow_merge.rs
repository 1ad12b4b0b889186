//! Kazoo's merge of account, device and user metaflows on a real call: the caller's device, its
//! owner and the account each contribute to the codes one SIPp caller dials, and the modules see
//! the dialing leg's Call-ID as `dtmf_leg`. Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::time::Duration;

use common::calls::{caller_call_id, named, run_call, wait_for_events};
use common::proxy::Proxy;
use serde_json::{Value, json};

const TOKEN: &str = "merge-token";

/// Sends an authorised API request with a JSON `data` body and returns the reply's JSON,
/// requiring `status`.
fn api(proxy: &Proxy, method: &str, path: &str, data: Value, status: u16) -> Value {
    let body = json!({ "data": data }).to_string();
    let reply = proxy.api(method, path, Some(TOKEN), Some(&body));
    assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
    reply.json()
}

#[test]
fn account_device_and_user_codes_merge_on_the_callers_call() {
    let proxy = Proxy::start(&["--api-auth-token", TOKEN]);
    // The account: *9 starts a WAV recording.
    api(
        &proxy,
        "POST",
        "/v2/accounts/default/metaflows",
        json!({"numbers": {"9": {"module": "record_call",
                                 "data": {"action": "start", "format": "wav", "time_limit": 600}}}}),
        200,
    );
    let user = api(
        &proxy,
        "PUT",
        "/v2/accounts/default/users",
        json!({"first_name": "Merge", "last_name": "Test"}),
        201,
    )["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The caller's device (SIPp's From user is `sipp`), owned by that user.
    let device = api(
        &proxy,
        "PUT",
        "/v2/accounts/default/devices",
        json!({"name": "sipp phone", "owner_id": user, "sip": {"username": "sipp"}}),
        201,
    )["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The device changes the account's *9: a node names its module, as Kazoo's schema requires,
    // and the save fills the module's schema defaults (`action` `toggle`...), which then win
    // over the account's in the merge, as in Kazoo; keys the device does not set (`time_limit`)
    // stay the account's. The user adds *5 (stop).
    api(
        &proxy,
        "POST",
        &format!("/v2/accounts/default/devices/{device}/metaflows"),
        json!({"numbers": {"9": {"module": "record_call", "data": {"format": "pcap"}}}}),
        200,
    );
    api(
        &proxy,
        "POST",
        &format!("/v2/accounts/default/users/{user}/metaflows"),
        json!({"numbers": {"5": {"module": "record_call", "data": {"action": "stop"}}}}),
        200,
    );

    let (caller, _callee) = run_call(
        &proxy,
        "uas_wait_bye.xml",
        "record_uac_star9_star5_pcap.xml",
        20,
        Duration::from_secs(30),
    );
    let call_id = caller_call_id(&caller);
    let events: Vec<Value> = wait_for_events(&proxy, &["call_ended"], Duration::from_secs(5))
        .into_iter()
        .filter(|event| event["call_id"] == call_id)
        .collect();

    let started = named(&events, "call_started");
    assert_eq!(
        started[0]["metaflows"],
        json!([{"owner": "a", "scope": "account+device+user"}]),
        "{events:#?}"
    );
    let runs = named(&events, "module_run");
    assert_eq!(runs.len(), 2, "*9 then *5: {events:#?}");
    // *9: the account's module with the device's format and saved defaults.
    assert_eq!(runs[0]["module"], "record_call");
    assert_eq!(runs[0]["data"]["action"], "toggle");
    assert_eq!(runs[0]["data"]["format"], "pcap");
    assert_eq!(runs[0]["data"]["time_limit"], 600);
    // *5: the user's code; Kazoo's dtmf_leg is the dialing leg's Call-ID.
    assert_eq!(runs[1]["data"]["action"], "stop");
    assert_eq!(runs[1]["data"]["dtmf_leg"], json!(call_id));
    assert_eq!(runs[1]["data"]["dtmf_side"], "a");
    let stopped = named(&events, "recording_stopped");
    assert_eq!(stopped.len(), 1, "{events:#?}");
    let path = stopped[0]["path"].as_str().unwrap();
    assert!(path.ends_with(".pcap"), "the device's format won: {path}");
    assert!(std::path::Path::new(path).exists(), "{path}");
}
