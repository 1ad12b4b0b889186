//! How SIP messages travel through the real proxy, end to end with SIPp: over TCP, UDP or one
//! of each (TCP towards the PBX is chosen with `upstream-transport = "tcp"` in a `--config`
//! file), a call is set up, anchored and hung up the same way; and reliable provisional
//! responses (RFC 3262: 183 with `Require: 100rel`, PRACK) cross the proxy in the early dialog.
//! Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::io::Write;
use std::time::Duration;

use common::calls::{
    assert_both_succeeded, assert_sdp_anchored, callee, caller, spawn_call, wait_call,
};
use common::proxy::Proxy;
use common::sipp::{SippResult, cseq_number, first_line, header, tag_param};

/// Limit for one SIPp run (each scenario finishes well before).
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// SIPp's `-t` value for one connection-oriented (TCP) or connectionless (UDP) socket.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    Udp,
    Tcp,
}

impl Wire {
    fn sipp_args(self) -> [&'static str; 2] {
        match self {
            Wire::Udp => ["-t", "u1"],
            Wire::Tcp => ["-t", "t1"],
        }
    }

    /// The word SIPp writes in its message log and the Via token.
    fn token(self) -> &'static str {
        match self {
            Wire::Udp => "UDP",
            Wire::Tcp => "TCP",
        }
    }
}

/// A proxy whose upstream transport is `upstream`; the config file must outlive the proxy only
/// until it has read it, but is kept with it for simplicity.
fn proxy_with_upstream(upstream: Wire) -> (Proxy, Option<tempfile::NamedTempFile>) {
    match upstream {
        Wire::Udp => (Proxy::start(&[]), None),
        Wire::Tcp => {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            writeln!(file, "upstream-transport = \"tcp\"").unwrap();
            let path = file.path().to_str().unwrap().to_owned();
            (Proxy::start(&["--config", &path]), Some(file))
        }
    }
}

/// Runs `tcp_uac_bye.xml` (caller over `caller_wire`) against `uas_wait_bye.xml` (callee over
/// `callee_wire`) through `proxy`.
fn call(proxy: &Proxy, caller_wire: Wire, callee_wire: Wire) -> (SippResult, SippResult) {
    let callee = callee(proxy, "uas_wait_bye.xml", 15).spawn_with_args(&callee_wire.sipp_args());
    let caller = caller(proxy, "tcp_uac_bye.xml", 15).spawn_with_args(&caller_wire.sipp_args());
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    assert_both_succeeded(&caller, &callee);
    (caller, callee)
}

/// Every message SIPp logged went over `wire`, and there were some.
fn assert_all_over(result: &SippResult, wire: Wire, role: &str) {
    let transports = result.transports();
    assert!(!transports.is_empty(), "{role}: no message logged");
    assert!(
        transports.iter().all(|(t, _)| t == wire.token()),
        "{role}: expected every message over {}, got {transports:?}",
        wire.token()
    );
}

/// The message `result` received first whose first line starts with `prefix`.
fn received(result: &SippResult, prefix: &str, role: &str) -> String {
    let messages = result.received();
    let lines: Vec<&str> = messages.iter().map(|m| first_line(m)).collect();
    messages
        .iter()
        .find(|m| m.starts_with(prefix))
        .cloned()
        .unwrap_or_else(|| panic!("{role} received no {prefix}: {lines:?}"))
}

/// The call went through the proxy over the expected transports on each leg: the INVITE the
/// callee got carries the proxy's Via and Contact for the callee's transport, its SDP points at
/// the proxy's media, and so does the answer the caller got; the BYE reached the callee.
fn assert_call_through_proxy(
    proxy: &Proxy,
    caller: &SippResult,
    callee: &SippResult,
    callee_wire: Wire,
) {
    let ports = proxy.ports();
    let proxy_hostport = proxy.sip_addr();
    let invite = received(callee, "INVITE ", "callee");
    let via = header(&invite, "Via").unwrap();
    assert!(
        via.starts_with(&format!("SIP/2.0/{} {proxy_hostport}", callee_wire.token())),
        "top Via of the INVITE to the callee must be the proxy's over {}: {via}",
        callee_wire.token()
    );
    let contact = header(&invite, "Contact").unwrap();
    assert!(
        contact.contains(&proxy_hostport),
        "Contact must be the proxy's: {contact}"
    );
    assert_eq!(
        contact.to_ascii_lowercase().contains("transport=tcp"),
        callee_wire == Wire::Tcp,
        "Contact names the leg's transport: {contact}"
    );
    let answer = received(caller, "SIP/2.0 200", "caller");
    assert_sdp_anchored(ports, "offer to the callee", &invite);
    assert_sdp_anchored(ports, "answer to the caller", &answer);
    let caller_invite = caller.sent().into_iter().find(|m| m.starts_with("INVITE "));
    assert_ne!(
        header(&invite, "Call-ID"),
        caller_invite.and_then(|m| header(&m, "Call-ID")),
        "the proxy places its own call towards the PBX"
    );
    received(callee, "BYE ", "callee");
    received(callee, "ACK ", "callee");
}

#[test]
fn tcp_on_both_legs_carries_an_anchored_call() {
    let (proxy, _config) = proxy_with_upstream(Wire::Tcp);
    let (caller, callee) = call(&proxy, Wire::Tcp, Wire::Tcp);
    assert_all_over(&caller, Wire::Tcp, "caller");
    assert_all_over(&callee, Wire::Tcp, "callee");
    assert_call_through_proxy(&proxy, &caller, &callee, Wire::Tcp);
}

#[test]
fn tcp_caller_reaches_a_udp_pbx() {
    let (proxy, _config) = proxy_with_upstream(Wire::Udp);
    let (caller, callee) = call(&proxy, Wire::Tcp, Wire::Udp);
    assert_all_over(&caller, Wire::Tcp, "caller");
    assert_all_over(&callee, Wire::Udp, "callee");
    assert_call_through_proxy(&proxy, &caller, &callee, Wire::Udp);
}

#[test]
fn udp_caller_reaches_a_tcp_pbx() {
    let (proxy, _config) = proxy_with_upstream(Wire::Tcp);
    let (caller, callee) = call(&proxy, Wire::Udp, Wire::Tcp);
    assert_all_over(&caller, Wire::Udp, "caller");
    assert_all_over(&callee, Wire::Tcp, "callee");
    assert_call_through_proxy(&proxy, &caller, &callee, Wire::Tcp);
}

#[test]
fn a_reliable_183_is_acknowledged_with_prack_end_to_end() {
    let proxy = Proxy::start(&[]);
    let ports = proxy.ports();
    let (caller, callee) = spawn_call(&proxy, "prack_uas.xml", "prack_uac.xml", 15);
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    callee.assert_success("callee (UAS)");
    caller.assert_success("caller (UAC)");

    // The reliable 183 reached the caller with its 100rel headers and anchored SDP.
    let progress = received(&caller, "SIP/2.0 183", "caller");
    assert_eq!(header(&progress, "Require").as_deref(), Some("100rel"));
    assert_eq!(header(&progress, "RSeq").as_deref(), Some("1"));
    assert_sdp_anchored(ports, "183 SDP", &progress);

    // The PRACK reached the callee in the callee's early dialog, with an RAck that names
    // the RSeq it sent and the CSeq of the INVITE it received.
    let invite = received(&callee, "INVITE ", "callee");
    let prack = received(&callee, "PRACK ", "callee");
    assert_eq!(header(&prack, "Call-ID"), header(&invite, "Call-ID"));
    let sent_183 = callee
        .sent()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 183"))
        .expect("callee sent no 183");
    assert_eq!(
        header(&prack, "To").as_deref().and_then(tag_param),
        header(&sent_183, "To").as_deref().and_then(tag_param),
        "PRACK must be in the callee's early dialog (its To tag)"
    );
    let expected_rack = format!("1 {} INVITE", cseq_number(&invite).unwrap());
    assert_eq!(
        header(&prack, "RAck").as_deref(),
        Some(expected_rack.as_str()),
        "RAck at the callee"
    );
    assert!(
        cseq_number(&prack).unwrap() > cseq_number(&invite).unwrap(),
        "PRACK is a new request of the callee's dialog"
    );
    // The proxy keeps the caller's INVITE CSeq number on the PBX leg, so the caller's RAck
    // is valid there unchanged.
    let caller_prack = caller
        .sent()
        .into_iter()
        .find(|m| m.starts_with("PRACK "))
        .expect("caller sent no PRACK");
    assert_eq!(header(&caller_prack, "RAck"), header(&prack, "RAck"));
    let prack_ok = received(&caller, "SIP/2.0 200", "caller");
    assert!(
        header(&prack_ok, "CSeq").is_some_and(|c| c.ends_with("PRACK")),
        "the first 200 the caller gets answers its PRACK:\n{prack_ok}"
    );
    received(&callee, "ACK ", "callee");
    received(&callee, "BYE ", "callee");
}
