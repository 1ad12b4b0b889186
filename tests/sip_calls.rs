//! End-to-end calls through metaflow-proxy: a SIPp caller sends to the proxy, the proxy calls a
//! SIPp callee on its `--upstream` port, and tshark checks the RTP the endpoints receive.
//! Needs `sipp` and `tshark` (capture on `lo`, so root or the wireshark group).
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::calls::{assert_both_succeeded, assert_sdp_anchored, got_bye, spawn_call, wait_call};
use common::capture::{Capture, RtpPacket, assert_same_stream, g711a_reference, to_port};
use common::proxy::{Proxy, metric_sum};
use common::sipp::{SippResult, first_line, header, sdp_audio_port};

/// Limit for one SIPp run (each scenario finishes well before).
const RUN_LIMIT: Duration = Duration::from_secs(25);

/// Runs a callee scenario then a caller scenario through `proxy`, waits for both.
fn call(proxy: &Proxy, uas: &str, uac: &str, timeout_secs: u32) -> (SippResult, SippResult) {
    let (caller, callee) = spawn_call(proxy, uas, uac, timeout_secs);
    wait_call(caller, callee, RUN_LIMIT)
}

/// Polls `/metrics` until no call or media stream is active (2 s), then returns the text.
fn metrics_when_idle(proxy: &Proxy) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let text = proxy.metrics();
        let calls = metric_sum(&text, "metaflow_proxy_active_calls", &[]);
        let streams = metric_sum(&text, "metaflow_proxy_streams_active", &[]);
        if (calls == Some(0.0) && streams == Some(0.0)) || Instant::now() > deadline {
            assert_eq!(calls, Some(0.0), "active calls after hangup:\n{text}");
            assert_eq!(
                streams,
                Some(0.0),
                "active media streams after hangup:\n{text}"
            );
            return text;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The proxy really is in the middle: the callee saw a different Call-ID, and the SDP each side
/// received points at the proxy's media address and RTP range, not at the other endpoint.
fn assert_anchored(proxy: &Proxy, caller: &SippResult, callee: &SippResult) {
    let ports = proxy.ports();
    let invite = callee
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE "));
    let invite = invite.expect("callee received no INVITE");
    let caller_invite = caller.sent().into_iter().find(|m| m.starts_with("INVITE "));
    let caller_invite = caller_invite.expect("caller sent no INVITE");
    assert_ne!(
        header(&invite, "Call-ID"),
        header(&caller_invite, "Call-ID"),
        "the proxy must place its own call (new Call-ID) towards the PBX"
    );
    let answer = caller
        .received()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"));
    let answer = answer.expect("caller received no 200");
    assert_sdp_anchored(ports, "offer to the callee", &invite);
    assert_sdp_anchored(ports, "answer to the caller", &answer);
}

#[test]
fn g711a_both_ways_arrives_intact_through_the_proxy() {
    let reference = g711a_reference();
    assert_eq!(
        reference.len(),
        236,
        "g711a.pcap should hold 236 RTP packets"
    );
    let proxy = Proxy::start(&[]);
    let ports = proxy.ports();
    let capture = Capture::start(&[ports.uac_media, ports.uas_media]);

    let (caller, callee) = call(&proxy, "uas_pcap.xml", "uac_pcap.xml", 20);
    let packets = capture.stop();
    assert_both_succeeded(&caller, &callee);
    assert_anchored(&proxy, &caller, &callee);

    assert_same_stream(
        &to_port(&packets, ports.uas_media),
        &reference,
        "caller -> callee",
    );
    assert_same_stream(
        &to_port(&packets, ports.uac_media),
        &reference,
        "callee -> caller",
    );
    for packet in &packets {
        assert!(
            ports.in_rtp_range(packet.src_port),
            "RTP must come from the proxy's ports, got {packet:?}"
        );
    }

    let metrics = metrics_when_idle(&proxy);
    let relayed = metric_sum(
        &metrics,
        "metaflow_proxy_rtp_packets_total",
        &[r#"kind="rtp""#],
    );
    assert!(
        relayed.is_some_and(|count| count >= 2.0 * 236.0),
        "RTP packet counter should count both streams:\n{metrics}"
    );
}

#[test]
fn bye_from_the_callee_reaches_the_caller() {
    let proxy = Proxy::start(&[]);
    let (caller, callee) = call(&proxy, "uas_bye.xml", "uac_wait_bye.xml", 15);
    assert_both_succeeded(&caller, &callee);
    let bye = caller
        .received()
        .into_iter()
        .find(|m| m.starts_with("BYE "));
    let bye = bye.expect("caller received no BYE");
    let caller_call_id = caller.sent().first().and_then(|m| header(m, "Call-ID"));
    assert_eq!(
        header(&bye, "Call-ID"),
        caller_call_id,
        "BYE in the caller's dialog"
    );
    metrics_when_idle(&proxy);
}

#[test]
fn cancel_while_ringing_gives_the_caller_487() {
    let proxy = Proxy::start(&[]);
    let (caller, callee) = call(&proxy, "uas_ring_cancel.xml", "uac_cancel.xml", 15);
    assert_both_succeeded(&caller, &callee);
    assert_caller_got(&caller, "SIP/2.0 487");
    metrics_when_idle(&proxy);
}

#[test]
fn busy_callee_486_reaches_the_caller() {
    let proxy = Proxy::start(&[]);
    let (caller, callee) = call(&proxy, "uas_busy.xml", "uac_busy.xml", 15);
    assert_both_succeeded(&caller, &callee);
    assert_caller_got(&caller, "SIP/2.0 486");
    metrics_when_idle(&proxy);
}

#[test]
fn delayed_offer_call_carries_media() {
    let reference = g711a_reference();
    let proxy = Proxy::start(&[]);
    let ports = proxy.ports();
    let capture = Capture::start(&[ports.uac_media, ports.uas_media]);
    let (caller, callee) = call(&proxy, "uas_delayed_offer.xml", "uac_delayed_offer.xml", 20);
    let packets = capture.stop();
    assert_both_succeeded(&caller, &callee);

    let invite = callee
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE "));
    let invite = invite.expect("callee received no INVITE");
    assert_eq!(
        sdp_audio_port(&invite),
        None,
        "a delayed offer stays an INVITE without SDP"
    );
    assert_same_stream(
        &to_port(&packets, ports.uas_media),
        &reference,
        "caller -> callee",
    );
    assert_same_stream(
        &to_port(&packets, ports.uac_media),
        &reference,
        "callee -> caller",
    );
    metrics_when_idle(&proxy);
}

#[test]
fn reinvite_moves_the_callee_media_port() {
    let reference = g711a_reference();
    let proxy = Proxy::start(&[]);
    let ports = proxy.ports();
    let first_port = ports.uas_media;
    let second_port = ports.uas_media + 2;
    let capture = Capture::start(&[first_port, second_port]);
    let (caller, callee) = call(&proxy, "uas_reinvite_port.xml", "uac_pcap_wait_bye.xml", 20);
    let packets = capture.stop();
    assert_both_succeeded(&caller, &callee);

    let before = to_port(&packets, first_port);
    let after = to_port(&packets, second_port);
    assert!(!before.is_empty(), "no RTP reached the callee's first port");
    assert!(
        !after.is_empty(),
        "no RTP reached the callee's port after the re-INVITE"
    );
    let last_before = before.iter().map(|p| p.time_us).max().unwrap_or(0);
    let first_after = after.iter().map(|p| p.time_us).min().unwrap_or(0);
    assert!(
        last_before <= first_after,
        "RTP still went to the old port after reaching the new one"
    );
    let all: Vec<RtpPacket> = before.into_iter().chain(after).collect();
    assert_same_stream(&all, &reference, "caller -> callee across the re-INVITE");
    metrics_when_idle(&proxy);
}

#[test]
fn media_timeout_hangs_up_both_silent_legs() {
    let proxy = Proxy::start(&["--media-timeout", "2"]);
    let started = Instant::now();
    let (caller, callee) = call(&proxy, "uas_wait_bye.xml", "uac_wait_bye.xml", 12);
    assert_both_succeeded(&caller, &callee);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "BYE came before the 2 s media timeout"
    );
    for (side, result) in [("caller", &caller), ("callee", &callee)] {
        assert!(got_bye(result), "{side} received no BYE");
    }
    metrics_when_idle(&proxy);
}

/// The caller received a message whose first line starts with `status`.
fn assert_caller_got(caller: &SippResult, status: &str) {
    let lines: Vec<String> = caller
        .received()
        .iter()
        .map(|message| first_line(message).to_owned())
        .collect();
    assert!(
        lines.iter().any(|line| line.starts_with(status)),
        "caller got {lines:?}"
    );
}
