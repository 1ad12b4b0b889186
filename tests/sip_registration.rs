//! Registration relay and digest authentication end to end, with the real proxy and SIPp:
//! a phone registers through the proxy, the PBX reaches it back through the proxy's rewritten
//! Contact, the binding goes away with Expires 0; digest challenges and credentials cross the
//! proxy unchanged. Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::time::Duration;

use common::calls::{assert_sdp_anchored, callee, caller, spawn_call, wait_call};
use common::proxy::Proxy;
use common::sipp::{Sipp, SippResult, cseq_number, first_line, header, sdp_audio_port, via_branch};

/// Limit for one SIPp run (each scenario finishes well before).
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// The messages of `result` (received when `incoming`, else sent) whose first line starts with
/// `prefix`, in order.
fn messages_starting(result: &SippResult, incoming: bool, prefix: &str) -> Vec<String> {
    let all = if incoming {
        result.received()
    } else {
        result.sent()
    };
    all.into_iter().filter(|m| m.starts_with(prefix)).collect()
}

/// The one message of `result` starting with `prefix`, `nth` of its kind (0-based).
fn nth_message(result: &SippResult, incoming: bool, prefix: &str, nth: usize) -> String {
    let found = messages_starting(result, incoming, prefix);
    let all = if incoming {
        result.received()
    } else {
        result.sent()
    };
    let lines: Vec<&str> = all.iter().map(|m| first_line(m)).collect();
    found
        .get(nth)
        .cloned()
        .unwrap_or_else(|| panic!("no message #{nth} starting with {prefix:?} in {lines:?}"))
}

/// Runs a phone scenario (SIP only, no media port) registering through `proxy` with a PBX
/// scenario on the upstream port; requires both to exit 0 (the PBX first, its log tells first
/// what reached it) and returns (phone, PBX).
fn register(proxy: &Proxy, pbx: &str, phone: &str) -> (SippResult, SippResult) {
    let pbx = Sipp::uas(pbx)
        .local_port(proxy.upstream_port())
        .timeout_secs(15)
        .spawn();
    let phone = Sipp::uac(phone, &proxy.sip_addr())
        .local_port(proxy.ports().uac_sip)
        .timeout_secs(15)
        .spawn();
    let (phone, pbx) = wait_call(phone, pbx, RUN_LIMIT);
    pbx.assert_success("PBX");
    phone.assert_success("phone");
    (phone, pbx)
}

#[test]
fn a_registered_phone_takes_a_pbx_call_until_it_unregisters() {
    let proxy = Proxy::start(&[]);
    let ports = proxy.ports();
    let incoming = Sipp::scenario_path("reg_phone_incoming.xml");
    let pbx = callee(&proxy, "reg_pbx.xml", 15).spawn();
    let phone = caller(&proxy, "reg_phone.xml", 15)
        .spawn_with_args(&["-oocsf", incoming.to_str().unwrap()]);
    let (phone, pbx) = wait_call(phone, pbx, RUN_LIMIT);
    phone.assert_success("phone");
    pbx.assert_success("PBX");

    let phone_hostport = format!("127.0.0.1:{}", ports.uac_sip);
    let proxy_hostport = proxy.sip_addr();

    // The PBX saw the proxy's Contact, never the phone's address.
    let register = nth_message(&pbx, true, "REGISTER ", 0);
    let upstream_contact = header(&register, "Contact").unwrap();
    assert!(
        upstream_contact.contains(&format!("@{proxy_hostport}")),
        "Contact forwarded to the PBX must point at the proxy: {upstream_contact}"
    );
    assert!(
        !upstream_contact.contains(&phone_hostport),
        "Contact forwarded to the PBX must hide the phone: {upstream_contact}"
    );
    let user = upstream_contact
        .split_once("sip:")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(user, _)| user)
        .unwrap();
    let (name, id) = user.rsplit_once('-').unwrap();
    assert_eq!(name, "phone", "user part keeps the phone's user: {user}");
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "binding id: {user}"
    );

    // The phone got its own Contact back in the 200.
    let ok = nth_message(&phone, true, "SIP/2.0 200", 0);
    let returned = header(&ok, "Contact").unwrap();
    assert!(
        returned.contains(&format!("sip:phone@{phone_hostport}")),
        "200 to the phone must carry its own Contact: {returned}"
    );

    // The PBX's call reached the phone through the proxy, anchored.
    let invite = nth_message(&phone, true, "INVITE ", 0);
    assert!(
        first_line(&invite).starts_with(&format!("INVITE sip:phone@{phone_hostport}")),
        "Request-URI must be the phone's own Contact: {}",
        first_line(&invite)
    );
    let via = header(&invite, "Via").unwrap();
    assert!(
        via.contains(&proxy_hostport),
        "top Via must be the proxy's: {via}"
    );
    let pbx_invite = nth_message(&pbx, false, "INVITE ", 0);
    assert_ne!(
        header(&invite, "Call-ID"),
        header(&pbx_invite, "Call-ID"),
        "the proxy places its own call towards the phone"
    );
    assert_sdp_anchored(ports, "offer to the phone", &invite);
    let answer = nth_message(&pbx, true, "SIP/2.0 200", 0);
    let answer_port = sdp_audio_port(&answer).expect("200 to the PBX without m=audio");
    assert!(
        ports.in_rtp_range(answer_port),
        "answer to the PBX: m=audio {answer_port} not in {}",
        ports.rtp_range()
    );
    nth_message(&phone, true, "ACK ", 0);
    nth_message(&phone, true, "BYE ", 0);

    // After Expires 0 the same Contact is unknown: 404, and the phone sees no second INVITE.
    let unregister = nth_message(&pbx, true, "REGISTER ", 1);
    assert_eq!(header(&unregister, "Expires").as_deref(), Some("0"));
    nth_message(&pbx, true, "SIP/2.0 404", 0);
    assert_eq!(
        messages_starting(&phone, true, "INVITE ").len(),
        1,
        "the unregistered phone must not be called"
    );
}

#[test]
fn a_binding_lives_as_long_as_the_pbx_granted() {
    let proxy = Proxy::start(&[]);
    let (phone, pbx) = register(&proxy, "reg_pbx_expiry.xml", "reg_phone_once.xml");
    let register = nth_message(&pbx, true, "REGISTER ", 0);
    assert_eq!(
        header(&register, "Expires").as_deref(),
        Some("300"),
        "the phone asked for 300 s"
    );
    nth_message(&pbx, true, "SIP/2.0 404", 0);
    assert!(
        messages_starting(&phone, true, "INVITE ").is_empty(),
        "a call after the granted second must not reach the phone"
    );
}

/// The retried INVITE of a challenged call, as the caller sent it and as the PBX got it.
fn retried_invites(caller: &SippResult, pbx: &SippResult) -> (String, String) {
    (
        nth_message(caller, false, "INVITE ", 1),
        nth_message(pbx, true, "INVITE ", 1),
    )
}

#[test]
fn a_407_challenge_and_the_credentials_cross_the_proxy_unchanged() {
    let proxy = Proxy::start(&[]);
    let (caller, pbx) = spawn_call(&proxy, "auth_uas_407.xml", "auth_uac_407.xml", 15);
    let (caller, pbx) = wait_call(caller, pbx, RUN_LIMIT);
    // The PBX's log tells first whether the retry arrived in the same call.
    pbx.assert_success("PBX");
    caller.assert_success("caller");

    // The challenge reached the caller as the PBX wrote it.
    let challenge = nth_message(&caller, true, "SIP/2.0 407", 0);
    let sent_challenge = nth_message(&pbx, false, "SIP/2.0 407", 0);
    assert_eq!(
        header(&challenge, "Proxy-Authenticate"),
        header(&sent_challenge, "Proxy-Authenticate"),
        "Proxy-Authenticate must be relayed unchanged"
    );

    // The credentials reached the PBX byte for byte.
    let (sent, got) = retried_invites(&caller, &pbx);
    let credentials = header(&sent, "Proxy-Authorization").expect("caller sent no credentials");
    assert_eq!(
        header(&got, "Proxy-Authorization").as_deref(),
        Some(credentials.as_str()),
        "Proxy-Authorization must reach the PBX unchanged"
    );

    // The retry is the same call on the PBX side: same Call-ID, new transaction.
    let first = nth_message(&pbx, true, "INVITE ", 0);
    assert_eq!(
        header(&first, "Call-ID"),
        header(&got, "Call-ID"),
        "the retried INVITE must stay in the PBX-side call of the first"
    );
    assert_ne!(
        via_branch(&first),
        via_branch(&got),
        "the retry is a new transaction"
    );
    assert!(
        cseq_number(&got) > cseq_number(&first),
        "the retry has a higher CSeq"
    );
}

#[test]
fn a_401_challenged_registration_is_verified_by_the_pbx() {
    let proxy = Proxy::start(&[]);
    let (phone, pbx) = register(&proxy, "auth_pbx_401.xml", "auth_phone_401.xml");

    let challenge = nth_message(&phone, true, "SIP/2.0 401", 0);
    let sent_challenge = nth_message(&pbx, false, "SIP/2.0 401", 0);
    assert_eq!(
        header(&challenge, "WWW-Authenticate"),
        header(&sent_challenge, "WWW-Authenticate"),
        "WWW-Authenticate must be relayed unchanged"
    );
    let sent = nth_message(&phone, false, "REGISTER ", 1);
    let got = nth_message(&pbx, true, "REGISTER ", 1);
    let credentials = header(&sent, "Authorization").expect("phone sent no credentials");
    assert_eq!(
        header(&got, "Authorization").as_deref(),
        Some(credentials.as_str()),
        "Authorization must reach the PBX unchanged"
    );
    assert_eq!(
        first_line(&got),
        first_line(&sent),
        "the digest covers the Request-URI"
    );
    // The PBX's verifyauth accepted the digest: it answered 200, not 403.
    nth_message(&pbx, false, "SIP/2.0 200", 0);
    let contact = header(&got, "Contact").unwrap();
    assert!(
        contact.contains(&format!("@{}", proxy.sip_addr())),
        "the challenged retry is rewritten too: {contact}"
    );
}
