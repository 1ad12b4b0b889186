//! `MetaflowDirectory`: Kazoo's deep merge of account, device and user metaflows for an endpoint,
//! the digit-timeout fallbacks, realm selection, callflow
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

/// A user and a device it owns whose `sip.username` is `sip_user`; returns their ids.
async fn user_with_device(api: &api_support::Api, sip_user: &str) -> (String, String) {
    let user = api
        .create(
            "/v2/accounts/default/users",
            json!({"first_name": "A", "last_name": "B"}),
        )
        .await;
    let device = api
        .create(
            "/v2/accounts/default/devices",
            json!({"name": "d", "owner_id": user, "sip": {"username": sip_user}}),
        )
        .await;
    (user, device)
}

#[tokio::test]
async fn account_device_and_owner_are_deep_merged_as_kazoo_does() {
    let api = api();
    let directory = api.directory.clone();
    assert!(
        directory.for_endpoint("1001", "default", None).is_none(),
        "nothing configured yet"
    );

    api.call(
        "POST",
        "/v2/accounts/default/metaflows",
        Some(&metaflow_body("1")),
    )
    .await;
    let (user, device) = user_with_device(&api, "1001").await;
    api.create(
        "/v2/accounts/default/devices",
        json!({"name": "p", "sip": {"username": "1002"}}),
    )
    .await;
    let (flows, scope) = directory.for_endpoint("1001", "default", None).unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (vec!["1".to_owned()], "account")
    );

    // The user adds a code on top of the account's instead of replacing them.
    let user_path = format!("/v2/accounts/default/users/{user}/metaflows");
    api.call("POST", &user_path, Some(&metaflow_body("2")))
        .await;
    let (flows, scope) = directory.for_endpoint("1001", "default", None).unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (vec!["1".to_owned(), "2".to_owned()], "account+user")
    );

    // The device adds one and changes the account's `1` down to one data key; the user's
    // own setting of the same key would win over the device's.
    let device_path = format!("/v2/accounts/default/devices/{device}/metaflows");
    let device_body = json!({"data": {"numbers": {
        "3": {"module": "hangup"},
        "1": {"module": "record_call", "data": {"format": "pcap"}}}}});
    api.call("POST", &device_path, Some(&device_body.to_string()))
        .await;
    let (flows, scope) = directory.for_endpoint("1001", "default", None).unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (
            vec!["1".to_owned(), "3".to_owned(), "2".to_owned()],
            "account+device+user"
        )
    );
    let one = &flows.numbers[0].1;
    assert_eq!(
        (one.module.as_str(), &one.data["format"]),
        ("record_call", &json!("pcap"))
    );

    // Another device, an unknown party and an unknown host get the account's alone.
    let scope_of = |user: &str, host: &str| directory.for_endpoint(user, host, None).unwrap().1;
    assert_eq!(scope_of("1002", "default"), "account");
    assert_eq!(scope_of("9999", "unknown.example"), "account");

    // Removing a layer takes its codes out at once.
    api.call("DELETE", &device_path, None).await;
    assert_eq!(scope_of("1001", "default"), "account+user");
    api.call("DELETE", "/v2/accounts/default/metaflows", None)
        .await;
    let (flows, scope) = directory.for_endpoint("1001", "default", None).unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (vec!["2".to_owned()], "user")
    );
    api.call("DELETE", &user_path, None).await;
    assert!(directory.for_endpoint("1001", "default", None).is_none());
}

#[tokio::test]
async fn the_digit_timeout_falls_back_to_the_account_then_the_system() {
    use metaflow_proxy::metaflow::MetaflowSystem;
    use std::time::Duration;
    let api = api();
    let directory = api.directory.clone();
    let timeout = || {
        directory
            .for_endpoint("x", "default", None)
            .unwrap()
            .0
            .digit_timeout
    };
    api.call(
        "POST",
        "/v2/accounts/default/metaflows",
        Some(&metaflow_body("1")),
    )
    .await;
    assert_eq!(timeout(), Duration::from_millis(800), "Kazoo's default");
    directory.set_system(MetaflowSystem {
        digit_timeout: Duration::from_millis(1500),
        fast_rearm: false,
    });
    assert_eq!(timeout(), Duration::from_millis(1500), "the system setting");
    for (account, expected, why) in [
        (
            json!({"digit_timeout_ms": 2500}),
            2500,
            "the account's digit_timeout_ms",
        ),
        (
            json!({"digit_timeout_ms": "2500", "digit_timeout": 300}),
            300,
            "the metaflow's own",
        ),
    ] {
        let mut data = account;
        data["numbers"] = json!({"1": {"module": "hangup"}});
        let body = json!({ "data": data }).to_string();
        api.call("POST", "/v2/accounts/default/metaflows", Some(&body))
            .await;
        assert_eq!(timeout(), Duration::from_millis(expected), "{why}");
    }
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
    let (flows, _) = api
        .directory
        .for_endpoint("anyone", "acme.example", None)
        .unwrap();
    assert_eq!(codes(&flows), ["7"]);
    let (flows, _) = api
        .directory
        .for_endpoint("anyone", "10.0.0.1", None)
        .unwrap();
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
    let (flows, scope) = reopened
        .directory
        .for_endpoint("x", "default", None)
        .unwrap();
    assert_eq!(
        (codes(&flows), scope.as_str()),
        (vec!["4".to_owned()], "account")
    );
}

/// An INVITE from `from_user` to `to_user` at host `default`.
fn invite(from_user: &str, to_user: &str) -> metaflow_proxy::sip::SipMessage {
    let text = format!(
        "INVITE sip:{to_user}@default SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
         From: <sip:{from_user}@default>;tag=1\r\n\
         To: <sip:{to_user}@default>\r\n\
         Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    metaflow_proxy::sip::SipMessage::parse(text.as_bytes()).unwrap()
}

#[tokio::test]
async fn the_endpoint_behind_the_proxy_owns_the_merged_metaflow_on_either_side() {
    use metaflow_proxy::app::directory::DirectoryMetaflows;
    use metaflow_proxy::b2bua::MetaflowResolver;
    use metaflow_proxy::base::Leg;
    let api = api();
    api.call(
        "POST",
        "/v2/accounts/default/metaflows",
        Some(&metaflow_body("9")),
    )
    .await;
    let (user, device) = user_with_device(&api, "2001").await;
    let path = format!("/v2/accounts/default/devices/{device}/metaflows");
    api.call("POST", &path, Some(&metaflow_body("5"))).await;
    let path = format!("/v2/accounts/default/users/{user}/metaflows");
    api.call("POST", &path, Some(&metaflow_body("7"))).await;
    let resolver = DirectoryMetaflows(api.directory.clone());
    let owned = |invite, inbound| {
        resolver
            .resolve(&invite, inbound)
            .into_iter()
            .map(|mf| (mf.owner, mf.scope, codes(&mf.flows)))
            .collect::<Vec<_>>()
    };
    let merged = vec!["9".to_owned(), "5".to_owned(), "7".to_owned()];

    // The phone 2001 calls out: it is the caller, its merged codes are the a-leg's.
    assert_eq!(
        owned(invite("2001", "5550100"), false),
        [(Leg::A, "account+device+user".to_owned(), merged.clone())]
    );
    // The PBX calls the phone 2001 (Request-URI its AOR): the callee owns them, on the b-leg;
    // the outside caller (even one whose number is a device's) owns nothing.
    assert_eq!(
        owned(invite("2001", "2001"), true),
        [(Leg::B, "account+device+user".to_owned(), merged)]
    );
    // A phone the directory does not know gets the account's, on whichever side it is.
    assert_eq!(
        owned(invite("5550100", "3001"), true),
        [(Leg::B, "account".to_owned(), vec!["9".to_owned()])]
    );
}
