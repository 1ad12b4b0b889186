//! The Kazoo-style `/v2` API against the real binary and real calls: metaflows written over the
//! API apply to the next call of the same process, a write answered 200 survives SIGKILL, live
//! channels are listed and hung up through the API, a callflow's metaflow applies to calls to its
//! number, and the token guards `/v2` but not the health and metrics routes.
//! Calls run with SIPp scenarios from `tests/sipp/`; needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::calls::{
    assert_both_succeeded, caller_call_id, got_bye, named, run_call, sent_bye, spawn_call,
    wait_call,
};
use common::proxy::{HttpReply, Proxy, metric_sum};
use common::sipp::SippResult;
use serde_json::{Value, json};

/// The token every proxy of this file accepts.
const TOKEN: &str = "api-calls-token";
/// User part of the From header of every caller scenario used here (`sip:sipp@...`).
const CALLER_SIP_USER: &str = "sipp";
/// User part of the callers' Request-URI: SIPp's default `[service]`.
const DIALED_NUMBER: &str = "service";
/// A metaflow whose code `*0` hangs up both legs.
const HANGUP_ON_0: &str = r#"{"numbers":{"0":{"module":"hangup"}}}"#;
/// Limit for one SIPp run (the longest scenario here lasts about 4 s).
const RUN_LIMIT: Duration = Duration::from_secs(15);
/// SIPp's own timeout: a message that never comes fails the run before [`RUN_LIMIT`].
const SIPP_TIMEOUT_SECS: u32 = 12;
/// How long the proxy may take to show a call in the event log or the channel list.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

fn start_proxy() -> Proxy {
    Proxy::start(&["--api-auth-token", TOKEN])
}

/// Runs a call through `proxy`, waits for both parties and requires both to exit 0.
fn call(proxy: &Proxy, uas: &str, uac: &str) -> (SippResult, SippResult) {
    run_call(proxy, uas, uac, SIPP_TIMEOUT_SECS, RUN_LIMIT)
}

/// The events of call `call_id` once its `call_ended` is logged; panics after [`SETTLE_WAIT`].
fn events_of_call(proxy: &Proxy, call_id: &str) -> Vec<Value> {
    let deadline = Instant::now() + SETTLE_WAIT;
    loop {
        let events: Vec<Value> = proxy
            .events()
            .into_iter()
            .filter(|event| event["call_id"] == call_id)
            .collect();
        if events.iter().any(|event| event["event"] == "call_ended") {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "no call_ended for {call_id} in events.jsonl: {events:#?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Asserts a successful Kazoo envelope with `status` and returns it.
fn success(reply: &HttpReply, status: u16) -> Value {
    assert_eq!(reply.status, status, "unexpected status: {}", reply.body);
    let body = reply.json();
    assert_eq!(body["status"], "success", "{body:#}");
    assert_eq!(body["auth_token"], TOKEN, "{body:#}");
    body
}

/// Asserts a Kazoo error envelope with `status` (`error` the code as a string, a `message`,
/// `data.message`) and returns it.
fn failure(reply: &HttpReply, status: u16) -> Value {
    assert_eq!(reply.status, status, "unexpected status: {}", reply.body);
    let body = reply.json();
    assert_eq!(body["status"], "error", "{body:#}");
    assert_eq!(body["error"], status.to_string(), "{body:#}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body:#}"
    );
    assert!(body["data"]["message"].is_string(), "{body:#}");
    for member in ["node", "request_id", "timestamp", "version"] {
        assert!(body[member].is_string(), "no {member}: {body:#}");
    }
    body
}

fn authed(proxy: &Proxy, method: &str, path: &str, body: Option<&str>) -> HttpReply {
    proxy.api(method, path, Some(TOKEN), body)
}

/// Creates a device in the default account whose `sip.username` is the callers' From user.
fn create_caller_device(proxy: &Proxy) -> String {
    let body = json!({"data": {"name": "desk phone", "sip": {"username": CALLER_SIP_USER}}});
    let reply = authed(
        proxy,
        "PUT",
        "/v2/accounts/default/devices",
        Some(&body.to_string()),
    );
    let created = success(&reply, 201);
    assert_eq!(created["data"]["sip"]["username"], CALLER_SIP_USER);
    created["data"]["id"].as_str().unwrap().to_owned()
}

#[test]
fn device_metaflow_posted_over_the_api_applies_to_the_next_call() {
    let proxy = start_proxy();
    let device_id = create_caller_device(&proxy);
    let path = format!("/v2/accounts/default/devices/{device_id}/metaflows");
    let empty = success(&authed(&proxy, "GET", &path, None), 200);
    assert_eq!(empty["data"], json!({}));

    // First call: no metaflow anywhere, so the caller's *0 does nothing and it hangs up itself.
    let (caller, callee) = call(&proxy, "uas_wait_bye.xml", "api_uac_star0_bye.xml");
    assert!(sent_bye(&caller), "the caller must end the first call");
    assert!(got_bye(&callee), "the caller's BYE reaches the callee");
    let first_id = caller_call_id(&caller);
    let first = events_of_call(&proxy, &first_id);
    let dialed: Vec<&str> = named(&first, "digit")
        .iter()
        .filter(|event| event["leg"] == "a")
        .filter_map(|event| event["digit"].as_str())
        .collect();
    assert_eq!(dialed, ["*", "0"], "the proxy saw the code: {first:#?}");
    for decision in ["metaflow_armed", "metaflow_match", "module_run"] {
        assert!(named(&first, decision).is_empty(), "{decision}: {first:#?}");
    }

    let body = format!(r#"{{"data":{HANGUP_ON_0}}}"#);
    let posted = success(&authed(&proxy, "POST", &path, Some(&body)), 200);
    assert_eq!(posted["data"]["numbers"]["0"]["module"], "hangup");
    let revision = posted["revision"].as_str().unwrap().to_owned();
    assert!(revision.starts_with("1-"), "{revision}");

    // Second call, same process: the device's metaflow now hangs up both legs at *0.
    let (caller, callee) = call(&proxy, "uas_wait_bye.xml", "dtmf_uac_star0.xml");
    assert!(got_bye(&caller), "the proxy must hang up the caller");
    assert!(!sent_bye(&caller), "the caller never hangs up itself");
    assert!(got_bye(&callee), "the proxy must hang up the callee");
    let second_id = caller_call_id(&caller);
    assert_ne!(first_id, second_id);
    let second = events_of_call(&proxy, &second_id);
    let matches = named(&second, "metaflow_match");
    assert_eq!(matches.len(), 1, "{second:#?}");
    assert_eq!(matches[0]["collected"], "0");
    assert_eq!(matches[0]["module"], "hangup");
    assert_eq!(matches[0]["leg"], "a");
    let runs = named(&second, "module_run");
    assert!(
        runs.iter().any(|run| run["module"] == "hangup"),
        "{second:#?}"
    );

    let total = metric_sum(&proxy.metrics(), "metaflow_proxy_calls_total", &[]);
    assert_eq!(total, Some(2.0), "both calls went through one process");
}

#[test]
fn metaflow_answered_200_survives_sigkill() {
    let mut proxy = start_proxy();
    let path = "/v2/accounts/default/metaflows";
    let body = r#"{"data":{"binding_digit":"*","digit_timeout":1200,
        "numbers":{"0":{"module":"hangup"}},
        "patterns":{"^9(\\d)$":{"module":"hangup"}}}}"#;
    let posted = success(&authed(&proxy, "POST", path, Some(body)), 200);
    let revision = posted["revision"].as_str().unwrap().to_owned();
    proxy.kill_and_restart(&["--api-auth-token", TOKEN]);

    let fetched_reply = authed(&proxy, "GET", path, None);
    let fetched = success(&fetched_reply, 200);
    assert_eq!(fetched["data"], posted["data"]);
    assert_eq!(fetched["data"]["digit_timeout"], 1200);
    assert_eq!(fetched["revision"], revision.as_str());
    let etag = format!("\"{revision}\"");
    assert_eq!(fetched_reply.header("etag"), Some(etag.as_str()));

    // The revision check still holds after the restart: the current revision is accepted once,
    // then it is stale.
    let based_on_first = |digit_timeout: u32| {
        json!({"data": {"_rev": revision, "digit_timeout": digit_timeout,
                        "numbers": {"0": {"module": "hangup"}}}})
        .to_string()
    };
    let updated = success(
        &authed(&proxy, "POST", path, Some(&based_on_first(900))),
        200,
    );
    let second = updated["revision"].as_str().unwrap().to_owned();
    assert!(second.starts_with("2-"), "{second}");
    let stale = authed(&proxy, "POST", path, Some(&based_on_first(700)));
    let conflict = failure(&stale, 409);
    assert_eq!(conflict["revision"], second.as_str());
    let latest = success(&authed(&proxy, "GET", path, None), 200);
    assert_eq!(latest["data"]["digit_timeout"], 900);
}

/// Polls the default account's channels until one is answered; returns it.
fn answered_channel(proxy: &Proxy) -> Value {
    let deadline = Instant::now() + SETTLE_WAIT;
    loop {
        let listed = success(
            &authed(proxy, "GET", "/v2/accounts/default/channels", None),
            200,
        );
        let channels = listed["data"].as_array().unwrap().clone();
        if let Some(channel) = channels.iter().find(|c| c["answered"] == true) {
            assert_eq!(channels.len(), 1, "one call, one channel: {channels:#?}");
            return channel.clone();
        }
        assert!(Instant::now() < deadline, "no answered channel: {listed:#}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn channels_list_the_live_call_and_hang_it_up() {
    let proxy = start_proxy();
    let (caller, callee) = spawn_call(
        &proxy,
        "uas_wait_bye.xml",
        "uac_wait_bye.xml",
        SIPP_TIMEOUT_SECS,
    );
    let channel = answered_channel(&proxy);
    let call_id = channel["call_id"].as_str().unwrap().to_owned();
    assert_eq!(channel["account_id"], "default");
    assert!(
        channel["start"]
            .as_str()
            .is_some_and(|start| start.len() >= 19),
        "{channel:#}"
    );

    let unknown = authed(
        &proxy,
        "PUT",
        "/v2/accounts/default/channels/no-such-call@nowhere",
        Some(r#"{"data":{"action":"metaflow","data":{"module":"hangup"}}}"#),
    );
    let missing = failure(&unknown, 404);
    assert_eq!(missing["data"]["cause"], "no-such-call@nowhere");

    let action = r#"{"data":{"action":"metaflow","data":{"module":"hangup"}}}"#;
    let channel_path = format!("/v2/accounts/default/channels/{call_id}");
    success(&authed(&proxy, "PUT", &channel_path, Some(action)), 202);

    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    assert_both_succeeded(&caller, &callee);
    assert_eq!(
        caller_call_id(&caller),
        call_id,
        "channels are keyed by the caller's Call-ID"
    );
    assert!(got_bye(&caller) && !sent_bye(&caller));
    assert!(got_bye(&callee) && !sent_bye(&callee));
    let events = events_of_call(&proxy, &call_id);
    let runs = named(&events, "module_run");
    assert!(
        runs.iter().any(|run| run["module"] == "hangup"),
        "{events:#?}"
    );
    let after = success(
        &authed(&proxy, "GET", "/v2/accounts/default/channels", None),
        200,
    );
    assert_eq!(after["data"], json!([]), "the ended call left the list");
}

#[test]
fn callflow_metaflow_applies_to_calls_to_its_number() {
    let proxy = start_proxy();
    let callflow = json!({"data": {
        "name": "service line",
        "numbers": [DIALED_NUMBER],
        "flow": {"module": "device"},
        "metaflow": serde_json::from_str::<Value>(HANGUP_ON_0).unwrap(),
    }});
    let created = success(
        &authed(
            &proxy,
            "PUT",
            "/v2/accounts/default/callflows",
            Some(&callflow.to_string()),
        ),
        201,
    );
    assert_eq!(created["data"]["numbers"], json!([DIALED_NUMBER]));

    let (caller, callee) = call(&proxy, "uas_wait_bye.xml", "dtmf_uac_star0.xml");
    assert!(got_bye(&caller) && !sent_bye(&caller));
    assert!(got_bye(&callee));
    let events = events_of_call(&proxy, &caller_call_id(&caller));
    let matches = named(&events, "metaflow_match");
    assert_eq!(matches.len(), 1, "{events:#?}");
    assert_eq!(matches[0]["collected"], "0");
    assert_eq!(matches[0]["module"], "hangup");
}

#[test]
fn token_guards_v2_but_not_health_or_metrics() {
    let proxy = start_proxy();
    for token in [None, Some("wrong-token")] {
        let reply = proxy.api("GET", "/v2/accounts", token, None);
        let refused = failure(&reply, 401);
        assert_eq!(refused["auth_token"], token.unwrap_or(""));
    }
    let body = format!(r#"{{"data":{HANGUP_ON_0}}}"#);
    let write = proxy.api("POST", "/v2/accounts/default/metaflows", None, Some(&body));
    failure(&write, 401);
    let unchanged = success(
        &authed(&proxy, "GET", "/v2/accounts/default/metaflows", None),
        200,
    );
    assert_eq!(
        unchanged["data"],
        json!({}),
        "a refused write changes nothing"
    );

    for path in ["/live", "/ready", "/metrics", "/v2/openapi.json"] {
        let reply = proxy.api("GET", path, None, None);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let accounts = success(&authed(&proxy, "GET", "/v2/accounts", None), 200);
    let ids: Vec<&str> = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|account| account["id"].as_str())
        .collect();
    assert_eq!(ids, ["default"]);
}

/// Kazoo's channel commands: `GET` reads one channel, `POST` with `{"data":{"action":...}}` acts
/// on it. A transfer to 1234 whose REFER the PBX does not take (405) is completed by a call the
/// proxy places: the caller (the transferor) is hung up, the PBX's first call talks to the
/// target until the target hangs up.
#[test]
fn channel_commands_read_a_call_and_transfer_it() {
    let proxy = start_proxy();
    let callee = common::calls::callee(
        &proxy,
        "transfer_uas_refer_405_bridge.xml",
        SIPP_TIMEOUT_SECS,
    )
    .calls(2)
    .key("transferee_rtp", &proxy.ports().uas_media.to_string())
    .key("target_rtp", &(proxy.ports().uas_media + 2).to_string())
    .spawn();
    let caller = common::calls::caller(&proxy, "uac_wait_bye.xml", SIPP_TIMEOUT_SECS).spawn();
    let channel = answered_channel(&proxy);
    let call_id = channel["call_id"].as_str().unwrap().to_owned();
    let path = format!("/v2/accounts/default/channels/{call_id}");

    let read = success(&authed(&proxy, "GET", &path, None), 200);
    assert_eq!(read["data"]["call_id"], call_id.as_str());
    assert_eq!(read["data"]["answered"], true);
    let missing = failure(
        &authed(
            &proxy,
            "GET",
            "/v2/accounts/default/channels/nope@nowhere",
            None,
        ),
        404,
    );
    assert_eq!(missing["data"]["cause"], "nope@nowhere");

    for (body, field, rule) in [
        (r#"{"data":{"action":"transfer"}}"#, "target", "required"),
        (
            r#"{"data":{"action":"intercept"}}"#,
            "target_type",
            "required",
        ),
        (r#"{"data":{"action":"dance"}}"#, "action", "enum"),
    ] {
        let refused = authed(&proxy, "POST", &path, Some(body));
        assert_eq!(refused.status, 400, "{}", refused.body);
        let refused = refused.json();
        assert_eq!(refused["message"], "validation failed", "{refused:#}");
        assert!(refused["data"][field][rule].is_object(), "{refused:#}");
    }

    let body = r#"{"data":{"action":"transfer","target":"1234","transfer-type":"blind"}}"#;
    let accepted = success(&authed(&proxy, "POST", &path, Some(body)), 202);
    assert_eq!(accepted["data"], "transfer initiated");

    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    assert_both_succeeded(&caller, &callee);
    assert!(
        got_bye(&caller) && !sent_bye(&caller),
        "the transferor is hung up"
    );
    let events = events_of_call(&proxy, &call_id);
    for wanted in [
        "transfer_refer_sent",
        "leg_originated",
        "leg_replaced",
        "transfer_succeeded",
    ] {
        assert_eq!(named(&events, wanted).len(), 1, "{wanted}: {events:#?}");
    }
}
